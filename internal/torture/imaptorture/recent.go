package imaptorture

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Two rules of IMAP4rev1 that hold between sessions:
//
// \Recent (RFC 3501 §2.3.2): a message is recent in exactly one
// session, the first that selects the mailbox read-write and sees it
// after it arrived; it stays recent there, and is recent nowhere else.
// Each SELECT is a selection of its own (a session that selects again
// does not see it recent again); EXAMINE shows it without taking it, so
// read-only selections are held only to the second rule below. The book
// records which read-write selection was shown each UID with \Recent.
// At the end, the checker's fresh SELECT takes every message no one
// took: after it, each message that arrived during the run must have
// been shown \Recent to exactly one selection. A selection that ended
// with messages it never identified (expunged before it fetched them,
// or its connection failed) may have taken those: a message is excused
// when its UID lies between the known neighbours of such a message and
// it was made before that selection ended (the note counts them).
// Seeded messages are not held to it either: the seed appends them
// while it has the mailbox selected and never fetches their flags.
//
// Within one selection, a message is recent from the first FETCH of
// its flags to the end, or never.
//
// Announced keywords (RFC 3501 §7.2.6, RFC 9051 §7.3.5): a FETCH may
// carry a keyword only if the last FLAGS response of the session's
// selection listed it.

// recentBook is the run's record of \Recent; safe for concurrent use.
type recentBook struct {
	mu    sync.Mutex
	owner map[uint32]string // UID → the read-write selection shown it \Recent
	// blind are the UID ranges of messages that read-write selections
	// ended without identifying, which they may have taken (see above).
	blind []blindRange
	// announced counts FLAGS responses outside SELECT and EXAMINE.
	announced int
}

// blindRange is an unidentified message of a selection that ended at
// end: its UID is above lo and below hi (0: no bound).
type blindRange struct {
	lo, hi uint32
	end    time.Duration
}

func (br blindRange) covers(uid uint32, made time.Duration) bool {
	return uid > br.lo && (br.hi == 0 || uid < br.hi) && made < br.end
}

// selectionState is what one selection of a session was told of
// \Recent and keywords; reset at each SELECT or EXAMINE.
type selectionState struct {
	id        string          // "imap-3#7"
	recent    map[uint32]bool // UID → shown with \Recent (true) or without
	announced map[string]bool // keywords (lower case) of the last FLAGS
	// modseqs is what it was told of each UID's MODSEQ (resync.go).
	modseqs map[uint32]modTold
}

// beginSelection starts a new selection before SELECT or EXAMINE is
// sent, ending the previous one.
func (s *session) beginSelection() {
	s.endSelection()
	s.selections++
	s.sel = selectionState{
		id:     s.name + "#" + strconv.Itoa(s.selections),
		recent: make(map[uint32]bool),
	}
}

// endSelection ends the current selection: the messages of a
// read-write one that it never identified are blind spots.
func (s *session) endSelection() {
	if s.sel.id == "" || s.readOnly {
		return
	}
	end := s.r.now()
	var spots []blindRange
	for i, u := range s.v.uids {
		if u == 0 {
			lo, hi := s.v.neighbours(uint32(i + 1))
			spots = append(spots, blindRange{lo, hi, end})
		}
	}
	if spots != nil {
		b := &s.r.recent
		b.mu.Lock()
		b.blind = append(b.blind, spots...)
		b.mu.Unlock()
	}
}

// flagsAnnounced records a FLAGS response.
func (s *session) flagsAnnounced(names []string) {
	if !s.cur.selecting && s.sel.announced != nil {
		b := &s.r.recent
		b.mu.Lock()
		b.announced++
		b.mu.Unlock()
	}
	s.sel.announced = make(map[string]bool, len(names))
	for _, n := range names {
		s.sel.announced[strings.ToLower(n)] = true
	}
}

// checkFetchFlags checks the flags of a FETCH response for uid against
// both rules.
func (s *session) checkFetchFlags(uid uint32, flags []string, at time.Duration, line string) {
	var unannounced []string
	recent := false
	for _, f := range flags {
		lf := strings.ToLower(f)
		switch {
		case lf == `\recent`:
			recent = true
		case !strings.HasPrefix(f, `\`) && !s.sel.announced[lf]:
			unannounced = append(unannounced, f)
		}
	}
	if len(unannounced) > 0 {
		s.violation(UnannouncedKeyword, at, fmt.Sprintf("FETCH of UID %d carries %s, which no FLAGS response of this selection listed", uid, strings.Join(unannounced, " ")), line)
	}
	if s.sel.recent == nil {
		return
	}
	was, told := s.sel.recent[uid]
	switch {
	case told && was && !recent:
		s.violation(RecentWrong, at, fmt.Sprintf("UID %d was \\Recent in this selection (%s), now without", uid, s.sel.id), line)
	case told && !was && recent:
		s.violation(RecentWrong, at, fmt.Sprintf("UID %d was not \\Recent in this selection (%s), now it is", uid, s.sel.id), line)
	}
	s.sel.recent[uid] = recent
	if !recent || s.readOnly || told {
		return
	}
	b := &s.r.recent
	b.mu.Lock()
	if b.owner == nil {
		b.owner = make(map[uint32]string)
	}
	prev, taken := b.owner[uid]
	if !taken {
		b.owner[uid] = s.sel.id
	}
	b.mu.Unlock()
	if taken && prev != s.sel.id {
		s.violation(RecentWrong, at, fmt.Sprintf("UID %d shown \\Recent to %s and, before, to %s: a message is recent in one session only", uid, s.sel.id, prev), line)
	}
}

// checkRecentTaken runs after the final FETCH of every session: each
// message the server still shows that arrived during the run must have
// been shown \Recent to a read-write selection (the checker's takes
// what no one took). It returns a note for the messages it excused.
func (r *run) checkRecentTaken(shown map[uint32]bool, at float64) string {
	b := &r.recent
	b.mu.Lock()
	defer b.mu.Unlock()
	r.counts.recent, r.counts.announced = len(b.owner), b.announced
	uids := make([]uint32, 0, len(shown))
	for u := range shown {
		uids = append(uids, u)
	}
	slices.Sort(uids)
	excused := 0
	for _, u := range uids {
		if _, ok := b.owner[u]; ok {
			continue
		}
		src, made, known := r.led.madeOf(u)
		if !known || src == "APPEND "+seedName || src == "found" {
			continue
		}
		if slices.ContainsFunc(b.blind, func(br blindRange) bool { return br.covers(u, made) }) {
			excused++
			continue
		}
		r.rec.violation("", Violation{Kind: RecentWrong, At: at, Session: "checker",
			Detail: fmt.Sprintf("UID %d (%s, %s) was shown \\Recent to no session, not even to a new one that selected the mailbox at the end", u, r.led.idOf(u), src)})
	}
	if excused > 0 {
		return fmt.Sprintf("\\Recent: %d messages not held to \"recent in one session\": a selection that may have taken them ended before it identified them", excused)
	}
	return ""
}
