package imap_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/imap"
)

// byeAndEnd reads rc up to "* BYE Server shutting down" and then expects
// the end of the connection, without a reset.
func (rc *rawClient) byeAndEnd(who string) {
	rc.t.Helper()
	rc.waitFor(who+"'s BYE", func(l string) bool { return l == "* BYE Server shutting down" })
	rc.c.SetReadDeadline(time.Now().Add(readTimeout))
	rest, err := io.ReadAll(rc.r)
	if err != nil || len(rest) > 0 {
		rc.t.Errorf("%s after BYE: %q, %v; want the end of the connection", who, rest, err)
	}
	rc.c.Close() // the server waits for this (or lingerTimeout)
}

// TestShutdownFinishesCommands: Shutdown says BYE at once to a session
// waiting for a command, in plain text or after STARTTLS; a session
// whose APPEND literal is still arriving gets the APPEND done and
// answered first, and Shutdown waits for it.
func TestShutdownFinishesCommands(t *testing.T) {
	cert, pool := selfSigned(t)
	ts := startServer(t, func(s *imap.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	waiting := loginRaw(t, ts, "bob")
	secured := dialRaw(t, ts)
	secured.startTLS(pool)
	secured.ok("LOGIN bob secret")
	idling := loginRaw(t, ts, "bob")
	idling.ok("SELECT INBOX")
	idling.send("IDLE")
	idling.waitFor("the continuation", func(l string) bool { return strings.HasPrefix(l, "+ ") })

	appending := loginRaw(t, ts, "alice")
	msg := testMessage("under way", "it arrives in two parts")
	tag := appending.send("APPEND INBOX {%d}", len(msg))
	appending.waitFor("the continuation", func(l string) bool { return strings.HasPrefix(l, "+ ") })
	fmt.Fprint(appending.c, msg[:len(msg)/2])

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*readTimeout)
		defer cancel()
		stopped <- ts.srv.Shutdown(ctx)
	}()
	waiting.byeAndEnd("the waiting session")
	secured.byeAndEnd("the TLS session")
	idling.byeAndEnd("the IDLE session")
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) with an APPEND under way", err)
	case <-time.After(100 * time.Millisecond):
	}

	fmt.Fprintf(appending.c, "%s\r\n", msg[len(msg)/2:])
	l := appending.line()
	if !strings.HasPrefix(l, tag+" OK [APPENDUID ") {
		t.Fatalf("the APPEND under way: %q, want OK [APPENDUID ...]", l)
	}
	appending.byeAndEnd("the appending session")
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(readTimeout):
		t.Fatal("Shutdown did not return after the last session ended")
	}
	names, _ := filepath.Glob(filepath.Join(ts.mailDir("alice"), "[cn][ue][rw]", "*"))
	if len(names) != 1 {
		t.Fatalf("alice's Maildir holds %q, want the APPENDed message", names)
	}
	if data, err := os.ReadFile(names[0]); err != nil || !strings.Contains(string(data), "it arrives in two parts") {
		t.Errorf("the message on disk: %q, %v", data, err)
	}
}

// TestShutdownClientKeepsOpen: a client that neither reads its BYE nor
// closes holds Shutdown up for the lingering time only.
func TestShutdownClientKeepsOpen(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 2*readTimeout)
	defer cancel()
	start := time.Now()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown took %v for a client that keeps its connection open", d)
	}
	rc.waitFor("the BYE", func(l string) bool { return l == "* BYE Server shutting down" })
}
