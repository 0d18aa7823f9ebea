package imap_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/imap"
)

// Hostile and broken input: every command gets a tagged answer, syntax
// errors get BAD and leave the session usable, and nothing panics (the
// helper fails the test if a session panicked).

func TestBadSyntaxKeepsSession(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.appendRaw("INBOX", "", testMessage("one", "x"))
	rc.ok("SELECT INBOX")
	tests := []struct{ cmd, want string }{
		{"FROB", "BAD"},
		{"FETCH", "BAD"},
		{"FETCH 1", "BAD"},
		{"FETCH 1 (FLAGS", "BAD"},
		{"FETCH 1 (FLAGS))", "BAD"},
		{"FETCH 0 FLAGS", "BAD"},
		{"FETCH 99 FLAGS", "BAD"},
		{"FETCH 1:x FLAGS", "BAD"},
		{"FETCH 1 BODY[1.HEADER.FIELDS ()]", "BAD"},
		{"FETCH 1 BODY[]<5>", "BAD"},
		{"FETCH 1 NOSUCHITEM", "BAD"},
		{"FETCH 4294967296 FLAGS", "BAD"},
		{"STORE 1 +FLAGS", "BAD"},
		{"STORE 1 FROB (\\Seen)", "BAD"},
		{"STORE 1 +FLAGS (\\Seen", "BAD"},
		{"SEARCH", "BAD"},
		{"SEARCH FROB", "BAD"},
		{"SEARCH SINCE 32-Jan-2020", "BAD"},
		{"SEARCH " + strings.Repeat("(", 200) + "ALL" + strings.Repeat(")", 200), "BAD"},
		{"SEARCH " + strings.Repeat("NOT ", 200) + "ALL", "BAD"},
		{"SEARCH CHARSET KOI8-R ALL", "NO"},
		{"UID FROB 1", "BAD"},
		{"UID NOOP", "BAD"},
		{"SELECT", "BAD"},
		{"SELECT \"unterminated", "BAD"},
		{"LIST \"\"", "BAD"},
		{"STATUS INBOX (FROB)", "BAD"},
		{"STATUS INBOX", "BAD"},
		{"COPY 1", "BAD"},
		{"CREATE", "BAD"},
		{"RENAME a", "BAD"},
		{"APPEND INBOX", "BAD"},
		{"APPEND INBOX (\\Seen) \"bad date\" {1+}\r\nx", "BAD"},
		{"NOOP extra", "BAD"},
		{"LOGIN alice secret", "BAD"},
		{"\x01\x02\xff\xfe", "BAD"},
	}
	for _, tt := range tests {
		lines, tagged := rc.cmd("%s", tt.cmd)
		if !strings.HasPrefix(tagged, fmt.Sprintf("a%d %s", rc.n, tt.want)) {
			t.Errorf("%q: %s (untagged %q), want %s", tt.cmd, tagged, lines, tt.want)
		}
		// The session is still in step.
		if lines, tagged := rc.cmd("NOOP"); !strings.Contains(tagged, " OK") {
			t.Fatalf("NOOP after %q: %s %q", tt.cmd, tagged, lines)
		}
	}
	lines := rc.ok("FETCH 1 (UID)")
	if len(lines) != 1 || lines[0] != "* 1 FETCH (UID 1)" {
		t.Errorf("FETCH after the errors: %q", lines)
	}
}

func TestWrongState(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts)
	for _, cmd := range []string{"SELECT INBOX", "LIST \"\" *", "FETCH 1 FLAGS", "EXPUNGE", "IDLE", "APPEND INBOX {1+}\r\nx", "CLOSE"} {
		if _, tagged := rc.cmd("%s", cmd); !strings.HasPrefix(tagged, fmt.Sprintf("a%d BAD", rc.n)) {
			t.Errorf("%q before LOGIN: %s", cmd, tagged)
		}
	}
	rc.ok("LOGIN alice secret")
	for _, cmd := range []string{"LOGIN alice secret", "AUTHENTICATE PLAIN", "FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "EXPUNGE", "UID EXPUNGE 1", "SEARCH ALL", "COPY 1 INBOX", "MOVE 1 INBOX", "CLOSE", "UNSELECT", "CHECK"} {
		if _, tagged := rc.cmd("%s", cmd); !strings.HasPrefix(tagged, fmt.Sprintf("a%d BAD", rc.n)) {
			t.Errorf("%q without a selected mailbox: %s", cmd, tagged)
		}
	}
	rc.ok("NOOP")
	rc.ok("LOGOUT")
}

func TestLiteralLimit(t *testing.T) {
	ts := startServer(t, func(s *imap.Server) { s.Limits.MaxLiteral = 1024 })
	rc := loginRaw(t, ts, "alice")

	// A synchronizing literal over the limit is refused before the
	// client sends it.
	tag := rc.send("APPEND INBOX {2000}")
	l := rc.line()
	if !strings.HasPrefix(l, tag+" NO [TOOBIG]") && !strings.HasPrefix(l, tag+" BAD") {
		t.Fatalf("APPEND {2000}: %q", l)
	}
	rc.ok("NOOP")

	// A literal at the limit is taken.
	msg := testMessage("fits", strings.Repeat("x", 1024-len(testMessage("fits", ""))))
	if len(msg) != 1024 {
		t.Fatalf("test message is %d bytes", len(msg))
	}
	rc.appendRaw("INBOX", "", msg)

	// A non-synchronizing literal over the limit: refused, and its bytes
	// are never taken for commands. The server may skip them or end the
	// session (RFC 7888 §4); the wire package skips no more than the
	// literal limit, so here it ends it.
	big := strings.Repeat("a9 LOGOUT\r\n", 200)
	tag = rc.send("APPEND INBOX {%d+}\r\n%s", len(big), big)
	var got []string
	for {
		rc.c.SetReadDeadline(time.Now().Add(readTimeout))
		l, err := rc.r.ReadString('\n')
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("no answer to APPEND {%d+}: %q", len(big), got)
			}
			break // the session ended
		}
		got = append(got, strings.TrimRight(l, "\r\n"))
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], tag+" NO [TOOBIG]") || !strings.HasPrefix(got[1], "* BYE ") {
		t.Errorf("APPEND {%d+}: %q, want NO [TOOBIG] and BYE", len(big), got)
	}
	for _, l := range got {
		if strings.HasPrefix(l, "a9 ") || strings.HasPrefix(l, tag+" OK") {
			t.Errorf("the literal's bytes ran as commands: %q", got)
		}
	}
	st := loginRaw(t, ts, "alice")
	lines := st.ok("STATUS INBOX (MESSAGES)")
	if !contains(lines, "* STATUS INBOX (MESSAGES 1)") {
		t.Errorf("STATUS: %q", lines)
	}
}

func TestIdleWithoutDone(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.ok("SELECT INBOX")
	tag := rc.idle()
	rc.writeLine("NOT DONE")
	_, tagged := rc.until(tag)
	if !strings.HasPrefix(tagged, tag+" BAD") {
		t.Fatalf("IDLE ended by garbage: %s", tagged)
	}
	rc.ok("NOOP")
}
