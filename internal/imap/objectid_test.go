package imap_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// RFC 8474: the ids as the backend makes them (backend/objectid.go),
// computed here again from the disk so that the transcripts pin the
// exact bytes.

// diskGUID is the mailbox GUID in dir's dovecot-uidlist header.
func diskGUID(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "dovecot-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^3 .* G([0-9a-f]{32})\b`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no GUID in the uidlist header: %q", strings.SplitN(string(data), "\n", 2)[0])
	}
	return string(m[1])
}

func wantID(prefix, domain, s string) string {
	sum := sha256.Sum256([]byte(domain + "\x00" + s))
	return prefix + hex.EncodeToString(sum[:16])
}

// emailIDOf is the EMAILID of the message with uid in dir.
func emailIDOf(t *testing.T, dir string, uid uint32) string {
	t.Helper()
	for base, u := range uidList(t, dir) {
		if u == uid {
			return wantID("M", "emailid", base)
		}
	}
	t.Fatalf("UID %d not in %s", uid, dir)
	return ""
}

var fetchIDRE = regexp.MustCompile(`^\* (\d+) FETCH \((?:UID \d+ )?(EMAILID|THREADID) \(([A-Za-z0-9_-]+)\)`)

// ids fetches item (EMAILID or THREADID) of every message: seq → id.
func (rc *rawClient) ids(item string) map[int]string {
	rc.t.Helper()
	out := map[int]string{}
	for _, l := range rc.ok("FETCH 1:* (%s)", item) {
		m := fetchIDRE.FindStringSubmatch(l)
		if m == nil || m[2] != item {
			rc.t.Fatalf("FETCH %s: %q", item, l)
		}
		var seq int
		fmt.Sscan(m[1], &seq)
		out[seq] = m[3]
	}
	return out
}

func TestObjectIDTranscript(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	if lines := rc.ok("CAPABILITY"); !strings.Contains(lines[0]+" ", " OBJECTID ") {
		t.Fatalf("OBJECTID not advertised: %q", lines)
	}
	lines, tagged := rc.cmd("CREATE Foo")
	dir := filepath.Join(ts.mailDir("alice"), ".Foo")
	guid := diskGUID(t, dir)
	// RFC 8474 §4.1.
	if want := fmt.Sprintf("a%d OK [MAILBOXID (%s)] CREATE completed", rc.n, guid); tagged != want || len(lines) != 0 {
		t.Fatalf("CREATE: %q %q, want %q", lines, tagged, want)
	}
	// §4.3.
	rc.exactly([]string{"* STATUS Foo (MESSAGES 0 MAILBOXID (" + guid + "))"}, "STATUS Foo (MESSAGES MAILBOXID)")
	// §4.2, SELECT and EXAMINE.
	for _, cmd := range []string{"SELECT", "EXAMINE"} {
		lines := rc.ok("%s Foo", cmd)
		if !containsLine(lines, "* OK [MAILBOXID ("+guid+")] Mailbox ID") {
			t.Fatalf("%s: no MAILBOXID %s in %q", cmd, guid, lines)
		}
	}
	uid := rc.appendRaw("Foo", "", testMessage("one", "body"))
	email := emailIDOf(t, dir, uid)
	thread := wantID("T", "thread", "<one@example.org>")
	rc.exactly([]string{"* 1 FETCH (EMAILID (" + email + ") THREADID (" + thread + "))"}, "FETCH 1 (EMAILID THREADID)")
	rc.exactly([]string{"* 1 FETCH (THREADID (" + thread + ") UID 1)"}, "UID FETCH 1 (THREADID)")
	rc.exactly([]string{"* 1 FETCH (UID 1 EMAILID (" + email + ") RFC822.SIZE 144)"}, "FETCH 1 (UID EMAILID RFC822.SIZE)")
	rc.exactly([]string{"* SEARCH 1"}, "SEARCH EMAILID %s", email)
	rc.exactly([]string{"* SEARCH 1"}, "UID SEARCH THREADID %s", thread)
	// Ids are case-sensitive (RFC 8474 §7): another case is another id.
	rc.exactly([]string{"* SEARCH"}, "SEARCH EMAILID %s", strings.ToLower(email))
	rc.exactly([]string{"* SEARCH"}, "SEARCH THREADID %s", email)
	// Syntax: an objectid is 1*255 of ALPHA / DIGIT / "_" / "-".
	for _, bad := range []string{"EMAILID M1.2", "EMAILID", `EMAILID "M1"`, "THREADID " + strings.Repeat("T", 256), "EMAILID M1,S=2"} {
		if _, tagged := rc.cmd("SEARCH %s", bad); !strings.Contains(tagged, " BAD ") {
			t.Errorf("SEARCH %s: %s, want BAD", bad, tagged)
		}
	}
	if _, tagged := rc.cmd("FETCH 1 (EMAILID.PEEK)"); !strings.Contains(tagged, " BAD ") {
		t.Errorf("FETCH EMAILID.PEEK: %s, want BAD", tagged)
	}
}

// MAILBOXID: the same across RENAME (of the mailbox and of its parent),
// another for every new mailbox of a name.
func TestMailboxIDLifecycle(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	id := func(name string) string {
		rc.t.Helper()
		lines := rc.ok("STATUS %s (MAILBOXID)", name)
		m := regexp.MustCompile(`^\* STATUS \S+ \(MAILBOXID \(([0-9a-f]{32})\)\)$`).FindStringSubmatch(lines[0])
		if len(lines) != 1 || m == nil {
			rc.t.Fatalf("STATUS %s: %q", name, lines)
		}
		return m[1]
	}
	rc.ok("CREATE A")
	rc.ok("CREATE A.x")
	a, ax, inbox := id("A"), id("A.x"), id("INBOX")
	if a == ax || a == inbox || ax == inbox {
		t.Fatalf("ids shared: A %s A.x %s INBOX %s", a, ax, inbox)
	}
	if again := id("INBOX"); again != inbox {
		t.Fatalf("INBOX id changed: %s then %s", inbox, again)
	}
	rc.ok("RENAME A B")
	if b, bx := id("B"), id("B.x"); b != a || bx != ax {
		t.Fatalf("RENAME: B %s B.x %s, want %s %s", b, bx, a, ax)
	}
	// A RENAME away and a CREATE at the old name: a new mailbox.
	rc.ok("CREATE A")
	if na := id("A"); na == a || na == ax {
		t.Fatalf("new A has an old id %s", na)
	}
	// DELETE and CREATE: a new mailbox.
	rc.ok("DELETE B.x")
	rc.ok("CREATE B.x")
	if nbx := id("B.x"); nbx == ax {
		t.Fatalf("B.x made again kept id %s", nbx)
	}
	// A second session sees the same ids, in SELECT too.
	rc2 := loginRaw(t, ts, "alice")
	if lines := rc2.ok("SELECT B"); !containsLine(lines, "* OK [MAILBOXID ("+a+")] Mailbox ID") {
		t.Fatalf("SELECT B in another session: %q, want MAILBOXID %s", lines, a)
	}
}

// EMAILID (RFC 8474 §5.1), seen from another session: COPY and MOVE keep
// it (the copy keeps its message's base name), a message APPENDed twice
// has two, and a second copy of one message into one mailbox has one of
// its own (one base name is one message there); THREADID, from the
// header, stays.
func TestEmailIDCopyMove(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	msg := testMessage("same", "body")
	rc.appendRaw("INBOX", "", msg)
	rc.appendRaw("INBOX", "", msg)
	rc.appendRaw("INBOX", "", testMessage("other", "body"))
	rc.ok("CREATE Copies")
	rc.ok("CREATE Moved")
	rc.ok("SELECT INBOX")
	orig := rc.ids("EMAILID")
	if len(orig) != 3 || orig[1] == orig[2] || orig[1] == orig[3] || orig[2] == orig[3] {
		t.Fatalf("three messages, two appended alike: EMAILIDs %v", orig)
	}
	threads := rc.ids("THREADID")
	if threads[1] != threads[2] || threads[1] == threads[3] {
		t.Fatalf("THREADIDs %v: 1 and 2 share a Message-ID, 3 has its own", threads)
	}
	rc.ok("COPY 1:3 Copies")
	rc.ok("MOVE 2 Moved")
	rc2 := loginRaw(t, ts, "alice")
	rc2.ok("SELECT Copies")
	copies := rc2.ids("EMAILID")
	if len(copies) != 3 || copies[1] != orig[1] || copies[2] != orig[2] || copies[3] != orig[3] {
		t.Fatalf("copies: EMAILIDs %v, originals %v", copies, orig)
	}
	if got := rc2.ids("THREADID"); got[1] != threads[1] || got[3] != threads[3] {
		t.Fatalf("copies: THREADIDs %v, originals %v", got, threads)
	}
	rc2.ok("SELECT Moved")
	if got := rc2.ids("EMAILID"); len(got) != 1 || got[1] != orig[2] {
		t.Fatalf("moved: EMAILIDs %v, original %s", got, orig[2])
	}
	// The original session, after the MOVE, still has 1 and 3.
	rc.ok("NOOP")
	if got := rc.ids("EMAILID"); len(got) != 2 || got[1] != orig[1] || got[2] != orig[3] {
		t.Fatalf("INBOX after MOVE: %v, want %s %s", got, orig[1], orig[3])
	}
	// A second copy of message 1 into Copies: an EMAILID no other has.
	rc.ok("COPY 1 Copies")
	rc2.ok("SELECT Copies")
	again := rc2.ids("EMAILID")
	if len(again) != 4 || again[4] == orig[1] || again[4] == orig[2] || again[4] == orig[3] {
		t.Fatalf("a second copy into one mailbox: EMAILIDs %v, originals %v", again, orig)
	}
	rc2.exactly([]string{"* SEARCH 1"}, "SEARCH EMAILID %s", orig[1])
	rc2.exactly([]string{"* SEARCH 2"}, "SEARCH EMAILID %s", orig[2])
	rc2.exactly([]string{"* SEARCH 4"}, "SEARCH EMAILID %s", again[4])
	rc.exactly([]string{"* SEARCH"}, "SEARCH EMAILID %s", orig[2])
}

// THREADID from References, In-Reply-To and Message-ID; SEARCH
// THREADID finds the thread.
func TestThreadID(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	msgs := []string{
		"Message-ID: <root@x>\r\nSubject: root\r\n\r\nb\r\n",
		"Message-ID: <a@x>\r\nIn-Reply-To: <root@x>\r\nReferences: <root@x>\r\n\r\nb\r\n",
		"Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\nReferences: <root@x>\r\n <a@x>\r\n\r\nb\r\n",
		"Message-ID: <c@x>\r\nIn-Reply-To: <root@x>\r\n\r\nb\r\n",
		"Message-ID: <elsewhere@x>\r\n\r\nb\r\n",
		"Subject: no ids\r\n\r\nb\r\n",
		"Subject: no ids either\r\n\r\nb\r\n",
	}
	for _, m := range msgs {
		rc.appendRaw("INBOX", "", m)
	}
	rc.ok("SELECT INBOX")
	got := rc.ids("THREADID")
	root := wantID("T", "thread", "<root@x>")
	for seq := 1; seq <= 4; seq++ {
		if got[seq] != root {
			t.Errorf("message %d: THREADID %s, want the root's %s", seq, got[seq], root)
		}
	}
	if got[5] != wantID("T", "thread", "<elsewhere@x>") || got[6] == got[7] || got[6] == root {
		t.Errorf("THREADIDs %v", got)
	}
	rc.exactly([]string{"* SEARCH 1 2 3 4"}, "SEARCH THREADID %s", root)
	rc.exactly([]string{"* SEARCH 6"}, "SEARCH THREADID %s", got[6])
	rc.exactly([]string{"* SEARCH 1 3"}, "SEARCH OR EMAILID %s EMAILID %s", emailIDOf(t, ts.mailDir("alice"), 1), emailIDOf(t, ts.mailDir("alice"), 3))
	// With a key that reads the message: the read message serves.
	rc.exactly([]string{"* SEARCH 2"}, "SEARCH BODY b THREADID %s HEADER Message-ID a@x", root)
}
