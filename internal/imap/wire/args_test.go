package wire

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
)

func TestMailbox(t *testing.T) {
	tests := []struct {
		in   string
		utf8 bool
		want string
		ok   bool
	}{
		{"INBOX", false, "INBOX", true},
		{"inbox", false, "INBOX", true},
		{`"InBoX"`, false, "INBOX", true},
		{"INBOX.Sent", false, "INBOX.Sent", true},
		{"inbox/sub", false, "inbox/sub", true},
		{"~peter/mail/&U,BTFw-/&ZeVnLIqe-", false, "~peter/mail/台北/日本語", true},
		{`"A &- B"`, false, "A & B", true},
		{"&Jjo-!", false, "☺!", true},
		{"a&b", false, "", false},                // unterminated shift
		{"&AGE-", false, "", false},              // "a" must represent itself
		{"&U,BTFw-&ZeVnLIqe-", false, "", false}, // adjacent runs are one run
		{`"Grüße"`, false, "", false},            // 8-bit is not mUTF-7
		{`"Grüße"`, true, "Grüße", true},         // UTF8=ACCEPT
		{"&U,BTFw-", true, "&U,BTFw-", true},     // not decoded in UTF-8 mode
		{"{2}\r\n\xff\xfe", true, "", false},
		{"{5}\r\ninbox", false, "INBOX", true},
		{"*", false, "", false},
		{"%", false, "", false},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in+"\r\n", Limits{})
		got, err := d.Mailbox(tt.utf8)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("Mailbox(%q, utf8=%v) = %q, %v; want %q ok=%v", tt.in, tt.utf8, got, err, tt.want, tt.ok)
		}
	}
}

// TestMailboxNameError: an astring that is no valid encoding of a name
// is a *NameError (the server answers NO), read whole so that the rest
// of the command follows; what is no astring stays a syntax error (BAD).
func TestMailboxNameError(t *testing.T) {
	tests := []struct {
		in      string
		utf8    bool
		list    bool // ListMailbox rather than Mailbox
		nameErr bool // *NameError; else *Error
	}{
		{"a&b", false, false, true},
		{"&AGE-", false, false, true},
		{`"!#$&'+,-.0"`, false, false, true},
		{"{4}\r\n&Jjo", false, false, true},
		{"{2}\r\n\xff\xfe", true, false, true},
		{"&Jjo", false, true, true},
		{`"&Jjo*"`, false, true, true},
		{`"a`, false, false, false},
		{"*", false, false, false},
		{"(x", false, true, false},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in+" rest\r\n", Limits{})
		var err error
		if tt.list {
			_, err = d.ListMailbox(tt.utf8)
		} else {
			_, err = d.Mailbox(tt.utf8)
		}
		var ne *NameError
		var se *Error
		switch {
		case tt.nameErr && !errors.As(err, &ne):
			t.Errorf("%q: %v, want a *NameError", tt.in, err)
		case tt.nameErr:
			if ne.UTF8 != tt.utf8 {
				t.Errorf("%q: %#v", tt.in, ne)
			}
			if err := d.SP(); err != nil {
				t.Errorf("%q: the rest of the command is not readable: %v", tt.in, err)
			}
		case !errors.As(err, &se):
			t.Errorf("%q: %v, want a syntax error", tt.in, err)
		}
	}
}

func TestListMailbox(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"*", "*", true},
		{"%", "%", true},
		{"INBOX.%", "INBOX.%", true},
		{"~peter/mail/&U,BTFw-/*", "~peter/mail/台北/*", true},
		{`""`, "", true},
		{`"foo bar*"`, "foo bar*", true},
		{"a]*", "a]*", true},
		{"(x", "", false},
		{"&Jjo", "", false},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in+"\r\n", Limits{})
		got, err := d.ListMailbox(false)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ListMailbox(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		in   string
		want string // joined by SP
		ok   bool
	}{
		{`(\Seen)`, `\Seen`, true},
		{`(\seen \ANSWERED \Flagged \deleted \draft \recent)`, `\Seen \Answered \Flagged \Deleted \Draft \Recent`, true},
		{`($Forwarded Junk $label1)`, `$Forwarded Junk $label1`, true},
		{`(\XCustom)`, `\XCustom`, true},
		{`()`, ``, true},
		{`(\*)`, ``, false},
		{`(\)`, ``, false},
		{`(a  b)`, ``, false},
		{`(%)`, ``, false},
		{`\Seen`, ``, false},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in+"\r\n", Limits{})
		got, err := d.FlagList()
		if tt.ok != (err == nil) || strings.Join(got, " ") != tt.want {
			t.Errorf("FlagList(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestDateTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{`"17-Jul-1996 02:44:25 -0700"`, time.Date(1996, 7, 17, 2, 44, 25, 0, time.FixedZone("", -7*3600)), true},
		{`" 7-Jul-1996 02:44:25 +0000"`, time.Date(1996, 7, 7, 2, 44, 25, 0, time.UTC), true},
		{`"07-jul-1996 02:44:25 +0530"`, time.Date(1996, 7, 7, 2, 44, 25, 0, time.FixedZone("", 5*3600+30*60)), true},
		{`"29-Feb-2024 23:59:59 +0100"`, time.Date(2024, 2, 29, 23, 59, 59, 0, time.FixedZone("", 3600)), true},
		{`"29-Feb-2023 23:59:59 +0100"`, time.Time{}, false},
		{`"31-Feb-1994 08:00:00 +0000"`, time.Time{}, false},
		{`"00-Jan-1994 08:00:00 +0000"`, time.Time{}, false},
		{`"17-Jul-1996 23:60:00 -0700"`, time.Time{}, false},
		{`"7-Jul-1996 02:44:25 -0700"`, time.Time{}, false},
		{`"17-Jly-1996 02:44:25 -0700"`, time.Time{}, false},
		{`"17-Jul-96 02:44:25 -0700"`, time.Time{}, false},
		{`"17-Jul-1996 24:00:00 -0700"`, time.Time{}, false},
		{`"17-Jul-1996 02:44 -0700"`, time.Time{}, false},
		{`"17-Jul-1996 02:44:25 0700"`, time.Time{}, false},
		{`"17-Jul-1996 02:44:25 -0760"`, time.Time{}, false},
		{`"17-Jul-1996 02:44:25 -0700`, time.Time{}, false},
		{`17-Jul-1996 02:44:25 -0700`, time.Time{}, false},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in+"\r\n", Limits{})
		got, err := d.DateTime()
		if tt.ok != (err == nil) || !got.Equal(tt.want) {
			t.Errorf("DateTime(%s) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err == nil {
			_, off := got.Zone()
			_, wantOff := tt.want.Zone()
			if off != wantOff {
				t.Errorf("DateTime(%s) zone %d, want %d", tt.in, off, wantOff)
			}
		}
	}
}

func TestDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"1-Feb-1994", time.Date(1994, 2, 1, 0, 0, 0, 0, time.UTC), true},
		{"01-Feb-1994", time.Date(1994, 2, 1, 0, 0, 0, 0, time.UTC), true},
		{`"1-feb-1994"`, time.Date(1994, 2, 1, 0, 0, 0, 0, time.UTC), true},
		{"31-Dec-2099", time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC), true},
		{"31-Apr-2000", time.Time{}, false},
		{"31-Feb-1994", time.Time{}, false},
		{"29-Feb-1994", time.Time{}, false},
		{"29-Feb-2000", time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC), true},
		{"0-Jan-2000", time.Time{}, false},
		{"123-Jan-2000", time.Time{}, false},
		{"1-Feb-94", time.Time{}, false},
		{`"1-Feb-1994`, time.Time{}, false},
		{"1 Feb 1994", time.Time{}, false},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in+"\r\n", Limits{})
		got, err := d.Date()
		if tt.ok != (err == nil) || !got.Equal(tt.want) {
			t.Errorf("Date(%s) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestStoreAction(t *testing.T) {
	tests := []struct {
		in     string
		mode   flagop.Op
		silent bool
		flags  string
		ok     bool
	}{
		{`FLAGS (\Seen)`, flagop.Replace, false, `\Seen`, true},
		{`+FLAGS.SILENT (\Deleted)`, flagop.Add, true, `\Deleted`, true},
		{`-flags.silent ($Junk \seen)`, flagop.Remove, true, `$Junk \Seen`, true},
		{`FLAGS \Seen \Flagged`, flagop.Replace, false, `\Seen \Flagged`, true},
		{`+FLAGS \Seen`, flagop.Add, false, `\Seen`, true},
		{`FLAGS ()`, flagop.Replace, false, ``, true},
		{`FLAGS`, 0, false, ``, false},
		{`FLAGS  (\Seen)`, 0, false, ``, false},
		{`*FLAGS (\Seen)`, 0, false, ``, false},
		{`+FLAG (\Seen)`, 0, false, ``, false},
		{`FLAGS.LOUD (\Seen)`, 0, false, ``, false},
		{`FLAGS \Seen  \Draft`, 0, false, ``, false},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in+"\r\n", Limits{})
		a, err := d.StoreAction()
		if err == nil {
			err = d.CRLF()
		}
		if tt.ok != (err == nil) {
			t.Errorf("StoreAction(%q): err = %v", tt.in, err)
			continue
		}
		if tt.ok && (a.Mode != tt.mode || a.Silent != tt.silent || strings.Join(a.Flags, " ") != tt.flags) {
			t.Errorf("StoreAction(%q) = %+v", tt.in, a)
		}
	}
}

func TestStatusItems(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"(MESSAGES UNSEEN)", "MESSAGES UNSEEN", true},
		{"(uidnext uidvalidity recent deleted size highestmodseq)", "UIDNEXT UIDVALIDITY RECENT DELETED SIZE HIGHESTMODSEQ", true},
		{"()", "", false},
		{"(FOO)", "", false},
		{"MESSAGES", "", false},
	}
	for _, tt := range tests {
		d, _ := args(t, tt.in+"\r\n", Limits{})
		got, err := d.StatusItems()
		if tt.ok != (err == nil) || strings.Join(got, " ") != tt.want {
			t.Errorf("StatusItems(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestSeqSetDecode(t *testing.T) {
	d, _ := args(t, "1:*,3 x\r\n", Limits{})
	s, err := d.SeqSet()
	if err != nil || s.String() != "1:*,3" {
		t.Fatalf("SeqSet = %v, %v", s, err)
	}
	d, _ = args(t, "$ x\r\n", Limits{})
	if s, err := d.SeqSet(); err != nil || !s.IsSaved() {
		t.Fatalf("$ = %v, %v", s, err)
	}
	d, _ = args(t, "x\r\n", Limits{})
	if _, err := d.SeqSet(); !IsProtocolError(err) {
		t.Fatalf("x: %v", err)
	}
}
