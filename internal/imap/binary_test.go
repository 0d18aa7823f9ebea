package imap_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/message"
)

// Tests of BINARY (RFC 3516, RFC 9051 §6.4.5, §7.5.2): APPEND with a
// literal8, BINARY[] and BINARY.SIZE[], and NUL octets in literals.

// untilLit reads the response to tag like rawClient.until, with the
// CRLF after each literal's size kept in the line.
func (rc *rawClient) untilLit(tag string) ([]string, string) {
	rc.t.Helper()
	return rc.readUntil(tag, "\r\n")
}

// appendLit8 APPENDs msg to INBOX as a literal8 and returns the tagged
// answer.
func (rc *rawClient) appendLit8(msg string) string {
	rc.t.Helper()
	tag := rc.send("APPEND INBOX ~{%d}", len(msg))
	if l := rc.line(); !strings.HasPrefix(l, "+ ") {
		rc.t.Fatalf("APPEND ~{%d}: %q", len(msg), l)
	}
	io.WriteString(rc.c, msg+"\r\n")
	_, tagged := rc.until(tag)
	return tagged
}

// fetchItem is one data item of a FETCH response: how it was sent
// ("literal", "literal8", "quoted", or "atom" for numbers and NIL) and
// its value.
type fetchItem struct {
	kind, value string
}

// fetchItems reads the items named in a FETCH response line as
// untilLit assembled it.
func fetchItems(t *testing.T, line string, names ...string) map[string]fetchItem {
	t.Helper()
	out := map[string]fetchItem{}
	for _, name := range names {
		i := strings.Index(line, " "+name+" ")
		if i < 0 {
			i = strings.Index(line, "("+name+" ")
		}
		if i < 0 {
			t.Fatalf("no %s in %q", name, line)
		}
		rest := line[i+len(name)+2:]
		switch {
		case strings.HasPrefix(rest, "{"), strings.HasPrefix(rest, "~{"):
			kind := "literal"
			if rest[0] == '~' {
				kind, rest = "literal8", rest[1:]
			}
			end := strings.Index(rest, "}\r\n")
			n, err := strconv.Atoi(rest[1:end])
			if err != nil {
				t.Fatalf("%s in %q: %v", name, line, err)
			}
			out[name] = fetchItem{kind, rest[end+3 : end+3+n]}
		case strings.HasPrefix(rest, `"`):
			end := strings.IndexByte(rest[1:], '"')
			out[name] = fetchItem{"quoted", rest[1 : end+1]}
		default:
			end := strings.IndexAny(rest, " )")
			out[name] = fetchItem{"atom", rest[:end]}
		}
	}
	return out
}

// fetch1 runs FETCH seq (items), expects one FETCH response and OK, and
// returns the response line.
func (rc *rawClient) fetch1(seq int, items string) string {
	rc.t.Helper()
	tag := rc.send("FETCH %d (%s)", seq, items)
	lines, tagged := rc.untilLit(tag)
	if !strings.HasPrefix(tagged, tag+" OK") {
		rc.t.Fatalf("FETCH %d (%s): %s", seq, items, tagged)
	}
	var got []string
	for _, l := range lines {
		if strings.HasPrefix(l, fmt.Sprintf("* %d FETCH (", seq)) {
			got = append(got, l)
		}
	}
	if len(got) != 1 {
		rc.t.Fatalf("FETCH %d (%s): responses %q", seq, items, lines)
	}
	return got[0]
}

// TestBinaryAppend is imaptest's append-binary, and the report:
// a message APPENDed as a literal8 whose part is Content-Transfer-Encoding
// binary with a NUL, 8-bit octets and bare LFs. BINARY[1] must give back
// exactly the 7 octets sent (literal8: they hold a NUL), BINARY.SIZE[1]
// say 7, and BODY[1] must be something a literal can carry: the part is
// stored as base64 (RFC 9051 §7.5.2), as Dovecot stores it.
func TestBinaryAppend(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	const content = "\x00-\xe4\n\r\n\n"
	msg := "From: user@domain.org\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\nMime-Version: 1.0\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + content
	if tagged := rc.appendLit8(msg); !strings.Contains(tagged, " OK ") {
		t.Fatalf("APPEND: %s", tagged)
	}
	rc.ok("SELECT INBOX")

	got := fetchItems(t, rc.fetch1(1, "BODY.PEEK[1]"), "BODY[1]")["BODY[1]"]
	if got.value != "AC3kCg0KCg==" || got.kind == "literal8" {
		t.Errorf("BODY[1] %s %q, want the base64 of %q", got.kind, got.value, content)
	}
	items := fetchItems(t, rc.fetch1(1, "BINARY.SIZE[1] BINARY.PEEK[1]"), "BINARY.SIZE[1]", "BINARY[1]")
	if items["BINARY.SIZE[1]"].value != "7" {
		t.Errorf("BINARY.SIZE[1] %s, want 7", items["BINARY.SIZE[1]"].value)
	}
	if b := items["BINARY[1]"]; b.kind != "literal8" || b.value != content {
		t.Errorf("BINARY[1] %s %q, want literal8 %q", b.kind, b.value, content)
	}
	// The partial form counts in decoded octets (RFC 3516 §4.2).
	items = fetchItems(t, rc.fetch1(1, "BINARY.PEEK[1]<1.3>"), "BINARY[1]<1>")
	if b := items["BINARY[1]<1>"]; b.value != content[1:4] {
		t.Errorf("BINARY[1]<1.3> %s %q, want %q", b.kind, b.value, content[1:4])
	}

	// RFC822.SIZE is the size of BODY[]; BODYSTRUCTURE tells the
	// encoding BODY[1] is in.
	line := rc.fetch1(1, "RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE")
	items = fetchItems(t, line, "RFC822.SIZE", "BODY[]")
	if n, _ := strconv.Atoi(items["RFC822.SIZE"].value); n != len(items["BODY[]"].value) {
		t.Errorf("RFC822.SIZE %d, BODY[] has %d octets", n, len(items["BODY[]"].value))
	}
	if strings.IndexByte(items["BODY[]"].value, 0) >= 0 {
		t.Errorf("BODY[] holds a NUL: %q", items["BODY[]"].value)
	}
	if !strings.Contains(line, `"APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 12`) {
		t.Errorf("BODYSTRUCTURE: %q", line)
	}
}

// TestBinaryAppendMultipartBareLF: a multipart message with bare LF line
// endings APPENDed as a literal8. The stored file keeps what the client
// sent but for the binary part; BODY[] is served with CRLF and
// RFC822.SIZE agrees with it; the binary part's BINARY[] is the octets
// sent, bare LFs included (binary content is not text: no line ending
// is changed); the text part's BINARY[] is CRLF text (RFC 9051 §7.5.2)
// and is a literal, not a literal8 (no NUL).
func TestBinaryAppendMultipartBareLF(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	bin := "\x89PNG\n\x00\x00\n\x1a\n\xff"
	msg := "From: a@example.org\nSubject: lf\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=zz\n\n" +
		"--zz\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGr\xc3\xbc\xc3\x9fe\nzwei\n" +
		"--zz\nContent-Type: image/png\nContent-Transfer-Encoding: binary\n\n" + bin + "\n--zz--\n"
	if tagged := rc.appendLit8(msg); !strings.Contains(tagged, " OK ") {
		t.Fatalf("APPEND: %s", tagged)
	}
	rc.ok("SELECT INBOX")
	line := rc.fetch1(1, "RFC822.SIZE BODY.PEEK[] BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[2]")
	items := fetchItems(t, line, "RFC822.SIZE", "BODY[]", "BINARY[1]", "BINARY.SIZE[1]", "BINARY[2]", "BINARY.SIZE[2]", "BODY[2]")

	files, err := filepath.Glob(filepath.Join(ts.mailDir("alice"), "cur", "*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("files in cur/: %v, %v", files, err)
	}
	stored, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := message.EncodeBinaryParts([]byte(msg)); !bytes.Equal(stored, want) {
		t.Errorf("stored %q\nwant   %q", stored, want)
	}
	body := items["BODY[]"].value
	if body != string(message.ToCRLF(stored)) {
		t.Errorf("BODY[] %q is not the stored file with CRLF", body)
	}
	if n, _ := strconv.Atoi(items["RFC822.SIZE"].value); n != len(body) {
		t.Errorf("RFC822.SIZE %d, BODY[] has %d octets", n, len(body))
	}
	if b := items["BINARY[2]"]; b.kind != "literal8" || b.value != bin {
		t.Errorf("BINARY[2] %s %q, want literal8 %q", b.kind, b.value, bin)
	}
	if n := items["BINARY.SIZE[2]"].value; n != strconv.Itoa(len(bin)) {
		t.Errorf("BINARY.SIZE[2] %s, want %d", n, len(bin))
	}
	if b := items["BODY[2]"]; strings.ContainsAny(b.value, "\x00\xff") {
		t.Errorf("BODY[2] %s %q is not base64", b.kind, b.value)
	}
	const text = "Gr\xc3\xbc\xc3\x9fe\r\nzwei"
	if b := items["BINARY[1]"]; b.kind != "literal" || b.value != text {
		t.Errorf("BINARY[1] %s %q, want literal %q", b.kind, b.value, text)
	}
	if n := items["BINARY.SIZE[1]"].value; n != strconv.Itoa(len(text)) {
		t.Errorf("BINARY.SIZE[1] %s, want %d", n, len(text))
	}
}

// TestBinaryLiteral8OnlyWithNUL: BINARY[] data without a NUL is sent as
// a literal (RFC 9051 §7.5.2: the server SHOULD, so that the client knows
// there is none); a part that does not exist is empty.
func TestBinaryLiteral8OnlyWithNUL(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	msg := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAGE=\r\n--b--\r\n"
	if tagged := rc.appendLit8(msg); !strings.Contains(tagged, " OK ") {
		t.Fatalf("APPEND: %s", tagged)
	}
	rc.ok("SELECT INBOX")
	items := fetchItems(t, rc.fetch1(1, "BINARY.PEEK[1] BINARY.PEEK[2] BINARY.PEEK[3] BINARY.SIZE[3]"),
		"BINARY[1]", "BINARY[2]", "BINARY[3]", "BINARY.SIZE[3]")
	want := map[string]fetchItem{
		"BINARY[1]":      {"literal", "hello"},
		"BINARY[2]":      {"literal8", "\x00a"},
		"BINARY[3]":      {"literal", ""},
		"BINARY.SIZE[3]": {"atom", "0"},
	}
	for name, w := range want {
		if items[name] != w {
			t.Errorf("%s = %+v, want %+v", name, items[name], w)
		}
	}
}

// TestAppendNULInLiteral: a NUL in a plain literal is refused with BAD
// (RFC 9051 §4.3; RFC 3516 §4.4 allows the refusal) and nothing is
// stored; the session goes on.
func TestAppendNULInLiteral(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	msg := "Subject: x\r\n\r\na\x00b\r\n"
	tag := rc.send("APPEND INBOX {%d}", len(msg))
	if l := rc.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("APPEND: %q", l)
	}
	io.WriteString(rc.c, msg+"\r\n")
	if _, tagged := rc.until(tag); !strings.HasPrefix(tagged, tag+" BAD ") {
		t.Fatalf("APPEND {n} with a NUL: %s", tagged)
	}
	lines := rc.ok("STATUS INBOX (MESSAGES)")
	if !contains(lines, "* STATUS INBOX (MESSAGES 0)") {
		t.Fatalf("STATUS after the refused APPEND: %q", lines)
	}
}

// TestFetchUnknownCTE: BINARY of a part whose encoding the server cannot
// undo fails NO [UNKNOWN-CTE] (RFC 3516 §4.3); the FETCH responses
// written meanwhile stay well-formed, without that item (as Dovecot
// answers), and with UID when it was the only one.
func TestFetchUnknownCTE(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	for _, msg := range []string{
		"Subject: a\r\n\r\nplain\r\n",
		"Subject: b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n",
	} {
		if tagged := rc.appendLit8(msg); !strings.Contains(tagged, " OK ") {
			t.Fatalf("APPEND: %s", tagged)
		}
	}
	rc.ok("SELECT INBOX")
	tag := rc.send("FETCH 1:2 (FLAGS BINARY.PEEK[1] BINARY.SIZE[1])")
	lines, tagged := rc.untilLit(tag)
	if !strings.HasPrefix(tagged, tag+" NO [UNKNOWN-CTE] ") {
		t.Errorf("tagged %q", tagged)
	}
	want := []string{"* 1 FETCH (FLAGS (\\Recent) BINARY[1] {7}\r\nplain\r\n BINARY.SIZE[1] 7)", "* 2 FETCH (FLAGS (\\Recent))"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("untagged %q\nwant %q", lines, want)
	}
	tag = rc.send("FETCH 2 (BINARY.PEEK[1])")
	lines, tagged = rc.untilLit(tag)
	if !strings.HasPrefix(tagged, tag+" NO [UNKNOWN-CTE] ") || len(lines) != 1 || lines[0] != "* 2 FETCH (UID 2)" {
		t.Errorf("BINARY alone: %q %q", lines, tagged)
	}
	// BODY[] of the same part is no decoding: OK.
	items := fetchItems(t, rc.fetch1(2, "BODY.PEEK[1]"), "BODY[1]")
	if items["BODY[1]"].value != "begin 644 x\r\n" {
		t.Errorf("BODY[1] %+v", items["BODY[1]"])
	}
}

// TestFetchNULFromForeignFile: a message another program stored with
// NUL octets. A literal cannot carry NUL (RFC 9051 §4.3): BODY[] and
// RFC822 send each as 0x80, as Dovecot does, so that the size stays
// RFC822.SIZE; BINARY[] sends the octets as they are, in a literal8.
func TestFetchNULFromForeignFile(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	raw := "Subject: nul\r\nContent-Type: application/octet-stream\r\n\r\na\x00b\x00\r\n"
	if err := os.WriteFile(filepath.Join(ts.mailDir("alice"), "new", "1600000000.M1P1Q1.foreign"), []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	rc.ok("SELECT INBOX")
	line := rc.fetch1(1, "RFC822.SIZE BODY.PEEK[] BODY.PEEK[1] BINARY.PEEK[1] RFC822.TEXT")
	items := fetchItems(t, line, "RFC822.SIZE", "BODY[]", "BODY[1]", "BINARY[1]", "RFC822.TEXT")
	masked := strings.ReplaceAll(raw, "\x00", "\x80")
	want := map[string]fetchItem{
		"RFC822.SIZE": {"atom", strconv.Itoa(len(raw))},
		"BODY[]":      {"literal", masked},
		"BODY[1]":     {"literal", "a\x80b\x80\r\n"},
		"RFC822.TEXT": {"literal", "a\x80b\x80\r\n"},
		"BINARY[1]":   {"literal8", "a\x00b\x00\r\n"},
	}
	for name, w := range want {
		if items[name] != w {
			t.Errorf("%s = %+v, want %+v", name, items[name], w)
		}
	}
}

// TestAppendTrailingGarbage: an APPEND whose line goes on after the
// literal with something other than its end is BAD, and BAD means
// nothing was done: the message is not stored (RFC 9051 §6.3.12; as
// Dovecot, which cancels the save when the command does not parse).
func TestAppendTrailingGarbage(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	msg := "Subject: x\r\n\r\nbody\r\n"
	for _, tc := range []struct{ open, rest string }{
		{"{%d+}", " garbage"},
		{"{%d+}", ")"},
		{"~{%d+}", " (\\Seen) {1+}\r\nx"},
	} {
		tag := rc.send("APPEND INBOX "+tc.open+"\r\n%s%s", len(msg), msg, tc.rest)
		if _, tagged := rc.until(tag); !strings.HasPrefix(tagged, tag+" BAD ") {
			t.Errorf("APPEND %s ...%q: %s, want BAD", tc.open, tc.rest, tagged)
		}
		lines := rc.ok("STATUS INBOX (MESSAGES UIDNEXT)")
		if !contains(lines, "* STATUS INBOX (MESSAGES 0 UIDNEXT 1)") {
			t.Fatalf("STATUS after the BAD APPEND %s ...%q: %q", tc.open, tc.rest, lines)
		}
	}
	if tagged := rc.appendLit8(msg); !strings.Contains(tagged, " OK [APPENDUID ") {
		t.Fatalf("APPEND after the errors: %s", tagged)
	}
}
