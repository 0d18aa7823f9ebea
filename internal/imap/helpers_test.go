package imap_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helpers shared by the session tests: a logged-in raw client, a model
// of a session's view rebuilt from what the server told it, and the
// truth read from the Maildir itself.

// loginRaw dials and logs in as user.
func loginRaw(t *testing.T, ts *testServer, user string) *rawClient {
	t.Helper()
	rc := dialRaw(t, ts)
	rc.ok("LOGIN %s secret", user)
	return rc
}

// send writes a command without waiting and returns its tag.
func (rc *rawClient) send(format string, args ...any) string {
	rc.t.Helper()
	rc.n++
	tag := fmt.Sprintf("a%d", rc.n)
	if _, err := fmt.Fprintf(rc.c, tag+" "+format+"\r\n", args...); err != nil {
		rc.t.Fatalf("writing: %v", err)
	}
	return tag
}

// writeLine writes one raw line (DONE, literal data).
func (rc *rawClient) writeLine(s string) {
	rc.t.Helper()
	if _, err := fmt.Fprintf(rc.c, "%s\r\n", s); err != nil {
		rc.t.Fatalf("writing: %v", err)
	}
}

// waitFor reads untagged lines until one satisfies match, failing the
// test if that does not happen before the deadline or a tagged line
// comes. It returns every line read, the matching one last.
func (rc *rawClient) waitFor(what string, match func(string) bool) []string {
	rc.t.Helper()
	deadline := time.Now().Add(readTimeout)
	var lines []string
	for time.Now().Before(deadline) {
		l := rc.line()
		lines = append(lines, l)
		if match(l) {
			return lines
		}
		if !strings.HasPrefix(l, "* ") && !strings.HasPrefix(l, "+ ") {
			rc.t.Fatalf("waiting for %s: got %q (lines %q)", what, l, lines)
		}
	}
	rc.t.Fatalf("waiting for %s: timed out (lines %q)", what, lines)
	return nil
}

// idle starts IDLE and waits for the continuation.
func (rc *rawClient) idle() string {
	rc.t.Helper()
	tag := rc.send("IDLE")
	rc.waitFor("IDLE continuation", func(l string) bool { return strings.HasPrefix(l, "+ ") })
	return tag
}

// done ends IDLE and returns the untagged lines before the tagged OK.
func (rc *rawClient) done(tag string) []string {
	rc.t.Helper()
	rc.writeLine("DONE")
	lines, tagged := rc.until(tag)
	if !strings.HasPrefix(tagged, tag+" OK") {
		rc.t.Fatalf("IDLE: %s", tagged)
	}
	return lines
}

var (
	reUntagged = regexp.MustCompile(`^\* (\d+) (EXISTS|EXPUNGE|RECENT|FETCH \((.*)\))$`)
	reFlags    = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
	reUID      = regexp.MustCompile(`UID (\d+)`)
)

// model is a client's picture of its selected mailbox, rebuilt only from
// EXISTS, EXPUNGE and FETCH responses, as a client must.
type model struct {
	uids  []uint32   // by seq-1; 0: a new message whose UID was not told
	flags [][]string // by seq-1, sorted; nil: not told
	// expunged lists the UIDs the session was told are gone (0 for
	// a message whose UID it never learnt).
	expunged []uint32
}

// apply updates the model with one untagged line; other lines are
// ignored. It returns an error for a response that contradicts the
// model (a sequence number out of range, a UID that moved).
func (m *model) apply(l string) error {
	sm := reUntagged.FindStringSubmatch(l)
	if sm == nil {
		return nil
	}
	n, _ := strconv.ParseUint(sm[1], 10, 32)
	seq := int(n)
	switch {
	case sm[2] == "EXISTS":
		if seq < len(m.uids) {
			return fmt.Errorf("%q shrinks the mailbox from %d", l, len(m.uids))
		}
		for len(m.uids) < seq {
			m.uids = append(m.uids, 0)
			m.flags = append(m.flags, nil)
		}
	case sm[2] == "EXPUNGE":
		if seq < 1 || seq > len(m.uids) {
			return fmt.Errorf("%q: only %d messages", l, len(m.uids))
		}
		m.expunged = append(m.expunged, m.uids[seq-1])
		m.uids = slices.Delete(m.uids, seq-1, seq)
		m.flags = slices.Delete(m.flags, seq-1, seq)
	case sm[2] == "RECENT":
	default:
		if seq < 1 || seq > len(m.uids) {
			return fmt.Errorf("%q: only %d messages", l, len(m.uids))
		}
		if u := reUID.FindStringSubmatch(sm[3]); u != nil {
			uid, _ := strconv.ParseUint(u[1], 10, 32)
			if m.uids[seq-1] != 0 && m.uids[seq-1] != uint32(uid) {
				return fmt.Errorf("%q: seq %d was UID %d", l, seq, m.uids[seq-1])
			}
			m.uids[seq-1] = uint32(uid)
		}
		if f := reFlags.FindStringSubmatch(sm[3]); f != nil {
			m.flags[seq-1] = sortedFlags(f[1])
		}
	}
	return nil
}

// applyAll applies lines and fails the test on a contradiction.
func (m *model) applyAll(t *testing.T, who string, lines []string) {
	t.Helper()
	for _, l := range lines {
		if err := m.apply(l); err != nil {
			t.Fatalf("%s: %v", who, err)
		}
	}
}

// sortedFlags parses a flag list without \Recent: that is the
// session's own (recent_test.go), not the mailbox's, which the models
// compare across sessions and with the disk.
func sortedFlags(s string) []string {
	f := slices.DeleteFunc(strings.Fields(s), func(x string) bool { return x == `\Recent` })
	slices.Sort(f)
	if f == nil {
		f = []string{}
	}
	return f
}

// fetchLines parses "* n FETCH (... UID u ... FLAGS (...))" lines into
// per-seq UIDs and flags; other lines fail the test.
func fetchLines(t *testing.T, lines []string) (uids []uint32, flags [][]string) {
	t.Helper()
	var m model
	for _, l := range lines {
		sm := reUntagged.FindStringSubmatch(l)
		if sm == nil || !strings.HasPrefix(sm[2], "FETCH") {
			t.Fatalf("unexpected response %q", l)
		}
		seq, _ := strconv.Atoi(sm[1])
		if seq != len(m.uids)+1 {
			t.Fatalf("FETCH out of order: %q after %d", l, len(m.uids))
		}
		m.uids, m.flags = append(m.uids, 0), append(m.flags, nil)
		if err := m.apply(l); err != nil {
			t.Fatal(err)
		}
	}
	return m.uids, m.flags
}

// mailDir is user's INBOX Maildir.
func (ts *testServer) mailDir(user string) string {
	return filepath.Join(ts.root, user, "Maildir")
}

// maildirFlag maps Maildir letters to IMAP system flags.
var maildirFlag = map[byte]string{'D': `\Draft`, 'F': `\Flagged`, 'R': `\Answered`, 'S': `\Seen`, 'T': `\Deleted`}

// imapFlags lists the IMAP flags of a file name's info part (system
// flags only), sorted.
func imapFlags(filename string) []string {
	out := []string{}
	if i := strings.Index(filename, ":2,"); i >= 0 {
		for _, c := range []byte(filename[i+3:]) {
			if f, ok := maildirFlag[c]; ok {
				out = append(out, f)
			}
		}
	}
	slices.Sort(out)
	return out
}

// baseName is the file name up to the info separator.
func baseName(filename string) string {
	if i := strings.IndexByte(filename, ':'); i >= 0 {
		return filename[:i]
	}
	return filename
}

// diskFiles maps each message's base name to its file name, from new/
// and cur/ of dir; the test calls it only while nothing writes there.
func diskFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if prev, dup := out[baseName(e.Name())]; dup {
				t.Fatalf("base name twice on disk: %s and %s", prev, e.Name())
			}
			out[baseName(e.Name())] = e.Name()
		}
	}
	return out
}

// uidList reads dovecot-uidlist of dir: base name → UID.
func uidList(t *testing.T, dir string) map[string]uint32 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "dovecot-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "3 ") {
		t.Fatalf("dovecot-uidlist header %q", lines[0])
	}
	out := make(map[string]uint32)
	for _, l := range lines[1:] {
		i := strings.Index(l, " :")
		sp := strings.IndexByte(l, ' ')
		if i < 0 || sp < 0 {
			t.Fatalf("dovecot-uidlist line %q", l)
		}
		uid, err := strconv.ParseUint(l[:sp], 10, 32)
		if err != nil {
			t.Fatalf("dovecot-uidlist line %q", l)
		}
		out[l[i+2:]] = uint32(uid)
	}
	return out
}

// testMessage is a small message with a subject, a body and a date.
func testMessage(subject, body string) string {
	return "From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: " + subject +
		"\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", "-") +
		"@example.org>\r\n\r\n" + body + "\r\n"
}

// appendRaw appends msg to mailbox with flags (as "(\Seen)" or "") and
// returns the UID from APPENDUID.
func (rc *rawClient) appendRaw(mailbox, flags, msg string) uint32 {
	rc.t.Helper()
	if flags != "" {
		flags += " "
	}
	tag := rc.send("APPEND %s %s{%d+}\r\n%s", mailbox, flags, len(msg), msg)
	lines, tagged := rc.until(tag)
	var validity, uid uint32
	if _, err := fmt.Sscanf(tagged, tag+" OK [APPENDUID %d %d]", &validity, &uid); err != nil {
		rc.t.Fatalf("APPEND: %s (%q)", tagged, lines)
	}
	return uid
}

// selectRaw selects mailbox and returns the model after a
// "FETCH 1:* (UID FLAGS)".
func (rc *rawClient) selectRaw(mailbox string) *model {
	rc.t.Helper()
	m := &model{}
	m.applyAll(rc.t, "SELECT", rc.ok("SELECT %s", mailbox))
	if len(m.uids) > 0 {
		m.applyAll(rc.t, "FETCH", rc.ok("FETCH 1:* (UID FLAGS)"))
	}
	return m
}
