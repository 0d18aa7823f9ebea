package store

import (
	"slices"
	"sync"
)

// A Subscription receives the changes of a Mailbox that its owner (an
// IMAP session) did not make itself, coalesced until the owner takes them
// at a moment the protocol allows. What it holds is bounded by the size of
// the mailbox, however long the owner waits: the latest version of each
// new or changed message and the set of expunged UIDs.
type Subscription struct {
	m      *Mailbox      // immutable
	notify chan struct{} // immutable; capacity 1: "something is pending"

	mu       sync.Mutex // guards the fields below
	expunged map[uint32]bool
	added    map[uint32]Message
	flags    map[uint32]Message
	void     bool // UIDVALIDITY changed
	highest  uint64
	gone     bool // the mailbox was deleted or renamed; stays set
}

// Pending is what a Subscription collected: apply expunges first, then
// new messages, then flag changes.
type Pending struct {
	// Expunged UIDs, ascending.
	Expunged []uint32
	// New messages, in UID order, without those expunged meanwhile.
	New []Message
	// Flags: messages whose flags changed, latest version, UID order,
	// without those expunged meanwhile.
	Flags []Message
	// UIDValidityChanged: every UID the owner knows is void.
	UIDValidityChanged bool
	// Gone: the mailbox was deleted or renamed (ErrMailboxGone); the
	// owner is to stop using it.
	Gone bool
	// HighestModSeq is the highest HIGHESTMODSEQ of the changes
	// published so far (the owner's own included); New and Flags carry
	// each message's latest ModSeq.
	HighestModSeq uint64
}

// Empty reports whether nothing is pending.
func (p *Pending) Empty() bool {
	return len(p.Expunged) == 0 && len(p.New) == 0 && len(p.Flags) == 0 && !p.UIDValidityChanged && !p.Gone
}

// Subscribe returns a new Subscription to m's changes.
//
// Takes: mu.
func (m *Mailbox) Subscribe() *Subscription {
	s := &Subscription{
		m:        m,
		notify:   make(chan struct{}, 1),
		expunged: make(map[uint32]bool),
		added:    make(map[uint32]Message),
		flags:    make(map[uint32]Message),
	}
	m.mu.Lock()
	m.subs = append(m.subs, s)
	m.mu.Unlock()
	return s
}

// Close ends the subscription.
func (s *Subscription) Close() {
	m := s.m
	m.mu.Lock()
	m.subs = slices.DeleteFunc(m.subs, func(x *Subscription) bool { return x == s })
	m.mu.Unlock()
}

// Notify is signalled (without blocking the publisher) when changes are
// pending.
func (s *Subscription) Notify() <-chan struct{} { return s.notify }

// Take returns and clears what is pending. A pending message that the
// state already holds in a newer version (a change made but not yet
// published: its writer lets go of mu while it takes a modseq) is given
// in that version: the owner may have read it from the state already
// (a FETCH), and the older one told after it would take its flags and
// MODSEQ back. The publication that follows repeats the newer version.
//
// Takes: mu, then the subscription's.
func (s *Subscription) Take() Pending {
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	latest := func(msg Message) Message {
		if e := m.byUID(msg.UID); e != nil && e.modseq > msg.ModSeq {
			return e.message()
		}
		return msg
	}
	var p Pending
	p.UIDValidityChanged = s.void
	p.Gone = s.gone
	p.HighestModSeq = s.highest
	for uid := range s.expunged {
		p.Expunged = append(p.Expunged, uid)
	}
	slices.Sort(p.Expunged)
	for uid, msg := range s.added {
		if !s.expunged[uid] {
			p.New = append(p.New, latest(msg))
		}
	}
	sortByUID(p.New)
	for uid, msg := range s.flags {
		if !s.expunged[uid] {
			if _, isNew := s.added[uid]; !isNew {
				p.Flags = append(p.Flags, latest(msg))
			}
		}
	}
	sortByUID(p.Flags)
	s.void = false
	clear(s.expunged)
	clear(s.added)
	clear(s.flags)
	return p
}

func (s *Subscription) add(ch *Changes) {
	s.mu.Lock()
	s.highest = max(s.highest, ch.HighestModSeq)
	if ch.UIDValidityChanged {
		s.void = true
	}
	if ch.Gone {
		s.gone = true
	}
	for _, msg := range ch.Expunged {
		s.expunged[msg.UID] = true
	}
	for _, msg := range ch.New {
		s.added[msg.UID] = msg
		delete(s.expunged, msg.UID)
	}
	for _, msg := range ch.Flags {
		if _, isNew := s.added[msg.UID]; isNew {
			s.added[msg.UID] = msg // a new message's latest flags
		} else {
			s.flags[msg.UID] = msg
		}
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// refresh brings what from already holds up to date with its own change
// ch, without adding to it: a pending flag change of another session's,
// taken after the owner reported its own newer flags, would otherwise
// tell the client the older ones last.
func (s *Subscription) refresh(ch *Changes) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.highest = max(s.highest, ch.HighestModSeq)
	for _, msg := range ch.Flags {
		if _, ok := s.added[msg.UID]; ok {
			s.added[msg.UID] = msg
		}
		if _, ok := s.flags[msg.UID]; ok {
			s.flags[msg.UID] = msg
		}
	}
}

// publish hands ch to every subscriber but from, and brings from's
// pending versions of the messages ch changed up to date.
//
// It ends the modseq of the change (endModSeqLocked): ch carries the
// HIGHESTMODSEQ it raised, and its expunges are remembered with it.
//
// Held: wmu, mu (or mu alone for a mailbox that is gone), after the
// changes are on disk; lets go of mu while it takes a modseq; takes
// each subscriber's mu.
func (m *Mailbox) publish(ch *Changes, from *Subscription) {
	if m.gone.Load() {
		if !m.goneSent {
			ch.Gone = true
			m.goneSent = true
		}
		ch.HighestModSeq = m.highest
	} else {
		ch.HighestModSeq = m.endModSeqLocked(ch)
	}
	if ch.Empty() {
		return
	}
	for _, s := range m.subs {
		if s != from {
			s.add(ch)
		} else {
			s.refresh(ch)
		}
	}
}
