package imap

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// A message file that turns out shorter than the size the literal
// announced (another program truncated it after the size was read)
// never desyncs the protocol: the session ends after the bytes it had,
// without a tagged response for the FETCH and without writing anything
// a client could read as the next response; the log says why.
func TestFetchShortFileEndsSession(t *testing.T) {
	b := newFakeBackend()
	inbox := b.boxes["INBOX"]
	uid := inbox.add([]byte("Subject: short\r\n\r\nbody\r\n"), nil, fuzzDate)
	inbox.find(uid).overstate = 100
	var log bytes.Buffer
	var logMu sync.Mutex
	srv := &Server{Backend: b, Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &log}, nil))}
	in := "a LOGIN alice secret\r\nb SELECT INBOX\r\nc UID FETCH 4 BODY.PEEK[]\r\nd NOOP\r\n"
	nc := &fuzzConn{in: bytes.NewReader([]byte(in))}
	done := make(chan struct{})
	go func() {
		defer close(done)
		newConn(srv, nc).serve()
	}()
	select {
	case <-done:
	case <-time.After(sessionTimeout):
		t.Fatal("session still running")
	}
	out := string(nc.output())
	if uid != 4 {
		t.Fatalf("the message got UID %d, the test asks for 4", uid)
	}
	// What reached the client after SELECT is at most the start of
	// the FETCH response: the file's 24 bytes of the 124 announced, and
	// nothing after them (the writer's buffer may hold them back).
	_, after, ok := strings.Cut(out, "b OK [READ-WRITE] SELECT completed\r\n")
	if !ok {
		t.Fatalf("no SELECT in %q", out)
	}
	if full := "* 4 FETCH (BODY[] {124}\r\nSubject: short\r\n\r\nbody\r\n"; !strings.HasPrefix(full, after) {
		t.Errorf("after SELECT: %q, want a prefix of %q", after, full)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(log.String(), "shorter than announced") {
		t.Errorf("log %q does not say why the session ended", log.String())
	}
}
