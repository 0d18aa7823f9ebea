package imap_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/metrics"
	"github.com/cistern-mail/cistern/internal/metrics/metricstest"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/throttle"
)

// Session logs and metrics: every line a session causes carries its id,
// and each command is counted by name and outcome.

// logLine is one record a recorder kept: its message and its attributes,
// those of the logger (With) first, in order.
type logLine struct {
	level slog.Level
	msg   string
	attrs []slog.Attr
}

// get returns the value of the attribute key ("" when absent) and how
// many times the line has it.
func (l logLine) get(key string) (string, int) {
	v, n := "", 0
	for _, a := range l.attrs {
		if a.Key == key {
			if n == 0 {
				v = a.Value.String()
			}
			n++
		}
	}
	return v, n
}

// recorder is a slog.Handler that keeps every record, at every level.
type recorder struct {
	mu    *sync.Mutex
	lines *[]logLine
	with  []slog.Attr
}

func newRecorder() *recorder { return &recorder{mu: new(sync.Mutex), lines: new([]logLine)} }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	l := logLine{level: rec.Level, msg: rec.Message, attrs: slices.Clone(r.with)}
	rec.Attrs(func(a slog.Attr) bool { l.attrs = append(l.attrs, a); return true })
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.lines = append(*r.lines, l)
	return nil
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{mu: r.mu, lines: r.lines, with: append(slices.Clip(r.with), as...)}
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

func (r *recorder) snapshot() []logLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(*r.lines)
}

// waitLines waits until n lines satisfy match and returns them.
func (r *recorder) waitLines(t *testing.T, what string, n int, match func(logLine) bool) []logLine {
	t.Helper()
	deadline := time.Now().Add(readTimeout)
	for {
		var got []logLine
		for _, l := range r.snapshot() {
			if match(l) {
				got = append(got, l)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s lines, want %d; log: %+v", len(got), what, n, r.snapshot())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// brokenBackend's users fail STATUS of the mailbox "Broken" with an
// error the engine does not know: an internal error.
type brokenBackend struct{ imap.Backend }

func (b brokenBackend) Login(ctx context.Context, user, pass string) (imap.User, error) {
	u, err := b.Backend.Login(ctx, user, pass)
	if err != nil {
		return nil, err
	}
	return brokenUser{u}, nil
}

type brokenUser struct{ imap.User }

var errDiskOnFire = errors.New("disk on fire")

// errFull and errClosed are what a backend says of a full disk and of a
// mailbox it may not use (package backend's mapErr), with internal text
// that must reach the log only.
var (
	errFull   = errors.Join(imap.ErrNoSpace, errors.New("write /srv/mail/u/dovecot-uidlist: no space left on device"))
	errClosed = errors.Join(imap.ErrNoPerm, errors.New("stat /srv/mail/u/.Closed/cur: permission denied"))
)

func (u brokenUser) Status(ctx context.Context, name string) (imap.StatusInfo, error) {
	switch name {
	case "Broken":
		return imap.StatusInfo{}, errDiskOnFire
	case "Full":
		return imap.StatusInfo{}, errFull
	case "Closed":
		return imap.StatusInfo{}, errClosed
	}
	return u.User.Status(ctx, name)
}

// TestStorageFailureResponses: a full disk answers NO [OVERQUOTA] saying
// so, a mailbox the server may not use NO [NOPERM]; the reason is
// logged, never sent.
func TestStorageFailureResponses(t *testing.T) {
	rec := newRecorder()
	ts := startServer(t, func(s *imap.Server) {
		s.Logger = slog.New(rec)
		s.Backend = brokenBackend{s.Backend}
	})
	rc := dialRaw(t, ts)
	rc.ok("LOGIN alice secret")
	for _, tt := range []struct {
		mailbox, tagged string
		err             error
	}{
		{"Full", "a2 NO [OVERQUOTA] Not enough disk space", errFull},
		{"Closed", "a3 NO [NOPERM] Permission denied", errClosed},
	} {
		if _, tagged := rc.cmd("STATUS %s (MESSAGES)", tt.mailbox); tagged != tt.tagged {
			t.Errorf("STATUS %s: %q, want %q", tt.mailbox, tagged, tt.tagged)
		}
		rec.waitLines(t, "warning for "+tt.mailbox, 1, func(l logLine) bool {
			v, _ := l.get("err")
			return l.level == slog.LevelWarn && v == tt.err.Error()
		})
	}

	// LIST-STATUS (RFC 5819) leaves out the STATUS it cannot give and
	// lists the rest.
	rc.ok("CREATE Full")
	rc.ok("CREATE Closed")
	lines := rc.ok(`LIST "" "*" RETURN (STATUS (MESSAGES))`)
	for _, want := range []string{`* LIST (\HasNoChildren) "." Full`, `* LIST (\HasNoChildren) "." Closed`, `* STATUS INBOX (MESSAGES 0)`} {
		if !slices.Contains(lines, want) {
			t.Errorf("LIST-STATUS lacks %q: %q", want, lines)
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "* STATUS Full ") || strings.HasPrefix(l, "* STATUS Closed ") {
			t.Errorf("LIST-STATUS: %q", l)
		}
	}
}

func noWait(context.Context, time.Duration) {}

var sessionID = regexp.MustCompile(`^[A-Z2-7]{8}$`)

// TestSessionLogs: two sessions open at once; every line about either
// names its session once, with its address, and its user after login:
// the engine's own lines (logged in, command failed, the debug line of
// every command), the Throttle's failed login, and the store's report
// of a foreign file found by the session's SELECT.
func TestSessionLogs(t *testing.T) {
	rec := newRecorder()
	logger := slog.New(rec)
	ts := startServer(t, func(s *imap.Server) {
		s.Logger = logger
		s.Throttle = &throttle.Throttle{Logger: logger, Sleep: noWait}
		s.Backend = brokenBackend{s.Backend}
	})
	// alice's INBOX exists with a file that is not a message, before
	// the server ever opens it: the first sync, SELECT's, reports it.
	if _, err := store.OpenAccount(ts.mailDir("alice"), store.NewRegistry(store.Options{}, nil)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts.mailDir("alice"), "cur", ".junk"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	a, b := dialRaw(t, ts), dialRaw(t, ts)
	if _, tagged := a.cmd("LOGIN alice wrong"); !strings.Contains(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("wrong password: %s", tagged)
	}
	b.ok("LOGIN bob secret")
	a.ok("LOGIN alice secret")
	a.ok("SELECT INBOX")
	if _, tagged := b.cmd("STATUS Broken (MESSAGES)"); !strings.Contains(tagged, "NO [SERVERBUG]") {
		t.Fatalf("STATUS of a broken mailbox: %s", tagged)
	}
	a.ok("NOOP")
	b.ok("NOOP")

	// Each session's commands: a 4 (LOGIN twice, SELECT, NOOP), b 3.
	rec.waitLines(t, "command", 7, func(l logLine) bool { return l.msg == "command" })
	remoteA, remoteB := a.c.LocalAddr().String(), b.c.LocalAddr().String()
	ids := map[string]string{} // remote → session
	for _, l := range rec.snapshot() {
		remote, nr := l.get("remote")
		id, ni := l.get("session")
		if remote != remoteA && remote != remoteB {
			continue
		}
		if nr != 1 || ni != 1 || !sessionID.MatchString(id) {
			t.Errorf("line %q: remote %d times, session %q %d times: %v", l.msg, nr, id, ni, l.attrs)
			continue
		}
		if prev, ok := ids[remote]; ok && prev != id {
			t.Errorf("session %s names itself %s and %s", remote, prev, id)
		}
		ids[remote] = id
	}
	if ids[remoteA] == "" || ids[remoteB] == "" || ids[remoteA] == ids[remoteB] {
		t.Fatalf("session ids %q: want two distinct", ids)
	}

	find := func(msg string) logLine {
		t.Helper()
		for _, l := range rec.snapshot() {
			if l.msg == msg {
				return l
			}
		}
		t.Fatalf("no line %q in %+v", msg, rec.snapshot())
		return logLine{}
	}
	want := func(l logLine, key, value string) {
		t.Helper()
		if got, _ := l.get(key); got != value {
			t.Errorf("line %q: %s=%q, want %q (%v)", l.msg, key, got, value, l.attrs)
		}
	}
	failed := find("login failed")
	want(failed, "session", ids[remoteA])
	want(failed, "user", "alice")
	cmdErr := find("command failed")
	if cmdErr.level != slog.LevelError {
		t.Errorf("command failed at %v", cmdErr.level)
	}
	want(cmdErr, "session", ids[remoteB])
	want(cmdErr, "user", "bob")
	if e, _ := cmdErr.get("err"); !strings.Contains(e, errDiskOnFire.Error()) {
		t.Errorf("command failed without the error: %v", cmdErr.attrs)
	}
	foreign := find("ignoring a file that is not a Maildir message")
	want(foreign, "session", ids[remoteA])
	want(foreign, "user", "alice")
	want(foreign, "mailbox", ts.mailDir("alice"))
	for _, l := range rec.snapshot() {
		if l.msg == "logged in" {
			if r, _ := l.get("remote"); r == remoteA {
				want(l, "user", "alice")
			}
		}
		if l.msg == "command" {
			if c, _ := l.get("command"); c == "STATUS" {
				want(l, "outcome", "error")
				want(l, "session", ids[remoteB])
			}
		}
	}
}

// TestCommandMetrics: a scripted session's commands are counted by name
// and outcome, timed (but for LOGIN), and the connection, the failed
// login and nothing else show.
func TestCommandMetrics(t *testing.T) {
	reg := metrics.NewRegistry()
	ts := startServer(t, func(s *imap.Server) {
		s.Metrics = reg
		s.Throttle = &throttle.Throttle{Sleep: noWait}
		s.Backend = brokenBackend{s.Backend}
	})
	rc := dialRaw(t, ts)
	rc.cmd("LOGIN alice wrong")
	rc.ok("LOGIN alice secret")
	rc.appendRaw("INBOX", "", testMessage("one", "body"))
	rc.ok("SELECT INBOX")
	rc.ok("FETCH 1 (FLAGS)")
	rc.ok("UID FETCH 1 (UID)")
	if _, tagged := rc.cmd("FETCH"); !strings.Contains(tagged, " BAD ") {
		t.Fatalf("FETCH without arguments: %s", tagged)
	}
	rc.cmd("FROB")
	rc.cmd("UID LOGIN")
	rc.cmd("STATUS Broken (MESSAGES)")
	rc.cmd("SELECT Nowhere")
	// A command is counted after its response is flushed: this one's
	// answer means the server is done counting the ones before, and
	// this one is left out.
	rc.ok("CAPABILITY")

	var b strings.Builder
	reg.WriteTo(&b)
	e, err := metricstest.Parse(b.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	for _, c := range []struct {
		command, outcome string
		n                float64
	}{
		{"LOGIN", "no", 1}, {"LOGIN", "ok", 1}, {"APPEND", "ok", 1}, {"SELECT", "ok", 1}, {"SELECT", "no", 1},
		{"FETCH", "ok", 1}, {"FETCH", "bad", 1}, {"UID FETCH", "ok", 1}, {"other", "bad", 2}, {"STATUS", "error", 1},
	} {
		if v, ok := e.Value("cistern_imap_commands_total", "command", c.command, "outcome", c.outcome); !ok || v != c.n {
			t.Errorf("commands_total{command=%q,outcome=%q} = %v (%v), want %v", c.command, c.outcome, v, ok, c.n)
		}
	}
	all, n := e.Sum("cistern_imap_commands_total")
	if capa, ok := e.Value("cistern_imap_commands_total", "command", "CAPABILITY", "outcome", "ok"); ok {
		all, n = all-capa, n-1
	}
	if n != 10 || all != 11 {
		t.Errorf("%v commands in %d series besides CAPABILITY, want 11 in 10\n%s", all, n, b.String())
	}
	for cmd, n := range map[string]float64{"SELECT": 2, "FETCH": 2, "UID FETCH": 1, "APPEND": 1, "STATUS": 1} {
		if v, ok := e.Value("cistern_imap_command_duration_seconds_count", "command", cmd); !ok || v != n {
			t.Errorf("duration count of %s: %v (%v), want %v", cmd, v, ok, n)
		}
	}
	for _, cmd := range []string{"LOGIN", "other"} {
		if _, n := e.Sum("cistern_imap_command_duration_seconds_count", "command", cmd); n != 0 {
			t.Errorf("%s is timed", cmd)
		}
	}
	for name, want := range map[string]float64{
		"cistern_imap_sessions":                   1,
		"cistern_imap_response_memory_bytes":      0,
		"cistern_imap_connections_accepted_total": 1,
		"cistern_imap_connections_refused_total":  0,
		"cistern_imap_logins_refused_total":       0,
		"cistern_auth_failures_total":             1,
		"cistern_auth_throttled_total":            0,
	} {
		if v, ok := e.Value(name); !ok || v != want {
			t.Errorf("%s = %v (%v), want %v", name, v, ok, want)
		}
	}
	if v, ok := e.Value("cistern_panics_total", "server", "imap"); !ok || v != 0 {
		t.Errorf("panics %v %v", v, ok)
	}
}
