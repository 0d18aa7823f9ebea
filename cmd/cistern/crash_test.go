package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/testproc"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// The crash tests kill Cistern with SIGKILL while it delivers (LMTP under
// 'cistern serve', and 'cistern deliver') and then hold every Maildir
// against what the clients were told (crashcheck_test.go): DESIGN.md §2.3
// (an acknowledged delivery is durable; a crash leaves the whole message
// or nothing in new/ and cur/), §2.4 (never twice) and §2.2 (UIDs stable,
// never given twice).
//
// The processes under test are this test binary, started with childEnv
// set: TestMain then runs main(), so the child is the cistern command,
// built as the test is (with -race under 'go test -race'), without a
// separate build.

// childEnv makes a process started from the test binary run main().
const childEnv = "CISTERN_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

var crashSeedFlag = flag.Uint64("crash.seed", 0, "seed of the crash tests' randomness (0: from the clock)")

// Sizes and bounds of the crash tests.
const (
	crashLMTPUsers   = 4
	crashLMTPClients = 5
	crashKills       = 12
	crashMinRun      = 100 * time.Millisecond  // the daemon runs this long at least before a kill
	crashMaxRun      = 1500 * time.Millisecond // and at most this long
	crashFinalRun    = 500 * time.Millisecond  // the last run, without a kill, before the clients stop
	// Every crashIMAPRunEvery-th run starts only once the IMAP sessions
	// have logged in again, which takes the daemon seconds under -race
	// (see crashLoginTimeout); the others are killed before that.
	crashIMAPRunEvery = 4
	crashMinMessage   = 1 << 10
	crashMaxMessage   = 200 << 10

	crashLDAUsers     = 3
	crashLDAProcs     = 48
	crashLDAParallel  = 8
	crashLDAKillDelay = 30 * time.Millisecond // a kill lands this long at most after its planned point

	// Deadlines; none is reached by a working server.
	crashStartTimeout = 30 * time.Second // until a started daemon greets on both ports
	crashStopTimeout  = 20 * time.Second // SIGTERM to exit; serve waits 10 s for its sessions
	crashIOTimeout    = 30 * time.Second // one LMTP transaction or IMAP command on a live server
	crashRetryTimeout = 60 * time.Second // a client reconnecting to a daemon that is restarted
	// crashLoginTimeout bounds the first IMAP login after a start: the
	// daemon makes its dummy password hash then (bcrypt, cost 12), 0.2 s
	// without -race and about 3 s with it on this 2-core machine.
	crashLoginTimeout = 30 * time.Second
	crashDrainTimeout = 90 * time.Second // the clients ending after they were told to stop
	crashLDATimeout   = 60 * time.Second // one 'cistern deliver'
)

// crashSeed returns the seed of this run and logs it.
func crashSeed(t *testing.T) uint64 {
	seed := *crashSeedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -crash.seed=%d)", seed, seed)
	return seed
}

// cisternCommand returns the command 'cistern args...' (see childEnv).
func cisternCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	// Under -race, a process sleeps a second at exit by default
	// (atexit_sleep_ms), which would make every 'cistern deliver' and
	// 'cistern user' take that long.
	cmd.Env = append(os.Environ(), childEnv+"=1", "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	// A test binary killed by its timeout leaves no daemon behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// crashUserPassword is every crash-test user's password.
const crashUserPassword = "crash-secret"

// crashSetup is the configuration of a crash test: a temporary directory
// with cistern.toml, the passwd-file with the users (made by 'cistern
// user add'), the data directory, and the Maildirs under mail/.
type crashSetup struct {
	dir      string
	conf     string
	users    []string
	imapAddr string
	lmtpAddr string
}

func newCrashSetup(t *testing.T, nusers int) *crashSetup {
	t.Helper()
	s := &crashSetup{dir: t.TempDir()}
	s.conf = filepath.Join(s.dir, "cistern.toml")
	var err1, err2 error
	s.imapAddr, err1 = testproc.FreeAddr()
	s.lmtpAddr, err2 = testproc.FreeAddr()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	conf := testproc.CisternConfig{
		DataDir:      filepath.Join(s.dir, "data"),
		MailLocation: filepath.Join(s.dir, "mail", "%u", "Maildir"),
		PasswdFile:   filepath.Join(s.dir, "passwd"),
		IMAP:         s.imapAddr,
		LMTP:         s.lmtpAddr,
		LogLevel:     "info",
	}
	if err := conf.Write(s.conf); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(s.dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= nusers; i++ {
		u := "u" + strconv.Itoa(i)
		cmd := cisternCommand(t, "user", "add", "--config", s.conf, u)
		cmd.Stdin = strings.NewReader(crashUserPassword + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cistern user add %s: %v\n%s", u, err, out)
		}
		s.users = append(s.users, u)
	}
	// As root, the daemon and the LDA run as an unprivileged user.
	if line := runAsUser(t, s.dir); line != "" {
		if err := os.WriteFile(s.conf, []byte(line+conf.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// maildir is user's INBOX, by mail_location.
func (s *crashSetup) maildir(user string) string {
	return filepath.Join(s.dir, "mail", user, "Maildir")
}

// crashDaemon is 'cistern serve' as a child process, started again after
// every kill, its output of every run appended to one log file. Its
// methods are called from the test's goroutine.
type crashDaemon struct {
	t       *testing.T
	s       *crashSetup
	logPath string

	proc   *testproc.Proc // the current run
	starts int
	kills  int
}

func newCrashDaemon(t *testing.T, s *crashSetup) *crashDaemon {
	d := &crashDaemon{t: t, s: s, logPath: filepath.Join(s.dir, "serve.log")}
	t.Cleanup(func() {
		if d.proc != nil {
			d.proc.Kill()
		}
		d.checkLog()
		if t.Failed() {
			t.Logf("serve log %s, last lines but deliveries:\n%s", d.logPath, d.tail(60))
		}
	})
	return d
}

// exited is closed once the current run has ended.
func (d *crashDaemon) exited() <-chan struct{} { return d.proc.Done() }

// start starts the daemon and returns once it greets on both ports.
func (d *crashDaemon) start() {
	d.t.Helper()
	out, err := os.OpenFile(d.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	fmt.Fprintf(out, "--- crash test: start %d\n", d.starts+1)
	out.Close()
	p, err := testproc.Start("serve", cisternCommand(d.t, "serve", "--config", d.s.conf), d.logPath)
	if err != nil {
		d.t.Fatal(err)
	}
	d.proc = p
	d.starts++
	deadline := time.Now().Add(crashStartTimeout)
	for _, g := range []testproc.Greeting{{Addr: d.s.lmtpAddr, Prefix: "220 "}, {Addr: d.s.imapAddr, Prefix: "* OK"}} {
		if err := p.WaitReady(time.Until(deadline), testproc.Greets(g.Addr, g.Prefix)); err != nil {
			d.t.Fatal(err)
		}
	}
}

// kill kills the daemon with SIGKILL and waits for it to be gone. It
// fails the test if the daemon had exited by itself.
func (d *crashDaemon) kill() {
	d.t.Helper()
	if err := d.proc.Kill(); err != nil {
		d.t.Fatal(err)
	}
	d.kills++
}

// stop stops the daemon with SIGTERM and fails the test unless it exits
// with status 0 in time.
func (d *crashDaemon) stop() {
	d.t.Helper()
	if d.proc.Exited() {
		d.t.Fatalf("serve exited by itself (%v)", d.proc.State())
	}
	if err := d.proc.Stop(crashStopTimeout); err != nil {
		d.t.Fatal(err)
	}
	if !d.proc.State().Success() {
		d.t.Errorf("serve exited with %v after SIGTERM, want status 0", d.proc.State())
	}
}

// checkLog fails the test on a data race or a panic in any run's output.
func (d *crashDaemon) checkLog() {
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		d.t.Errorf("serve log: %v", err)
		return
	}
	for _, bad := range []string{"WARNING: DATA RACE", "panic"} {
		if i := bytes.Index(data, []byte(bad)); i >= 0 {
			d.t.Errorf("serve log holds %q:\n%s", bad, data[max(0, i-200):min(len(data), i+3000)])
		}
	}
}

// tail returns the last n lines of the log that are not about a
// delivery (one line each).
func (d *crashDaemon) tail(n int) string {
	data, _ := os.ReadFile(d.logPath)
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if !strings.Contains(l, "msg=delivery ") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// failures collects what the clients' goroutines find, for the test's
// goroutine to report.
type failures struct {
	mu   sync.Mutex
	errs []string
}

func (f *failures) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

// report fails t with every finding not reported yet.
func (f *failures) report(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.errs {
		t.Error(e)
	}
	f.errs = nil
}

// stopped reports whether stop is closed.
func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// dialRetry connects to addr, retrying while the daemon is down (between
// a kill and its restart). It returns nil when stop is closed first, and
// fails through f after crashRetryTimeout.
func dialRetry(addr string, stop <-chan struct{}, f *failures) net.Conn {
	deadline := time.Now().Add(crashRetryTimeout)
	for !stopped(stop) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			f.add("%s unreachable for %v: %v", addr, crashRetryTimeout, err)
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// isTimeout tells a server that stopped answering (a deadline passed)
// from one that was killed (the connection ended).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// lmtpFlooder is one LMTP client of TestCrashLMTP: one connection at a
// time, transactions back to back, reconnecting after every kill. Its
// messages (sizes, recipients, text) come from its own seeded rng.
type lmtpFlooder struct {
	id    int
	addr  string
	users []string
	l     *ledger
	rng   *rand.Rand
	fail  *failures
	pause *sync.RWMutex // held for reading during each transaction

	txns int // transactions begun
	cut  int // transactions ended by a lost connection
}

// errRefused is a reply other than the one expected from a live server.
var errRefused = errors.New("refused")

func (f *lmtpFlooder) run(stop <-chan struct{}) {
	for !stopped(stop) {
		nc := dialRetry(f.addr, stop, f.fail)
		if nc == nil {
			return
		}
		err := f.session(nc, stop)
		nc.Close()
		switch {
		case err == nil:
			return
		case isTimeout(err):
			f.fail.add("lmtp client %d: the server stopped answering: %v", f.id, err)
			return
		case errors.Is(err, errRefused):
			f.fail.add("lmtp client %d: %v", f.id, err)
		}
	}
}

// session runs transactions on nc until stop is closed (then it says
// QUIT and returns nil) or the connection fails.
func (f *lmtpFlooder) session(nc net.Conn, stop <-chan struct{}) error {
	tc := textproto.NewConn(nc)
	nc.SetDeadline(time.Now().Add(crashIOTimeout))
	if _, _, err := tc.ReadResponse(220); err != nil {
		return f.classify("greeting", err)
	}
	if err := f.command(tc, 250, "LHLO client%d.%s", f.id, crashDomain); err != nil {
		return err
	}
	for !stopped(stop) {
		f.pause.RLock()
		nc.SetDeadline(time.Now().Add(crashIOTimeout))
		err := f.transaction(tc)
		f.pause.RUnlock()
		if err != nil {
			return err
		}
	}
	nc.SetDeadline(time.Now().Add(crashIOTimeout))
	return f.command(tc, 221, "QUIT")
}

// classify turns a failed exchange into errRefused (the server answered,
// but not as it should) or the connection's error.
func (f *lmtpFlooder) classify(what string, err error) error {
	var pe *textproto.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %s: %v", errRefused, what, err)
	}
	return err
}

func (f *lmtpFlooder) command(tc *textproto.Conn, code int, format string, args ...any) error {
	if err := tc.PrintfLine(format, args...); err != nil {
		return err
	}
	if _, _, err := tc.ReadResponse(code); err != nil {
		return f.classify(fmt.Sprintf(format, args...), err)
	}
	return nil
}

// transaction sends one new message to one, two or three users.
func (f *lmtpFlooder) transaction(tc *textproto.Conn) error {
	n := 1
	switch p := f.rng.IntN(10); {
	case p >= 8:
		n = 3
	case p >= 5:
		n = 2
	}
	users := make([]string, n)
	for i, j := range f.rng.Perm(len(f.users))[:n] {
		users[i] = f.users[j]
	}
	return f.deliver(tc, users)
}

// deliver sends one new message to users and records the recipients
// that got their 250.
func (f *lmtpFlooder) deliver(tc *textproto.Conn, users []string) error {
	rcpts := make([]string, len(users))
	for i, u := range users {
		rcpts[i] = u + "@" + crashDomain
	}
	size := crashMinMessage + f.rng.IntN(crashMaxMessage-crashMinMessage+1)
	id := fmt.Sprintf("<lmtp.%d.%d@%s>", f.id, f.txns, crashDomain)
	f.txns++
	from := fmt.Sprintf("sender%d@%s", f.id, crashDomain)
	msg := composeMessage(f.rng, id, from, rcpts, size)
	if err := f.l.record(id, from, rcpts, users, msg); err != nil {
		f.fail.add("lmtp client %d: %v", f.id, err)
		return err
	}

	err := f.send(tc, id, from, rcpts, users, msg)
	if err != nil && !isTimeout(err) && !errors.Is(err, errRefused) {
		f.cut++
	}
	return err
}

func (f *lmtpFlooder) send(tc *textproto.Conn, id, from string, rcpts, users []string, msg []byte) error {
	if err := f.command(tc, 250, "MAIL FROM:<%s> SIZE=%d", from, len(msg)); err != nil {
		return err
	}
	for _, r := range rcpts {
		if err := f.command(tc, 250, "RCPT TO:<%s>", r); err != nil {
			return err
		}
	}
	if err := f.command(tc, 354, "DATA"); err != nil {
		return err
	}
	w := tc.DotWriter()
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	// RFC 2033 §4.2: one reply per recipient, in RCPT order.
	var refused error
	for i, r := range rcpts {
		_, _, err := tc.ReadResponse(250)
		if err == nil {
			f.l.ack(id, users[i])
			continue
		}
		err = f.classify("DATA for "+r+" of "+id, err)
		if !errors.Is(err, errRefused) {
			return err
		}
		refused = errors.Join(refused, err)
	}
	return refused
}

// uidWatch records, per user, every (UID, Message-ID) an IMAP session
// was told and the UIDVALIDITY, and reports any UID given to two messages
// and any message seen under two UIDs. Safe for concurrent use.
type uidWatch struct {
	mu          sync.Mutex
	uidvalidity map[string]uint32
	byUID       map[string]map[imap.UID]string
	byID        map[string]map[string]imap.UID
	polls       map[string]int // NOOP and UID FETCH rounds done
	fail        *failures
}

func newUIDWatch(f *failures) *uidWatch {
	return &uidWatch{uidvalidity: map[string]uint32{}, byUID: map[string]map[imap.UID]string{}, byID: map[string]map[string]imap.UID{}, polls: map[string]int{}, fail: f}
}

func (w *uidWatch) selected(user string, uidvalidity uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if uidvalidity == 0 {
		// RFC 9051 §7.1: UIDVALIDITY is an nz-number.
		w.fail.add("%s: SELECT INBOX gave UIDVALIDITY 0", user)
	}
	if old, ok := w.uidvalidity[user]; ok && old != uidvalidity {
		w.fail.add("%s: UIDVALIDITY changed from %d to %d", user, old, uidvalidity)
	}
	w.uidvalidity[user] = uidvalidity
	if w.byUID[user] == nil {
		w.byUID[user], w.byID[user] = map[imap.UID]string{}, map[string]imap.UID{}
	}
}

func (w *uidWatch) seen(user string, uid imap.UID, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if old, ok := w.byUID[user][uid]; ok && old != id {
		w.fail.add("%s: UID %d was %s and is now %s", user, uid, old, id)
	}
	if old, ok := w.byID[user][id]; ok && old != uid {
		w.fail.add("%s: %s had UID %d and now has UID %d", user, id, old, uid)
	}
	w.byUID[user][uid], w.byID[user][id] = id, uid
}

// known returns how many UIDs were seen for user.
func (w *uidWatch) known(user string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.byUID[user])
}

func (w *uidWatch) polled(user string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.polls[user]++
}

// pollCounts returns the number of polls done so far, per user.
func (w *uidWatch) pollCounts() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.polls)
}

// waitPolls waits until every user's session has polled twice more than
// since says: at least one whole poll against the daemon started last.
func (w *uidWatch) waitPolls(users []string, since map[string]int, exited <-chan struct{}) error {
	deadline := time.Now().Add(crashLoginTimeout)
	for {
		now := w.pollCounts()
		behind := ""
		for _, u := range users {
			if now[u] < since[u]+2 {
				behind = u
			}
		}
		if behind == "" {
			return nil
		}
		select {
		case <-exited:
			return errors.New("serve exited by itself")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the IMAP session of %s did not poll within %v of a restart", behind, crashLoginTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// told returns a copy of the UIDs that user's sessions were told, with
// their Message-IDs.
func (w *uidWatch) told(user string) map[imap.UID]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.byUID[user])
}

// toldCheck checks, while the daemon is dead after a kill, that every
// UID an IMAP session was told is in dovecot-uidlist, for the file of the
// message the session was told about: UIDs are published only once they
// are on disk (DESIGN.md §4), so that a restart cannot give them to other
// messages.
type toldCheck struct {
	ids      map[string]map[string]string // user → base name → Message-ID, read once
	reported map[string]bool              // "user UID" already reported
}

func newToldCheck() *toldCheck {
	return &toldCheck{ids: make(map[string]map[string]string), reported: make(map[string]bool)}
}

func (c *toldCheck) check(t *testing.T, s *crashSetup, w *uidWatch) {
	t.Helper()
	for _, u := range s.users {
		told := w.told(u)
		if len(told) == 0 {
			continue
		}
		dir := s.maildir(u)
		path := filepath.Join(dir, uidlist.FileName)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %d UIDs were told, and %v", u, len(told), err)
			continue
		}
		f, _, err := uidlist.Parse(path, data)
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		if c.ids[u] == nil {
			c.ids[u] = make(map[string]string)
		}
		paths := make(map[string]string) // base name → path, listed when needed
		for uid, id := range told {
			key := u + " " + strconv.Itoa(int(uid))
			if c.reported[key] {
				continue
			}
			rec, ok := f.Lookup(uint32(uid))
			if !ok {
				t.Errorf("%s: UID %d (%s) was told to a session but is not in %s after the kill", u, uid, id, uidlist.FileName)
				c.reported[key] = true
				continue
			}
			base := rec.Base()
			if _, ok := c.ids[u][base]; !ok {
				if len(paths) == 0 {
					for _, name := range messageFiles(t, dir) {
						paths[maildir.BaseName(filepath.Base(name))] = filepath.Join(dir, name)
					}
				}
				c.ids[u][base] = headerID(t, paths[base])
			}
			if c.ids[u][base] != id {
				t.Errorf("%s: UID %d was told for %s; %s gives it to %s, which holds %q", u, uid, id, uidlist.FileName, base, c.ids[u][base])
				c.reported[key] = true
			}
		}
	}
}

// checkLockLeftover checks, while the daemon is dead after a kill, that
// no dovecot-uidlist.lock it left behind is empty: a lock file without
// "<pid>:<host>" cannot be told stale by its dead holder, so the next
// daemon waits for the stale timeout (uidlist.DefaultStaleAfter) before
// it assigns UIDs in that mailbox again. The empty file is then removed,
// as that timeout would, so that the rest of the run still tests
// delivery.
func checkLockLeftover(t *testing.T, s *crashSetup, kill int) {
	t.Helper()
	for _, u := range s.users {
		checkDirLockLeftover(t, s.maildir(u), kill)
	}
}

// checkDirLockLeftover is checkLockLeftover for the mailbox directory dir.
func checkDirLockLeftover(t *testing.T, dir string, kill int) {
	t.Helper()
	path := filepath.Join(dir, uidlist.LockName)
	data, err := os.ReadFile(path)
	if err != nil || len(data) > 0 {
		return
	}
	t.Errorf("%s: kill %d left an empty %s: the mailbox gets no UIDs for %v (the stale timeout)", dir, kill, uidlist.LockName, uidlist.DefaultStaleAfter)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// headerID returns the Message-ID of the message file at path, "" when
// path is "" or the file has none.
func headerID(t *testing.T, path string) string {
	t.Helper()
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatal(err)
	}
	return messageID(head[:n])
}

// imapSession is an IMAP client whose every command has a deadline.
type imapSession struct {
	nc net.Conn
	c  *imapclient.Client
}

func newIMAPSession(nc net.Conn, user string) (*imapSession, *imap.SelectData, error) {
	s := &imapSession{nc: nc, c: imapclient.New(nc, nil)}
	nc.SetDeadline(time.Now().Add(crashIOTimeout))
	if err := s.c.WaitGreeting(); err != nil {
		return s, nil, err
	}
	if err := s.c.Login(user, crashUserPassword).Wait(); err != nil {
		return s, nil, err
	}
	sel, err := s.c.Select("INBOX", nil).Wait()
	return s, sel, err
}

func (s *imapSession) close() { s.c.Close() }

// messageIDs fetches the Message-ID of every message from UID first on,
// from its ENVELOPE: a body section would come as a literal, and the
// client library (go-imap v2.0.0-beta.8) races with itself, as the race
// detector shows, when the connection dies while a FETCH streams one —
// which the kills of these tests make happen.
func (s *imapSession) messageIDs(first imap.UID) ([]*imapclient.FetchMessageBuffer, error) {
	s.nc.SetDeadline(time.Now().Add(crashIOTimeout))
	return s.c.Fetch(imap.UIDSet{{Start: first, Stop: 0}}, &imap.FetchOptions{UID: true, Envelope: true}).Collect()
}

// fetchedID is the Message-ID, with its angle brackets, in a FETCH of
// ENVELOPE.
func fetchedID(m *imapclient.FetchMessageBuffer) string {
	if m.Envelope == nil || m.Envelope.MessageID == "" {
		return ""
	}
	return "<" + m.Envelope.MessageID + ">"
}

// imapWatcher keeps an IMAP session on user's INBOX through the kills,
// syncing it (NOOP) and fetching the Message-ID of every new message, so
// that the daemon assigns UIDs (appends to dovecot-uidlist) while it is
// killed, and w learns every UID a client was told.
func imapWatcher(addr, user string, w *uidWatch, stop <-chan struct{}, f *failures) {
	for !stopped(stop) {
		nc := dialRetry(addr, stop, f)
		if nc == nil {
			return
		}
		err := watchSession(nc, user, w, stop)
		nc.Close()
		if isTimeout(err) {
			f.add("imap %s: the server stopped answering: %v", user, err)
			return
		}
	}
}

func watchSession(nc net.Conn, user string, w *uidWatch, stop <-chan struct{}) error {
	s, sel, err := newIMAPSession(nc, user)
	defer s.close()
	if err != nil {
		return err
	}
	w.selected(user, sel.UIDValidity)
	var last imap.UID
	for !stopped(stop) {
		s.nc.SetDeadline(time.Now().Add(crashIOTimeout))
		if err := s.c.Noop().Wait(); err != nil {
			return err
		}
		msgs, err := s.messageIDs(last + 1)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.UID > last {
				w.seen(user, m.UID, fetchedID(m))
				last = m.UID
			}
		}
		w.polled(user)
		time.Sleep(50 * time.Millisecond) // pace: a sync per poll is enough
	}
	return nil
}

// imapInventory lists user's INBOX over IMAP: UIDVALIDITY and the UID of
// every Message-ID. It reports UIDs that are not strictly ascending in
// sequence order and Message-IDs seen twice, and every (UID, Message-ID)
// that differs from what the watch saw during the run.
func imapInventory(t *testing.T, addr, user string, w *uidWatch) map[string]imap.UID {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, crashIOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	s, sel, err := newIMAPSession(nc, user)
	defer s.close()
	if err != nil {
		t.Fatalf("imap %s: %v", user, err)
	}
	w.selected(user, sel.UIDValidity)
	uids := fetchIDs(t, s, "imap "+user, sel.NumMessages)
	for id, uid := range uids {
		w.seen(user, uid, id)
	}
	return uids
}

// fetchIDs fetches the Message-ID of all numMessages messages of the
// mailbox selected on s (SELECT's count), failing t if the UID FETCH
// fails, and reporting (t.Errorf, what first) a count that differs,
// UIDs out of order and a Message-ID under two UIDs. It returns the UIDs
// by Message-ID.
func fetchIDs(t *testing.T, s *imapSession, what string, numMessages uint32) map[string]imap.UID {
	t.Helper()
	uids := make(map[string]imap.UID)
	if numMessages == 0 {
		return uids
	}
	msgs, err := s.messageIDs(1)
	if err != nil {
		t.Fatalf("%s: UID FETCH: %v", what, err)
	}
	if len(msgs) != int(numMessages) {
		t.Errorf("%s: SELECT said %d messages, UID FETCH 1:* gave %d", what, numMessages, len(msgs))
	}
	var prev imap.UID
	for _, m := range msgs {
		id := fetchedID(m)
		if m.UID <= prev {
			t.Errorf("%s: UID %d after UID %d", what, m.UID, prev)
		}
		prev = m.UID
		if old, dup := uids[id]; dup {
			t.Errorf("%s: %s has UIDs %d and %d", what, id, old, m.UID)
		}
		uids[id] = m.UID
	}
	return uids
}

// checkDelivered holds user's Maildir against the ledger (checkMaildir),
// then its dovecot-uidlist (checkUIDList) after a sync by the store, and
// the store's own Check and CheckFiles; imapUIDs, when not nil, are the
// UIDs IMAP gave, which the store must give too, with nothing left for the
// sync to assign. It returns the report.
func checkDelivered(t *testing.T, dir, user string, l *ledger, imapUIDs map[string]imap.UID) *maildirReport {
	t.Helper()
	r, err := checkMaildir(dir, user, l)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	ch, err := mb.Sync(context.Background())
	if err != nil {
		t.Fatalf("%s: sync: %v", user, err)
	}
	r.violations = append(r.violations, checkUIDList(dir, r.ids)...)
	for _, v := range r.violations {
		t.Errorf("%s: %s", user, v)
	}
	if err := mb.Check(); err != nil {
		t.Errorf("%s: store Check: %v", user, err)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Errorf("%s: store CheckFiles: %v", user, err)
	}
	msgs := mb.Messages()
	if len(msgs) != r.messages {
		t.Errorf("%s: the store has %d messages, new/ and cur/ %d files", user, len(msgs), r.messages)
	}
	if imapUIDs == nil {
		return r
	}
	if ch.Assigned != 0 {
		t.Errorf("%s: a sync after the daemon's assigned %d UIDs", user, ch.Assigned)
	}
	if len(imapUIDs) != r.messages {
		t.Errorf("%s: IMAP listed %d messages, new/ and cur/ hold %d files", user, len(imapUIDs), r.messages)
	}
	for _, m := range msgs {
		id := r.ids[m.Base]
		if uid, ok := imapUIDs[id]; !ok || uint32(uid) != m.UID {
			t.Errorf("%s: %s (%s) has UID %d in dovecot-uidlist, %d over IMAP", user, m.Base, id, m.UID, uid)
		}
	}
	return r
}

// checkTmpCleaning shows, on the files crashes left in dir's tmp/, the
// rule of maildir.CleanTmp: a file stays while it is young, also when its
// mtime is set back (CleanTmp wants the ctime old too, which a test cannot
// set back), and opening the mailbox 36 hours later (the store's clock,
// Options.Now) removes every one of them and nothing else.
func checkTmpCleaning(t *testing.T, dir string, left []string) {
	t.Helper()
	if n, err := maildir.CleanTmp(dir, time.Now()); n != 0 || err != nil {
		t.Errorf("CleanTmp now removed %d files (%v), want none: they are young", n, err)
	}
	old := time.Now().Add(-maildir.StaleTmpAge - time.Hour)
	for _, p := range left {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := maildir.CleanTmp(dir, time.Now()); n != 0 || err != nil {
		t.Errorf("CleanTmp removed %d files with an old mtime and a new ctime (%v), want none", n, err)
	}
	before := messageFiles(t, dir)
	later := time.Now().Add(maildir.StaleTmpAge + time.Hour)
	mb, err := store.Open(dir, store.Options{Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	mb.Close()
	if names := dirNames(t, filepath.Join(dir, maildir.Tmp)); len(names) != 0 {
		t.Errorf("tmp/ still holds %q after the mailbox was opened 36 hours later", names)
	}
	if after := messageFiles(t, dir); !slices.Equal(before, after) {
		t.Errorf("cleaning tmp/ changed new/ and cur/: %d files before, %d after", len(before), len(after))
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// messageFiles lists new/ and cur/ of dir, sorted.
func messageFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, sub := range []string{maildir.New, maildir.Cur} {
		for _, n := range dirNames(t, filepath.Join(dir, sub)) {
			names = append(names, sub+"/"+n)
		}
	}
	slices.Sort(names)
	return names
}

// waitGroupDone waits for wg, failing the test after timeout.
func waitGroupDone(t *testing.T, wg *sync.WaitGroup, timeout time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("%s did not end within %v", what, timeout)
	}
}

// firstMessages delivers one message to every user, with the daemon
// running and no kill, so that every INBOX holds a message, and has a
// UIDVALIDITY from its first SELECT on, before the kills begin.
func firstMessages(t *testing.T, s *crashSetup, l *ledger) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.lmtpAddr, crashIOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	f := &lmtpFlooder{id: crashLMTPClients, l: l, rng: rand.New(rand.NewPCG(0, 0)), fail: &failures{}}
	tc := textproto.NewConn(nc)
	nc.SetDeadline(time.Now().Add(crashIOTimeout))
	if _, _, err := tc.ReadResponse(220); err != nil {
		t.Fatalf("LMTP greeting: %v", err)
	}
	if err := f.command(tc, 250, "LHLO first.%s", crashDomain); err != nil {
		t.Fatalf("LHLO: %v", err)
	}
	for _, u := range s.users {
		if err := f.deliver(tc, []string{u}); err != nil {
			t.Fatalf("the first message for %s: %v", u, err)
		}
	}
	if _, acked, _ := l.totals(); acked != len(s.users) {
		t.Fatalf("%d of the first %d messages acknowledged", acked, len(s.users))
	}
}

// TestCrashLMTP floods 'cistern serve' with LMTP deliveries from several
// clients while IMAP sessions keep its mailboxes synced, kills it with
// SIGKILL at random moments and starts it again, and then checks that
// every acknowledged copy is there once and whole, that nothing else is
// but unacknowledged copies (once at most) and tmp/ leftovers of those,
// and that no UID moved or was given twice.
func TestCrashLMTP(t *testing.T) {
	seed := crashSeed(t)
	s := newCrashSetup(t, crashLMTPUsers)
	d := newCrashDaemon(t, s)
	l := newLedger()
	fail := &failures{}
	w := newUIDWatch(fail)
	start := time.Now()
	d.start()
	firstMessages(t, s, l)
	polls := w.pollCounts()

	stop := make(chan struct{})
	var pause sync.RWMutex
	var wg sync.WaitGroup
	flooders := make([]*lmtpFlooder, crashLMTPClients)
	for i := range flooders {
		f := &lmtpFlooder{id: i, addr: s.lmtpAddr, users: s.users, l: l, rng: rand.New(rand.NewPCG(seed, uint64(100+i))), fail: fail, pause: &pause}
		flooders[i] = f
		wg.Go(func() { f.run(stop) })
	}
	for _, u := range s.users {
		wg.Go(func() { imapWatcher(s.imapAddr, u, w, stop, fail) })
	}
	defer func() {
		// On a t.Fatal below: the clients must not outlive the test, and
		// what they found may say why.
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
			fail.report(t)
		}
	}()

	killRng := rand.New(rand.NewPCG(seed, 1))
	durable := newToldCheck()
	imapRuns := 0
	for i := range crashKills {
		if i%crashIMAPRunEvery == 0 {
			// The run starts once the IMAP sessions are back: the
			// daemon then writes dovecot-uidlist when it is killed.
			// The LMTP clients pause meanwhile: they would slow the
			// logins down threefold.
			pause.Lock()
			err := w.waitPolls(s.users, polls, d.exited())
			pause.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			imapRuns++
		}
		run := crashMinRun + time.Duration(killRng.Int64N(int64(crashMaxRun-crashMinRun)))
		select {
		case <-time.After(run):
		case <-d.exited():
			t.Fatalf("serve exited by itself (%v)", d.proc.State())
		}
		d.kill()
		durable.check(t, s, w)
		checkLockLeftover(t, s, d.kills)
		d.start()
		polls = w.pollCounts()
	}
	select {
	case <-time.After(crashFinalRun):
	case <-d.exited():
		t.Fatalf("serve exited by itself (%v)", d.proc.State())
	}
	close(stop)
	waitGroupDone(t, &wg, crashDrainTimeout, "the LMTP and IMAP clients")
	flood := time.Since(start)
	fail.report(t)

	toldDuringRun := make(map[string]int)
	imapUIDs := make(map[string]map[string]imap.UID)
	for _, u := range s.users {
		toldDuringRun[u] = w.known(u)
		imapUIDs[u] = imapInventory(t, s.imapAddr, u, w)
	}
	fail.report(t) // what the inventories found against the run
	d.stop()

	var present, unackedPresent, tmpLeft int
	for _, u := range s.users {
		dir := s.maildir(u)
		r := checkDelivered(t, dir, u, l, imapUIDs[u])
		present += r.messages
		unackedPresent += r.unackedPresent
		tmpLeft += len(r.tmpLeft)
		if toldDuringRun[u] == 0 {
			t.Errorf("%s: IMAP sessions were told no UID while the daemon was killed: dovecot-uidlist was not written", u)
		}
		checkTmpCleaning(t, dir, r.tmpLeft)
	}

	sent, acked, ackedShared := l.totals()
	var txns, cut, told int
	for _, f := range flooders {
		txns += f.txns
		cut += f.cut
	}
	for _, n := range toldDuringRun {
		told += n
	}
	t.Logf("%d kills (%d with IMAP sessions on, which were told %d UIDs), %d starts in %v; %d transactions (%d cut by a kill), %d messages sent, %d copies acknowledged (%d of messages with 2 or 3 recipients), %d files in new/ and cur/, %d present without acknowledgement, %d left in tmp/",
		d.kills, imapRuns, told, d.starts, flood.Round(time.Millisecond), txns, cut, sent, acked, ackedShared, present, unackedPresent, tmpLeft)
	switch {
	case acked == 0 || ackedShared == 0:
		t.Errorf("%d copies acknowledged, %d of shared messages: the flood did not deliver", acked, ackedShared)
	case cut == 0:
		t.Error("no kill cut a transaction: the test tested nothing")
	}
}

// ldaRun is one 'cistern deliver' of TestCrashLDA.
type ldaRun struct {
	user   string
	id     string
	msg    []byte        // as given on standard input: LF line ends
	chunks int           // written in this many pieces
	pause  time.Duration // with this pause after each
	// kill: SIGKILL after killChunk pieces were written (all of them:
	// after standard input was closed too), killDelay later. A kill at
	// 0 lands while the process starts, one in the middle while it
	// copies the message, one at the end while it fsyncs, renames or
	// exits.
	kill      bool
	killChunk int
	killDelay time.Duration

	// Outcome.
	state  *os.ProcessState
	stderr string
	killed bool // the SIGKILL reached the process before it exited
}

// planLDARuns draws the runs of TestCrashLDA from rng and records their
// messages in l.
func planLDARuns(t *testing.T, rng *rand.Rand, users []string, l *ledger) []*ldaRun {
	t.Helper()
	const from = "lda-sender@" + crashDomain
	runs := make([]*ldaRun, crashLDAProcs)
	for i := range runs {
		u := users[rng.IntN(len(users))]
		id := fmt.Sprintf("<lda.%d@%s>", i, crashDomain)
		size := crashMinMessage + rng.IntN(crashMaxMessage-crashMinMessage+1)
		msg := composeMessage(rng, id, from, []string{u}, size)
		if err := l.record(id, from, []string{u}, []string{u}, msg); err != nil {
			t.Fatal(err)
		}
		r := &ldaRun{
			user:   u,
			id:     id,
			msg:    bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")),
			chunks: 4 + rng.IntN(9),
			pause:  time.Duration(3+rng.IntN(28)) * time.Millisecond,
			kill:   rng.IntN(2) == 0,
		}
		r.killChunk = rng.IntN(r.chunks + 1)
		r.killDelay = time.Duration(rng.Int64N(int64(crashLDAKillDelay)))
		runs[i] = r
	}
	return runs
}

// run runs 'cistern deliver -u user', writing the message slowly, and
// kills it as planned.
func (r *ldaRun) run(t *testing.T, conf string, fail *failures) {
	cmd := cisternCommand(t, "deliver", "--config", conf, "-u", r.user, "-f", "lda-sender@"+crashDomain)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		fail.add("%s: %v", r.id, err)
		return
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		fail.add("%s: %v", r.id, err)
		return
	}
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		kill := func() {
			time.Sleep(r.killDelay)
			// ErrProcessDone: it exited first, and its status counts.
			r.killed = cmd.Process.Signal(syscall.SIGKILL) == nil
		}
		step := (len(r.msg) + r.chunks - 1) / r.chunks
		rest := r.msg
		for i := 0; len(rest) > 0; i++ {
			if r.kill && i == r.killChunk {
				kill()
				return
			}
			n := min(step, len(rest))
			if _, err := stdin.Write(rest[:n]); err != nil {
				return // it exited
			}
			rest = rest[n:]
			time.Sleep(r.pause)
		}
		stdin.Close()
		if r.kill {
			kill()
		}
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case <-waited:
	case <-time.After(crashLDATimeout):
		cmd.Process.Kill()
		<-waited
		fail.add("%s: cistern deliver still running after %v", r.id, crashLDATimeout)
	}
	<-fed
	r.state, r.stderr = cmd.ProcessState, stderr.String()
}

// TestCrashLDA runs many 'cistern deliver' at once, each fed its message
// slowly, kills about half of them at random moments, and checks that
// every message whose LDA exited 0 is there once and whole, that nothing
// else is but messages of killed runs (once at most), that tmp/ holds only
// files of killed runs, and that the store then gives every message one
// UID.
func TestCrashLDA(t *testing.T) {
	seed := crashSeed(t)
	s := newCrashSetup(t, crashLDAUsers)
	l := newLedger()
	fail := &failures{}
	runs := planLDARuns(t, rand.New(rand.NewPCG(seed, 2)), s.users, l)

	start := time.Now()
	var wg sync.WaitGroup
	slots := make(chan struct{}, crashLDAParallel)
	for _, r := range runs {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			r.run(t, s.conf, fail)
		})
	}
	waitGroupDone(t, &wg, crashDrainTimeout, "the cistern deliver runs")
	elapsed := time.Since(start)
	fail.report(t)

	var killed, lateKills, exited0 int
	for _, r := range runs {
		if r.state == nil {
			continue // reported by run
		}
		ws := r.state.Sys().(syscall.WaitStatus)
		switch {
		case ws.Exited() && ws.ExitStatus() == 0:
			l.ack(r.id, r.user)
			exited0++
			if r.kill {
				lateKills++
			}
		case r.killed && ws.Signaled() && ws.Signal() == syscall.SIGKILL:
			killed++
		default:
			t.Errorf("%s for %s: %v (killed: %v), stderr: %s", r.id, r.user, r.state, r.killed, r.stderr)
		}
	}

	var present, unackedPresent, tmpLeft int
	for _, u := range s.users {
		dir := s.maildir(u)
		if !maildir.IsMaildir(dir) {
			continue // no run for u got as far as making its Maildir
		}
		r := checkDelivered(t, dir, u, l, nil)
		present += r.messages
		unackedPresent += r.unackedPresent
		tmpLeft += len(r.tmpLeft)
		checkTmpCleaning(t, dir, r.tmpLeft)
	}
	t.Logf("%d runs in %v: %d exited 0 (%d of them before their kill), %d killed; %d files in new/, %d present without exit 0, %d left in tmp/",
		len(runs), elapsed.Round(time.Millisecond), exited0, lateKills, killed, present, unackedPresent, tmpLeft)
	if exited0 == 0 || killed == 0 {
		t.Errorf("%d runs exited 0, %d were killed: want some of both", exited0, killed)
	}
}
