package wire

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// dumpKey renders a search tree as an S-expression.
func dumpKey(k *SearchKey) string {
	var b strings.Builder
	b.WriteString("(" + k.Op)
	if k.Field != "" {
		fmt.Fprintf(&b, " field=%q", k.Field)
	}
	if k.Str != "" {
		fmt.Fprintf(&b, " %q", k.Str)
	}
	if !k.Date.IsZero() {
		b.WriteString(" " + k.Date.Format("2006-01-02"))
	}
	if k.Num != 0 {
		fmt.Fprintf(&b, " %d", k.Num)
	}
	if k.Seq != nil {
		b.WriteString(" " + k.Seq.String())
	}
	for _, c := range k.Children {
		b.WriteString(" " + dumpKey(c))
	}
	b.WriteString(")")
	return b.String()
}

func TestSearch(t *testing.T) {
	tests := []struct {
		name, in string
		ret      string // RETURN options joined, "-" when absent
		charset  string
		want     string
	}{
		// RFC 9051 §6.4.4 and RFC 3501 §6.4.4 examples.
		{"rfc flagged", `FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"`, "-", "",
			`(AND (FLAGGED) (SINCE 1994-02-01) (NOT (FROM "Smith")))`},
		{"rfc text", `TEXT "string not in mailbox"`, "-", "",
			`(TEXT "string not in mailbox")`},
		{"rfc charset literal", "CHARSET UTF-8 TEXT {14}\r\n\xd0\x9d\xd0\xb8\xd0\xba\xd0\xbe\xd0\xbb\xd0\xb0\xd0\xb9", "-", "UTF-8",
			`(TEXT "Николай")`},
		{"rfc return empty", `RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"`, "", "",
			`(AND (FLAGGED) (SINCE 1994-02-01) (NOT (FROM "Smith")))`},
		// RFC 4731 §3.1 example.
		{"esearch min count", `RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"`, "MIN COUNT", "",
			`(AND (FLAGGED) (SINCE 1994-02-01) (NOT (FROM "Smith")))`},
		// RFC 5182 §2.4 examples.
		{"searchres save", `RETURN (SAVE) FROM "Smith"`, "SAVE", "", `(FROM "Smith")`},
		{"searchres use", `OR $ 1:10 SENTBEFORE 1-Jan-2007`, "-", "",
			`(OR (SEQSET $) (SEQSET 1:10))`},
		{"uid $", `UID $ SMALLER 2000`, "-", "", `(AND (UID $) (SMALLER 2000))`},
		// RFC 7162 §3.1.5 example.
		{"modseq entry", `MODSEQ "/flags/\\draft" all 620162338`, "-", "",
			`(MODSEQ field="/flags/\\draft" "all" 620162338)`},
		{"modseq", `MODSEQ 720162338`, "-", "", `(MODSEQ 720162338)`},
		// RFC 8474 §6; ids are case-sensitive, kept as sent.
		{"objectids", `emailid M6d99ac3275bb4e THREADID T64b478a7_5b-7ea9`, "-", "",
			`(AND (EMAILID "M6d99ac3275bb4e") (THREADID "T64b478a7_5b-7ea9"))`},
		{"every key", `ALL ANSWERED BCC a BEFORE 1-Jan-2000 BODY b CC c DELETED DRAFT FLAGGED ` +
			`FROM d HEADER X-Spam "yes" KEYWORD $Junk LARGER 100 NEW NOT SEEN OLD ON 2-Jan-2000 ` +
			`OR RECENT SEEN SENTBEFORE 3-Jan-2000 SENTON 4-Jan-2000 SENTSINCE 5-Jan-2000 ` +
			`SINCE 6-Jan-2000 SMALLER 200 SUBJECT e TEXT f TO g UID 1:* UNANSWERED UNDELETED ` +
			`UNDRAFT UNFLAGGED UNKEYWORD Junk UNSEEN 1,3:5`, "-", "",
			`(AND (ALL) (ANSWERED) (BCC "a") (BEFORE 2000-01-01) (BODY "b") (CC "c") (DELETED) (DRAFT) (FLAGGED) ` +
				`(FROM "d") (HEADER field="X-Spam" "yes") (KEYWORD "$Junk") (LARGER 100) (NEW) (NOT (SEEN)) (OLD) (ON 2000-01-02) ` +
				`(OR (RECENT) (SEEN)) (SENTBEFORE 2000-01-03) (SENTON 2000-01-04) (SENTSINCE 2000-01-05) ` +
				`(SINCE 2000-01-06) (SMALLER 200) (SUBJECT "e") (TEXT "f") (TO "g") (UID 1:*) (UNANSWERED) (UNDELETED) ` +
				`(UNDRAFT) (UNFLAGGED) (UNKEYWORD "Junk") (UNSEEN) (SEQSET 1,3:5))`},
		{"lower case", `or from x (to y cc z) not unseen`, "-", "",
			`(AND (OR (FROM "x") (AND (TO "y") (CC "z"))) (NOT (UNSEEN)))`},
		{"nested parens", `((SEEN))`, "-", "", `(SEEN)`},
		{"charset quoted", `CHARSET "us-ascii" ALL`, "-", "us-ascii", `(ALL)`},
		{"quoted date", `SINCE "1-Feb-1994"`, "-", "", `(SINCE 1994-02-01)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := args(t, tt.in+"\r\n", Limits{})
			cmd, err := d.Search(false)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.CRLF(); err != nil {
				t.Fatalf("CRLF: %v", err)
			}
			ret := "-"
			if cmd.ReturnGiven {
				ret = strings.Join(cmd.Return, " ")
			}
			if ret != tt.ret || cmd.Charset != tt.charset {
				t.Errorf("return %q charset %q", ret, cmd.Charset)
			}
			// "searchres use" stops after OR's two keys: the program is a
			// top-level AND of OR and SENTBEFORE.
			got := dumpKey(cmd.Key)
			if tt.name == "searchres use" {
				got = dumpKey(cmd.Key.Children[0])
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSearchInvalid(t *testing.T) {
	for _, in := range []string{
		``,
		`FOO`,
		`FROM`,
		`FROM  x`,
		`SINCE 1-Foo-2000`,
		`LARGER -1`,
		`LARGER 99999999999999999999`,
		`NOT`,
		`OR SEEN`,
		`()`,
		`(SEEN`,
		`SEEN)`,
		`UID 0`,
		`KEYWORD \Seen`,
		`EMAILID`,
		`EMAILID M1.2`,
		`EMAILID "M1"`,
		`EMAILID M1+2`,
		`THREADID ` + strings.Repeat("T", 256),
		`RETURN (BOGUS) ALL`,
		`RETURN MIN ALL`,
		`CHARSET`,
		`MODSEQ "/other/x" all 1`,
		`MODSEQ "/flags/\\Seen" mine 1`,
		`FROM "` + "\xff" + `"`,
	} {
		d, _ := args(t, in+"\r\n", Limits{})
		cmd, err := d.Search(false)
		if err == nil {
			err = d.CRLF()
		}
		if err == nil {
			t.Errorf("Search(%q) = %s, want error", in, dumpKey(cmd.Key))
		}
	}
}

func TestSearchUTF8(t *testing.T) {
	d, _ := args(t, "SUBJECT {2}\r\n\xff\xfe\r\n", Limits{})
	if _, err := d.Search(false); err != nil {
		t.Errorf("8-bit literal without utf8: %v", err)
	}
	d, _ = args(t, "SUBJECT {2}\r\n\xff\xfe\r\n", Limits{})
	if _, err := d.Search(true); !IsProtocolError(err) {
		t.Errorf("invalid UTF-8 with utf8: %v", err)
	}
}

func TestSearchDepth(t *testing.T) {
	deep := strings.Repeat("NOT ", 40) + "SEEN"
	d, _ := args(t, deep+"\r\n", Limits{MaxDepth: 32})
	_, err := d.Search(false)
	wantCode(t, err, CodeTooBig)
	d, _ = args(t, strings.Repeat("(", 40)+"SEEN"+strings.Repeat(")", 40)+"\r\n", Limits{MaxDepth: 32})
	_, err = d.Search(false)
	wantCode(t, err, CodeTooBig)
	d, _ = args(t, strings.Repeat("OR SEEN ", 30)+"SEEN\r\n", Limits{MaxDepth: 32})
	if _, err := d.Search(false); err != nil {
		t.Errorf("30 nested ORs: %v", err)
	}
}

// TestSearchShortCommandDoesNotWait: "SEARCH ALL" is shorter than the
// words SEARCH may start with ("RETURN ", "CHARSET "); the decoder must
// answer from the bytes of the line alone, without waiting for more.
func TestSearchShortCommandDoesNotWait(t *testing.T) {
	for _, line := range []string{"ALL\r\n", "1\r\n", "SEEN\r\n", "NEW\r\n", "RET\r\n"} {
		pr, pw := io.Pipe()
		go pw.Write([]byte(line)) // and never more: a client waiting for the answer
		d := NewDecoder(bufio.NewReader(pr), nil, Limits{})
		done := make(chan error, 1)
		go func() {
			_, err := d.Search(false)
			if err == nil {
				err = d.CRLF()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if line != "RET\r\n" && err != nil {
				t.Errorf("%q: %v", line, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q: the decoder waits for bytes the client never sends", line)
		}
		pw.Close()
	}
}
