package imaptorture

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// finalCheck runs once the actors have stopped: every live session
// listens in NOOP rounds until a round brings no news, a fresh checker
// session selects the mailbox, every session then fetches the whole
// mailbox, and the views are compared with each other, with what each
// session had been told, and with the Maildir; last, the ledger is read
// for phantom expunges and lost messages.
func (r *run) finalCheck(live []*session, fw *foreignWriters, res *Result) {
	heard := func() int {
		n := 0
		for _, s := range live {
			n += s.untagged
		}
		return n
	}
	for round := 0; round < quietRounds; round++ {
		before := heard()
		live = r.each(live, func(s *session) error {
			if _, err := s.do("NOOP", "NOOP", curCmd{}); err != nil {
				return err
			}
			return s.learn()
		})
		if round > 0 && heard() == before {
			break
		}
		time.Sleep(quietPause)
	}

	checker := r.newSession("checker")
	checker.quiet = true
	if err := checker.open(); err != nil {
		r.rec.failure("checker", err)
		checker = nil
	}
	all := slices.Clone(live)
	if checker != nil {
		all = append(all, checker)
	}
	at := r.rec.since(time.Now()).Seconds()
	finals := make(map[*session]map[uint32]string)
	all = r.each(all, func(s *session) error {
		told := s.v.snapshot()
		_, _, partial := s.v.unknown()
		s.cur.fetched = make(map[uint32]string)
		fetched := s.cur.fetched
		if s.v.len() > 0 {
			cmd := curCmd{fetched: fetched}
			if _, err := s.do("FETCH learn", "UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])", cmd); err != nil {
				return err
			}
		}
		finals[s] = fetched
		r.compareViews(s.name, "what it had been told", told, "the final UID FETCH", fetched, partial, at)
		r.duplicates(s, fetched, at)
		return nil
	})
	var ref map[uint32]string
	refName := ""
	if checker != nil && finals[checker] != nil {
		ref, refName = finals[checker], "a new session"
	} else if len(all) > 0 {
		ref, refName = finals[all[0]], all[0].name
	}
	for _, s := range all {
		if s != checker && refName != s.name {
			r.compareViews(s.name, "its final view", finals[s], refName, ref, false, at)
		}
	}
	for _, s := range all {
		s.c.logout()
	}

	shownIDs := make(map[string]bool) // Message-IDs the server still shows
	shown := make(map[uint32]bool)    // UIDs the server still shows
	for _, f := range finals {
		for uid := range f {
			shown[uid] = true
			if id := r.led.idOf(uid); id != "" {
				shownIDs[id] = true
			}
		}
	}
	res.Messages.Final = len(ref)
	var disk []diskMessage
	if fw != nil {
		disk = readMaildir(r.cfg.Maildir)
		r.compareDisk(disk, ref, at)
	}
	r.analyse(shownIDs, shown, disk, at)
	if note := r.checkRecentTaken(shown, at); note != "" {
		r.progress("%s", note)
		res.Notes = append(res.Notes, note)
	}
}

// each runs f on every session, one after the other, and returns those
// for which it did not fail.
func (r *run) each(ss []*session, f func(s *session) error) []*session {
	var ok []*session
	for _, s := range ss {
		if err := f(s); err != nil {
			s.endSelection()
			r.rec.failure(s.name+" (final check)", err)
			s.c.close()
			continue
		}
		ok = append(ok, s)
	}
	return ok
}

// compareViews reports every UID on which two views of one mailbox
// differ: present in one only, or with other flags. partial: a lacks
// the messages it never identified (no Message-ID), so only b's UIDs
// that a has are compared.
func (r *run) compareViews(session, aName string, a map[uint32]string, bName string, b map[uint32]string, partial bool, at float64) {
	var uids []uint32
	for u := range a {
		uids = append(uids, u)
	}
	for u := range b {
		if _, ok := a[u]; !ok {
			uids = append(uids, u)
		}
	}
	slices.Sort(uids)
	for _, u := range uids {
		fa, inA := a[u]
		fb, inB := b[u]
		var detail string
		switch {
		case !inB:
			detail = fmt.Sprintf("UID %d (%s) is in %s with flags (%s), not in %s", u, r.led.idOf(u), aName, fa, bName)
		case !inA && partial:
			continue
		case !inA:
			detail = fmt.Sprintf("UID %d (%s) is in %s with flags (%s), not in %s", u, r.led.idOf(u), bName, fb, aName)
		case fa != fb:
			detail = fmt.Sprintf("UID %d (%s) has flags (%s) in %s, (%s) in %s", u, r.led.idOf(u), fa, aName, fb, bName)
		default:
			continue
		}
		r.rec.violation(fmt.Sprintf("%s|%d", session, u), Violation{Kind: FlagsDiverge, At: at, Session: session, Detail: detail})
	}
}

// duplicates reports a message visible under two UIDs in one view.
func (r *run) duplicates(s *session, view map[uint32]string, at float64) {
	byID := make(map[string][]uint32)
	for u := range view {
		if id := r.led.idOf(u); id != "" {
			byID[id] = append(byID[id], u)
		}
	}
	for id, uids := range byID {
		if len(uids) > 1 {
			slices.Sort(uids)
			r.rec.violation(s.name+"|"+id, Violation{Kind: Duplicate, At: at, Session: s.name,
				Detail: fmt.Sprintf("%s is visible %d times at the end: UIDs %v", id, len(uids), uids)})
		}
	}
}

// compareDisk reports messages whose file name flags differ from the
// server's, and messages the server shows whose file is gone.
func (r *run) compareDisk(disk []diskMessage, ref map[uint32]string, at float64) {
	keywords := diskKeywords(r.cfg.Maildir)
	byID := make(map[string]diskMessage, len(disk))
	for _, d := range disk {
		byID[d.id] = d
	}
	uids := make([]uint32, 0, len(ref))
	for u := range ref {
		uids = append(uids, u)
	}
	slices.Sort(uids)
	for _, u := range uids {
		id := r.led.idOf(u)
		if id == "" {
			continue
		}
		d, ok := byID[id]
		if !ok {
			r.rec.violation(fmt.Sprintf("disk|%d", u), Violation{Kind: FlagsDiverge, At: at, Session: "disk",
				Detail: fmt.Sprintf("the server shows UID %d (%s), whose file is gone from %s", u, id, r.cfg.Maildir)})
			continue
		}
		onDisk, complete := diskFlags(d.flags, keywords)
		server := ref[u]
		if !complete {
			onDisk, server = systemOnly(onDisk), systemOnly(server)
		}
		if onDisk != server {
			r.rec.violation(fmt.Sprintf("disk|%d", u), Violation{Kind: FlagsDiverge, At: at, Session: "disk",
				Detail: fmt.Sprintf("UID %d (%s) has flags (%s) on the server, (%s) in its file name %s:2,%s", u, id, server, onDisk, d.base, d.flags)})
		}
	}
}

// analyse reads the ledger: every EXPUNGE a session was told must follow
// a removal by an actor and must be true at the end; every message that
// was seen and is gone must have been removed by an actor (a MOVE the
// server refused removed nothing); every message the server accepted
// must have appeared; nothing an APPEND, COPY or MOVE the server
// refused would have made may have appeared.
func (r *run) analyse(shownIDs map[string]bool, shown map[uint32]bool, disk []diskMessage, at float64) {
	l := r.led
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.newCauses()
	told := make(map[string]bool)
	for _, t := range l.told {
		id := l.byUID[t.uid]
		m := l.msgs[id]
		if m == nil && r.cfg.Maildir != "" {
			// Which message it was is unknown, and a foreign deletion
			// is known by message only: the expunge cannot be judged.
			l.unjudged++
			continue
		}
		uids := []uint32{t.uid}
		if m != nil {
			uids = m.uids
			told[id] = true
		}
		evidence := []string{t.line}
		if m != nil && m.learnedBy != "" {
			evidence = append(evidence, "learned: "+m.learnedBy)
		}
		cause := c.removedBefore(m, uids, t.at)
		refusedMove, movedUID := c.refusedMove(uids, t.at)
		switch {
		case cause == "" && refusedMove != nil && !shown[t.uid]:
			l.refusedMoveLocked(refusedMove, movedUID, id, t.session, t.command, t.line, t.at.Seconds(), evidence)
		case cause == "":
			l.rec.violation(fmt.Sprintf("%s|%d", t.session, t.uid), Violation{Kind: PhantomExpunge, At: t.at.Seconds(), Session: t.session, Command: t.command,
				Detail: fmt.Sprintf("told that UID %d (%s) was expunged; no actor had removed it", t.uid, id), Evidence: evidence})
		case shown[t.uid]:
			l.rec.violation(fmt.Sprintf("%s|%d", t.session, t.uid), Violation{Kind: PhantomExpunge, At: t.at.Seconds(), Session: t.session, Command: t.command,
				Detail: fmt.Sprintf("told that UID %d (%s) was expunged (%s), but the server still shows it at the end", t.uid, id, cause), Evidence: evidence})
		}
	}
	onDisk := make(map[string]bool, len(disk))
	for _, d := range disk {
		onDisk[d.id] = true
	}
	var ids []string
	for id, m := range l.msgs {
		if m.ours {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := l.msgs[id]
		refusedMove, movedUID := c.refusedMove(m.uids, forever)
		switch {
		case shownIDs[id]:
		case onDisk[id] && m.seen:
			l.rec.violation("end|"+id, Violation{Kind: PhantomExpunge, At: at, Session: "disk",
				Detail:   fmt.Sprintf("%s (UID %v, %s) is still on disk, but the server no longer shows it", id, m.uids, m.source),
				Evidence: []string{"learned: " + m.learnedBy}})
		case onDisk[id] && m.acked:
			l.rec.violation("end|"+id, Violation{Kind: Lost, At: at, Session: "disk",
				Detail: fmt.Sprintf("%s (%s) is on disk, but the server never showed it", id, m.source)})
		case onDisk[id] || told[id] || c.removedBefore(m, m.uids, forever) != "":
		case m.seen && refusedMove != nil:
			l.refusedMoveLocked(refusedMove, movedUID, id, "checker", "", "", at, []string{"learned: " + m.learnedBy})
		case m.seen:
			l.rec.violation("end|"+id, Violation{Kind: PhantomExpunge, At: at, Session: "checker",
				Detail:   fmt.Sprintf("%s (UID %v, %s) vanished: no session was told of its expunge and no actor removed it", id, m.uids, m.source),
				Evidence: []string{"learned: " + m.learnedBy}})
		case m.acked:
			l.rec.violation("end|"+id, Violation{Kind: Lost, At: at, Session: "checker",
				Detail: fmt.Sprintf("%s (%s, made at %.3fs, accepted) never appeared", id, m.source, m.created.Seconds())})
		}
	}
	l.judgeRefusedLocked(disk, at)
}

func anyShown(uids []uint32, shown map[uint32]bool) bool {
	for _, u := range uids {
		if shown[u] {
			return true
		}
	}
	return false
}
