package imaptorture

import (
	"fmt"
	"slices"
	"time"
)

// lifeKey is one life of a mailbox name: the name and the UIDVALIDITY
// the server gave it. DELETE and CREATE, or RENAME away and CREATE, give
// the name a new life, which must have another UIDVALIDITY unless it
// never reuses a UID (RFC 9051 §2.3.1.1).
type lifeKey struct {
	box      string
	validity uint32
}

// uidName is the message one (mailbox, UIDVALIDITY, UID) was first told
// to name, and how.
type uidName struct {
	id string
	at time.Duration
	// who, cmd and line: the session that was told, its command and the
	// response that told it.
	who, cmd, line string
	// sight is the first FETCH that showed it, nil until one did
	// (APPENDUID and COPYUID only say it was made).
	sight *uidName
}

func (n *uidName) told() string {
	s := fmt.Sprintf("%.3fs %s", n.at.Seconds(), n.who)
	if n.cmd != "" {
		s += fmt.Sprintf(" during %q", n.cmd)
	}
	return s + ": " + n.line
}

// life is what the run was told of one life of a mailbox name.
type life struct {
	// first is when the run first heard of this life.
	first time.Duration
	uids  map[uint32]*uidName
}

// selection is a mailbox a session selected: its name, the
// UIDVALIDITY it was told (0 until told), and when the SELECT was sent.
type selection struct {
	box      string
	validity uint32
	at       time.Duration
}

// lifeEvent is a change of mailbox names that an actor made: DELETE,
// RENAME, a foreign rename or removal of a folder directory (a removal:
// it may take away every message the name held, and end the selection
// of every session on it), or a CREATE, a RENAME to the name or a
// foreign mkdir that succeeded (a creation: a new life of the name
// begins). A removal is recorded before the command is sent or the
// directory is touched; done is forever until it has finished.
type lifeEvent struct {
	what       string
	removal    bool
	foreign    bool // made by a foreign program, without the lock
	sent, done time.Duration
}

// lifeBook is the part of the ledger about mailbox names: every
// (mailbox, UIDVALIDITY, UID) the run was told of, with the message it
// names, and every lifecycle change of every name. It is guarded by
// ledger.mu.
type lifeBook struct {
	lives  map[lifeKey]*life
	events map[string][]*lifeEvent // by mailbox name
	// expunges counts EXPUNGEs told in mailboxes other than the one
	// under test.
	expunges int
}

func (b *lifeBook) init() {
	b.lives = make(map[lifeKey]*life)
	b.events = make(map[string][]*lifeEvent)
}

// named records that UID uid of mailbox box under UIDVALIDITY validity
// names message id, as who was told in line during cmd, and reports a
// uid_reuse when it named another message before.
func (l *ledger) named(box string, validity, uid uint32, id string, at time.Duration, seen bool, who, cmd, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.namedLocked(box, validity, uid, id, at, seen, who, cmd, line)
}

func (l *ledger) namedLocked(box string, validity, uid uint32, id string, at time.Duration, seen bool, who, cmd, line string) {
	lf := l.lifeLocked(box, validity, at)
	n := lf.uids[uid]
	var sight *uidName
	if seen {
		sight = &uidName{id: id, at: at, who: who, cmd: cmd, line: line}
	}
	if n == nil {
		lf.uids[uid] = &uidName{id: id, at: at, who: who, cmd: cmd, line: line, sight: sight}
		return
	}
	if n.id == id {
		if n.sight == nil {
			n.sight = sight
		}
		return
	}
	now := &uidName{at: at, who: who, cmd: cmd, line: line}
	l.rec.violation(fmt.Sprintf("%s|%d|%d|%s", box, validity, uid, id), Violation{Kind: UIDReuse, At: at.Seconds(), Session: who, Command: cmd,
		Detail: fmt.Sprintf("mailbox %q UIDVALIDITY %d UID %d names %s (told to %s at %.3fs), but it named %s before (told to %s at %.3fs)",
			box, validity, uid, id, who, at.Seconds(), n.id, n.who, n.at.Seconds()),
		Evidence: []string{now.told(), "earlier: " + n.told()}})
}

// lifeLocked returns the life (box, validity), which the run hears of
// at at if it is new.
func (l *ledger) lifeLocked(box string, validity uint32, at time.Duration) *life {
	k := lifeKey{box, validity}
	lf := l.book.lives[k]
	if lf == nil {
		lf = &life{first: at, uids: make(map[uint32]*uidName)}
		l.book.lives[k] = lf
	}
	return lf
}

// sawLife records that a session was told UIDVALIDITY validity for box.
func (l *ledger) sawLife(box string, validity uint32, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lifeLocked(box, validity, at)
}

// removing records that an actor is about to remove, rename or replace
// the mailboxes names; the caller sets done through lifeDone when the
// change has finished, and leaves it running when it cannot tell.
func (l *ledger) removing(what string, at time.Duration, names ...string) *lifeEvent {
	return l.removingBy(false, what, at, names...)
}

// foreignRemoving is removing for a foreign program's change of folder
// directories, made without the lock (brokenByForeignLocked).
func (l *ledger) foreignRemoving(what string, at time.Duration, names ...string) *lifeEvent {
	return l.removingBy(true, what, at, names...)
}

func (l *ledger) removingBy(foreign bool, what string, at time.Duration, names ...string) *lifeEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := &lifeEvent{what: what, removal: true, foreign: foreign, sent: at, done: forever}
	for _, n := range names {
		l.book.events[n] = append(l.book.events[n], e)
	}
	return e
}

func (l *ledger) lifeDone(e *lifeEvent, at time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.done = at
}

// nameCreated records that a change sent at sent and done at done gave
// box a new life (CREATE, RENAME to it, a fresh Maildir made there).
func (l *ledger) nameCreated(what, box string, sent, done time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.book.events[box] = append(l.book.events[box], &lifeEvent{what: what, sent: sent, done: done})
}

// lifeStartLocked is the earliest a life of box first heard of at first
// can have begun: the last creation of the name sent before first, or
// first when none was. A removal that ended before it cannot have
// touched the life's messages.
func (l *ledger) lifeStartLocked(box string, first time.Duration) time.Duration {
	start := first
	for _, e := range l.book.events[box] {
		if !e.removal && e.sent <= first {
			start = e.sent
		}
	}
	return start
}

// removalLocked returns a removal of box that was sent before to and
// finished after from (or is still running), described, or "".
func (l *ledger) removalLocked(box string, from, to time.Duration) string {
	for _, e := range l.book.events[box] {
		if e.removal && e.sent < to && e.done > from {
			if e.done == forever {
				return fmt.Sprintf("%s, sent at %.3fs", e.what, e.sent.Seconds())
			}
			return fmt.Sprintf("%s, %.3fs to %.3fs", e.what, e.sent.Seconds(), e.done.Seconds())
		}
	}
	return ""
}

// selectionEnded says why a session that selected box at selected and
// was told UIDVALIDITY validity (0: not told) may have lost the
// selection by at: a removal of the name since the selection, or since
// the life it showed began. "" means nothing removed the name.
func (l *ledger) selectionEnded(box string, validity uint32, selected, at time.Duration) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.removalLocked(box, l.selectionStartLocked(box, validity, selected), at)
}

func (l *ledger) selectionStartLocked(box string, validity uint32, selected time.Duration) time.Duration {
	from := selected
	if lf := l.book.lives[lifeKey{box, validity}]; lf != nil && validity != 0 {
		from = min(from, l.lifeStartLocked(box, lf.first))
	}
	return from
}

// folderExpunged judges an EXPUNGE of a message (uid, 0 if unknown)
// of the mailbox sel, told at at to session who during cmd: in a
// mailbox other than the one under test only a removal of the name
// removes messages.
func (l *ledger) folderExpunged(who, cmd string, sel selection, uid uint32, at time.Duration, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.book.expunges++
	if l.removalLocked(sel.box, l.selectionStartLocked(sel.box, sel.validity, sel.at), at) != "" {
		return
	}
	id := "a message it had not identified"
	if lf := l.book.lives[lifeKey{sel.box, sel.validity}]; lf != nil && lf.uids[uid] != nil {
		id = lf.uids[uid].id
	}
	l.rec.violation(fmt.Sprintf("%s|%s|%d|%d", who, sel.box, sel.validity, uid), Violation{Kind: PhantomExpunge, At: at.Seconds(), Session: who, Command: cmd,
		Detail: fmt.Sprintf("told that UID %d (%s) of %q (UIDVALIDITY %d, selected at %.3fs) was expunged; no actor expunges there, and nothing deleted or renamed %q since",
			uid, id, sel.box, sel.validity, sel.at.Seconds(), sel.box),
		Evidence: []string{line}})
}

// judgeLook checks a whole view of box that a session was told: its
// SELECT was sent at sent, reported validity, and the FETCH of every
// message that followed it ended at done, showing present (UID →
// Message-ID). Every UID of that life the run had been told of before
// sent must be in it, unless a removal of the name since the life began
// explains its absence; else its message under another UID is a UID
// change, a UID a FETCH had shown is a phantom expunge (it vanished),
// and a UID only APPENDUID or COPYUID had told is a lost message.
func (l *ledger) judgeLook(who, box string, validity uint32, present map[uint32]string, sent, done time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lf := l.lifeLocked(box, validity, sent)
	if len(lf.uids) == 0 {
		return
	}
	var missing []uint32
	for uid, n := range lf.uids {
		if _, ok := present[uid]; !ok && n.at < sent {
			missing = append(missing, uid)
		}
	}
	if len(missing) == 0 || l.removalLocked(box, l.lifeStartLocked(box, lf.first), done) != "" {
		return
	}
	slices.Sort(missing)
	uidOf := make(map[string]uint32, len(present))
	for uid, id := range present {
		uidOf[id] = uid
	}
	for _, uid := range missing {
		n := lf.uids[uid]
		v := Violation{Kind: Lost, At: done.Seconds(), Session: who,
			Detail:   fmt.Sprintf("%s (%q UIDVALIDITY %d UID %d) is not in %q at %.3fs, and nothing deleted or renamed %q since its life began", n.id, box, validity, uid, box, sent.Seconds(), box),
			Evidence: []string{"told: " + n.told()}}
		switch now, ok := uidOf[n.id]; {
		case ok:
			v.Kind = UIDChange
			v.Detail = fmt.Sprintf("%s (%q UIDVALIDITY %d UID %d) is UID %d at %.3fs", n.id, box, validity, uid, now, sent.Seconds())
		case n.sight != nil:
			v.Kind = PhantomExpunge
			v.Detail = fmt.Sprintf("%s (%q UIDVALIDITY %d UID %d) vanished from %q by %.3fs, and nothing deleted or renamed %q since its life began", n.id, box, validity, uid, box, sent.Seconds(), box)
		}
		l.rec.violation(fmt.Sprintf("look|%s|%d|%d", box, validity, uid), v)
	}
}

// lifeStats fills the figures of the lifecycle model.
func (l *ledger) lifeStats(st *LifecycleStats) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st.Lives = len(l.book.lives)
	st.UIDs = 0
	for _, lf := range l.book.lives {
		st.UIDs += len(lf.uids)
	}
	st.Expunges = l.book.expunges
}
