package store

import (
	"slices"

	"github.com/cistern-mail/cistern/maildir"
)

// markSuspect makes e a suspect; resolveSuspect ends that, as outcome
// (metrics.go).
//
// Held: wmu, mu.
func (m *Mailbox) markSuspect(e *entry) {
	e.suspect = true
	m.suspects++
	m.opts.Metrics.suspected()
}

// resolveSuspect ends e's being a suspect, as outcome (metrics.go).
//
// Held: wmu, mu.
func (m *Mailbox) resolveSuspect(e *entry, outcome string) {
	e.suspect = false
	m.suspects--
	m.opts.Metrics.resolvedAs(outcome)
}

// expungeAbsent turns known messages that this sync did not see into
// suspects, and suspects into expunges when the listings were proven.
//
// Held: wmu, mu; lets go of mu for the reread of new/.
func (m *Mailbox) expungeAbsent(gen uint32, proven bool, newDir string, ch *Changes) error {
	var candidates []*entry
	for _, e := range m.msgs {
		if e.seen == gen {
			continue
		}
		if !e.suspect {
			m.markSuspect(e)
		}
		if proven {
			candidates = append(candidates, e)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	if !m.opts.UnsafeTrustReaddir {
		// A file moved from cur/ back to new/ after new/ was read would be
		// missed by both reads: read new/ once more.
		var l2 *maildir.Listing
		var err error
		m.unlocked(func() { l2, err = m.list(newDir) })
		if err != nil {
			return err
		}
		if !l2.Proof.Proven() {
			return nil
		}
		inNew := make(map[string]string, len(l2.Names))
		for _, name := range l2.Names {
			inNew[maildir.BaseName(name)] = name
		}
		kept := candidates[:0]
		for _, e := range candidates {
			if name, ok := inNew[e.base()]; ok {
				m.resolveSuspect(e, resolvedFound)
				e.seen = gen
				m.place(e, maildir.New, name, ch)
				continue
			}
			kept = append(kept, e)
		}
		candidates = kept
	}
	if len(candidates) == 0 {
		return nil
	}
	gone := make(map[*entry]bool, len(candidates))
	for _, e := range candidates {
		gone[e] = true
		m.resolveSuspect(e, resolvedExpunged)
		delete(m.byBase, e.base())
		ch.Expunged = append(ch.Expunged, e.message())
	}
	m.msgs = slices.DeleteFunc(m.msgs, func(e *entry) bool { return gone[e] })
	m.msgsChanged()
	return nil
}
