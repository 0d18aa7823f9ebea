package imap_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A keyword name in dovecot-keywords that is no IMAP atom (another
// program wrote it) is never sent: its letter stays unnamed, while the
// good names of the file are served.
func TestKeywordNamesThatAreNoAtoms(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.appendRaw("INBOX", `(\Seen)`, testMessage("one", "x"))
	dir := ts.mailDir("alice")
	if err := os.WriteFile(filepath.Join(dir, "dovecot-keywords"), []byte("0 a b\n1 good\n2 x)y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(dir, "cur")
	ents, err := os.ReadDir(cur)
	if err != nil || len(ents) != 1 {
		t.Fatalf("cur/: %v %v", ents, err)
	}
	name := ents[0].Name()
	if err := os.Rename(filepath.Join(cur, name), filepath.Join(cur, name+"abc")); err != nil {
		t.Fatal(err)
	}
	lines := rc.ok("SELECT INBOX")
	var flags string
	for _, l := range lines {
		if strings.HasPrefix(l, "* FLAGS ") {
			flags = l
		}
	}
	if want := `* FLAGS (\Answered \Flagged \Deleted \Seen \Draft good)`; flags != want {
		t.Errorf("got %q, want %q", flags, want)
	}
	rc.exactly([]string{`* 1 FETCH (FLAGS (\Seen good \Recent) UID 1)`}, "UID FETCH 1 (FLAGS)")
}

// TestRefusedKeywordsChangeNothing: a STORE or APPEND naming more new
// keywords than the mailbox has letters left answers NO [LIMIT] and
// leaves dovecot-keywords as it was (it used to fill all 26 letters
// for good), so that a later STORE of one new keyword still succeeds.
// A COPY into a mailbox without room for a keyword copies the message
// without it.
func TestRefusedKeywordsChangeNothing(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.appendRaw("INBOX", "(first)", testMessage("one", "x"))
	rc.ok("SELECT INBOX")
	kwFile := filepath.Join(ts.mailDir("alice"), "dovecot-keywords")
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(kwFile)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	before := read()
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("kw%d", i)
	}
	for _, cmd := range []string{
		"STORE 1 +FLAGS (" + strings.Join(many, " ") + ")",
		"UID STORE 1 FLAGS (" + strings.Join(many[:26], " ") + ")",
		"STORE 1 +FLAGS.SILENT (first " + strings.Join(many[100:126], " ") + ")",
	} {
		if _, tagged := rc.cmd("%s", cmd); !strings.Contains(tagged, "NO [LIMIT]") {
			t.Errorf("%.40s...: %q, want NO [LIMIT]", cmd, tagged)
		}
		if after := read(); after != before {
			t.Fatalf("%.40s... refused, but dovecot-keywords changed:\n%s\nwas\n%s", cmd, after, before)
		}
	}
	msg := testMessage("two", "y")
	tag := rc.send("APPEND INBOX ("+strings.Join(many[200:230], " ")+") {%d+}\r\n%s", len(msg), msg)
	if _, tagged := rc.until(tag); !strings.Contains(tagged, "NO [LIMIT]") {
		t.Errorf("APPEND with 30 new keywords: %q", tagged)
	}
	if after := read(); after != before {
		t.Fatalf("APPEND refused, but dovecot-keywords changed:\n%s", after)
	}
	// late is new to the session: FLAGS tells it first (flags.go).
	rc.exactly([]string{
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft first late)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft first late \*)] Flags permitted`,
		`* 1 FETCH (FLAGS (first late \Recent) UID 1)`,
	}, "UID STORE 1 +FLAGS (late)")
	rc.exactly([]string{`* 1 FETCH (FLAGS (first late \Recent) UID 1)`}, "UID FETCH 1:* (FLAGS)")

	// 25 of the 26 letters in use: a STORE of two new ones is refused,
	// one is done.
	rc.ok("STORE 1 +FLAGS.SILENT (%s)", strings.Join(many[300:323], " "))
	before = read()
	if _, tagged := rc.cmd("STORE 1 +FLAGS (x1 x2)"); !strings.Contains(tagged, "NO [LIMIT]") {
		t.Errorf("two new keywords with one letter left: %q", tagged)
	}
	if after := read(); after != before {
		t.Fatalf("refused STORE changed dovecot-keywords:\n%s", after)
	}
	rc.ok("STORE 1 +FLAGS.SILENT (x2)")
	if !strings.Contains(read(), "x2") {
		t.Errorf("x2 not in dovecot-keywords:\n%s", read())
	}

	// COPY is never refused for want of letters: the copy lacks the
	// keywords the target has no room for.
	rc.ok("CREATE Full")
	rc.appendRaw("Full", "("+strings.Join(many[400:426], " ")+")", testMessage("full", "z"))
	rc.ok("COPY 1 Full")
	rc.ok("EXAMINE Full")
	rc.exactly([]string{
		`* 1 FETCH (FLAGS (` + strings.Join(many[400:426], " ") + ` \Recent) UID 1)`,
		`* 2 FETCH (FLAGS (\Recent) UID 2)`,
	}, "UID FETCH 1:* (FLAGS)")
}
