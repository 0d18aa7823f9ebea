package uidlist

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// fileState is what tells one version of a file from another without
// reading it.
type fileState struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
	ctime    time.Time
}

func stateOf(fi fs.FileInfo) fileState {
	st := fi.Sys().(*syscall.Stat_t)
	return fileState{
		dev:   uint64(st.Dev),
		ino:   st.Ino,
		size:  st.Size,
		mtime: time.Unix(st.Mtim.Unix()),
		ctime: time.Unix(st.Ctim.Unix()),
	}
}

func (s fileState) sameFile(o fileState) bool { return s.dev == o.dev && s.ino == o.ino }

func (s fileState) equal(o fileState) bool {
	return s.sameFile(o) && s.size == o.size && s.mtime.Equal(o.mtime) && s.ctime.Equal(o.ctime)
}

// changeTime is when the file last changed, as Dovecot's dotlock code
// judges it: mtime when it is newer than ctime and not in the future
// (mtime can be set to anything), else ctime.
func (s fileState) changeTime(now time.Time) time.Time {
	if !s.mtime.After(now) && s.mtime.After(s.ctime) {
		return s.mtime
	}
	return s.ctime
}

// processAlive reports whether pid names a live process on this host. A
// process we may not signal (EPERM) is alive.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}

// touchFile sets the times of the open file f to t.
func touchFile(f *os.File, t time.Time) error {
	tv := syscall.NsecToTimeval(t.UnixNano())
	if err := syscall.Futimes(int(f.Fd()), []syscall.Timeval{tv, tv}); err != nil {
		return &os.PathError{Op: "futimes", Path: f.Name(), Err: err}
	}
	return nil
}

// syncDir makes the directory entries of dir durable (after create, rename
// or unlink inside it).
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
