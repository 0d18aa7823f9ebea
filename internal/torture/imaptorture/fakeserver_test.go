package imaptorture

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	msglimits "github.com/cistern-mail/cistern/internal/message"
)

// lie is the one way a fakeServer misbehaves.
type lie int

const (
	honest                 lie = iota
	liePhantomExpunge          // EXPUNGE of a message nobody removed
	lieRenumberUID             // a message silently takes a new UID
	lieDuplicate               // a message shows up a second time under a new UID
	lieDropAppend              // APPEND says OK [APPENDUID] and keeps nothing
	lieExpungeDuringFetch      // pending EXPUNGEs sent during FETCH by sequence number
	lieDecreaseExists          // EXISTS lower than the count, without EXPUNGE
	lieSeqOutOfRange           // FETCH for a sequence number past the end
	lieUIDsDescending          // SEARCH results in descending order
	lieChangeUIDValidity       // another UIDVALIDITY for the same mailbox
	lieLowerUIDNext            // UIDNEXT below what it said before
	lieNoConverge              // flag changes never reach other sessions
	lieReuseAfterDelete        // a mailbox made again after DELETE gets the old UIDVALIDITY and UIDs from 1
	lieReuseAfterRename        // a mailbox made again after RENAME away gets the renamed one's UIDVALIDITY and UIDs from 1
	lieRefuseAppend            // APPEND answers NO, and keeps the message
	lieRefuseCopy              // COPY answers NO, and copies
	lieRefuseMove              // MOVE answers NO, and moves
	lieRefuseMoveLose          // MOVE answers NO, and the message leaves the mailbox for nowhere
	lieKeywordsKept            // a STORE of more keywords than there is room for answers NO [LIMIT], and keeps those that fit defined
	lieResyncMiss              // a SELECT (QRESYNC ...) leaves out one message changed since the client's modseq
	lieModseqBack              // every other SELECT's HIGHESTMODSEQ is half the mailbox's
	lieModseqStale             // a session with CONDSTORE (not QRESYNC) is shown a message's new flags with the MODSEQ of its old ones
	lieCondRefuseUnchanged     // a STORE UNCHANGEDSINCE names MODIFIED a message unchanged since, and leaves it
	lieCondIgnore              // a STORE UNCHANGEDSINCE changes a message changed since, and does not name it MODIFIED
	lieCondRefuseDone          // a STORE UNCHANGEDSINCE names MODIFIED a message changed since, and changes it all the same
	refuseTruly                // no lie: one in refuseShare APPENDs, COPYs and MOVEs answers NO and does nothing
	lieGarbage                 // a response that is not IMAP
	lieClose                   // a connection closed in the middle of a command
	lieStall                   // a command that never gets an answer
	lieFlood                   // untagged responses without end, never the tagged one
	lieStarveLogins            // past starveAt connections, a new one gets BYE as its greeting
	lieWholeList               // ENVELOPE of a hostile message with every address of its To:, past the cap
	lieBadName                 // CREATE of a name holding a control character (modified UTF-7) answers OK
	lieRecentTwice             // a new message is \Recent in every session that selected the mailbox read-write
	lieUnannounced             // a keyword another program set reaches FETCH without a FLAGS response first
	lieBodyLF                  // a FETCH of a body section drops the CR of every line end, as a server that streams a bare-LF file without converting it would
	lieStoreBadAppend          // an APPEND whose line goes on after the literal answers BAD, and keeps the message
	lieEmailIDChanges          // a message's EMAILID changes
	lieEmailIDShared           // every message has one EMAILID
	lieSearchModSeq            // SEARCH MODSEQ n leaves out the first message that matches
)

// starveAt is the number of open connections past which the fake, with
// lieStarveLogins, refuses new ones as the old Cistern did: the slots
// are full of connections that never log in.
const starveAt = 12

// fakeTrigger is the number of commands (of all sessions) after which
// the lie is told: the sessions have views by then.
const fakeTrigger = 150

// refuseShare: with refuseTruly, one APPEND, COPY or MOVE in this many
// is refused.
const refuseShare = 4

// fakeMsg is one message of the fake's in-memory mailboxes.
type fakeMsg struct {
	uid         uint32
	modseq      uint64 // in INBOX: raised by every change
	prevModseq  uint64 // the modseq before the last change
	id          string
	body        []byte
	flags       map[string]string // lower case → as first written
	everDeleted bool
}

func (m *fakeMsg) flagList() string {
	var out []string
	for _, f := range m.flags {
		out = append(out, f)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func (m *fakeMsg) clone(uid uint32) *fakeMsg {
	c := &fakeMsg{uid: uid, id: m.id, body: m.body, flags: make(map[string]string)}
	for k, v := range m.flags {
		c.flags[k] = v
	}
	return c
}

type fakeBox struct {
	msgs        []*fakeMsg // ascending UIDs
	uidNext     uint32
	uidValidity uint32
	// modseq is the highest modseq (INBOX only); gone the expunged
	// UIDs with the modseq of their expunge.
	modseq uint64
	gone   []fakeGone
}

// fakeGone is an expunged UID of INBOX.
type fakeGone struct {
	uid    uint32
	modseq uint64
}

// bump gives m (of INBOX) the next modseq.
func (b *fakeBox) bump(m *fakeMsg) {
	b.modseq++
	m.prevModseq, m.modseq = m.modseq, b.modseq
}

func (b *fakeBox) find(uid uint32) *fakeMsg {
	for _, m := range b.msgs {
		if m.uid == uid {
			return m
		}
	}
	return nil
}

// fakeServer is a small IMAP server on an in-memory mailbox that obeys
// RFC 9051 where the torture looks (views per session, pending EXPUNGE,
// EXISTS and flag updates, UIDPLUS, MOVE, IDLE) until it tells its lie.
// Other mailboxes can be created, deleted, renamed, appended and copied
// to, selected and fetched from; a session whose selected mailbox is
// deleted is told BYE at its next command, as Dovecot does.
type fakeServer struct {
	t   *testing.T
	lie lie
	ln  net.Listener
	// condstore: the fake offers ENABLE, CONDSTORE and QRESYNC (RFC
	// 7162) and keeps modseqs in INBOX.
	condstore bool
	// noQresync: with condstore, the fake offers CONDSTORE alone.
	// Set under mu before the first connection.
	noQresync bool

	mu       sync.Mutex // guards everything below
	boxes    map[string]*fakeBox
	all      map[uint32]*fakeMsg // every message of the main box ever, by UID
	sessions map[*fakeSession]bool
	commands int
	fired    bool
	// selects counts SELECTs of INBOX past the trigger (lieModseqBack).
	selects int
	// nextValidity is the UIDVALIDITY of the next mailbox made; deleted
	// and renamed keep the UIDVALIDITY a name had before its DELETE or
	// RENAME, for the reuse lies.
	nextValidity     uint32
	deleted, renamed map[string]uint32
	// keywords are the keywords INBOX defines (lower case → as first
	// written), at most fakeKeywordRoom, as a Maildir has 26 letters.
	keywords map[string]string
	// firstRecent is the lowest UID of INBOX that no read-write
	// selection took as \Recent; recentIn counts the selections that
	// took each UID.
	firstRecent uint32
	recentIn    map[uint32]int
}

// fakeKeywordRoom is how many keywords the fake's INBOX can define.
const fakeKeywordRoom = 26

func startFake(t *testing.T, l lie) *fakeServer {
	return startFakeWith(t, l, resyncLie(l))
}

// resyncLie: a lie about modseqs, told by a fake that offers CONDSTORE
// and QRESYNC.
func resyncLie(l lie) bool {
	return slices.Contains([]lie{lieResyncMiss, lieModseqBack, lieModseqStale, lieCondRefuseUnchanged, lieCondIgnore, lieCondRefuseDone, lieSearchModSeq}, l)
}

// startFakeWith starts a fake that offers CONDSTORE and QRESYNC when
// condstore is set.
func startFakeWith(t *testing.T, l lie, condstore bool) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, lie: l, ln: ln, condstore: condstore, boxes: map[string]*fakeBox{"INBOX": {uidNext: 1, uidValidity: 1000}}, all: make(map[uint32]*fakeMsg), sessions: make(map[*fakeSession]bool),
		nextValidity: 2000, deleted: make(map[string]uint32), renamed: make(map[string]uint32), keywords: make(map[string]string), recentIn: make(map[uint32]int)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			fs := &fakeSession{srv: s, nc: nc, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc)}
			wg.Add(1)
			go func() {
				defer wg.Done()
				fs.serve()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for fs := range s.sessions {
			fs.nc.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

// due reports that the lie is to be told now (and not told yet).
func (s *fakeServer) due(l lie) bool {
	return s.lie == l && !s.fired && s.commands >= fakeTrigger
}

// refusing reports that an APPEND, COPY or MOVE is to be refused,
// and nothing done, with refuseTruly.
func (fs *fakeSession) refusing() bool {
	s := fs.srv
	if !s.lying(refuseTruly) || s.commands%refuseShare != 0 {
		return false
	}
	s.fired = true
	return true
}

// lying reports that the server tells one of lies now, again and again
// once the trigger is past.
func (s *fakeServer) lying(lies ...lie) bool {
	return slices.Contains(lies, s.lie) && s.commands >= fakeTrigger
}

// selected returns the sessions that have the main mailbox selected.
func (s *fakeServer) selected() []*fakeSession {
	var out []*fakeSession
	for fs := range s.sessions {
		if fs.box == "INBOX" {
			out = append(out, fs)
		}
	}
	return out
}

// inAllViews picks the first message of the main box that every session
// sees and that was never \Deleted; last picks the last one instead.
func (s *fakeServer) inAllViews(last bool) *fakeMsg {
	msgs := slices.Clone(s.boxes["INBOX"].msgs)
	if last {
		slices.Reverse(msgs)
	}
	for _, m := range msgs {
		if m.everDeleted {
			continue
		}
		ok := true
		for _, fs := range s.selected() {
			ok = ok && slices.Contains(fs.view, m.uid)
		}
		if ok {
			return m
		}
	}
	return nil
}

// tick tells the lies that change the mailbox on their own.
func (s *fakeServer) tick() {
	s.commands++
	box := s.boxes["INBOX"]
	switch {
	case s.due(liePhantomExpunge):
		if m := s.inAllViews(false); m != nil {
			box.msgs = slices.DeleteFunc(box.msgs, func(x *fakeMsg) bool { return x == m })
			for _, fs := range s.selected() {
				fs.pendingExpunge = append(fs.pendingExpunge, m.uid)
			}
			s.fired = true
		}
	case s.due(lieRenumberUID):
		if m := s.inAllViews(true); m != nil && m == box.msgs[len(box.msgs)-1] {
			old := m.uid
			m.uid = box.uidNext
			box.uidNext++
			s.all[m.uid] = m
			for _, fs := range s.selected() {
				fs.view[slices.Index(fs.view, old)] = m.uid
				fs.pendingFlags[m.uid] = true
			}
			s.fired = true
		}
	case s.due(lieDuplicate):
		if m := s.inAllViews(false); m != nil {
			c := m.clone(box.uidNext)
			box.uidNext++
			box.msgs = append(box.msgs, c)
			s.all[c.uid] = c
			s.fired = true
		}
	case s.due(lieUnannounced):
		// Another program sets a keyword INBOX never had.
		if m := s.inAllViews(false); m != nil && len(s.keywords) < fakeKeywordRoom {
			s.keywords["$fakeforeign"] = "$FakeForeign"
			m.flags["$fakeforeign"] = "$FakeForeign"
			for _, fs := range s.selected() {
				fs.pendingFlags[m.uid] = true
			}
			s.fired = true
		}
	case s.due(lieNoConverge):
		for fs := range s.sessions {
			fs.frozen = make(map[uint32]string)
			for _, m := range box.msgs {
				fs.frozen[m.uid] = m.flagList()
			}
		}
		s.fired = true
	}
}

// fakeSession is one connection to the fake.
type fakeSession struct {
	srv *fakeServer
	nc  net.Conn
	br  *bufio.Reader

	wmu sync.Mutex // guards bw: the reader answers continuations
	bw  *bufio.Writer

	// Guarded by srv.mu.
	box            string
	readOnly       bool
	view           []uint32
	pendingExpunge []uint32
	pendingFlags   map[uint32]bool
	frozen         map[uint32]string // lieNoConverge: the flags this session is shown
	condstore      bool              // CONDSTORE is enabled: MODSEQ with every FLAGS
	qresync        bool              // QRESYNC is enabled: VANISHED for EXPUNGE
	gone           bool              // its selected mailbox was deleted: BYE next
	recent         map[uint32]bool   // the UIDs of INBOX recent in this selection
	announced      map[string]bool   // the keywords (lower case) of the last FLAGS
}

// fakeCommand is one command line with its literals.
type fakeCommand struct {
	line []byte
	lits [][]byte
}

func (fs *fakeSession) send(format string, args ...any) {
	fs.wmu.Lock()
	defer fs.wmu.Unlock()
	fmt.Fprintf(fs.bw, format+"\r\n", args...)
}

func (fs *fakeSession) flushOut() {
	fs.wmu.Lock()
	defer fs.wmu.Unlock()
	fs.bw.Flush()
}

// readCommands reads commands, answering synchronizing literals with a
// continuation.
func (fs *fakeSession) readCommands(out chan<- fakeCommand) {
	defer close(out)
	for {
		var cmd fakeCommand
		for {
			line, err := readLine(fs.br, 1<<20)
			if err != nil {
				return
			}
			cmd.line = append(cmd.line, line...)
			n, ok := literalSuffix(line)
			if !ok {
				break
			}
			if !strings.HasSuffix(string(line), "+}") {
				fs.send("+ go ahead")
				fs.flushOut()
			}
			lit := make([]byte, n)
			if _, err := io.ReadFull(fs.br, lit); err != nil {
				return
			}
			cmd.lits = append(cmd.lits, lit)
		}
		out <- cmd
	}
}

func (fs *fakeSession) serve() {
	defer fs.nc.Close()
	s := fs.srv
	s.mu.Lock()
	s.sessions[fs] = true
	fs.pendingFlags = make(map[uint32]bool)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, fs)
		s.mu.Unlock()
	}()
	s.mu.Lock()
	if s.lie == lieStarveLogins && s.commands >= fakeTrigger && len(s.sessions) > starveAt {
		s.fired = true
		s.mu.Unlock()
		fs.send("* BYE Too many connections; try again later")
		fs.flushOut()
		return
	}
	s.mu.Unlock()
	fs.send("* OK fake IMAP ready")
	fs.flushOut()
	cmds := make(chan fakeCommand)
	go fs.readCommands(cmds)
	for cmd := range cmds {
		if !fs.handle(cmd, cmds) {
			return
		}
		fs.flushOut()
	}
}

// handle runs one command; false ends the connection.
func (fs *fakeSession) handle(cmd fakeCommand, cmds <-chan fakeCommand) bool {
	p := &parser{b: cmd.line, lits: cmd.lits}
	tag, err := p.word()
	if err != nil {
		return false
	}
	var args []Value
	for p.sp() {
		v, err := p.value(0)
		if err != nil {
			fs.send("%s BAD %v", tag, err)
			return true
		}
		args = append(args, v)
	}
	if len(args) == 0 {
		fs.send("%s BAD no command", tag)
		return true
	}
	name := strings.ToUpper(args[0].Text)
	args = args[1:]
	uid := false
	if name == "UID" && len(args) > 0 {
		uid, name, args = true, "UID "+strings.ToUpper(args[0].Text), args[1:]
	}
	s := fs.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	if fs.gone {
		fs.send("* BYE Selected mailbox was deleted, have to disconnect.")
		return false
	}
	if s.lie >= lieGarbage && !s.fired && s.commands >= fakeTrigger && fs.box == "INBOX" {
		s.fired = true
		switch s.lie {
		case lieGarbage:
			fs.send("* 3 FETCH (UID \x01 ((garbage")
			fs.send("%s OK done", tag)
			return true
		case lieClose:
			return false
		case lieStall:
			return true
		case lieFlood:
			s.mu.Unlock()
			defer s.mu.Lock()
			for {
				fs.send("* OK still busy")
				fs.wmu.Lock()
				err := fs.bw.Flush()
				fs.wmu.Unlock()
				if err != nil {
					return false
				}
			}
		}
	}
	switch name {
	case "CAPABILITY":
		fs.send("* CAPABILITY %s", s.caps())
		fs.send("%s OK done", tag)
	case "LOGIN":
		if len(args) != 2 || args[0].String() != testUser || args[1].String() != testPassword {
			fs.send("%s NO [AUTHENTICATIONFAILED] no", tag)
			break
		}
		fs.send("%s OK [CAPABILITY %s] logged in", tag, s.caps())
	case "ENABLE":
		var on []string
		for _, a := range args {
			switch x := strings.ToUpper(a.Text); {
			case !s.condstore:
			case x == "QRESYNC" && !s.noQresync:
				fs.qresync, fs.condstore = true, true
				on = append(on, x)
			case x == "CONDSTORE":
				fs.condstore = true
				on = append(on, x)
			}
		}
		fs.send("%s", strings.TrimSpace("* ENABLED "+strings.Join(on, " ")))
		fs.send("%s OK enabled", tag)
	case "LOGOUT":
		fs.send("* BYE bye")
		fs.send("%s OK bye", tag)
		fs.flushOut()
		return false
	case "CREATE":
		fs.create(tag, args[0].String())
	case "DELETE":
		name := args[0].String()
		b := s.boxes[name]
		if name == "INBOX" || b == nil {
			fs.send("%s NO [NONEXISTENT] no such mailbox", tag)
			break
		}
		delete(s.boxes, name)
		s.deleted[name] = b.uidValidity
		for o := range s.sessions {
			if o.box == name {
				o.gone = true
			}
		}
		fs.send("%s OK deleted", tag)
	case "RENAME":
		from, to := args[0].String(), args[1].String()
		b := s.boxes[from]
		switch {
		case from == "INBOX" || b == nil:
			fs.send("%s NO [NONEXISTENT] no such mailbox", tag)
		case s.boxes[to] != nil:
			fs.send("%s NO [ALREADYEXISTS] exists", tag)
		default:
			delete(s.boxes, from)
			s.boxes[to] = b
			s.renamed[from] = b.uidValidity
			for o := range s.sessions {
				if o.box == from {
					o.box = to
				}
			}
			fs.send("%s OK renamed", tag)
		}
	case "STATUS":
		b := s.boxes[args[0].String()]
		if b == nil {
			fs.send("%s NO no such mailbox", tag)
			break
		}
		fs.send("* STATUS %s (MESSAGES %d)", quote(args[0].String()), len(b.msgs))
		fs.send("%s OK status", tag)
	case "SELECT", "EXAMINE":
		fs.selectBox(tag, args[0].String(), name == "EXAMINE", args[1:])
	case "CLOSE", "UNSELECT":
		fs.box = ""
		fs.send("%s OK closed", tag)
	case "NOOP":
		fs.flush(true)
		if s.due(lieDecreaseExists) && len(fs.view) >= 2 {
			fs.send("* %d EXISTS", len(fs.view)-1)
			s.fired = true
		}
		if s.due(lieSeqOutOfRange) && fs.box == "INBOX" {
			fs.send("* %d FETCH (FLAGS ())", len(fs.view)+3)
			s.fired = true
		}
		fs.send("%s OK noop", tag)
	case "IDLE":
		fs.idle(tag, cmds)
	case "APPEND":
		fs.append(tag, args)
	case "FETCH", "UID FETCH":
		fs.fetch(tag, uid, args)
	case "STORE", "UID STORE":
		fs.store(tag, uid, args)
	case "SEARCH", "UID SEARCH":
		fs.search(tag, uid, args)
	case "COPY", "UID COPY", "MOVE", "UID MOVE":
		fs.copyMove(tag, uid, strings.HasSuffix(name, "MOVE"), args)
	case "EXPUNGE", "UID EXPUNGE":
		fs.expunge(tag, uid, args)
	default:
		fs.send("%s BAD unknown command %s", tag, name)
	}
	return true
}

// create makes mailbox name with a UIDVALIDITY no mailbox had, unless
// the server lies: then a name made again after its DELETE or RENAME
// gets the UIDVALIDITY it had, and its UIDs start at 1 again.
func (fs *fakeSession) create(tag, name string) {
	s := fs.srv
	if slices.ContainsFunc(badNames, func(b string) bool { return strings.HasSuffix(name, b) }) {
		if !s.lying(lieBadName) {
			fs.send("%s NO [CANNOT] New mailbox name contains forbidden character", tag)
			return
		}
		s.fired = true
	}
	if s.boxes[name] != nil {
		fs.send("%s NO [ALREADYEXISTS] exists", tag)
		return
	}
	b := &fakeBox{uidNext: 1, uidValidity: s.nextValidity}
	s.nextValidity++
	old, deleted := s.deleted[name]
	if s.lie == lieReuseAfterDelete && s.commands >= fakeTrigger && deleted {
		b.uidValidity, s.fired = old, true
	}
	old, renamed := s.renamed[name]
	if s.lie == lieReuseAfterRename && s.commands >= fakeTrigger && renamed {
		b.uidValidity, s.fired = old, true
	}
	s.boxes[name] = b
	fs.send("%s OK created", tag)
}

// caps are the capabilities the fake offers.
func (s *fakeServer) caps() string {
	switch {
	case s.condstore && s.noQresync:
		return "IMAP4rev1 IDLE UIDPLUS MOVE OBJECTID ENABLE CONDSTORE"
	case s.condstore:
		return "IMAP4rev1 IDLE UIDPLUS MOVE OBJECTID ENABLE CONDSTORE QRESYNC"
	}
	return "IMAP4rev1 IDLE UIDPLUS MOVE OBJECTID"
}

func (fs *fakeSession) selectBox(tag, name string, examine bool, params []Value) {
	s := fs.srv
	b := s.boxes[name]
	if b == nil {
		fs.send("%s NO no such mailbox", tag)
		return
	}
	// (CONDSTORE) or (QRESYNC (uidvalidity modseq [known-uids])).
	var qresync []Value
	if len(params) == 1 && params[0].Kind == listValue && len(params[0].List) > 0 && s.condstore {
		switch p := params[0].List; strings.ToUpper(p[0].Text) {
		case "CONDSTORE":
			fs.condstore = true
		case "QRESYNC":
			if !fs.qresync || len(p) != 2 || p[1].Kind != listValue || len(p[1].List) < 2 {
				fs.send("%s BAD QRESYNC", tag)
				return
			}
			qresync = p[1].List
		}
	}
	fs.box, fs.readOnly = name, examine
	fs.view = fs.view[:0]
	fs.recent = make(map[uint32]bool)
	for _, m := range b.msgs {
		fs.view = append(fs.view, m.uid)
	}
	if name == "INBOX" {
		fs.takeRecent(fs.view)
	}
	fs.pendingExpunge, fs.pendingFlags = nil, make(map[uint32]bool)
	validity, next := b.uidValidity, b.uidNext
	if s.lie == lieChangeUIDValidity && s.commands >= fakeTrigger && name == "INBOX" {
		validity++
		s.fired = true
	}
	if s.due(lieLowerUIDNext) && name == "INBOX" {
		next = max(1, next/2)
		s.fired = true
	}
	fs.sendFlags(nil)
	fs.send("* %d EXISTS", len(fs.view))
	fs.send("* %d RECENT", len(fs.recent))
	fs.send("* OK [UIDVALIDITY %d] validity", validity)
	fs.send("* OK [UIDNEXT %d] next", next)
	if s.condstore && name == "INBOX" {
		highest := b.modseq
		// Every other SELECT past the trigger: a half after a whole,
		// so that some HIGHESTMODSEQ goes below one told before,
		// whichever sessions come first (halving every one past the
		// trigger only goes back at the first, which may have been
		// told nothing before).
		if s.lying(lieModseqBack) {
			s.selects++
			if s.selects%2 == 0 {
				highest /= 2
				s.fired = true
			}
		}
		fs.send("* OK [HIGHESTMODSEQ %d] highest", highest)
		if qresync != nil {
			fs.qresyncSelect(b, validity, qresync)
		}
	}
	mode := "READ-WRITE"
	if examine {
		mode = "READ-ONLY"
	}
	fs.send("%s OK [%s] selected", tag, mode)
}

// qresyncSelect sends what changed in b since the client's modseq
// (RFC 7162 §3.2.5): VANISHED (EARLIER) for the known UIDs expunged
// since, FETCH for the messages changed since. lieResyncMiss leaves out
// one message the client knows that changed, or else one it knows that
// was expunged.
func (fs *fakeSession) qresyncSelect(b *fakeBox, validity uint32, p []Value) {
	v, _ := p[0].Number()
	since, err := strconv.ParseUint(p[1].Text, 10, 64)
	if v != validity || err != nil {
		return
	}
	var known []uidRange
	if len(p) > 2 {
		known, _ = parseUIDRanges(p[2].Text)
	}
	lying := fs.srv.lying(lieResyncMiss)
	var changed []int // indexes in the view
	left := -1
	for i, u := range fs.view {
		if fs.srv.all[u].modseq <= since {
			continue
		}
		if lying && left < 0 && inRanges(known, u) {
			left = i
			continue
		}
		changed = append(changed, i)
	}
	gone := fs.vanishedSince(b, since, known)
	if lying && left < 0 && len(gone) > 0 {
		gone = gone[1:]
		fs.srv.fired = true
	}
	if left >= 0 {
		fs.srv.fired = true
	}
	if len(gone) > 0 {
		fs.send("* VANISHED (EARLIER) %s", compactSet(gone))
	}
	for _, i := range changed {
		m := fs.srv.all[fs.view[i]]
		fs.announce(m)
		fs.send("* %d FETCH (UID %d FLAGS (%s) MODSEQ (%d))", i+1, m.uid, fs.flagsOf(m), m.modseq)
	}
}

// vanishedSince returns the UIDs of b expunged after modseq since and
// in known (all, when nil), ascending.
func (fs *fakeSession) vanishedSince(b *fakeBox, since uint64, known []uidRange) []uint32 {
	var uids []uint32
	for _, g := range b.gone {
		if g.modseq > since && (known == nil || inRanges(known, g.uid)) {
			uids = append(uids, g.uid)
		}
	}
	slices.Sort(uids)
	return uids
}

// modseqItem is " MODSEQ (n)" for m when the session has CONDSTORE
// enabled and m is in INBOX.
func (fs *fakeSession) modseqItem(m *fakeMsg) string {
	if !fs.condstore || fs.box != "INBOX" {
		return ""
	}
	if fs.srv.lying(lieModseqStale) && !fs.qresync && m.prevModseq > 0 {
		fs.srv.fired = true
		return fmt.Sprintf(" MODSEQ (%d)", m.prevModseq)
	}
	return fmt.Sprintf(" MODSEQ (%d)", m.modseq)
}

// sendFlags sends FLAGS and PERMANENTFLAGS with the keywords INBOX
// defines (none elsewhere) and those of m, if not nil (an APPEND keeps
// keywords it does not define).
func (fs *fakeSession) sendFlags(m *fakeMsg) {
	flags := `\Answered \Flagged \Deleted \Seen \Draft`
	fs.announced = make(map[string]bool)
	var kws []string
	if fs.box == "INBOX" {
		for k, v := range fs.srv.keywords {
			kws = append(kws, v)
			fs.announced[k] = true
		}
	}
	if m != nil {
		for _, v := range fs.shownKeywords(m) {
			if k := strings.ToLower(v); !fs.announced[k] {
				kws = append(kws, v)
				fs.announced[k] = true
			}
		}
	}
	slices.Sort(kws)
	for _, k := range kws {
		flags += " " + k
	}
	fs.send("* FLAGS (%s)", flags)
	fs.send(`* OK [PERMANENTFLAGS (%s \*)] flags`, flags)
}

// announce sends FLAGS before a response with m's flags when they hold
// a keyword the session was not told of, unless lying.
// shownKeywords are the keywords a FETCH of m shows this session: its
// flags, or, with lieNoConverge, those frozen for it.
func (fs *fakeSession) shownKeywords(m *fakeMsg) []string {
	var out []string
	for _, f := range strings.Fields(fs.flagsOf(m)) {
		if !strings.HasPrefix(f, `\`) {
			out = append(out, f)
		}
	}
	return out
}

func (fs *fakeSession) announce(m *fakeMsg) {
	for _, v := range fs.shownKeywords(m) {
		if fs.announced[strings.ToLower(v)] {
			continue
		}
		if fs.srv.lying(lieUnannounced) {
			return
		}
		fs.sendFlags(m)
		return
	}
}

// takeRecent takes the new UIDs of INBOX (ascending) as \Recent for this
// selection: those no read-write selection took, and, read-write,
// takes them for good (lying, not for good).
func (fs *fakeSession) takeRecent(uids []uint32) {
	s := fs.srv
	for _, u := range uids {
		if u < s.firstRecent {
			continue
		}
		fs.recent[u] = true
		if fs.readOnly {
			continue
		}
		s.recentIn[u]++
		if s.recentIn[u] > 1 {
			s.fired = true
		}
		if !s.lying(lieRecentTwice) {
			s.firstRecent = u + 1
		}
	}
}

// flush tells the session what changed: EXPUNGE (when allowed), EXISTS,
// flag changes.
func (fs *fakeSession) flush(expunges bool) {
	if fs.box != "INBOX" {
		fs.flushOther()
		return
	}
	if expunges {
		var vanished []uint32
		for _, u := range fs.pendingExpunge {
			if i := slices.Index(fs.view, u); i >= 0 {
				if fs.qresync {
					vanished = append(vanished, u)
				} else {
					fs.send("* %d EXPUNGE", i+1)
				}
				fs.view = slices.Delete(fs.view, i, i+1)
			}
		}
		if vanished != nil {
			slices.Sort(vanished)
			fs.send("* VANISHED %s", compactSet(vanished))
		}
		fs.pendingExpunge = nil
	}
	var top uint32
	if len(fs.view) > 0 {
		top = fs.view[len(fs.view)-1]
	}
	var fresh []uint32
	for _, m := range fs.srv.boxes["INBOX"].msgs {
		if m.uid > top {
			fs.view = append(fs.view, m.uid)
			fresh = append(fresh, m.uid)
		}
	}
	if fresh != nil {
		fs.send("* %d EXISTS", len(fs.view))
		fs.takeRecent(fresh)
		fs.send("* %d RECENT", len(fs.recent))
	}
	for u := range fs.pendingFlags {
		if i := slices.Index(fs.view, u); i >= 0 {
			m := fs.srv.all[u]
			fs.announce(m)
			fs.send("* %d FETCH (UID %d FLAGS (%s)%s)", i+1, u, fs.flagsOf(m), fs.modseqItem(m))
		}
	}
	clear(fs.pendingFlags)
}

// flushOther tells a session that selected another mailbox of the
// messages that came (nothing else changes there but by DELETE).
func (fs *fakeSession) flushOther() {
	b := fs.srv.boxes[fs.box]
	if b == nil {
		return
	}
	var top uint32
	if len(fs.view) > 0 {
		top = fs.view[len(fs.view)-1]
	}
	grew := false
	for _, m := range b.msgs {
		if m.uid > top {
			fs.view = append(fs.view, m.uid)
			grew = true
		}
	}
	if grew {
		fs.send("* %d EXISTS", len(fs.view))
	}
}

// msg returns the message with UID u of the selected mailbox.
func (fs *fakeSession) msg(u uint32) *fakeMsg {
	if fs.box == "INBOX" {
		return fs.srv.all[u]
	}
	if b := fs.srv.boxes[fs.box]; b != nil {
		return b.find(u)
	}
	return nil
}

// flagsOf is what the session is shown of m's flags.
func (fs *fakeSession) flagsOf(m *fakeMsg) string {
	f, ok := fs.frozen[m.uid]
	if !ok {
		f = m.flagList()
	}
	if fs.box == "INBOX" && fs.recent[m.uid] {
		f = strings.TrimSpace(f + ` \Recent`)
	}
	return f
}

func (fs *fakeSession) idle(tag string, cmds <-chan fakeCommand) {
	fs.send("+ idling")
	fs.flushOut()
	s := fs.srv
	s.mu.Unlock()
	defer s.mu.Lock()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case cmd, ok := <-cmds:
			if !ok {
				return
			}
			if strings.EqualFold(string(cmd.line), "DONE") {
				fs.send("%s OK idle done", tag)
			} else {
				fs.send("%s BAD expected DONE", tag)
			}
			return
		case <-tick.C:
			s.mu.Lock()
			fs.flush(true)
			s.mu.Unlock()
			fs.flushOut()
		}
	}
}

// resolve turns a sequence set (or UID set) into the UIDs of the view.
func (fs *fakeSession) resolve(set string, uid bool) []uint32 {
	var out []uint32
	n := uint32(len(fs.view))
	var top uint32
	if n > 0 {
		top = fs.view[n-1]
	}
	for _, part := range strings.Split(set, ",") {
		a, b, isRange := strings.Cut(part, ":")
		num := func(s string) uint32 {
			if s == "*" {
				if uid {
					return top
				}
				return n
			}
			v, _ := strconv.ParseUint(s, 10, 32)
			return uint32(v)
		}
		lo := num(a)
		hi := lo
		if isRange {
			hi = num(b)
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if uid {
			for _, u := range fs.view {
				if u >= lo && u <= hi && !slices.Contains(out, u) {
					out = append(out, u)
				}
			}
			continue
		}
		for q := max(lo, 1); q <= min(hi, n); q++ {
			if u := fs.view[q-1]; !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	slices.Sort(out)
	return out
}

func (fs *fakeSession) fetch(tag string, uid bool, args []Value) {
	s := fs.srv
	if fs.box == "" || len(args) != 2 && len(args) != 3 {
		fs.send("%s BAD fetch", tag)
		return
	}
	// (CHANGEDSINCE modseq [VANISHED]), RFC 7162 §3.1.4.1, §3.2.6.
	var since uint64
	changedSince := false
	if len(args) == 3 {
		mod := args[2].List
		if len(mod) < 2 || !strings.EqualFold(mod[0].Text, "CHANGEDSINCE") || fs.box != "INBOX" || !s.condstore {
			fs.send("%s BAD fetch modifier", tag)
			return
		}
		since, _ = strconv.ParseUint(mod[1].Text, 10, 64)
		changedSince, fs.condstore = true, true
		if len(mod) == 3 && strings.EqualFold(mod[2].Text, "VANISHED") {
			if !uid || !fs.qresync {
				fs.send("%s BAD VANISHED without QRESYNC", tag)
				return
			}
			set, _ := parseUIDRanges(strings.ReplaceAll(args[0].Text, "*", "4294967295"))
			if gone := fs.vanishedSince(s.boxes["INBOX"], since, set); len(gone) > 0 {
				fs.send("* VANISHED (EARLIER) %s", compactSet(gone))
			}
		}
	}
	early := uid
	if s.lie == lieExpungeDuringFetch && s.commands >= fakeTrigger && len(fs.pendingExpunge) > 0 {
		early = true
		s.fired = true
	}
	if early {
		fs.flush(true)
	}
	items := args[1].List
	if args[1].Kind != listValue {
		items = []Value{args[1]}
	}
	modseqItem := slices.ContainsFunc(items, func(v Value) bool { return strings.EqualFold(v.Text, "MODSEQ") })
	withModseq := changedSince || modseqItem
	if withModseq && fs.box == "INBOX" && s.condstore {
		fs.condstore = true
	}
	for _, u := range fs.resolve(args[0].Text, uid) {
		m := fs.msg(u)
		if m == nil || changedSince && m.modseq <= since {
			continue
		}
		var parts []string
		fs.announce(m)
		for _, it := range items {
			switch name := strings.ToUpper(it.Text); {
			case name == "UID":
				parts = append(parts, fmt.Sprintf("UID %d", u))
			case name == "FLAGS":
				parts = append(parts, fmt.Sprintf("FLAGS (%s)", fs.flagsOf(m)))
				if !withModseq {
					if ms := fs.modseqItem(m); ms != "" {
						parts = append(parts, ms[1:])
					}
				}
			case name == "MODSEQ":
				if ms := fs.modseqItem(m); ms != "" {
					parts = append(parts, ms[1:])
				}
			case name == "ENVELOPE":
				parts = append(parts, fmt.Sprintf(`ENVELOPE (NIL "torture" NIL NIL NIL %s NIL NIL NIL %s)`, fs.srv.fakeTo(m), quote(m.id)))
			case name == "BODYSTRUCTURE":
				parts = append(parts, fmt.Sprintf(`BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" %d 1 NIL NIL NIL NIL)`, len(m.body)))
			case strings.HasPrefix(name, "BODY.PEEK[HEADER.FIELDS"):
				h := "Message-ID: " + m.id + "\r\n\r\n"
				parts = append(parts, fmt.Sprintf("BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}\r\n%s", len(h), h))
			case name == "BODY.PEEK[]" || name == "BODY[]":
				if name == "BODY[]" && !fs.readOnly && m.flags[`\seen`] == "" {
					m.flags[`\seen`] = `\Seen`
					fs.changed(m)
					if !slices.ContainsFunc(items, func(v Value) bool { return strings.EqualFold(v.Text, "FLAGS") }) {
						parts = append(parts, fmt.Sprintf("FLAGS (%s)%s", fs.flagsOf(m), fs.modseqItem(m)))
					}
				}
				parts = append(parts, fakeSection("BODY[]", s.bodyBytes(m.body)))
			case name == "BODY.PEEK[TEXT]":
				text := m.body
				if i := bytes.Index(text, []byte("\r\n\r\n")); i >= 0 {
					text = text[i+4:]
				}
				parts = append(parts, fakeSection("BODY[TEXT]", s.bodyBytes(text)))
			case strings.HasPrefix(name, "BODY.PEEK[]<"):
				var o, n int
				if _, err := fmt.Sscanf(name, "BODY.PEEK[]<%d.%d>", &o, &n); err != nil {
					fs.send("%s BAD partial", tag)
					return
				}
				body := s.bodyBytes(m.body)
				lo := min(o, len(body))
				hi := min(lo+n, len(body))
				parts = append(parts, fakeSection(fmt.Sprintf("BODY[]<%d>", o), body[lo:hi]))
			case name == "RFC822.SIZE":
				parts = append(parts, fmt.Sprintf("RFC822.SIZE %d", len(m.body)))
			case name == "EMAILID":
				parts = append(parts, fmt.Sprintf("EMAILID (%s)", fs.emailID(m)))
			}
		}
		if changedSince && !modseqItem {
			parts = append(parts, fs.modseqItem(m)[1:])
		}
		fs.send("* %d FETCH (%s)", slices.Index(fs.view, u)+1, strings.Join(parts, " "))
	}
	if !early {
		fs.flush(false)
	}
	fs.send("%s OK fetched", tag)
}

// fakeSection is a FETCH item with a literal.
func fakeSection(name string, data []byte) string {
	return fmt.Sprintf("%s {%d}\r\n%s", name, len(data), data)
}

// bodyBytes is what a FETCH sends of a message's bytes: with
// lieBodyLF, past the trigger, without the CR of its line ends.
func (s *fakeServer) bodyBytes(b []byte) []byte {
	if !s.lying(lieBodyLF) || !bytes.Contains(b, []byte("\r\n")) {
		return b
	}
	s.fired = true
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}

// changed queues a flag update of m for every other session.
func (fs *fakeSession) changed(m *fakeMsg) {
	if fs.box == "INBOX" {
		fs.srv.boxes["INBOX"].bump(m)
	}
	if fs.frozen != nil {
		fs.frozen[m.uid] = m.flagList()
		return
	}
	for _, o := range fs.srv.selected() {
		if o != fs {
			o.pendingFlags[m.uid] = true
		}
	}
}

// store runs STORE, with (UNCHANGEDSINCE modseq) when given (RFC 7162
// §3.1.3): a message whose modseq is above it is left as it is and
// named in MODIFIED, unless the fake lies about it.
func (fs *fakeSession) store(tag string, uid bool, args []Value) {
	s := fs.srv
	cond, since := false, uint64(0)
	if len(args) == 4 && args[1].Kind == listValue {
		mod := args[1].List
		if len(mod) != 2 || !strings.EqualFold(mod[0].Text, "UNCHANGEDSINCE") || !s.condstore {
			fs.send("%s BAD store modifier", tag)
			return
		}
		var err error
		if since, err = strconv.ParseUint(mod[1].Text, 10, 64); err != nil {
			fs.send("%s BAD UNCHANGEDSINCE", tag)
			return
		}
		cond, fs.condstore = true, true
		args = []Value{args[0], args[2], args[3]}
	}
	if fs.box != "INBOX" || len(args) != 3 {
		fs.send("%s BAD store", tag)
		return
	}
	if fs.readOnly {
		fs.send("%s NO read-only", tag)
		return
	}
	item := strings.ToUpper(args[1].Text)
	silent := strings.HasSuffix(item, ".SILENT")
	flags := args[2].List
	if !strings.HasPrefix(item, "-") && !fs.defineKeywords(flags) {
		fs.send("%s NO [LIMIT] no room for that many keywords", tag)
		return
	}
	var modified []uint32
	for _, u := range fs.resolve(args[0].Text, uid) {
		m := fs.srv.all[u]
		if cond {
			changedSince := m.modseq > since
			switch {
			case !changedSince && s.lying(lieCondRefuseUnchanged):
				s.fired = true
				modified = append(modified, u)
				continue
			case changedSince && s.lying(lieCondIgnore):
				s.fired = true
			case changedSince && s.lying(lieCondRefuseDone):
				s.fired = true
				modified = append(modified, u)
			case changedSince:
				modified = append(modified, u)
				continue
			}
		}
		if strings.HasPrefix(item, "FLAGS") {
			clear(m.flags)
		}
		for _, f := range flags {
			if strings.HasPrefix(item, "-") {
				delete(m.flags, strings.ToLower(f.Text))
			} else {
				m.flags[strings.ToLower(f.Text)] = f.Text
			}
			if strings.EqualFold(f.Text, `\Deleted`) && !strings.HasPrefix(item, "-") {
				m.everDeleted = true
			}
		}
		fs.changed(m)
		// A conditional STORE tells the new MODSEQ even when silent.
		if !silent || cond {
			fs.announce(m)
			fs.send("* %d FETCH (UID %d FLAGS (%s)%s)", slices.Index(fs.view, u)+1, u, fs.flagsOf(m), fs.modseqItem(m))
		}
	}
	fs.flush(uid)
	if len(modified) > 0 {
		if !uid {
			for i, u := range modified {
				modified[i] = uint32(slices.Index(fs.view, u) + 1)
			}
		}
		slices.Sort(modified)
		fs.send("%s OK [MODIFIED %s] conditional store failed", tag, compactSet(modified))
		return
	}
	fs.send("%s OK stored", tag)
}

// defineKeywords defines the keywords of flags INBOX lacks, and reports
// true, or, when they do not all fit, defines none (or, lying, those
// that fit) and reports false.
func (fs *fakeSession) defineKeywords(flags []Value) bool {
	s := fs.srv
	var fresh []string
	for _, f := range flags {
		k := strings.ToLower(f.Text)
		if strings.HasPrefix(k, `\`) || s.keywords[k] != "" || slices.Contains(fresh, f.Text) {
			continue
		}
		fresh = append(fresh, f.Text)
	}
	fits := len(s.keywords)+len(fresh) <= fakeKeywordRoom
	if !fits && !s.lying(lieKeywordsKept) {
		return false
	}
	if !fits {
		s.fired = true
	}
	for _, k := range fresh {
		if len(s.keywords) < fakeKeywordRoom {
			s.keywords[strings.ToLower(k)] = k
		}
	}
	return fits
}

// matches evaluates search keys from args[i:] against m and returns the
// index after the key.
func matches(m *fakeMsg, args []Value, i int) (bool, int) {
	if i >= len(args) {
		return true, i
	}
	has := func(f string) bool { return m.flags[strings.ToLower(f)] != "" }
	switch strings.ToUpper(args[i].Text) {
	case "ALL":
		return true, i + 1
	case "SEEN":
		return has(`\Seen`), i + 1
	case "UNSEEN":
		return !has(`\Seen`), i + 1
	case "FLAGGED":
		return has(`\Flagged`), i + 1
	case "DELETED":
		return has(`\Deleted`), i + 1
	case "ANSWERED":
		return has(`\Answered`), i + 1
	case "DRAFT":
		return has(`\Draft`), i + 1
	case "KEYWORD":
		return has(args[i+1].Text), i + 2
	case "UNKEYWORD":
		return !has(args[i+1].Text), i + 2
	case "HEADER":
		return m.id == args[i+2].String(), i + 3
	case "NOT":
		ok, j := matches(m, args, i+1)
		return !ok, j
	case "OR":
		a, j := matches(m, args, i+1)
		b, k := matches(m, args, j)
		return a || b, k
	case "MODSEQ":
		n, _ := strconv.ParseUint(args[i+1].Text, 10, 64)
		return m.modseq >= n, i + 2
	}
	return false, len(args)
}

func (fs *fakeSession) search(tag string, uid bool, args []Value) {
	if fs.box != "INBOX" {
		fs.send("%s BAD search", tag)
		return
	}
	if uid {
		fs.flush(true)
	}
	var hits []string
	dropped := false // lieSearchModSeq: the first match is left out
	for seq, u := range fs.view {
		m := fs.srv.all[u]
		ok, i := true, 0
		for i < len(args) && ok {
			ok, i = matches(m, args, i)
		}
		if ok && !dropped && fs.srv.lying(lieSearchModSeq) && len(args) == 2 && strings.EqualFold(args[0].Text, "MODSEQ") {
			ok, dropped, fs.srv.fired = false, true, true
		}
		if ok {
			if uid {
				hits = append(hits, strconv.FormatUint(uint64(u), 10))
			} else {
				hits = append(hits, strconv.Itoa(seq+1))
			}
		}
	}
	if fs.srv.lie == lieUIDsDescending && fs.srv.commands >= fakeTrigger && len(hits) > 1 {
		slices.Reverse(hits)
		fs.srv.fired = true
	}
	fs.send("%s", strings.TrimSpace("* SEARCH "+strings.Join(hits, " ")))
	if !uid {
		fs.flush(false)
	}
	fs.send("%s OK searched", tag)
}

func (fs *fakeSession) append(tag string, args []Value) {
	s := fs.srv
	if len(args) < 2 || s.boxes[args[0].String()] == nil {
		fs.send("%s NO no such mailbox", tag)
		return
	}
	if fs.refusing() {
		fs.send("%s NO [OVERQUOTA] not appended", tag)
		return
	}
	// The literal ends the command; anything after it makes it BAD,
	// and (honestly) nothing is appended.
	trailing := args[len(args)-1].Kind != stringValue
	if trailing && !s.lying(lieStoreBadAppend) {
		fs.send("%s BAD junk after the literal", tag)
		return
	}
	if trailing {
		args = args[:len(args)-1]
	}
	b := s.boxes[args[0].String()]
	body := args[len(args)-1].Text
	m := &fakeMsg{uid: b.uidNext, id: headerMessageID([]byte(body)), body: []byte(body), flags: make(map[string]string)}
	if len(args) == 3 && args[1].Kind == listValue {
		for _, f := range args[1].List {
			m.flags[strings.ToLower(f.Text)] = f.Text
		}
	}
	b.uidNext++
	validity := b.uidValidity
	if s.lie == lieChangeUIDValidity && s.commands >= fakeTrigger && args[0].String() == "INBOX" {
		validity++
	}
	if args[0].String() == "INBOX" {
		if s.due(lieDropAppend) {
			s.fired = true
		} else {
			b.bump(m)
			b.msgs = append(b.msgs, m)
			s.all[m.uid] = m
		}
	} else {
		b.msgs = append(b.msgs, m)
	}
	fs.flush(true)
	if trailing {
		s.fired = true
		fs.send("%s BAD junk after the literal", tag)
		return
	}
	if s.lying(lieRefuseAppend) {
		s.fired = true
		fs.send("%s NO not appended", tag)
		return
	}
	fs.send("%s OK [APPENDUID %d %d] appended", tag, validity, m.uid)
}

// copyMove copies or moves messages to another mailbox. When it lies,
// it does so (or, lieRefuseMoveLose, takes them out of the mailbox to
// put them nowhere, even when the target is gone) and answers NO.
func (fs *fakeSession) copyMove(tag string, uid, move bool, args []Value) {
	s := fs.srv
	dst := s.boxes[args[1].String()]
	lie := move && s.lying(lieRefuseMove, lieRefuseMoveLose) || !move && s.lying(lieRefuseCopy)
	lose := lie && s.lie == lieRefuseMoveLose
	if fs.box != "INBOX" || dst == nil && !lose {
		fs.send("%s NO [TRYCREATE] no such mailbox", tag)
		return
	}
	if move && fs.readOnly {
		fs.send("%s NO read-only", tag)
		return
	}
	if fs.refusing() {
		fs.send("%s NO [OVERQUOTA] not done", tag)
		return
	}
	uids := fs.resolve(args[0].Text, uid)
	if lie {
		s.fired = s.fired || len(uids) > 0
		if !lose {
			for _, u := range uids {
				dst.msgs = append(dst.msgs, s.all[u].clone(dst.uidNext))
				dst.uidNext++
			}
		}
		if move {
			fs.remove(uids)
		}
		fs.flush(true)
		fs.send("%s NO not done", tag)
		return
	}
	var from, to []string
	for _, u := range uids {
		c := s.all[u].clone(dst.uidNext)
		dst.uidNext++
		dst.msgs = append(dst.msgs, c)
		from = append(from, strconv.FormatUint(uint64(u), 10))
		to = append(to, strconv.FormatUint(uint64(c.uid), 10))
	}
	code := fmt.Sprintf("COPYUID %d %s %s", dst.uidValidity, strings.Join(from, ","), strings.Join(to, ","))
	if !move {
		fs.flush(true)
		fs.send("%s OK [%s] copied", tag, code)
		return
	}
	if len(uids) > 0 {
		fs.send("* OK [%s] moved", code)
	}
	fs.remove(uids)
	fs.flush(true)
	fs.send("%s OK moved", tag)
}

// remove takes uids out of the main box and queues their EXPUNGE for
// every session that sees them.
func (fs *fakeSession) remove(uids []uint32) {
	box := fs.srv.boxes["INBOX"]
	for _, m := range box.msgs {
		if slices.Contains(uids, m.uid) {
			box.modseq++
			box.gone = append(box.gone, fakeGone{m.uid, box.modseq})
		}
	}
	box.msgs = slices.DeleteFunc(box.msgs, func(m *fakeMsg) bool { return slices.Contains(uids, m.uid) })
	for _, o := range fs.srv.selected() {
		for _, u := range uids {
			if slices.Contains(o.view, u) {
				o.pendingExpunge = append(o.pendingExpunge, u)
			}
		}
	}
}

func (fs *fakeSession) expunge(tag string, uid bool, args []Value) {
	if fs.box != "INBOX" {
		fs.send("%s BAD expunge", tag)
		return
	}
	if fs.readOnly {
		fs.send("%s NO read-only", tag)
		return
	}
	var scope []uint32
	if uid {
		scope = fs.resolve(args[0].Text, true)
	}
	var gone []uint32
	for _, m := range fs.srv.boxes["INBOX"].msgs {
		if m.flags[`\deleted`] != "" && (!uid || slices.Contains(scope, m.uid)) {
			gone = append(gone, m.uid)
		}
	}
	fs.remove(gone)
	fs.flush(true)
	fs.send("%s OK expunged", tag)
}

// fakeTo is the To: of m's ENVELOPE: NIL, or for a hostile message
// (hostile.go) its addresses at hostileHost, the first
// MaxFieldAddresses of them, or every one with lieWholeList.
func (s *fakeServer) fakeTo(m *fakeMsg) string {
	n := strings.Count(string(m.body), "@"+hostileHost)
	if n == 0 {
		return "NIL"
	}
	if n > msglimits.MaxFieldAddresses {
		if s.lie == lieWholeList {
			s.fired = true
		} else {
			n = msglimits.MaxFieldAddresses
		}
	}
	var b strings.Builder
	b.WriteByte('(')
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `(NIL NIL "h%d" %q)`, i, hostileHost)
	}
	b.WriteByte(')')
	return b.String()
}

// emailID is m's EMAILID (RFC 8474): of its Message-ID, so that its
// copies share it; with lieEmailIDChanges, another one past the trigger,
// and with lieEmailIDShared, one for every message.
func (fs *fakeSession) emailID(m *fakeMsg) string {
	sum := sha256.Sum256([]byte(m.id))
	id := "M" + hex.EncodeToString(sum[:12])
	switch {
	case fs.srv.lying(lieEmailIDChanges):
		fs.srv.fired = true
		return id + "x"
	case fs.srv.lying(lieEmailIDShared):
		fs.srv.fired = true
		return "Mshared"
	}
	return id
}
