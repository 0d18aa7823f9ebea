// Package testfault makes, on real files, the faults that tests of the
// mailbox lock and of dovecot-uidlist need: a dovecot-uidlist that
// cannot be written, and a dovecot-uidlist.lock held by a live process,
// left empty, or holding garbage. Each fault is undone by the function
// that made it returns and, at the latest, when the test ends.
package testfault

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// fsImmutableFL is FS_IMMUTABLE_FL (linux/fs.h): no process, root
// included, may write, rename or remove the file.
const fsImmutableFL = 0x10

// Unwritable makes the file at path refuse writes, even to root: the
// immutable attribute (the FS_IOC_SETFLAGS ioctl) when the test runs as
// root, mode 0444 otherwise. It checks that opening the file for
// appending fails, and skips the test, saying why, when neither works
// on the file's filesystem. The returned function makes the file
// writable again; the test's cleanup does so too.
func Unwritable(t testing.TB, path string) (restore func()) {
	t.Helper()
	var undo func() error
	if os.Geteuid() == 0 {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
		if err != nil {
			t.Skipf("testfault: %s: no file attributes on this filesystem (FS_IOC_GETFLAGS: %v), and root writes through mode 0444", path, err)
		}
		if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsImmutableFL)); err != nil {
			t.Skipf("testfault: %s: the immutable attribute cannot be set here (FS_IOC_SETFLAGS: %v), and root writes through mode 0444", path, err)
		}
		undo = func() error {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags&^fsImmutableFL))
		}
	} else {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
		undo = func() error { return os.Chmod(path, fi.Mode().Perm()) }
	}
	done := false
	restore = func() {
		t.Helper()
		if done {
			return
		}
		done = true
		if err := undo(); err != nil {
			t.Errorf("testfault: making %s writable again: %v", path, err)
		}
	}
	t.Cleanup(restore)
	if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		f.Close()
		t.Fatalf("testfault: %s is still writable", path)
	}
	return restore
}

// LockKind says how a dovecot-uidlist.lock is held.
type LockKind int

const (
	// LockLive names a live process of this host ("<pid>:<host>", a
	// child process the test starts): never stale while it lives.
	LockLive LockKind = iota
	// LockEmpty is an empty file (Dovecot creates its lock with O_EXCL
	// before writing to it): stale only after its age.
	LockEmpty
	// LockGarbage holds bytes that name no holder: stale only after its
	// age.
	LockGarbage
)

func (k LockKind) String() string {
	switch k {
	case LockLive:
		return "live"
	case LockEmpty:
		return "empty"
	case LockGarbage:
		return "garbage"
	}
	return fmt.Sprintf("LockKind(%d)", int(k))
}

// LockKinds is every LockKind, for table tests.
var LockKinds = []LockKind{LockLive, LockEmpty, LockGarbage}

// HoldLock puts dovecot-uidlist.lock into the mailbox directory dir, held
// as kind says, and returns the function that releases it: the file is
// removed, and a LockLive holder is killed and reaped. The test's
// cleanup releases it too.
func HoldLock(t testing.TB, dir string, kind LockKind) (release func()) {
	t.Helper()
	path := filepath.Join(dir, "dovecot-uidlist.lock")
	var content []byte
	var child *exec.Cmd
	switch kind {
	case LockLive:
		host, err := os.Hostname()
		if err != nil {
			t.Fatal(err)
		}
		child = exec.Command("sleep", "600")
		if err := child.Start(); err != nil {
			t.Fatalf("testfault: starting a lock holder: %v", err)
		}
		content = fmt.Appendf(nil, "%d:%s", child.Process.Pid, host)
	case LockEmpty:
	case LockGarbage:
		content = []byte("\x00\xff not a holder \x7f\n")
	default:
		t.Fatalf("testfault: unknown lock kind %d", int(kind))
	}
	stop := func() {
		if child != nil {
			child.Process.Kill()
			child.Wait()
			child = nil
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		_, err = f.Write(content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		stop()
		t.Fatalf("testfault: making %s: %v", path, err)
	}
	done := false
	release = func() {
		t.Helper()
		if done {
			return
		}
		done = true
		stop()
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("testfault: removing %s: %v", path, err)
		}
	}
	t.Cleanup(release)
	return release
}
