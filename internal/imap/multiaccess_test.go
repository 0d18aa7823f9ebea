package imap_test

import (
	"slices"
	"strings"
	"testing"
)

// Commands on messages another session expunged, the session not told
// yet (RFC 2180 §4). setupTwoSessions gives A and B INBOX with UIDs
// 1–5, 2 and 4 \Deleted; A's EXPUNGE removes them, and B's view still
// holds them at sequence numbers 2 and 4.

// TestCopyExpungedMessage: a COPY naming an expunged message copies
// nothing and answers NO [EXPUNGEISSUED], with the pending EXPUNGEs
// (RFC 2180 §4.4.1, as Dovecot); by sequence number and by UID.
func TestCopyExpungedMessage(t *testing.T) {
	for _, cmd := range []string{"COPY 1:3 Other", "UID COPY 1:3 Other", "MOVE 1:3 Other", "UID MOVE 1:3 Other"} {
		t.Run(cmd, func(t *testing.T) {
			ts := startServer(t)
			a, b, _ := setupTwoSessions(t, ts)
			a.ok("EXPUNGE")
			lines, tagged := b.cmd("%s", cmd)
			if !strings.Contains(tagged, " NO [EXPUNGEISSUED] ") {
				t.Errorf("%s: %s, want NO [EXPUNGEISSUED]", cmd, tagged)
			}
			if want := []string{"* 4 EXPUNGE", "* 2 EXPUNGE"}; !slices.Equal(lines, want) {
				t.Errorf("%s: untagged %q, want the pending %q", cmd, lines, want)
			}
			if lines := b.ok("STATUS Other (MESSAGES)"); !contains(lines, "* STATUS Other (MESSAGES 1)") {
				t.Errorf("Other after the failed %s: %q, want its one message only", cmd, lines)
			}
			// Told of the expunges, the session copies what is left.
			if _, tagged := b.cmd("COPY 1:2 Other"); !strings.Contains(tagged, " OK [COPYUID ") {
				t.Errorf("COPY 1:2 after the EXPUNGEs: %s", tagged)
			}
		})
	}
}

// TestCopyAnnouncesExpunges: a COPY by sequence number announces the
// pending EXPUNGEs: RFC 2180 §4.4 requires it ("Pending EXPUNGE
// response(s) MUST be returned to the COPY command"); RFC 9051 §7.5.1
// forbids them only during FETCH, STORE and SEARCH.
func TestCopyAnnouncesExpunges(t *testing.T) {
	ts := startServer(t)
	a, b, _ := setupTwoSessions(t, ts)
	a.ok("UID EXPUNGE 4")
	lines, tagged := b.cmd("COPY 1 Other")
	if !strings.Contains(tagged, " OK [COPYUID ") {
		t.Fatalf("COPY 1: %s", tagged)
	}
	if !slices.Equal(lines, []string{"* 4 EXPUNGE"}) {
		t.Errorf("COPY 1: untagged %q, want the pending \"* 4 EXPUNGE\"", lines)
	}
}

// TestStoreExpungedMessage: RFC 2180 §4.2. Without .SILENT, a STORE by
// sequence number that names an expunged message answers NO
// [EXPUNGEISSUED], after the FETCHes of the messages it did change
// (§4.2.2, §4.2.3), and no EXPUNGE; with .SILENT it answers OK (§4.2.1);
// UID STORE ignores the UIDs that are gone (RFC 9051 §6.4.9) and
// announces the EXPUNGE.
func TestStoreExpungedMessage(t *testing.T) {
	cases := []struct {
		cmd       string
		no        bool
		untagged  []string
		flaggedOK []uint32 // UIDs that must end up \Flagged
	}{
		{`STORE 2 +FLAGS (\Flagged)`, true, nil, nil},
		{`STORE 1:3 +FLAGS (\Flagged)`, true, []string{`* 1 FETCH (FLAGS (\Flagged) UID 1)`, `* 3 FETCH (FLAGS (\Flagged) UID 3)`}, []uint32{1, 3}},
		{`STORE 1:3 +FLAGS.SILENT (\Flagged)`, false, nil, []uint32{1, 3}},
		{`UID STORE 1:3 +FLAGS (\Flagged)`, false, []string{`* 1 FETCH (FLAGS (\Flagged) UID 1)`, `* 3 FETCH (FLAGS (\Flagged) UID 3)`, "* 4 EXPUNGE", "* 2 EXPUNGE"}, []uint32{1, 3}},
	}
	for _, tc := range cases {
		t.Run(tc.cmd, func(t *testing.T) {
			ts := startServer(t)
			a, b, _ := setupTwoSessions(t, ts)
			a.ok("EXPUNGE")
			lines, tagged := b.cmd("%s", tc.cmd)
			if got := strings.Contains(tagged, " NO [EXPUNGEISSUED] "); got != tc.no || !tc.no && !strings.Contains(tagged, " OK ") {
				t.Errorf("%s: %s, want NO [EXPUNGEISSUED]: %v", tc.cmd, tagged, tc.no)
			}
			if !slices.Equal(lines, tc.untagged) {
				t.Errorf("%s: untagged %q, want %q", tc.cmd, lines, tc.untagged)
			}
			m := truth(t, ts)
			for i, u := range m.uids {
				if got, want := slices.Contains(m.flags[i], `\Flagged`), slices.Contains(tc.flaggedOK, u); got != want {
					t.Errorf("after %s: UID %d has flags %v, want \\Flagged: %v", tc.cmd, u, m.flags[i], want)
				}
			}
		})
	}
}

// TestSelectedStateRules pins answers that a line-by-line read of RFC
// 9051 §6.3–§6.4 found right, each as Dovecot gives it: EXAMINE's
// PERMANENTFLAGS are empty (§6.3.3); SELECT from the selected state
// says OK [CLOSED] first, also when it fails, which leaves no mailbox
// selected (§6.3.2, §7.1); CLOSE of a read-only mailbox expunges
// nothing (§6.4.1); LOGOUT says BYE before its tagged OK (§6.1.3).
func TestSelectedStateRules(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.appendRaw("INBOX", `(\Deleted)`, testMessage("deleted", "text"))
	if lines := rc.ok("EXAMINE INBOX"); !contains(lines, "* OK [PERMANENTFLAGS ()] Read-only mailbox") {
		t.Errorf("EXAMINE: %q, want PERMANENTFLAGS ()", lines)
	}
	if lines := rc.ok("CLOSE"); len(lines) != 0 {
		t.Errorf("CLOSE of a read-only mailbox: untagged %q", lines)
	}
	lines := rc.ok("SELECT INBOX")
	if !contains(lines, "* 1 EXISTS") || contains(lines, "* OK [CLOSED] Previous mailbox closed") {
		t.Errorf("SELECT after CLOSE of EXAMINE: %q, want the \\Deleted message kept and no CLOSED", lines)
	}
	lines, tagged := rc.cmd("SELECT Nonexistent")
	if !slices.Equal(lines, []string{"* OK [CLOSED] Previous mailbox closed"}) || !strings.Contains(tagged, " NO [NONEXISTENT] ") {
		t.Errorf("SELECT of a missing mailbox from the selected state: %q %s", lines, tagged)
	}
	if _, tagged := rc.cmd("FETCH 1 UID"); !strings.Contains(tagged, " BAD ") {
		t.Errorf("FETCH after a failed SELECT: %s, want BAD (no mailbox selected)", tagged)
	}
	lines, tagged = rc.cmd("LOGOUT")
	if !slices.Equal(lines, []string{"* BYE Logging out"}) || !strings.Contains(tagged, " OK ") {
		t.Errorf("LOGOUT: %q %s", lines, tagged)
	}
}
