package maildir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrMoved is returned when a file to rename or remove is not there any
// more: another program renamed (changed its flags, moved it to cur/) or
// removed it. The caller should resync the directory and retry with the
// name it finds there.
var ErrMoved = errors.New("maildir: file was moved or removed by someone else")

// ErrExists is returned when a rename would replace an existing file.
// Renames in this package never overwrite a file.
var ErrExists = errors.New("maildir: target file exists")

// SetFlags gives the message dir/sub/filename the flags flags, by renaming
// it to its base name with ":2,<flags>" in cur/. sub is New or Cur; a
// message in new/ moves to cur/ (a program that sets flags has seen it).
// Text after the flags in the info part (",<rest>") is kept. When the
// name is already the target, SetFlags returns it without touching the
// disk.
//
// The rename never replaces an existing file: it uses renameat2 with
// RENAME_NOREPLACE, or link(2) and unlink(2) where the filesystem lacks
// that flag. A target that exists gives an error wrapping ErrExists; a
// missing source gives one wrapping ErrMoved.
//
// The directory is not fsynced: flags are not durability-critical (a
// crash may undo the last flag changes, never lose the message, since a
// rename is atomic). A caller that wants the change durable calls
// SyncDir on dir/cur afterwards (and on dir/new for a message that came
// from there).
func SetFlags(dir, sub, filename string, flags Flags) (newName string, err error) {
	if sub != New && sub != Cur {
		return "", fmt.Errorf("maildir: set flags: subdirectory %q is not %q or %q", sub, New, Cur)
	}
	n, err := ParseName(filename)
	if err != nil {
		return "", err
	}
	target := n.WithFlags(flags).Filename()
	if sub == Cur && target == filename {
		return filename, nil
	}
	if err := moveMessage(dir, sub, filename, target); err != nil {
		return "", err
	}
	return target, nil
}

// MoveToCur moves the message new/filename to cur/, as a mail reader does
// when it has seen a message. A name without an info part gets ":2,"; a
// name with one (flags set by whoever delivered it) keeps it unchanged.
// Errors and durability are as for SetFlags.
func MoveToCur(dir, filename string) (newName string, err error) {
	n, err := ParseName(filename)
	if err != nil {
		return "", err
	}
	target := filename
	if !n.HasInfo {
		target = n.WithFlags(0).Filename()
	}
	if err := moveMessage(dir, New, filename, target); err != nil {
		return "", err
	}
	return target, nil
}

// moveMessage renames dir/sub/from to dir/cur/to without replacing.
func moveMessage(dir, sub, from, to string) error {
	src := filepath.Join(dir, sub, from)
	dst := filepath.Join(dir, Cur, to)
	err := renameNoReplace(src, dst)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%w: %w", ErrMoved, err)
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%w: %w", ErrExists, err)
	}
	return err
}

// Remove unlinks the message dir/sub/filename (sub is New, Cur or Tmp).
// A missing file gives an error wrapping ErrMoved. The directory is not
// fsynced; see SetFlags.
func Remove(dir, sub, filename string) error {
	if sub != New && sub != Cur && sub != Tmp {
		return fmt.Errorf("maildir: remove: subdirectory %q is not %q, %q or %q", sub, New, Cur, Tmp)
	}
	if _, err := ParseName(filename); err != nil {
		return err
	}
	path := filepath.Join(dir, sub, filename)
	err := retryEINTR(func() error { return unix.Unlink(path) })
	if err == nil {
		return nil
	}
	perr := &os.PathError{Op: "unlink", Path: path, Err: err}
	if err == unix.ENOENT {
		return fmt.Errorf("%w: %w", ErrMoved, perr)
	}
	return perr
}

// renameNoReplace renames the file oldpath to newpath, failing with EEXIST
// (in an *os.LinkError) when newpath exists. Where the filesystem or
// kernel lacks RENAME_NOREPLACE it links newpath and unlinks oldpath; if
// someone else renames oldpath between the two steps, both names remain
// (the same inode, so the same message, which a listing deduplicates by
// base name), and the missing oldpath is not an error.
// RenameNoReplace renames oldpath to newpath but never replaces an
// existing newpath (the error then matches fs.ErrExist):
// renameat2 with RENAME_NOREPLACE, or link(2) and unlink(2) where the
// filesystem lacks that flag. A missing oldpath is an error matching
// fs.ErrNotExist.
func RenameNoReplace(oldpath, newpath string) error { return renameNoReplace(oldpath, newpath) }

// RenameNoReplaceAt is RenameNoReplace for names relative to open
// directories (olddir, newdir are directory file descriptors, as
// OpenSubdirAt returns): a directory renamed by another program after it
// was opened is still the one the file is renamed from and into.
func RenameNoReplaceAt(olddir int, oldname string, newdir int, newname string) error {
	err := retryEINTR(func() error {
		return unix.Renameat2(olddir, oldname, newdir, newname, unix.RENAME_NOREPLACE)
	})
	if err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP {
		err = retryEINTR(func() error { return unix.Linkat(olddir, oldname, newdir, newname, 0) })
		if err == nil {
			err = retryEINTR(func() error { return unix.Unlinkat(olddir, oldname, 0) })
			if err == unix.ENOENT {
				err = nil
			} else if err != nil {
				_ = unix.Unlinkat(newdir, newname, 0) // back to one name for the file
			}
		}
	}
	if err != nil {
		return &os.LinkError{Op: "renameat", Old: oldname, New: newname, Err: err}
	}
	return nil
}

func renameNoReplace(oldpath, newpath string) error {
	err := retryEINTR(func() error {
		return unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	})
	if err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP {
		err = linkRename(oldpath, newpath)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

// linkRename renames by link(2) and unlink(2), which never replaces
// newpath (EEXIST). It returns the bare errno.
func linkRename(oldpath, newpath string) error {
	err := retryEINTR(func() error { return unix.Link(oldpath, newpath) })
	if err != nil {
		return err
	}
	err = retryEINTR(func() error { return unix.Unlink(oldpath) })
	if err != nil && err != unix.ENOENT {
		// Back to the old state: one name for the file.
		_ = unix.Unlink(newpath)
		return err
	}
	return nil
}

// renameDirNoReplace renames the directory oldpath to newpath, failing
// with EEXIST when newpath exists. Without RENAME_NOREPLACE it falls back
// to rename(2), which replaces only an empty directory (losing nothing)
// and fails with ENOTEMPTY or EEXIST otherwise.
func renameDirNoReplace(oldpath, newpath string) error {
	err := retryEINTR(func() error {
		return unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	})
	if err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP {
		err = retryEINTR(func() error { return unix.Rename(oldpath, newpath) })
		if err == unix.ENOTEMPTY {
			err = unix.EEXIST
		}
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}
