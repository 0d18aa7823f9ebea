package imaptorture

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// answer is how the server answered an APPEND, COPY or MOVE.
type answer uint8

const (
	// unanswered: no tagged response came (the connection was cut, or
	// the command is still running). It may or may not have happened.
	unanswered answer = iota
	answeredOK
	// refused: NO or BAD. Either promises that nothing was done: no
	// message appended, no copy made, nothing moved.
	refused
)

// transfer is an APPEND, COPY or MOVE an actor sent: the messages it
// carries (by Message-ID), where to, and how the server answered.
// Recorded before the command is written; answered after the tagged
// response.
type transfer struct {
	n         int    // numbers the transfers of a run, for keys
	verb      string // "APPEND", "COPY", "MOVE"
	who, line string // the actor and its command
	box       string // the target mailbox
	ids       []string
	uids      []uint32 // the source UIDs of a COPY or MOVE
	sent      time.Duration
	answer    answer
	reply     string // the tagged response; "" while unanswered
	answered  time.Duration
	// made are the (UIDVALIDITY, UID) of the target mailbox its
	// APPENDUID or COPYUID gave each message.
	made []madeUID
	// pairs are its COPYUID's pairs of a source UID whose Message-ID
	// nobody had learned when the answer came: resolved when the ledger
	// is judged (resolvePairsLocked).
	pairs []copyPair
}

// copyPair is one pair of a COPYUID: source UID src became dst under
// validity in the target.
type copyPair struct {
	src, validity, dst uint32
}

// transferPaired records a COPYUID pair of x whose source UID names no
// known message yet.
func (l *ledger) transferPaired(x *transfer, src, validity, dst uint32) {
	if x == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(x.pairs) == 0 {
		l.paired = append(l.paired, x)
	}
	x.pairs = append(x.pairs, copyPair{src, validity, dst})
}

// resolvePairsLocked books every transfer's pairs under the messages
// their source UIDs turned out to name.
func (l *ledger) resolvePairsLocked() {
	for _, x := range l.paired {
		var left []copyPair
		for _, p := range x.pairs {
			id := l.byUID[p.src]
			if id == "" {
				left = append(left, p)
				continue
			}
			l.madeLocked(x, id, p.validity, p.dst)
		}
		x.pairs = left
	}
}

// madeUID is one (UIDVALIDITY, UID) an APPENDUID or COPYUID gave
// message id.
type madeUID struct {
	id            string
	validity, uid uint32
}

// told describes the command and its answer, for evidence.
func (x *transfer) told() string {
	s := fmt.Sprintf("%.3fs %s: %s", x.sent.Seconds(), x.who, x.line)
	if x.reply == "" {
		return s + " (no answer)"
	}
	return s + " → " + x.reply
}

// explains says whether x may have put message id under (validity, uid)
// of a mailbox other than the one under test before at: a COPY, MOVE or
// APPEND there that was not refused and was sent before, whose
// COPYUID or APPENDUID gave that UID, or that was never answered or named
// no UID at all (a server without UIDPLUS). A copy is known by its
// UIDVALIDITY and UID, not by its mailbox's name: a RENAME takes it
// along.
func (x *transfer) explains(id string, validity, uid uint32, at time.Duration, mailbox string) bool {
	if x.answer == refused || x.box == mailbox || x.sent >= at {
		return false
	}
	if x.answer == unanswered || len(x.made) == 0 || validity == 0 {
		return true
	}
	return slices.Contains(x.made, madeUID{id, validity, uid})
}

// transferSent records an APPEND, COPY or MOVE that who is about to send
// as line: of the messages ids (for a COPY or MOVE, the source UIDs
// uids) to box. A MOVE is from then on a cause for its messages to leave
// the mailbox under test, until it is refused.
func (l *ledger) transferSent(verb, who, line, box string, ids []string, uids []uint32, at time.Duration) *transfer {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nTransfers++
	x := &transfer{n: l.nTransfers, verb: verb, who: who, line: line, box: box, ids: ids, uids: uids, sent: at}
	for _, id := range ids {
		l.transfers[id] = append(l.transfers[id], x)
	}
	if verb == "MOVE" {
		for _, u := range uids {
			l.moves[u] = append(l.moves[u], x)
		}
	}
	return x
}

// transferAnswered records the answer to x, which came at at: resp is
// its tagged response, nil with err when none came.
func (l *ledger) transferAnswered(x *transfer, resp *Response, err error, at time.Duration) {
	if x == nil || err != nil || resp == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	x.reply = resp.Line
	x.answered = at
	if resp.Type == "OK" {
		x.answer = answeredOK
	} else {
		x.answer = refused
	}
}

// transferMade records that an APPENDUID or COPYUID of x gave message id
// UID uid under UIDVALIDITY validity in the target mailbox.
func (l *ledger) transferMade(x *transfer, id string, validity, uid uint32) {
	if x == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.madeLocked(x, id, validity, uid)
}

func (l *ledger) madeLocked(x *transfer, id string, validity, uid uint32) {
	if m := (madeUID{id, validity, uid}); !slices.Contains(x.made, m) {
		x.made = append(x.made, m)
	}
	// The sender may not have known that its UID named id when it sent
	// x (a message announced but not learned yet): x is id's transfer
	// all the same, and must be there to explain id's copy.
	if !slices.Contains(x.ids, id) {
		x.ids = append(x.ids, id)
		l.transfers[id] = append(l.transfers[id], x)
	}
}

// refusedMove returns a MOVE of one of uids sent before t that the
// server refused, and the UID, or nil. A MOVE whose target directory a
// foreign program moved or removed while it ran is no such MOVE
// (brokenByForeignLocked).
func (c *causes) refusedMove(uids []uint32, t time.Duration) (*transfer, uint32) {
	for _, u := range uids {
		for _, x := range c.l.moves[u] {
			if x.sent < t && x.answer == refused && !c.l.brokenByForeignLocked(x) {
				return x, u
			}
		}
	}
	return nil, 0
}

// brokenByForeignLocked reports whether a foreign program renamed or
// removed the directory of x's target while x ran (from its sending to
// its answer). Such a program takes no lock: it can move the directory
// between the moment a server's files enter it and the moment their UIDs
// are recorded, and no server can then take the files back (they went
// with the directory) nor record them. A NO is then the truth as far as
// the server can tell, and what went with the directory is the foreign
// program's doing, as a foreign deletion is. A RENAME or DELETE of the
// server's own is no excuse: the server orders those with its changes.
func (l *ledger) brokenByForeignLocked(x *transfer) bool {
	end := x.answered
	if x.answer != refused {
		return false
	}
	for _, e := range l.book.events[x.box] {
		if e.foreign && e.removal && e.sent < end && e.done > x.sent {
			return true
		}
	}
	return false
}

// refusedMoveLocked reports that a message left the mailbox under test
// while its only cause was a MOVE the server refused: told by an
// EXPUNGE (line, to session who during cmd at at), or, line "", gone
// at the end.
func (l *ledger) refusedMoveLocked(x *transfer, uid uint32, id, who, cmd, line string, at float64, evidence []string) {
	how := "was gone at the end"
	if line != "" {
		how = "was expunged"
	}
	l.rec.violation(fmt.Sprintf("move|%d|%d", x.n, uid), Violation{Kind: RefusedButDone, At: at, Session: who, Command: cmd,
		Detail:   fmt.Sprintf("UID %d (%s) %s, and no actor removed it but a MOVE the server refused (%s)", uid, id, how, x.reply),
		Evidence: append(slices.Clone(evidence), "refused: "+x.told())})
}

// sighting is a FETCH that showed a message in some mailbox.
type sighting struct {
	box           string
	validity, uid uint32
	n             *uidName // its telling; n.sight is the FETCH
}

// judgeRefusedLocked reads the ledger for APPENDs, COPYs and MOVEs that
// the server refused and did anyway: a message whose APPEND was refused
// that a FETCH showed in any mailbox, or that is in the Maildir at the
// end (disk); a copy of a message in a mailbox other than the one under
// test that only a refused COPY or MOVE can have made. now is the time
// of the final check.
func (l *ledger) judgeRefusedLocked(disk []diskMessage, now float64) {
	l.resolvePairsLocked()
	seen := make(map[string][]sighting)
	for k, lf := range l.book.lives {
		for uid, n := range lf.uids {
			if n.sight != nil {
				seen[n.id] = append(seen[n.id], sighting{k.box, k.validity, uid, n})
			}
		}
	}
	for _, ss := range seen {
		sort.Slice(ss, func(i, j int) bool { return ss[i].n.sight.at < ss[j].n.sight.at })
	}
	onDisk := make(map[string]diskMessage, len(disk))
	for _, d := range disk {
		onDisk[d.id] = d
	}
	ids := make([]string, 0, len(l.transfers))
	for id := range l.transfers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		xs := l.transfers[id]
		if i := slices.IndexFunc(xs, func(x *transfer) bool { return x.verb == "APPEND" }); i >= 0 && xs[i].answer == refused {
			l.refusedAppendLocked(id, xs[i], seen[id], onDisk, now)
			continue
		}
		for _, s := range seen[id] {
			if s.box == l.mailbox {
				continue
			}
			at := s.n.sight.at
			var no []string
			for _, x := range xs {
				if x.answer == refused && x.verb != "APPEND" && x.sent < at && !l.brokenByForeignLocked(x) {
					no = append(no, "refused: "+x.told())
				}
			}
			if len(no) == 0 || slices.ContainsFunc(xs, func(x *transfer) bool { return x.explains(id, s.validity, s.uid, at, l.mailbox) }) {
				continue
			}
			what := "the COPY or MOVE"
			if len(no) > 1 {
				what = "every COPY and MOVE"
			}
			l.rec.violation(fmt.Sprintf("copy|%s|%d|%d", s.box, s.validity, s.uid), Violation{Kind: RefusedButDone, At: at.Seconds(), Session: s.n.sight.who, Command: s.n.sight.cmd,
				Detail: fmt.Sprintf("%s is in %q as UIDVALIDITY %d UID %d, but the server refused %s that could have put it there, and no COPY or MOVE it accepted did",
					id, s.box, s.validity, s.uid, what),
				Evidence: append([]string{"seen: " + s.n.sight.told()}, no...)})
		}
	}
}

// refusedAppendLocked reports message id, whose APPEND x the server
// refused, if a FETCH ever showed it (sightings, first first, or the
// ledger's record of the mailbox under test) or it is on disk.
func (l *ledger) refusedAppendLocked(id string, x *transfer, sightings []sighting, onDisk map[string]diskMessage, now float64) {
	v := Violation{Kind: RefusedButDone, Evidence: []string{"refused: " + x.told()}}
	m := l.msgs[id]
	d, inDir := onDisk[id]
	switch {
	case len(sightings) > 0:
		s := sightings[0].n.sight
		v.At, v.Session, v.Command = s.at.Seconds(), s.who, s.cmd
		v.Detail = fmt.Sprintf("%s, whose APPEND to %q the server refused, is in %q as UIDVALIDITY %d UID %d", id, x.box, sightings[0].box, sightings[0].validity, sightings[0].uid)
		v.Evidence = append([]string{"seen: " + s.told()}, v.Evidence...)
	case m != nil && m.seen:
		v.At, v.Session = m.firstSeen.Seconds(), "checker"
		v.Detail = fmt.Sprintf("%s, whose APPEND to %q the server refused, was seen as UID %v", id, x.box, m.uids)
		v.Evidence = append([]string{"seen: " + m.learnedBy}, v.Evidence...)
	case inDir:
		v.At, v.Session = now, "disk"
		v.Detail = fmt.Sprintf("%s, whose APPEND to %q the server refused, is on disk at the end: %s:2,%s", id, x.box, d.base, d.flags)
	default:
		return
	}
	l.rec.violation("append|"+id, v)
}
