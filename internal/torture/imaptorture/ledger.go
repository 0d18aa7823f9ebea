package imaptorture

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// forever is the end time of a command that never completed.
const forever = time.Duration(1<<63 - 1)

// message is the ground truth about one message, known by its
// Message-ID.
type message struct {
	id     string
	source string // "APPEND seed", "APPEND imap-3", "LMTP", "foreign", "found"
	// created is when its creation began (before the command was sent or
	// the file renamed into new/); ours is false for a message the run
	// did not make.
	created time.Duration
	ours    bool
	// acked: the server (or the Maildir) accepted it: APPEND OK, LMTP
	// 250, a foreign delivery renamed into new/.
	acked bool
	// uids are the UIDs it was seen under (APPENDUID included), first
	// first; more than one is a duplicate or a UID change.
	uids []uint32
	// seen: some session saw it in a FETCH response.
	seen      bool
	firstSeen time.Duration
	learnedBy string // the response that first tied it to a UID
	// content is what the run knows of its bytes (content.go); nil:
	// nothing.
	content *content
}

// mark is a point of a running maximum: from at on, the maximum is at
// least value.
type mark struct {
	at    time.Duration
	value uint32
}

// expungeCmd is an EXPUNGE (uids nil) or UID EXPUNGE someone sent.
type expungeCmd struct {
	uids       []uint32
	sent, done time.Duration
}

// toldExpunge is an EXPUNGE response a session received.
type toldExpunge struct {
	session, command string
	uid              uint32
	at               time.Duration
	line             string
}

// ledger is the ground truth of a run: which messages were made and by
// whom, which UIDs they were seen under, and every removal an actor
// asked for, with times on the run's monotonic clock. Actors record an
// intent before they act (a removal) and an acknowledgement after (a
// delivery), so that a server's report can only come after the intent
// that explains it. Every method is safe for concurrent use.
type ledger struct {
	rec   *recorder // immutable
	runID string    // immutable
	// mailbox is the mailbox under test; set before the actors start.
	mailbox string
	next    atomic.Int64

	mu      sync.Mutex // guards the fields below
	msgs    map[string]*message
	byUID   map[uint32]string // UID → the Message-ID it first named
	uidMax  []mark            // the highest UID anyone had seen, over time
	nextMax []mark            // the highest UIDNEXT anyone had been told
	// uidValidity is the first UIDVALIDITY seen, and where.
	uidValidity     uint32
	uidValidityLine string
	delMarks        map[uint32][]time.Duration // UID STORE +FLAGS (\Deleted) sent
	foreignMarks    map[string][]time.Duration // a foreign writer added T
	expunges        []*expungeCmd              // in the order they were sent
	uidExpunges     map[uint32][]*expungeCmd
	moves           map[uint32][]*transfer   // UID MOVE sent, by source UID
	foreignDel      map[string]time.Duration // first foreign deletion
	told            []toldExpunge
	unattributed    int // EXPUNGEs of sequence numbers whose UID was unknown
	unjudged        int // EXPUNGEs of UIDs whose message was unknown
	// transfers are the APPENDs, COPYs and MOVEs sent, by the
	// Message-IDs they carry (refused.go).
	transfers  map[string][]*transfer
	nTransfers int
	// paired are the transfers with COPYUID pairs still to book.
	paired []*transfer
	// contentKept is the number of message bytes content keeps.
	contentKept int
	// book holds every (mailbox, UIDVALIDITY, UID) told and every
	// change of a mailbox name (lives.go).
	book lifeBook
	// floods are the keyword floods sent, by each keyword they name in
	// lower case (keywords.go); nil until the first.
	floods map[string]*flood
	// flags holds the commands that may change flags (condstore.go).
	flags flagBook
}

func newLedger(rec *recorder, runID string) *ledger {
	l := &ledger{
		rec: rec, runID: runID, mailbox: DefaultMailbox,
		msgs: make(map[string]*message), byUID: make(map[uint32]string),
		delMarks: make(map[uint32][]time.Duration), foreignMarks: make(map[string][]time.Duration),
		uidExpunges: make(map[uint32][]*expungeCmd), moves: make(map[uint32][]*transfer),
		foreignDel: make(map[string]time.Duration), transfers: make(map[string][]*transfer),
	}
	l.book.init()
	return l
}

// newMessageID returns a Message-ID no other message of any run has.
func (l *ledger) newMessageID() string {
	return "<torture-" + l.runID + "-" + strconv.FormatInt(l.next.Add(1), 10) + "@cistern>"
}

// created records that an actor begins to make message id.
func (l *ledger) created(id, source string, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs[id] = &message{id: id, source: source, created: at, ours: true}
}

// acked records that the server accepted message id; uid is its
// APPENDUID, 0 if none, under UIDVALIDITY validity.
func (l *ledger) acked(id string, uid, validity uint32, at time.Duration, s *session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.msgs[id]
	if m == nil {
		return
	}
	m.acked = true
	if uid != 0 {
		l.sawUIDLocked(uid, at)
		l.learnLocked(m, uid, validity, at, s, false, fmt.Sprintf("APPENDUID %d %d for %s", validity, uid, id))
	}
}

// sawUID records that uid was in a response read at at.
func (l *ledger) sawUID(uid uint32, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sawUIDLocked(uid, at)
}

func (l *ledger) sawUIDLocked(uid uint32, at time.Duration) {
	if n := len(l.uidMax); n == 0 || l.uidMax[n-1].value < uid {
		l.uidMax = append(l.uidMax, mark{at, uid})
	}
}

// maxBefore is the running maximum of marks strictly before t.
func maxBefore(marks []mark, t time.Duration) uint32 {
	i := sort.Search(len(marks), func(i int) bool { return marks[i].at >= t })
	if i == 0 {
		return 0
	}
	return marks[i-1].value
}

// idOf returns the Message-ID UID uid names, "" if not known.
// madeOf returns who made the message with uid ("APPEND seed", "LMTP", ...)
// and when its making began; false when the run does not know it.
func (l *ledger) madeOf(uid uint32) (source string, created time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := l.msgs[l.byUID[uid]]; m != nil {
		return m.source, m.created, true
	}
	return "", 0, false
}

func (l *ledger) idOf(uid uint32) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byUID[uid]
}

// learn ties uid to Message-ID id, as session s (whose selection has
// UIDVALIDITY s.validity) was told in line, and reports the guarantees
// that broke: one UID naming two messages, a message visible twice, a
// message back under a new UID, a new message whose UID is not above the
// UIDs seen before it was made.
func (l *ledger) learn(id string, uid uint32, at time.Duration, s *session, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.msgs[id]
	if m == nil {
		m = &message{id: id, source: "found"}
		l.msgs[id] = m
	}
	l.learnLocked(m, uid, s.validity, at, s, true, line)
}

// learnLocked ties uid (under UIDVALIDITY validity) to m; fetched says
// a FETCH response showed it (APPENDUID does not). A UID that named
// another message is a uid_reuse, reported by namedLocked.
func (l *ledger) learnLocked(m *message, uid, validity uint32, at time.Duration, s *session, fetched bool, line string) {
	who, cmd := "", ""
	if s != nil {
		who, cmd = s.name, s.cur.line
	}
	l.namedLocked(l.mailbox, validity, uid, m.id, at, fetched, who, cmd, line)
	if _, ok := l.byUID[uid]; !ok {
		l.byUID[uid] = m.id
	}
	if !m.seen && fetched {
		m.seen, m.firstSeen = true, at
	}
	if slices.Contains(m.uids, uid) {
		return
	}
	if len(m.uids) == 0 {
		m.uids = []uint32{uid}
		m.learnedBy = line
		if m.ours {
			if prev := maxBefore(l.uidMax, m.created); uid <= prev {
				l.rec.violation(fmt.Sprintf("new|%s", m.id), Violation{Kind: UIDOrder, At: at.Seconds(), Session: who, Command: cmd,
					Detail:   fmt.Sprintf("%s (%s, made at %.3fs) got UID %d, not above UID %d that had been seen before it was made", m.id, m.source, m.created.Seconds(), uid, prev),
					Evidence: []string{line}})
			}
		}
		return
	}
	evidence := []string{line, "earlier: " + m.learnedBy}
	if s != nil {
		for _, u := range m.uids {
			if s.v.seqOf(u) > 0 {
				l.rec.violation(fmt.Sprintf("%s|%s", who, m.id), Violation{Kind: Duplicate, At: at.Seconds(), Session: who, Command: cmd,
					Detail:   fmt.Sprintf("%s is visible twice: as UID %d and as UID %d", m.id, u, uid),
					Evidence: evidence})
				m.uids = append(m.uids, uid)
				return
			}
		}
	}
	l.rec.violation(fmt.Sprintf("%s|%s|%d", who, m.id, uid), Violation{Kind: UIDChange, At: at.Seconds(), Session: who, Command: cmd,
		Detail:   fmt.Sprintf("%s came back under a new UID: %d, it was UID %v", m.id, uid, m.uids),
		Evidence: evidence})
	m.uids = append(m.uids, uid)
}

// renumbered records that a session's sequence number that held UID
// from now says UID to: the message is the same.
func (l *ledger) renumbered(from, to uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id, ok := l.byUID[from]
	if !ok {
		return
	}
	if _, taken := l.byUID[to]; !taken {
		l.byUID[to] = id
	}
	if m := l.msgs[id]; !slices.Contains(m.uids, to) {
		m.uids = append(m.uids, to)
	}
}

// uidValidityIs checks a UIDVALIDITY a session was told.
func (l *ledger) uidValidityIs(v uint32, at time.Duration, s *session, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.uidValidity == 0 {
		l.uidValidity, l.uidValidityLine = v, line
		return
	}
	if v != l.uidValidity {
		l.rec.violation(fmt.Sprintf("%s|%d", s.name, v), Violation{Kind: UIDValidity, At: at.Seconds(), Session: s.name, Command: s.cur.line,
			Detail:   fmt.Sprintf("UIDVALIDITY %d, it was %d", v, l.uidValidity),
			Evidence: []string{line, "earlier: " + l.uidValidityLine}})
	}
}

// uidNextIs checks a UIDNEXT a session was told in answer to a command
// sent at sent: it must be above every UID and at least every UIDNEXT
// seen before that.
func (l *ledger) uidNextIs(n uint32, sent, at time.Duration, s *session, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev := maxBefore(l.uidMax, sent); n <= prev {
		l.rec.violation(fmt.Sprintf("%s|uid|%d", s.name, n), Violation{Kind: UIDNext, At: at.Seconds(), Session: s.name, Command: s.cur.line,
			Detail:   fmt.Sprintf("UIDNEXT %d, but UID %d had been seen before the command was sent", n, prev),
			Evidence: []string{line}})
	}
	if prev := maxBefore(l.nextMax, sent); n < prev {
		l.rec.violation(fmt.Sprintf("%s|next|%d", s.name, n), Violation{Kind: UIDNext, At: at.Seconds(), Session: s.name, Command: s.cur.line,
			Detail:   fmt.Sprintf("UIDNEXT went down: %d, after %d had been reported", n, prev),
			Evidence: []string{line}})
	}
	if k := len(l.nextMax); k == 0 || l.nextMax[k-1].value < n {
		l.nextMax = append(l.nextMax, mark{at, n})
	}
}

// markDeleted records UID STORE +FLAGS (\Deleted) for uids, sent at at.
func (l *ledger) markDeleted(uids []uint32, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, u := range uids {
		l.delMarks[u] = append(l.delMarks[u], at)
	}
}

// foreignMarkDeleted records that a foreign writer added T (\Deleted) to
// message id's file name.
func (l *ledger) foreignMarkDeleted(id string, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.foreignMarks[id] = append(l.foreignMarks[id], at)
}

// expungeSent records an EXPUNGE (uids nil) or UID EXPUNGE sent at at;
// the caller sets done through expungeDone when it completes.
func (l *ledger) expungeSent(uids []uint32, at time.Duration) *expungeCmd {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := &expungeCmd{uids: uids, sent: at, done: forever}
	l.expunges = append(l.expunges, e)
	for _, u := range uids {
		l.uidExpunges[u] = append(l.uidExpunges[u], e)
	}
	return e
}

func (l *ledger) expungeDone(e *expungeCmd, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.done = at
}

// foreignDeleted records that a foreign writer is about to unlink
// message id.
func (l *ledger) foreignDeleted(id string, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.foreignDel[id]; !ok {
		l.foreignDel[id] = at
	}
}

// expunged records an EXPUNGE response: uid 0 is a message the session
// had not learned the UID of.
func (l *ledger) expunged(s *session, uid uint32, at time.Duration, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if uid == 0 {
		l.unattributed++
		return
	}
	l.told = append(l.told, toldExpunge{session: s.name, command: s.cur.line, uid: uid, at: at, line: line})
}

// causes answers, for one run's records, whether an actor removed a
// message before a time.
type causes struct {
	l *ledger
	// allDone[i] is the latest completion of l.expunges[0..i].
	allDone []time.Duration
	all     []*expungeCmd // EXPUNGE (not UID EXPUNGE), in sending order
}

// newCauses prepares the lookups; the ledger must be complete.
func (l *ledger) newCauses() *causes {
	c := &causes{l: l}
	var latest time.Duration
	for _, e := range l.expunges {
		if e.uids != nil {
			continue
		}
		latest = max(latest, e.done)
		c.all = append(c.all, e)
		c.allDone = append(c.allDone, latest)
	}
	return c
}

// removedBefore says why message m (with uids) may be gone by time t:
// a foreign deletion, a MOVE the server did not refuse (or refused
// while a foreign program moved its target away), or a \Deleted
// flag followed by an EXPUNGE or UID EXPUNGE that was still running or
// later. "" means no actor removed it.
func (c *causes) removedBefore(m *message, uids []uint32, t time.Duration) string {
	l := c.l
	if m != nil {
		if at, ok := l.foreignDel[m.id]; ok && at < t {
			return fmt.Sprintf("a foreign writer deleted its file at %.3fs", at.Seconds())
		}
	}
	for _, u := range uids {
		for _, x := range l.moves[u] {
			if x.sent < t && x.answer != refused {
				return fmt.Sprintf("UID MOVE of UID %d at %.3fs", u, x.sent.Seconds())
			}
			if x.sent < t && l.brokenByForeignLocked(x) {
				return fmt.Sprintf("UID MOVE of UID %d at %.3fs, refused while a foreign program moved its target's directory", u, x.sent.Seconds())
			}
		}
	}
	earliest := forever
	for _, u := range uids {
		for _, at := range l.delMarks[u] {
			earliest = min(earliest, at)
		}
	}
	if m != nil {
		for _, at := range l.foreignMarks[m.id] {
			earliest = min(earliest, at)
		}
	}
	if earliest >= t {
		return ""
	}
	i := sort.Search(len(c.all), func(i int) bool { return c.all[i].sent >= t })
	if i > 0 && c.allDone[i-1] > earliest {
		return fmt.Sprintf("\\Deleted at %.3fs, then EXPUNGE", earliest.Seconds())
	}
	for _, u := range uids {
		for _, e := range l.uidExpunges[u] {
			if e.sent < t && e.done > earliest {
				return fmt.Sprintf("\\Deleted at %.3fs, then UID EXPUNGE at %.3fs", earliest.Seconds(), e.sent.Seconds())
			}
		}
	}
	return ""
}
