package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The three subdirectories of a Maildir.
const (
	New = "new" // delivered, not yet seen by a mail reader
	Cur = "cur" // seen by a mail reader; flags live in the file name
	Tmp = "tmp" // files being written; never read as messages
)

// DefaultDirPerm is the mode Create uses when given 0: only the owner
// may read mail.
const DefaultDirPerm os.FileMode = 0o700

// Create makes a Maildir at path: the directory itself (and any missing
// parents) and its tmp/, new/ and cur/ subdirectories, with mode perm
// (0 means DefaultDirPerm; the umask applies). Parts that exist already
// are kept, so Create also completes a half-made Maildir. Every directory
// whose entries Create changed is fsynced, so a Maildir that Create
// returned from survives a crash.
func Create(path string, perm os.FileMode) error {
	if perm == 0 {
		perm = DefaultDirPerm
	}
	if _, err := mkdirSynced(path, perm); err != nil {
		return err
	}
	changed := false
	for _, sub := range [...]string{Tmp, New, Cur} {
		made, err := mkdirOne(filepath.Join(path, sub), perm)
		if err != nil {
			return err
		}
		changed = changed || made
	}
	if changed {
		return SyncDir(path)
	}
	return nil
}

// mkdirOne makes one directory; made is false when it existed already.
// An existing non-directory is an error, and so is a symbolic link
// (ErrSymlink: a Maildir's directories are never links, nofollow.go).
func mkdirOne(path string, perm os.FileMode) (made bool, err error) {
	return mkdir(path, perm, os.Lstat)
}

// mkdirFollowing is mkdirOne for a Maildir's root and the directories
// above it, which may be links the administrator made.
func mkdirFollowing(path string, perm os.FileMode) (made bool, err error) {
	return mkdir(path, perm, os.Stat)
}

func mkdir(path string, perm os.FileMode, stat func(string) (os.FileInfo, error)) (made bool, err error) {
	err = os.Mkdir(path, perm)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrExist) {
		fi, serr := stat(path)
		if serr == nil && fi.IsDir() {
			return false, nil
		}
		if serr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return false, &os.PathError{Op: "mkdir", Path: path, Err: ErrSymlink}
		}
		if serr == nil {
			serr = &os.PathError{Op: "mkdir", Path: path, Err: unix.ENOTDIR}
		}
		return false, serr
	}
	return false, err
}

// mkdirSynced makes path and its missing parents, fsyncing the parent of
// every directory it made.
func mkdirSynced(path string, perm os.FileMode) (made bool, err error) {
	made, err = mkdirFollowing(path, perm)
	if errors.Is(err, fs.ErrNotExist) {
		parent := filepath.Dir(path)
		if parent == path {
			return false, err
		}
		if _, err = mkdirSynced(parent, perm); err != nil {
			return false, err
		}
		made, err = mkdirFollowing(path, perm)
	}
	if err != nil || !made {
		return made, err
	}
	return true, SyncDir(filepath.Dir(path))
}

// IsMaildir reports whether path is a directory holding the directories
// tmp/, new/ and cur/ (none of them a symbolic link: a Maildir whose cur/
// is a link is not a Maildir; path itself may be reached through links,
// see nofollow.go). A Maildir
// that cannot be searched (CheckMaildir's permission error) is not one
// for IsMaildir: callers that must tell "missing" from "cannot be used"
// call CheckMaildir.
func IsMaildir(path string) bool { return CheckMaildir(path) == nil }

// ErrNotMaildir: a path is missing, or not a directory holding tmp/,
// new/ and cur/.
var ErrNotMaildir = errors.New("maildir: not a Maildir")

// CheckMaildir returns nil when path is a Maildir (see IsMaildir), an
// error wrapping ErrNotMaildir when it is not one, and an error matching
// fs.ErrPermission when the process may not look inside it (a directory
// of mode 000, or one owned by another user): such a Maildir exists for
// every other reader, so it is neither treated as missing nor silently
// replaced by another.
func CheckMaildir(path string) error {
	for _, sub := range [...]string{Cur, New, Tmp} {
		fi, err := os.Lstat(filepath.Join(path, sub))
		if errors.Is(err, fs.ErrPermission) {
			return err
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNotMaildir, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: %w: %s", ErrNotMaildir, ErrSymlink, filepath.Join(path, sub))
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: %s is not a directory", ErrNotMaildir, filepath.Join(path, sub))
		}
	}
	return nil
}

// NoSpace reports whether err says that a write found no room: the
// filesystem is full (ENOSPC) or the owner's disk quota is used up
// (EDQUOT). Neither is the Maildir++ quota (maildirsize); both pass when
// space is freed, so callers answer with a temporary failure.
func NoSpace(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}

// SyncDir makes the entries of the directory at path durable: after it
// returns, files created, renamed or removed in it before the call
// survive a crash. It opens the directory read-only, fsyncs and closes
// it; EINTR is retried.
func SyncDir(path string) error {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	for {
		err = unix.Fsync(fd)
		if err != unix.EINTR {
			break
		}
	}
	cerr := unix.Close(fd)
	if err != nil {
		return &os.PathError{Op: "fsync", Path: path, Err: err}
	}
	if cerr != nil && cerr != unix.EINTR {
		return &os.PathError{Op: "close", Path: path, Err: cerr}
	}
	return nil
}

// retryEINTR calls f until it returns anything but EINTR.
func retryEINTR(f func() error) error {
	for {
		err := f()
		if err != unix.EINTR {
			return err
		}
	}
}
