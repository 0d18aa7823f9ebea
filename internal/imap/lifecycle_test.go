package imap_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/uidlist"
)

// The mailbox lifecycle (RFC 9051 §2.3.1.1): a name deleted and made
// again, or renamed away and made again, never gives a (UIDVALIDITY,
// UID) pair to a second message, and a session whose selected mailbox
// goes is never shown another mailbox's messages under its old
// UIDVALIDITY: it is disconnected, as Dovecot's sessions are.

var reAppendUID = regexp.MustCompile(`OK \[APPENDUID (\d+) (\d+)\]`)

// appendUID appends msg to mailbox and returns (UIDVALIDITY, UID).
func (rc *rawClient) appendUID(mailbox, msg string) (uint32, uint32) {
	rc.t.Helper()
	tag := rc.send("APPEND %s {%d+}\r\n%s", mailbox, len(msg), msg)
	lines, tagged := rc.until(tag)
	m := reAppendUID.FindStringSubmatch(tagged)
	if m == nil {
		rc.t.Fatalf("APPEND to %s: %s (%q)", mailbox, tagged, lines)
	}
	v, _ := strconv.ParseUint(m[1], 10, 32)
	u, _ := strconv.ParseUint(m[2], 10, 32)
	return uint32(v), uint32(u)
}

// uidBook remembers which message every (mailbox, UIDVALIDITY, UID) named,
// and fails the test when one names two.
type uidBook struct {
	t    *testing.T
	seen map[string]string
}

func (b *uidBook) saw(mailbox string, validity, uid uint32, subject string) {
	b.t.Helper()
	key := fmt.Sprintf("%s %d %d", mailbox, validity, uid)
	if b.seen == nil {
		b.seen = map[string]string{}
	}
	if prev, ok := b.seen[key]; ok && prev != subject {
		b.t.Errorf("%s (mailbox, UIDVALIDITY, UID) named %q and then %q", key, prev, subject)
	}
	b.seen[key] = subject
}

// expectBye reads until the BYE that ends a session whose selected
// mailbox went; no tagged line may come first.
func (rc *rawClient) expectBye(what string) {
	rc.t.Helper()
	rc.waitFor(what, func(l string) bool {
		return strings.HasPrefix(l, "* BYE Selected mailbox was deleted")
	})
}

// allocatorValue is the last UIDVALIDITY in the account's
// dovecot-uidvalidity.
func allocatorValue(t *testing.T, root string) uint32 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, uidlist.UIDValidityFileName))
	if err != nil {
		t.Errorf("reading the allocator: %v", err)
		return 0
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 16, 32)
	if err != nil {
		t.Errorf("allocator holds %q: %v", data, err)
	}
	return uint32(v)
}

// DELETE boxr; CREATE boxr; APPEND 3, three times within a second, with
// a second session keeping the mailbox selected (and so its state warm)
// across each DELETE.
func TestRecreatedMailboxGetsNewUIDValidity(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	book := &uidBook{t: t}
	validities := map[uint32]int{}
	var b *rawClient // selected on boxr from the life before
	for life := 0; life < 3; life++ {
		if life > 0 {
			a.ok("DELETE boxr")
		}
		a.ok("CREATE boxr")
		var v uint32
		for i := 0; i < 3; i++ {
			subject := fmt.Sprintf("r%d.%d", life, i)
			var uid uint32
			v, uid = a.appendUID("boxr", testMessage(subject, "text"))
			book.saw("boxr", v, uid, subject)
			if uid != uint32(i+1) {
				t.Errorf("life %d: APPEND %d got UID %d, want %d (a state of an earlier life mixed in)", life, i, uid, i+1)
			}
		}
		if prev, ok := validities[v]; ok {
			t.Errorf("life %d got UIDVALIDITY %d, as life %d did", life, v, prev)
		}
		validities[v] = life
		if got := allocatorValue(t, ts.mailDir("alice")); got != v {
			t.Errorf("life %d: UIDVALIDITY %d, dovecot-uidvalidity says %d", life, v, got)
		}
		if b != nil {
			// B's view is of the deleted mailbox: it must not go on
			// under the old UIDVALIDITY, nor see this life's messages.
			b.send("NOOP")
			b.expectBye("BYE after the selected mailbox was deleted")
		}
		b = loginRaw(t, ts, "alice")
		b.selectedSubjects(book, "boxr", v)
	}
}

// selectedSubjects selects mailbox, checks its UIDVALIDITY (unless 0), and books
// the subject of every UID.
func (rc *rawClient) selectedSubjects(book *uidBook, mailbox string, v uint32) map[uint32]string {
	rc.t.Helper()
	lines := rc.ok("SELECT %s", mailbox)
	if v != 0 && !containsLine(lines, fmt.Sprintf("* OK [UIDVALIDITY %d] UIDs valid", v)) {
		rc.t.Errorf("SELECT %s: %q, want UIDVALIDITY %d", mailbox, lines, v)
	}
	out := map[uint32]string{}
	for _, l := range rc.ok("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])") {
		m, mu := reSubject.FindStringSubmatch(l), reUID.FindStringSubmatch(l)
		if m == nil || mu == nil {
			rc.t.Fatalf("FETCH response %q", l)
		}
		u, _ := strconv.ParseUint(mu[1], 10, 32)
		book.saw(mailbox, v, uint32(u), m[1])
		out[uint32(u)] = m[1]
	}
	return out
}

var reSubject = regexp.MustCompile(`Subject: ([^\r\n]+)`)

// CREATE ra; APPEND 2; RENAME ra rb; CREATE ra; APPEND 1, with a second
// session selected on ra across the RENAME.
func TestRenamedAwayMailboxGetsNewUIDValidity(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	book := &uidBook{t: t}
	a.ok("CREATE ra")
	v1, _ := a.appendUID("ra", testMessage("ra0", "text"))
	a.appendUID("ra", testMessage("ra1", "text"))
	b := loginRaw(t, ts, "alice")
	if got := b.selectedSubjects(book, "ra", v1); got[1] != "ra0" || got[2] != "ra1" {
		t.Fatalf("ra before the RENAME: %v", got)
	}
	a.ok("RENAME ra rb")
	a.ok("CREATE ra")
	v2, uid := a.appendUID("ra", testMessage("new-ra", "text"))
	book.saw("ra", v2, uid, "new-ra")
	if v2 == v1 {
		t.Errorf("the new ra got UIDVALIDITY %d, as the old ra (now rb) has", v2)
	}
	b.send("NOOP")
	b.expectBye("BYE after the selected mailbox was renamed")

	c := loginRaw(t, ts, "alice")
	// The renamed mailbox keeps its UIDVALIDITY and UIDs.
	if got := c.selectedSubjects(book, "rb", v1); got[1] != "ra0" || got[2] != "ra1" || len(got) != 2 {
		t.Errorf("rb after the RENAME: %v", got)
	}
	if got := c.selectedSubjects(book, "ra", v2); got[uid] != "new-ra" || len(got) != 1 {
		t.Errorf("the new ra: %v", got)
	}
}

// A session that deletes its own selected mailbox is told OK and then
// disconnected, as Dovecot does.
func TestDeleteSelectedMailbox(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	a.ok("CREATE gone")
	a.appendUID("gone", testMessage("g0", "text"))
	a.ok("SELECT gone")
	tag := a.send("DELETE gone")
	lines, tagged := a.until(tag)
	if tagged != tag+" OK DELETE completed" {
		t.Fatalf("DELETE of the selected mailbox: %s (%q)", tagged, lines)
	}
	if l := a.line(); l != "* BYE Selected mailbox was deleted, have to disconnect." {
		t.Fatalf("after DELETE: %q", l)
	}
	c := loginRaw(t, ts, "alice")
	if _, tagged := c.cmd("SELECT gone"); !strings.Contains(tagged, "NO [NONEXISTENT]") {
		t.Errorf("SELECT of the deleted mailbox: %s", tagged)
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// RENAME INBOX (RFC 9051 §6.3.6) moves every message into the new
// mailbox and leaves INBOX empty, with its UIDVALIDITY and without ever
// reusing a UID; a session selected on INBOX sees the messages go.
func TestRenameInbox(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	book := &uidBook{t: t}
	var inboxV uint32
	for i := 0; i < 3; i++ {
		v, uid := a.appendUID("INBOX", testMessage(fmt.Sprintf("in%d", i), "text"))
		book.saw("INBOX", v, uid, fmt.Sprintf("in%d", i))
		inboxV = v
	}
	b := loginRaw(t, ts, "alice")
	b.selectRaw("INBOX")
	a.ok("RENAME INBOX Saved")
	if _, tagged := a.cmd("RENAME INBOX Saved"); !strings.Contains(tagged, "NO [ALREADYEXISTS]") {
		t.Errorf("RENAME INBOX onto an existing name: %s", tagged)
	}
	// B, selected on INBOX, hears of three expunges.
	lines := b.ok("NOOP")
	n := 0
	for _, l := range lines {
		if reExpunge.MatchString(l) {
			n++
		}
	}
	if n != 3 {
		t.Errorf("B after RENAME INBOX: %q, want 3 EXPUNGEs", lines)
	}
	c := loginRaw(t, ts, "alice")
	saved := c.selectedSubjects(book, "Saved", 0)
	if len(saved) != 3 {
		t.Errorf("Saved holds %v, want the three messages", saved)
	}
	lines = c.ok("SELECT INBOX")
	if !containsLine(lines, "* 0 EXISTS") || !containsLine(lines, fmt.Sprintf("* OK [UIDVALIDITY %d] UIDs valid", inboxV)) {
		t.Errorf("INBOX after the RENAME: %q", lines)
	}
	// INBOX goes on numbering after the UIDs that left it.
	v, uid := a.appendUID("INBOX", testMessage("after", "text"))
	if v != inboxV || uid != 4 {
		t.Errorf("APPEND to INBOX after the RENAME: UIDVALIDITY %d UID %d, want %d 4", v, uid, inboxV)
	}
	book.saw("INBOX", v, uid, "after")
}

// RENAME of a mailbox with children moves them all; they keep their
// UIDVALIDITY and UIDs under the new names, the old names are gone, and
// a session selected on a child is disconnected.
func TestRenameWithChildren(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	a.ok("CREATE p")
	a.ok("CREATE p.c")
	a.ok("CREATE p.c.d")
	vp, _ := a.appendUID("p", testMessage("p0", "text"))
	vc, _ := a.appendUID("p.c", testMessage("c0", "text"))
	a.appendUID("p.c", testMessage("c1", "text"))
	vd, _ := a.appendUID("p.c.d", testMessage("d0", "text"))
	b := loginRaw(t, ts, "alice")
	b.selectRaw("p.c")
	a.ok("RENAME p q")
	b.send("NOOP")
	b.expectBye("BYE after the selected mailbox's parent was renamed")

	book := &uidBook{t: t}
	c := loginRaw(t, ts, "alice")
	if got := c.selectedSubjects(book, "q", vp); got[1] != "p0" || len(got) != 1 {
		t.Errorf("q: %v", got)
	}
	if got := c.selectedSubjects(book, "q.c", vc); got[1] != "c0" || got[2] != "c1" || len(got) != 2 {
		t.Errorf("q.c: %v", got)
	}
	if got := c.selectedSubjects(book, "q.c.d", vd); got[1] != "d0" || len(got) != 1 {
		t.Errorf("q.c.d: %v", got)
	}
	for _, old := range []string{"p", "p.c", "p.c.d"} {
		if _, tagged := c.cmd("SELECT %s", old); !strings.Contains(tagged, "NO [NONEXISTENT]") {
			t.Errorf("SELECT %s after the RENAME: %s", old, tagged)
		}
	}
	list := strings.Join(c.ok(`LIST "" "*"`), "\n")
	for _, want := range []string{`"." q`, `"." q.c`, `"." q.c.d`} {
		if !strings.Contains(list, want) {
			t.Errorf("LIST lacks %s:\n%s", want, list)
		}
	}
	if strings.Contains(list, `"." p`) {
		t.Errorf("LIST still shows p:\n%s", list)
	}
	// A new p gets a new UIDVALIDITY.
	a.ok("CREATE p")
	if v, _ := a.appendUID("p", testMessage("new-p", "text")); v == vp {
		t.Errorf("the new p got the old p's UIDVALIDITY %d", v)
	}
}
