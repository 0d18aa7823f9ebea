package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// A Mailbox's state belongs to the directory it was read from, not to
// the directory's name (DESIGN.md §4): a folder deleted and made again,
// or renamed away and replaced by a new one, is another mailbox at the
// same path. Open holds the directory open (so that its inode number is
// not given to another directory while the Mailbox lives) and records
// its device and inode; every sync, and every writer once it holds the
// mailbox lock, checks that the path still leads to that directory.
// When it does not, the Mailbox is gone for good: its state is never
// served, kept warm or written back again, its subscribers hear that it
// is gone, and every later call fails with ErrMailboxGone. A Registry
// then opens the new directory at that path as a new Mailbox.

// ErrMailboxGone: the mailbox's directory was deleted or renamed (by
// this process, another one, or a program that removed or moved it);
// what the Mailbox holds is of a directory that is no longer at its path.
var ErrMailboxGone = errors.New("store: the mailbox was deleted or renamed")

// dirID identifies a directory: its device and inode.
type dirID struct{ dev, ino uint64 }

func statDirID(path string) (dirID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return dirID{}, err
	}
	return dirID{uint64(st.Dev), st.Ino}, nil
}

// holdDir opens dir and returns it with its identity. A folder's
// directory is opened without following a symbolic link (a link in its
// place fails): the account root is the one directory that links may
// lead to (maildir/nofollow.go).
func holdDir(dir string, folder bool) (*os.File, dirID, error) {
	flags := syscall.O_RDONLY | syscall.O_DIRECTORY | syscall.O_CLOEXEC
	if folder {
		flags |= syscall.O_NOFOLLOW
	}
	fd, err := syscall.Open(dir, flags, 0)
	for err == syscall.EINTR {
		fd, err = syscall.Open(dir, flags, 0)
	}
	if err != nil {
		return nil, dirID{}, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), dir)
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, dirID{}, err
	}
	return f, dirID{uint64(st.Dev), st.Ino}, nil
}

// Gone reports whether the mailbox's directory was found deleted or
// renamed.
//
// Takes: nothing.
func (m *Mailbox) Gone() bool { return m.gone.Load() }

// checkDir fails with ErrMailboxGone, and marks the Mailbox gone, when
// its path no longer leads to the directory it was opened on.
//
// Held: any.
func (m *Mailbox) checkDir() error {
	if m.gone.Load() {
		return ErrMailboxGone
	}
	id, err := statDirID(m.dir)
	if err == nil && id == m.id {
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("store: %s: %w", m.dir, err) // cannot tell: not gone
	}
	m.markGone()
	return ErrMailboxGone
}

// markGone makes the Mailbox gone, once. The subscribers hear of it
// from the next publish (subscribe.go).
//
// Held: any.
func (m *Mailbox) markGone() {
	if m.gone.CompareAndSwap(false, true) {
		m.log.Warn("the mailbox directory was deleted or renamed: its state is dropped and its sessions are ended")
	}
}

// Vanished tells the Mailbox that this process deleted or renamed its
// directory: it is gone, and its subscribers hear of it now.
//
// Held: none; takes mu.
func (m *Mailbox) vanished() {
	m.markGone()
	m.mu.Lock()
	m.publish(&Changes{}, nil)
	m.mu.Unlock()
}

// accountRoot is the root of the account a mailbox directory belongs
// to, where its UIDVALIDITY allocator lives: the parent of a Maildir++
// folder (.A.B in a Maildir), the directory itself otherwise (INBOX).
func accountRoot(dir string) string {
	base := filepath.Base(dir)
	if len(base) > 1 && base[0] == maildir.FolderSep {
		if parent := filepath.Dir(dir); maildir.IsMaildir(parent) {
			return parent
		}
	}
	return dir
}

// newUIDValidity takes a UIDVALIDITY for a new uidlist of this mailbox
// from the account's allocator; the one this Mailbox had (when the
// uidlist was lost and is rebuilt) is a floor.
//
// Held: dotlock, wmu.
func (m *Mailbox) newUIDValidity() (uint32, error) {
	v, err := uidlist.NextUIDValidity(accountRoot(m.dir), m.uidvalidity)
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return v, nil
}
