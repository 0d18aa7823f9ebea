package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/textproto"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cistern-mail/cistern/internal/store"
)

// Sizes and bounds of TestCrashMove.
const (
	crashMoveMessages = 400
	crashMoveClients  = 2
	crashMoveKills    = 8
	// A kill lands this long at most after the first MOVE answered since
	// the daemon started: while the clients keep it moving.
	crashMoveKillDelay = 25 * time.Millisecond
	crashMoveMinSize   = 600
	crashMoveMaxSize   = 4 << 10
	crashMoveFolder    = "Target"
)

// moveLedger records what the MOVE clients asked and were told. A
// message is named by one MOVE at most: a MOVE cut by a kill is never
// sent again, so its outcome stays visible. Safe for concurrent use.
type moveLedger struct {
	mu       sync.Mutex
	named    map[string]bool     // Message-IDs named by a MOVE sent
	acked    map[string]imap.UID // Message-ID → its UID in the target (COPYUID of an OK)
	commands int                 // MOVE commands sent
	oks      int                 // answered OK
	cut      int                 // without an answer when the connection ended
	cutMsgs  int                 // messages those named
	kills    int                 // kills so far, counted as each is sent
	cutAt    map[int]int         // kill → MOVEs it cut
}

func newMoveLedger() *moveLedger {
	return &moveLedger{named: make(map[string]bool), acked: make(map[string]imap.UID), cutAt: make(map[int]int)}
}

// killing counts a kill about to be sent: the MOVEs cut from now on are
// its (nothing else ends a connection; a timeout fails the test).
func (l *moveLedger) killing() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kills++
}

func (l *moveLedger) isNamed(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.named[id]
}

func (l *moveLedger) sending(ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.named[id] = true
	}
	l.commands++
}

func (l *moveLedger) answered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.oks
}

// moveItem is one message in a client's INBOX view.
type moveItem struct {
	uid imap.UID
	id  string
}

// moveClient moves its share of INBOX (the messages whose number is its
// id modulo crashMoveClients) to the target, one to three messages per
// MOVE, one to three MOVEs pipelined, reconnecting after every kill.
type moveClient struct {
	id   int
	addr string
	user string
	rng  *rand.Rand
	l    *moveLedger
	fail *failures
}

func (c *moveClient) own(id string) bool {
	var n int
	if _, err := fmt.Sscanf(id, "<move.%d@", &n); err != nil {
		return false
	}
	return n%crashMoveClients == c.id
}

func (c *moveClient) run(stop <-chan struct{}) {
	for !stopped(stop) {
		nc := dialRetry(c.addr, stop, c.fail)
		if nc == nil {
			return
		}
		finished, err := c.session(nc, stop)
		nc.Close()
		switch {
		case finished:
			return
		case isTimeout(err):
			c.fail.add("move client %d: the server stopped answering: %v", c.id, err)
			return
		}
	}
}

// session moves until nothing of its share is left in INBOX (finished),
// stop is closed, or the connection ends.
func (c *moveClient) session(nc net.Conn, stop <-chan struct{}) (finished bool, err error) {
	s, sel, err := newIMAPSession(nc, c.user)
	defer s.close()
	if err != nil {
		return false, err
	}
	var todo []moveItem
	if sel.NumMessages > 0 {
		msgs, err := s.messageIDs(1)
		if err != nil {
			return false, err
		}
		for _, m := range msgs {
			if id := fetchedID(m); c.own(id) && !c.l.isNamed(id) {
				todo = append(todo, moveItem{m.UID, id})
			}
		}
	}
	for len(todo) > 0 && !stopped(stop) {
		type sent struct {
			items []moveItem
			cmd   *imapclient.MoveCommand
		}
		var batch []sent
		for range 1 + c.rng.IntN(3) {
			if len(todo) == 0 {
				break
			}
			n := min(len(todo), 1+c.rng.IntN(3))
			items := todo[:n:n]
			todo = todo[n:]
			var set imap.UIDSet
			ids := make([]string, n)
			for i, it := range items {
				set.AddNum(it.uid)
				ids[i] = it.id
			}
			c.l.sending(ids)
			batch = append(batch, sent{items, s.c.Move(set, crashMoveFolder)})
		}
		s.nc.SetDeadline(time.Now().Add(crashIOTimeout))
		for i, b := range batch {
			data, err := b.cmd.Wait()
			var ie *imap.Error
			switch {
			case errors.As(err, &ie):
				c.fail.add("move client %d: MOVE of %d messages refused: %v", c.id, len(b.items), err)
			case err != nil:
				c.l.mu.Lock()
				for _, rest := range batch[i:] {
					c.l.cut++
					c.l.cutMsgs += len(rest.items)
					c.l.cutAt[c.l.kills]++
				}
				c.l.mu.Unlock()
				return false, err
			default:
				c.acked(b.items, data)
			}
		}
	}
	return len(todo) == 0, nil
}

// acked records a MOVE answered OK. COPYUID pairs the two sets in
// order; the server writes both ascending.
func (c *moveClient) acked(items []moveItem, data *imapclient.MoveData) {
	var src, dst []imap.UID
	if set, ok := data.SourceUIDs.(imap.UIDSet); ok {
		src, _ = set.Nums()
	}
	if set, ok := data.DestUIDs.(imap.UIDSet); ok {
		dst, _ = set.Nums()
	}
	if len(src) != len(items) || len(dst) != len(items) || !slices.IsSorted(src) || !slices.IsSorted(dst) {
		c.fail.add("move client %d: MOVE of %d messages answered COPYUID %v %v", c.id, len(items), data.SourceUIDs, data.DestUIDs)
		return
	}
	byUID := make(map[imap.UID]string, len(items))
	for _, it := range items {
		byUID[it.uid] = it.id
	}
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	c.l.oks++
	for i, uid := range src {
		id, ok := byUID[uid]
		if !ok {
			c.fail.add("move client %d: COPYUID names UID %d, which the MOVE did not", c.id, uid)
			continue
		}
		c.l.acked[id] = dst[i]
	}
}

// fillInbox delivers crashMoveMessages small messages to user over LMTP,
// each acknowledged, and returns their Message-IDs.
func fillInbox(t *testing.T, s *crashSetup, user string, rng *rand.Rand) []string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.lmtpAddr, crashIOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	l := newLedger()
	f := &lmtpFlooder{l: l, rng: rng, fail: &failures{}}
	tc := textproto.NewConn(nc)
	nc.SetDeadline(time.Now().Add(crashIOTimeout))
	if _, _, err := tc.ReadResponse(220); err != nil {
		t.Fatalf("LMTP greeting: %v", err)
	}
	if err := f.command(tc, 250, "LHLO fill.%s", crashDomain); err != nil {
		t.Fatalf("LHLO: %v", err)
	}
	from := "mover@" + crashDomain
	rcpt := []string{user + "@" + crashDomain}
	ids := make([]string, crashMoveMessages)
	for i := range ids {
		ids[i] = fmt.Sprintf("<move.%d@%s>", i, crashDomain)
		msg := composeMessage(rng, ids[i], from, rcpt, crashMoveMinSize+rng.IntN(crashMoveMaxSize-crashMoveMinSize))
		if err := l.record(ids[i], from, rcpt, []string{user}, msg); err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(crashIOTimeout))
		if err := f.send(tc, ids[i], from, rcpt, []string{user}, msg); err != nil {
			t.Fatalf("delivering %s: %v", ids[i], err)
		}
	}
	if _, acked, _ := l.totals(); acked != len(ids) {
		t.Fatalf("%d of %d messages acknowledged", acked, len(ids))
	}
	return ids
}

// folderIDs lists the Message-IDs of the message files of the Maildir
// dir (new/ and cur/), with how often each is there.
func folderIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	out := make(map[string]int)
	for _, name := range messageFiles(t, dir) {
		out[headerID(t, filepath.Join(dir, name))]++
	}
	return out
}

// imapFolderIDs lists the messages of an IMAP mailbox by Message-ID, and
// reports one that has two UIDs.
func imapFolderIDs(t *testing.T, s *imapSession, mailbox string) map[string]imap.UID {
	t.Helper()
	s.nc.SetDeadline(time.Now().Add(crashIOTimeout))
	sel, err := s.c.Select(mailbox, nil).Wait()
	if err != nil {
		t.Fatalf("SELECT %s: %v", mailbox, err)
	}
	return fetchIDs(t, s, mailbox, sel.NumMessages)
}

// TestCrashMove kills 'cistern serve' with SIGKILL while IMAP clients
// MOVE messages from INBOX to another folder, and then checks DESIGN.md
// §4's promise for MOVE: every message is in exactly one of the two
// folders, on disk and over IMAP, whatever the moment of the kill, and
// every MOVE answered OK is in the target under the UID its COPYUID gave.
// The store then finds nothing to assign or expunge, and its Check and
// CheckFiles pass on both folders.
func TestCrashMove(t *testing.T) {
	seed := crashSeed(t)
	s := newCrashSetup(t, 1)
	user := s.users[0]
	d := newCrashDaemon(t, s)
	start := time.Now()
	d.start()
	ids := fillInbox(t, s, user, rand.New(rand.NewPCG(seed, 4)))
	createFolder(t, s, user, crashMoveFolder)
	inbox := s.maildir(user)
	target := filepath.Join(inbox, "."+crashMoveFolder)

	l := newMoveLedger()
	fail := &failures{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range crashMoveClients {
		c := &moveClient{id: i, addr: s.imapAddr, user: user, rng: rand.New(rand.NewPCG(seed, uint64(10+i))), l: l, fail: fail}
		wg.Go(func() { c.run(stop) })
	}
	clientsDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(clientsDone)
	}()
	defer func() {
		// On a t.Fatal below: the clients must not outlive the test.
		select {
		case <-stop:
		default:
			close(stop)
			<-clientsDone
			fail.report(t)
		}
	}()

	killRng := rand.New(rand.NewPCG(seed, 3))
	for range crashMoveKills {
		// Wait for a MOVE answered by this run of the daemon: the
		// clients are back in and moving.
		base := l.answered()
		deadline := time.Now().Add(crashLoginTimeout)
		for l.answered() == base {
			select {
			case <-clientsDone:
			case <-d.exited():
				t.Fatalf("serve exited by itself (%v)", d.proc.State())
			case <-time.After(2 * time.Millisecond):
			}
			if stopped(clientsDone) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no MOVE answered within %v of a start", crashLoginTimeout)
			}
		}
		if stopped(clientsDone) {
			break // everything moved: no kill would land in a MOVE now
		}
		time.Sleep(time.Duration(killRng.Int64N(int64(crashMoveKillDelay))))
		l.killing()
		d.kill()
		for _, dir := range []string{inbox, target} {
			checkDirLockLeftover(t, dir, d.kills)
		}
		d.start()
	}
	select {
	case <-clientsDone:
	case <-time.After(crashDrainTimeout):
		t.Fatalf("the MOVE clients did not finish within %v of the last start", crashDrainTimeout)
	}
	close(stop)
	elapsed := time.Since(start)
	fail.report(t)

	// Over IMAP, with the daemon running.
	nc, err := net.DialTimeout("tcp", s.imapAddr, crashIOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	is, _, err := newIMAPSession(nc, user)
	if err != nil {
		t.Fatalf("imap: %v", err)
	}
	imapSrc := imapFolderIDs(t, is, "INBOX")
	imapDst := imapFolderIDs(t, is, crashMoveFolder)
	is.close()
	d.stop()

	// On disk, and the store's view of both folders.
	diskSrc, diskDst := folderIDs(t, inbox), folderIDs(t, target)
	for _, dir := range []string{inbox, target} {
		checkQuietStore(t, dir)
	}
	n := checkMoved(t, ids, l, diskSrc, diskDst, imapSrc, imapDst)

	if l.cutAt[0] > 0 {
		t.Errorf("%d MOVEs lost their connection before any kill", l.cutAt[0])
	}
	t.Logf("%d kills, %d starts in %v; %d MOVE commands for %d messages, %d answered OK (%d messages), %d cut by a kill (%d messages; per kill %v); messages in INBOX only %d, in %s only %d, in both %d, in neither %d, twice in one folder %d (over IMAP: both %d, neither %d)",
		d.kills, d.starts, elapsed.Round(time.Millisecond), l.commands, len(l.named), l.oks, len(l.acked), l.cut, l.cutMsgs, cutsPerKill(l.cutAt, d.kills),
		n.inSrc, crashMoveFolder, n.inDst, n.both, n.neither, n.twice, n.imapBoth, n.imapNeither)
	if l.oks == 0 || l.cut == 0 {
		t.Errorf("%d MOVEs answered OK, %d cut by a kill: the test tested nothing", l.oks, l.cut)
	}
}

// createFolder creates the mailbox name of user over IMAP.
func createFolder(t *testing.T, s *crashSetup, user, name string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.imapAddr, crashIOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	is, _, err := newIMAPSession(nc, user)
	if err == nil {
		err = is.c.Create(name, nil).Wait()
	}
	is.close()
	if err != nil {
		t.Fatalf("CREATE %s: %v", name, err)
	}
}

// checkQuietStore syncs the mailbox dir, which the daemon synced last
// (nothing is left to assign or expunge), and runs the store's checks.
func checkQuietStore(t *testing.T, dir string) {
	t.Helper()
	mb, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	ch, err := mb.Sync(context.Background())
	if err != nil {
		t.Fatalf("%s: sync: %v", dir, err)
	}
	if ch.Assigned != 0 || len(ch.Expunged) != 0 {
		t.Errorf("%s: a sync after the daemon's assigned %d UIDs and expunged %d messages", dir, ch.Assigned, len(ch.Expunged))
	}
	if err := mb.Check(); err != nil {
		t.Errorf("%s: store Check: %v", dir, err)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Errorf("%s: store CheckFiles: %v", dir, err)
	}
}

// moveCounts are where TestCrashMove found its messages.
type moveCounts struct {
	inSrc, inDst, both, neither, twice int // on disk
	imapBoth, imapNeither              int
}

// checkMoved holds where the messages ids are, on disk (Message-ID →
// files) and over IMAP (Message-ID → UID), in the source and the target,
// against the ledger: each is in exactly one folder, once, where IMAP
// says too; each MOVE answered OK is in the target under its COPYUID;
// a message never named by a MOVE is in the source.
func checkMoved(t *testing.T, ids []string, l *moveLedger, diskSrc, diskDst map[string]int, imapSrc, imapDst map[string]imap.UID) moveCounts {
	t.Helper()
	var n moveCounts
	known := make(map[string]bool, len(ids))
	for _, id := range ids {
		known[id] = true
		ns, nd := diskSrc[id], diskDst[id]
		_, imapInSrc := imapSrc[id]
		_, imapInDst := imapDst[id]
		switch {
		case ns > 0 && nd > 0:
			n.both++
			t.Errorf("%s is in INBOX (%d files) and in %s (%d files)", id, ns, crashMoveFolder, nd)
		case ns > 0:
			n.inSrc++
		case nd > 0:
			n.inDst++
		default:
			n.neither++
			t.Errorf("%s is in neither folder", id)
		}
		if ns > 1 || nd > 1 {
			n.twice++
			t.Errorf("%s has %d files in INBOX and %d in %s", id, ns, nd, crashMoveFolder)
		}
		if imapInSrc && imapInDst {
			n.imapBoth++
		}
		if !imapInSrc && !imapInDst {
			n.imapNeither++
		}
		if imapInSrc != (ns > 0) || imapInDst != (nd > 0) {
			t.Errorf("%s: IMAP shows it in INBOX %v and in %s %v; the files say %v and %v", id, imapInSrc, crashMoveFolder, imapInDst, ns > 0, nd > 0)
		}
		if uid, ok := l.acked[id]; ok {
			if got, there := imapDst[id]; !there || got != uid {
				t.Errorf("%s: MOVE answered OK with UID %d in %s; it is there under UID %d (present: %v)", id, uid, crashMoveFolder, got, there)
			}
		} else if !l.named[id] && (ns != 1 || nd != 0) {
			t.Errorf("%s was never moved, and has %d files in INBOX and %d in %s", id, ns, nd, crashMoveFolder)
		}
	}
	for _, m := range []map[string]int{diskSrc, diskDst} {
		for id := range m {
			if !known[id] {
				t.Errorf("a message file holds %q, which was never delivered", id)
			}
		}
	}
	return n
}

// cutsPerKill lists the MOVEs each kill cut, in kill order.
func cutsPerKill(cutAt map[int]int, kills int) []int {
	out := make([]int, kills)
	for i := range out {
		out[i] = cutAt[i+1]
	}
	return out
}
