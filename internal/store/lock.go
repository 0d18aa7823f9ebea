package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cistern-mail/cistern/internal/uidlist"
)

// The mailbox lock, dovecot-uidlist.lock (DESIGN.md §4), is what every
// Dovecot-compatible process holds to write dovecot-uidlist. Who takes it
// here, how long each waits, and what happens when it cannot be had:
//
//	who                                  waits                          lock not to be had
//	a change: APPEND, COPY, STORE,       Options.Lock.Timeout, this     ErrLocked; nothing changed
//	EXPUNGE (beginChange)                process's earlier changes
//	                                     included
//	a sync that is no part of a change   readerLockWait, at most once   the files without a UID stay
//	(SELECT, EXAMINE, STATUS, NOOP,      per sync; not at all while a   out of the state (not shown);
//	IDLE, Kick, a FETCH's lookup)        change of ours is under way    the sync succeeds; a retry
//	                                                                    is arranged (newsWait)
//	the first sync of a mailbox without  creatorLockWait, as a change   ErrLocked
//	dovecot-uidlist and UIDVALIDITY
//	a sync that is part of a change      no wait: the change's lock     -
//
// A change takes, in this order: its turn among this process's changes
// (changeTurn), the mailbox lock, then wmu and mu. It never waits for the
// mailbox lock while holding wmu, so a sync (which holds wmu while it
// reads the directories) never waits behind a change that waits for
// another process. A sync holding wmu only tries for its turn: when a
// change of ours has it, that change holds the mailbox lock or waits for
// it, and will want wmu next. The sync then leaves the files it could
// not number to that change (waitingNews), which numbers them under its
// lock before it lets go (adoptWaitingLocked): under a steady stream of
// changes the news is never starved; a change that never gets the lock
// kicks a sync instead (kickAfterChange).

// ErrLocked is wrapped by the errors of changes that could not have the
// mailbox lock within the lock timeout (another process holds it, or left
// it behind empty or unreadable), and of a first sync that could not have
// it within creatorLockWait. Nothing was changed; the client may retry.
var ErrLocked = errors.New("store: mailbox locked by another process")

const (
	// readerLockWait bounds a sync's wait for the mailbox lock when it
	// has new files to number. Writers hold the lock for milliseconds; a
	// holder that keeps it longer is stuck or gone, and the sync goes on
	// without it (the files wait for a later sync) rather than keep a
	// SELECT or an IDLE waiting.
	readerLockWait = 100 * time.Millisecond

	// creatorLockWait bounds the wait of the first sync of a mailbox that
	// has neither a dovecot-uidlist nor a UIDVALIDITY: nothing can be
	// shown of it before someone writes the uidlist, and whoever holds
	// the lock is most likely creating it this instant. Past that, the
	// answer is a clear no (ErrLocked).
	creatorLockWait = 2 * time.Second

	// lockRetryDelay is how soon a mailbox that someone watches (a
	// subscriber) is synced again after a sync left new files without a
	// UID because the lock or the uidlist could not be had: often enough
	// that an IDLE session hears of them within a second or two of the
	// lock's release, seldom enough that a lock held for minutes costs
	// one listing a second.
	lockRetryDelay = time.Second
)

// errLockBusy: a sync could not have the mailbox lock now. What needed
// it is left for a later sync.
var errLockBusy = errors.New("store: mailbox lock busy")

// errOurChange: the lock is busy because a change of this process holds
// it or waits for it; the sync leaves its news to that change
// (leaveNewsLocked).
var errOurChange = fmt.Errorf("%w: a change of this process is under way", errLockBusy)

// lockError wraps a failure to take the mailbox lock of dir: a timeout
// is ErrLocked, anything else (ENOSPC, EACCES making the lock file) is
// returned as it is, and ctx's end too.
func lockError(dir string, err error) error {
	if errors.Is(err, uidlist.ErrLockTimeout) {
		return fmt.Errorf("%w: %s: %w", ErrLocked, dir, err)
	}
	return fmt.Errorf("store: locking %s: %w", dir, err)
}

// lockTimeout is how long a change waits for the mailbox lock.
//
// Held: any.
func (m *Mailbox) lockTimeout() time.Duration {
	if m.opts.Lock.Timeout > 0 {
		return m.opts.Lock.Timeout
	}
	return uidlist.DefaultLockTimeout
}

// beginChange takes what a change holds: its turn and the mailbox lock
// (lockChange), then wmu and mu, and makes the lock the one of the syncs
// the change makes (m.held). end lets go of them all.
//
// Held: none; takes turn, dotlock, wmu and mu, and end lets go of them.
func (m *Mailbox) beginChange(ctx context.Context, timeout time.Duration) (end func(), err error) {
	lock, unlock, err := m.lockChange(ctx, timeout)
	if err != nil {
		return nil, err
	}
	m.enterChange(lock)
	return func() {
		m.adoptWaitingLocked(ctx)
		m.leaveChange()
		unlock()
	}, nil
}

// lockChange takes a change's turn among this process's changes, then
// the mailbox lock, waiting up to timeout for both together; past that
// the error wraps ErrLocked. unlock lets go of both, and kicks a sync
// when one left its news for after this change.
//
// Held: none; takes turn and dotlock.
func (m *Mailbox) lockChange(ctx context.Context, timeout time.Duration) (lock *uidlist.Lock, unlock func(), err error) {
	deadline := time.Now().Add(timeout)
	giveTurn, err := m.takeTurn(ctx, timeout)
	if err != nil {
		return nil, nil, err
	}
	lock, err = m.acquireUntil(ctx, deadline, timeout)
	if err != nil {
		giveTurn()
		return nil, nil, err
	}
	return lock, func() {
		if err := lock.Release(); err != nil {
			m.log.Warn("releasing the mailbox lock", "err", err)
		}
		giveTurn()
	}, nil
}

// takeTurn takes m's turn among this process's changes, waiting up to
// timeout (then ErrLocked). giveTurn lets go of it and kicks a sync when
// one left its news for after this change and the change did not number
// it.
//
// Held: none; takes turn.
func (m *Mailbox) takeTurn(ctx context.Context, timeout time.Duration) (giveTurn func(), err error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m.changeTurn <- struct{}{}:
	case <-t.C:
		return nil, fmt.Errorf("%w: %s: other changes of this process held it for %v", ErrLocked, m.dir, timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return func() {
		<-m.changeTurn
		if m.kickAfterChange.Swap(false) {
			m.Kick() // the news a sync left to this change
		}
	}, nil
}

// acquireUntil takes m's mailbox lock, waiting until deadline: the
// error wraps ErrLocked past it, and is ErrMailboxGone when m's path
// leads to another directory now (identity.go). timeout is what the
// caller waited in all, for the error's text.
//
// Held: turn (a Move's is its source's); takes dotlock.
func (m *Mailbox) acquireUntil(ctx context.Context, deadline time.Time, timeout time.Duration) (*uidlist.Lock, error) {
	opts := m.opts.Lock
	opts.Timeout = time.Until(deadline)
	if opts.Timeout <= 0 {
		return nil, fmt.Errorf("%w: %s: other changes of this process held it for %v", ErrLocked, m.dir, timeout)
	}
	lock, err := uidlist.AcquireLock(ctx, m.dir, opts)
	if err != nil {
		if gone := m.checkDir(); gone != nil {
			return nil, gone
		}
		return nil, lockError(m.dir, err)
	}
	if gone := m.checkDir(); gone != nil {
		// Its lock and files are not this mailbox's.
		lock.Release()
		return nil, gone
	}
	return lock, nil
}

// enterChange takes wmu and mu for a change that holds lock (lockChange)
// and makes lock the one of the syncs the change makes; leaveChange
// undoes it.
//
// Held: turn, dotlock; takes wmu and mu.
func (m *Mailbox) enterChange(lock *uidlist.Lock) {
	m.lockWriter()
	m.held = lock
}

// leaveChange undoes enterChange.
//
// Held: turn, dotlock, wmu, mu; lets go of wmu and mu.
func (m *Mailbox) leaveChange() {
	m.held = nil
	m.unlockWriter()
}

// syncLockLocked is syncLock for a caller that holds mu: it lets go of
// mu while it takes the lock, and release lets go of mu while it lets go
// of the lock.
//
// Held: wmu, mu; lets go of mu while it takes or releases the dotlock.
func (m *Mailbox) syncLockLocked(ctx context.Context) (*uidlist.Lock, func(), error) {
	var lock *uidlist.Lock
	var release func()
	var err error
	m.unlocked(func() { lock, release, err = m.syncLock(ctx) })
	if err != nil {
		return nil, nil, err
	}
	return lock, func() { m.unlocked(release) }, nil
}

// syncLock returns the mailbox lock for a sync's writes (the uidlist,
// duplicates) and the function that lets go of it: the lock of the
// change the sync is part of, else one taken now within readerLockWait.
// When the lock cannot be had — a change of ours is under way, another
// holder keeps it, or its file cannot be made (ENOSPC, EACCES, EPERM) —
// the error wraps errLockBusy and the sync does not ask again
// (lockBusy). A ctx that ends is its own error.
//
// Held: wmu; not mu.
func (m *Mailbox) syncLock(ctx context.Context) (*uidlist.Lock, func(), error) {
	if m.held != nil {
		return m.held, func() {}, nil
	}
	if m.lockBusy {
		return nil, nil, errLockBusy
	}
	select {
	case m.changeTurn <- struct{}{}:
	default:
		m.lockBusy = true
		return nil, nil, errOurChange
	}
	opts := m.opts.Lock
	opts.Timeout = min(readerLockWait, m.lockTimeout())
	lock, err := uidlist.AcquireLock(ctx, m.dir, opts)
	if err != nil {
		<-m.changeTurn
		if ctx.Err() != nil {
			return nil, nil, err
		}
		m.lockBusy = true
		return nil, nil, fmt.Errorf("%w: %w", errLockBusy, err)
	}
	return lock, func() {
		if err := lock.Release(); err != nil {
			m.writerLog().Warn("releasing the mailbox lock", "err", err)
		}
		<-m.changeTurn
	}, nil
}

// newsWaitLocked records that this sync left n new files without a UID
// (why: err) and arranges a retry. The first such sync in a row logs it,
// unless the cause is a change of ours, which is over in milliseconds.
//
// Held: wmu, mu.
func (m *Mailbox) newsWaitLocked(n int, err error) {
	m.undone = true
	if !errors.Is(err, errOurChange) && !m.newsWaiting {
		m.newsWaiting = true
		m.writerLog().Warn("new messages wait for their UIDs: a later sync gives them", "files", n, "err", err)
	}
	m.retryLater()
}

// leaveNewsLocked leaves the files of fresh that a sync could not number
// because a change of ours holds or waits for the lock to that change
// (adoptWaitingLocked), and to a kicked sync should it never get the
// lock.
//
// Held: wmu, mu.
func (m *Mailbox) leaveNewsLocked(fresh map[string][]sighting) {
	m.waitingNews = fresh
	m.kickAfterChange.Store(true)
	// The change may have let go of its turn since this sync tried it,
	// too late to see the flag: then the kick is this sync's to make.
	select {
	case m.changeTurn <- struct{}{}:
		<-m.changeTurn
		if m.kickAfterChange.Swap(false) {
			m.Kick()
		}
	default:
	}
}

// adoptWaitingLocked numbers, under the lock of the change that ends,
// the files a sync left to it (leaveNewsLocked) that still exist, and
// publishes them. A uidlist replaced meanwhile, or a failure, leaves
// them to the sync kicked at the change's end.
//
// Held: turn, dotlock, wmu, mu; lets go of mu around the uidlist's read
// and append.
func (m *Mailbox) adoptWaitingLocked(ctx context.Context) {
	fresh := m.waitingNews
	m.waitingNews = nil
	if len(fresh) == 0 {
		return
	}
	for base := range fresh {
		if _, known := m.bases()[base]; known {
			delete(fresh, base) // ours, or numbered since
		}
	}
	var f *uidlist.File
	var err error
	m.unlocked(func() { f, err = m.refreshUIDList() })
	if err != nil || (f != nil && f.Header.UIDValidity != m.uidvalidity) {
		return
	}
	ch := &Changes{}
	if err := m.assignFound(ctx, f, fresh, ch); err != nil {
		if errors.Is(err, errRestart) {
			// Replaced under our lock by a program that ignores it: the
			// state was dropped; build it again now, under the lock.
			if _, err := m.syncPublishLocked(ctx); err != nil {
				m.writerLog().Warn("sync after the uidlist was replaced", "err", err)
			}
			return
		}
		m.writerLog().Warn("numbering files left by a sync", "err", err)
		return
	}
	if ch.Unassigned == 0 {
		m.kickAfterChange.Store(false)
	}
	sortByUID(ch.New)
	m.publish(ch, nil)
}

// newsArrivedLocked notes that a sync left nothing without a UID, logging
// the end of a wait that newsWaitLocked logged.
//
// Held: wmu, mu.
func (m *Mailbox) newsArrivedLocked() {
	if m.newsWaiting {
		m.newsWaiting = false
		m.writerLog().Info("new messages that waited got their UIDs")
	}
}

// retryLater arranges a sync lockRetryDelay from now when someone
// watches the mailbox (a subscriber: a selected or idling session), so
// that news left for a later sync reaches them without their asking.
//
// Held: mu; takes retryMu.
func (m *Mailbox) retryLater() {
	if len(m.subs) == 0 {
		return
	}
	m.retryMu.Lock()
	defer m.retryMu.Unlock()
	if m.stopped.Load() || m.retryTimer != nil {
		return
	}
	m.retryTimer = time.AfterFunc(lockRetryDelay, func() {
		m.retryMu.Lock()
		defer m.retryMu.Unlock()
		if m.stopped.Load() {
			return
		}
		m.retryTimer = nil
		m.Kick() // under retryMu, so that Close's Stop comes before or after it, whole
	})
}

// closed reports whether Close stopped the mailbox's retries: no
// background sync is to start for it. It takes no lock: the retry timer
// calls Kick under retryMu.
//
// Held: any.
func (m *Mailbox) closed() bool { return m.stopped.Load() }

// stopRetries cancels a pending retry and arranges no more (Close).
//
// Held: any but retryMu; takes retryMu.
func (m *Mailbox) stopRetries() {
	m.retryMu.Lock()
	defer m.retryMu.Unlock()
	m.stopped.Store(true)
	if m.retryTimer != nil {
		m.retryTimer.Stop()
		m.retryTimer = nil
	}
}
