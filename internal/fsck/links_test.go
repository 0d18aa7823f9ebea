package fsck

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/maildir"
)

// linkedTree is a root with every kind of symbolic link inside: a folder
// that links to another Maildir, a folder whose cur/ links to that
// Maildir's cur/, and message links in INBOX's cur/ and new/ to a file
// outside. It returns the root and the directory holding the targets.
func linkedTree(t *testing.T) (root, outside string) {
	t.Helper()
	root = newRoot(t)
	put(t, root, "cur", "1700000001.M1P1Q1.test:2,S")
	outside = t.TempDir()
	other := filepath.Join(outside, "Other")
	if err := maildir.Create(other, 0o700); err != nil {
		t.Fatal(err)
	}
	put(t, other, "cur", "1700000009.M9P9Q9.other:2,S")
	writeFile(t, filepath.Join(outside, "passwd"), "root:x:0:0\n")
	for _, l := range [][2]string{
		{other, filepath.Join(root, ".evil")},
		{filepath.Join(outside, "passwd"), filepath.Join(root, "cur", "1700000002.M2P1Q2.link:2,")},
		{filepath.Join(outside, "passwd"), filepath.Join(root, "new", "1700000003.M3P1Q3.link")},
	} {
		if err := os.Symlink(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	half := newFolder(t, root, "Half")
	if err := os.Remove(filepath.Join(half, "cur")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(other, "cur"), filepath.Join(half, "cur")); err != nil {
		t.Fatal(err)
	}
	return root, outside
}

func symlinkPaths(rep *Report) []string {
	var out []string
	for _, f := range rep.Findings {
		if f.Kind == Symlink {
			out = append(out, f.Path)
		}
	}
	slices.Sort(out)
	return out
}

// TestSymlinks: check reports every link inside the Maildir and follows
// none; repair moves them into cistern-links/ of the root, leaves what
// they point at as it was, and the tree is clean afterwards.
func TestSymlinks(t *testing.T) {
	root, outside := linkedTree(t)
	want := []string{".Half/cur", ".evil", "cur/1700000002.M2P1Q2.link:2,", "new/1700000003.M3P1Q3.link"}
	before := testfs.Snapshot(t, outside)

	rep := check(t, Options{Root: root})
	if got := symlinkPaths(rep); !slices.Equal(got, want) {
		t.Fatalf("symlink findings %q, want %q", got, want)
	}
	if slices.Contains(rep.Mailboxes, "evil") || slices.Contains(rep.Mailboxes, "Half") {
		t.Errorf("mailboxes %q: a link was checked as a mailbox", rep.Mailboxes)
	}
	if rep.Messages != 1 {
		t.Errorf("%d messages, want 1: the links are none", rep.Messages)
	}

	actions := repair(t, Options{Root: root}, rep)
	moved := 0
	for _, a := range actions {
		if strings.Contains(a.Text, "symbolic link") {
			moved++
		}
	}
	if moved != len(want) {
		t.Errorf("%d links moved aside, want %d", moved, len(want))
	}
	for _, p := range want {
		if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("%s still there after the repair (%v)", p, err)
		}
	}
	aside, err := os.ReadDir(filepath.Join(root, LinksDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range aside {
		if e.Type()&os.ModeSymlink == 0 {
			t.Errorf("%s in %s is not a link", e.Name(), LinksDir)
		}
	}
	if len(aside) != len(want) {
		t.Errorf("%d entries in %s, want %d", len(aside), LinksDir, len(want))
	}
	if after := testfs.Snapshot(t, outside); !maps.Equal(before, after) {
		t.Errorf("the links' targets changed:\n%s", testfs.Diff(before, after))
	}
	if got := symlinkPaths(check(t, Options{Root: root})); len(got) != 0 {
		t.Errorf("after the repair: %q", got)
	}
}

// TestSymlinkRoot: a root whose cur/ is a link is no Maildir, and the
// error says why; a root reached through a link is checked.
func TestSymlinkRoot(t *testing.T) {
	root := newRoot(t)
	link := filepath.Join(t.TempDir(), "Maildir")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	check(t, Options{Root: link})

	other := newRoot(t)
	if err := os.Remove(filepath.Join(root, "cur")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(other, "cur"), filepath.Join(root, "cur")); err != nil {
		t.Fatal(err)
	}
	_, err := Check(testContext(t), Options{Root: root})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Check of a root whose cur/ is a link: %v", err)
	}
}
