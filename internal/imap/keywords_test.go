package imap_test

import (
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
	rc.exactly([]string{`* 1 FETCH (FLAGS (\Seen good) UID 1)`}, "UID FETCH 1 (FLAGS)")
}
