package backend

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// foreignFolder makes folder name (on disk) with a dovecot-keywords and
// message files another program wrote into cur/, before any session
// reads it: files are "<base>:2,<letters>", UIDs given in that order.
func foreignFolder(t *testing.T, e *env, name, keywords string, files ...string) string {
	t.Helper()
	if err := e.u.Create(context.Background(), name, ""); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.root, "."+name)
	if err := os.WriteFile(filepath.Join(dir, uidlist.KeywordsFileName), []byte(keywords), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		body := fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i+1)
		if err := os.WriteFile(filepath.Join(dir, maildir.Cur, f), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSelect checks what SELECT reads: UIDs and the first unseen,
// every message's flags, the \Deleted ones, and the keywords defined,
// of which a name that is no IMAP atom (another program wrote it) is
// left unnamed, in Keywords and in every message's flags.
func TestSelect(t *testing.T) {
	e := newEnv(t, store.Options{}, store.QuotaLimit{})
	foreignFolder(t, e, "K", "0 Work\n1 a b\n2 x)y\n3 $Label1\n4 {lit}\n",
		"1700000001.a.host:2,S",
		"1700000002.b.host:2,Sabcd",
		"1700000003.c.host:2,T",
		"1700000004.d.host:2,PTbe",
		"1700000005.e.host:2,FS")
	mb := e.selectBox("K")
	uids, firstUnseen := mb.UIDs()
	if !slices.Equal(uids, []uint32{1, 2, 3, 4, 5}) || firstUnseen != 3 {
		t.Errorf("UIDs %v, first unseen %d; want 1..5, 3", uids, firstUnseen)
	}
	want := [][]string{
		{`\Seen`},
		{"$Label1", "Work", `\Seen`},
		{`\Deleted`},
		{`\Deleted`},
		{`\Flagged`, `\Seen`},
	}
	msgs := mb.Messages()
	if !slices.Equal(uidsOf(msgs), uids) {
		t.Errorf("Messages: UIDs %v, want %v", uidsOf(msgs), uids)
	}
	for i, w := range want {
		if got, _ := flagsOf(msgs, uint32(i+1)); !slices.Equal(got, w) {
			t.Errorf("UID %d: flags %q, want %q", i+1, got, w)
		}
	}
	if d := mb.Deleted(); !slices.Equal(d, []uint32{3, 4}) {
		t.Errorf("Deleted %v, want [3 4]", d)
	}
	if k := mb.Keywords(); !slices.Equal(k, []string{"Work", "$Label1"}) {
		t.Errorf("Keywords %q, want [Work $Label1]", k)
	}
	if v, n := mb.UIDValidity(), mb.UIDNext(); v == 0 || n != 6 {
		t.Errorf("UIDVALIDITY %d, UIDNEXT %d", v, n)
	}
	// The letters of unnamed keywords stay on disk through changes of
	// other flags.
	if _, err := mb.Store(context.Background(), []uint32{2}, flagop.Remove, []string{"Work"}); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Store(context.Background(), []uint32{2}, flagop.Add, []string{`\Answered`}); err != nil {
		t.Fatal(err)
	}
	m, _ := mb.mb.LookupUID(2)
	if m.Flags.String() != "RSbcd" {
		t.Errorf("UID 2 on disk: %q, want RSbcd", m.Flags.String())
	}

	empty := e.selectBox("Drafts")
	if uids, first := empty.UIDs(); len(uids) != 0 || first != 0 || empty.Messages() != nil || empty.Deleted() != nil || empty.Keywords() != nil {
		t.Errorf("empty Drafts: %v %d %v %v %v", uids, first, empty.Messages(), empty.Deleted(), empty.Keywords())
	}
	if empty.UIDNext() != 1 || empty.UIDValidity() == 0 {
		t.Errorf("empty Drafts: UIDNEXT %d UIDVALIDITY %d", empty.UIDNext(), empty.UIDValidity())
	}
}

// TestStore changes flags with each STORE action and checks the answer,
// what the next SELECT sees and what stays on disk: letters no client
// sees (P) are kept by every action; new keywords are defined.
func TestStore(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		op      flagop.Op
		flags   []string
		want    []string // UID 1's flags afterwards, sorted
		letters string   // UID 1's letters on disk
	}{
		{"add a system flag", flagop.Add, []string{`\Flagged`}, []string{"Work", `\Flagged`, `\Seen`}, "FPSa"},
		{"add a known keyword is no change", flagop.Add, []string{"work"}, []string{"Work", `\Seen`}, "PSa"},
		{"add a new keyword", flagop.Add, []string{"Later"}, []string{"Later", "Work", `\Seen`}, "PSab"},
		{"remove", flagop.Remove, []string{`\Seen`, "Work", `\Draft`}, nil, "P"},
		{"replace", flagop.Replace, []string{`\Answered`, "Later"}, []string{"Later", `\Answered`}, "PRb"},
		{"replace with nothing", flagop.Replace, nil, nil, "P"},
		{"recent cannot be set", flagop.Add, []string{`\Recent`}, []string{"Work", `\Seen`}, "PSa"},
		{"replace, case of system flags", flagop.Replace, []string{`\deleted`, `\SEEN`}, []string{`\Deleted`, `\Seen`}, "PST"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, store.Options{}, store.QuotaLimit{})
			foreignFolder(t, e, "F", "0 Work\n", "1700000001.a.host:2,PSa", "1700000002.b.host:2,")
			mb := e.selectBox("F")
			other := e.selectBox("F")
			got, err := mb.Store(ctx, []uint32{1, 7}, tt.op, tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(uidsOf(got), []uint32{1}) {
				t.Errorf("Store answered UIDs %v, want [1] (7 does not exist)", uidsOf(got))
			}
			if f, _ := flagsOf(got, 1); !slices.Equal(f, tt.want) {
				t.Errorf("Store answered %q, want %q", f, tt.want)
			}
			if f, _ := flagsOf(e.selectBox("F").Messages(), 1); !slices.Equal(f, tt.want) {
				t.Errorf("a new SELECT sees %q, want %q", f, tt.want)
			}
			if m, _ := mb.mb.LookupUID(1); m.Flags.String() != tt.letters {
				t.Errorf("on disk %q, want %q", m.Flags.String(), tt.letters)
			}
			if f, _ := flagsOf(mb.Messages(), 2); f != nil {
				t.Errorf("UID 2 changed: %q", f)
			}
			// The session that stored reports its change itself; the
			// other hears of it when something changed.
			if up := mb.Take(); len(up.Flags) != 0 {
				t.Errorf("the storing session's Take: %+v", up)
			}
			up := other.Take()
			changed := tt.letters != "PSa"
			if f, ok := flagsOf(up.Flags, 1); ok != changed || (ok && !slices.Equal(f, tt.want)) {
				t.Errorf("the other session's Take: %+v; want UID 1 with %q: %v", up, tt.want, changed)
			}
		})
	}
}

// TestTake checks what a session hears of others' changes: new
// messages, flag changes and expunges, each in UID order, a replaced
// uidlist (Void) and its mailbox deleted or renamed (Gone).
func TestTake(t *testing.T) {
	ctx := context.Background()
	msg := "Subject: x\r\n\r\nbody\r\n"
	t.Run("new, flags, expunged", func(t *testing.T) {
		e := newEnv(t, store.Options{}, store.QuotaLimit{})
		for range 3 {
			e.append("INBOX", msg)
		}
		a, b := e.selectBox("INBOX"), e.selectBox("INBOX")
		if up := a.Take(); up.Expunged != nil || up.New != nil || up.Flags != nil || up.Void || up.Gone {
			t.Errorf("Take before any change: %+v", up)
		}
		if _, err := b.Store(ctx, []uint32{3, 2}, flagop.Add, []string{`\Seen`}); err != nil {
			t.Fatal(err)
		}
		e.append("INBOX", msg, `\Flagged`, "Hot")
		e.append("INBOX", msg)
		if _, err := b.Expunge(ctx, []uint32{1, 5}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-a.Notify():
		default:
			t.Error("Notify not signalled")
		}
		up := a.Take()
		if !slices.Equal(up.Expunged, []uint32{1, 5}) {
			t.Errorf("Expunged %v, want [1 5]", up.Expunged)
		}
		if !slices.Equal(uidsOf(up.New), []uint32{4}) {
			t.Errorf("New %v, want [4] (5 expunged meanwhile)", uidsOf(up.New))
		} else if f, _ := flagsOf(up.New, 4); !slices.Equal(f, []string{"Hot", `\Flagged`}) {
			t.Errorf("New UID 4 flags %q", f)
		}
		if !slices.Equal(uidsOf(up.Flags), []uint32{2, 3}) {
			t.Errorf("Flags %v, want [2 3]", uidsOf(up.Flags))
		}
		for _, in := range up.Flags {
			if !slices.Equal(in.Flags, []string{`\Seen`}) {
				t.Errorf("Flags of UID %d: %q", in.UID, in.Flags)
			}
		}
		if up.Void || up.Gone {
			t.Errorf("Void %v Gone %v", up.Void, up.Gone)
		}
		if up := a.Take(); up.Expunged != nil || up.New != nil || up.Flags != nil {
			t.Errorf("second Take: %+v, want nothing", up)
		}
	})
	t.Run("void", func(t *testing.T) {
		e := newEnv(t, store.Options{}, store.QuotaLimit{})
		e.append("INBOX", msg)
		a := e.selectBox("INBOX")
		old := a.UIDValidity()
		// Another program replaces the uidlist with another UIDVALIDITY.
		path := filepath.Join(e.root, uidlist.FileName)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data = regexp.MustCompile(`^3 V\d+`).ReplaceAll(data, []byte("3 V"+strconv.FormatUint(uint64(old)+1, 10)))
		if err := os.WriteFile(path+".new", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if up := a.Take(); !up.Void || up.Gone {
			t.Errorf("Take after the uidlist was replaced: %+v, want Void", up)
		}
		if a.UIDValidity() != old+1 {
			t.Errorf("UIDVALIDITY %d, want %d", a.UIDValidity(), old+1)
		}
	})
	for _, change := range []struct {
		name    string
		mailbox string
		run     func(u *User) error
	}{
		{"gone by delete", "Box", func(u *User) error { return u.Delete(ctx, "Box") }},
		{"gone by rename", "Box", func(u *User) error { return u.Rename(ctx, "Box", "Elsewhere") }},
		{"gone by a parent's rename", "Top.Box", func(u *User) error { return u.Rename(ctx, "Top", "Other") }},
	} {
		t.Run(change.name, func(t *testing.T) {
			e := newEnv(t, store.Options{}, store.QuotaLimit{})
			if err := e.u.Create(ctx, change.mailbox, ""); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(change.mailbox, ".") {
				if err := e.u.Create(ctx, "Top", ""); err != nil {
					t.Fatal(err)
				}
			}
			a := e.selectBox(change.mailbox)
			if up := a.Take(); up.Gone {
				t.Fatal("Gone before the change")
			}
			if err := change.run(e.u); err != nil {
				t.Fatal(err)
			}
			if up := a.Take(); !up.Gone {
				t.Errorf("Take: %+v, want Gone", up)
			}
		})
	}
}

// TestExpunge removes messages and answers their UIDs; UIDs that are
// not there are left out.
func TestExpunge(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, store.Options{}, store.QuotaLimit{})
	for i := range 4 {
		e.append("INBOX", fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))
	}
	mb := e.selectBox("INBOX")
	gone, err := mb.Expunge(ctx, []uint32{1, 3, 9})
	if err != nil || !slices.Equal(gone, []uint32{1, 3}) {
		t.Errorf("Expunge 1 3 9: %v, %v; want [1 3]", gone, err)
	}
	if uids, _ := mb.UIDs(); !slices.Equal(uids, []uint32{2, 4}) {
		t.Errorf("left %v, want [2 4]", uids)
	}
	if gone, err := mb.Expunge(ctx, []uint32{1}); err != nil || len(gone) != 0 {
		t.Errorf("Expunge of a gone UID: %v, %v", gone, err)
	}
	if st, err := e.u.Status(ctx, "INBOX"); err != nil || st.Messages != 2 {
		t.Errorf("Status: %+v, %v", st, err)
	}
	e.check(e.root)
}

// TestCopyMove copies and moves messages to another folder: COPYUID
// data, the flags and keywords (by name: the target's letters differ),
// the originals kept by COPY and expunged by MOVE, and what each session
// hears.
func TestCopyMove(t *testing.T) {
	ctx := context.Background()
	for _, move := range []bool{false, true} {
		t.Run(map[bool]string{false: "copy", true: "move"}[move], func(t *testing.T) {
			e := newEnv(t, store.Options{}, store.QuotaLimit{})
			dst := foreignFolder(t, e, "Dst", "0 Other\n", "1700000001.a.host:2,a")
			e.append("INBOX", "Subject: 1\r\n\r\none\r\n", `\Seen`, "Work")
			e.append("INBOX", "Subject: 2\r\n\r\ntwo\r\n")
			e.append("INBOX", "Subject: 3\r\n\r\nthree\r\n", `\Flagged`)
			mb := e.selectBox("INBOX")
			other := e.selectBox("INBOX")
			watcher := e.selectBox("Dst")
			var validity uint32
			var src, dstUIDs, expunged []uint32
			var err error
			if move {
				validity, src, dstUIDs, expunged, err = mb.Move(ctx, []uint32{1, 3}, "Dst")
			} else {
				validity, src, dstUIDs, err = mb.Copy(ctx, []uint32{1, 3}, "Dst")
			}
			if err != nil {
				t.Fatal(err)
			}
			st, err := e.u.Status(ctx, "Dst")
			if err != nil {
				t.Fatal(err)
			}
			if validity != st.UIDValidity || !slices.Equal(src, []uint32{1, 3}) || !slices.Equal(dstUIDs, []uint32{2, 3}) {
				t.Errorf("COPYUID %d %v %v; want %d [1 3] [2 3]", validity, src, dstUIDs, st.UIDValidity)
			}
			d := e.selectBox("Dst")
			for uid, want := range map[uint32][]string{2: {"Work", `\Seen`}, 3: {`\Flagged`}} {
				if f, _ := flagsOf(d.Messages(), uid); !slices.Equal(f, want) {
					t.Errorf("Dst UID %d: %q, want %q", uid, f, want)
				}
			}
			if k := d.Keywords(); !slices.Equal(k, []string{"Other", "Work"}) {
				t.Errorf("Dst keywords %q", k)
			}
			if m, _ := d.mb.LookupUID(2); m.Flags.String() != "Sb" {
				t.Errorf("Dst UID 2 on disk %q, want Sb", m.Flags.String())
			}
			if up := watcher.Take(); !slices.Equal(uidsOf(up.New), []uint32{2, 3}) {
				t.Errorf("a session on Dst hears %+v, want New 2 3", up)
			}
			uids, _ := mb.UIDs()
			if move {
				if !slices.Equal(expunged, []uint32{1, 3}) || !slices.Equal(uids, []uint32{2}) {
					t.Errorf("MOVE expunged %v, INBOX holds %v", expunged, uids)
				}
				if up := mb.Take(); len(up.Expunged) != 0 {
					t.Errorf("the moving session's Take: %+v; it announces the expunges itself", up)
				}
				if up := other.Take(); !slices.Equal(up.Expunged, []uint32{1, 3}) {
					t.Errorf("another INBOX session hears %+v, want Expunged 1 3", up)
				}
			} else if !slices.Equal(uids, []uint32{1, 2, 3}) {
				t.Errorf("COPY left INBOX with %v", uids)
			}
			e.check(e.root)
			e.check(dst)
		})
	}
}

// TestMoveByCopy: across filesystems MOVE copies and expunges the
// originals; its answer is a MOVE's. The other filesystem is a tmpfs
// mounted over the folder, which needs root.
func TestMoveByCopy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs as the other filesystem")
	}
	ctx := context.Background()
	e := newEnv(t, store.Options{}, store.QuotaLimit{})
	if err := e.u.Create(ctx, "Other", ""); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(e.root, ".Other")
	tmpfsFolder(t, other, "4m")
	for i := range 3 {
		e.append("INBOX", fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i), `\Answered`)
	}
	mb := e.selectBox("INBOX")
	validity, src, dst, gone, err := mb.Move(ctx, []uint32{1, 3}, "Other")
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.u.Status(ctx, "Other")
	if err != nil {
		t.Fatal(err)
	}
	if validity != st.UIDValidity || !slices.Equal(src, []uint32{1, 3}) || !slices.Equal(dst, []uint32{1, 2}) || !slices.Equal(gone, []uint32{1, 3}) {
		t.Errorf("Move: %d %v %v %v; want %d [1 3] [1 2] [1 3]", validity, src, dst, gone, st.UIDValidity)
	}
	if uids, _ := mb.UIDs(); !slices.Equal(uids, []uint32{2}) {
		t.Errorf("INBOX holds %v, want [2]", uids)
	}
	if st.Messages != 2 {
		t.Errorf("Other holds %d messages, want 2", st.Messages)
	}
	if f, _ := flagsOf(e.selectBox("Other").Messages(), 2); !slices.Equal(f, []string{`\Answered`}) {
		t.Errorf("moved flags %q", f)
	}
	e.check(e.root)
	e.check(other)
}

// TestRead checks Open, Stat, Structure and ReadSize, with and without
// an index, for a message with bare LF line ends and one with CRLF:
// Open gives CRLF, sizes are of the CRLF form, the internal date is
// APPEND's, and ReadSize says what Open or Structure will hold.
func TestRead(t *testing.T) {
	ctx := context.Background()
	date := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		name string
		body string
	}{
		{"bare LF", "Subject: hi there\nFrom: a@example.org\n\nline 1\nline 2\n"},
		{"CRLF", "Subject: hi there\r\nFrom: a@example.org\r\n\r\nline 1\r\nline 2\r\n"},
	} {
		for _, indexed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, index %v", tt.name, indexed), func(t *testing.T) {
				var opts store.Options
				if indexed {
					ix, err := store.OpenIndex(filepath.Join(t.TempDir(), "index.db"), nil)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { ix.Close() })
					opts.Index = ix
				}
				e := newEnv(t, opts, store.QuotaLimit{})
				if _, _, err := e.u.Append(ctx, "INBOX", strings.NewReader(tt.body), int64(len(tt.body)), []string{`\Seen`}, date); err != nil {
					t.Fatal(err)
				}
				crlf := strings.ReplaceAll(strings.ReplaceAll(tt.body, "\r\n", "\n"), "\n", "\r\n")
				fileSize, crlfSize := int64(len(tt.body)), int64(len(crlf))
				mb := e.selectBox("INBOX")
				check := func(what string, info imap.MessageInfo) {
					t.Helper()
					if info.UID != 1 || info.Size != crlfSize || !info.InternalDate.Equal(date) || !slices.Equal(info.Flags, []string{`\Seen`}) {
						t.Errorf("%s: %+v; want UID 1, size %d, %v, \\Seen", what, info, crlfSize, date)
					}
				}

				// Before any read: ReadSize counts from S=, three times
				// the file (the file and a CRLF copy at its largest).
				if n, err := mb.ReadSize(ctx, 1, false); err != nil || n != 3*fileSize {
					t.Errorf("ReadSize before a read: %d, %v; want %d", n, err, 3*fileSize)
				}
				data, info, err := mb.Open(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				if string(data) != crlf {
					t.Errorf("Open: %q, want %q", data, crlf)
				}
				check("Open", info)
				info, err = mb.Stat(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				check("Stat", info)
				st, info, err := mb.Structure(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				check("Structure", info)
				if st.Envelope.Subject != "hi there" || len(st.Envelope.From) != 1 || st.Size != crlfSize {
					t.Errorf("Structure: subject %q, from %v, size %d", st.Envelope.Subject, st.Envelope.From, st.Size)
				}

				// Once read, the index knows the sizes and the structure.
				wantRead, wantStructure := 3*fileSize, 3*fileSize
				if indexed {
					wantRead, wantStructure = fileSize, 0
					if crlfSize != fileSize {
						wantRead += crlfSize
					}
				}
				if n, err := mb.ReadSize(ctx, 1, false); err != nil || n != wantRead {
					t.Errorf("ReadSize after a read: %d, %v; want %d", n, err, wantRead)
				}
				if n, err := mb.ReadSize(ctx, 1, true); err != nil || n != wantStructure {
					t.Errorf("ReadSize of the structure after a read: %d, %v; want %d", n, err, wantStructure)
				}
			})
		}
	}
}

// TestReadForeign reads a message another program wrote without S= in
// its name: ReadSize stats the file, Open converts it to CRLF, and its
// internal date is the file's mtime.
func TestReadForeign(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, store.Options{}, store.QuotaLimit{})
	dir := foreignFolder(t, e, "F", "", "1700000001.a.host:2,S")
	path := filepath.Join(dir, maildir.Cur, "1700000001.a.host:2,S")
	body := []byte("Subject: f\n\nx\ny\n")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	mb := e.selectBox("F")
	if n, err := mb.ReadSize(ctx, 1, false); err != nil || n != 3*int64(len(body)) {
		t.Errorf("ReadSize: %d, %v; want %d", n, err, 3*len(body))
	}
	data, info, err := mb.Open(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n"))
	if !bytes.Equal(data, want) || info.Size != int64(len(want)) || !info.InternalDate.Equal(mtime) {
		t.Errorf("Open: %q %+v; want %q, size %d, %v", data, info, want, len(want), mtime)
	}
}

// TestRecent hands out \Recent: the first session to claim takes the
// messages once, a look (EXAMINE) claims nothing, and a message that
// arrives later is recent for the next claim only.
func TestRecent(t *testing.T) {
	e := newEnv(t, store.Options{}, store.QuotaLimit{})
	for range 3 {
		e.append("INBOX", "Subject: x\r\n\r\nbody\r\n")
	}
	look, a, b := e.selectBox("INBOX"), e.selectBox("INBOX"), e.selectBox("INBOX")
	steps := []struct {
		name  string
		mb    *Mailbox
		upTo  uint32
		claim bool
		want  uint32
	}{
		{"a look sees all three", look, 4, false, 1},
		{"a look again: nothing claimed", look, 4, false, 1},
		{"a claims part", a, 3, true, 1},
		{"b claims the rest", b, 4, true, 3},
		{"a claims again: none left", a, 4, true, 4},
		{"a look after the claims", look, 4, false, 4},
	}
	for _, s := range steps {
		if got := s.mb.Recent(s.upTo, s.claim); got != s.want {
			t.Errorf("%s: Recent(%d, %v) = %d, want %d", s.name, s.upTo, s.claim, got, s.want)
		}
	}
	e.append("INBOX", "Subject: y\r\n\r\nlate\r\n")
	if got := look.Recent(5, false); got != 4 {
		t.Errorf("a look after a new message: %d, want 4", got)
	}
	if got := b.Recent(5, true); got != 4 {
		t.Errorf("b claims the new message: %d, want 4", got)
	}
	if got := a.Recent(5, true); got != 5 {
		t.Errorf("a claims after b: %d, want 5 (none)", got)
	}
	if st, err := e.u.Status(context.Background(), "INBOX"); err != nil || st.Recent != 0 {
		t.Errorf("Status after every claim: %+v, %v; want Recent 0", st, err)
	}
}
