package imap

import (
	"fmt"
	"slices"
)

// \Recent (RFC 3501 §2.3.2, §6.3.1, §7.3.2). A message is recent in the
// one session that first sees it after it arrived: a session that
// selects the mailbox claims every unclaimed message it sees (SELECT),
// and so does every EXISTS that grows its view; EXAMINE only looks. The
// Mailbox decides who wins (Mailbox.Recent). The session keeps what it
// claimed as ranges of UIDs (UIDs only grow, so each claim is one
// range) and tells the client the count with RECENT whenever it changes,
// as Dovecot does. IMAP4rev2 has no \Recent (RFC 9051 §2.3.2): such a
// session neither claims nor shows it, and leaves the messages recent
// for an IMAP4rev1 session.

// uidSpan is the UIDs lo <= uid < hi.
type uidSpan struct{ lo, hi uint32 }

// takeRecent claims (or, read-only, looks at) the messages of the view
// not yet handed to any session.
func (c *conn) takeRecent() {
	s := c.sel
	if c.rev2 || s.view.Len() == 0 {
		return
	}
	upTo := s.view.MaxUID() + 1
	first := s.mb.Recent(upTo, !s.readOnly)
	if n := len(s.recent); n > 0 {
		first = max(first, s.recent[n-1].hi) // a read-only look repeats itself
	}
	if first >= upTo {
		return
	}
	// Every UID of the view from first up is in the new range.
	uids := s.view.UIDs()
	lo, _ := slices.BinarySearch(uids, first)
	s.recentN += uint32(len(uids) - lo)
	if n := len(s.recent); n > 0 && s.recent[n-1].hi == first {
		s.recent[n-1].hi = upTo
		return
	}
	s.recent = append(s.recent, uidSpan{first, upTo})
}

// isRecent reports whether uid is recent in this session.
func (s *selected) isRecent(uid uint32) bool {
	_, found := slices.BinarySearchFunc(s.recent, uid, func(r uidSpan, u uint32) int {
		switch {
		case u < r.lo:
			return 1
		case u >= r.hi:
			return -1
		}
		return 0
	})
	return found
}

// forgetRecent is told of UIDs about to leave the view (EXPUNGE), to
// keep the count of recent messages.
func (s *selected) forgetRecent(gone []uint32) {
	if s.recentN == 0 {
		return
	}
	seen := make(map[uint32]bool, len(gone))
	for _, u := range gone {
		if !seen[u] && s.view.Seq(u) != 0 && s.isRecent(u) {
			s.recentN--
		}
		seen[u] = true
	}
}

// tellRecent sends RECENT when the count differs from what the client
// was last told (RFC 3501 §7.3.2).
func (c *conn) tellRecent() {
	s := c.sel
	if c.rev2 {
		return
	}
	if s.recentN != s.recentSent {
		fmt.Fprintf(c.bw, "* %d RECENT\r\n", s.recentN)
		s.recentSent = s.recentN
	}
}

// flags writes a message's flag list, with \Recent when it is recent in
// this session.
func (c *conn) flags(uid uint32, flags []string) {
	if c.sel != nil && !c.rev2 && c.sel.isRecent(uid) {
		flags = append(slices.Clip(flags), `\Recent`)
	}
	c.enc.Flags(flags)
}
