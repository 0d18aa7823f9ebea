package lmtp

import (
	"io"
	"strings"
	"testing"
	"time"
)

// Peers that hold a connection without delivering (issue 11): the time
// to the next message (TransactionTimeout) and the least rate of a
// message (MinDataRate).

// closedAfter checks that the next reply starts with prefix and that
// the server then closes the connection.
func closedAfter(t *testing.T, rc *rawConn, prefix string) {
	t.Helper()
	rc.expect(prefix)
	if l, err := rc.r.ReadString('\n'); err != io.EOF {
		t.Errorf("after %q: %q, %v; want the connection closed", prefix, l, err)
	}
}

func TestTransactionTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := startServer(t, func(s *Server) { s.TransactionTimeout = timeout })
	t.Run("idle", func(t *testing.T) {
		rc := ts.raw(t)
		closedAfter(t, rc, "421 4.4.2 ")
	})
	t.Run("NOOP", func(t *testing.T) {
		// Each command well within commandTimeout, and no message.
		rc := ts.raw(t)
		for range 20 {
			time.Sleep(timeout / 5)
			rc.send("NOOP\r\n")
			if l := rc.reply(); !strings.HasPrefix(l, "250 ") {
				if !strings.HasPrefix(l, "421 4.4.2 ") {
					t.Fatalf("NOOP: %q, want 250 or 421 4.4.2", l)
				}
				return
			}
		}
		t.Fatalf("NOOPs for %v and still served", 4*timeout)
	})
	t.Run("envelope without DATA", func(t *testing.T) {
		rc := ts.raw(t)
		rc.send("MAIL FROM:<s@example.org>\r\nRCPT TO:<good@example.org>\r\n")
		rc.expect("250 ")
		rc.expect("250 ")
		closedAfter(t, rc, "421 4.4.2 ")
		if got := messages(t, ts.root("good")); len(got) != 0 {
			t.Errorf("stored %q", got)
		}
	})
	t.Run("each delivery starts it again", func(t *testing.T) {
		rc := ts.raw(t)
		// Four messages, 2/3 of the timeout apart: more than the
		// timeout in all.
		for range 4 {
			time.Sleep(timeout * 2 / 3)
			rc.begin("other")
			rc.send("Subject: on time\r\n\r\nbody\r\n.\r\n")
			rc.expect("250 2.0.0 <other@example.org>")
		}
		if got := messages(t, ts.root("other")); len(got) != 4 {
			t.Errorf("%d messages stored, want 4", len(got))
		}
	})
}

func TestMinDataRate(t *testing.T) {
	ts := startServer(t, func(s *Server) {
		s.MinDataRate = 100
		s.DataRateGrace = 300 * time.Millisecond
		s.DataTimeout = time.Second
	})
	t.Run("a byte at a time", func(t *testing.T) {
		rc := ts.raw(t)
		rc.begin("good", "other")
		rc.send("Subject: slow\r\n\r\n")
		// A byte every half DataTimeout: each read is in time, the
		// message never is.
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(500 * time.Millisecond):
				}
				if _, err := io.WriteString(rc.c, "x"); err != nil {
					return
				}
			}
		}()
		defer close(stop)
		rc.expect("421 4.4.2 <good@example.org>")
		rc.expect("421 4.4.2 <other@example.org>")
		if l, err := rc.r.ReadString('\n'); err != io.EOF {
			t.Errorf("after the refusal: %q, %v; want the connection closed", l, err)
		}
		for _, u := range []string{"good", "other"} {
			if got := messages(t, ts.root(u)); len(got) != 0 {
				t.Errorf("%s: stored %q", u, got)
			}
		}
	})
	t.Run("fast enough", func(t *testing.T) {
		// 100 bytes a second after a slow start within the grace.
		rc := ts.raw(t)
		rc.begin("good")
		time.Sleep(200 * time.Millisecond)
		rc.send("Subject: steady\r\n\r\n" + strings.Repeat("y", 200) + "\r\n")
		time.Sleep(300 * time.Millisecond)
		rc.send(".\r\n")
		rc.expect("250 2.0.0 <good@example.org>")
		if got := messages(t, ts.root("good")); len(got) != 1 {
			t.Errorf("%d messages stored, want 1", len(got))
		}
	})
}
