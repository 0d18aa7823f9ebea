package uidlist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

const (
	// DefaultLockTimeout is how long AcquireLock waits by default. Writers
	// hold the lock for milliseconds; 30 s of waiting means something is
	// wrong and the caller should give up and retry later.
	DefaultLockTimeout = 30 * time.Second

	// DefaultStaleAfter is Dovecot's MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT
	// (maildir-uidlist.h): a lock whose file and dovecot-uidlist have not
	// changed for 2 minutes is taken over.
	DefaultStaleAfter = 2 * time.Minute

	// Polling while waiting starts fast (our writers hold the lock for
	// milliseconds) and backs off so that a long wait costs little CPU.
	lockPollMin = 2 * time.Millisecond
	lockPollMax = 250 * time.Millisecond

	// After removing a stale lock, pause a random time in this range before
	// creating ours, so that a second waiter that judged the same file stale
	// finishes its check (and finds the file changed) before our new lock
	// appears. Dovecot does the same (dotlock_override).
	staleOverridePauseMin = 20 * time.Millisecond
	staleOverridePauseMax = 60 * time.Millisecond

	// maxLockContent bounds how much of a lock file is read: "<pid>:<host>".
	maxLockContent = 512
)

// LockOptions tune AcquireLock. The zero value is Dovecot-compatible.
type LockOptions struct {
	// Timeout bounds the wait; 0 means DefaultLockTimeout.
	Timeout time.Duration
	// StaleAfter is how long a lock may stay unchanged (with
	// dovecot-uidlist unchanged too) before it is taken over; 0 means
	// DefaultStaleAfter, negative means never by age (a lock of a dead
	// local process is still taken over).
	StaleAfter time.Duration
	// Hostname is written into the lock and compared with the holder's to
	// decide whether its pid can be checked; "" means os.Hostname(). It
	// must match what Dovecot on this host uses (gethostname(2), or
	// $DOVECOT_HOSTNAME when set for Dovecot).
	Hostname string
}

// Lock is a held dovecot-uidlist.lock. Release it when done; hold it for
// milliseconds, and call Touch during a long hold so that nobody takes it
// over as stale.
type Lock struct {
	dir  string   // immutable
	path string   // immutable
	f    *os.File // immutable: our lock file, open for Touch and identity
	id   fileState

	mu       sync.Mutex // guards released and rd
	released bool
	rd       *Reader // dovecot-uidlist of dir, as the writes see it
}

// heldLocks is the set of lock files (by device and inode) this process
// holds, so that a lock file naming our own pid can be told apart: live
// when we hold it, else a leftover of an earlier process with our pid.
var heldLocks = struct {
	sync.Mutex
	m map[[2]uint64]struct{}
}{m: make(map[[2]uint64]struct{})}

func registerHeld(id fileState) {
	heldLocks.Lock()
	heldLocks.m[[2]uint64{id.dev, id.ino}] = struct{}{}
	heldLocks.Unlock()
}

func unregisterHeld(id fileState) {
	heldLocks.Lock()
	delete(heldLocks.m, [2]uint64{id.dev, id.ino})
	heldLocks.Unlock()
}

func isHeld(id fileState) bool {
	heldLocks.Lock()
	defer heldLocks.Unlock()
	_, ok := heldLocks.m[[2]uint64{id.dev, id.ino}]
	return ok
}

// AcquireLock takes dir/dovecot-uidlist.lock, waiting (polling with
// backoff) while someone else holds it, and taking it over when it is stale
// (see the package documentation). It fails with an error wrapping
// ErrLockTimeout when the wait exceeds opts.Timeout, and with ctx.Err()
// when ctx ends first. A missing dir is an error (ErrNotExist), not a wait.
func AcquireLock(ctx context.Context, dir string, opts LockOptions) (*Lock, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	staleAfter := opts.StaleAfter
	if staleAfter == 0 {
		staleAfter = DefaultStaleAfter
	}
	host := opts.Hostname
	if host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("uidlist: lock: hostname: %w", err)
		}
		host = h
	}
	path := filepath.Join(dir, LockName)
	deadline := time.Now().Add(timeout)
	s := staleCheck{path: path, protected: filepath.Join(dir, FileName), host: host, staleAfter: staleAfter}
	wait := lockPollMin
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l, err := createLock(dir, path, host)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		verdict, err := s.check()
		if err != nil {
			return nil, err
		}
		switch verdict {
		case lockGone:
			continue
		case lockOverridden:
			pause := staleOverridePauseMin + rand.N(staleOverridePauseMax-staleOverridePauseMin)
			if err := sleepCtx(ctx, pause); err != nil {
				return nil, err
			}
			wait = lockPollMin
			continue
		}
		if s.changed {
			// Someone else got the lock meanwhile: it moves, so poll fast.
			wait = lockPollMin
		}
		now := time.Now()
		if !now.Before(deadline) {
			return nil, fmt.Errorf("%w: %s held by %q for %v", ErrLockTimeout, path, s.holder, timeout)
		}
		d := min(wait+rand.N(wait/2+1), deadline.Sub(now))
		if err := sleepCtx(ctx, d); err != nil {
			return nil, err
		}
		wait = min(wait*3/2, lockPollMax)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// createLock makes the lock file: with its holder text (createLockLinked)
// when the disk has room for it, else empty (createLockEmpty).
//
// The holder text needs a free block, and a full disk (ENOSPC, or the
// owner's EDQUOT) must not stop what needs the lock but no room: the
// sync that gives a delivered message its UID (its record often fits in
// the uidlist's last block), EXPUNGE, and the rest of what frees space.
// The empty lock is created with O_CREAT|O_EXCL directly, which needs an
// inode and a directory entry but no data block. Nothing else changes
// for it: EEXIST still means held, Release still removes it only while
// it is ours (same inode). Others judge it by age alone, as they judge
// Dovecot's lock between its create and its write: a lock without a
// holder is taken over once it and dovecot-uidlist have not changed for
// StaleAfter, so an empty lock that a crash leaves behind blocks the
// mailbox's writers (never its readers) for that long.
func createLock(dir, path, host string) (*Lock, error) {
	l, err := createLockLinked(dir, path, host)
	if maildir.NoSpace(err) {
		return createLockEmpty(dir, path)
	}
	return l, err
}

// createLockEmpty makes an empty lock file (see createLock).
func createLockEmpty(dir, path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	id := stateOf(fi)
	registerHeld(id)
	return &Lock{dir: dir, path: path, f: f, id: id}, nil
}

// createLockLinked makes the lock file holding "<pid>:<host>". The lock
// never exists empty: the content is written to a temporary file first,
// which link(2) then puts in place without replacing anything (EEXIST:
// the lock is held). A kill at any step leaves either no lock or a
// complete one that names a dead process, which the stale rules take
// over at once; an empty lock file (Dovecot's O_EXCL create before its
// write) would block the mailbox for DefaultStaleAfter. The temporary
// file goes into the Maildir's tmp/ when there is one, where
// maildir.CleanTmp removes what a crash leaves behind.
func createLockLinked(dir, path, host string) (*Lock, error) {
	tmpDir := filepath.Join(dir, "tmp")
	if fi, err := os.Stat(tmpDir); err != nil || !fi.IsDir() {
		tmpDir = dir
	}
	tmp := filepath.Join(tmpDir, fmt.Sprintf(".%s.%d.%d.%08x", LockName, os.Getpid(), lockSeq.Add(1), rand.Uint32()))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp) // the lock keeps the inode under its own name
	if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + ":" + host); err != nil {
		f.Close()
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	id := stateOf(fi)
	// Registered before the pid is visible under the lock's name: another
	// goroutine that reads our pid from it must find it held.
	registerHeld(id)
	if err := os.Link(tmp, path); err != nil {
		unregisterHeld(id)
		f.Close()
		return nil, err
	}
	return &Lock{dir: dir, path: path, f: f, id: id}, nil
}

// lockSeq makes createLock's temporary names unique within the process.
var lockSeq atomic.Uint64

type lockVerdict int

const (
	lockLive       lockVerdict = iota // held by someone else: wait
	lockGone                          // vanished: try again at once
	lockOverridden                    // was stale and we removed it
)

// staleCheck follows one lock file over the polls of one AcquireLock, like
// Dovecot's check_lock: the last time anything about the lock file (or the
// file it protects) changed, and who holds it.
type staleCheck struct {
	path, protected string
	host            string
	staleAfter      time.Duration

	lockSeen, fileSeen fileState
	lockSet, fileSet   bool
	lastChange         time.Time
	changed            bool // the lock file changed at the last check
	holder             string
}

// observe notes st; the first sight of a file counts from its own change
// time, later changes from now.
func (s *staleCheck) observe(seen *fileState, set *bool, st fileState, now time.Time) bool {
	if *set && seen.equal(st) {
		return false
	}
	t := now
	if !*set {
		t = st.changeTime(now)
	}
	if t.After(s.lastChange) {
		s.lastChange = t
	}
	*seen, *set = st, true
	return true
}

func (s *staleCheck) check() (lockVerdict, error) {
	now := time.Now()
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return lockGone, nil
	}
	if err != nil {
		return lockLive, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return lockLive, err
	}
	st := stateOf(fi)
	buf := make([]byte, maxLockContent)
	n, err := io.ReadFull(f, buf)
	f.Close()
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return lockLive, err
	}
	s.holder = strings.TrimSuffix(string(buf[:n]), "\n")
	s.changed = s.observe(&s.lockSeen, &s.lockSet, st, now)

	if pid, ok := localPid(s.holder, s.host); ok {
		var live bool
		if pid == os.Getpid() {
			live = isHeld(st)
		} else {
			live = processAlive(pid)
		}
		if live {
			return lockLive, nil
		}
		return s.override(st)
	}
	if s.staleAfter < 0 {
		return lockLive, nil
	}
	if now.Sub(s.lastChange) > s.staleAfter {
		// The holder may be busy rewriting the protected file without
		// touching the lock: that counts as life too.
		fi, err := os.Stat(s.protected)
		switch {
		case err == nil:
			s.observe(&s.fileSeen, &s.fileSet, stateOf(fi), now)
		case !errors.Is(err, fs.ErrNotExist):
			return lockLive, err
		}
	}
	if now.Sub(s.lastChange) > s.staleAfter {
		return s.override(st)
	}
	return lockLive, nil
}

// override removes the lock file judged stale in state st, unless the path
// now names anything else.
func (s *staleCheck) override(st fileState) (lockVerdict, error) {
	fi, err := os.Lstat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return lockGone, nil
	}
	if err != nil {
		return lockLive, err
	}
	if !stateOf(fi).equal(st) {
		return lockLive, nil
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return lockLive, err
	}
	return lockOverridden, nil
}

// localPid parses Dovecot's "<pid>:<host>" and returns the pid when the
// host is ours (only then can the pid be checked).
func localPid(content, host string) (int, bool) {
	i := strings.IndexByte(content, ':')
	if i <= 0 || content[i+1:] != host {
		return 0, false
	}
	pid, err := strconv.Atoi(content[:i])
	if err != nil || pid <= 0 || content[0] == '+' {
		return 0, false
	}
	return pid, true
}

// Dir returns the mailbox directory of the lock.
func (l *Lock) Dir() string { return l.dir }

// Release removes the lock file if it is still ours (same inode). When it
// is not (someone took it over as stale), it leaves the file alone and
// returns an error wrapping ErrLockLost. Releasing twice is an error
// wrapping ErrWrongLock.
func (l *Lock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("%w: %s already released", ErrWrongLock, l.path)
	}
	l.released = true
	defer l.f.Close()
	if l.rd != nil {
		// The uidlist as the writes under this lock saw it, held open:
		// not needed once the lock is gone.
		defer l.rd.Close()
	}
	// Unregistered only after the removal: until then another goroutine
	// must keep seeing our pid's lock as live.
	defer unregisterHeld(l.id)
	if err := l.stillOurs(); err != nil {
		return err
	}
	if err := os.Remove(l.path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s was removed", ErrLockLost, l.path)
		}
		return err
	}
	return nil
}

// ReleaseMoved releases a lock whose directory its holder renamed to dir,
// or removed (dir "" or a directory that no longer holds it): a folder
// renamed or deleted under its own lock, so that no change of the
// mailbox falls between. The lock file at dir is removed if it is ours;
// one that went with a removed directory needs nothing. Another file
// there is not touched, and the error wraps ErrLockLost.
func (l *Lock) ReleaseMoved(dir string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("%w: %s already released", ErrWrongLock, l.path)
	}
	l.released = true
	defer l.f.Close()
	if l.rd != nil {
		defer l.rd.Close()
	}
	defer unregisterHeld(l.id)
	if dir == "" {
		return nil
	}
	path := filepath.Join(dir, LockName)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !stateOf(fi).sameFile(l.id) {
		return fmt.Errorf("%w: %s is not the lock that was moved there", ErrLockLost, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// stillOurs checks that the lock path names our lock file.
func (l *Lock) stillOurs() error {
	fi, err := os.Lstat(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s was removed", ErrLockLost, l.path)
	}
	if err != nil {
		return err
	}
	if !stateOf(fi).sameFile(l.id) {
		return fmt.Errorf("%w: %s was replaced", ErrLockLost, l.path)
	}
	return nil
}

// Touch refreshes the lock's mtime so that it is not taken over as stale
// during a long hold (call it well within DefaultStaleAfter).
func (l *Lock) Touch() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("%w: %s already released", ErrWrongLock, l.path)
	}
	if err := l.stillOurs(); err != nil {
		return err
	}
	return touchFile(l.f, time.Now())
}

// check verifies that l is held, for dir, and still ours, and returns the
// Reader of dir's uidlist the writes use. l.mu must be held.
func (l *Lock) checkLocked(dir string) (*Reader, error) {
	if l.released {
		return nil, fmt.Errorf("%w: %s already released", ErrWrongLock, l.path)
	}
	if filepath.Clean(dir) != filepath.Clean(l.dir) {
		a, err1 := os.Stat(dir)
		b, err2 := os.Stat(l.dir)
		if err1 != nil || err2 != nil || !os.SameFile(a, b) {
			return nil, fmt.Errorf("%w: lock is for %s, not %s", ErrWrongLock, l.dir, dir)
		}
	}
	if err := l.stillOurs(); err != nil {
		return nil, err
	}
	if l.rd == nil {
		l.rd = NewReader(l.dir)
	}
	return l.rd, nil
}
