package store

import (
	"context"
	"slices"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/maildir"
)

// Settable are the letters a replacement sets or clears: the system flags
// D F R S T and the keywords a–z. Other letters (P, and any a program
// invented) are kept: no client can see them, so none means to clear
// them.
var Settable = func() maildir.Flags {
	f, _ := maildir.ParseFlags("DFRSTabcdefghijklmnopqrstuvwxyz")
	return f
}()

// applyFlags combines f with a message's flags old as op says; a
// replacement keeps the letters that are not Settable.
func applyFlags(op flagop.Op, old, f maildir.Flags) maildir.Flags {
	switch op {
	case flagop.Add:
		return old | f
	case flagop.Remove:
		return old &^ f
	}
	return old&^Settable | f&Settable
}

// SetFlags changes the flags of the messages with the given UIDs and
// returns the messages as they are afterwards (changed or not), in UID
// order. UIDs that are gone are skipped. Subscribers other than from hear
// of the changes; the caller reports them itself.
//
// It waits for the mailbox lock up to the lock timeout; past that the
// error wraps ErrLocked and no flag changed.
//
// Takes: turn, dotlock, wmu, mu (beginChange); mu is let go while the
// files are renamed (retryMoved).
func (m *Mailbox) SetFlags(ctx context.Context, uids []uint32, op flagop.Op, flags maildir.Flags, from *Subscription) ([]Message, error) {
	out, _, err := m.SetFlagsUnchangedSince(ctx, uids, op, flags, maxModSeq, from)
	return out, err
}

// SetFlagsUnchangedSince is SetFlags for the messages whose ModSeq is at
// most since (RFC 7162 §3.1.3, STORE UNCHANGEDSINCE); the others are
// left alone and their UIDs returned in modified, ascending. The test
// and the change of each message happen under the writer's lock
// together, so no change by anyone falls between them: a message a
// change found renamed is tested again with the modseq the sync that
// looked for it gave it. out holds the messages that passed.
//
// Takes: as SetFlags.
func (m *Mailbox) SetFlagsUnchangedSince(ctx context.Context, uids []uint32, op flagop.Op, flags maildir.Flags, since uint64, from *Subscription) (out []Message, modified []uint32, err error) {
	end, ok, err := m.beginKnownChange(ctx, uids)
	if !ok {
		return nil, nil, err
	}
	defer end()
	defer m.withLogLocked(ctx)()
	ch := &Changes{}
	err = m.retryMoved(ctx, uids, func(e *entry) (func(), error) {
		if e.modseq > since {
			// e.modseq changes only under the writer's lock, held here.
			modified = append(modified, e.uid)
			return nil, nil
		}
		nf := applyFlags(op, e.flags, flags)
		if nf == e.flags && e.sub == maildir.Cur {
			out = append(out, e.message())
			return nil, nil
		}
		name, err := maildir.SetFlags(m.dir, e.sub, e.filename, nf)
		if err != nil {
			return nil, err
		}
		return func() {
			if e.flags != nf {
				e.modseq = m.modSeqLocked()
			}
			e.sub, e.filename = maildir.Cur, name
			if e.flags != nf {
				e.flags = nf
				m.flagsChanged()
				ch.Flags = append(ch.Flags, e.message())
			}
			out = append(out, e.message())
		}, nil
	}, func() {
		// What this change did so far is told before the sync that
		// looks for the moved files: its modseq ends there (publish).
		m.publish(ch, from)
		ch = &Changes{}
	})
	m.publish(ch, from)
	sortByUID(out)
	slices.Sort(modified)
	return out, modified, err
}
