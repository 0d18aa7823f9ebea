package imaptorture

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Modseqs (RFC 7162). The run keeps, for the mailbox under test and its
// UIDVALIDITY, every MODSEQ and HIGHESTMODSEQ any session was told and
// when it was received (modseqBook). Each change of a message raises its
// MODSEQ above every MODSEQ told for it before, and HIGHESTMODSEQ never
// goes down:
//
//   - within one selection, a FETCH that shows a message with other flags
//     than the last FETCH with MODSEQ showed must show a higher MODSEQ;
//   - in the resync actor's fetch right after its SELECT, a message shown
//     with other flags than it had at the highest MODSEQ told for it
//     before the SELECT was sent must show a higher MODSEQ;
//   - the HIGHESTMODSEQ of a SELECT or EXAMINE is at least every
//     HIGHESTMODSEQ received (by any session) before it was sent.
//
// A lower MODSEQ with the same flags is no change and is not judged:
// Dovecot reports its log's head modseq for every message until its
// index tracks modseqs, and their own, lower, ones after
// (mail_index_modseq_lookup), which misleads no resync.
//
// The resync actor (resyncActor) is a session that selects, learns the
// mailbox (UID, flags, MODSEQ of every message) and HIGHESTMODSEQ,
// disconnects, stays away while the others work, and comes back with
// SELECT (QRESYNC (uidvalidity modseq known-uids)), or with SELECT and
// UID FETCH 1:* (FLAGS) (CHANGEDSINCE modseq VANISHED), or, without
// QRESYNC, UID FETCH (CHANGEDSINCE modseq) and UID SEARCH ALL for the
// expunges. A UID FETCH 1:* (FLAGS MODSEQ) right after, in the same
// session, and a NOOP are the truth; what the resync reported must
// bring the old model to that truth for every message whose MODSEQ
// there is not above the resync's HIGHESTMODSEQ (a newer change may
// legally be missing): its flags as they are, and each message of the
// model that is gone reported VANISHED (or, without QRESYNC, missing
// from UID SEARCH ALL). A VANISHED (EARLIER) may name UIDs the session
// did not know, even UIDs that never existed (RFC 7162 §3.2.5.1); one
// that names a message of the model is an expunge told to the session
// and judged by the ledger as every EXPUNGE is (phantom_expunge), and
// one whose message the truth fetch still shows is a phantom expunge
// at once.

// modTold is a MODSEQ (or HIGHESTMODSEQ) told: when it was received,
// with which flags (of a FETCH that had FLAGS), in which response.
type modTold struct {
	at       time.Duration
	modseq   uint64
	flags    string
	hasFlags bool
	line     string
}

// modseqBook holds every MODSEQ and HIGHESTMODSEQ of the mailbox under
// test the run was told, by UIDVALIDITY: of each, those that raised the
// maximum when they came.
type modseqBook struct {
	mu      sync.Mutex
	highest map[uint32][]modTold            // HIGHESTMODSEQ
	perUID  map[uint32]map[uint32][]modTold // UIDVALIDITY → UID → MODSEQ
	// dropped are the UIDs (by UIDVALIDITY) told a MODSEQ below one
	// told before (condstore.go).
	dropped map[modseqKey]bool
}

// modseqKey is one UID under one UIDVALIDITY.
type modseqKey struct{ validity, uid uint32 }

// addMark appends t to marks when it raises their maximum.
func addMark(marks []modTold, t modTold) []modTold {
	if n := len(marks); n > 0 && marks[n-1].modseq >= t.modseq {
		return marks
	}
	return append(marks, t)
}

// maxBeforeMod is the mark of marks with the highest value among those
// received before t.
func maxBeforeMod(marks []modTold, t time.Duration) (modTold, bool) {
	var best modTold
	found := false
	for _, m := range marks {
		if m.at < t && (!found || m.modseq > best.modseq) {
			best, found = m, true
		}
	}
	return best, found
}

// told records t, a MODSEQ of uid or (uid 0) a HIGHESTMODSEQ, and
// returns the highest of the same kind received before sent (found
// false: none).
func (b *modseqBook) told(validity, uid uint32, t modTold, sent time.Duration) (before modTold, found bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.highest == nil {
		b.highest = make(map[uint32][]modTold)
		b.perUID = make(map[uint32]map[uint32][]modTold)
	}
	if uid == 0 {
		before, found = maxBeforeMod(b.highest[validity], sent)
		b.highest[validity] = addMark(b.highest[validity], t)
		return before, found
	}
	if b.perUID[validity] == nil {
		b.perUID[validity] = make(map[uint32][]modTold)
	}
	before, found = maxBeforeMod(b.perUID[validity][uid], sent)
	if marks := b.perUID[validity][uid]; len(marks) > 0 && t.modseq < marks[len(marks)-1].modseq {
		if b.dropped == nil {
			b.dropped = make(map[modseqKey]bool)
		}
		b.dropped[modseqKey{validity, uid}] = true
	}
	b.perUID[validity][uid] = addMark(b.perUID[validity][uid], t)
	return before, found
}

// changedWithout reports a FETCH that shows t's flags, other than the
// flags before was told with, without a MODSEQ above before's.
func changedWithout(before, t modTold) bool {
	return t.hasFlags && before.hasFlags && t.flags != before.flags && t.modseq <= before.modseq
}

// modseqTold checks and records a FETCH's MODSEQ for uid.
func (s *session) modseqTold(uid uint32, f *FetchData, at time.Duration, line string) {
	if s.validity == 0 {
		return
	}
	t := modTold{at: at, modseq: f.ModSeq, flags: canonFlags(f.Flags), hasFlags: f.HasFlags, line: line}
	if prev, ok := s.sel.modseqs[uid]; ok && changedWithout(prev, t) {
		s.violationEv(ModseqRegressed, at, fmt.Sprintf("UID %d: flags (%s) at MODSEQ %d, then (%s) at MODSEQ %d in the same selection: a change without a higher MODSEQ", uid, prev.flags, prev.modseq, t.flags, t.modseq), line, "before: "+prev.line)
	}
	if s.sel.modseqs == nil {
		s.sel.modseqs = make(map[uint32]modTold)
	}
	if t.hasFlags || s.sel.modseqs[uid].modseq < t.modseq {
		s.sel.modseqs[uid] = t
	}
	// Only the fetch right after a SELECT is judged against what other
	// sessions were told: a selection's view may lag behind them.
	var sent time.Duration
	if n := s.cur.resync; n != nil && n.truth != nil {
		sent = n.selectSent
	}
	if before, found := s.r.modseqs.told(s.validity, uid, t, sent); found && changedWithout(before, t) {
		s.violationEv(ModseqRegressed, at, fmt.Sprintf("UID %d: (%s) at MODSEQ %d in a fetch right after SELECT, but (%s) at MODSEQ %d was told before the SELECT was sent: a change without a higher MODSEQ", uid, t.flags, t.modseq, before.flags, before.modseq), line, "before: "+before.line)
	}
}

// highestTold checks and records a HIGHESTMODSEQ response code.
func (s *session) highestTold(resp *Response, at time.Duration) {
	if len(resp.CodeArgs) != 1 || s.validity == 0 {
		return
	}
	v, err := strconv.ParseUint(resp.CodeArgs[0], 10, 63)
	if err != nil {
		return
	}
	s.highest = v
	var sent time.Duration
	if s.cur.selectCmd {
		sent = s.cur.sent
	}
	if before, found := s.r.modseqs.told(s.validity, 0, modTold{at: at, modseq: v, line: resp.Line}, sent); found && v < before.modseq {
		s.violationEv(ModseqRegressed, at, fmt.Sprintf("HIGHESTMODSEQ %d, below the HIGHESTMODSEQ %d received before the command was sent", v, before.modseq), resp.Line, "before: "+before.line)
	}
}

func (s *session) violationEv(k Kind, at time.Duration, detail string, evidence ...string) {
	s.r.rec.violation("", Violation{Kind: k, At: at.Seconds(), Session: s.name, Command: s.cur.line, Detail: detail, Evidence: slices.DeleteFunc(evidence, func(e string) bool { return e == "" || e == "before: " })})
}

// resyncNews is what a resync collects: during the resync commands, the
// flags reported and the UIDs VANISHED (EARLIER); during the truth fetch
// (truth not nil), every message's flags and MODSEQ; all along, the UIDs
// told expunged from the new selection (later: VANISHED without
// EARLIER, EXPUNGE), which went after the SELECT.
type resyncNews struct {
	selectSent time.Duration
	reported   map[uint32]string
	vanished   []uidRange
	vanishedBy []string      // the VANISHED (EARLIER) responses
	vanishedAt time.Duration // when the last one came
	truth      map[uint32]modTold
	later      map[uint32]bool
	present    map[uint32]bool // UID SEARCH ALL, without QRESYNC
}

// newResyncNews starts collecting for a resync, before its SELECT.
func newResyncNews() *resyncNews {
	return &resyncNews{reported: make(map[uint32]string), later: make(map[uint32]bool)}
}

// onVanished follows a VANISHED response: without (EARLIER), the UIDs
// leave the view as an EXPUNGE would; with it, the resync collects them.
func (s *session) onVanished(resp *Response, at time.Duration) {
	if resp.Earlier {
		if n := s.cur.resync; n != nil && n.truth == nil {
			n.vanished = append(n.vanished, resp.Vanished...)
			n.vanishedBy = append(n.vanishedBy, resp.Line)
			n.vanishedAt = at
		}
		return
	}
	for _, rg := range resp.Vanished {
		removed := make(map[uint32]bool)
		for _, u := range s.v.known() {
			if u < rg.lo || u > rg.hi {
				continue
			}
			removed[u] = true
			s.untagged++
			s.v.remove(s.v.seqOf(u))
			s.r.led.expunged(s, u, at, resp.Line)
			if n := s.cur.resync; n != nil && n.later != nil {
				n.later[u] = true
			}
		}
		// A UID the session has not learned yet names one of the
		// messages whose UID it does not know, between the known UIDs
		// around it: which one is all the same to the view, and the
		// server named the UID.
		for u := rg.lo; u <= rg.hi && u-rg.lo < maxCopyUIDs; u++ {
			if seq := s.v.unknownSlot(u); seq != 0 && !removed[u] {
				s.untagged++
				s.v.remove(seq)
				s.r.led.expunged(s, u, at, resp.Line)
				if n := s.cur.resync; n != nil && n.later != nil {
					n.later[u] = true
				}
			}
			if u == rg.hi {
				break
			}
		}
	}
}

// resyncActor reconnects again and again to resynchronise.
type resyncActor struct {
	*session
	qresync bool
	away    time.Duration
}

// newResyncActors makes the resync actors: n, if the server offers
// CONDSTORE; with a note, why none ran otherwise.
func (r *run) newResyncActors(n int, caps map[string]bool) ([]*resyncActor, string) {
	if n == 0 {
		return nil, ""
	}
	if !caps["CONDSTORE"] && !caps["QRESYNC"] {
		return nil, "the server offers neither CONDSTORE nor QRESYNC (RFC 7162): the resync actors and the modseq checks did nothing"
	}
	note := ""
	if !caps["QRESYNC"] {
		note = "the server offers CONDSTORE without QRESYNC: the resync actors used UID FETCH (CHANGEDSINCE) and UID SEARCH ALL for expunges"
	}
	var out []*resyncActor
	for i := range n {
		a := &resyncActor{session: r.newSession("resync-" + strconv.Itoa(i+1)), qresync: caps["QRESYNC"], away: r.cfg.ResyncAway}
		out = append(out, a)
	}
	return out, note
}

// loop resynchronises until the run stops.
func (a *resyncActor) loop() error {
	for !a.r.stopping() {
		if err := a.round(); err != nil {
			return err
		}
	}
	return nil
}

// connect logs in, enables what the resync needs, and sends line (a
// SELECT) as a selection.
func (a *resyncActor) connect() error {
	s := a.session
	if err := s.connect(); err != nil {
		return err
	}
	if a.qresync {
		resp, err := s.do("ENABLE", "ENABLE QRESYNC", curCmd{})
		if err != nil {
			return err
		}
		if resp.Type != "OK" {
			return fmt.Errorf("ENABLE QRESYNC: %s", resp.Line)
		}
	}
	return nil
}

// selectWith selects the mailbox with a SELECT parameter list.
func (a *resyncActor) selectWith(label, params string, news *resyncNews) error {
	s := a.session
	s.beginSelection()
	line := "SELECT " + quote(s.r.cfg.Mailbox)
	if params != "" {
		line += " (" + params + ")"
	}
	cmd := curCmd{selecting: true, selectCmd: true, resync: news}
	resp, err := s.do(label, line, cmd)
	if news != nil {
		news.selectSent = s.cur.sent
	}
	if err != nil {
		return err
	}
	if resp.Type != "OK" {
		return fmt.Errorf("%s: %s", line, resp.Line)
	}
	s.readOnly = false
	return nil
}

// round is one resynchronisation: learn, go away, come back, judge.
func (a *resyncActor) round() error {
	s := a.session
	if err := a.connect(); err != nil {
		return err
	}
	s.highest = 0
	params := "CONDSTORE"
	if a.qresync {
		params = ""
	}
	if err := a.selectWith("SELECT", params, nil); err != nil {
		return err
	}
	validity, highest := s.validity, s.highest
	if _, err := s.do("FETCH learn", "UID FETCH 1:* (UID FLAGS MODSEQ BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])", curCmd{}); err != nil {
		return err
	}
	if err := s.learn(); err != nil {
		return err
	}
	old := s.v.snapshot()
	s.endSelection()
	s.c.logout()
	s.r.forget(s.c)
	if highest == 0 {
		return fmt.Errorf("SELECT gave no HIGHESTMODSEQ although the server offers CONDSTORE")
	}

	lo := a.away / 5
	a.stayAway(lo + time.Duration(s.rng.Int64N(int64(a.away-lo)+1)))

	if err := a.connect(); err != nil {
		return err
	}
	defer func() {
		s.endSelection()
		s.c.logout()
		s.r.forget(s.c)
	}()
	known := make([]uint32, 0, len(old))
	for u := range old {
		known = append(known, u)
	}
	slices.Sort(known)
	news := newResyncNews()
	form := "QRESYNC"
	var newHighest uint64
	switch {
	case a.qresync && s.rng.IntN(2) == 0 && len(known) > 0:
		p := fmt.Sprintf("QRESYNC (%d %d %s)", validity, highest, compactSet(known))
		if err := a.selectWith("resync SELECT", p, news); err != nil {
			return err
		}
		newHighest = s.highest
	default:
		form = "CHANGEDSINCE"
		if err := a.selectWith("resync SELECT", params, news); err != nil {
			return err
		}
		newHighest = s.highest
		mod := ""
		if a.qresync {
			mod = " VANISHED"
		}
		line := fmt.Sprintf("UID FETCH 1:* (UID FLAGS MODSEQ) (CHANGEDSINCE %d%s)", highest, mod)
		if _, err := s.do("resync FETCH", line, curCmd{resync: news}); err != nil {
			return err
		}
		if !a.qresync {
			news.present = make(map[uint32]bool)
			if _, err := s.do("resync SEARCH", "UID SEARCH ALL", curCmd{uidSearch: true, resync: news}); err != nil {
				return err
			}
		}
	}
	news.truth = make(map[uint32]modTold)
	if _, err := s.do("resync truth", "UID FETCH 1:* (UID FLAGS MODSEQ BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])", curCmd{resync: news}); err != nil {
		return err
	}
	if _, err := s.do("resync truth", "NOOP", curCmd{resync: news}); err != nil {
		return err
	}
	if s.validity != validity {
		return nil // a new UIDVALIDITY: the uidvalidity check reports it
	}
	a.judge(form, old, highest, newHighest, news)
	s.r.counts.resyncs.Add(1)
	return a.searchModSeq(highest+1, news.truth)
}

// searchModSeq checks UID SEARCH MODSEQ since (RFC 7162 §3.1.5: the
// messages whose MODSEQ is since or more) against the truth just
// fetched: a message the truth showed at a MODSEQ of since or more must
// be in the result unless the session is told of its expunge meanwhile
// (MODSEQs never go down). More is allowed: a message may have changed
// since the truth.
func (a *resyncActor) searchModSeq(since uint64, truth map[uint32]modTold) error {
	s := a.session
	news := &resyncNews{present: make(map[uint32]bool), later: make(map[uint32]bool), reported: make(map[uint32]string)}
	cmd := "UID SEARCH MODSEQ " + strconv.FormatUint(since, 10)
	if _, err := s.do("resync SEARCH MODSEQ", cmd, curCmd{uidSearch: true, resync: news}); err != nil {
		return err
	}
	at := s.r.now()
	uids := slices.Sorted(maps.Keys(truth))
	for _, u := range uids {
		t := truth[u]
		if t.modseq < since || news.present[u] || news.later[u] || s.v.seqOf(u) == 0 || s.r.modseqs.droppedFor(s.validity, u) {
			continue // a MODSEQ that went down (droppedFor) proves nothing
		}
		s.cur = curCmd{line: cmd, sent: at}
		s.violationEv(SearchModSeqWrong, at, fmt.Sprintf("UID %d (%s) is not in the result, and the fetch right before showed it at MODSEQ %d", u, s.r.led.idOf(u), t.modseq), t.line)
	}
	return nil
}

// stayAway waits d, or less when the run stops meanwhile: the actor
// then comes back at once, to be judged before the final check.
func (a *resyncActor) stayAway(d time.Duration) {
	const step = 50 * time.Millisecond
	for end := time.Now().Add(d); !a.r.stopping(); {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		select {
		case <-a.r.ctx.Done():
			return
		case <-time.After(min(step, left)):
		}
	}
}

// judge compares the old model brought up to date by what the resync
// reported with the truth.
func (a *resyncActor) judge(form string, old map[uint32]string, oldHighest, newHighest uint64, news *resyncNews) {
	s := a.session
	at := s.r.now()
	s.cur = curCmd{line: "resync (" + form + ")", sent: at}
	uids := make([]uint32, 0, len(old))
	for u := range old {
		uids = append(uids, u)
	}
	slices.Sort(uids)
	vanishedBy := strings.Join(news.vanishedBy, " ")
	for _, u := range uids {
		id := s.r.led.idOf(u)
		t, there := news.truth[u]
		reportedGone := inRanges(news.vanished, u) || news.present != nil && !news.present[u]
		switch {
		case reportedGone && there:
			s.violationEv(PhantomExpunge, at, fmt.Sprintf("the resync since MODSEQ %d reported UID %d (%s) gone, yet the fetch right after shows it", oldHighest, u, id), vanishedBy, t.line)
			continue
		case reportedGone:
			if inRanges(news.vanished, u) {
				s.r.led.expunged(s, u, news.vanishedAt, "VANISHED (EARLIER) "+strconv.FormatUint(uint64(u), 10)+" in "+cut([]byte(vanishedBy), evidenceBytes))
			}
			continue
		case !there && !news.later[u]:
			s.violationEv(ResyncMissed, at, fmt.Sprintf("UID %d (%s) is gone, and the resync since MODSEQ %d (HIGHESTMODSEQ %d now) did not report it VANISHED", u, id, oldHighest, newHighest), vanishedBy)
			continue
		case !there:
			continue
		}
		if t.modseq > newHighest {
			continue // changed after the resync's HIGHESTMODSEQ
		}
		after, told := news.reported[u]
		if !told {
			after = old[u]
		}
		if after != t.flags {
			how := "reported nothing for it"
			if told {
				how = "reported (" + after + ")"
			}
			s.violationEv(ResyncMissed, at, fmt.Sprintf("UID %d (%s): the session had (%s), the resync since MODSEQ %d %s, the mailbox has (%s) at MODSEQ %d, not above the resync's HIGHESTMODSEQ %d", u, id, old[u], oldHighest, how, t.flags, t.modseq, newHighest), t.line)
		}
	}
}
