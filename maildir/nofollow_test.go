package maildir

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenMessageAtFollowsNoLink: a link as the message, a link as cur/
// and a FIFO are refused (the FIFO without hanging); a regular file is
// opened.
func TestOpenMessageAtFollowsNoLink(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Maildir")
	if err := Create(dir, 0); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("OUTSIDE"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, Cur, "good"), []byte("GOOD"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, Cur, "link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, Cur, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, New)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, Cur), filepath.Join(dir, New)); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := OpenMessageAt(d, Cur, "good")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct {
		sub, name string
		want      error
	}{
		{Cur, "link", ErrNotRegular},
		{Cur, "fifo", ErrNotRegular},
		{New, "good", ErrSymlink},
		{Cur, "missing", os.ErrNotExist},
	} {
		f, err := OpenMessageAt(d, tc.sub, tc.name)
		if err == nil {
			f.Close()
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s/%s: %v, want %v", tc.sub, tc.name, err, tc.want)
		}
	}
	if f, err := OpenRegular(filepath.Join(dir, Cur, "link")); !errors.Is(err, ErrNotRegular) {
		if f != nil {
			f.Close()
		}
		t.Errorf("OpenRegular of a link: %v, want ErrNotRegular", err)
	}
}

// TestResolveUnknown: where the filesystem gives no d_type, the listing
// asks lstat, so a link is known as one.
func TestResolveUnknown(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	fd, err := openDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	l := &Listing{Names: []string{"file", "link", "dir", "gone"}, Types: make([]uint8, 4)}
	resolveUnknown(fd, l)
	want := []uint8{syscall.DT_REG, syscall.DT_LNK, syscall.DT_DIR, syscall.DT_UNKNOWN}
	if !slices.Equal(l.Types, want) {
		t.Errorf("types %v, want %v", l.Types, want)
	}
}

// TestLinkFoldersAreNoFolders: a folder that is a link, and one whose
// cur/ is a link, are not listed (and are told to the caller); neither
// is a Maildir; List does not read a cur/ that is a link; the root may be
// reached through a link.
func TestLinkFoldersAreNoFolders(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := Create(real, 0); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "Maildir")
	if err := os.Symlink(real, root); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	if err := Create(other, 0); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Good", "Half"} {
		if err := CreateFolder(root, []string{f}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(root, ".Half", Cur)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(other, Cur), filepath.Join(root, ".Half", Cur)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, filepath.Join(root, ".Link")); err != nil {
		t.Fatal(err)
	}
	var skipped []string
	got, err := ListFoldersSkipping(root, func(name string, why error) {
		if !errors.Is(why, ErrSymlink) {
			t.Errorf("%s skipped for %v, want ErrSymlink", name, why)
		}
		skipped = append(skipped, name)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, [][]string{{"Good"}}, slices.Equal) {
		t.Errorf("folders %q, want only Good", got)
	}
	slices.Sort(skipped)
	if !slices.Equal(skipped, []string{".Half", ".Link"}) {
		t.Errorf("skipped %q", skipped)
	}
	if !IsMaildir(root) {
		t.Error("a root reached through a link is a Maildir")
	}
	if IsMaildir(filepath.Join(root, ".Half")) {
		t.Error("a Maildir whose cur/ is a link")
	}
	if err := CheckFolder(root, ".Link"); !errors.Is(err, ErrSymlink) {
		t.Errorf("CheckFolder of a link: %v", err)
	}
	if _, err := List(filepath.Join(root, ".Half", Cur), ListOptions{}); err == nil {
		t.Error("List read a cur/ that is a link")
	}
	if err := CreateFolder(root, []string{"Link"}); !errors.Is(err, ErrSymlink) {
		t.Errorf("CreateFolder over a link: %v, want ErrSymlink", err)
	}
	if err := RenameFolder(root, []string{"Link"}, []string{"Mine"}); !errors.Is(err, ErrFolderNotFound) {
		t.Errorf("RenameFolder of a link: %v, want ErrFolderNotFound", err)
	}
	if err := DeleteFolder(root, []string{"Link"}); err == nil {
		t.Error("DeleteFolder of a link succeeded")
	}
	if !IsMaildir(other) {
		t.Error("the link's target was changed")
	}
}
