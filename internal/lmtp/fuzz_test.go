package lmtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/delivery"
	"github.com/cistern-mail/cistern/internal/store"
)

// fuzzUsers is the passwd-file of the fuzzed server.
type fuzzUsers map[string]delivery.User

func (u fuzzUsers) LookupUser(name string) (delivery.User, error) {
	if v, ok := u[name]; ok {
		return v, nil
	}
	return delivery.User{}, fmt.Errorf("%w: %q", delivery.ErrUnknownUser, name)
}

// fuzzLMTPConn is an MTA that sends its bytes and then closes its side;
// what the server writes is kept, and closed is closed when the server
// closes the connection.
type fuzzLMTPConn struct {
	mu     sync.Mutex // guards in and out
	in     *bytes.Reader
	out    bytes.Buffer
	once   sync.Once
	closed chan struct{}
}

func (c *fuzzLMTPConn) Read(p []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.in.Read(p)
}

func (c *fuzzLMTPConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

func (c *fuzzLMTPConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *fuzzLMTPConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

var fuzzPeer = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 24}

func (c *fuzzLMTPConn) LocalAddr() net.Addr              { return fuzzPeer }
func (c *fuzzLMTPConn) RemoteAddr() net.Addr             { return fuzzPeer }
func (c *fuzzLMTPConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzLMTPConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzLMTPConn) SetWriteDeadline(time.Time) error { return nil }

// panicLog collects a server's error log.
type panicLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *panicLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *panicLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// chanListener hands out the connections sent on conns.
type chanListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return fuzzPeer }

// fuzzSessionTimeout bounds one fuzzed session; one that outlives it is
// hung.
const fuzzSessionTimeout = 10 * time.Second

// checkReplies checks the server's bytes: only whole reply lines, each a
// 2xx to 5xx code followed by SP or "-" (RFC 5321 §4.2), the first the
// 220 greeting.
func checkReplies(in, out []byte) error {
	if !bytes.HasPrefix(out, []byte("220 ")) {
		return fmt.Errorf("greeting %q", out)
	}
	for rest := out; len(rest) > 0; {
		i := bytes.Index(rest, []byte("\r\n"))
		if i < 0 {
			return fmt.Errorf("reply without CRLF %q", rest)
		}
		line := rest[:i]
		rest = rest[i+2:]
		if len(line) < 4 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
			line[2] < '0' || line[2] > '9' || (line[3] != ' ' && line[3] != '-') {
			return fmt.Errorf("malformed reply line %q", line)
		}
		// go-smtp echoes a client's command verb and LHLO argument
		// verbatim: a bare CR or a NUL the client sent may come back,
		// but the server adds none.
		if bytes.IndexByte(line, '\r') >= 0 && !hasBareCR(in) || bytes.IndexByte(line, 0) >= 0 && bytes.IndexByte(in, 0) < 0 {
			return fmt.Errorf("CR or NUL inside reply line %q", line)
		}
	}
	return nil
}

// hasBareCR reports a CR not followed by LF.
func hasBareCR(b []byte) bool {
	for i, c := range b {
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			return true
		}
	}
	return false
}

// FuzzSession: whatever an MTA sends, the LMTP server neither panics nor
// hangs, and answers with well-formed replies only. Deliveries are real,
// into Maildirs in a temporary directory.
func FuzzSession(f *testing.F) {
	msg := "From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n.\r\n"
	for _, s := range []string{
		"LHLO mta.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<good@example.org>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n" + msg + "QUIT\r\n",
		"LHLO mta\r\nMAIL FROM:<> SIZE=10\r\nRCPT TO:<good+Lists.Go@example.org>\r\nRCPT TO:<full@example.org>\r\nDATA\r\n" +
			"Subject: x\n\n..dot\n.\r\nRSET\r\nMAIL FROM:<a@b> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<other@example.org>\r\nDATA\r\n\x00\r\n.\r\nQUIT\r\n",
		"LHLO mta\r\nMAIL FROM:<a@b> SIZE=99999999\r\nMAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\nRCPT TO:<\"q uoted\"@x>\r\nDATA\r\n.\r\n",
		"LHLO mta\r\nMAIL FROM:<a@b>\r\nRCPT TO:<good@example.org>\r\nBDAT 5 LAST\r\nhello",
		"EHLO mta\r\nHELO mta\r\nNOOP\r\nVRFY good@example.org\r\nHELP\r\nSTARTTLS\r\nAUTH PLAIN AGEAYg==\r\n",
		"LHLO mta\r\nMAIL FROM:<a@b>\r\nRCPT TO:<good@example.org>\r\nDATA\r\n" + string(bytes.Repeat([]byte("x"), 5000)) + "\r\n.\r\n",
		"LHLO mta\r\nMAIL FROM:<a\x01@b>\r\nRCPT TO:<good@example.org\r\n",
		"lhlo x\r\nmail from:<A@B>\r\nrcpt to:<GOOD@example.org>\r\nrcpt to:<good@x> NOTIFY=NEVER\r\ndata\r\n.\r\nquit\r\n",
	} {
		f.Add([]byte(s))
	}
	base := f.TempDir()
	us := fuzzUsers{}
	for _, n := range []string{"good", "other", "full"} {
		us[n] = delivery.User{Name: n, Root: filepath.Join(base, n, "Maildir")}
	}
	full := us["full"]
	full.Quota = store.QuotaLimit{Bytes: 10}
	us["full"] = full
	deliverer := &delivery.Deliverer{Users: us, Logger: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, in []byte) {
		log := &panicLog{}
		logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelError}))
		srv := &Server{Deliverer: deliverer, Logger: logger, Hostname: "lmtp.fuzz", MaxMessageSize: 4096, MaxRecipients: 5}
		ln := &chanListener{conns: make(chan net.Conn), done: make(chan struct{})}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		nc := &fuzzLMTPConn{in: bytes.NewReader(in), closed: make(chan struct{})}
		select {
		case ln.conns <- nc:
		case <-time.After(fuzzSessionTimeout):
			t.Fatal("the server does not accept")
		}
		select {
		case <-nc.closed:
		case <-time.After(fuzzSessionTimeout):
			t.Fatalf("session still open after %v on %q; wrote %q", fuzzSessionTimeout, in, nc.output())
		}
		// Shutdown waits for go-smtp's connection goroutine, which may
		// run on after it closed the connection.
		ctx, cancel := context.WithTimeout(context.Background(), fuzzSessionTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown after %q: %v", in, err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
		out := nc.output()
		// A BDAT chunk's goroutine is not the connection's, and may
		// still be logging the panic it counted.
		report := log.String()
		for deadline := time.Now().Add(fuzzSessionTimeout); srv.Panics.Load() > int64(strings.Count(report, "panic while serving")) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
			report = log.String()
		}
		if srv.Panics.Load() != 0 && !inGoSMTPOnly(report) {
			t.Fatalf("the server panicked on %q:\n%s", in, report)
		}
		if err := checkReplies(in, out); err != nil {
			t.Fatalf("%v\ninput %q\noutput %q", err, in, out)
		}
	})
}

// inGoSMTPOnly reports whether every panic in a session's error log is
// a nil dereference inside go-smtp with no Cistern code on the stack.
// go-smtp v0.25.1 uses a connection's Session after it closed the
// connection itself and set it to nil: for commands it had read ahead
// after QUIT or "Too many errors" (emersion/go-smtp#129), and in the
// goroutine a BDAT chunk starts, when the connection ends first. It
// recovers, answers 421 and errorLog counts the panic; any panic in
// Cistern's code fails FuzzSession.
func inGoSMTPOnly(log string) bool {
	panics := strings.Count(log, "panic while serving")
	return panics > 0 && strings.Count(log, "nil pointer dereference") == panics &&
		strings.Contains(log, "github.com/emersion/go-smtp.") && !strings.Contains(log, "github.com/cistern-mail/cistern")
}

func TestFuzzRepliesCheck(t *testing.T) {
	if err := checkReplies([]byte("a\rb\r\n"), []byte("220 hi\r\n250-a\r\n500 a\rb\r\n")); err != nil {
		t.Errorf("good replies refused: %v", err)
	}
	for _, bad := range []string{"", "250 hi\r\n", "220 hi\r\n25 x\r\n", "220 hi\r\n250 x", "220 hi\r\n650 x\r\n",
		"220 hi\r\n250 a\rb\r\n", "220 hi\r\n250 a\x00b\r\n"} {
		if checkReplies([]byte("NOOP\r\n"), []byte(bad)) == nil {
			t.Errorf("checkReplies accepted %q", bad)
		}
	}
	goSMTP := `level=ERROR msg="lmtp: panic while serving; connection closed" report="panic serving 127.0.0.1:24: ` +
		`runtime error: invalid memory address or nil pointer dereference\ngoroutine 1 [running]:\n` +
		`github.com/emersion/go-smtp.(*Conn).handleMail(0x1, {0x2, 0x3})\n"` + "\n"
	cistern := strings.Replace(goSMTP, "go-smtp.(*Conn).handleMail", "go-smtp.(*Conn).handleMail(...)\\ngithub.com/cistern-mail/cistern/internal/lmtp.(*session).Mail", 1)
	other := strings.Replace(goSMTP, "invalid memory address or nil pointer dereference", "index out of range [3] with length 3", 1)
	for log, want := range map[string]bool{goSMTP: true, goSMTP + goSMTP: true, "": false, cistern: false, other: false, goSMTP + other: false} {
		if inGoSMTPOnly(log) != want {
			t.Errorf("inGoSMTPOnly(%q) = %v", log, !want)
		}
	}
}
