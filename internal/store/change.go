package store

import (
	"context"
	"errors"
	"slices"

	"github.com/cistern-mail/cistern/maildir"
)

// Our own changes (DESIGN.md §4): renames and unlinks happen under the
// mailbox lock, which each change takes before wmu (beginChange,
// lock.go) and waits for up to the lock timeout (then ErrLocked, and
// nothing changed); a file that another program renamed meanwhile
// (ErrMoved) is looked for again by a sync and the change retried once;
// every change is published to the subscribers only after it is on disk.
//
// A NO means not done (DESIGN.md §4): APPEND and COPY write their files
// into tmp/ first, then take the lock, rename them into cur/ and record
// their UIDs; a lock that cannot be had leaves nothing but tmp/ files,
// which are removed, and a uidlist that cannot be written gets the files
// taken back out of cur/ before the lock is released, so that no other
// process can number them meanwhile.

// ErrNoSuchMessage: the UID is not (or no longer) in the mailbox.
var ErrNoSuchMessage = errors.New("store: no such message")

// anyKnown reports whether any of uids is a message of the mailbox: a
// change of none needs no lock (a CLOSE with nothing to expunge works
// while another process holds the lock).
//
// Held: none; takes mu.
func (m *Mailbox) anyKnown(uids []uint32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.ContainsFunc(uids, func(uid uint32) bool { return m.byUID(uid) != nil })
}

// retryMoved runs change on the message of each UID; flush applies what
// the changes did to the state before a sync. A file that another
// program renamed or removed meanwhile (ErrMoved) is looked for by a sync
// (under the change's lock), and the change is tried once more where the
// sync found it; the sync's own findings go to every subscriber. Held
// with what beginChange takes.
//
// Held: turn, dotlock, wmu, mu (beginChange).
func (m *Mailbox) retryMoved(ctx context.Context, uids []uint32, change func(*entry) error, flush func()) error {
	for attempt := 0; attempt < 2 && len(uids) > 0; attempt++ {
		var moved []uint32
		for _, uid := range uids {
			e := m.byUID(uid)
			if e == nil {
				continue
			}
			err := change(e)
			if errors.Is(err, maildir.ErrMoved) {
				moved = append(moved, uid)
				continue
			}
			if err != nil {
				return err
			}
		}
		if len(moved) == 0 || attempt == 1 {
			return nil // what moved twice: the next sync says where
		}
		flush()
		if _, err := m.syncPublishLocked(ctx); err != nil {
			return err
		}
		uids = moved
	}
	return nil
}
