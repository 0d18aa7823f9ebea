package lmtp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/cistern-mail/cistern/internal/metrics"
	"github.com/cistern-mail/cistern/internal/metrics/metricstest"
	"github.com/cistern-mail/cistern/maildir"
)

// lineRecorder is a slog.Handler that keeps each record's message and
// attributes (the logger's first) as key=value strings.
type lineRecorder struct {
	mu    *sync.Mutex
	lines *[][]string // message, then key=value
	with  []string
}

func (r *lineRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *lineRecorder) Handle(_ context.Context, rec slog.Record) error {
	l := append([]string{rec.Message}, r.with...)
	rec.Attrs(func(a slog.Attr) bool { l = append(l, a.Key+"="+a.Value.String()); return true })
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.lines = append(*r.lines, l)
	return nil
}

func (r *lineRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	with := slices.Clip(r.with)
	for _, a := range as {
		with = append(with, a.Key+"="+a.Value.String())
	}
	return &lineRecorder{mu: r.mu, lines: r.lines, with: with}
}

func (r *lineRecorder) WithGroup(string) slog.Handler { return r }

func (r *lineRecorder) get() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(*r.lines)
}

// attr returns the value of key in a recorded line, and how many times
// the line has it.
func attr(line []string, key string) (string, int) {
	v, n := "", 0
	for _, kv := range line[1:] {
		if k, val, _ := strings.Cut(kv, "="); k == key {
			if n == 0 {
				v = val
			}
			n++
		}
	}
	return v, n
}

// TestSessionLogsAndMetrics: the delivery lines of two connections name
// their session, peer and transaction; the metrics count the
// connections and each recipient's outcome.
func TestSessionLogsAndMetrics(t *testing.T) {
	rec := &lineRecorder{mu: new(sync.Mutex), lines: new([][]string)}
	reg := metrics.NewRegistry()
	ts := startServer(t, func(s *Server) {
		// The Deliverer keeps its own logger: the session's replaces it.
		s.Logger = slog.New(rec)
		s.Metrics = reg
	})
	send := func(rcpts ...string) (local string, c *smtp.Client) {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		c = smtp.NewClientLMTP(nc)
		c.CommandTimeout, c.SubmissionTimeout = ioTimeout, ioTimeout
		t.Cleanup(func() { c.Close() })
		if err := c.Hello("mta.test"); err != nil {
			t.Fatal(err)
		}
		if err := c.Mail("s@example.org", nil); err != nil {
			t.Fatal(err)
		}
		for _, r := range rcpts {
			c.Rcpt(r, nil) // an unknown user is refused here
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "Subject: hi\r\n\r\nhello\r\n")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return nc.LocalAddr().String(), c
	}
	localA, a := send("good@example.org", "nobody@example.org")
	localB, _ := send("other@example.org")

	sessions := map[string]string{} // remote → session
	delivered := 0
	for _, l := range rec.get() {
		if l[0] != "delivery" {
			continue
		}
		remote, nr := attr(l, "remote")
		session, ns := attr(l, "session")
		id, _ := attr(l, "id")
		if nr != 1 || ns != 1 || !regexp.MustCompile(`^[A-Z2-7]{8}$`).MatchString(session) || id != session+".1" {
			t.Errorf("delivery line %q: want one remote, one session id and the id session.1", l)
			continue
		}
		if prev, ok := sessions[remote]; ok && prev != session {
			t.Errorf("%s is session %s and %s", remote, prev, session)
		}
		sessions[remote] = session
		if r, _ := attr(l, "result"); r == "delivered" {
			delivered++
		}
	}
	if delivered != 2 || len(sessions) != 2 || sessions[localA] == "" || sessions[localB] == "" || sessions[localA] == sessions[localB] {
		t.Fatalf("%d delivered, sessions %q: want 2 delivered by two sessions (%s, %s)", delivered, sessions, localA, localB)
	}

	var size int64
	for _, u := range []string{"good", "other"} {
		names, _ := filepath.Glob(filepath.Join(ts.root(u), maildir.New, "*"))
		for _, n := range names {
			fi, err := os.Stat(n)
			if err != nil {
				t.Fatal(err)
			}
			size += fi.Size()
		}
	}
	scrape := func() *metricstest.Exposition {
		t.Helper()
		var b strings.Builder
		reg.WriteTo(&b)
		e, err := metricstest.Parse(b.String())
		if err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
		return e
	}
	e := scrape()
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"cistern_lmtp_connections_accepted_total", nil, 2},
		{"cistern_lmtp_connections_refused_total", nil, 0},
		{"cistern_lmtp_sessions", nil, 2},
		{"cistern_deliveries_total", []string{"result", "delivered"}, 2},
		{"cistern_deliveries_total", []string{"result", "unknown_user"}, 1},
		{"cistern_deliveries_total", []string{"result", "temporary"}, 0},
		{"cistern_delivered_bytes_total", nil, float64(size)},
		{"cistern_panics_total", []string{"server", "lmtp"}, 0},
	} {
		if v, ok := e.Value(c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%q = %v (%v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if _, n := e.Sum("cistern_deliveries_total"); n != 8 {
		t.Errorf("%d delivery results, want all 8 kinds", n)
	}
	// A connection that ends leaves the gauge.
	a.Quit()
	deadline := time.Now().Add(ioTimeout)
	for {
		if v, _ := scrape().Value("cistern_lmtp_sessions"); v == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gauge still counts a closed connection")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
