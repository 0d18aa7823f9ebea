package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// The shutdown tests stop 'cistern serve' (the binary, as a child
// process) with SIGTERM while clients deliver over IMAP (APPEND) and LMTP
// as fast as they can, and hold the result against what the clients were
// told: every APPEND that got OK and every recipient that got 250 is on
// disk exactly once, nothing is on disk that nobody was told of (an
// orderly stop finishes every command it began and begins no other),
// every IMAP session gets BYE before its connection closes, the index
// opens cleanly afterwards, and the process exits 0. A second SIGTERM
// cuts the wait short: exit status 1.

// Sizes and bounds of the shutdown tests.
const (
	stopAppenders  = 4                // IMAP sessions appending in a loop
	stopDeliverers = 4                // LMTP clients delivering in a loop
	stopMinAcks    = 20               // deliveries of each protocol acknowledged before the signal
	stopIOTimeout  = 30 * time.Second // one command or reply on a live server
	stopExit       = 20 * time.Second // SIGTERM to exit; serve waits 10 s at most
	stopForced     = 5 * time.Second  // the second SIGTERM to exit
	stopMaxMessage = 48 << 10
)

var stopUsers = []string{"u1", "u2"}

// stopServer is a running 'cistern serve' with its addresses.
type stopServer struct {
	dir, conf string
	child     *cisternChild
	imapAddr  string
	lmtpAddr  string
}

func startStopServer(t *testing.T) *stopServer {
	t.Helper()
	s := &stopServer{dir: t.TempDir()}
	passwd := filepath.Join(s.dir, "passwd")
	var users []auth.User
	for _, u := range stopUsers {
		users = append(users, auth.User{Name: u})
	}
	writePasswd(t, passwd, users...)
	if err := os.Mkdir(filepath.Join(s.dir, "mail"), 0o700); err != nil {
		t.Fatal(err)
	}
	s.conf = filepath.Join(s.dir, "cistern.toml")
	conf := fmt.Sprintf(`data_dir = %q
mail_location = %q
passwd_file = %q
[imap]
listen = ["127.0.0.1:0"]
[lmtp]
listen = ["127.0.0.1:0"]
`, filepath.Join(s.dir, "data"), filepath.Join(s.dir, "mail", "%u", "Maildir"), passwd)
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if line := runAsUser(t, s.dir); line != "" {
		if err := os.WriteFile(s.conf, []byte(line+conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.child = startChild(t, "serve", "--config", s.conf)
	s.imapAddr = s.child.waitLine(t, regexp.MustCompile(`msg="imap: listening" addr=(\S+)`), serveStartTimeout)[1]
	s.lmtpAddr = s.child.waitLine(t, regexp.MustCompile(`msg="lmtp: listening" addr=(\S+)`), serveStartTimeout)[1]
	return s
}

func (s *stopServer) maildir(user string) string {
	return filepath.Join(s.dir, "mail", user, "Maildir")
}

// signal sends sig to the server.
func (s *stopServer) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := s.child.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitStopping returns once neither listener accepts connections: the
// server has begun to stop.
func (s *stopServer) waitStopping(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(stopExit)
	for _, addr := range []string{s.imapAddr, s.lmtpAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatalf("%s still accepts connections %v after the signal", addr, stopExit)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// stopMessage is a message with Message-ID <id> of about size bytes.
func stopMessage(id string, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: flood@shutdown.test\r\nTo: u@shutdown.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: %s\r\n\r\n",
		id, id, time.Now().Format(time.RFC1123Z))
	line := strings.Repeat("0123456789", 7) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return []byte(b.String())
}

// acks records what the server acknowledged: Message-ID -> user -> the
// UID (IMAP) or 0 (LMTP).
type acks struct {
	mu sync.Mutex
	m  map[string]map[string]uint32 // guarded by mu
}

func (a *acks) add(id, user string, uid uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]map[string]uint32{}
	}
	if a.m[id] == nil {
		a.m[id] = map[string]uint32{}
	}
	a.m[id][user] = uid
}

func (a *acks) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.m)
}

func (a *acks) lookup(id, user string) (uint32, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	uid, ok := a.m[id][user]
	return uid, ok
}

// imapSess is a hand-written IMAP client: the test needs every byte
// the server sends (the BYE, and what comes after it).
type imapSess struct {
	nc  net.Conn
	br  *bufio.Reader
	bye bool // the server said BYE
}

var literalAtEnd = regexp.MustCompile(`\{(\d+)\}$`)

func dialIMAPSess(addr, user string) (*imapSess, error) {
	nc, err := net.DialTimeout("tcp", addr, stopIOTimeout)
	if err != nil {
		return nil, err
	}
	s := &imapSess{nc: nc, br: bufio.NewReader(nc)}
	if l, err := s.line(); err != nil || !strings.HasPrefix(l, "* OK") {
		nc.Close()
		return nil, fmt.Errorf("greeting %q: %v", l, err)
	}
	if _, err := s.command("l LOGIN %s secret", user); err != nil {
		nc.Close()
		return nil, err
	}
	return s, nil
}

// line reads one response line, with the literals it holds.
func (s *imapSess) line() (string, error) {
	s.nc.SetReadDeadline(time.Now().Add(stopIOTimeout))
	var b strings.Builder
	for {
		l, err := s.br.ReadString('\n')
		b.WriteString(strings.TrimRight(l, "\r\n"))
		if err != nil {
			return b.String(), err
		}
		m := literalAtEnd.FindStringSubmatch(b.String())
		if m == nil {
			break
		}
		n, _ := strconv.Atoi(m[1])
		if _, err := io.CopyN(&b, s.br, int64(n)); err != nil {
			return b.String(), err
		}
	}
	if strings.HasPrefix(b.String(), "* BYE") {
		s.bye = true
	}
	return b.String(), nil
}

// response reads up to the tagged response of tag and returns it.
func (s *imapSess) response(tag string) (string, error) {
	for {
		l, err := s.line()
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(l, tag+" ") {
			return l, nil
		}
	}
}

// command sends a command and returns its tagged response, which must be
// OK.
func (s *imapSess) command(format string, args ...any) (string, error) {
	cmd := fmt.Sprintf(format, args...)
	tag, _, _ := strings.Cut(cmd, " ")
	s.nc.SetWriteDeadline(time.Now().Add(stopIOTimeout))
	if _, err := io.WriteString(s.nc, cmd+"\r\n"); err != nil {
		return "", err
	}
	l, err := s.response(tag)
	if err == nil && !strings.HasPrefix(l, tag+" OK") {
		err = fmt.Errorf("%s: %s", cmd, l)
	}
	return l, err
}

// ended reads what follows a BYE up to the end of the connection, which
// must come without more lines.
func (s *imapSess) ended() error {
	for {
		l, err := s.line()
		if errors.Is(err, io.EOF) && l == "" {
			return nil
		}
		if err != nil {
			return fmt.Errorf("after BYE: %v (%q)", err, l)
		}
		return fmt.Errorf("after BYE: %q", l)
	}
}

var appendUID = regexp.MustCompile(`^\S+ OK \[APPENDUID \d+ (\d+)\]`)

// appendLoop APPENDs messages to user's INBOX until the server says BYE,
// half of them with synchronizing literals sent in two pieces, half with
// LITERAL+, their sizes drawn from seed. Every message the server took is
// recorded in ok; a session closed without BYE, or any answer but OK, is a
// broken promise.
func appendLoop(addr, user string, n int, seed uint64, ok *acks, bad *failures, started chan<- struct{}) {
	defer func() {
		if started != nil {
			started <- struct{}{}
		}
	}()
	s, err := dialIMAPSess(addr, user)
	if err != nil {
		bad.add("appender %d: %v", n, err)
		return
	}
	defer s.nc.Close()
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	for i := 1; ; i++ {
		id := fmt.Sprintf("imap.%d.%d@shutdown.test", n, i)
		msg := stopMessage(id, 200+rng.IntN(stopMaxMessage))
		tag := "a" + strconv.Itoa(i)
		// A write that fails (the server closed the connection) is told
		// apart by what can still be read: a BYE, or nothing.
		s.nc.SetWriteDeadline(time.Now().Add(stopIOTimeout))
		if i%2 == 0 {
			fmt.Fprintf(s.nc, "%s APPEND INBOX {%d+}\r\n%s\r\n", tag, len(msg), msg)
		} else if _, err := fmt.Fprintf(s.nc, "%s APPEND INBOX {%d}\r\n", tag, len(msg)); err == nil {
			l, err := s.line()
			switch {
			case err != nil:
			case s.bye:
				// Stopped before the command began: it is not run.
				if err := s.ended(); err != nil {
					bad.add("appender %d: %v", n, err)
				}
				return
			case !strings.HasPrefix(l, "+"):
				bad.add("appender %d: APPEND got %q, want a continuation", n, l)
				return
			default:
				half := len(msg) / 2
				if _, err := s.nc.Write(msg[:half]); err == nil {
					time.Sleep(time.Millisecond)
					fmt.Fprintf(s.nc, "%s\r\n", msg[half:])
				}
			}
		}
		l, err := s.response(tag)
		if m := appendUID.FindStringSubmatch(l); err == nil && m != nil {
			uid, _ := strconv.ParseUint(m[1], 10, 32)
			ok.add(id, user, uint32(uid))
		} else if err == nil {
			bad.add("appender %d: APPEND answered %q", n, l)
			return
		}
		switch {
		case s.bye:
			// The BYE comes after the answer of the command under way,
			// and then the end of the connection, never a reset.
			if err == nil {
				err = s.ended()
			} else if errors.Is(err, io.EOF) {
				err = nil
			}
			if err != nil {
				bad.add("appender %d: %v", n, err)
			}
			return
		case err != nil:
			bad.add("appender %d: connection ended without BYE: %v", n, err)
			return
		}
		if i == 2 {
			started <- struct{}{}
			started = nil
		}
	}
}

// lmtpLoop delivers messages to every user over LMTP, their sizes drawn
// from seed, until the server refuses a transaction or closes the
// connection between transactions. Every recipient that got 250 is
// recorded in ok; a transaction cut after its MAIL was accepted, or any
// reply but 250 to a recipient or its message, is a broken promise.
func lmtpLoop(addr string, n int, seed uint64, ok *acks, bad *failures, started chan<- struct{}) {
	defer func() {
		if started != nil {
			started <- struct{}{}
		}
	}()
	nc, err := net.DialTimeout("tcp", addr, stopIOTimeout)
	if err != nil {
		bad.add("lmtp client %d: %v", n, err)
		return
	}
	defer nc.Close()
	tc := textproto.NewConn(nc)
	deadline := func() { nc.SetDeadline(time.Now().Add(stopIOTimeout)) }
	deadline()
	if _, _, err := tc.ReadResponse(220); err != nil {
		bad.add("lmtp client %d: greeting: %v", n, err)
		return
	}
	if err := tc.PrintfLine("LHLO shutdown.test"); err != nil {
		bad.add("lmtp client %d: %v", n, err)
		return
	}
	if _, _, err := tc.ReadResponse(250); err != nil {
		bad.add("lmtp client %d: LHLO: %v", n, err)
		return
	}
	rng := rand.New(rand.NewPCG(seed, uint64(stopAppenders+n)))
	for i := 1; ; i++ {
		deadline()
		id := fmt.Sprintf("lmtp.%d.%d@shutdown.test", n, i)
		// Until MAIL is accepted, the server may close the connection
		// (it stops between transactions) or refuse with 421.
		if err := tc.PrintfLine("MAIL FROM:<flood@shutdown.test>"); err != nil {
			return
		}
		code, msg, err := tc.ReadResponse(250)
		if err != nil {
			if code != 0 && code != 421 {
				bad.add("lmtp client %d: MAIL: %d %s", n, code, msg)
			}
			return
		}
		step := func(what string, want int) bool {
			if code, msg, err := tc.ReadResponse(want); err != nil {
				bad.add("lmtp client %d: %s in a transaction the server began: %d %s (%v)", n, what, code, msg, err)
				return false
			}
			return true
		}
		for _, u := range stopUsers {
			tc.PrintfLine("RCPT TO:<%s@shutdown.test>", u)
			if !step("RCPT", 250) {
				return
			}
		}
		tc.PrintfLine("DATA")
		if !step("DATA", 354) {
			return
		}
		w := tc.DotWriter()
		w.Write(stopMessage(id, 200+rng.IntN(stopMaxMessage)))
		if err := w.Close(); err != nil {
			bad.add("lmtp client %d: sending a message the server began: %v", n, err)
			return
		}
		for _, u := range stopUsers {
			if !step("the reply for "+u, 250) {
				return
			}
			ok.add(id, u, 0)
		}
		if i == 2 {
			started <- struct{}{}
			started = nil
		}
	}
}

// diskMessages returns the files of root's new/ and cur/ by the
// Message-ID they hold (without <>).
func diskMessages(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, sub := range []string{maildir.New, maildir.Cur} {
		entries, err := os.ReadDir(filepath.Join(root, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			f, err := os.Open(filepath.Join(root, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			h, err := textproto.NewReader(bufio.NewReader(f)).ReadMIMEHeader()
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			id := strings.Trim(h.Get("Message-Id"), "<>")
			out[id] = append(out[id], e.Name())
		}
	}
	return out
}

// checkStopped holds the Maildirs, the index and the log of a stopped
// server against what the clients were told.
func checkStopped(t *testing.T, s *stopServer, imapOK, lmtpOK *acks) {
	t.Helper()
	for _, u := range stopUsers {
		root := s.maildir(u)
		disk := diskMessages(t, root)
		data, err := os.ReadFile(filepath.Join(root, uidlist.FileName))
		if err != nil {
			t.Fatal(err)
		}
		list, _, err := uidlist.Parse(uidlist.FileName, data)
		if err != nil {
			t.Fatal(err)
		}
		for id, names := range disk {
			if len(names) > 1 {
				t.Errorf("%s: %s is on disk %d times: %q", u, id, len(names), names)
			}
			imapUID, byIMAP := imapOK.lookup(id, u)
			_, byLMTP := lmtpOK.lookup(id, u)
			switch {
			case byIMAP:
				base, _, _ := strings.Cut(names[0], ":")
				if r, ok := list.Lookup(imapUID); !ok || r.Base() != base {
					t.Errorf("%s: %s got APPENDUID %d, which %s names %q", u, id, imapUID, uidlist.FileName, r.Base())
				}
			case !byLMTP && strings.HasPrefix(id, "imap."):
				t.Errorf("%s: %s is on disk, but its APPEND got no OK", u, id)
			case !byLMTP:
				t.Errorf("%s: %s is on disk, but got no 250", u, id)
			}
		}
		for _, ok := range []*acks{imapOK, lmtpOK} {
			ok.mu.Lock()
			for id, users := range ok.m {
				if _, acked := users[u]; acked && len(disk[id]) == 0 {
					t.Errorf("%s: %s was acknowledged and is not on disk", u, id)
				}
			}
			ok.mu.Unlock()
		}
		if tmp, _ := os.ReadDir(filepath.Join(root, maildir.Tmp)); len(tmp) > 0 {
			t.Errorf("%s: tmp/ holds %d files after an orderly stop", u, len(tmp))
		}
		if _, err := os.Lstat(filepath.Join(root, uidlist.LockName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the mailbox lock outlived the server: %v", u, err)
		}
	}

	// The index is whole: bbolt's own check passes, and what the
	// fetching session cached is there.
	path := filepath.Join(s.dir, "data", indexFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("index: %v", err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	db.Close()
	if err != nil {
		t.Errorf("index: %v", err)
	}
	entries, err := store.ReadIndex(path, func(string) bool { return true })
	if err != nil {
		t.Fatalf("index: %v", err)
	}
	if n := len(entries[s.maildir(stopUsers[0])]); n == 0 {
		t.Errorf("index: nothing cached for %s's INBOX (%d mailboxes), which was fetched", stopUsers[0], len(entries))
	}

	log := s.child.stderr()
	for _, want := range []string{`msg="imap: stopped"`, `msg="lmtp: stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
	for _, bad := range []string{"did not end in time", "level=ERROR"} {
		if strings.Contains(log, bad) {
			t.Errorf("the log says %q", bad)
		}
	}
}

// TestServeStopsGracefully: SIGTERM during a flood of APPENDs and LMTP
// deliveries, with an APPEND and an LMTP message half sent at the
// signal, which finish after it; see the top of this file.
func TestServeStopsGracefully(t *testing.T) {
	// The message sizes and the moment of the signal; logged, and replayed
	// with -crash.seed like the crash tests' randomness.
	seed := crashSeed(t)
	s := startStopServer(t)
	imapOK, lmtpOK, bad := &acks{}, &acks{}, &failures{}

	// An APPEND and an LMTP message half sent when the signal comes.
	slowMsg := stopMessage("imap.slow@shutdown.test", 4000)
	slow, err := dialIMAPSess(s.imapAddr, stopUsers[1])
	if err != nil {
		t.Fatal(err)
	}
	defer slow.nc.Close()
	fmt.Fprintf(slow.nc, "s APPEND INBOX {%d}\r\n", len(slowMsg))
	if l, err := slow.line(); err != nil || !strings.HasPrefix(l, "+") {
		t.Fatalf("slow APPEND: %q, %v", l, err)
	}
	slow.nc.Write(slowMsg[:2000])

	lc, err := net.DialTimeout("tcp", s.lmtpAddr, stopIOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	lc.SetDeadline(time.Now().Add(stopExit + stopIOTimeout))
	slowLMTP := textproto.NewConn(lc)
	for _, step := range []struct {
		cmd  string
		code int
	}{{"", 220}, {"LHLO shutdown.test", 250}, {"MAIL FROM:<slow@shutdown.test>", 250}, {"RCPT TO:<" + stopUsers[0] + "@shutdown.test>", 250}, {"DATA", 354}} {
		if step.cmd != "" {
			slowLMTP.PrintfLine("%s", step.cmd)
		}
		if _, msg, err := slowLMTP.ReadResponse(step.code); err != nil {
			t.Fatalf("slow LMTP %q: %v %s", step.cmd, err, msg)
		}
	}
	slowLMTPMsg := stopMessage("lmtp.slow@shutdown.test", 4000)
	lc.Write(slowLMTPMsg[:2000])

	// A session that fetches every message's envelope and structure,
	// filling the index, and one in IDLE.
	fetcher, err := dialIMAPSess(s.imapAddr, stopUsers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer fetcher.nc.Close()
	if _, err := fetcher.command("f SELECT INBOX"); err != nil {
		t.Fatal(err)
	}
	idler, err := dialIMAPSess(s.imapAddr, stopUsers[1])
	if err != nil {
		t.Fatal(err)
	}
	defer idler.nc.Close()
	if _, err := idler.command("i SELECT INBOX"); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(idler.nc, "i IDLE\r\n")
	if l, err := idler.line(); err != nil || !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q, %v", l, err)
	}

	var wg sync.WaitGroup
	started := make(chan struct{}, stopAppenders+stopDeliverers)
	for n := range stopAppenders {
		wg.Go(func() { appendLoop(s.imapAddr, stopUsers[n%len(stopUsers)], n, seed, imapOK, bad, started) })
	}
	for n := range stopDeliverers {
		wg.Go(func() { lmtpLoop(s.lmtpAddr, n, seed, lmtpOK, bad, started) })
	}
	for range stopAppenders + stopDeliverers {
		select {
		case <-started:
		case <-time.After(serveStartTimeout):
			t.Fatal("the clients did not get going")
		}
	}
	fetched := 0
	deadline := time.Now().Add(serveStartTimeout)
	for imapOK.count() < stopMinAcks || lmtpOK.count() < stopMinAcks || fetched == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d APPENDs and %d LMTP messages acknowledged", imapOK.count(), lmtpOK.count())
		}
		if _, err := fetcher.command("f%d UID FETCH 1:* (UID ENVELOPE BODYSTRUCTURE)", fetched); err != nil {
			t.Fatal(err)
		}
		fetched++
	}
	fmt.Fprintf(fetcher.nc, "g UID FETCH 1:* (UID ENVELOPE BODYSTRUCTURE)\r\n")
	time.Sleep(time.Duration(rand.New(rand.NewPCG(seed, stopAppenders+stopDeliverers)).IntN(50)) * time.Millisecond)

	s.signal(t, syscall.SIGTERM)
	s.waitStopping(t)

	// The half-sent APPEND and message, finished now, are taken.
	slow.nc.Write(slowMsg[2000:])
	slow.nc.Write([]byte("\r\n"))
	if l, err := slow.response("s"); err != nil || appendUID.FindStringSubmatch(l) == nil {
		t.Errorf("the APPEND under way at the signal: %q, %v; want OK [APPENDUID ...]", l, err)
	} else {
		uid, _ := strconv.ParseUint(appendUID.FindStringSubmatch(l)[1], 10, 32)
		imapOK.add("imap.slow@shutdown.test", stopUsers[1], uint32(uid))
	}
	if l, err := slow.line(); err != nil || !strings.HasPrefix(l, "* BYE") {
		t.Errorf("after the APPEND under way: %q, %v; want BYE", l, err)
	} else if err := slow.ended(); err != nil {
		t.Error(err)
	}
	w := slowLMTP.DotWriter()
	w.Write(slowLMTPMsg[2000:])
	w.Close()
	if _, msg, err := slowLMTP.ReadResponse(250); err != nil {
		t.Errorf("the LMTP message under way at the signal: %v %s; want 250", err, msg)
	} else {
		lmtpOK.add("lmtp.slow@shutdown.test", stopUsers[0], 0)
	}
	if rest, err := io.ReadAll(slowLMTP.R); err != nil || len(rest) > 0 && !strings.HasPrefix(string(rest), "421 ") {
		t.Errorf("after the LMTP transaction under way: %q, %v; want the end (or a 421)", rest, err)
	}

	for _, sess := range []struct {
		name string
		s    *imapSess
		tag  string
	}{{"the fetching session", fetcher, "g"}, {"the IDLE session", idler, ""}} {
		for !sess.s.bye {
			l, err := sess.s.line()
			if err != nil {
				t.Errorf("%s: %v before a BYE", sess.name, err)
				break
			}
			if sess.tag != "" && strings.HasPrefix(l, sess.tag+" ") && !strings.HasPrefix(l, sess.tag+" OK") {
				t.Errorf("%s: %q", sess.name, l)
			}
		}
		if sess.s.bye {
			if err := sess.s.ended(); err != nil {
				t.Errorf("%s: %v", sess.name, err)
			}
		}
	}

	waitGroupDone(t, &wg, stopExit, "the flooding clients")
	if code := s.child.wait(t, stopExit); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	bad.report(t)
	t.Logf("acknowledged: %d APPENDs, %d LMTP messages", imapOK.count(), lmtpOK.count())
	checkStopped(t, s, imapOK, lmtpOK)
}

// TestServeSecondSignal: an APPEND whose literal stops arriving holds an
// orderly stop up (for up to 10 s); a second SIGTERM ends the wait at
// once, exit status 1, and the APPEND is not taken.
func TestServeSecondSignal(t *testing.T) {
	s := startStopServer(t)
	stuck, err := dialIMAPSess(s.imapAddr, stopUsers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.nc.Close()
	msg := stopMessage("imap.stuck@shutdown.test", 4000)
	fmt.Fprintf(stuck.nc, "s APPEND INBOX {%d}\r\n", len(msg))
	if l, err := stuck.line(); err != nil || !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND: %q, %v", l, err)
	}
	stuck.nc.Write(msg[:1000])

	s.signal(t, syscall.SIGTERM)
	s.waitStopping(t)
	select {
	case <-s.child.exited:
		t.Fatalf("serve exited (%v) with an APPEND under way", s.child.cmd.ProcessState)
	case <-time.After(500 * time.Millisecond):
	}
	s.signal(t, syscall.SIGTERM)
	start := time.Now()
	if code := s.child.wait(t, stopForced); code != 1 {
		t.Errorf("exit status %d after a second SIGTERM, want 1", code)
	}
	t.Logf("exited %v after the second signal", time.Since(start))
	if !strings.Contains(s.child.stderr(), "second signal") {
		t.Error("the exit does not say it was forced")
	}
	if l, err := stuck.response("s"); err == nil {
		t.Errorf("the cut APPEND was answered %q", l)
	}
	if disk := diskMessages(t, s.maildir(stopUsers[0])); len(disk) != 0 {
		t.Errorf("the cut APPEND is on disk: %v", disk)
	}
}
