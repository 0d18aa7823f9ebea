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
// sync found it; the sync's own findings go to every subscriber.
//
// change runs without mu, for its renames and unlinks (readers do not
// wait for them): it may read e, which only writers change, but changes
// no state. What it returns as apply (nil: nothing) changes the state,
// under mu, once the batch of files is done. Until then readers see the
// old state: a reader that opens a file already renamed or unlinked gets
// ENOENT, and looks for it again with a sync (OpenMessage, lookupFresh),
// which waits for wmu, held until this change has applied and published
// what it did.
//
// Held: turn, dotlock, wmu, mu (beginChange); lets go of mu while change
// runs.
func (m *Mailbox) retryMoved(ctx context.Context, uids []uint32, change func(*entry) (apply func(), err error), flush func()) error {
	for attempt := 0; attempt < 2 && len(uids) > 0; attempt++ {
		var es []*entry
		for _, uid := range uids {
			if e := m.byUID(uid); e != nil {
				es = append(es, e)
			}
		}
		var moved []uint32
		var applies []func()
		var err error
		m.unlocked(func() {
			for _, e := range es {
				if testHookWriterIO != nil {
					testHookWriterIO(m, "change")
				}
				apply, cerr := change(e)
				if errors.Is(cerr, maildir.ErrMoved) {
					moved = append(moved, e.uid)
					continue
				}
				if cerr != nil {
					err = cerr
					return
				}
				if apply != nil {
					applies = append(applies, apply)
				}
			}
		})
		for _, apply := range applies {
			apply() // what is on disk is in the state, error or not
		}
		if err != nil {
			return err
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

// beginKnownChange begins a change of uids (beginChange) when one of
// them is in the state; ok is false, and nothing is taken, when none is.
//
// Held: none; takes turn, dotlock, wmu and mu, and end lets go of them.
func (m *Mailbox) beginKnownChange(ctx context.Context, uids []uint32) (end func(), ok bool, err error) {
	if !m.anyKnown(uids) {
		return nil, false, nil
	}
	end, err = m.beginChange(ctx, m.lockTimeout())
	return end, err == nil, err
}
