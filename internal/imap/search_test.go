package imap_test

import (
	"fmt"
	"strings"
	"testing"
)

// setupSearch logs alice in, appends five messages to INBOX (UIDs 1-5;
// 2 and 4 flagged) and selects it.
func setupSearch(t *testing.T) *rawClient {
	t.Helper()
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	for i := 1; i <= 5; i++ {
		flags := ""
		if i%2 == 0 {
			flags = `(\Flagged)`
		}
		if uid := rc.appendRaw("INBOX", flags, testMessage(fmt.Sprintf("msg %d", i), "body")); uid != uint32(i) {
			t.Fatalf("APPEND gave UID %d, want %d", uid, i)
		}
	}
	rc.selectRaw("INBOX")
	return rc
}

// exactly fails unless the command's untagged lines are want.
func (rc *rawClient) exactly(want []string, format string, args ...any) {
	rc.t.Helper()
	got := rc.ok(format, args...)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		rc.t.Fatalf("%s:\n got %q\nwant %q", fmt.Sprintf(format, args...), got, want)
	}
}

// RFC 4731 §3.1.
func TestESearch(t *testing.T) {
	rc := setupSearch(t)
	rc.ok("STORE 1 +FLAGS (\\Flagged)") // flagged: 1, 2, 4
	tests := []struct {
		name, cmd string
		want      string // the ESEARCH line without "* ESEARCH (TAG "aN")"
	}{
		{"all options", "SEARCH RETURN (MIN MAX ALL COUNT) FLAGGED", " MIN 1 MAX 4 ALL 1:2,4 COUNT 3"},
		{"uid", "UID SEARCH RETURN (MIN MAX ALL COUNT) FLAGGED", " UID MIN 1 MAX 4 ALL 1:2,4 COUNT 3"},
		{"empty list means ALL", "SEARCH RETURN () FLAGGED", " ALL 1:2,4"},
		{"count only", "SEARCH RETURN (COUNT) ALL", " COUNT 5"},
		{"option order ignored", "SEARCH RETURN (COUNT MIN) FLAGGED", " MIN 1 COUNT 3"},
		{"lower case", "search return (max) flagged", " MAX 4"},
		{"no match: count 0", "SEARCH RETURN (MIN MAX ALL COUNT) SUBJECT nothing-like-this", " COUNT 0"},
		{"no match: nothing", "UID SEARCH RETURN (MIN MAX ALL) SUBJECT nothing-like-this", " UID"},
		{"charset", "SEARCH RETURN (ALL) CHARSET UTF-8 SUBJECT msg", " ALL 1:5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc.t = t
			tag := fmt.Sprintf("a%d", rc.n+1)
			rc.exactly([]string{`* ESEARCH (TAG "` + tag + `")` + tt.want}, "%s", tt.cmd)
		})
	}
	rc.t = t
	// Without RETURN, the answer stays "* SEARCH".
	rc.exactly([]string{"* SEARCH 1 2 4"}, "SEARCH FLAGGED")
	// Errors: an unknown option is BAD, a bad charset NO.
	if _, tagged := rc.cmd("SEARCH RETURN (FROB) ALL"); !strings.Contains(tagged, " BAD ") {
		t.Fatalf("unknown RETURN option: %s", tagged)
	}
	if _, tagged := rc.cmd("SEARCH RETURN (ALL) CHARSET KOI8-R ALL"); !strings.Contains(tagged, " NO [BADCHARSET") {
		t.Fatalf("bad charset: %s", tagged)
	}
	if lines := rc.ok("CAPABILITY"); !strings.Contains(lines[0], " ESEARCH") {
		t.Fatalf("ESEARCH not advertised: %q", lines)
	}
}

// RFC 5182.
func TestSearchRes(t *testing.T) {
	rc := setupSearch(t) // flagged: UIDs 2, 4
	// SAVE alone sends no ESEARCH and no SEARCH.
	rc.exactly(nil, "SEARCH RETURN (SAVE) FLAGGED")
	rc.exactly([]string{`* 2 FETCH (UID 2)`, `* 4 FETCH (UID 4)`}, "FETCH $ (UID)")
	rc.exactly([]string{`* SEARCH 2 4`}, "UID SEARCH UID $")
	rc.exactly([]string{`* SEARCH 4`}, "SEARCH $ SUBJECT \"msg 4\"")
	rc.exactly([]string{`* 2 FETCH (FLAGS (\Flagged \Seen \Recent) UID 2)`, `* 4 FETCH (FLAGS (\Flagged \Seen \Recent) UID 4)`}, `UID STORE $ +FLAGS (\Seen)`)

	// SAVE with other options answers them too; MIN alone saves the
	// minimum only (RFC 5182 §2.4).
	tag := fmt.Sprintf("a%d", rc.n+1)
	rc.exactly([]string{`* ESEARCH (TAG "` + tag + `") UID MIN 2`}, "UID SEARCH RETURN (SAVE MIN) FLAGGED")
	rc.exactly([]string{`* SEARCH 2`}, "UID SEARCH UID $")
	rc.ok("SEARCH RETURN (SAVE MIN MAX) ALL")
	rc.exactly([]string{`* SEARCH 1 5`}, "UID SEARCH UID $")
	tag = fmt.Sprintf("a%d", rc.n+1)
	rc.exactly([]string{`* ESEARCH (TAG "` + tag + `") MIN 1 COUNT 5`}, "SEARCH RETURN (SAVE MIN COUNT) ALL")
	rc.exactly([]string{`* SEARCH 1 2 3 4 5`}, "UID SEARCH UID $")

	// A sequence-number SEARCH saves UIDs: after an expunge "$" still
	// names the same messages, less the expunged ones.
	rc.ok("SEARCH RETURN (SAVE) SUBJECT \"msg 3\"")
	rc.ok("UID SEARCH RETURN (SAVE) UID 3:5")
	rc.ok(`UID STORE 4 +FLAGS.SILENT (\Deleted)`)
	rc.exactly([]string{"* 4 EXPUNGE", "* 4 RECENT"}, "EXPUNGE")
	rc.exactly([]string{`* 3 FETCH (UID 3)`, `* 4 FETCH (UID 5)`}, "FETCH $ (UID)")

	// COPY and MOVE take "$".
	rc.ok("CREATE Saved")
	rc.ok("COPY $ Saved")
	rc.ok("SEARCH RETURN (SAVE) UID 1")
	if lines := rc.ok("MOVE $ Saved"); !contains(lines, "* 1 EXPUNGE") {
		t.Fatalf("MOVE $: %q", lines)
	}
	st := rc.ok("STATUS Saved (MESSAGES)")
	if len(st) != 1 || st[0] != "* STATUS Saved (MESSAGES 3)" {
		t.Fatalf("after COPY and MOVE of $: %q", st)
	}

	// A SEARCH with SAVE answered NO empties the result; one answered
	// BAD leaves it.
	rc.ok("UID SEARCH RETURN (SAVE) ALL") // UIDs 2 3 5
	if _, tagged := rc.cmd("SEARCH RETURN (SAVE FROB) ALL"); !strings.Contains(tagged, " BAD ") {
		t.Fatalf("bad option: %s", tagged)
	}
	rc.exactly([]string{`* SEARCH 2 3 5`}, "UID SEARCH UID $")
	if _, tagged := rc.cmd("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL"); !strings.Contains(tagged, " NO ") {
		t.Fatalf("bad charset: %s", tagged)
	}
	rc.exactly([]string{`* SEARCH`}, "UID SEARCH UID $")
	rc.exactly(nil, "FETCH $ (UID)")

	// SELECT, EXAMINE, CLOSE and UNSELECT reset it.
	for _, leave := range []string{"SELECT INBOX", "EXAMINE INBOX", "CLOSE", "UNSELECT"} {
		rc.ok("SEARCH RETURN (SAVE) ALL")
		rc.ok("%s", leave)
		if leave == "CLOSE" || leave == "UNSELECT" {
			rc.ok("SELECT INBOX")
		}
		rc.exactly([]string{`* SEARCH`}, "SEARCH $")
	}
	if lines := rc.ok("CAPABILITY"); !strings.Contains(lines[0], " SEARCHRES") {
		t.Fatalf("SEARCHRES not advertised: %q", lines)
	}
}

// TestSearchPastTheEnd: in a SEARCH key, sequence numbers past the end
// name no message, as Dovecot's: "SEARCH 1000" with 6 messages is OK and
// empty (it was BAD), with RETURN, MIN/MAX/COUNT and UID alike; "*" is
// the largest number in use, so "10:*" is 6:10 and holds message 6 (RFC
// 9051 §9, seq-range). FETCH, STORE and COPY of such numbers stay BAD
// (Dovecot: "Invalid messageset"); so does any set in an empty mailbox,
// where SEARCH is OK and empty.
func TestSearchPastTheEnd(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	for i := 1; i <= 6; i++ {
		rc.appendRaw("INBOX", "", testMessage(fmt.Sprintf("msg %d", i), "body"))
	}
	rc.ok("CREATE Empty")
	rc.selectRaw("INBOX")
	esearch := func(rest string) []string {
		return []string{fmt.Sprintf(`* ESEARCH (TAG "a%d")%s`, rc.n+1, rest)}
	}
	tests := []struct {
		cmd  string
		want func() []string
	}{
		{"SEARCH 1000", func() []string { return []string{"* SEARCH"} }},
		{"SEARCH 7", func() []string { return []string{"* SEARCH"} }},
		{"SEARCH 10:*", func() []string { return []string{"* SEARCH 6"} }},
		{"SEARCH *:10", func() []string { return []string{"* SEARCH 6"} }},
		{"SEARCH 5:1000", func() []string { return []string{"* SEARCH 5 6"} }},
		{"SEARCH 1000,2,7:8", func() []string { return []string{"* SEARCH 2"} }},
		{"SEARCH NOT 1000", func() []string { return []string{"* SEARCH 1 2 3 4 5 6"} }},
		{"SEARCH OR 1000 3", func() []string { return []string{"* SEARCH 3"} }},
		{"SEARCH 1000 SUBJECT msg", func() []string { return []string{"* SEARCH"} }},
		{"UID SEARCH 1000", func() []string { return []string{"* SEARCH"} }},
		{"UID SEARCH 4:1000", func() []string { return []string{"* SEARCH 4 5 6"} }},
		{"UID SEARCH UID 1000:2000", func() []string { return []string{"* SEARCH"} }},
		{"UID SEARCH UID 5:1000", func() []string { return []string{"* SEARCH 5 6"} }},
		{"SEARCH UID 1000:*", func() []string { return []string{"* SEARCH 6"} }},
		{"SEARCH RETURN () 1000", func() []string { return esearch("") }},
		{"SEARCH RETURN (MIN MAX COUNT) 1000", func() []string { return esearch(" COUNT 0") }},
		{"SEARCH RETURN (MIN MAX COUNT) 905:*", func() []string { return esearch(" MIN 6 MAX 6 COUNT 1") }},
		{"UID SEARCH RETURN (MIN MAX COUNT) 1000", func() []string { return esearch(" UID COUNT 0") }},
		{"UID SEARCH RETURN (MIN MAX ALL) UID 900:1000", func() []string { return esearch(" UID") }},
		{"UID SEARCH RETURN (ALL) UID 3:1000", func() []string { return esearch(" UID ALL 3:6") }},
	}
	for _, tc := range tests {
		rc.exactly(tc.want(), "%s", tc.cmd)
	}
	for _, cmd := range []string{"FETCH 1000 FLAGS", "FETCH 7 FLAGS", "FETCH 10:* FLAGS", "STORE 1000 +FLAGS (x)", "COPY 7 INBOX", "MOVE 5:7 Empty"} {
		if lines, tagged := rc.cmd("%s", cmd); !strings.Contains(tagged, " BAD ") || len(lines) != 0 {
			t.Errorf("%s: %q %q", cmd, lines, tagged)
		}
	}
	rc.selectRaw("Empty")
	for _, tc := range []struct{ cmd, want string }{
		{"SEARCH 1:*", "* SEARCH"},
		{"SEARCH *", "* SEARCH"},
		{"SEARCH 1", "* SEARCH"},
		{"UID SEARCH 1:*", "* SEARCH"},
		{"UID SEARCH UID 1:*", "* SEARCH"},
		{"SEARCH NOT 1:*", "* SEARCH"},
	} {
		rc.exactly([]string{tc.want}, "%s", tc.cmd)
	}
	rc.exactly(esearch(" COUNT 0"), "SEARCH RETURN (COUNT) 1:*")
	for _, cmd := range []string{"FETCH 1:* FLAGS", "STORE 1:* +FLAGS (x)", "COPY * INBOX"} {
		if lines, tagged := rc.cmd("%s", cmd); !strings.Contains(tagged, " BAD ") || len(lines) != 0 {
			t.Errorf("%s in an empty mailbox: %q %q", cmd, lines, tagged)
		}
	}
}
