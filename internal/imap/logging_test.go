package imap_test

import (
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/imap"
)

// TestDebugLogHoldsNoCredentials: at debug level, a SASL PLAIN response
// sent without waiting for "+" (parsed as a command whose tag is the
// credentials), a line that is no command, LOGIN and AUTHENTICATE leave
// no password, and no credentials-bearing tag, in the log.
func TestDebugLogHoldsNoCredentials(t *testing.T) {
	var logs lockedBuffer
	ts := startServer(t, func(s *imap.Server) {
		s.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	const pass = "secret"
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + pass))
	rc := dialRaw(t, ts)
	rc.writeLine(plain)
	if l := rc.line(); !strings.Contains(l, " BAD ") {
		t.Fatalf("a PLAIN response as a command: %q", l)
	}
	rc.writeLine("hunter2hunter2 NOSUCHCOMMAND x")
	if l := rc.line(); !strings.Contains(l, " BAD ") {
		t.Fatalf("an unknown command: %q", l)
	}
	rc.writeLine("\x01\x02zz\x7fgarbage")
	if l := rc.line(); !strings.Contains(l, " BAD ") {
		t.Fatalf("garbage: %q", l)
	}
	rc.ok("AUTHENTICATE PLAIN %s", plain)
	rc.ok("LOGOUT")
	rc = dialRaw(t, ts)
	rc.ok("LOGIN alice %s", pass)
	rc.ok("LOGOUT")
	rc = dialRaw(t, ts)
	rc.writeLine("x AUTHENTICATE PLAIN")
	if l := rc.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("AUTHENTICATE: %q", l)
	}
	rc.writeLine(plain)
	if l := rc.line(); !strings.HasPrefix(l, "x OK") {
		t.Fatalf("AUTHENTICATE: %q", l)
	}
	rc.ok("LOGOUT")

	out := logs.String()
	for _, secret := range []string{pass, plain, plain[:8], "hunter2", "garbage", "\x01"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{`prefix=AGFs...`, `msg="not a command"`, `prefix=hunt...`, `prefix="" outcome=bad`, "command=LOGIN"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}
