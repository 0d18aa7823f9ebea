package imap_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// MOVE with three sessions of one user (RFC 6851): A moves from INBOX to
// Other; B, on INBOX, hears of the expunges; C, on Other, of the new
// messages with their flags and keywords. On disk each message was
// renamed: the same inode, now in Other's cur/, no longer in INBOX.

var reCopyUID = regexp.MustCompile(`^\* OK \[COPYUID (\d+) (\S+) (\S+)\] `)

// inodes maps each message file's base name in dir (new/ and cur/) to
// its inode number.
func inodes(t *testing.T, dir string) map[string]uint64 {
	t.Helper()
	out := make(map[string]uint64)
	for base, name := range diskFiles(t, dir) {
		sub := "cur"
		if !strings.Contains(name, ":") {
			sub = "new"
		}
		fi, err := os.Stat(filepath.Join(dir, sub, name))
		if err != nil {
			t.Fatal(err)
		}
		out[base] = fi.Sys().(*syscall.Stat_t).Ino
	}
	return out
}

func TestMoveThreeSessions(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	a.ok("CREATE Other")
	a.appendRaw("Other", "", testMessage("already there", "text"))
	for i, flags := range []string{`(\Seen)`, `(\Flagged $Work)`, "", `(\Answered)`} {
		if uid := a.appendRaw("INBOX", flags, testMessage("msg "+string(rune('1'+i)), "text")); uid != uint32(i+1) {
			t.Fatalf("APPEND %d: UID %d", i+1, uid)
		}
	}
	a.selectRaw("INBOX")
	b := loginRaw(t, ts, "alice")
	mb := b.selectRaw("INBOX")
	c := loginRaw(t, ts, "alice")
	mc := c.selectRaw("Other")
	inbox, other := ts.mailDir("alice"), filepath.Join(ts.mailDir("alice"), ".Other")
	before := inodes(t, inbox)
	uidsBefore := uidList(t, inbox)

	// A: COPYUID first, then the expunges, then the tagged OK; A took
	// the four messages as recent, and two are gone.
	lines := a.ok("UID MOVE 2:3 Other")
	if len(lines) != 4 || !reCopyUID.MatchString(lines[0]) || lines[1] != "* 3 EXPUNGE" || lines[2] != "* 2 EXPUNGE" || lines[3] != "* 2 RECENT" {
		t.Fatalf("A's MOVE: %q", lines)
	}
	m := reCopyUID.FindStringSubmatch(lines[0])
	if m[2] != "2:3" || m[3] != "2:3" {
		t.Errorf("COPYUID %s %s, want 2:3 2:3", m[2], m[3])
	}

	// B hears of the expunges at NOOP.
	mb.applyAll(t, "B NOOP", b.ok("NOOP"))
	if !slices.Equal(mb.uids, []uint32{1, 4}) || !slices.Equal(slices.Sorted(slices.Values(mb.expunged)), []uint32{2, 3}) {
		t.Errorf("B after NOOP: %v, told expunged %v", mb, mb.expunged)
	}
	// C hears of the new messages, with their flags.
	lines = c.ok("NOOP")
	if !slices.Contains(lines, "* 3 EXISTS") {
		t.Errorf("C's NOOP: %q, want * 3 EXISTS", lines)
	}
	mc.applyAll(t, "C NOOP", lines)
	mc.fill(t, c)
	if !slices.Equal(mc.uids, []uint32{1, 2, 3}) || !slices.Equal(mc.flags[1], []string{"$Work", `\Flagged`}) || len(mc.flags[2]) != 0 {
		t.Errorf("C after NOOP: %v", mc)
	}
	if got := c.ok("UID FETCH 2:3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])"); len(got) != 2 ||
		!strings.Contains(got[0], "Subject: msg 2") || !strings.Contains(got[1], "Subject: msg 3") {
		t.Errorf("C's messages: %q", got)
	}
	if got := truth(t, ts); !slices.Equal(got.uids, []uint32{1, 4}) {
		t.Errorf("INBOX holds %v", got.uids)
	}

	// On disk: renamed, not copied.
	after := inodes(t, other)
	moved := 0
	for base, uid := range uidsBefore {
		if uid != 2 && uid != 3 {
			continue
		}
		moved++
		if ino, ok := after[base]; !ok || ino != before[base] {
			t.Errorf("UID %d (%s): inode %d in Other, %d was in INBOX (present: %v)", uid, base, ino, before[base], ok)
		}
		if _, ok := diskFiles(t, inbox)[base]; ok {
			t.Errorf("UID %d (%s) is still in INBOX", uid, base)
		}
		if got := uidList(t, other)[base]; got != uid {
			t.Errorf("%s has UID %d in Other's uidlist, want %d", base, got, uid)
		}
	}
	if moved != 2 {
		t.Fatalf("found %d of the moved messages in INBOX's uidlist", moved)
	}
}

// TestMoveAcrossFilesystems: a target folder on another filesystem (a
// tmpfs mounted over it) is moved into by copy and expunge, with the
// same answer. Mounting needs root.
func TestMoveAcrossFilesystems(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs as the other filesystem")
	}
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	a.ok("CREATE Other")
	other := filepath.Join(ts.mailDir("alice"), ".Other")
	if err := syscall.Mount("tmpfs", other, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(other, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", other, err)
		}
	})
	for _, d := range []string{"new", "cur", "tmp"} {
		if err := os.Mkdir(filepath.Join(other, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(other, "maildirfolder"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a.appendRaw("INBOX", `(\Seen $Work)`, testMessage("far away", "text"))
	a.appendRaw("INBOX", "", testMessage("stays", "text"))
	a.selectRaw("INBOX")
	lines := a.ok("MOVE 1 Other")
	if len(lines) != 3 || !reCopyUID.MatchString(lines[0]) || lines[1] != "* 1 EXPUNGE" || lines[2] != "* 1 RECENT" {
		t.Fatalf("MOVE: %q", lines)
	}
	c := loginRaw(t, ts, "alice")
	mc := c.selectRaw("Other")
	if !slices.Equal(mc.uids, []uint32{1}) || !slices.Equal(mc.flags[0], []string{"$Work", `\Seen`}) {
		t.Errorf("Other: %v", mc)
	}
	if got := truth(t, ts); !slices.Equal(got.uids, []uint32{2}) {
		t.Errorf("INBOX holds %v", got.uids)
	}
	if n := len(diskFiles(t, ts.mailDir("alice"))); n != 1 {
		t.Errorf("INBOX has %d files", n)
	}
}
