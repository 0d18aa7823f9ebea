package imap_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// IDLE against changes made outside the server: files written, renamed
// and removed in the Maildir by another program. The Watcher must notice
// each and the session must be told while it idles.

func TestIdleForeignChanges(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.appendRaw("INBOX", "", testMessage("one", "x"))
	rc.appendRaw("INBOX", `(\Seen)`, testMessage("two", "y"))
	m := rc.selectRaw("INBOX")
	dir := ts.mailDir("alice")
	files := diskFiles(t, dir)
	ids := uidList(t, dir)
	var first string // file name of UID 1
	for base, name := range files {
		if ids[base] == 1 {
			first = name
		}
	}
	if first == "" {
		t.Fatalf("no file for UID 1 in %v", files)
	}
	tag := rc.idle()

	// A delivery into new/ by another program.
	msg := testMessage("dropped in", "z")
	if err := os.WriteFile(filepath.Join(dir, "new", "1700000000.M1P999Q1.elsewhere"), []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	rc.waitFor("EXISTS of the dropped file", func(l string) bool {
		if err := m.apply(l); err != nil {
			t.Fatal(err)
		}
		return l == "* 3 EXISTS"
	})

	// A flag change by rename in cur/.
	renamed := baseName(first) + ":2,FS"
	if err := os.Rename(filepath.Join(dir, "cur", first), filepath.Join(dir, "cur", renamed)); err != nil {
		t.Fatal(err)
	}
	rc.waitFor("FETCH of the renamed file", func(l string) bool {
		if err := m.apply(l); err != nil {
			t.Fatal(err)
		}
		return l == `* 1 FETCH (FLAGS (\Flagged \Seen \Recent) UID 1)`
	})

	// A removal.
	if err := os.Remove(filepath.Join(dir, "cur", renamed)); err != nil {
		t.Fatal(err)
	}
	rc.waitFor("EXPUNGE of the removed file", func(l string) bool {
		if err := m.apply(l); err != nil {
			t.Fatal(err)
		}
		return l == "* 1 EXPUNGE"
	})
	m.applyAll(t, "DONE", rc.done(tag))
	m.fill(t, rc)
	if len(m.uids) != 2 || m.uids[0] != 2 || m.uids[1] != 3 {
		t.Fatalf("after IDLE: %v", m)
	}
	lines := rc.ok("FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	if len(lines) != 1 || !strings.Contains(lines[0], "Subject: dropped in") {
		t.Errorf("the dropped message: %q", lines)
	}
	if got := fmt.Sprint(m.expunged); got != "[1]" {
		t.Errorf("expunged %s", got)
	}
}

// TestIdleOtherSession: another session's STORE, APPEND and EXPUNGE are
// pushed as they happen.
func TestIdleOtherSession(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	a.appendRaw("INBOX", "", testMessage("one", "x"))
	a.appendRaw("INBOX", "", testMessage("two", "x"))
	a.selectRaw("INBOX")
	b := loginRaw(t, ts, "alice")
	m := b.selectRaw("INBOX")
	tag := b.idle()
	wait := func(what, want string) {
		t.Helper()
		b.waitFor(what, func(l string) bool {
			if err := m.apply(l); err != nil {
				t.Fatal(err)
			}
			return l == want
		})
	}
	a.ok(`STORE 2 +FLAGS.SILENT (\Deleted)`)
	wait("STORE", `* 2 FETCH (FLAGS (\Deleted) UID 2)`)
	a.appendRaw("INBOX", "", testMessage("three", "x"))
	wait("APPEND", "* 3 EXISTS")
	a.ok("EXPUNGE")
	wait("EXPUNGE", "* 2 EXPUNGE")
	m.applyAll(t, "DONE", b.done(tag))
	m.fill(t, b)
	if fmt.Sprint(m.uids) != "[1 3]" {
		t.Errorf("B: %v", m)
	}
}
