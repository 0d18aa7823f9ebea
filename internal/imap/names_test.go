package imap_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/maildir"
)

// TestControlCharacterNamesRefused: a name holding a control character
// once decoded (modified UTF-7, or a UTF8=ACCEPT literal) is refused by
// CREATE, RENAME and SUBSCRIBE, NO [CANNOT] naming the character, and
// nothing reaches the disk ("&AAA-" made a folder named NUL; "&AA0ACg-"
// one whose name holds CR LF).
func TestControlCharacterNamesRefused(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.ok("CREATE Good")
	tests := []struct {
		cmd, char string
	}{
		{`CREATE "&AAA-"`, "U+0000"},
		{`CREATE "a&AA0ACg-* BYE"`, "U+000D"},
		{`CREATE "Good.&AB8-"`, "U+001F"},
		{`CREATE "x&AH8-"`, "U+007F"},
		{`CREATE "&AIU-"`, "U+0085"},
		{`CREATE "&AJ8-"`, "U+009F"},
		{`RENAME Good "&AAA-"`, "U+0000"},
		{`RENAME Good "Good&AAo-"`, "U+000A"},
		{`SUBSCRIBE "&AA0ACg-"`, "U+000D"},
	}
	for _, tc := range tests {
		_, tagged := rc.cmd("%s", tc.cmd)
		want := "NO [CANNOT] New mailbox name contains forbidden character (" + tc.char + ")"
		if !strings.HasSuffix(tagged, want) {
			t.Errorf("%s: %q, want %q", tc.cmd, tagged, want)
		}
	}
	// Still allowed: names whose characters are not controls.
	rc.ok(`CREATE "&AKA-"`) // U+00A0
	rc.ok("ENABLE UTF8=ACCEPT")
	rc.writeLine("u1 CREATE {10+}")
	rc.writeLine("a\r\n* BYE x")
	if _, tagged := rc.until("u1"); !strings.Contains(tagged, "NO [CANNOT] New mailbox name contains forbidden character (U+000D)") {
		t.Errorf("CREATE of a UTF8=ACCEPT literal holding CR LF: %q", tagged)
	}
	rc.writeLine("u2 CREATE \"b\u0085\"")
	if _, tagged := rc.until("u2"); !strings.Contains(tagged, "(U+0085)") {
		t.Errorf("CREATE of a UTF-8 name holding U+0085: %q", tagged)
	}
	entries, err := os.ReadDir(ts.mailDir("alice"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			dirs = append(dirs, e.Name())
		}
	}
	if strings.Join(dirs, " ") != ".&AKA- .Archive .Drafts .Good .Junk .Sent .Trash" {
		t.Errorf("folders on disk: %q", dirs)
	}
	subs, err := maildir.ReadSubscriptions(ts.mailDir("alice"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if strings.Contains(s, "&AA0") {
			t.Errorf("subscribed: %q", s)
		}
	}
}

// TestControlCharacterNamesOnDisk: folders another program made whose
// names hold control characters (in modified UTF-7, or as raw bytes),
// and such subscriptions, are skipped by LIST, LSUB and LIST-STATUS and
// logged; STATUS and SELECT find no such mailbox.
func TestControlCharacterNamesOnDisk(t *testing.T) {
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ts := startServerWith(t, t.TempDir(), store.Options{Logger: logger}, func(s *imap.Server) {
		s.Logger = logger
	})
	rc := loginRaw(t, ts, "alice") // makes the account
	root := ts.mailDir("alice")
	for _, p := range [][]string{{"&AAA-"}, {"a&AA0ACg-* BYE"}, {"Ok"}, {"Ok", "&AIU-"}} {
		if err := maildir.CreateFolder(root, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, raw := range []string{".raw\u0085c1", ".raw\x01c0"} {
		for _, sub := range []string{"", "cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(root, raw, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := maildir.WriteSubscriptions(root, []string{"INBOX", "Ok", "&AAA-", "gone&AA0ACg-x"}); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{`LIST "" "*"`, `LSUB "" "*"`, `LIST (SUBSCRIBED) "" "*"`, `LIST "" "*" RETURN (STATUS (MESSAGES))`} {
		for _, l := range rc.ok("%s", cmd) {
			if strings.Contains(l, "&A") || strings.Contains(l, "raw") || strings.Contains(l, "BYE") {
				t.Errorf("%s lists %q", cmd, l)
			}
		}
	}
	if lines := rc.ok(`LIST "" "Ok*"`); len(lines) != 1 || !strings.Contains(lines[0], " Ok") {
		t.Errorf(`LIST "" "Ok*": %q`, lines)
	}
	for _, cmd := range []string{`STATUS "&AAA-" (MESSAGES)`, `SELECT "&AAA-"`, `EXAMINE "Ok.&AIU-"`, `DELETE "&AAA-"`} {
		if _, tagged := rc.cmd("%s", cmd); !strings.Contains(tagged, "NO [NONEXISTENT]") {
			t.Errorf("%s: %q", cmd, tagged)
		}
	}
	rc.ok("ENABLE UTF8=ACCEPT")
	for _, l := range rc.ok(`LIST "" "*"`) {
		if strings.ContainsAny(l, "\x00\r\n\u0085\x01") || strings.Contains(l, "BYE") {
			t.Errorf("LIST with UTF8=ACCEPT lists %q", l)
		}
	}
	out := logs.String()
	for _, want := range []string{
		`msg="LIST: a mailbox whose name holds a control character is not listed" session=`,
		`mailbox="\x00"`, `mailbox="a\r\n* BYE"`, `mailbox="Ok.\u0085"`, `mailbox="gone\r\nx"`,
		`msg="a directory whose name is no folder name is not listed"`, `dir=".raw\u0085c1"`, `dir=".raw\x01c0"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
}
