package imaptorture

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// curCmd is the command a session is running.
type curCmd struct {
	line string
	// noExpunge: FETCH, STORE or SEARCH by sequence number, during which
	// the server must not send EXPUNGE (RFC 9051 §7.5.1).
	noExpunge bool
	// selecting: SELECT or EXAMINE, whose EXISTS starts the view anew.
	selecting bool
	sent      time.Duration
	// fetched collects UID → flags of the FETCH responses of the final
	// UID FETCH 1:*.
	fetched map[uint32]string
	// flagsTold collects the UIDs whose flags an untagged FETCH gave
	// during the command (for STORE .SILENT; nil: not collected).
	flagsTold map[uint32]bool
	// uidSearch: a UID SEARCH, whose numbers are UIDs.
	uidSearch bool
	// copyTo is the target mailbox of a COPY or MOVE, whose COPYUID
	// names the copies; xfer its record in the ledger.
	copyTo string
	xfer   *transfer
	// partial is the octet count of a FETCH BODY.PEEK[]<origin.count>.
	partial int
	// selectCmd: a SELECT or EXAMINE, whose HIGHESTMODSEQ is judged
	// (resync.go).
	selectCmd bool
	// resync collects what a resync is told (resync.go).
	resync *resyncNews
	// cond collects the FLAGS and MODSEQ told, per UID (condstore.go).
	cond condTold
}

// session is one IMAP actor: a connection, the model of what it was
// told, and a random mix of commands. Its methods run on its own
// goroutine only.
type session struct {
	name string
	r    *run
	c    *imapConn
	v    view
	rng  *rand.Rand
	cur  curCmd
	// readOnly: the mailbox is selected with EXAMINE.
	readOnly bool
	// validity is the UIDVALIDITY the session was last told.
	validity uint32
	// quiet: the seed and checker sessions, whose operations are not
	// counted.
	quiet bool
	// untagged counts untagged EXISTS, EXPUNGE and FETCH responses, to
	// tell when a quiet round heard nothing.
	untagged int
	// floods counts the session's keyword floods (keywords.go).
	floods int
	// selections counts its SELECTs and EXAMINEs; sel is what the
	// current one was told of \Recent and keywords (recent.go).
	selections int
	sel        selectionState
	// condstore: the session fetches MODSEQ with FLAGS (when the server
	// offers CONDSTORE), which enables CONDSTORE (RFC 7162 §3.1);
	// highest is the HIGHESTMODSEQ it was last told (resync.go).
	condstore bool
	highest   uint64
	// lastSpan is the flag change the last command was recorded as in
	// the ledger, nil if it was none (condstore.go).
	lastSpan *flagSpan
	// objectid: the session fetches EMAILID with FLAGS now and then
	// (when the server offers OBJECTID; objectid.go).
	objectid bool
}

// System flags and keywords the sessions set and clear. \Deleted is
// only ever set through markDeleted.
var storeFlags = []string{`\Seen`, `\Flagged`, `\Answered`, `\Draft`, `$TortureA`, `$TortureB`, `Work`}

// errBye is a BYE from the server outside LOGOUT.
var errBye = errors.New("the server said BYE")

// do runs one command as operation label and records it.
func (s *session) do(label, line string, cmd curCmd) (*Response, error) {
	start := time.Now()
	cmd.line, cmd.sent = line, s.r.rec.since(start)
	s.cur = cmd
	sp := s.flagWriteIntent(line, cmd.sent)
	resp, err := s.c.command(line, s.onUntagged)
	s.r.led.flagWritten(sp, err, s.r.now())
	s.lastSpan = sp
	if !s.r.finishing.Load() && !s.quiet {
		s.r.rec.op(label, start, time.Since(start), outcomeOf(resp, err))
	}
	return resp, s.wrap(err)
}

func (s *session) wrap(err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", s.cur.line, err)
	}
	return nil
}

func outcomeOf(resp *Response, err error) outcome {
	switch {
	case err != nil:
		return outFailed
	case resp.Type == "OK":
		return outOK
	case resp.Type == "NO":
		return outNo
	}
	return outBad
}

// onUntagged checks one untagged response against the session's model
// and updates the model.
func (s *session) onUntagged(resp *Response, t time.Time) error {
	at := s.r.rec.since(t)
	switch resp.Type {
	case "EXISTS":
		s.untagged++
		if s.cur.selecting {
			s.v.reset(resp.Num)
			s.cur.selecting = false
			break
		}
		if resp.Num < s.v.len() {
			s.violation(ExistsDecrease, at, fmt.Sprintf("EXISTS %d while the session knew %d messages and was told of no EXPUNGE", resp.Num, s.v.len()), resp.Line)
			break
		}
		s.v.grow(resp.Num)
	case "EXPUNGE":
		s.untagged++
		if s.cur.noExpunge {
			s.violation(ExpungeDuringCommand, at, "EXPUNGE while responding to a FETCH, STORE or SEARCH by sequence number (RFC 9051 §7.5.1)", resp.Line)
		}
		if resp.Num == 0 || resp.Num > s.v.len() {
			s.violation(SeqOutOfRange, at, fmt.Sprintf("EXPUNGE %d, the session knows %d messages", resp.Num, s.v.len()), resp.Line)
			break
		}
		uid := s.v.remove(resp.Num)
		s.r.led.expunged(s, uid, at, resp.Line)
		if n := s.cur.resync; n != nil && n.later != nil && uid != 0 {
			n.later[uid] = true
		}
	case "VANISHED":
		s.onVanished(resp, at)
	case "FETCH":
		s.untagged++
		return s.onFetch(resp, at)
	case "SEARCH":
		for i, n := range resp.Numbers {
			if i > 0 && n <= resp.Numbers[i-1] {
				s.violation(UIDOrder, at, fmt.Sprintf("SEARCH result not ascending: %d after %d", n, resp.Numbers[i-1]), resp.Line)
				break
			}
		}
		if n := s.cur.resync; n != nil && n.present != nil && s.cur.uidSearch {
			for _, u := range resp.Numbers {
				n.present[u] = true
			}
		}
		if !s.cur.uidSearch {
			for _, n := range resp.Numbers {
				if n > s.v.len() {
					s.violation(SeqOutOfRange, at, fmt.Sprintf("SEARCH names message %d, the session knows %d", n, s.v.len()), resp.Line)
					break
				}
			}
		}
	case "FLAGS":
		if len(resp.Data) == 1 {
			var names []string
			for _, v := range resp.Data[0].List {
				names = append(names, v.Text)
			}
			s.r.led.keywordsShown(names, 0, s.name, s.cur.line, resp.Line, at)
			s.flagsAnnounced(names)
		}
	case "OK", "NO", "BAD":
		s.onCode(resp, at)
	case "BYE":
		return fmt.Errorf("%w: %s", errBye, resp.Line)
	}
	return nil
}

// onCode checks the response codes that carry UIDVALIDITY and UIDNEXT.
func (s *session) onCode(resp *Response, at time.Duration) {
	switch resp.Code {
	case "CLOSED":
		if s.cur.selecting {
			s.v.reset(0)
		}
	case "UIDVALIDITY":
		if len(resp.CodeArgs) == 1 {
			if n, err := strconv.ParseUint(resp.CodeArgs[0], 10, 32); err == nil {
				s.validity = uint32(n)
				s.r.led.uidValidityIs(uint32(n), at, s, resp.Line)
			}
		}
	case "COPYUID":
		s.copied(resp, at)
	case "HIGHESTMODSEQ":
		s.highestTold(resp, at)
	case "UIDNEXT":
		if len(resp.CodeArgs) == 1 {
			if n, err := strconv.ParseUint(resp.CodeArgs[0], 10, 32); err == nil {
				s.r.led.uidNextIs(uint32(n), s.cur.sent, at, s, resp.Line)
			}
		}
	}
}

func (s *session) onFetch(resp *Response, at time.Duration) error {
	n, f := resp.Num, resp.Fetch
	if n == 0 || n > s.v.len() {
		s.violation(SeqOutOfRange, at, fmt.Sprintf("FETCH for message %d, the session knows %d", n, s.v.len()), resp.Line)
		return nil
	}
	uid := s.v.uids[n-1]
	if f.HasUID {
		switch {
		case uid == 0:
			below, above := s.v.neighbours(n)
			if f.UID <= below || above != 0 && f.UID >= above {
				s.violation(UIDOrder, at, fmt.Sprintf("message %d has UID %d, between UIDs %d and %d of its neighbours", n, f.UID, below, above), resp.Line)
			}
			if f.MessageID == "" && s.r.led.idOf(f.UID) == "" {
				// A UID is learned only with the message it names: an
				// expunge is judged by the message's history. learn
				// fetches both.
				s.r.led.sawUID(f.UID, at)
				return nil
			}
		case uid != f.UID:
			s.violation(UIDChange, at, fmt.Sprintf("message %d was UID %d, now the server says UID %d", n, uid, f.UID), resp.Line)
			s.r.led.renumbered(uid, f.UID)
			s.v.flags[f.UID] = s.v.flags[uid]
			delete(s.v.flags, uid)
		}
		uid = f.UID
		s.v.uids[n-1] = uid
		s.r.led.sawUID(uid, at)
	}
	if uid == 0 {
		return nil
	}
	if f.MessageID != "" {
		s.r.led.learn(f.MessageID, uid, at, s, resp.Line)
	}
	if f.EmailID != "" {
		s.r.emailIDs.told(s, uid, f.EmailID, at, resp.Line)
	}
	if f.Envelope != nil && len(f.Envelope.List) >= 10 {
		s.checkContent(uid, f.Envelope.List[9].String(), "its ENVELOPE", at, resp.Line)
	}
	if f.HasBody && f.MessageID != "" {
		s.checkContent(uid, f.MessageID, "its body", at, resp.Line)
	}
	s.checkSections(uid, f, at, resp.Line)
	if f.HasFlags {
		s.checkFetchFlags(uid, f.Flags, at, resp.Line)
		s.r.led.keywordsShown(f.Flags, uid, s.name, s.cur.line, resp.Line, at)
		flags := canonFlags(f.Flags)
		s.v.flags[uid] = flags
		if s.cur.fetched != nil {
			s.cur.fetched[uid] = flags
		}
		if s.cur.flagsTold != nil {
			s.cur.flagsTold[uid] = true
		}
	}
	if f.HasModSeq {
		s.modseqTold(uid, f, at, resp.Line)
	}
	if s.cur.cond != nil {
		s.cur.cond.add(uid, f, at, resp.Line)
	}
	if n := s.cur.resync; n != nil && f.HasFlags {
		if n.truth == nil {
			n.reported[uid] = canonFlags(f.Flags)
		} else {
			t := modTold{at: at, modseq: f.ModSeq, flags: canonFlags(f.Flags), hasFlags: true, line: resp.Line}
			if !f.HasModSeq {
				t.modseq = math.MaxUint64 // unknown: not judged
			}
			n.truth[uid] = t
		}
	}
	return nil
}

// checkContent checks that what the server sent for uid is the message
// uid names.
func (s *session) checkContent(uid uint32, got, what string, at time.Duration, line string) {
	want := s.r.led.idOf(uid)
	if want == "" || got == "" || got == want {
		return
	}
	s.violation(UIDChange, at, fmt.Sprintf("UID %d is %s, but %s says %s", uid, want, what, got), line)
}

func (s *session) violation(k Kind, at time.Duration, detail, line string) {
	s.r.rec.violation("", Violation{Kind: k, At: at.Seconds(), Session: s.name, Command: s.cur.line, Detail: detail, Evidence: []string{line}})
}

// open connects, logs in and selects the mailbox.
func (s *session) open() error {
	if err := s.connect(); err != nil {
		return err
	}
	return s.selectMailbox(false)
}

// connect dials and logs in, as the server admits it (run.admitted).
func (s *session) connect() error {
	return s.r.admitted(func() error {
		c, err := s.r.dial()
		if err != nil {
			return err
		}
		s.c = c
		return s.login()
	}, func() { s.c.close() })
}

func (s *session) login() error {
	resp, err := s.do("LOGIN", "LOGIN "+quote(s.r.cfg.User)+" "+quote(s.r.cfg.Password), curCmd{})
	if err != nil {
		return err
	}
	if resp.Type != "OK" {
		return fmt.Errorf("LOGIN: %s", resp.Line)
	}
	if len(s.c.caps) == 0 || resp.Code != "CAPABILITY" {
		if _, err := s.do("CAPABILITY", "CAPABILITY", curCmd{}); err != nil {
			return err
		}
	}
	return nil
}

// selectMailbox selects (or examines) the mailbox and learns every
// message's UID, flags and Message-ID.
func (s *session) selectMailbox(examine bool) error {
	verb := "SELECT"
	if examine {
		verb = "EXAMINE"
	}
	s.beginSelection()
	resp, err := s.do(verb, verb+" "+quote(s.r.cfg.Mailbox), curCmd{selecting: true, selectCmd: true})
	if err != nil {
		return err
	}
	if resp.Type != "OK" {
		return fmt.Errorf("%s: %s", verb, resp.Line)
	}
	s.readOnly = examine
	return s.learn()
}

// learn fetches UID, flags and Message-ID of the messages whose UIDs the
// session does not know yet.
func (s *session) learn() error {
	for try := 0; try < 3; try++ {
		lo, hi, ok := s.v.unknown()
		if !ok {
			break
		}
		line := fmt.Sprintf("FETCH %d:%d (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])", lo, hi)
		if _, err := s.do("FETCH learn", line, curCmd{noExpunge: true}); err != nil {
			return err
		}
	}
	s.r.size.Store(int64(s.v.len()))
	return nil
}

// op is one kind of operation in the mix.
type op struct {
	weight int
	run    func(s *session) error
}

var ops = []op{
	{4, (*session).opSelect},
	{13, (*session).opFetchFlags},
	{6, (*session).opFetchEnvelope},
	{6, (*session).opFetchBody},
	{16, (*session).opStore},
	{1, (*session).opKeywordFlood},
	{7, (*session).opSearch},
	{4, (*session).opCopy},
	{4, (*session).opMove},
	{7, (*session).opExpunge},
	{8, (*session).opAppend},
	{5, (*session).opNoop},
	{3, (*session).opIdle},
}

var opWeights = func() int {
	n := 0
	for _, o := range ops {
		n += o.weight
	}
	return n
}()

// loop runs random operations until the run stops.
func (s *session) loop() error {
	for !s.r.stopping() {
		k := s.rng.IntN(opWeights)
		for _, o := range ops {
			if k < o.weight {
				if err := o.run(s); err != nil {
					return err
				}
				break
			}
			k -= o.weight
		}
		if err := s.learn(); err != nil {
			return err
		}
	}
	return nil
}

// writable selects the mailbox read-write when it was examined.
func (s *session) writable() error {
	if s.readOnly {
		return s.selectMailbox(false)
	}
	return nil
}

// pick returns up to k distinct known UIDs, ascending.
func (s *session) pick(k int) []uint32 {
	known := s.v.known()
	if len(known) == 0 {
		return nil
	}
	var out []uint32
	for range k {
		u := known[s.rng.IntN(len(known))]
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

// seqRange returns a random range of at most span sequence numbers.
func (s *session) seqRange(span int) (uint32, uint32) {
	n := int(s.v.len())
	lo := 1 + s.rng.IntN(n)
	hi := min(n, lo+s.rng.IntN(span))
	return uint32(lo), uint32(hi)
}

func uidSet(uids []uint32) string {
	parts := make([]string, len(uids))
	for i, u := range uids {
		parts[i] = strconv.FormatUint(uint64(u), 10)
	}
	return strings.Join(parts, ",")
}

func (s *session) opSelect() error {
	return s.selectMailbox(s.rng.IntN(3) == 0)
}

func (s *session) opFetchFlags() error {
	if s.v.len() == 0 {
		return s.opNoop()
	}
	items := "(UID FLAGS)"
	if s.condstore {
		items = "(UID FLAGS MODSEQ)"
	}
	if s.objectid && s.rng.IntN(2) == 0 {
		items = items[:len(items)-1] + " EMAILID)"
	}
	switch s.rng.IntN(5) {
	case 0:
		_, err := s.do("FETCH FLAGS", "FETCH 1:* "+items, curCmd{noExpunge: true})
		return err
	case 1, 2:
		lo, hi := s.seqRange(20)
		_, err := s.do("FETCH FLAGS", fmt.Sprintf("FETCH %d:%d %s", lo, hi, items), curCmd{noExpunge: true})
		return err
	}
	uids := s.pick(2)
	_, err := s.do("FETCH FLAGS", fmt.Sprintf("UID FETCH %d:%d %s", uids[0], uids[len(uids)-1], items), curCmd{})
	return err
}

func (s *session) opFetchEnvelope() error {
	if s.v.len() == 0 {
		return s.opNoop()
	}
	if s.rng.IntN(2) == 0 {
		lo, hi := s.seqRange(3)
		_, err := s.do("FETCH ENVELOPE", fmt.Sprintf("FETCH %d:%d (UID ENVELOPE)", lo, hi), curCmd{noExpunge: true})
		return err
	}
	_, err := s.do("FETCH ENVELOPE", "UID FETCH "+uidSet(s.pick(2))+" (UID ENVELOPE)", curCmd{})
	return err
}

func (s *session) opFetchBody() error {
	if s.v.len() == 0 {
		return s.opNoop()
	}
	if s.rng.IntN(3) == 0 {
		lo, _ := s.seqRange(1)
		_, err := s.do("FETCH BODY", fmt.Sprintf("FETCH %d (UID BODY[])", lo), curCmd{noExpunge: true})
		return err
	}
	items := "UID BODY.PEEK[]"
	var cmd curCmd
	switch s.rng.IntN(4) {
	case 1:
		items = "UID BODY.PEEK[TEXT]"
	case 2:
		cmd.partial = 1 + s.rng.IntN(3000)
		items = fmt.Sprintf("UID BODY.PEEK[]<%d.%d>", s.rng.IntN(5000), cmd.partial)
	case 3:
		items = "UID RFC822.SIZE BODY.PEEK[]"
	}
	_, err := s.do("FETCH BODY", "UID FETCH "+uidSet(s.pick(1))+" ("+items+")", cmd)
	return err
}

func (s *session) opStore() error {
	if s.v.len() == 0 {
		return s.opNoop()
	}
	if err := s.writable(); err != nil {
		return err
	}
	if s.condstore && s.rng.IntN(condShare) == 0 {
		return s.opCondStore()
	}
	flag := storeFlags[s.rng.IntN(len(storeFlags))]
	sign := "+"
	if s.rng.IntN(2) == 0 {
		sign = "-"
	}
	item := sign + "FLAGS"
	if s.rng.IntN(4) == 0 {
		item += ".SILENT"
	}
	var resp *Response
	var err error
	var uids []uint32
	told := make(map[uint32]bool)
	if s.rng.IntN(3) == 0 {
		lo, hi := s.seqRange(5)
		resp, err = s.do("STORE", fmt.Sprintf("STORE %d:%d %s (%s)", lo, hi, item, flag), curCmd{noExpunge: true, flagsTold: told})
		for seq := lo; seq <= hi && seq <= s.v.len(); seq++ {
			uids = append(uids, s.v.uids[seq-1])
		}
	} else {
		if uids = s.pick(3); uids == nil {
			return nil
		}
		resp, err = s.do("STORE", fmt.Sprintf("UID STORE %s %s (%s)", uidSet(uids), item, flag), curCmd{flagsTold: told})
	}
	if err == nil && resp.Type == "OK" && strings.HasSuffix(item, ".SILENT") {
		return s.silentStore(uids, sign == "+", flag, told)
	}
	return err
}

// silentStore applies a STORE .SILENT that succeeded to the model: the
// server does not echo the session's own change (RFC 9051 §6.4.6). For
// a message whose flags an untagged FETCH gave during the command (told),
// another session's change raced this one, and the client cannot know
// which the server applied last: its flags are fetched again instead.
func (s *session) silentStore(uids []uint32, add bool, flag string, told map[uint32]bool) error {
	flag = strings.ToLower(flag)
	var raced []uint32
	for _, u := range uids {
		cur, ok := s.v.flags[u]
		if u == 0 || !ok {
			continue
		}
		if told[u] {
			raced = append(raced, u)
			continue
		}
		list := strings.Fields(cur)
		if add {
			list = append(list, flag)
		} else {
			list = slices.DeleteFunc(list, func(f string) bool { return f == flag })
		}
		s.v.flags[u] = canonFlags(list)
	}
	if len(raced) == 0 {
		return nil
	}
	_, err := s.do("FETCH FLAGS", "UID FETCH "+uidSet(raced)+" (FLAGS)", curCmd{})
	return err
}

var searches = []string{"ALL", "UNSEEN", "FLAGGED", "DELETED", "KEYWORD $TortureA", "SEEN NOT FLAGGED", "OR ANSWERED DRAFT", "UNKEYWORD Work"}

func (s *session) opSearch() error {
	crit := searches[s.rng.IntN(len(searches))]
	if s.rng.IntN(8) == 0 {
		if uids := s.pick(1); uids != nil {
			if id := s.r.led.idOf(uids[0]); id != "" {
				crit = "HEADER Message-ID " + quote(id)
			}
		}
	}
	if s.rng.IntN(2) == 0 {
		_, err := s.do("SEARCH", "UID SEARCH "+crit, curCmd{uidSearch: true})
		return err
	}
	_, err := s.do("SEARCH", "SEARCH "+crit, curCmd{noExpunge: true})
	return err
}

func (s *session) opCopy() error {
	uids := s.pick(2)
	if uids == nil {
		return s.opNoop()
	}
	line := "UID COPY " + uidSet(uids) + " " + quote(s.r.cfg.Aux)
	x := s.r.led.transferSent("COPY", s.name, line, s.r.cfg.Aux, s.idsOf(uids), uids, s.r.now())
	resp, err := s.do("COPY", line, curCmd{copyTo: s.r.cfg.Aux, xfer: x})
	s.r.led.transferAnswered(x, resp, err, s.r.now())
	if err == nil {
		s.copied(resp, s.r.rec.since(time.Now()))
	}
	return err
}

// idsOf returns the Message-IDs uids name, as far as they are known.
func (s *session) idsOf(uids []uint32) []string {
	var ids []string
	for _, u := range uids {
		if id := s.r.led.idOf(u); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// copied learns which message each UID of a COPYUID (in the tagged
// response of a COPY, in an untagged OK or the tagged response of a
// MOVE, RFC 6851 §4.3) names in the target mailbox: the message its
// source UID names here.
func (s *session) copied(resp *Response, at time.Duration) {
	validity, src, dst, ok := copyUID(resp)
	if !ok || s.cur.copyTo == "" {
		return
	}
	for i, u := range src {
		if id := s.r.led.idOf(u); id != "" {
			s.r.led.named(s.cur.copyTo, validity, dst[i], id, at, false, s.name, s.cur.line, resp.Line)
			s.r.led.transferMade(s.cur.xfer, id, validity, dst[i])
		} else {
			// Nobody knows yet which message u names: the pair is
			// booked when the ledger is judged.
			s.r.led.transferPaired(s.cur.xfer, u, validity, dst[i])
		}
	}
}

func (s *session) opMove() error {
	if !s.c.has("MOVE") || s.r.size.Load() < int64(s.r.cfg.Messages/2) {
		return s.opCopy()
	}
	if err := s.writable(); err != nil {
		return err
	}
	uids := s.pick(1)
	if uids == nil {
		return s.opNoop()
	}
	line := "UID MOVE " + uidSet(uids) + " " + quote(s.r.cfg.Aux)
	x := s.r.led.transferSent("MOVE", s.name, line, s.r.cfg.Aux, s.idsOf(uids), uids, s.r.now())
	resp, err := s.do("MOVE", line, curCmd{copyTo: s.r.cfg.Aux, xfer: x})
	s.r.led.transferAnswered(x, resp, err, s.r.now())
	if err == nil {
		s.copied(resp, s.r.rec.since(time.Now()))
	}
	return err
}

// opExpunge flags a few messages \Deleted and, most of the time, expunges
// them: all of them with EXPUNGE, or only these with UID EXPUNGE. The
// rest of the time another session's EXPUNGE removes them.
func (s *session) opExpunge() error {
	if s.r.size.Load() < int64(s.r.cfg.Messages/2) {
		return s.opAppend()
	}
	if err := s.writable(); err != nil {
		return err
	}
	uids := s.pick(1 + s.rng.IntN(3))
	if uids == nil {
		return s.opNoop()
	}
	s.r.led.markDeleted(uids, s.r.rec.since(time.Now()))
	told := make(map[uint32]bool)
	resp, err := s.do("STORE", "UID STORE "+uidSet(uids)+` +FLAGS.SILENT (\Deleted)`, curCmd{flagsTold: told})
	if err != nil {
		return err
	}
	if resp.Type == "OK" {
		if err := s.silentStore(uids, true, `\Deleted`, told); err != nil {
			return err
		}
	}
	switch k := s.rng.IntN(20); {
	case k < 3:
		return nil
	case k < 11 && s.c.has("UIDPLUS"):
		e := s.r.led.expungeSent(uids, s.r.rec.since(time.Now()))
		_, err = s.do("UID EXPUNGE", "UID EXPUNGE "+uidSet(uids), curCmd{})
		if err == nil {
			s.r.led.expungeDone(e, s.r.rec.since(time.Now()))
		}
		return err
	}
	e := s.r.led.expungeSent(nil, s.r.rec.since(time.Now()))
	_, err = s.do("EXPUNGE", "EXPUNGE", curCmd{})
	if err == nil {
		s.r.led.expungeDone(e, s.r.rec.since(time.Now()))
	}
	return err
}

func (s *session) opAppend() error {
	if s.r.size.Load() > int64(2*s.r.cfg.Messages) {
		return s.opExpunge()
	}
	var flags []string
	for _, f := range storeFlags {
		if s.rng.IntN(4) == 0 {
			flags = append(flags, f)
		}
	}
	_, err := s.r.appendMessage(s, flags)
	return err
}

func (s *session) opNoop() error {
	_, err := s.do("NOOP", "NOOP", curCmd{})
	return err
}

func (s *session) opIdle() error {
	if !s.c.has("IDLE") {
		return s.opNoop()
	}
	d := time.Duration(10+s.rng.IntN(90)) * time.Millisecond
	start := time.Now()
	s.cur = curCmd{line: "IDLE", sent: s.r.rec.since(start)}
	resp, err := s.c.idle(d, s.onUntagged)
	if !s.r.finishing.Load() && !s.quiet {
		s.r.rec.op("IDLE", start, time.Since(start), outcomeOf(resp, err))
	}
	return s.wrap(err)
}
