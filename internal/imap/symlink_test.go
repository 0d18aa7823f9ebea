package imap_test

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/maildir"
)

// Symbolic links inside a Maildir are never followed (issue 11, part 3):
// every user shares the service uid, so a user who can write into a
// Maildir could otherwise reach another user's mail, or any file, through
// a link.

// treeSum is every entry under dir (links not followed) with its type,
// size and content digest: equal sums mean nothing was read into a
// rename, a new file or a change.
func treeSum(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		line := rel + " " + d.Type().String()
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(data))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// messageFiles are the names in dir/new and dir/cur.
func messageFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{maildir.New, maildir.Cur} {
		es, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			out = append(out, sub+"/"+e.Name())
		}
	}
	return out
}

// TestSymlinkFolderToAnotherUser: a folder .evilbob that links to bob's
// Maildir is no folder for alice: not listed, not selectable, no STATUS,
// no APPEND, COPY, MOVE, RENAME or DELETE through it, and bob's files
// stay as they were.
func TestSymlinkFolderToAnotherUser(t *testing.T) {
	ts := startServer(t)
	bob := dialRaw(t, ts)
	bob.ok("LOGIN bob secret")
	msg := "Subject: for bob only\r\n\r\nBOB-SECRET-MARKER\r\n"
	fmt.Fprintf(bob.c, "b1 APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg)
	if _, tagged := bob.until("b1"); !strings.Contains(tagged, "OK") {
		t.Fatalf("bob's APPEND: %s", tagged)
	}
	bob.ok("LOGOUT")
	bobRoot := filepath.Join(ts.root, "bob", "Maildir")

	alice := dialRaw(t, ts)
	alice.ok("LOGIN alice secret")
	aliceRoot := filepath.Join(ts.root, "alice", "Maildir")
	mine := "Subject: alice's\r\n\r\nhello\r\n"
	fmt.Fprintf(alice.c, "a100 APPEND INBOX {%d+}\r\n%s\r\n", len(mine), mine)
	if _, tagged := alice.until("a100"); !strings.Contains(tagged, "OK") {
		t.Fatalf("alice's APPEND: %s", tagged)
	}
	if err := os.Symlink(bobRoot, filepath.Join(aliceRoot, ".evilbob")); err != nil {
		t.Fatal(err)
	}
	before := treeSum(t, bobRoot)

	lines := alice.ok(`LIST "" "*"`)
	for _, l := range lines {
		if strings.Contains(l, "evilbob") {
			t.Errorf("LIST shows the link folder: %q", l)
		}
	}
	for _, cmd := range []string{
		"SELECT evilbob",
		"EXAMINE evilbob",
		"STATUS evilbob (MESSAGES UIDNEXT)",
		"DELETE evilbob",
		"RENAME evilbob Mine",
	} {
		lines, tagged := alice.cmd("%s", cmd)
		if !strings.Contains(tagged, " NO") {
			t.Errorf("%s: %s, want NO", cmd, tagged)
		}
		for _, l := range lines {
			if strings.Contains(l, "BOB-SECRET-MARKER") {
				t.Errorf("%s: served bob's mail: %q", cmd, l)
			}
		}
	}
	into := "Subject: planted\r\n\r\nx\r\n"
	fmt.Fprintf(alice.c, "a200 APPEND evilbob {%d+}\r\n%s\r\n", len(into), into)
	if _, tagged := alice.until("a200"); !strings.Contains(tagged, " NO") {
		t.Errorf("APPEND into the link folder: %s, want NO", tagged)
	}
	alice.ok("SELECT INBOX")
	for _, cmd := range []string{"COPY 1 evilbob", "MOVE 1 evilbob"} {
		if _, tagged := alice.cmd("%s", cmd); !strings.Contains(tagged, " NO") {
			t.Errorf("%s: %s, want NO", cmd, tagged)
		}
	}
	if after := treeSum(t, bobRoot); after != before {
		t.Errorf("bob's Maildir changed through alice's link:\nbefore\n%s\nafter\n%s", before, after)
	}
	if !isLink(filepath.Join(aliceRoot, ".evilbob")) {
		t.Error("the link was removed or replaced; it should be left for cistern check to report")
	}
	// Bob still has exactly his message.
	if got := messageFiles(t, bobRoot); len(got) != 1 {
		t.Errorf("bob's message files %q, want one", got)
	}
}

// TestSymlinkMessageNotServed: a link in cur/ to a file outside the
// Maildir is no message (it gets no UID), and a message file replaced by
// a link after it got its UID is not read, and a flag change renames
// nothing outside: the file it pointed at is as it was.
func TestSymlinkMessageNotServed(t *testing.T) {
	ts := startServer(t)
	decoyDir := t.TempDir()
	decoy := filepath.Join(decoyDir, "passwd")
	if err := os.WriteFile(decoy, []byte("Subject: decoy\r\n\r\nDECOY-MARKER root:x:0:0\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alice := dialRaw(t, ts)
	alice.ok("LOGIN alice secret")
	root := filepath.Join(ts.root, "alice", "Maildir")
	for i := range 2 {
		m := fmt.Sprintf("Subject: %d\r\n\r\nreal body %d\r\n", i, i)
		fmt.Fprintf(alice.c, "a%d APPEND INBOX {%d+}\r\n%s\r\n", 100+i, len(m), m)
		if _, tagged := alice.until(fmt.Sprintf("a%d", 100+i)); !strings.Contains(tagged, "OK") {
			t.Fatalf("APPEND: %s", tagged)
		}
	}
	files := messageFiles(t, root)
	if len(files) != 2 {
		t.Fatalf("message files %q", files)
	}
	// A planted link, named as a message would be.
	if err := os.Symlink(decoy, filepath.Join(root, maildir.Cur, "1700000000.M1P1.evil:2,")); err != nil {
		t.Fatal(err)
	}
	lines := alice.ok("SELECT INBOX")
	if !contains(lines, "* 2 EXISTS") {
		t.Errorf("SELECT: %q, want 2 EXISTS (the link is no message)", lines)
	}
	// Message 2's file is swapped for a link after it got its UID.
	victim := filepath.Join(root, files[1])
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(decoy, victim); err != nil {
		t.Fatal(err)
	}
	decoyBefore := treeSum(t, decoyDir)
	for _, cmd := range []string{"FETCH 1:* (BODY.PEEK[] RFC822.SIZE)", "UID FETCH 1:* (BODY.PEEK[])", "STORE 1:* +FLAGS (\\Seen)", "FETCH 1:* (BODY[])", "SEARCH BODY DECOY-MARKER"} {
		lines, tagged := alice.cmd("%s", cmd)
		for _, l := range append(lines, tagged) {
			if strings.Contains(l, "DECOY-MARKER") || strings.Contains(l, "root:x") {
				t.Errorf("%s served the link's target: %q", cmd, l)
			}
		}
	}
	lines, _ = alice.cmd("SEARCH BODY DECOY-MARKER")
	if !contains(lines, "* SEARCH") {
		t.Errorf("SEARCH BODY DECOY-MARKER: %q, want nothing found", lines)
	}
	if after := treeSum(t, decoyDir); after != decoyBefore {
		t.Errorf("the link's target changed:\n%s\n%s", decoyBefore, after)
	}
	if !isLink(victim) && !isLink(filepath.Join(root, maildir.Cur, "1700000000.M1P1.evil:2,")) {
		t.Error("the links were renamed")
	}
	// The real first message is still served.
	lines = alice.ok("FETCH 1 (BODY.PEEK[])")
	if !strings.Contains(strings.Join(lines, "\n"), "real body 0") {
		t.Errorf("FETCH 1: %q, want the real message", lines)
	}
}

// TestSymlinkCurNotMaildir: a folder whose cur/ links to another user's
// cur/ is no Maildir: not listed, not selectable.
func TestSymlinkCurNotMaildir(t *testing.T) {
	ts := startServer(t)
	bob := dialRaw(t, ts)
	bob.ok("LOGIN bob secret")
	msg := "Subject: bob\r\n\r\nBOB-SECRET-MARKER\r\n"
	fmt.Fprintf(bob.c, "b1 APPEND INBOX (\\Seen) {%d+}\r\n%s\r\n", len(msg), msg)
	if _, tagged := bob.until("b1"); !strings.Contains(tagged, "OK") {
		t.Fatalf("bob's APPEND: %s", tagged)
	}
	bobRoot := filepath.Join(ts.root, "bob", "Maildir")

	alice := dialRaw(t, ts)
	alice.ok("LOGIN alice secret")
	alice.ok("CREATE Work")
	work := filepath.Join(ts.root, "alice", "Maildir", ".Work")
	if err := os.RemoveAll(filepath.Join(work, maildir.Cur)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(bobRoot, maildir.Cur), filepath.Join(work, maildir.Cur)); err != nil {
		t.Fatal(err)
	}
	before := treeSum(t, bobRoot)
	lines := alice.ok(`LIST "" "*"`)
	for _, l := range lines {
		if strings.HasSuffix(l, " Work") {
			t.Errorf("LIST shows the folder whose cur/ is a link: %q", l)
		}
	}
	for _, cmd := range []string{"SELECT Work", "STATUS Work (MESSAGES)"} {
		lines, tagged := alice.cmd("%s", cmd)
		if !strings.Contains(tagged, " NO") {
			t.Errorf("%s: %s %q, want NO", cmd, tagged, lines)
		}
	}
	if after := treeSum(t, bobRoot); after != before {
		t.Errorf("bob's Maildir changed:\n%s\n%s", before, after)
	}
}

func isLink(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}
