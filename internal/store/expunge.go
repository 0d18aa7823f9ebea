package store

import (
	"context"
	"slices"

	"github.com/cistern-mail/cistern/maildir"
)

// Expunge removes the messages with the given UIDs and returns those
// that were removed, in UID order. Subscribers other than from hear of
// them. It waits for the mailbox lock as SetFlags does (ErrLocked).
//
// Takes: turn, dotlock, wmu, mu (beginChange); mu is let go while the
// files are unlinked (retryMoved).
func (m *Mailbox) Expunge(ctx context.Context, uids []uint32, from *Subscription) ([]Message, error) {
	end, ok, err := m.beginKnownChange(ctx, uids)
	if !ok {
		return nil, err
	}
	defer end()
	defer m.withLogLocked(ctx)()
	ch := &Changes{}
	gone := make(map[*entry]bool)
	// forget drops the removed messages from the state, before any sync
	// could take their absence for someone else's expunge.
	forget := func() {
		if len(gone) == 0 {
			return
		}
		for e := range gone {
			if e.suspect {
				m.resolveSuspect(e, resolvedExpunged)
			}
			delete(m.byBase, e.base())
			ch.Expunged = append(ch.Expunged, e.message())
		}
		m.msgs = slices.DeleteFunc(m.msgs, func(e *entry) bool { return gone[e] })
		m.msgsChanged()
		clear(gone)
	}
	err = m.retryMoved(ctx, uids, func(e *entry) (func(), error) {
		if err := maildir.Remove(m.dir, e.sub, e.filename); err != nil {
			return nil, err
		}
		return func() { gone[e] = true }, nil
	}, forget)
	forget()
	m.waiting.Store(int64(m.suspects))
	sortByUID(ch.Expunged)
	m.forgetCached(ch.Expunged)
	ours := slices.Clone(ch.Expunged)
	m.publish(ch, from)
	return ours, err
}
