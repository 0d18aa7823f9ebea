package main

import (
	"maps"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// materialize writes the tree that the fixture file describes (see
// testdata/courier-maildir.txt) into root: every "-- <path> --" line
// starts a file, a first element ".<name>" is a Maildir++ folder.
func materialize(t *testing.T, fixture, root string) {
	t.Helper()
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	makeMaildir(t, root)
	var path string
	var body strings.Builder
	flush := func() {
		if path == "" {
			return
		}
		if first, _, _ := strings.Cut(path, "/"); strings.HasPrefix(first, ".") {
			makeMaildir(t, filepath.Join(root, first))
		}
		writeFixtureFile(t, filepath.Join(root, path), body.String())
	}
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.HasPrefix(line, "-- ") && strings.HasSuffix(line, " --\n") {
			flush()
			path, body = line[3:len(line)-4], strings.Builder{}
			continue
		}
		if path != "" {
			body.WriteString(line)
		}
	}
	flush()
}

// courierMailbox is what Courier's files say of one mailbox.
type courierMailbox struct {
	uidValidity uint32
	uids        map[string]uint32 // Message-ID -> Courier's UID
	unnumbered  []string          // Message-IDs of files Courier gave no UID
}

// readCourier reads, for each mailbox of the tree at root (by IMAP name),
// the UIDVALIDITY of its courierimapuiddb and the UID it gives each
// message file, by the Message-ID in the file.
func readCourier(t *testing.T, root string) map[string]*courierMailbox {
	t.Helper()
	out := map[string]*courierMailbox{}
	dirs := map[string]string{"INBOX": root}
	folders, err := maildir.ListFolders(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range folders {
		dirs[strings.Join(p, ".")] = filepath.Join(root, "."+strings.Join(p, "."))
	}
	for name, dir := range dirs {
		path := filepath.Join(dir, uidlist.CourierFileName)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, problems, err := uidlist.ParseCourier(path, data)
		if err != nil || len(problems) > 0 {
			t.Fatalf("fixture %s: %v %v", path, err, problems)
		}
		byBase := map[string]uint32{}
		for _, r := range f.Records {
			byBase[r.Base()] = r.UID
		}
		mb := &courierMailbox{uidValidity: f.Header.UIDValidity, uids: map[string]uint32{}}
		for _, sub := range []string{"new", "cur"} {
			entries, err := os.ReadDir(filepath.Join(dir, sub))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				id, err := testfs.MessageID(filepath.Join(dir, sub, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if uid, ok := byBase[maildir.BaseName(e.Name())]; ok {
					mb.uids[id] = uid
				} else {
					mb.unnumbered = append(mb.unnumbered, id)
				}
			}
		}
		out[name] = mb
	}
	return out
}

var messageIDHeader = &imap.FetchItemBodySection{
	Specifier:    imap.PartSpecifierHeader,
	HeaderFields: []string{"Message-ID"},
	Peek:         true,
}

// servedMessage is one message as the server reports it.
type servedMessage struct {
	uid   uint32
	flags []string // sorted
}

// selectByMessageID selects name and returns its UIDVALIDITY and UIDNEXT
// and its messages by Message-ID.
func selectByMessageID(t *testing.T, c *imapclient.Client, name string) (uint32, uint32, map[string]servedMessage) {
	t.Helper()
	sel, err := c.Select(name, nil).Wait()
	if err != nil {
		t.Fatalf("SELECT %s: %v", name, err)
	}
	msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{messageIDHeader},
	}).Collect()
	if err != nil {
		t.Fatalf("%s: UID FETCH 1:*: %v", name, err)
	}
	out := map[string]servedMessage{}
	for _, m := range msgs {
		msg, err := mail.ReadMessage(strings.NewReader(string(m.FindBodySection(messageIDHeader)) + "\r\n"))
		if err != nil {
			t.Fatalf("%s: UID %d: %v", name, m.UID, err)
		}
		var flags []string
		for _, f := range m.Flags {
			if f != `\Recent` {
				flags = append(flags, string(f))
			}
		}
		slices.Sort(flags)
		out[msg.Header.Get("Message-Id")] = servedMessage{uint32(m.UID), flags}
	}
	if len(out) != int(sel.NumMessages) {
		t.Errorf("%s: %d messages fetched, SELECT says %d", name, len(out), sel.NumMessages)
	}
	return sel.UIDValidity, uint32(sel.UIDNext), out
}

// A Courier tree migrated by 'cistern migrate' and then served by
// 'cistern serve': over IMAP every message has Courier's UID, every
// mailbox Courier's UIDVALIDITY, keywords and subscriptions are there.
func TestMigrateCourier(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	if err := auth.Add(passwd, auth.User{Name: "carol", Password: "{PLAIN}secret"}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cistern.toml")
	writeFixtureFile(t, cfg, "data_dir = \""+dir+"/data\"\n"+
		"mail_location = \""+dir+"/mail/%u/Maildir\"\n"+
		"passwd_file = \""+passwd+"\"\n"+
		"[imap]\nlisten = [\"127.0.0.1:0\"]\n")
	root := filepath.Join(dir, "mail", "carol", "Maildir")
	materialize(t, filepath.Join("testdata", "courier-maildir.txt"), root)
	courier := readCourier(t, root)
	if len(courier) != 3 || len(courier["INBOX"].uids) != 4 || len(courier["INBOX"].unnumbered) != 1 {
		t.Fatalf("fixture: %+v", courier)
	}

	before := testfs.Snapshot(t, root)
	code, out, _ := runCisternCmd(t, "migrate", "--dry-run", "--config", cfg, "carol")
	if code != 0 || len(linesWithPrefix(out, "INBOX: would write dovecot-uidlist from courierimapuiddb: UIDVALIDITY 1199999999, next UID 15")) != 1 {
		t.Fatalf("dry run: exit %d, want 0 and the plan", code)
	}
	if after := testfs.Snapshot(t, root); !maps.Equal(before, after) {
		t.Fatalf("the dry run changed the tree:\n%s", testfs.Diff(before, after))
	}

	code, out, _ = runCisternCmd(t, "migrate", "--config", cfg, "carol")
	if code != 0 || !strings.HasSuffix(out, "summary: 3 mailbox(es), 7 message(s): clean\n") ||
		!strings.Contains(out, "migrate: 3 mailbox(es), 3 converted from Courier's files, 0 warning(s)\n") {
		t.Fatalf("migrate: exit %d, want 0, three conversions and a clean check", code)
	}
	migrated := testfs.Snapshot(t, root)
	for path, was := range before {
		if strings.Contains(path, "courierimap") && migrated[path] != was {
			t.Errorf("Courier's %s changed or vanished", path)
		}
	}
	code, out, _ = runCisternCmd(t, "migrate", "carol", "--config", cfg)
	if code != 0 || len(linesWithPrefix(out, "INBOX: dovecot-uidlist already has Courier's UIDVALIDITY 1199999999 and UIDs")) != 1 {
		t.Fatalf("second migrate: exit %d, want 0 and nothing to do", code)
	}

	r := startServe(t, "--config", cfg)
	c := dialIMAP(t, r.addr)
	if err := c.Login("carol", "secret").Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	for name, want := range courier {
		st, err := c.Status(name, &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			t.Fatalf("STATUS %s: %v", name, err)
		}
		if st.UIDValidity != want.uidValidity {
			t.Errorf("STATUS %s: UIDVALIDITY %d, Courier's was %d", name, st.UIDValidity, want.uidValidity)
		}
		validity, next, got := selectByMessageID(t, c, name)
		if validity != want.uidValidity {
			t.Errorf("SELECT %s: UIDVALIDITY %d, Courier's was %d", name, validity, want.uidValidity)
		}
		for id, uid := range want.uids {
			if m, ok := got[id]; !ok || m.uid != uid {
				t.Errorf("%s: %s has UID %d (listed: %v), Courier's was %d", name, id, m.uid, ok, uid)
			}
		}
		for _, id := range want.unnumbered {
			if m, ok := got[id]; !ok || m.uid < 15 || m.uid >= next {
				t.Errorf("%s: %s, which Courier had not numbered, has UID %d (listed: %v); want one from Courier's next UID 15 on, below UIDNEXT %d", name, id, m.uid, ok, next)
			}
		}
		if len(got) != len(want.uids)+len(want.unnumbered) {
			t.Errorf("%s: %d messages over IMAP, %d files", name, len(got), len(want.uids)+len(want.unnumbered))
		}
		if name == "INBOX" {
			for id, flags := range map[string][]string{
				"<c1@courier.example>":  {`\Seen`},
				"<c4@courier.example>":  {`Important`, `\Flagged`, `\Seen`},
				"<c9@courier.example>":  {`$Forwarded`, `Important`, `\Answered`, `\Seen`},
				"<c14@courier.example>": {`Project-X`},
				"<c20@courier.example>": nil,
			} {
				if got := got[id].flags; !slices.Equal(got, flags) {
					t.Errorf("INBOX: %s has flags %q, want %q", id, got, flags)
				}
			}
		}
	}
	subscribed, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		t.Fatalf("LIST (SUBSCRIBED): %v", err)
	}
	var names []string
	for _, d := range subscribed {
		names = append(names, d.Mailbox)
	}
	slices.Sort(names)
	if want := []string{"INBOX", "Lists.Go", "Sent"}; !slices.Equal(names, want) {
		t.Errorf("subscribed %q, want %q (from courierimapsubscribed)", names, want)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Error(err)
	}
	if err := r.stop(t); err != nil {
		t.Errorf("serve: %v", err)
	}
}

// A Dovecot tree is left as it is; the check's result decides the exit
// status; errors are exit status 2.
func TestMigrateDovecotAndErrors(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	makeMaildir(t, root)
	const a = "1700000001.M1P1Q1.test"
	writeFixtureFile(t, filepath.Join(root, "cur", a+":2,Sa"), "Subject: a\n\nbody\n")
	writeFixtureFile(t, filepath.Join(root, uidlist.FileName), "3 V9 N3\n2 :"+a+"\n")
	writeFixtureFile(t, filepath.Join(root, uidlist.KeywordsFileName), "0 Work\n")
	writeFixtureFile(t, filepath.Join(root, "dovecot.index.log"), "Dovecot's")
	before := testfs.Snapshot(t, root)
	code, out, _ := runCisternCmd(t, "migrate", root)
	if code != 0 || len(linesWithPrefix(out, "INBOX: dovecot-uidlist: kept as it is")) != 1 {
		t.Errorf("migrate of a Dovecot tree: exit %d, want 0", code)
	}
	if after := testfs.Snapshot(t, root); !maps.Equal(before, after) {
		t.Errorf("migrate changed a Dovecot tree:\n%s", testfs.Diff(before, after))
	}

	// A damaged tree: nothing to convert, but the check finds problems.
	writeFixtureFile(t, filepath.Join(root, uidlist.FileName), "3 V9 N3\n1 :gone\n2 :"+a+"\n")
	if code, out, _ := runCisternCmd(t, "migrate", root); code != 1 || len(linesWithPrefix(out, "INBOX: stale-record: ")) != 1 {
		t.Errorf("migrate of a tree with a stale record: exit %d, want 1 and the finding", code)
	}

	for _, args := range [][]string{
		{"migrate"},
		{"migrate", root, root},
		{"migrate", "--bogus", root},
		{"migrate", filepath.Join(root, "nothing")},
		{"migrate", "--config", filepath.Join(root, "none.toml"), "carol"},
	} {
		if code, _, _ := runCisternCmd(t, args...); code != 2 {
			t.Errorf("cistern %q: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := runCisternCmd(t, "migrate", "--help"); code != 0 || !strings.HasPrefix(out, "usage: cistern migrate") {
		t.Errorf("migrate --help: exit %d", code)
	}
}
