package backend

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/maildir"
)

// TestFolders lists an account's mailboxes as LIST needs them: INBOX
// first, the special-use attributes, \HasChildren, a level without a
// Maildir as \Noselect, subscriptions, a subscription without a mailbox
// as \NonExistent, folder names decoded from modified UTF-7, and INBOX
// listed once when another program made its children (.INBOX.x).
func TestFolders(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, store.Options{}, store.QuotaLimit{})
	for _, c := range []struct{ name, use string }{
		{"A.B", ""}, {"Entwürfe", ""}, {"INBOX.Sub", ""}, {"Notes", `\Important`},
	} {
		if err := e.u.Create(ctx, c.name, c.use); err != nil {
			t.Fatalf("Create %q: %v", c.name, err)
		}
	}
	for _, s := range []struct {
		name string
		on   bool
	}{{"Ghost", true}, {"Sent", false}, {"A.B", true}} {
		if err := e.u.SetSubscribed(ctx, s.name, s.on); err != nil {
			t.Fatalf("SetSubscribed %q %v: %v", s.name, s.on, err)
		}
	}
	// A folder another program named with a control character is no
	// mailbox: never listed.
	bad := filepath.Join(e.root, ".Bad\x01")
	if err := os.Mkdir(bad, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := maildir.Create(bad, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.root, ".Entw&APw-rfe", "cur")); err != nil {
		t.Errorf("Entwürfe is not in modified UTF-7 on disk: %v", err)
	}

	got, err := e.u.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []imap.FolderInfo{
		{Name: "INBOX", HasChildren: true, Subscribed: true},
		{Name: "A", HasChildren: true, NoSelect: true},
		{Name: "A.B", Subscribed: true},
		{Name: "Archive", SpecialUse: `\Archive`, Subscribed: true},
		{Name: "Drafts", SpecialUse: `\Drafts`, Subscribed: true},
		{Name: "Entwürfe"},
		{Name: "INBOX.Sub"},
		{Name: "Junk", SpecialUse: `\Junk`, Subscribed: true},
		{Name: "Notes", SpecialUse: `\Important`},
		{Name: "Sent", SpecialUse: `\Sent`},
		{Name: "Trash", SpecialUse: `\Trash`, Subscribed: true},
		{Name: "Ghost", NoSelect: true, Subscribed: true, NonExistent: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Folders:\n got %+v\nwant %+v", got, want)
	}
}

// TestFolderChanges drives CREATE, DELETE, RENAME and SUBSCRIBE and
// checks each through Folders and Status.
func TestFolderChanges(t *testing.T) {
	ctx := context.Background()
	msg := "Subject: x\r\n\r\nbody\r\n"
	type listing map[string]imap.FolderInfo
	for _, tt := range []struct {
		name  string
		run   func(t *testing.T, e *env)
		check func(t *testing.T, e *env, l listing)
	}{
		{"create with a special use", func(t *testing.T, e *env) {
			if err := e.u.Create(ctx, "Later", `\Flagged`); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, e *env, l listing) {
			if f, ok := l["Later"]; !ok || f.SpecialUse != `\Flagged` || f.NoSelect {
				t.Errorf("Later: %+v, %v", f, ok)
			}
		}},
		{"delete keeps the children and the subscription", func(t *testing.T, e *env) {
			for _, n := range []string{"P", "P.C"} {
				if err := e.u.Create(ctx, n, ""); err != nil {
					t.Fatal(err)
				}
			}
			e.append("P", msg)
			if err := e.u.SetSubscribed(ctx, "P", true); err != nil {
				t.Fatal(err)
			}
			if err := e.u.Delete(ctx, "P"); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, e *env, l listing) {
			if f := l["P"]; !f.NoSelect || !f.HasChildren || !f.Subscribed || f.NonExistent {
				t.Errorf("P after DELETE: %+v, want \\Noselect with children, subscribed", f)
			}
			if f, ok := l["P.C"]; !ok || f.NoSelect {
				t.Errorf("P.C after DELETE P: %+v, %v", f, ok)
			}
			if _, err := e.u.Status(ctx, "P"); !isOnly(err, imap.ErrNoSuchMailbox) {
				t.Errorf("Status P after DELETE: %v", err)
			}
		}},
		{"delete of a special-use folder drops the attribute", func(t *testing.T, e *env) {
			if err := e.u.Delete(ctx, "Junk"); err != nil {
				t.Fatal(err)
			}
			if err := e.u.Create(ctx, "Junk", ""); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, e *env, l listing) {
			if f := l["Junk"]; f.SpecialUse != "" || f.NoSelect {
				t.Errorf("Junk made again: %+v, want no special use", f)
			}
		}},
		{"rename moves children, messages and the special use", func(t *testing.T, e *env) {
			if err := e.u.Create(ctx, "Sent.2024", ""); err != nil {
				t.Fatal(err)
			}
			e.append("Sent", msg)
			e.append("Sent.2024", msg)
			if err := e.u.Rename(ctx, "Sent", "Outbox"); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, e *env, l listing) {
			if f, ok := l["Outbox"]; !ok || f.SpecialUse != `\Sent` || !f.HasChildren {
				t.Errorf("Outbox: %+v, %v", f, ok)
			}
			if f, ok := l["Sent"]; !ok || !f.NonExistent {
				t.Errorf("Sent after RENAME: %+v, %v; want only its subscription", f, ok)
			}
			for _, n := range []string{"Outbox", "Outbox.2024"} {
				if st, err := e.u.Status(ctx, n); err != nil || st.Messages != 1 {
					t.Errorf("Status %s: %+v, %v; want 1 message", n, st, err)
				}
			}
		}},
		{"rename INBOX moves its messages and leaves it empty", func(t *testing.T, e *env) {
			e.append("INBOX", msg)
			e.append("INBOX", msg)
			if err := e.u.Rename(ctx, "INBOX", "Old"); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, e *env, l listing) {
			for n, want := range map[string]uint32{"INBOX": 0, "Old": 2} {
				if st, err := e.u.Status(ctx, n); err != nil || st.Messages != want {
					t.Errorf("Status %s: %+v, %v; want %d messages", n, st, err, want)
				}
			}
		}},
		{"rename a Unicode name", func(t *testing.T, e *env) {
			if err := e.u.Create(ctx, "Café", ""); err != nil {
				t.Fatal(err)
			}
			if err := e.u.Rename(ctx, "Café", "Thé.Vert"); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, e *env, l listing) {
			if _, ok := l["Café"]; ok {
				t.Error("Café still listed")
			}
			if f, ok := l["Thé.Vert"]; !ok || f.NoSelect {
				t.Errorf("Thé.Vert: %+v, %v", f, ok)
			}
			if f := l["Thé"]; !f.NoSelect || !f.HasChildren {
				t.Errorf("Thé: %+v", f)
			}
			if _, err := os.Stat(filepath.Join(e.root, ".Th&AOk-.Vert")); err != nil {
				t.Error(err)
			}
		}},
		{"subscribe and unsubscribe, INBOX in any case", func(t *testing.T, e *env) {
			for _, s := range []struct {
				name string
				on   bool
			}{{"Drafts", false}, {"inbox", false}, {"Archive", true}, {"Nowhere", true}, {"Nowhere", true}} {
				if err := e.u.SetSubscribed(ctx, s.name, s.on); err != nil {
					t.Fatal(err)
				}
			}
		}, func(t *testing.T, e *env, l listing) {
			if l["Drafts"].Subscribed || l["INBOX"].Subscribed || !l["Archive"].Subscribed {
				t.Errorf("Drafts %+v, INBOX %+v, Archive %+v", l["Drafts"], l["INBOX"], l["Archive"])
			}
			subs, err := e.u.acct.Subscriptions()
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(strings.Join(subs, "\n"), "Nowhere"); n != 1 {
				t.Errorf("subscriptions %q: Nowhere %d times, want once", subs, n)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, store.Options{}, store.QuotaLimit{})
			tt.run(t, e)
			fs, err := e.u.Folders(ctx)
			if err != nil {
				t.Fatal(err)
			}
			l := listing{}
			for _, f := range fs {
				if _, dup := l[f.Name]; dup {
					t.Errorf("%s listed twice", f.Name)
				}
				l[f.Name] = f
			}
			if fs[0].Name != "INBOX" {
				t.Errorf("first listed: %s, want INBOX", fs[0].Name)
			}
			tt.check(t, e, l)
		})
	}
}

// TestStatus counts what STATUS reports, before and after a session
// claims the recent messages and changes flags.
func TestStatus(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, store.Options{}, store.QuotaLimit{})
	msgs := []struct {
		body  string
		flags []string
	}{
		{"Subject: 1\r\n\r\none\r\n", []string{`\Seen`}},
		{"Subject: 2\n\ntwo, bare LF\n", []string{`\Deleted`, `\Seen`}},
		{"Subject: 3\r\n\r\nthree three\r\n", nil},
		{"Subject: 4\r\n\r\nfour\r\n", []string{`\Deleted`}},
	}
	var size int64
	var validity uint32
	for _, m := range msgs {
		v, _, err := e.u.Append(ctx, "Sent", strings.NewReader(m.body), int64(len(m.body)), m.flags, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		validity = v
		size += int64(len(m.body)) // the file's size, as written
	}
	st, err := e.u.Status(ctx, "Sent")
	if err != nil {
		t.Fatal(err)
	}
	// HIGHESTMODSEQ goes up with every change (RFC 7162 §3.1.6).
	highest := st.HighestModSeq
	if highest == 0 {
		t.Errorf("STATUS HIGHESTMODSEQ 0")
	}
	// MAILBOXID: the uidlist's GUID, the same in every STATUS.
	id := st.MailboxID
	if len(id) != 32 {
		t.Errorf("Status: MAILBOXID %q, want the 32 hex digits of the uidlist's GUID", id)
	}
	want := imap.StatusInfo{Messages: 4, Unseen: 2, Deleted: 2, Recent: 4, UIDNext: 5, UIDValidity: validity, Size: size, HighestModSeq: highest, MailboxID: id}
	if st != want || validity == 0 {
		t.Errorf("Status: %+v, want %+v", st, want)
	}

	mb := e.selectBox("Sent")
	if first := mb.Recent(mb.UIDNext(), true); first != 1 {
		t.Errorf("claimed from %d, want 1", first)
	}
	if _, err := mb.Store(ctx, []uint32{3}, flagop.Add, []string{`\Seen`}); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Expunge(ctx, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	st, err = e.u.Status(ctx, "Sent")
	if err != nil {
		t.Fatal(err)
	}
	if st.HighestModSeq <= highest {
		t.Errorf("HIGHESTMODSEQ %d after a STORE and an EXPUNGE, not above %d", st.HighestModSeq, highest)
	}
	highest = st.HighestModSeq
	want = imap.StatusInfo{Messages: 3, Unseen: 1, Deleted: 2, Recent: 0, UIDNext: 5, UIDValidity: validity,
		Size: size - int64(len(msgs[0].body)), HighestModSeq: highest, MailboxID: id}
	if st != want {
		t.Errorf("Status after the claim, STORE and EXPUNGE: %+v, want %+v", st, want)
	}

	// A message file without S= in its name (another program's) is
	// counted by its size on disk.
	foreign := "Subject: 5\r\n\r\nfrom elsewhere\r\n"
	if err := os.WriteFile(filepath.Join(e.root, ".Sent", "new", "1700000000.foreign.host"), []byte(foreign), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err = e.u.Status(ctx, "Sent")
	if err != nil {
		t.Fatal(err)
	}
	if st.HighestModSeq <= highest {
		t.Errorf("HIGHESTMODSEQ %d after a delivery, not above %d", st.HighestModSeq, highest)
	}
	want.Messages, want.Unseen, want.Recent, want.UIDNext = 4, 2, 1, 6
	want.Size += int64(len(foreign))
	want.HighestModSeq = st.HighestModSeq
	if st != want {
		t.Errorf("Status with a foreign file: %+v, want %+v", st, want)
	}
}

// TestAppend checks what APPEND stores: system flags in any case,
// keywords, \Recent and unknown system flags ignored, the internal date,
// and APPENDUID data that name the message (the UIDVALIDITY even of a
// folder that had none before).
func TestAppend(t *testing.T) {
	ctx := context.Background()
	date := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tt := range []struct {
		name      string
		mailbox   string
		flags     []string
		date      time.Time
		wantFlags []string // sorted
	}{
		{"no flags", "INBOX", nil, time.Time{}, nil},
		{"system flags in any case", "INBOX", []string{`\seen`, `\FLAGGED`, `\Answered`, `\Draft`, `\Deleted`}, date,
			[]string{`\Answered`, `\Deleted`, `\Draft`, `\Flagged`, `\Seen`}},
		{"keywords", "INBOX", []string{"$Forwarded", `\Seen`, "Work"}, date, []string{"$Forwarded", "Work", `\Seen`}},
		{"recent and unknown system flags ignored", "INBOX", []string{`\Recent`, `\Unknown`, "$Junk"}, time.Time{}, []string{"$Junk"}},
		{"a new folder", "Fresh", []string{`\Seen`}, date, []string{`\Seen`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, store.Options{}, store.QuotaLimit{})
			if err := e.u.Create(ctx, "Fresh", ""); err != nil {
				t.Fatal(err)
			}
			// Fresh gets its first message (and its UIDVALIDITY) from
			// the APPEND under test.
			wantUID := uint32(1)
			if tt.mailbox != "Fresh" {
				e.append(tt.mailbox, "Subject: before\r\n\r\nx\r\n")
				wantUID = 2
			}
			body := "Subject: hello\r\n\r\nworld\r\n"
			before := time.Now()
			validity, uid, err := e.u.Append(ctx, tt.mailbox, strings.NewReader(body), int64(len(body)), tt.flags, tt.date)
			if err != nil {
				t.Fatal(err)
			}
			st, err := e.u.Status(ctx, tt.mailbox)
			if err != nil {
				t.Fatal(err)
			}
			if validity == 0 || validity != st.UIDValidity || uid != wantUID || st.UIDNext != wantUID+1 {
				t.Errorf("APPENDUID %d %d; Status %+v", validity, uid, st)
			}
			mb := e.selectBox(tt.mailbox)
			flags, ok := flagsOf(mb.Messages(), uid)
			if !ok || !slices.Equal(flags, tt.wantFlags) {
				t.Errorf("flags of UID %d: %q (%v), want %q", uid, flags, ok, tt.wantFlags)
			}
			// Only keywords are defined: \Recent and unknown system
			// flags never reach dovecot-keywords.
			var wantNames, names []string
			for _, f := range tt.wantFlags {
				if !strings.HasPrefix(f, `\`) {
					wantNames = append(wantNames, f)
				}
			}
			k, err := mb.mb.Keywords()
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range k.Names {
				if n != "" {
					names = append(names, n)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, wantNames) {
				t.Errorf("dovecot-keywords holds %q, want %q", names, wantNames)
			}
			info, err := mb.Stat(ctx, uid)
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(len(body)) {
				t.Errorf("size %d, want %d", info.Size, len(body))
			}
			if tt.date.IsZero() {
				if info.InternalDate.Before(before.Add(-2*time.Second)) || info.InternalDate.After(time.Now().Add(2*time.Second)) {
					t.Errorf("internal date %v, want about now (%v)", info.InternalDate, before)
				}
			} else if !info.InternalDate.Equal(tt.date) {
				t.Errorf("internal date %v, want %v", info.InternalDate, tt.date)
			}
		})
	}
}
