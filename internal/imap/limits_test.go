package imap_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/backend"
	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/throttle"
)

// throttleClock is a Throttle's clock and sleeper: it records every wait
// the Throttle asks for and lets none of them take time.
type throttleClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *throttleClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *throttleClock) Sleep(_ context.Context, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
}

func (c *throttleClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// take returns the waits asked for since the last take.
func (c *throttleClock) take() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waits
	c.waits = nil
	return w
}

// countingBackend counts the logins that reached the backend, that is
// the passwords checked.
type countingBackend struct {
	imap.Backend
	logins atomic.Int64
}

func (b *countingBackend) Login(ctx context.Context, user, pass string) (imap.User, error) {
	b.logins.Add(1)
	return b.Backend.Login(ctx, user, pass)
}

// lockedBuffer is a log destination the tests read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// untag returns a tagged response without its tag.
func untag(tagged string) string {
	_, rest, _ := strings.Cut(tagged, " ")
	return rest
}

func plain(authz, user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
}

// TestThrottledLogins drives the Throttle through the server: failed
// logins wait longer and longer before their NO, an unknown user is
// answered as a wrong password, a good login does not wait, and an
// address over its limit is refused without its password being checked.
func TestThrottledLogins(t *testing.T) {
	clock := &throttleClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	var logged lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logged, nil))
	th := &throttle.Throttle{Now: clock.Now, Sleep: clock.Sleep, Logger: logger}
	var counting *countingBackend
	ts := startServer(t, func(s *imap.Server) {
		counting = &countingBackend{Backend: s.Backend}
		s.Backend = counting
		s.Throttle = th
		// The Throttle writes its lines with the session's logger.
		s.Logger = logger
	})
	const failed = "NO [AUTHENTICATIONFAILED] Authentication failed"
	const ms = time.Millisecond

	rc := dialRaw(t, ts)
	steps := []struct {
		name, cmd string
		wait      time.Duration
	}{
		{"wrong password", "LOGIN alice wrong1", 250 * ms},
		{"wrong password again", "LOGIN alice wrong2", 500 * ms},
		{"wrong password, third", "LOGIN alice wrong3", time.Second},
		{"unknown user", "LOGIN mallory secret", 2 * time.Second},
		{"AUTHENTICATE PLAIN, wrong password", "AUTHENTICATE PLAIN " + plain("", "alice", "wrong4"), 4 * time.Second},
		{"AUTHENTICATE PLAIN, unknown user", "AUTHENTICATE PLAIN " + plain("", "mallory", "secret"), 8 * time.Second},
		{"AUTHENTICATE PLAIN, other authzid", "AUTHENTICATE PLAIN " + plain("bob", "alice", "secret"), 15 * time.Second},
		{"AUTHENTICATE PLAIN, malformed", "AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("alice")), 15 * time.Second},
	}
	for _, st := range steps {
		_, tagged := rc.cmd("%s", st.cmd)
		if got := untag(tagged); got != failed {
			t.Errorf("%s: %q, want %q", st.name, got, failed)
		}
		if w := clock.take(); !slices.Equal(w, []time.Duration{st.wait}) {
			t.Errorf("%s: waits %v, want %v", st.name, w, st.wait)
		}
	}
	if n := counting.logins.Load(); n != 6 {
		t.Errorf("%d passwords checked, want 6 (not for a foreign authzid or a malformed message)", n)
	}

	// A good login does not wait; it forgives the failures of its own
	// pair (alice from here: 5), not the others (mallory's 2, the
	// malformed message's 1).
	good := dialRaw(t, ts)
	good.ok("LOGIN alice secret")
	if w := clock.take(); len(w) != 0 {
		t.Errorf("a good login waited %v", w)
	}
	_, tagged := rc.cmd("LOGIN bob wrong")
	if w := clock.take(); untag(tagged) != failed || !slices.Equal(w, []time.Duration{2 * time.Second}) {
		t.Errorf("after the good login: %q, waits %v; want 2s (4 failures left)", tagged, w)
	}

	// To the address limit (20), then refused: not even a right
	// password is checked.
	left := throttle.DefaultMaxAddrFailures - 4
	for i := range left {
		if i%10 == 0 {
			rc = dialRaw(t, ts) // a connection may send 20 commands before logging in
		}
		rc.cmd("LOGIN user%d wrong", i)
	}
	clock.take()
	checked := counting.logins.Load()
	for _, cmd := range []string{"LOGIN bob secret", "AUTHENTICATE PLAIN " + plain("", "bob", "secret")} {
		_, tagged = rc.cmd("%s", cmd)
		if want := "NO [UNAVAILABLE] Too many failed logins; try again later"; untag(tagged) != want {
			t.Errorf("%s over the limit: %q, want %q", cmd, tagged, want)
		}
	}
	if w := clock.take(); !slices.Equal(w, []time.Duration{throttle.DefaultMaxDelay, throttle.DefaultMaxDelay}) {
		t.Errorf("refusals waited %v, want the max delay each", w)
	}
	if n := counting.logins.Load(); n != checked {
		t.Errorf("%d passwords checked while refused", n-checked)
	}
	if th.Refused.Load() != 2 || th.Blocks.Load() != 1 {
		t.Errorf("Refused, Blocks = %d, %d; want 2, 1", th.Refused.Load(), th.Blocks.Load())
	}
	for _, want := range []string{`msg="login refused: too many failed logins" session=[A-Z2-7]{8} remote=127\.0\.0\.1:`, "user=bob", `msg="login throttle: too many failed logins; refusing logins"`} {
		if !regexp.MustCompile(want).MatchString(logged.String()) {
			t.Errorf("log lacks %q:\n%s", want, logged.String())
		}
	}

	// After the penalty the address may try again.
	clock.add(throttle.DefaultPenalty)
	rc = dialRaw(t, ts)
	rc.ok("LOGIN bob secret")
	if w := clock.take(); len(w) != 0 {
		t.Errorf("a good login after the penalty waited %v", w)
	}
}

// TestUnknownUserSameAnswer: with the passwd-file Authenticator behind
// the server, an unknown user, a malformed name and a wrong password get
// byte-identical answers and the same waits.
func TestUnknownUserSameAnswer(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	stored, err := auth.HashWith(auth.DefaultScheme, "secret", auth.HashOptions{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.Add(passwd, auth.User{Name: "alice", Password: stored}); err != nil {
		t.Fatal(err)
	}
	users := &passwdUsers{a: &auth.Authenticator{Path: passwd, Logger: slog.New(slog.DiscardHandler)}, root: dir}
	clock := &throttleClock{}
	ts := startServer(t, func(s *imap.Server) {
		s.Backend = &backend.Backend{Auth: users, Registry: s.Backend.(*backend.Backend).Registry}
		s.Throttle = &throttle.Throttle{Now: clock.Now, Sleep: clock.Sleep}
	})
	var answers []string
	var waits []time.Duration
	for _, login := range []string{"alice wrong", "nobody secret", "../alice secret", `"" secret`, "alice secret"} {
		rc := dialRaw(t, ts)
		_, tagged := rc.cmd("LOGIN %s", login)
		answers = append(answers, untag(tagged))
		waits = append(waits, clock.take()...)
	}
	for i, a := range answers[:4] {
		if a != answers[0] {
			t.Errorf("answer %d %q differs from the wrong password's %q", i, a, answers[0])
		}
	}
	if !strings.HasPrefix(answers[4], "OK ") {
		t.Errorf("good login: %q", answers[4])
	}
	// Each failure, whatever its kind, counts as one more for the
	// address; the success waits nothing.
	if want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}; !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
}

// passwdUsers is backend.Authenticator on an auth.Authenticator.
type passwdUsers struct {
	a    *auth.Authenticator
	root string
}

func (p *passwdUsers) Authenticate(ctx context.Context, user, pass string) (backend.Account, error) {
	u, err := p.a.Authenticate(ctx, user, pass)
	if err == auth.ErrBadCredentials {
		return backend.Account{}, imap.ErrAuthFailed
	}
	if err != nil {
		return backend.Account{}, err
	}
	return backend.Account{MaildirRoot: filepath.Join(p.root, u.Name, "Maildir")}, nil
}

// greet dials ts and returns the first line the server says, and the
// connection.
func greet(t *testing.T, ts *testServer) (string, *rawClient) {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c)}
	return rc.line(), rc
}

// refused checks that a connection is refused with BYE text, then
// closed.
func refused(t *testing.T, ts *testServer, text string) {
	t.Helper()
	l, rc := greet(t, ts)
	if want := "* BYE " + text; l != want {
		t.Fatalf("greeting %q, want %q", l, want)
	}
	rc.c.SetReadDeadline(time.Now().Add(readTimeout))
	if rest, err := io.ReadAll(rc.r); err != nil || len(rest) > 0 {
		t.Errorf("after the BYE: %q, %v; want the end", rest, err)
	}
}

// eventually retries try until it reports true, for a server that frees
// a slot after the client saw its connection end.
func eventually(t *testing.T, what string, try func() bool) {
	t.Helper()
	deadline := time.Now().Add(readTimeout)
	for !try() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not after %v", what, readTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logout ends a session and waits for the server to close it.
func logout(rc *rawClient) {
	rc.t.Helper()
	rc.ok("LOGOUT")
	rc.c.SetReadDeadline(time.Now().Add(readTimeout))
	io.ReadAll(rc.r)
}

// Connections over MaxConnectionsPerIP and MaxConnections are refused
// when every connection there is logged in: none can make room
// (prelogin.go).
func TestConnectionsPerIP(t *testing.T) {
	ts := startServer(t, func(s *imap.Server) { s.MaxConnectionsPerIP = 2 })
	first := loginRaw(t, ts, "alice")
	loginRaw(t, ts, "bob")
	refused(t, ts, "Too many connections from your address")
	if n := ts.srv.RefusedConnections.Load(); n != 1 {
		t.Errorf("RefusedConnections = %d, want 1", n)
	}
	logout(first)
	eventually(t, "a connection after one ended", func() bool {
		l, _ := greet(t, ts)
		return strings.HasPrefix(l, "* OK ")
	})
}

func TestConnectionsTotal(t *testing.T) {
	ts := startServer(t, func(s *imap.Server) { s.MaxConnections = 3 })
	for range 3 {
		loginRaw(t, ts, "alice")
	}
	refused(t, ts, "Too many connections; try again later")
	refused(t, ts, "Too many connections; try again later")
	if n := ts.srv.RefusedConnections.Load(); n != 2 {
		t.Errorf("RefusedConnections = %d, want 2", n)
	}
}

func TestConnectionsPerUser(t *testing.T) {
	ts := startServer(t, func(s *imap.Server) { s.MaxConnectionsPerUser = 2 })
	first := loginRaw(t, ts, "alice")
	loginRaw(t, ts, "alice")
	rc := dialRaw(t, ts)
	_, tagged := rc.cmd("LOGIN alice secret")
	if want := "NO [LIMIT] Too many connections for this user"; untag(tagged) != want {
		t.Fatalf("third session: %q, want %q", tagged, want)
	}
	_, tagged = rc.cmd("AUTHENTICATE PLAIN %s", plain("", "alice", "secret"))
	if want := "NO [LIMIT] Too many connections for this user"; untag(tagged) != want {
		t.Fatalf("third session, AUTHENTICATE: %q, want %q", tagged, want)
	}
	if n := ts.srv.RefusedLogins.Load(); n != 2 {
		t.Errorf("RefusedLogins = %d, want 2", n)
	}
	// The refused session may still log in as another user.
	rc.ok("LOGIN bob secret")
	logout(first)
	eventually(t, "a login after a session ended", func() bool {
		rc := dialRaw(t, ts)
		_, tagged := rc.cmd("LOGIN alice secret")
		return strings.Contains(tagged, " OK ")
	})
}

// TestCommandsBeforeAuth: the pre-login command limit holds, failed
// logins included.
func TestCommandsBeforeAuth(t *testing.T) {
	ts := startServer(t, func(s *imap.Server) { s.MaxCommandsBeforeAuth = 3 })
	rc := dialRaw(t, ts)
	for i := range 3 {
		_, tagged := rc.cmd("LOGIN alice wrong%d", i)
		if !strings.Contains(tagged, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("login %d: %q", i, tagged)
		}
	}
	rc.send("NOOP")
	if l := rc.line(); l != "* BYE Too many commands without logging in" {
		t.Fatalf("fourth command: %q", l)
	}
	rc.c.SetReadDeadline(time.Now().Add(readTimeout))
	if rest, _ := io.ReadAll(rc.r); len(rest) > 0 {
		t.Errorf("after BYE: %q", rest)
	}
}

// TestThrottleWaitEndsAtShutdown: a client the Throttle is slowing down
// does not hold up Shutdown.
func TestThrottleWaitEndsAtShutdown(t *testing.T) {
	th := &throttle.Throttle{Policy: throttle.Policy{BaseDelay: time.Hour, MaxDelay: time.Hour}}
	ts := startServer(t, func(s *imap.Server) { s.Throttle = th })
	rc := dialRaw(t, ts)
	rc.send("LOGIN alice wrong")
	eventually(t, "the failure recorded", func() bool { return th.Failures.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v (the throttled session held it up)", err)
	}
	rest, _ := io.ReadAll(rc.r)
	if !strings.Contains(string(rest), "NO [AUTHENTICATIONFAILED]") || !strings.Contains(string(rest), "* BYE Server shutting down") {
		t.Errorf("the throttled session got %q", rest)
	}
}
