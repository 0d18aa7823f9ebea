package imaptorture

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
)

// readAll parses every response in b.
func readAll(t *testing.T, b []byte) []*Response {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(b))
	var out []*Response
	for {
		raw, err := readRaw(r)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("after %d responses: %v", len(out), err)
		}
		resp, err := parseResponse(raw)
		if err != nil {
			t.Fatalf("response %d: %v", len(out)+1, err)
		}
		out = append(out, resp)
	}
}

// TestParseDovecot parses a transcript of Dovecot 2.3's responses.
func TestParseDovecot(t *testing.T) {
	b, err := os.ReadFile("testdata/dovecot.txt")
	if err != nil {
		t.Fatal(err)
	}
	rs := readAll(t, b)
	if len(rs) != 20 {
		t.Fatalf("%d responses, want 20", len(rs))
	}
	for _, tc := range []struct {
		i    int
		want Response
	}{
		{3, Response{Tag: "*", Num: 512, Type: "EXISTS"}},
		{5, Response{Tag: "*", Type: "OK", Code: "UIDVALIDITY", CodeArgs: []string{"1764369571"}, Text: "UIDs valid"}},
		{6, Response{Tag: "*", Type: "OK", Code: "UIDNEXT", CodeArgs: []string{"2049"}, Text: "Predicted next UID"}},
		{7, Response{Tag: "t12", Type: "OK", Code: "READ-WRITE", Text: "Select completed (0.002 + 0.000 secs)."}},
		{8, Response{Tag: "*", Num: 3, Type: "FETCH", Fetch: &FetchData{UID: 17, HasUID: true, Flags: []string{`\Seen`, "$TortureA"}, HasFlags: true, MessageID: "<torture-5d34283a-9@cistern>"}}},
		{9, Response{Tag: "*", Num: 4, Type: "FETCH", Fetch: &FetchData{UID: 18, HasUID: true, Flags: []string{`\Seen`}, HasFlags: true}}},
		{11, Response{Tag: "*", Num: 2, Type: "EXPUNGE"}},
		{12, Response{Tag: "*", Type: "SEARCH", Numbers: []uint32{2, 84, 882}}},
		{13, Response{Tag: "*", Type: "SEARCH"}},
		{15, Response{Tag: "*", Type: "OK", Code: "COPYUID", CodeArgs: []string{"1764369572", "304,319:320", "3956:3958"}, Text: "Moved UIDs."}},
		{16, Response{Tag: "t40", Type: "OK", Code: "APPENDUID", CodeArgs: []string{"1764369571", "2050"}, Text: "Append completed (0.004 + 0.000 + 0.003 secs)."}},
		{17, Response{Tag: "t41", Type: "NO", Code: "EXPUNGEISSUED", Text: "Some of the requested messages no longer exist (0.001 + 0.000 secs)"}},
		{18, Response{Tag: "+", Text: "idling"}},
		{19, Response{Tag: "*", Type: "BYE", Text: "Logging out"}},
	} {
		got := *rs[tc.i]
		if got.Size == 0 {
			t.Errorf("response %d: Size 0", tc.i)
		}
		got.Line, got.Data, got.Size = "", nil, 0
		if got.Fetch != nil {
			f := *got.Fetch
			f.Envelope = nil
			got.Fetch = &f
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("response %d:\n got %+v %+v\nwant %+v %+v", tc.i, got, got.Fetch, tc.want, tc.want.Fetch)
		}
	}
	env := rs[10].Fetch.Envelope
	if env == nil || env.List[9].String() != "<torture-5d34283a-10@cistern>" {
		t.Errorf("ENVELOPE's message-id: %+v", env)
	}
	if st := rs[14]; st.Type != "STATUS" || len(st.Data) != 2 || st.Data[0].String() != "Torture.Aux" || st.Data[1].List[1].Text != "231" {
		t.Errorf("STATUS: %+v", st)
	}
	if caps := rs[0]; caps.Code != "CAPABILITY" || len(caps.CodeArgs) != 8 {
		t.Errorf("greeting: %+v", caps)
	}
}

// TestParseMalformed: every line of testdata/malformed.txt is refused.
func TestParseMalformed(t *testing.T) {
	b, err := os.ReadFile("testdata/malformed.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		raw, err := readRaw(bufio.NewReader(strings.NewReader(line + "\r\n")))
		if err == nil {
			_, err = parseResponse(raw)
		}
		if err == nil {
			t.Errorf("%q parsed", line)
		}
	}
}

// TestTruncated: a response cut anywhere, with or without a line end
// after the cut, is an error, never a panic.
func TestTruncated(t *testing.T) {
	full := "* 3 FETCH (UID 17 FLAGS (\\Seen) BODY[] {14}\r\nMessage-ID: \r\n ENVELOPE (NIL \"s\" NIL NIL NIL NIL NIL NIL NIL \"<a@b>\"))\r\n"
	for n := 0; n < len(full)-2; n++ {
		for _, in := range []string{full[:n], full[:n] + "\r\n"} {
			raw, err := readRaw(bufio.NewReader(strings.NewReader(in)))
			if err == nil {
				if _, err = parseResponse(raw); err == nil {
					t.Errorf("cut at %d: parsed %q", n, in)
				}
			}
		}
	}
	raw, err := readRaw(bufio.NewReader(strings.NewReader(full)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseResponse(raw); err != nil {
		t.Fatal(err)
	}
}

// TestLimits: a line or a literal past the limits is refused without
// being read whole.
func TestLimits(t *testing.T) {
	long := "* OK " + strings.Repeat("x", maxLineBytes) + "\r\n"
	if _, err := readRaw(bufio.NewReader(strings.NewReader(long))); !errors.Is(err, ErrMalformed) {
		t.Errorf("long line: %v", err)
	}
	huge := "* 1 FETCH (BODY[] {999999999}\r\n"
	if _, err := readRaw(bufio.NewReader(strings.NewReader(huge))); !errors.Is(err, ErrMalformed) {
		t.Errorf("huge literal: %v", err)
	}
	deep := "* 1 FETCH (X " + strings.Repeat("(", maxDepth+2) + strings.Repeat(")", maxDepth+2) + ")\r\n"
	raw, err := readRaw(bufio.NewReader(strings.NewReader(deep)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseResponse(raw); !errors.Is(err, ErrMalformed) {
		t.Errorf("deep nesting: %v", err)
	}
}

func TestHeaderMessageID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Message-ID: <a@b>\r\n\r\n", "<a@b>"},
		{"Subject: x\r\nmessage-id:\r\n <folded@b>\r\n\r\nMessage-ID: <body@b>\r\n", "<folded@b>"},
		{"Subject: x\r\n\r\nMessage-ID: <body@b>\r\n", ""},
		{"Message-ID: <lf@b>\n\n", "<lf@b>"},
		{"", ""},
	} {
		if got := headerMessageID([]byte(tc.in)); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseResponse: no input makes the reader or the parser panic or
// read past its limits.
func FuzzParseResponse(f *testing.F) {
	b, err := os.ReadFile("testdata/dovecot.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		f.Add([]byte(line))
	}
	f.Add(b)
	f.Add([]byte("* 1 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID)] {5}\r\nabcde)\r\n"))
	f.Add([]byte("* 1 FETCH (BINARY[] ~{3}\r\nabc)\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 100 {
			raw, err := readRaw(r)
			if err != nil {
				return
			}
			if len(raw.line) > maxLineBytes || len(raw.lits) > maxLiterals {
				t.Fatalf("past the limits: %d bytes, %d literals", len(raw.line), len(raw.lits))
			}
			resp, err := parseResponse(raw)
			if err == nil && resp.Tag == "" {
				t.Fatal("a response without a tag")
			}
		}
	})
}

// Address lists and multipart bodies put lists side by side without a
// space (RFC 9051 §9); the size is the bytes as sent.
func TestParseAdjacentLists(t *testing.T) {
	line := `* 1 FETCH (ENVELOPE (NIL NIL NIL NIL NIL ((NIL NIL "a" "b")(NIL NIL "c" "d")) NIL NIL NIL NIL) BODYSTRUCTURE (("TEXT" "PLAIN" NIL NIL NIL "7BIT" 1 1)("TEXT" "HTML" NIL NIL NIL "7BIT" 1 1) "ALTERNATIVE"))`
	r, err := parseResponse(rawResponse{line: []byte(line)})
	if err != nil {
		t.Fatal(err)
	}
	if to := r.Fetch.Envelope.List[5]; len(to.List) != 2 || to.List[1].List[2].Text != "c" {
		t.Errorf("To = %+v", to)
	}
	if bs := r.Fetch.BodyStructure; bs == nil || len(bs.List) != 3 {
		t.Errorf("BODYSTRUCTURE = %+v", bs)
	}
	if r.Size != len(line) {
		t.Errorf("Size %d, want %d", r.Size, len(line))
	}
	if _, err := parseResponse(rawResponse{line: []byte(`* 1 FETCH (FLAGS (\Seen)UID 3)`)}); err == nil {
		t.Error("an atom right after a list was accepted")
	}
}

// TestParseSections: whole and partial sections and RFC822.SIZE are
// parsed with their origins; a partial's bytes never name the message.
func TestParseSections(t *testing.T) {
	r, err := parseResponse(rawResponse{
		line: []byte("* 1 FETCH (UID 5 RFC822.SIZE 44 BODY[]<7> {5} BODY[TEXT] {3} BODY[HEADER] {2})"),
		lits: [][]byte{[]byte("ID: <"), []byte("abc"), []byte("\r\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := r.Fetch
	want := []Section{{Name: "BODY[]", Origin: 7, Data: []byte("ID: <")}, {Name: "BODY[TEXT]", Origin: -1, Data: []byte("abc")}}
	if !reflect.DeepEqual(f.Sections, want) || !f.HasSize || f.Size != 44 {
		t.Errorf("sections %+v size %d %v", f.Sections, f.Size, f.HasSize)
	}
	for _, bad := range []string{"* 1 FETCH (RFC822.SIZE x)", "* 1 FETCH (BODY[]<x> NIL)"} {
		if _, err := parseResponse(rawResponse{line: []byte(bad)}); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestParseResync: the responses of RFC 7162 (the examples of §3.2.5.2
// and §3.1.4.1 in Dovecot's spelling) and the uid-sets they carry.
func TestParseResync(t *testing.T) {
	rs := readAll(t, []byte("* OK [HIGHESTMODSEQ 20010715194045319] Highest\r\n"+
		"* VANISHED (EARLIER) 41,43:116,118,120:211,214:540\r\n"+
		"* 49 FETCH (UID 117 FLAGS (\\Seen \\Answered) MODSEQ (90060115194045001))\r\n"+
		"* VANISHED 405,407\r\n"))
	if r := rs[0]; r.Code != "HIGHESTMODSEQ" || !reflect.DeepEqual(r.CodeArgs, []string{"20010715194045319"}) {
		t.Errorf("HIGHESTMODSEQ: %+v", r)
	}
	want := []uidRange{{41, 41}, {43, 116}, {118, 118}, {120, 211}, {214, 540}}
	if r := rs[1]; r.Type != "VANISHED" || !r.Earlier || !reflect.DeepEqual(r.Vanished, want) {
		t.Errorf("VANISHED (EARLIER): %+v", r)
	}
	if f := rs[2].Fetch; f == nil || !f.HasModSeq || f.ModSeq != 90060115194045001 || f.UID != 117 || len(f.Flags) != 2 {
		t.Errorf("FETCH MODSEQ: %+v", f)
	}
	if r := rs[3]; r.Type != "VANISHED" || r.Earlier || !reflect.DeepEqual(r.Vanished, []uidRange{{405, 405}, {407, 407}}) {
		t.Errorf("VANISHED: %+v", r)
	}
	if !inRanges(want, 100) || inRanges(want, 42) || inRanges(want, 541) {
		t.Error("inRanges")
	}
	if got := compactSet([]uint32{1, 2, 3, 5, 7, 8}); got != "1:3,5,7:8" {
		t.Errorf("compactSet: %q", got)
	}
	for _, bad := range []string{"* VANISHED", "* VANISHED (LATER) 4", "* VANISHED 0:3", "* VANISHED 4:*", "* 1 FETCH (MODSEQ 5)", "* 1 FETCH (MODSEQ (0))", "* 1 FETCH (MODSEQ (x))"} {
		raw, err := readRaw(bufio.NewReader(strings.NewReader(bad + "\r\n")))
		if err == nil {
			_, err = parseResponse(raw)
		}
		if err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
