package imaptorture

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Conditional STORE (RFC 7162 §3.1.3). A session that fetches MODSEQ
// (the server offers CONDSTORE) now and then, in place of a plain
// STORE, fetches FLAGS and MODSEQ of a few messages, sends
//
//	UID STORE set (UNCHANGEDSINCE m) +FLAGS/-FLAGS/FLAGS (...)
//
// with m the highest MODSEQ it was just told for them (one time in four
// a stale m, below the lowest), and fetches FLAGS and MODSEQ of the set
// again (the truth). The server refuses (names in [MODIFIED set]) each
// message whose MODSEQ is above m and changes the others. What the
// checker can know for certain under concurrency: a MODSEQ told (to any
// session) was the message's MODSEQ or below it from then on, unless a
// lower one is told later (Dovecot shows its log's head modseq for a
// message until its index tracks modseqs, then a lower one; a view may
// lag). So unchangedsince_wrong is reported for a message of the set
// that the truth still shows when:
//
//   - it is in MODIFIED, yet the truth shows it at a MODSEQ not above m
//     and no session was ever told a MODSEQ above m for it before the
//     truth was asked: the server refused a message unchanged since m;
//   - it is not in MODIFIED, and a MODSEQ above m was told for it (to
//     any session) before the STORE was sent: the server changed a
//     message that had changed since m;
//   - it is in MODIFIED, yet its flags went from those the session was
//     told right before to exactly what this STORE asks, while no other
//     command that may change its flags (a STORE of any session, a
//     FETCH of BODY[] that sets \Seen, a foreign rename of its file,
//     whose effect the server may pick up any time later) ran between
//     that fetch and the truth: the server refused and did it anyway.
//
// The first two are not judged for a message ever told a MODSEQ below
// one told before: its MODSEQs then prove nothing.
//
// The ledger keeps every command that may change flags of the mailbox
// under test, with the UIDs it names (a STORE by sequence number
// naming a message whose UID the session had not learned may change
// any), from before it is sent until its answer (flagBook).

// condShare: one plain STORE in this many of a session that fetches
// MODSEQ is a conditional STORE instead; staleShare: one conditional
// STORE in this many uses a stale UNCHANGEDSINCE.
const (
	condShare  = 3
	staleShare = 4
)

// flagSpan is a command that may change flags: from when it was sent
// to its answer (forever while none came).
type flagSpan struct {
	what       string
	sent, done time.Duration
}

// flagBook is the part of the ledger about commands that may change
// flags in the mailbox under test. Guarded by ledger.mu.
type flagBook struct {
	byUID map[uint32][]*flagSpan
	// anyUID are the spans that may change any message (a STORE by
	// sequence number naming a UID not learned yet).
	anyUID []*flagSpan
	// foreign are the foreign flag renames, by Message-ID: the server
	// may pick them up at any later sync; anyForeign those of files whose
	// Message-ID the writer could not read.
	foreign    map[string][]time.Duration
	anyForeign []time.Duration
}

// flagWriting records that who is about to send line, which may change
// the flags of uids (all messages, if any). The caller passes the span
// to flagWritten when the answer comes.
func (l *ledger) flagWriting(who, line string, uids []uint32, any bool, at time.Duration) *flagSpan {
	l.mu.Lock()
	defer l.mu.Unlock()
	sp := &flagSpan{what: fmt.Sprintf("%s: %s", who, line), sent: at, done: forever}
	if l.flags.byUID == nil {
		l.flags.byUID = make(map[uint32][]*flagSpan)
		l.flags.foreign = make(map[string][]time.Duration)
	}
	if any {
		l.flags.anyUID = append(l.flags.anyUID, sp)
		return sp
	}
	for _, u := range uids {
		l.flags.byUID[u] = append(l.flags.byUID[u], sp)
	}
	return sp
}

// flagWritten records that the command of sp was answered at at; err:
// no answer came, and it may still run.
func (l *ledger) flagWritten(sp *flagSpan, err error, at time.Duration) {
	if sp == nil || err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	sp.done = at
}

// foreignFlagRename records that a foreign writer is about to rename
// the file of message id to other flags.
func (l *ledger) foreignFlagRename(id string, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id == "" {
		l.flags.anyForeign = append(l.flags.anyForeign, at)
		return
	}
	if l.flags.foreign == nil {
		l.flags.byUID = make(map[uint32][]*flagSpan)
		l.flags.foreign = make(map[string][]time.Duration)
	}
	l.flags.foreign[id] = append(l.flags.foreign[id], at)
}

// otherFlagWriter describes a command other than self that may have
// changed the flags of uid between from and to, or returns "".
func (l *ledger) otherFlagWriter(uid uint32, self *flagSpan, from, to time.Duration) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	overlaps := func(sp *flagSpan) bool { return sp != self && sp.sent < to && sp.done > from }
	for _, sp := range l.flags.byUID[uid] {
		if overlaps(sp) {
			return sp.what
		}
	}
	for _, sp := range l.flags.anyUID {
		if overlaps(sp) {
			return sp.what
		}
	}
	for _, at := range l.flags.anyForeign {
		if at < to {
			return fmt.Sprintf("a foreign rename of a file it could not identify at %.3fs", at.Seconds())
		}
	}
	id := l.byUID[uid]
	if id == "" {
		return "a foreign writer (the message is not identified)"
	}
	for _, at := range l.flags.foreign[id] {
		if at < to {
			return fmt.Sprintf("a foreign rename of its file at %.3fs", at.Seconds())
		}
	}
	return ""
}

// flagWriteIntent records line, if it is a command that may change
// flags of the mailbox under test (STORE, FETCH of BODY[] without
// PEEK), and returns its span; nil otherwise.
func (s *session) flagWriteIntent(line string, at time.Duration) *flagSpan {
	f := strings.Fields(line)
	uid := len(f) > 0 && strings.EqualFold(f[0], "UID")
	if uid {
		f = f[1:]
	}
	if len(f) < 3 {
		return nil
	}
	verb := strings.ToUpper(f[0])
	switch {
	case verb == "STORE":
	case verb == "FETCH" && strings.Contains(strings.ToUpper(line), " BODY["):
	default:
		return nil
	}
	set := f[1]
	var uids []uint32
	any := false
	if uid {
		rs, err := parseUIDRanges(set)
		if err != nil {
			any = true
		}
		for _, r := range rs {
			for u := r.lo; u <= r.hi && u-r.lo < maxCopyUIDs; u++ {
				uids = append(uids, u)
			}
		}
	} else {
		rs, err := parseUIDRanges(set)
		if err != nil {
			any = true
		}
		for _, r := range rs {
			for n := r.lo; n <= r.hi && n-r.lo < maxCopyUIDs; n++ {
				if n > s.v.len() || s.v.uids[n-1] == 0 {
					any = true
					break
				}
				uids = append(uids, s.v.uids[n-1])
			}
		}
	}
	return s.r.led.flagWriting(s.name, line, uids, any, at)
}

// condTold collects the FLAGS and MODSEQ a command was told, per UID.
type condTold map[uint32][]modTold

// opCondStore sends one conditional STORE and judges the answer.
func (s *session) opCondStore() error {
	uids := s.pick(3)
	if uids == nil {
		return s.opNoop()
	}
	set := uidSet(uids)
	before := make(condTold)
	if _, err := s.do("FETCH FLAGS", "UID FETCH "+set+" (UID FLAGS MODSEQ)", curCmd{cond: before}); err != nil {
		return err
	}
	beforeSent := s.cur.sent
	var known []uint32
	low, high := uint64(math.MaxUint64), uint64(0)
	for _, u := range uids {
		t, ok := lastTold(before[u])
		if !ok {
			continue
		}
		known = append(known, u)
		low, high = min(low, t.modseq), max(high, t.modseq)
	}
	if len(known) == 0 {
		return nil
	}
	m, stale := high, false
	if s.rng.IntN(staleShare) == 0 && low > 1 {
		m, stale = low-1, true
	}
	flag := storeFlags[s.rng.IntN(len(storeFlags))]
	item := [...]string{"+FLAGS", "-FLAGS", "FLAGS"}[s.rng.IntN(3)]
	if s.rng.IntN(4) == 0 {
		item += ".SILENT"
	}
	set = uidSet(known)
	line := fmt.Sprintf("UID STORE %s (UNCHANGEDSINCE %d) %s (%s)", set, m, item, flag)
	resp, err := s.do("STORE conditional", line, curCmd{})
	if err != nil {
		return err
	}
	self, sent := s.lastSpan, s.cur.sent
	if resp.Type != "OK" {
		return nil
	}
	var modified []uidRange
	if resp.Code == "MODIFIED" && len(resp.CodeArgs) == 1 {
		if modified, err = parseUIDRanges(resp.CodeArgs[0]); err != nil {
			return fmt.Errorf("%s: MODIFIED: %w", line, err)
		}
	}
	truth := make(condTold)
	if _, err := s.do("FETCH FLAGS", "UID FETCH "+set+" (UID FLAGS MODSEQ)", curCmd{cond: truth}); err != nil {
		return err
	}
	c := condStore{line: line, reply: resp.Line, m: m, item: item, flag: flag, self: self, beforeSent: beforeSent, sent: sent, truthSent: s.cur.sent}
	for _, u := range known {
		b, _ := lastTold(before[u])
		s.judgeCond(c, u, inRanges(modified, u), b, truth[u])
	}
	s.r.counts.condStores.Add(1)
	if stale {
		s.r.counts.condStale.Add(1)
	}
	if len(modified) > 0 {
		s.r.counts.condModified.Add(1)
	}
	return nil
}

// condStore is one conditional STORE, for judging.
type condStore struct {
	line, reply      string
	m                uint64
	item, flag       string
	self             *flagSpan
	beforeSent, sent time.Duration
	truthSent        time.Duration
}

// want is the flags a message with flags before (canonical) has after
// the STORE.
func (c condStore) want(before string) string {
	list := strings.Fields(before)
	f := strings.ToLower(c.flag)
	switch {
	case strings.HasPrefix(c.item, "+"):
		list = append(list, f)
	case strings.HasPrefix(c.item, "-"):
		list = slices.DeleteFunc(list, func(x string) bool { return x == f })
	default:
		list = []string{f}
	}
	return canonFlags(list)
}

// lastTold is the report of the highest MODSEQ among ts.
func lastTold(ts []modTold) (modTold, bool) {
	var best modTold
	found := false
	for _, t := range ts {
		if !found || t.modseq > best.modseq {
			best, found = t, true
		}
	}
	return best, found
}

// judgeCond judges the outcome of conditional STORE c for uid: refused
// (in MODIFIED) or not, b what the session was told right before,
// truth what it was told right after.
func (s *session) judgeCond(c condStore, uid uint32, refused bool, b modTold, truth []modTold) {
	if len(truth) == 0 {
		return // expunged meanwhile
	}
	low := uint64(math.MaxUint64)
	flags := truth[0].flags
	for _, t := range truth {
		low = min(low, t.modseq)
		if t.flags != flags {
			flags = "" // told two states: not judged by flags
		}
	}
	id := s.r.led.idOf(uid)
	ev := []string{c.line + " → " + c.reply, "before: " + b.line}
	for _, t := range truth {
		ev = append(ev, "after: "+t.line)
	}
	report := func(detail string, more ...string) {
		s.r.rec.violation(fmt.Sprintf("cond|%s|%d|%.6f", s.name, uid, c.sent.Seconds()), Violation{Kind: UnchangedSinceWrong, At: s.r.now().Seconds(), Session: s.name, Command: c.line,
			Detail: detail, Evidence: append(ev, more...)})
	}
	above, toldAbove := s.r.modseqs.highestBefore(s.validity, uid, c.truthSent)
	dropped := s.r.modseqs.droppedFor(s.validity, uid)
	switch {
	case !refused && dropped:
		return
	case refused && !dropped && low <= c.m && (!toldAbove || above.modseq <= c.m):
		report(fmt.Sprintf("UID %d (%s) was refused as MODIFIED since %d, yet it is at MODSEQ %d after the STORE and no session was told a MODSEQ above %d for it", uid, id, c.m, low, c.m))
		return
	case !refused:
		if r, ok := s.r.modseqs.highestBefore(s.validity, uid, c.sent); ok && r.modseq > c.m {
			report(fmt.Sprintf("UID %d (%s) was changed by a STORE UNCHANGEDSINCE %d, not named MODIFIED, though its MODSEQ was %d before the STORE was sent", uid, id, c.m, r.modseq), "told before: "+r.line)
		}
		return
	}
	if flags == "" || !b.hasFlags || flags == b.flags || flags != c.want(b.flags) {
		return
	}
	if w := s.r.led.otherFlagWriter(uid, c.self, c.beforeSent, c.truthSent); w != "" {
		return
	}
	report(fmt.Sprintf("UID %d (%s) was refused as MODIFIED since %d, yet its flags went from (%s) to (%s), as this STORE asked, and no other command could change them meanwhile", uid, id, c.m, b.flags, flags))
}

// condTold records a FETCH's FLAGS and MODSEQ for uid during a command
// that collects them.
func (c condTold) add(uid uint32, f *FetchData, at time.Duration, line string) {
	if !f.HasModSeq || !f.HasFlags {
		return
	}
	c[uid] = append(c[uid], modTold{at: at, modseq: f.ModSeq, flags: canonFlags(f.Flags), hasFlags: true, line: line})
}

// droppedFor reports whether uid (UIDVALIDITY validity) was told a
// MODSEQ below one told before: Dovecot's log head modseq, shown until
// its index tracks modseqs, or a view that lags. Its MODSEQs then prove
// nothing about when it changed.
func (b *modseqBook) droppedFor(validity, uid uint32) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped[modseqKey{validity, uid}]
}

// highestBefore returns the highest MODSEQ told for uid (UIDVALIDITY
// validity) received before t.
func (b *modseqBook) highestBefore(validity, uid uint32, t time.Duration) (modTold, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.perUID == nil {
		return modTold{}, false
	}
	return maxBeforeMod(b.perUID[validity][uid], t)
}

// condNote is the note of a run whose server offers no CONDSTORE.
const condNote = "the server offers no CONDSTORE (RFC 7162): no conditional STORE (UNCHANGEDSINCE) was sent"

// condStat formats the figures of the conditional STOREs.
func condStat(n, stale, modified int) string {
	return strconv.Itoa(n) + " conditional STOREs judged (" + strconv.Itoa(stale) + " with a stale UNCHANGEDSINCE, " + strconv.Itoa(modified) + " answered MODIFIED)"
}
