package imap_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var reFlagsResp = regexp.MustCompile(`^\* FLAGS \(([^)]*)\)$`)

// announced follows what a session was told: the keywords of its FLAGS
// responses, and fails the test for a FETCH that carries another one
// (RFC 3501 §7.2.6, RFC 9051 §7.3.5).
type announced map[string]bool

func (a announced) check(t *testing.T, who string, lines []string) {
	t.Helper()
	for _, l := range lines {
		if m := reFlagsResp.FindStringSubmatch(l); m != nil {
			clear(a)
			for _, f := range strings.Fields(m[1]) {
				a[f] = true
			}
			continue
		}
		if !strings.Contains(l, " FETCH ") {
			continue
		}
		f := reFlags.FindStringSubmatch(l)
		if f == nil {
			continue
		}
		for _, k := range strings.Fields(f[1]) {
			if !strings.HasPrefix(k, `\`) && !a[k] {
				t.Errorf("%s: %q uses %s before any FLAGS announced it (lines %q)", who, l, k, lines)
			}
		}
	}
}

// TestKeywordsAnnouncedFirst: a keyword new to the session is announced
// by FLAGS before the first response that carries it, whoever made it.
func TestKeywordsAnnouncedFirst(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	a.appendRaw("INBOX", "(first)", testMessage("one", "x"))
	a.appendRaw("INBOX", "", testMessage("two", "x"))
	b := loginRaw(t, ts, "alice")
	seen := announced{}
	seen.check(t, "B SELECT", b.ok("SELECT INBOX"))
	if !seen["first"] {
		t.Fatalf("SELECT's FLAGS lacks first: %v", seen)
	}
	a.ok("SELECT INBOX")

	// Another session's STORE.
	a.ok(`STORE 1 +FLAGS ($hello)`)
	lines := b.ok("NOOP")
	seen.check(t, "B NOOP after A's STORE", lines)
	if !seen["$hello"] || !contains(lines, `* 1 FETCH (FLAGS (first $hello \Recent) UID 1)`) {
		t.Errorf("B NOOP after A's STORE: %q", lines)
	}
	if !contains(lines, `* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft first $hello \*)] Flags permitted`) {
		t.Errorf("no PERMANENTFLAGS with the new keyword: %q", lines)
	}
	// The session's own STORE.
	lines = b.ok(`STORE 2 +FLAGS ($Label1)`)
	seen.check(t, "B's own STORE", lines)
	if !seen["$Label1"] {
		t.Errorf("own STORE: %q", lines)
	}
	// Nothing new: no FLAGS again.
	if lines := b.ok(`STORE 2 -FLAGS ($Label1)`); reFlagsResp.MatchString(lines[0]) {
		t.Errorf("FLAGS sent again for a known keyword: %q", lines)
	}
	// APPEND with a keyword, seen by FETCH.
	a.appendRaw("INBOX", "(NIL $Junk)", testMessage("three", "x"))
	lines = b.ok("NOOP")
	seen.check(t, "B NOOP after APPEND", lines)
	lines = b.ok("FETCH 1:* (FLAGS)")
	seen.check(t, "B FETCH after APPEND", lines)
	if !seen["NIL"] || !seen["$Junk"] {
		t.Errorf("APPEND's keywords not announced: %q", lines)
	}
	// COPY with keywords from another mailbox.
	a.ok("CREATE Other")
	a.appendRaw("Other", "(copied)", testMessage("four", "x"))
	a.ok("SELECT Other")
	a.ok("COPY 1 INBOX")
	lines = b.ok("FETCH 1:* (FLAGS)")
	seen.check(t, "B FETCH after COPY", lines)
	lines = b.ok("NOOP")
	seen.check(t, "B NOOP after COPY", lines)
	lines = b.ok("FETCH 1:* (FLAGS)")
	seen.check(t, "B FETCH after COPY", lines)
	if !seen["copied"] {
		t.Errorf("COPY's keyword not announced: %q", lines)
	}

	// Another program: a new letter in dovecot-keywords and a rename.
	dir := ts.mailDir("alice")
	kw, err := os.ReadFile(filepath.Join(dir, "dovecot-keywords"))
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(string(kw), "\n")
	if n >= 26 {
		t.Fatalf("dovecot-keywords full: %q", kw)
	}
	letter := string(rune('a' + n))
	if err := os.WriteFile(filepath.Join(dir, "dovecot-keywords"), append(kw, []byte(strconv.Itoa(n)+" foreign\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(filepath.Join(dir, "cur"))
	if err != nil || len(files) == 0 {
		t.Fatalf("cur/: %v %v", files, err)
	}
	old := files[0].Name()
	name := old
	if !strings.Contains(name, ":2,") {
		name += ":2,"
	}
	if err := os.Rename(filepath.Join(dir, "cur", old), filepath.Join(dir, "cur", name+letter)); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		lines = b.ok("NOOP")
		seen.check(t, "B after the foreign rename", lines)
		if slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, " FETCH (FLAGS (") && strings.Contains(l, "foreign") }) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !seen["foreign"] {
		t.Errorf("foreign keyword not announced: %q", lines)
	}
}
