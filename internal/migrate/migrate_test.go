package migrate

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/fsck"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

const testTimeout = 30 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// The messages of the Courier tree of these tests.
const (
	m1   = "1700000001.M1P1.courier"  // cur, UID 3, keywords Work and $Label1
	m2   = "1700000002.M2P1.courier"  // cur, UID 7, keyword Junk
	m3   = "1700000003.M3P1.courier"  // new, UID 11
	m5   = "1700000005.M5P1.courier"  // UID 5, its file gone
	m99  = "1700000099.M99P1.courier" // new, delivered after Courier's last scan
	sent = "1700000010.M10P1.courier" // Sent, cur, UID 2, keyword Work (update file only)
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// courierTree makes a Maildir tree as Courier-IMAP leaves it.
func courierTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := maildir.Create(root, 0o700); err != nil {
		t.Fatal(err)
	}
	msg := func(dir, sub, name string) {
		writeFile(t, filepath.Join(dir, sub, name), "Subject: "+maildir.BaseName(name)+"\n\nbody\n")
	}
	msg(root, "cur", m1+":2,S")
	msg(root, "cur", m2+":2,RS")
	msg(root, "new", m3)
	msg(root, "new", m99)
	writeFile(t, filepath.Join(root, uidlist.CourierFileName),
		"1 1234567890 12\n3 "+m1+"\n5 "+m5+"\n7 "+m2+"\n11 "+m3+"\n")
	writeFile(t, filepath.Join(root, CourierKeywordsDir, CourierKeywordsList),
		"Work\n$Label1\nJunk\n\n"+m1+":0 1\n"+m2+":2\n"+m5+":0\n")
	writeFile(t, filepath.Join(root, CourierSubscribed), "INBOX\nINBOX.Sent\n")

	if err := maildir.CreateFolder(root, []string{"Sent"}); err != nil {
		t.Fatal(err)
	}
	sentDir := filepath.Join(root, ".Sent")
	msg(sentDir, "cur", sent+":2,S")
	writeFile(t, filepath.Join(sentDir, uidlist.CourierFileName), "1 1111 4\n2 "+sent+"\n")
	writeFile(t, filepath.Join(sentDir, CourierKeywordsDir, ".600000."+sent), "Work\n")
	return root
}

// courierFiles returns the content of every file of Courier's in the tree.
func courierFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.Contains(path, "courier") || strings.Contains(path, string(filepath.Separator)+"cur"+string(filepath.Separator)) ||
			strings.Contains(path, string(filepath.Separator)+"new"+string(filepath.Separator)) {
			return nil
		}
		data, err := os.ReadFile(path)
		out[path] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func run(t *testing.T, opts Options) *Result {
	t.Helper()
	res, err := Run(testContext(t), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, s := range res.Steps {
		t.Logf("step (warning %v): %s", s.Warning, s)
	}
	return res
}

func uidsOf(t *testing.T, dir string) (map[string]uint32, uidlist.Header) {
	t.Helper()
	path := filepath.Join(dir, uidlist.FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, problems, err := uidlist.Parse(path, data)
	if err != nil || len(problems) > 0 {
		t.Fatalf("%s: %v %v\n%s", path, err, problems, data)
	}
	m := map[string]uint32{}
	for _, r := range f.Records {
		m[r.Base()] = r.UID
	}
	return m, f.Header
}

// fileOf returns the sub/name of base in dir.
func fileOf(t *testing.T, dir, base string) string {
	t.Helper()
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if maildir.BaseName(e.Name()) == base {
				return sub + "/" + e.Name()
			}
		}
	}
	return ""
}

func checkClean(t *testing.T, root string) {
	t.Helper()
	rep, err := fsck.Check(testContext(t), fsck.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("after migration: %s", f)
	}
}

// checkMigrated checks the tree courierTree made, migrated.
func checkMigrated(t *testing.T, root string) {
	t.Helper()
	uids, h := uidsOf(t, root)
	if h.UIDValidity != 1234567890 {
		t.Errorf("INBOX UIDVALIDITY %d, want Courier's 1234567890", h.UIDValidity)
	}
	for base, want := range map[string]uint32{m1: 3, m2: 7, m3: 11} {
		if uids[base] != want {
			t.Errorf("%s has UID %d, want Courier's %d", base, uids[base], want)
		}
	}
	if _, ok := uids[m5]; ok {
		t.Errorf("the record of %s, whose file is gone, was carried over", m5)
	}
	if uids[m99] < 12 {
		t.Errorf("%s, which Courier had not numbered, has UID %d; want 12 or above", m99, uids[m99])
	}
	k, _, err := uidlist.ReadKeywords(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := "0 Work\n1 $Label1\n2 Junk\n"; string(k.Marshal()) != want {
		t.Errorf("dovecot-keywords %q, want %q", k.Marshal(), want)
	}
	for base, want := range map[string]string{m1: "cur/" + m1 + ":2,Sab", m2: "cur/" + m2 + ":2,RSc", m3: "new/" + m3} {
		if got := fileOf(t, root, base); got != want {
			t.Errorf("%s is %s, want %s", base, got, want)
		}
	}
	subs, err := maildir.ReadSubscriptions(root)
	if err != nil || !slices.Equal(subs, []string{"INBOX", "Sent"}) {
		t.Errorf("subscriptions %q (%v), want INBOX and Sent", subs, err)
	}

	sentDir := filepath.Join(root, ".Sent")
	uids, h = uidsOf(t, sentDir)
	if h.UIDValidity != 1111 || uids[sent] != 2 || h.NextUID != 4 {
		t.Errorf("Sent: UIDVALIDITY %d, next %d, UIDs %v; want 1111, 4 and %s at 2", h.UIDValidity, h.NextUID, uids, sent)
	}
	if got, want := fileOf(t, sentDir, sent), "cur/"+sent+":2,Sa"; got != want {
		t.Errorf("Sent: %s is %s, want %s", sent, got, want)
	}
	checkClean(t, root)
}

func TestCourier(t *testing.T) {
	root := courierTree(t)
	courier := courierFiles(t, root)
	res := run(t, Options{Root: root})
	if len(res.Warnings()) != 0 || res.Converted != 2 || res.Mailboxes != 2 {
		t.Errorf("warnings %v, %d of %d mailboxes converted; want none, 2 of 2", res.Warnings(), res.Converted, res.Mailboxes)
	}
	checkMigrated(t, root)
	if after := courierFiles(t, root); !maps.Equal(courier, after) {
		t.Errorf("Courier's files changed:\n%s", testfs.Diff(courier, after))
	}

	// Again: nothing changes.
	before := testfs.Snapshot(t, root)
	res = run(t, Options{Root: root})
	if len(res.Warnings()) != 0 || res.Converted != 0 {
		t.Errorf("second run: warnings %v, %d converted", res.Warnings(), res.Converted)
	}
	if after := testfs.Snapshot(t, root); !maps.Equal(before, after) {
		t.Errorf("the second run changed the tree:\n%s", testfs.Diff(before, after))
	}
}

func TestDryRun(t *testing.T) {
	root := courierTree(t)
	before := testfs.Snapshot(t, root)
	res := run(t, Options{Root: root, DryRun: true})
	if after := testfs.Snapshot(t, root); !maps.Equal(before, after) {
		t.Errorf("a dry run changed the tree:\n%s", testfs.Diff(before, after))
	}
	would := 0
	for _, s := range res.Steps {
		if strings.HasPrefix(s.Text, "would ") {
			would++
		}
	}
	if would != 5 || res.Converted != 2 {
		t.Errorf("%d steps say \"would\", %d mailboxes to convert; want 5 (subscriptions, two keyword and two UID conversions) and 2", would, res.Converted)
	}
}

// A migration that fails before dovecot-uidlist is written leaves
// Courier's files as they were, and the next run completes it.
func TestFailureMidway(t *testing.T) {
	root := courierTree(t)
	courier := courierFiles(t, root)
	// The uidlist's temporary file cannot be made: a non-empty directory
	// holds its name.
	obstacle := filepath.Join(root, uidlist.TempName)
	writeFile(t, filepath.Join(obstacle, "x"), "")
	if _, err := Run(testContext(t), Options{Root: root}); err == nil {
		t.Fatal("Run succeeded with dovecot-uidlist unwritable")
	}
	if _, err := os.Stat(filepath.Join(root, uidlist.FileName)); !os.IsNotExist(err) {
		t.Fatalf("dovecot-uidlist after the failure: %v", err)
	}
	if after := courierFiles(t, root); !maps.Equal(courier, after) {
		t.Errorf("Courier's files changed by the failed run")
	}
	if err := os.RemoveAll(obstacle); err != nil {
		t.Fatal(err)
	}
	res := run(t, Options{Root: root})
	if len(res.Warnings()) != 0 {
		t.Errorf("warnings %v", res.Warnings())
	}
	checkMigrated(t, root)
}

// Dovecot's (or Cistern's) files are Cistern's format: kept as they are.
func TestDovecotTree(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := maildir.Create(root, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "cur", m1+":2,Sa"), "Subject: x\n\nbody\n")
	writeFile(t, filepath.Join(root, uidlist.FileName), "3 V99 N5 G0123456789abcdef0123456789abcdef\n4 :"+m1+"\n")
	writeFile(t, filepath.Join(root, uidlist.KeywordsFileName), "0 Work\n")
	writeFile(t, filepath.Join(root, "dovecot.index.log"), "binary")
	before := testfs.Snapshot(t, root)
	res := run(t, Options{Root: root})
	if after := testfs.Snapshot(t, root); !maps.Equal(before, after) {
		t.Errorf("a Dovecot tree was changed")
	}
	if len(res.Warnings()) != 0 || res.Converted != 0 || !slices.ContainsFunc(res.Steps, func(s Step) bool { return strings.Contains(s.Text, "kept as it is") }) {
		t.Errorf("steps %v", res.Steps)
	}
	checkClean(t, root)
}

// A Courier tree that Cistern served before it was migrated has a
// dovecot-uidlist with Courier's UIDs (the store imports them) but no
// keywords yet: the migration converts the keywords and keeps the UIDs.
func TestServedBeforeMigration(t *testing.T) {
	root := courierTree(t)
	for _, dir := range []string{root, filepath.Join(root, ".Sent")} {
		mb, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mb.Sync(testContext(t)); err != nil {
			t.Fatal(err)
		}
		mb.Close()
	}
	res := run(t, Options{Root: root})
	if len(res.Warnings()) != 0 || !slices.ContainsFunc(res.Steps, func(s Step) bool { return strings.Contains(s.Text, "already has Courier's") }) {
		t.Errorf("steps %v", res.Steps)
	}
	uids, h := uidsOf(t, root)
	if h.UIDValidity != 1234567890 || uids[m1] != 3 || uids[m2] != 7 || uids[m3] != 11 {
		t.Errorf("UIDs %v, header %+v", uids, h)
	}
	if got := fileOf(t, root, m1); got != "cur/"+m1+":2,Sab" {
		t.Errorf("%s is %s", m1, got)
	}
}

// More keywords than letters: the first 26 in use are converted, the
// others reported.
func TestTooManyKeywords(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := maildir.Create(root, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "cur", m1+":2,S"), "Subject: x\n\nbody\n")
	writeFile(t, filepath.Join(root, uidlist.CourierFileName), "1 5 2\n1 "+m1+"\n")
	var list strings.Builder
	var idx []string
	for i := range 28 {
		fmt.Fprintf(&list, "kw%02d\n", i)
		idx = append(idx, fmt.Sprint(i))
	}
	list.WriteString("\n" + m1 + ":" + strings.Join(idx, " ") + "\n")
	writeFile(t, filepath.Join(root, CourierKeywordsDir, CourierKeywordsList), list.String())
	res := run(t, Options{Root: root})
	if w := res.Warnings(); len(w) != 2 || !strings.Contains(w[0].Text, "kw26") || !strings.Contains(w[1].Text, "kw27") {
		t.Errorf("warnings %v, want kw26 and kw27 reported", w)
	}
	if got := fileOf(t, root, m1); got != "cur/"+m1+":2,Sabcdefghijklmnopqrstuvwxyz" {
		t.Errorf("%s is %s", m1, got)
	}
}
