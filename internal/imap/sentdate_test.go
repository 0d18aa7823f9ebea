package imap_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestSearchSentImpossibleDate: a Date: field naming a day that does not
// exist is unreadable, never rolled over into another day (31 Feb 1994
// is not 3 Mar 1994). SENT* treat such a message as Dovecot treats one
// without a usable Date:, as sent on 1-Jan-1970 (UTC); ENVELOPE still
// gives the field as written; and a client's own impossible date, in
// SEARCH or APPEND, is BAD.
func TestSearchSentImpossibleDate(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	dates := []string{
		"Mon, 31 Feb 1994 08:00:00 +0000", // 1
		"Wed, 30 Feb 1994 08:00:00 +0000", // 2
		"Tue, 29 Feb 1994 08:00:00 +0000", // 3: 1994 is no leap year
		"Tue, 1 Mar 1994 25:00:00 +0000",  // 4
		"Tue, 1 Mar 1994 08:61:00 +0000",  // 5
		"Tue, 0 Mar 1994 08:00:00 +0000",  // 6
		"Thu, 3 Mar 1994 08:00:00 +0000",  // 7: a real date
		"",                                // 8: no Date: field
		"Tue, 1 Mar 1994 24:00:00 +0000",  // 9: would be 2 Mar
	}
	for i, d := range dates {
		msg := fmt.Sprintf("From: a@example.org\r\nSubject: %d\r\n\r\nbody\r\n", i+1)
		if d != "" {
			msg = "Date: " + d + "\r\n" + msg
		}
		rc.appendRaw("INBOX", "", msg)
	}
	rc.selectRaw("INBOX")
	for _, tt := range []struct{ key, want string }{
		{"SENTON 3-Mar-1994", "* SEARCH 7"},
		{"SENTON 2-Mar-1994", "* SEARCH"},
		{"SENTON 1-Mar-1994", "* SEARCH"},
		{"SENTON 1-Jan-1970", "* SEARCH 1 2 3 4 5 6 8 9"},
		{"SENTBEFORE 1-Jan-1994", "* SEARCH 1 2 3 4 5 6 8 9"},
		{"SENTBEFORE 2-Jan-1970", "* SEARCH 1 2 3 4 5 6 8 9"},
		{"SENTBEFORE 1-Jan-1970", "* SEARCH"},
		{"SENTSINCE 2-Jan-1970", "* SEARCH 7"},
		{"SENTSINCE 1-Jan-1970", "* SEARCH 1 2 3 4 5 6 7 8 9"},
		{"NOT SENTON 1-Jan-1970", "* SEARCH 7"},
	} {
		rc.exactly([]string{tt.want}, "SEARCH %s", tt.key)
	}
	lines := rc.ok("FETCH 1 (ENVELOPE)")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `* 1 FETCH (ENVELOPE ("Mon, 31 Feb 1994 08:00:00 +0000" "1" `) {
		t.Errorf("ENVELOPE: %q", lines)
	}

	for _, cmd := range []string{"SEARCH SENTON 31-Feb-1994", "SEARCH SENTBEFORE 29-Feb-1994", "SEARCH ON 30-Feb-2000"} {
		if _, tagged := rc.cmd(cmd); !strings.Contains(tagged, " BAD ") {
			t.Errorf("%s: %s", cmd, tagged)
		}
	}
	msg := "Subject: x\r\n\r\ny\r\n"
	tag := rc.send(`APPEND INBOX "31-Feb-1994 08:00:00 +0000" {%d+}`+"\r\n%s", len(msg), msg)
	if _, tagged := rc.until(tag); !strings.HasPrefix(tagged, tag+" BAD ") {
		t.Errorf("APPEND with 31-Feb-1994: %s", tagged)
	}
	rc.exactly([]string{"* STATUS INBOX (MESSAGES 9)"}, "STATUS INBOX (MESSAGES)")
}
