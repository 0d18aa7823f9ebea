package imaptorture

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// Bounds of the lifecycle actors.
const (
	// maxLifecycleRate bounds the steps a second of a lifecycle actor.
	maxLifecycleRate = 1000
	// siblingFolders is how many sibling folders of Aux the folder
	// actor creates and deletes.
	siblingFolders = 2
)

// folderSession is one connection of a lifecycle actor. It works on
// mailboxes other than the one under test (Aux, its siblings, the names
// Aux is renamed to) and keeps a smaller model than a session: which
// UID each sequence number holds in the mailbox it selected, and which
// message each UID names. Its methods run on its actor's goroutine.
type folderSession struct {
	name string
	r    *run
	c    *imapConn
	cur  string // the command in progress
	// sel is the selected mailbox (box "" when none); prev the one
	// selected before it, whose end the server may announce late.
	sel, prev selection
	selecting bool
	uids      []uint32 // sequence number n is uids[n-1], 0 while unknown
	// fetched, while not nil, collects UID → Message-ID of the FETCH
	// responses of a look.
	fetched map[uint32]string
}

// open connects and logs in; nothing is selected.
func (f *folderSession) open() error {
	return f.r.admitted(f.login, func() { f.c.close() })
}

func (f *folderSession) login() error {
	c, err := f.r.dial()
	if err != nil {
		return err
	}
	f.c, f.sel, f.prev, f.uids = c, selection{}, selection{}, nil
	f.cur = "LOGIN"
	resp, err := c.command("LOGIN "+quote(f.r.cfg.User)+" "+quote(f.r.cfg.Password), f.onUntagged)
	if err != nil {
		return fmt.Errorf("LOGIN: %w", err)
	}
	if resp.Type != "OK" {
		return fmt.Errorf("LOGIN: %s", resp.Line)
	}
	if len(c.caps) == 0 || resp.Code != "CAPABILITY" {
		if _, err := f.do("CAPABILITY", "CAPABILITY"); err != nil {
			return err
		}
	}
	return nil
}

// do runs one command as operation label.
func (f *folderSession) do(label, line string) (*Response, error) {
	start := time.Now()
	f.cur = line
	resp, err := f.c.command(line, f.onUntagged)
	f.r.opDone(label, start, resp, err)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", line, err)
	}
	return resp, nil
}

// onUntagged follows the selected mailbox: its size, its expunges
// (judged by the changes of its name), the UIDs and Message-IDs it is
// told, its UIDVALIDITY.
func (f *folderSession) onUntagged(resp *Response, t time.Time) error {
	at := f.r.rec.since(t)
	switch resp.Type {
	case "EXISTS":
		if f.selecting {
			f.uids = make([]uint32, resp.Num)
			f.selecting = false
			break
		}
		for uint32(len(f.uids)) < resp.Num {
			f.uids = append(f.uids, 0)
		}
	case "EXPUNGE":
		n := int(resp.Num)
		if n == 0 || n > len(f.uids) || f.sel.box == "" {
			break
		}
		uid := f.uids[n-1]
		f.uids = slices.Delete(f.uids, n-1, n)
		f.r.led.folderExpunged(f.name, f.cur, f.sel, uid, at, resp.Line)
	case "FETCH":
		n := int(resp.Num)
		if n == 0 || n > len(f.uids) || !resp.Fetch.HasUID {
			break
		}
		uid := resp.Fetch.UID
		f.uids[n-1] = uid
		if f.fetched != nil {
			f.fetched[uid] = resp.Fetch.MessageID
		}
		if id := resp.Fetch.MessageID; id != "" && f.sel.box != "" {
			f.r.led.named(f.sel.box, f.sel.validity, uid, id, at, true, f.name, f.cur, resp.Line)
		}
	case "OK", "NO":
		if resp.Code == "UIDVALIDITY" && len(resp.CodeArgs) == 1 && f.sel.box != "" {
			if v, err := strconv.ParseUint(resp.CodeArgs[0], 10, 32); err == nil {
				f.sel.validity = uint32(v)
				f.r.led.sawLife(f.sel.box, f.sel.validity, at)
			}
		}
	case "BYE":
		return fmt.Errorf("%w: %s", errBye, resp.Line)
	}
	return nil
}

// selectBox selects (or examines) box; false when the server said NO.
func (f *folderSession) selectBox(box string, examine bool) (bool, error) {
	verb := "SELECT"
	if examine {
		verb = "EXAMINE"
	}
	if f.sel.box != "" {
		f.prev = f.sel
	}
	f.sel = selection{box: box, at: f.r.now()}
	f.selecting, f.uids = true, nil
	resp, err := f.do("folder "+verb, verb+" "+quote(box))
	if err != nil {
		return false, err
	}
	f.selecting = false
	if resp.Type != "OK" {
		f.sel = selection{}
		return false, nil
	}
	return true, nil
}

// look selects box and fetches the UID and Message-ID of every message
// in it, and has the ledger judge that view: every UID of the life it
// shows that the run was told of before must be there, unless a change
// of the name removed it.
func (f *folderSession) look(box string, examine bool) error {
	sent := f.r.now()
	ok, err := f.selectBox(box, examine)
	if err != nil || !ok {
		return err
	}
	present := make(map[uint32]string)
	if len(f.uids) > 0 {
		f.fetched = present
		resp, err := f.do("folder FETCH", "UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
		f.fetched = nil
		if err != nil || resp.Type != "OK" {
			return err
		}
	}
	f.r.led.judgeLook(f.name, box, f.sel.validity, present, sent, f.r.now())
	return nil
}

// listen asks the server for news of the selected mailbox (NOOP) and
// learns the messages that came.
func (f *folderSession) listen() error {
	if f.sel.box == "" {
		return nil
	}
	resp, err := f.do("folder NOOP", "NOOP")
	if err != nil || resp.Type != "OK" {
		return err
	}
	lo, hi, ok := (&view{uids: f.uids}).unknown()
	if !ok {
		return nil
	}
	_, err = f.do("folder FETCH", fmt.Sprintf("FETCH %d:%d (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])", lo, hi))
	return err
}

// recover passes err on, except a BYE (or a closed connection) after a
// change of the name of the mailbox the session had selected: the
// server may end such a session (Dovecot does), and the session then
// connects again.
func (f *folderSession) recover(err error) error {
	if err == nil || !errors.Is(err, errBye) && !errors.Is(err, ErrClosed) {
		return err
	}
	at := f.r.now()
	allowed := false
	for _, s := range []selection{f.sel, f.prev} {
		if s.box != "" && f.r.led.selectionEnded(s.box, s.validity, s.at, at) != "" {
			allowed = true
		}
	}
	if !allowed {
		return err
	}
	f.c.close()
	f.r.counts.reconnects.Add(1)
	return f.open()
}

// lifeStep is one kind of step in a lifecycle actor's mix.
type lifeStep struct {
	weight int
	run    func(a *lifeActor) error
}

// auxSteps change the life of Aux while the sessions COPY and MOVE into
// it.
var auxSteps = []lifeStep{
	{3, (*lifeActor).appendBoxes},
	{3, (*lifeActor).lookBoxes},
	{1, (*lifeActor).listen},
	{2, (*lifeActor).auxRename},
	{2, (*lifeActor).auxRecreate},
}

// folderSteps make and remove sibling folders of Aux.
var folderSteps = []lifeStep{
	{3, (*lifeActor).appendBoxes},
	{3, (*lifeActor).lookBoxes},
	{1, (*lifeActor).listen},
	{3, (*lifeActor).folderCycle},
	{1, (*lifeActor).badName},
}

// lifeActor changes the lives of mailbox names other than the one under
// test: it CREATEs, DELETEs and RENAMEs them on one connection (ctl,
// which never selects) and APPENDs to them, while its other connection
// (sel) selects them and is there when they are deleted or renamed.
// Every removal is recorded in the ledger before the command is sent.
type lifeActor struct {
	name     string
	r        *run
	rng      *rand.Rand
	rate     int // steps a second
	steps    []lifeStep
	ctl, sel *folderSession
	// boxes are the names it works on; away the names it renamed Aux to
	// that may still exist.
	boxes []string
	away  map[string]bool
	fresh int
}

func (r *run) newLifeActor(name string, rate int, steps []lifeStep, boxes []string) *lifeActor {
	return &lifeActor{
		name: name, r: r, rng: rand.New(rand.NewPCG(r.rng.Uint64(), r.rng.Uint64())), rate: rate, steps: steps, boxes: boxes,
		ctl: &folderSession{name: name + "/ctl", r: r}, sel: &folderSession{name: name + "/sel", r: r},
		away: make(map[string]bool),
	}
}

// loop runs steps at the actor's pace until the run stops.
func (a *lifeActor) loop() error {
	if err := a.ctl.open(); err != nil {
		return err
	}
	if err := a.sel.open(); err != nil {
		return err
	}
	total := 0
	for _, s := range a.steps {
		total += s.weight
	}
	tick := time.NewTicker(time.Second / time.Duration(a.rate))
	defer tick.Stop()
	for !a.r.stopping() {
		<-tick.C
		k := a.rng.IntN(total)
		for _, s := range a.steps {
			if k < s.weight {
				if err := s.run(a); err != nil {
					return err
				}
				break
			}
			k -= s.weight
		}
	}
	return nil
}

// finish runs after every actor has stopped: a last look at each of the
// actor's mailboxes, judged like the others, then its sibling folders
// and the names it renamed Aux to are deleted and Aux is made again if
// it is gone.
func (a *lifeActor) finish() {
	if err := a.finalLook(); err != nil {
		a.r.rec.failure(a.name+" (final check)", err)
		return
	}
	if err := a.cleanUp(); err != nil {
		a.r.rec.failure(a.name+" (final check)", err)
	}
	a.ctl.c.logout()
}

// finalLook connects both sessions afresh and looks at every mailbox of
// the actor.
func (a *lifeActor) finalLook() error {
	for _, f := range []*folderSession{a.ctl, a.sel} {
		if f.c != nil {
			f.c.close()
		}
		if err := f.open(); err != nil {
			return err
		}
	}
	for _, b := range a.boxes {
		if err := a.sel.recover(a.sel.look(b, true)); err != nil {
			return err
		}
	}
	a.sel.c.logout()
	return nil
}

// cleanUp deletes the names Aux was renamed to and the siblings, and
// makes Aux again if it is gone.
func (a *lifeActor) cleanUp() error {
	for _, b := range slices.Sorted(maps.Keys(a.away)) {
		if _, err := a.delete(b); err != nil {
			return err
		}
	}
	for _, b := range a.boxes {
		var err error
		if b == a.r.cfg.Aux {
			_, err = a.create(b)
		} else {
			_, err = a.delete(b)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (a *lifeActor) pick() string { return a.boxes[a.rng.IntN(len(a.boxes))] }

// create sends CREATE box; true when it succeeded, which begins a new
// life of the name.
func (a *lifeActor) create(box string) (bool, error) {
	sent := a.r.now()
	resp, err := a.ctl.do("CREATE", "CREATE "+quote(box))
	if err != nil || resp.Type != "OK" {
		return false, err
	}
	a.r.led.nameCreated("CREATE "+quote(box)+" by "+a.name, box, sent, a.r.now())
	a.r.counts.creates.Add(1)
	return true, nil
}

// delete sends DELETE box, recorded as a removal of the name first.
func (a *lifeActor) delete(box string) (bool, error) {
	e := a.r.led.removing("DELETE "+quote(box)+" by "+a.name, a.r.now(), box)
	resp, err := a.ctl.do("DELETE", "DELETE "+quote(box))
	if err != nil {
		return false, err // the DELETE may or may not have run: e stays running
	}
	a.r.led.lifeDone(e, a.r.now())
	if resp.Type != "OK" {
		return false, nil
	}
	a.r.counts.deletes.Add(1)
	return true, nil
}

// rename sends RENAME from to, recorded first as a removal of both
// names (to may be selected by a session from an earlier life).
func (a *lifeActor) rename(from, to string) (bool, error) {
	e := a.r.led.removing("RENAME "+quote(from)+" "+quote(to)+" by "+a.name, a.r.now(), from, to)
	resp, err := a.ctl.do("RENAME", "RENAME "+quote(from)+" "+quote(to))
	if err != nil {
		return false, err
	}
	done := a.r.now()
	a.r.led.lifeDone(e, done)
	if resp.Type != "OK" {
		return false, nil
	}
	a.r.led.nameCreated(e.what, to, e.sent, done)
	a.r.counts.renames.Add(1)
	return true, nil
}

// appendTo appends a new message to box and records it, its answer and
// the UID APPENDUID gives it; false when the server said NO (box does
// not exist).
func (a *lifeActor) appendTo(box string) (bool, error) {
	id := a.r.led.newMessageID()
	msg := newMessage(id, "APPEND "+a.name, a.rng)
	line := "APPEND " + quote(box) + " () {" + strconv.Itoa(len(msg)) + "}"
	start := time.Now()
	a.ctl.cur = line
	x := a.r.led.transferSent("APPEND", a.ctl.name, line, box, []string{id}, nil, a.r.rec.since(start))
	resp, err := a.ctl.c.commandLiteral("APPEND "+quote(box)+" () ", msg, "", a.ctl.onUntagged)
	a.r.opDone("folder APPEND", start, resp, err)
	a.r.led.transferAnswered(x, resp, err, a.r.now())
	if err != nil {
		return false, fmt.Errorf("%s: %w", line, err)
	}
	if resp.Type != "OK" {
		return false, nil
	}
	a.r.counts.folderAppended.Add(1)
	if v, u, ok := appendUID(resp); ok {
		a.r.led.named(box, v, u, id, a.r.now(), false, a.ctl.name, line, resp.Line)
		a.r.led.transferMade(x, id, v, u)
	}
	return true, nil
}

// fill appends n messages to box, creating it again first if it is
// gone.
func (a *lifeActor) fill(box string, n int) error {
	for range n {
		ok, err := a.appendTo(box)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		made, err := a.create(box)
		if err != nil || !made {
			return err
		}
		if _, err := a.appendTo(box); err != nil {
			return err
		}
	}
	return nil
}

func (a *lifeActor) look(box string) error {
	return a.sel.recover(a.sel.look(box, a.rng.IntN(2) == 0))
}

func (a *lifeActor) appendBoxes() error { return a.fill(a.pick(), 1+a.rng.IntN(2)) }

func (a *lifeActor) lookBoxes() error { return a.look(a.pick()) }

// listen hears what happened to the selected mailbox, or selects one.
func (a *lifeActor) listen() error {
	if a.sel.sel.box == "" {
		return a.lookBoxes()
	}
	return a.sel.recover(a.sel.listen())
}

// auxRename renames Aux to a fresh name and back. Meanwhile it may look
// at it under its new name, and may give Aux a new life (CREATE,
// APPEND, DELETE) while the old one is away: on a server that ties a
// mailbox's state to its name, the new life gets the old UIDVALIDITY
// and UIDs from 1 again. When Aux exists again by the time it is to come
// back (another actor made it), the old life is deleted.
func (a *lifeActor) auxRename() error {
	aux := a.r.cfg.Aux
	a.fresh++
	away := fmt.Sprintf("%s-away-%s-i%d", aux, a.r.led.runID, a.fresh)
	ok, err := a.rename(aux, away)
	if err != nil || !ok {
		return err
	}
	a.away[away] = true
	if a.rng.IntN(2) == 0 {
		if err := a.look(away); err != nil {
			return err
		}
	}
	if a.rng.IntN(2) == 0 {
		made, err := a.create(aux)
		if err != nil {
			return err
		}
		if made {
			if err := a.fill(aux, 1+a.rng.IntN(2)); err != nil {
				return err
			}
			if a.rng.IntN(2) == 0 {
				if err := a.look(aux); err != nil {
					return err
				}
			}
			if _, err := a.delete(aux); err != nil {
				return err
			}
		}
	}
	back, err := a.rename(away, aux)
	if err != nil {
		return err
	}
	if !back {
		if back, err = a.delete(away); err != nil {
			return err
		}
	}
	if back {
		delete(a.away, away)
	}
	return nil
}

// auxRecreate deletes Aux (often while sel has it selected), hears what
// sel is told, creates it again and appends to its new life.
func (a *lifeActor) auxRecreate() error {
	aux := a.r.cfg.Aux
	if a.sel.sel.box != aux && a.rng.IntN(2) == 0 {
		if err := a.look(aux); err != nil {
			return err
		}
	}
	if _, err := a.delete(aux); err != nil {
		return err
	}
	if a.rng.IntN(2) == 0 {
		if err := a.listen(); err != nil {
			return err
		}
	}
	if _, err := a.create(aux); err != nil {
		return err
	}
	return a.fill(aux, 1+a.rng.IntN(2))
}

// folderCycle runs one life of a sibling folder: CREATE, APPEND, SELECT
// or EXAMINE, DELETE while sel has it selected, what sel hears then,
// CREATE again and APPEND to the new life.
func (a *lifeActor) folderCycle() error {
	box := a.pick()
	if _, err := a.create(box); err != nil {
		return err
	}
	if err := a.fill(box, 1+a.rng.IntN(2)); err != nil {
		return err
	}
	if err := a.look(box); err != nil {
		return err
	}
	if _, err := a.delete(box); err != nil {
		return err
	}
	if err := a.listen(); err != nil {
		return err
	}
	if _, err := a.create(box); err != nil {
		return err
	}
	return a.fill(box, 1)
}

// badNames are mailbox name endings, in modified UTF-7, that hold a
// control character once decoded: U+0000, CR LF, U+001F, U+0085. RFC
// 9051 §5.1 and Dovecot refuse them; a server that makes one may then
// send a name that breaks its own responses (CR LF inside a literal).
var badNames = []string{"&AAA-", "&AA0ACg-x", "&AB8-", "&AIU-"}

// badName sends CREATE of a sibling of Aux whose name holds a control
// character. An OK is bad_name_accepted; the mailbox made is deleted
// again.
func (a *lifeActor) badName() error {
	box := a.r.cfg.Aux + "-bad" + badNames[a.rng.IntN(len(badNames))]
	line := "CREATE " + quote(box)
	resp, err := a.ctl.do("CREATE bad name", line)
	if err != nil || resp.Type != "OK" {
		return err
	}
	a.r.rec.violation("", Violation{Kind: BadNameAccepted, At: a.r.now().Seconds(), Session: a.ctl.name, Command: line,
		Detail:   fmt.Sprintf("%q holds a control character once decoded, and the server made it", box),
		Evidence: []string{resp.Line}})
	_, err = a.ctl.do("DELETE bad name", "DELETE "+quote(box))
	return err
}
