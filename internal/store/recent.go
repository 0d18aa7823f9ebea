package store

import "github.com/cistern-mail/cistern/maildir"

// \Recent (RFC 3501 §2.3.2): a message is recent in exactly one session,
// the first that sees it after it arrived. The Mailbox keeps the mark
// that makes this so: the lowest UID that no session has claimed yet.
// A session that selects the mailbox read-write, or takes news of new
// messages, claims every UID from the mark up to the highest it knows
// and moves the mark past them, under mu, so that two sessions never
// claim one message; a read-only one (EXAMINE) and STATUS only look.
// UIDs only grow, so a session's claims are ranges of UIDs.
//
// The mark outlives the Mailbox in the index, beside the UIDVALIDITY it
// belongs to, as Dovecot keeps first_recent_uid in its index header. It
// is written with the index's other writes: a crash may lose the last
// claims (those messages are then recent once more, in one session), a
// clean stop does not. Without a mark (a new index, a lost one, a new
// UIDVALIDITY), the Maildir itself says what no reader has seen yet:
// the messages still in new/, which a mail reader moves to cur/ once it
// has seen them (Dovecot's sync does so). Every message from the lowest
// UID in new/ up is then recent; with none in new/, none is.

// recentMark is a Mailbox's \Recent mark; guarded by mu.
type recentMark struct {
	validity uint32 // the UIDVALIDITY first belongs to; 0: none yet
	first    uint32 // the lowest unclaimed UID
	// lower: the mark was not in the index; the next sync lowers it to
	// the lowest UID in new/.
	lower bool
}

// settleRecentLocked makes the mark belong to the current UIDVALIDITY:
// the index's when it has one for it, else the next UID, to be lowered
// to the lowest UID in new/ once synced says the messages are known. It
// runs when the uidlist is first read (Open) and after every sync, so
// that the mark is set before this process numbers a message.
//
// Held: mu (or the Mailbox is not shared yet: Open).
func (m *Mailbox) settleRecentLocked(synced bool) {
	r := &m.recent
	if m.uidvalidity == 0 {
		return
	}
	if r.validity != m.uidvalidity {
		r.validity, r.first, r.lower = m.uidvalidity, m.nextUID, true
		if ix := m.opts.Index; ix != nil {
			if v, first, ok := ix.RecentMark(m.dir); ok && v == m.uidvalidity && first <= m.nextUID {
				r.first, r.lower = first, false
			}
		}
	}
	if r.lower && synced {
		r.lower = false
		for _, e := range m.msgs {
			if e.sub == maildir.New {
				r.first = min(r.first, e.uid)
				break
			}
		}
	}
}

// FirstRecent returns the lowest UID that no session has claimed as
// recent: every message at or above it is recent for the next session
// to claim it. A read-only session and STATUS use it without claiming.
//
// Takes: mu.
func (m *Mailbox) FirstRecent() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settleRecentLocked(false)
	if m.uidvalidity == 0 {
		return max(m.nextUID, 1)
	}
	return max(m.recent.first, 1)
}

// ClaimRecent makes the caller the one session for which the messages
// with UIDs from the returned first up to, not including, upTo are
// recent (none when first >= upTo), and moves the mark to upTo. A UID
// is claimed once, whatever sessions ask at the same time.
//
// Takes: mu.
func (m *Mailbox) ClaimRecent(upTo uint32) (first uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settleRecentLocked(false)
	r := &m.recent
	if m.uidvalidity == 0 {
		return upTo
	}
	first = max(r.first, 1)
	if first >= upTo {
		return upTo
	}
	r.first, r.lower = upTo, false
	if ix := m.opts.Index; ix != nil {
		ix.SetRecentMark(m.dir, r.validity, upTo)
	}
	return first
}
