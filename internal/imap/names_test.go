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
	if dirs := folderDirs(t, ts); dirs != ".&AKA- .Archive .Drafts .Good .Junk .Sent .Trash" {
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

// TestAppendTryCreate: APPEND, COPY and MOVE to a missing mailbox answer
// NO [TRYCREATE] in Dovecot's words (RFC 9051 §6.3.12, §6.4.7; APPEND
// answered [NONEXISTENT]), and leave no message; a name CREATE would
// refuse (not modified UTF-7, or holding a control character) is NO
// [NONEXISTENT] instead, since creating it cannot help.
func TestAppendTryCreate(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	msg := testMessage("one", "x")
	appendTo := func(mailbox string) string {
		t.Helper()
		tag := rc.send("APPEND %s {%d+}", mailbox, len(msg))
		rc.writeLine(msg)
		_, tagged := rc.until(tag)
		return tagged
	}
	tests := []struct{ mailbox, want string }{
		{"Nowhere", "NO [TRYCREATE] Mailbox doesn't exist: Nowhere"},
		{"Archive.Nowhere", "NO [TRYCREATE] Mailbox doesn't exist: Archive.Nowhere"},
		{`"Gr&APw-e"`, "NO [TRYCREATE] Mailbox doesn't exist: Gr&APw-e"},
		{"&Jjo", "NO [NONEXISTENT] Mailbox name is not valid mUTF-7"},
		{"&AGE-", "NO [NONEXISTENT] Mailbox name is not valid mUTF-7"},
		{`"!#$&'+,-.0"`, "NO [NONEXISTENT] Mailbox name is not valid mUTF-7"},
		{`"&AAA-"`, "NO [NONEXISTENT] No such mailbox"},
		{`"a&AA0ACg-b"`, "NO [NONEXISTENT] No such mailbox"},
	}
	for _, tc := range tests {
		if got := appendTo(tc.mailbox); !strings.HasSuffix(got, " "+tc.want) {
			t.Errorf("APPEND %s: %q, want %q", tc.mailbox, got, tc.want)
		}
	}
	// A synchronizing literal: the NO comes instead of the continuation
	// when the name is no valid encoding, and the session goes on.
	tag := rc.send("APPEND &Jjo {%d}", len(msg))
	if l := rc.line(); l != tag+" NO [NONEXISTENT] Mailbox name is not valid mUTF-7" {
		t.Errorf("APPEND &Jjo with a synchronizing literal: %q", l)
	}
	rc.ok("NOOP")
	if got := appendTo("INBOX"); !strings.Contains(got, "OK [APPENDUID ") {
		t.Fatalf("APPEND INBOX: %q", got)
	}
	rc.selectRaw("INBOX")
	for _, cmd := range []string{"COPY", "MOVE", "UID COPY", "UID MOVE"} {
		for _, tc := range tests {
			if _, tagged := rc.cmd("%s 1 %s", cmd, tc.mailbox); !strings.HasSuffix(tagged, " "+tc.want) {
				t.Errorf("%s 1 %s: %q, want %q", cmd, tc.mailbox, tagged, tc.want)
			}
		}
	}
	if lines := rc.ok("SEARCH ALL"); len(lines) != 1 || lines[0] != "* SEARCH 1" {
		t.Errorf("INBOX after the refused commands: %q", lines)
	}
	entries, err := os.ReadDir(ts.mailDir("alice"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), "Nowhere") || strings.Contains(e.Name(), "Gr") || strings.Contains(e.Name(), "&A") {
			t.Errorf("on disk: %s", e.Name())
		}
	}
}

// TestNamesNotMUTF7: a syntactically valid astring that is not valid
// modified UTF-7 (RFC 3501 §5.1.3) names no mailbox: NO [NONEXISTENT]
// (it was BAD), NO [CANNOT] for the name of a mailbox to make, and as a
// LIST pattern or reference it matches nothing. Dovecot's words.
func TestNamesNotMUTF7(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.ok("CREATE Good")
	const notMUTF7 = "Mailbox name is not valid mUTF-7"
	for _, name := range []string{
		`"!#$&'+,-.0"`, // "&" starting a run that never ends
		"&Jjo",         // no "-"
		"&AGE-",        // "a" in BASE64
		"&Jjo-&Jjo-",   // two adjacent runs
		"&2D0-",        // an unpaired surrogate
		"&Jjp-",        // nonzero padding bits
		"Good.&",
	} {
		nonexistent := "NO [NONEXISTENT] " + notMUTF7
		cannot := "NO [CANNOT] " + notMUTF7
		tests := []struct{ cmd, want string }{
			{"SELECT " + name, nonexistent},
			{"EXAMINE " + name, nonexistent},
			{"STATUS " + name + " (MESSAGES)", nonexistent},
			{"DELETE " + name, nonexistent},
			{"RENAME " + name + " Other", nonexistent},
			{"SUBSCRIBE " + name, nonexistent},
			{"UNSUBSCRIBE " + name, nonexistent},
			{"CREATE " + name, cannot},
			{"RENAME Good " + name, cannot},
		}
		for _, tc := range tests {
			lines, tagged := rc.cmd("%s", tc.cmd)
			if !strings.HasSuffix(tagged, " "+tc.want) || len(lines) != 0 {
				t.Errorf("%s: %q %q, want %q", tc.cmd, lines, tagged, tc.want)
			}
		}
		for _, cmd := range []string{
			`LIST "" ` + name, `LSUB "" ` + name, `LIST "" (` + name + `)`,
			`LIST (SUBSCRIBED) "" ` + name, `LIST ` + name + ` "*"`, `LIST ` + name + ` ""`,
		} {
			if lines := rc.ok("%s", cmd); len(lines) != 0 {
				t.Errorf("%s: %q", cmd, lines)
			}
		}
	}
	// A valid pattern beside an invalid one still matches.
	rc.exactly([]string{`* LIST (\HasNoChildren) "." Good`}, `LIST "" (&Jjo Good)`)
	// "&-" is "&": valid, and such a mailbox can be made.
	rc.ok(`CREATE "A&-B"`)
	rc.exactly([]string{`* LIST (\HasNoChildren) "." A&-B`}, `LIST "" "A&-*"`)
	rc.ok(`SELECT "A&-B"`)
	// A failed SELECT closes the selected mailbox (RFC 3501 §6.3.1), here
	// too.
	lines, tagged := rc.cmd("SELECT &Jjo")
	if len(lines) != 1 || lines[0] != "* OK [CLOSED] Previous mailbox closed" || !strings.HasSuffix(tagged, "NO [NONEXISTENT] "+notMUTF7) {
		t.Errorf("SELECT &Jjo while selected: %q %q", lines, tagged)
	}
	if _, tagged := rc.cmd("FETCH 1 FLAGS"); !strings.Contains(tagged, " BAD ") {
		t.Errorf("FETCH after the failed SELECT: %q", tagged)
	}
	// Still a syntax error: what is no astring.
	for _, cmd := range []string{`SELECT "a`, "SELECT a(b", "CREATE *", "SELECT"} {
		if _, tagged := rc.cmd("%s", cmd); !strings.Contains(tagged, " BAD ") {
			t.Errorf("%s: %q", cmd, tagged)
		}
	}
	// With UTF8=ACCEPT names are UTF-8: bytes that are not are refused
	// alike, in Dovecot's words.
	rc.ok("ENABLE UTF8=ACCEPT")
	rc.writeLine("u1 SELECT {2+}")
	rc.writeLine("\xff\xfe")
	if _, tagged := rc.until("u1"); tagged != "u1 NO [NONEXISTENT] Mailbox name is not valid UTF-8" {
		t.Errorf("SELECT of bytes that are not UTF-8: %q", tagged)
	}
	rc.writeLine("u2 CREATE {2+}")
	rc.writeLine("\xff\xfe")
	if _, tagged := rc.until("u2"); tagged != "u2 NO [CANNOT] Mailbox name is not valid UTF-8" {
		t.Errorf("CREATE of bytes that are not UTF-8: %q", tagged)
	}
	if dirs := folderDirs(t, ts); dirs != ".A&-B .Archive .Drafts .Good .Junk .Sent .Trash" {
		t.Errorf("folders on disk: %q", dirs)
	}
}

// folderDirs lists the folder directories of alice's Maildir, sorted and
// joined by spaces.
func folderDirs(t *testing.T, ts *testServer) string {
	t.Helper()
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
	return strings.Join(dirs, " ")
}
