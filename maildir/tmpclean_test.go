package maildir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCleanTmp ages files by their mtime (os.Chtimes) only: a file's
// ctime cannot be set, it is always the real time of the last change. To
// make ctime old too, the test passes a now far in the future, and keeps
// a file young by setting its mtime in the future as well.
func TestCleanTmp(t *testing.T) {
	dir := newMaildir(t)
	tmp := filepath.Join(dir, Tmp)
	real := time.Now()
	files := []struct {
		name  string
		mtime time.Time
	}{
		{"old1", real.Add(-40 * time.Hour)},
		{"old2", real.Add(-100 * 24 * time.Hour)},
		{"young", real.Add(10 * time.Hour)},
	}
	for _, f := range files {
		p := filepath.Join(tmp, f.name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, f.mtime, f.mtime); err != nil {
			t.Fatal(err)
		}
	}
	// Not regular files: kept whatever their age.
	if err := os.Mkdir(filepath.Join(tmp, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("old1", filepath.Join(tmp, "link")); err != nil {
		t.Fatal(err)
	}
	old := unix.NsecToTimespec(real.Add(-40 * time.Hour).UnixNano())
	for _, p := range []string{"subdir", "link"} {
		err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(tmp, p), []unix.Timespec{old, old}, unix.AT_SYMLINK_NOFOLLOW)
		if err != nil {
			t.Fatal(err)
		}
	}

	// At the real time, the ctimes are fresh: nothing goes, although two
	// mtimes are old.
	n, err := CleanTmp(dir, real)
	if err != nil || n != 0 {
		t.Fatalf("CleanTmp(now) = %d, %v, want 0", n, err)
	}

	// 40 hours on, every ctime is old; old1 and old2 have old mtimes, young
	// has an mtime of only 30 hours before then.
	n, err = CleanTmp(dir, real.Add(40*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("CleanTmp(now+40h) = %d, %v, want 2", n, err)
	}
	if got, want := dirNames(t, tmp), []string{"link", "subdir", "young"}; !slices.Equal(got, want) {
		t.Errorf("tmp/ holds %v, want %v", got, want)
	}

	// The boundary: exactly StaleTmpAge old is not yet stale.
	n, err = CleanTmp(dir, real.Add(10*time.Hour+StaleTmpAge))
	if err != nil || n != 0 {
		t.Errorf("at the boundary: %d, %v, want 0", n, err)
	}
	n, err = CleanTmp(dir, real.Add(10*time.Hour+StaleTmpAge+time.Second))
	if err != nil || n != 1 {
		t.Errorf("past the boundary: %d, %v, want 1", n, err)
	}
}

func TestCleanTmpMissing(t *testing.T) {
	_, err := CleanTmp(filepath.Join(t.TempDir(), "missing"), time.Now())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want not exist", err)
	}
}
