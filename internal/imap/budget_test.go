package imap_test

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/message"
)

// bigMessage is a message of about size bytes.
func bigMessage(subject string, size int) string {
	line := strings.Repeat("x", 76) + "\r\n"
	return testMessage(subject, strings.Repeat(line, size/len(line)))
}

func smallBudget(total, perUser int64) func(*imap.Server) {
	return func(s *imap.Server) { s.ResponseMemory, s.ResponseMemoryPerUser = total, perUser }
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

// silent asserts that the session sends nothing for a while.
func (rc *rawClient) silent(what string, d time.Duration) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(d))
	if l, err := rc.r.ReadString('\n'); err == nil || l != "" {
		rc.t.Fatalf("%s: got %q, want nothing yet", what, l)
	}
}

// A FETCH that parses a message (here BODY[TEXT]: the test server has
// no index, so the structure is parsed from the whole file) waits for
// room in the budget, then answers OK with the \Seen it set: never NO.
// (Before FETCH streamed, BODY[] waited too: TestStreamedFetchTakesNoBudget.)
func TestFetchWaitsForResponseMemory(t *testing.T) {
	ts := startServer(t, smallBudget(1<<20, 1<<20))
	rc := loginRaw(t, ts, "alice")
	rc.appendRaw("INBOX", "", bigMessage("big", 200<<10))
	rc.ok("SELECT INBOX")
	release := imap.HoldResponseMemory(ts.srv, "someone", 1<<20)
	tag := rc.send("FETCH 1 BODY[TEXT]")
	waitUntil(t, "the FETCH waits", func() bool { return imap.ResponseMemoryWaiting(ts.srv) == 1 })
	rc.silent("FETCH while the budget is full", 100*time.Millisecond)
	release()
	lines, tagged := rc.until(tag)
	if !strings.HasPrefix(tagged, tag+" OK") || len(lines) != 1 || !strings.Contains(lines[0], `\Seen`) {
		t.Fatalf("FETCH after the wait: %q %.200q", tagged, lines)
	}
	waitUntil(t, "the budget is given back", func() bool { return imap.ResponseMemoryInUse(ts.srv) == 0 })
}

// A streamed body holds one buffer, not the message: FETCH BODY[] (and
// BINARY[], RFC822) of a big message goes through while the budget is
// all taken, and takes nothing from it.
func TestStreamedFetchTakesNoBudget(t *testing.T) {
	ts := startServer(t, smallBudget(1<<20, 1<<20))
	rc := loginRaw(t, ts, "alice")
	msg := bigMessage("big", 600<<10)
	rc.appendRaw("INBOX", "", msg)
	rc.ok("SELECT INBOX")
	release := imap.HoldResponseMemory(ts.srv, "someone", 1<<20)
	defer release()
	rc.timeout = 5 * time.Second
	for _, item := range []string{"BODY.PEEK[]", "RFC822", "BINARY.PEEK[]", "BODY.PEEK[]<1000.5000>"} {
		lines := rc.ok("FETCH 1 %s", item)
		want := msg
		if strings.HasSuffix(item, ">") {
			want = msg[1000:6000]
		}
		if len(lines) != 1 || !strings.Contains(lines[0], fmt.Sprintf("{%d}", len(want))) || !strings.Contains(lines[0], want) {
			t.Fatalf("FETCH %s: %.200q", item, lines)
		}
		if n := imap.ResponseMemoryInUse(ts.srv); n != 1<<20 {
			t.Fatalf("after FETCH %s: %d bytes of the budget in use, want only the 1 MiB held", item, n)
		}
	}
}

// A session waiting for the budget stops when its client closes the
// connection: its place in the queue is given up.
func TestWaitingFetchEndsWithConnection(t *testing.T) {
	ts := startServer(t, smallBudget(1<<20, 1<<20))
	rc := loginRaw(t, ts, "alice")
	rc.appendRaw("INBOX", "", bigMessage("big", 200<<10))
	rc.ok("SELECT INBOX")
	release := imap.HoldResponseMemory(ts.srv, "someone", 1<<20)
	defer release()
	rc.send("SEARCH BODY nothing-like-this")
	waitUntil(t, "the SEARCH waits", func() bool { return imap.ResponseMemoryWaiting(ts.srv) == 1 })
	rc.c.Close()
	waitUntil(t, "the closed session stops waiting", func() bool { return imap.ResponseMemoryWaiting(ts.srv) == 0 })
}

// One user's sessions hold at most the user's share: while alice's
// share is taken, her FETCH that parses waits and bob's goes through.
func TestResponseMemoryUserShare(t *testing.T) {
	ts := startServer(t, smallBudget(4<<20, 1<<20))
	msg := bigMessage("big", 300<<10)
	alice, bob := loginRaw(t, ts, "alice"), loginRaw(t, ts, "bob")
	alice.appendRaw("INBOX", "", msg)
	bob.appendRaw("INBOX", "", msg)
	alice.ok("SELECT INBOX")
	bob.ok("SELECT INBOX")
	release := imap.HoldResponseMemory(ts.srv, "alice", 1<<20)
	tag := alice.send("FETCH 1 BODY.PEEK[TEXT]")
	waitUntil(t, "alice's FETCH waits", func() bool { return imap.ResponseMemoryWaiting(ts.srv) == 1 })
	lines := bob.ok("FETCH 1 BODY.PEEK[TEXT]")
	if len(lines) != 1 || !strings.Contains(lines[0], "BODY[TEXT] {") {
		t.Fatalf("bob's FETCH: %.200q", lines)
	}
	alice.silent("alice over her share", 50*time.Millisecond)
	release()
	if _, tagged := alice.until(tag); !strings.HasPrefix(tagged, tag+" OK") {
		t.Fatalf("alice's FETCH: %q", tagged)
	}
}

// The attack of issue 11 over the wire (with 300,000 addresses rather
// than a million, to stay quick): ENVELOPE and BODYSTRUCTURE of a message
// with more addresses in To: than MaxFieldAddresses are answered with the
// first MaxFieldAddresses, in a response line far below the cap.
func TestManyAddressFetch(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@b.example\r\nSubject: many\r\nTo: ")
	for i := 0; i < 300_000; i++ {
		if i > 0 {
			b.WriteString(",\r\n ")
		}
		b.WriteString("u")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("@x.y")
	}
	b.WriteString("\r\n\r\nbody\r\n")
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.timeout = time.Minute
	rc.appendRaw("INBOX", "", b.String())
	rc.ok("SELECT INBOX")
	t.Logf("message %d bytes", b.Len())
	for _, item := range []string{"ENVELOPE", "BODYSTRUCTURE", "ENVELOPE"} {
		lines := rc.ok("FETCH 1 %s", item)
		if len(lines) != 1 {
			t.Fatalf("FETCH %s: %d lines", item, len(lines))
		}
		l := lines[0]
		t.Logf("FETCH %s: response %d bytes", item, len(l))
		if len(l) > message.MaxEncodedStructure {
			t.Errorf("FETCH %s: %d bytes > MaxEncodedStructure", item, len(l))
		}
		if item == "BODYSTRUCTURE" {
			continue // a text/plain message's has no envelope
		}
		if n := strings.Count(l, `"x.y"`); n != message.MaxFieldAddresses {
			t.Errorf("FETCH %s: %d addresses, want %d", item, n, message.MaxFieldAddresses)
		}
		if strings.Contains(l, fmt.Sprintf(`"u%d"`, message.MaxFieldAddresses)) {
			t.Errorf("FETCH %s: an address beyond the limit", item)
		}
	}
}

// A message cut by the structure limits is logged at Warn when it is
// parsed, naming its mailbox, UID and the limit; a FETCH that does not
// parse it logs nothing.
func TestLimitedMessageLogged(t *testing.T) {
	var logs lockedBuffer
	ts := startServer(t, func(s *imap.Server) { s.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	rc := loginRaw(t, ts, "alice")
	var b strings.Builder
	b.WriteString("From: a@b.example\r\nSubject: many\r\nTo: ")
	for i := 0; i < message.MaxFieldAddresses+10; i++ {
		fmt.Fprintf(&b, "u%d@x.y,\r\n ", i)
	}
	b.WriteString("last@x.y\r\n\r\nbody\r\n")
	uid := rc.appendRaw("INBOX", "", b.String())
	rc.ok("SELECT INBOX")
	const warn = "message over the structure limits"
	before := strings.Count(logs.String(), warn)
	rc.ok("FETCH 1 FLAGS")
	if n := strings.Count(logs.String(), warn); n != before {
		t.Errorf("FETCH FLAGS logged the message %d times", n-before)
	}
	rc.ok("FETCH 1 ENVELOPE")
	out := logs.String()
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, warn) {
			line = l
		}
	}
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, fmt.Sprintf("uid=%d", uid)) ||
		!strings.Contains(line, "limits=addresses_per_field") || !strings.Contains(line, "mailbox=") {
		t.Errorf("no Warn naming the mailbox, uid %d and the limit: %q", uid, line)
	}
}
