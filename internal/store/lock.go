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
// it, and will want wmu next; the sync leaves its news for after that
// change (kickAfterChange), which then kicks a sync.

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
// it or waits for it; that change kicks a sync when it ends.
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
func (m *Mailbox) lockTimeout() time.Duration {
	if m.opts.Lock.Timeout > 0 {
		return m.opts.Lock.Timeout
	}
	return uidlist.DefaultLockTimeout
}

// beginChange takes what a change holds: its turn among this process's
// changes, the mailbox lock (made the lock of the syncs the change makes:
// m.held), then wmu and mu. It waits up to timeout for the first two
// together; past that the error wraps ErrLocked. end lets go of them all
// and kicks a sync when one left its news for after this change.
func (m *Mailbox) beginChange(ctx context.Context, timeout time.Duration) (end func(), err error) {
	deadline := time.Now().Add(timeout)
	t := time.NewTimer(timeout)
	select {
	case m.changeTurn <- struct{}{}:
		t.Stop()
	case <-t.C:
		return nil, fmt.Errorf("%w: %s: other changes of this process held it for %v", ErrLocked, m.dir, timeout)
	case <-ctx.Done():
		t.Stop()
		return nil, ctx.Err()
	}
	opts := m.opts.Lock
	opts.Timeout = time.Until(deadline)
	if opts.Timeout <= 0 {
		<-m.changeTurn
		return nil, fmt.Errorf("%w: %s: other changes of this process held it for %v", ErrLocked, m.dir, timeout)
	}
	lock, err := uidlist.AcquireLock(ctx, m.dir, opts)
	if err != nil {
		<-m.changeTurn
		return nil, lockError(m.dir, err)
	}
	m.lockWriter()
	m.held = lock
	return func() {
		m.held = nil
		if err := lock.Release(); err != nil {
			m.logLocked().Warn("releasing the mailbox lock", "err", err)
		}
		m.unlockWriter()
		<-m.changeTurn
		if m.kickAfterChange.Swap(false) {
			m.Kick()
		}
	}, nil
}

// syncLockLocked returns the mailbox lock for a sync's writes (the
// uidlist, duplicates) and the function that lets go of it: the lock of
// the change the sync is part of, else one taken now within
// readerLockWait. When the lock cannot be had — a change of ours is under
// way, another holder keeps it, or its file cannot be made (ENOSPC,
// EACCES, EPERM) — the error wraps errLockBusy and the sync does not ask
// again (lockBusy). A ctx that ends is its own error. Held with wmu and
// mu; mu is let go while it waits.
func (m *Mailbox) syncLockLocked(ctx context.Context) (*uidlist.Lock, func(), error) {
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
		m.kickAfterChange.Store(true)
		return nil, nil, errOurChange
	}
	opts := m.opts.Lock
	opts.Timeout = min(readerLockWait, m.lockTimeout())
	var lock *uidlist.Lock
	var err error
	m.unlocked(func() { lock, err = uidlist.AcquireLock(ctx, m.dir, opts) })
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
			m.logLocked().Warn("releasing the mailbox lock", "err", err)
		}
		<-m.changeTurn
	}, nil
}

// newsWaitLocked records that this sync left n new files without a UID
// (why: err) and arranges a retry. The first such sync in a row logs it,
// unless the cause is a change of ours, which is over in milliseconds.
// Held with wmu and mu.
func (m *Mailbox) newsWaitLocked(n int, err error) {
	m.undone = true
	if !errors.Is(err, errOurChange) && !m.newsWaiting {
		m.newsWaiting = true
		m.logLocked().Warn("new messages wait for their UIDs: a later sync gives them", "files", n, "err", err)
	}
	m.retryLater()
}

// newsArrivedLocked notes that a sync left nothing without a UID, logging
// the end of a wait that newsWaitLocked logged. Held with wmu.
func (m *Mailbox) newsArrivedLocked() {
	if m.newsWaiting {
		m.newsWaiting = false
		m.logLocked().Info("new messages that waited got their UIDs")
	}
}

// retryLater arranges a sync lockRetryDelay from now when someone
// watches the mailbox (a subscriber: a selected or idling session), so
// that news left for a later sync reaches them without their asking.
// Held with mu.
func (m *Mailbox) retryLater() {
	if len(m.subs) == 0 {
		return
	}
	m.retryMu.Lock()
	defer m.retryMu.Unlock()
	if m.retryStopped || m.retryTimer != nil {
		return
	}
	m.retryTimer = time.AfterFunc(lockRetryDelay, func() {
		m.retryMu.Lock()
		defer m.retryMu.Unlock()
		if m.retryStopped {
			return
		}
		m.retryTimer = nil
		m.Kick() // under retryMu, so that Close's Stop comes before or after it, whole
	})
}

// stopRetries cancels a pending retry and arranges no more (Close).
func (m *Mailbox) stopRetries() {
	m.retryMu.Lock()
	defer m.retryMu.Unlock()
	m.retryStopped = true
	if m.retryTimer != nil {
		m.retryTimer.Stop()
		m.retryTimer = nil
	}
}
