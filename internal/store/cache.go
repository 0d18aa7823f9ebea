package store

import (
	"github.com/cistern-mail/cistern/maildir"
)

// forgetCached drops index entries of expunged messages.
//
// Held: any.
func (m *Mailbox) forgetCached(gone []Message) {
	if m.opts.Index == nil || len(gone) == 0 {
		return
	}
	bases := make([]string, len(gone))
	for i, g := range gone {
		bases[i] = g.Base
	}
	m.opts.Index.Forget(m.dir, bases)
}

// Cached returns the index entry of msg, if there is one for the file as
// it is: its size must still be what was cached (S= field, else a stat).
//
// Takes: nothing (the index's own locks).
func (m *Mailbox) Cached(msg Message) (IndexEntry, bool) {
	if m.opts.Index == nil {
		return IndexEntry{}, false
	}
	e, ok := m.opts.Index.Get(m.dir, msg.Base)
	if !ok {
		return IndexEntry{}, false
	}
	size, _ := maildir.SizeFields(msg.Base)
	if size < 0 {
		fi, err := maildir.LstatMessage(m.Path(msg))
		if err != nil {
			return IndexEntry{}, false
		}
		size = fi.Size()
	}
	return e, size == e.FileSize
}

// Cache stores the index entry of msg (nothing without an index).
//
// Takes: nothing (the index's own locks).
func (m *Mailbox) Cache(msg Message, e IndexEntry) {
	if m.opts.Index == nil {
		return
	}
	m.opts.Index.Put(m.dir, msg.Base, e)
}
