package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Symbolic links inside a Maildir are never followed. Every user of a
// server usually shares its uid, so a link is a way out of one's own
// Maildir: a folder .x that links to another user's Maildir, a message
// file that links to /etc/passwd. A link in new/ or cur/ is not a
// message, a link named like a folder is not a folder, and a Maildir
// whose new/, cur/ or tmp/ is a link is not a Maildir. The one link that
// is followed is the path leading to an account's root: the
// administrator made it (a home directory's Maildir pointing at another
// disk), and no user writes above their Maildir.

// ErrNotRegular: a message path names something that is not a regular
// file: a symbolic link (never followed), a directory, a FIFO or a
// device.
var ErrNotRegular = errors.New("maildir: not a regular file")

// ErrSymlink: a folder, or a Maildir's new/, cur/ or tmp/, is a symbolic
// link, which is never followed.
var ErrSymlink = errors.New("maildir: a symbolic link, not followed")

// openAt opens name relative to dirfd with flags and O_CLOEXEC,
// retrying EINTR.
func openAt(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// OpenSubdirAt opens the directory sub (New, Cur or Tmp, or a folder
// name) under the directory open as dirfd, without following a symbolic
// link: a link gives an error wrapping ErrSymlink.
func OpenSubdirAt(dirfd int, sub string) (int, error) {
	fd, err := openAt(dirfd, sub, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err == nil {
		return fd, nil
	}
	if err == unix.ELOOP || err == unix.ENOTDIR && isLinkAt(dirfd, sub) {
		return -1, &os.PathError{Op: "open", Path: sub, Err: fmt.Errorf("%w: %w", ErrSymlink, err)}
	}
	return -1, &os.PathError{Op: "open", Path: sub, Err: err}
}

func isLinkAt(dirfd int, name string) bool {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// OpenMessageAt opens the message file sub/name of the Maildir whose
// directory is open as dir, read-only, following no symbolic link: sub
// must be a directory and name a regular file, both below dir itself.
// Because it goes from the open directory, a Maildir renamed away or
// replaced by a link after dir was opened is never the one read. A link
// or another non-regular file gives an error wrapping ErrNotRegular
// (sub a link: ErrSymlink); a missing file one matching fs.ErrNotExist.
func OpenMessageAt(dir *os.File, sub, name string) (*os.File, error) {
	subfd, err := OpenSubdirAt(int(dir.Fd()), sub)
	if err != nil {
		return nil, err
	}
	defer unix.Close(subfd)
	return openRegularAt(subfd, name, filepath.Join(dir.Name(), sub, name))
}

// OpenRegular opens the file at path read-only without following a
// symbolic link as its last component: a link, or anything else that is
// not a regular file, gives an error wrapping ErrNotRegular.
func OpenRegular(path string) (*os.File, error) {
	return openRegularAt(unix.AT_FDCWD, path, path)
}

func openRegularAt(dirfd int, name, path string) (*os.File, error) {
	// O_NONBLOCK: opening a FIFO someone put there must not hang; it has
	// no effect on a regular file.
	fd, err := openAt(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err == unix.ELOOP {
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: a symbolic link", ErrNotRegular)}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// OpenMessage opens the message file dir/sub/name as OpenMessageAt does,
// opening dir first (dir itself may be reached through links: it is the
// caller's to have checked, with CheckFolder or as an account root).
func OpenMessage(dir, sub, name string) (*os.File, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return OpenMessageAt(d, sub, name)
}

// OpenMessagePath is OpenMessage for a path ending in sub/name.
func OpenMessagePath(path string) (*os.File, error) {
	sub := filepath.Dir(path)
	return OpenMessage(filepath.Dir(sub), filepath.Base(sub), filepath.Base(path))
}

// LstatMessage returns the FileInfo of the message file at path without
// following a link: a link, or anything else that is not a regular file,
// gives an error wrapping ErrNotRegular.
func LstatMessage(path string) (os.FileInfo, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &os.PathError{Op: "lstat", Path: path, Err: ErrNotRegular}
	}
	return fi, nil
}

// CheckFolder returns nil when root/name is a folder directory that is no
// symbolic link and a Maildir (CheckMaildir); an error wrapping
// ErrSymlink for a link; otherwise CheckMaildir's error. The account
// root itself is never checked here: links leading to it are the
// administrator's.
func CheckFolder(root, name string) error {
	fi, err := os.Lstat(filepath.Join(root, name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrNotMaildir, err)
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%w: %w: %s", ErrNotMaildir, ErrSymlink, filepath.Join(root, name))
	}
	return CheckMaildir(filepath.Join(root, name))
}

// IsLink reports whether path is a symbolic link (not followed).
func IsLink(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}
