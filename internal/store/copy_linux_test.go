package store

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/maildir"
)

// A message file another user owns cannot be hard-linked by the daemon's
// user where the kernel protects hard links (fs.protected_hardlinks):
// COPY copies it instead of failing (stageCopy). The test takes another filesystem
// identity on its thread (setfsuid), which needs root.
func TestCopyIntoFileOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		// Only root can take another filesystem uid; CI runs as root.
		t.Skip("needs root to act as another user (setfsuid)")
	}
	// t.TempDir's directories are private to root: the other user could
	// not even reach the files.
	base, err := os.MkdirTemp("", "cistern-copy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
	for _, d := range []string{src, dst} {
		if err := maildir.Create(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
		for _, sub := range []string{"tmp", "new", "cur"} {
			if err := os.Chmod(filepath.Join(d, sub), 0o777); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A root-owned message the other user may read but not write.
	path := filepath.Join(src, "cur", "1.M1P1.host,S=4,W=4:2,S")
	if err := os.WriteFile(path, []byte("abcd"), 0o644); err != nil {
		t.Fatal(err)
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const other = 65534
	unix.Setfsuid(other)
	unix.Setfsgid(other)
	defer func() {
		unix.Setfsuid(0)
		unix.Setfsgid(0)
	}()
	probe := filepath.Join(dst, "tmp", "probe")
	if err := unix.Link(path, probe); !errors.Is(err, unix.EPERM) {
		os.Remove(probe)
		t.Fatalf("link as uid %d: %v; want EPERM (is fs.protected_hardlinks 1?)", other, err)
	}
	s, err := stageCopy(path, dst, "1.M1P1.host,S=4,W=4", 0)
	if err != nil {
		t.Fatalf("stageCopy: %v", err)
	}
	defer s.Discard()
	if err := maildir.Publish([]*maildir.Staged{s}); err != nil {
		t.Fatal(err)
	}
	name := s.Filename()
	if name != "1.M1P1.host,S=4,W=4:2," {
		t.Errorf("the copy is %q: it did not keep its base name", name)
	}
	got, err := os.ReadFile(filepath.Join(dst, "cur", name))
	if err != nil || string(got) != "abcd" {
		t.Fatalf("copy holds %q, %v", got, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dst, "cur", name), &st); err != nil || st.Uid != other || st.Nlink != 1 {
		t.Errorf("copy: owner %d, links %d, %v; want a file of its own owned by %d", st.Uid, st.Nlink, err, other)
	}
}
