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
