package testfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFill: on a Small file system a write fails with ENOSPC once Fill
// returns, an empty file can still be made, and after free a block can
// be written again.
func TestFill(t *testing.T) {
	mnt := Small(t)
	free := Fill(t, mnt)
	err := os.WriteFile(filepath.Join(mnt, "after-fill"), make([]byte, probeSize), 0o600)
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("a write after Fill: %v, want ENOSPC", err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "empty"), nil, 0o600); err != nil {
		t.Errorf("an empty file after Fill: %v (inodes must remain)", err)
	}
	free()
	if err := os.WriteFile(filepath.Join(mnt, "after-free"), make([]byte, probeSize), 0o600); err != nil {
		t.Errorf("a write after free: %v", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != 0xEF53 {
		t.Errorf("file system magic %#x, want ext4's", st.Type)
	}
}

// TestUnprivileged: the rest of the test runs as nobody, where a
// directory of mode 000 cannot be read.
func TestUnprivileged(t *testing.T) {
	if !Unprivileged(t) {
		return
	}
	if os.Geteuid() == 0 {
		t.Fatal("still root")
	}
	dir := filepath.Join(t.TempDir(), "closed")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if _, err := os.ReadDir(dir); !errors.Is(err, os.ErrPermission) {
		t.Errorf("reading a directory of mode 000: %v, want a permission error", err)
	}
}

func TestRunPattern(t *testing.T) {
	for name, want := range map[string]string{
		"TestA":          "^TestA$",
		"TestA/b_c":      "^TestA$/^b_c$",
		"TestA/x.y(1)/z": `^TestA$/^x\.y\(1\)$/^z$`,
	} {
		if got := runPattern(name); got != want {
			t.Errorf("runPattern(%q) = %q, want %q", name, got, want)
		}
	}
}
