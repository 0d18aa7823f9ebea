package message

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func load(t testing.TB, name string) *Message {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(raw)
}

// shape renders the BODYSTRUCTURE-relevant fields of a part tree compactly:
// a leaf as "type/sub[params] cte size lines", a multipart as
// "(child child sub)", a message as "type/sub cte size lines {embedded}".
func shape(p *Part) string {
	if p.IsMultipart() {
		var cs []string
		for _, c := range p.Children {
			cs = append(cs, shape(c))
		}
		return "(" + strings.Join(cs, " ") + " " + p.Subtype + ")"
	}
	var ps []string
	for _, x := range p.Params {
		ps = append(ps, x.Name+"="+x.Value)
	}
	s := fmt.Sprintf("%s/%s[%s] %s %d %d", p.Type, p.Subtype, strings.Join(ps, ";"), p.Encoding, p.Size, p.Lines)
	if p.Embedded != nil {
		s += " {" + shape(p.Embedded) + "}"
	}
	return s
}

func TestBodyStructure(t *testing.T) {
	tests := []struct {
		file, want string
	}{
		{"simple.eml", "text/plain[charset=us-ascii] 7bit 59 5"},
		{"alternative.eml", "(text/plain[charset=utf-8] quoted-printable 82 1 text/html[charset=utf-8] 7bit 51 0 alternative)"},
		{"mixed-attachment.eml", "(text/plain[charset=iso-8859-1] 8bit 30 0 application/pdf[name=report.pdf] base64 1402 0 mixed)"},
		{"nested-rfc822.eml", "(text/plain[] 7bit 27 0 message/rfc822[] 7bit 421 16 {(text/plain[charset=utf-8] 7bit 34 0 text/html[charset=utf-8] 7bit 48 0 alternative)} mixed)"},
		{"missing-boundary.eml", "(text/plain[charset=us-ascii] 7bit 57 2 mixed)"},
		{"unclosed-boundary.eml", "(text/plain[] 7bit 10 0 text/plain[] 7bit 52 1 mixed)"},
		{"garbage-cte.eml", "(text/plain[] x-rot13-bogus 11 0 text/plain[] base64 41 0 text/plain[] quoted-printable 45 1 mixed)"},
		{"8bit-headers.eml", "text/plain[] 7bit 19 1"},
		{"bare-lf.eml", "(text/plain[] 7bit 17 1 text/plain[charset=utf-8] base64 12 0 mixed)"},
		{"digest.eml", "(message/rfc822[] 7bit 54 3 {text/plain[charset=us-ascii] 7bit 13 0} text/plain[] 7bit 13 0 digest)"},
		{"no-header-part.eml", "(text/plain[charset=us-ascii] 7bit 26 0 mixed)"},
		{"groups.eml", "text/plain[charset=us-ascii] 7bit 7 1"},
		{"rfc2047.eml", "text/plain[charset=utf-8] 8bit 45 2"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m := load(t, tt.file)
			if got := shape(m.Root()); got != tt.want {
				t.Errorf("shape\n got %s\nwant %s", got, tt.want)
			}
			checkInvariants(t, m)
		})
	}
}

// checkInvariants verifies the documented properties of every part.
func checkInvariants(t testing.TB, m *Message) {
	t.Helper()
	n := int64(len(m.Raw()))
	var walk func(p *Part, lo, hi int64, depth int)
	walk = func(p *Part, lo, hi int64, depth int) {
		if depth > 2*MaxDepth+2 {
			t.Fatalf("tree deeper than the limits allow")
		}
		if !(lo <= p.HeaderStart && p.HeaderStart <= p.HeaderEnd && p.HeaderEnd == p.BodyStart && p.BodyStart <= p.BodyEnd && p.BodyEnd <= hi && hi <= n) {
			t.Fatalf("bad offsets %d %d %d %d within [%d,%d)", p.HeaderStart, p.HeaderEnd, p.BodyStart, p.BodyEnd, lo, hi)
		}
		if p.Size != p.BodyEnd-p.BodyStart || p.CRLFSize != CRLFLen(m.Raw()[p.BodyStart:p.BodyEnd]) {
			t.Fatalf("sizes %d %d for body [%d,%d)", p.Size, p.CRLFSize, p.BodyStart, p.BodyEnd)
		}
		if p.Type == "" || p.Subtype == "" || p.Encoding == "" {
			t.Fatalf("empty type or encoding: %q/%q %q", p.Type, p.Subtype, p.Encoding)
		}
		if p.Type != lowerASCII(p.Type) || p.Subtype != lowerASCII(p.Subtype) || !ascii([]byte(p.Type+p.Subtype)) {
			t.Fatalf("type not lower case: %s/%s", p.Type, p.Subtype)
		}
		if p.IsMultipart() != (len(p.Children) > 0) {
			t.Fatalf("%s/%s with %d children", p.Type, p.Subtype, len(p.Children))
		}
		isMsg := p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global")
		if isMsg != (p.Embedded != nil) {
			t.Fatalf("%s/%s with embedded %v", p.Type, p.Subtype, p.Embedded != nil)
		}
		prev := p.BodyStart
		for _, c := range p.Children {
			if c.HeaderStart < prev {
				t.Fatalf("children overlap")
			}
			walk(c, p.BodyStart, p.BodyEnd, depth+1)
			prev = c.BodyEnd
		}
		if p.Embedded != nil {
			if p.Embedded.HeaderStart != p.BodyStart || p.Embedded.BodyEnd != p.BodyEnd {
				t.Fatalf("embedded message does not span the body")
			}
			walk(p.Embedded, p.BodyStart, p.BodyEnd, depth+1)
		}
	}
	r := m.Root()
	if r.HeaderStart != 0 || r.BodyEnd != n {
		t.Fatalf("root spans [%d,%d), want [0,%d)", r.HeaderStart, r.BodyEnd, n)
	}
	walk(r, 0, n, 0)
}

func TestPartFields(t *testing.T) {
	m := load(t, "mixed-attachment.eml")
	p, ok := m.Part([]int{2})
	if !ok {
		t.Fatal("no part 2")
	}
	want := Part{
		Type: "application", Subtype: "pdf",
		Params:            []Param{{"name", "report.pdf"}},
		ID:                "<report@example.org>",
		Description:       "Quarterly report",
		Encoding:          "base64",
		MD5:               "Q2hlY2sgSW50ZWdyaXR5IQ==",
		Disposition:       "attachment",
		DispositionParams: []Param{{"filename", "report.pdf"}, {"size", "1024"}},
		Language:          []string{"en", "de"},
		Location:          "http://example.org/report.pdf",
	}
	got := Part{
		Type: p.Type, Subtype: p.Subtype, Params: p.Params, ID: p.ID, Description: p.Description,
		Encoding: p.Encoding, MD5: p.MD5, Disposition: p.Disposition, DispositionParams: p.DispositionParams,
		Language: p.Language, Location: p.Location,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("part 2\n got %+v\nwant %+v", got, want)
	}
}

func TestRFC2231(t *testing.T) {
	m := load(t, "rfc2231.eml")
	p, _ := m.Part([]int{1})
	want := []Param{
		{"name", "résumé d'été.txt"},
		{"title", "£ rates"},
		{"plain", `quoted "value"`},
		{"url", "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"},
	}
	if !reflect.DeepEqual(p.Params, want) {
		t.Errorf("params\n got %q\nwant %q", p.Params, want)
	}
	if got := ParamValue(p.DispositionParams, "FILENAME"); got != "naïve file.txt" {
		t.Errorf("filename = %q", got)
	}
}

func TestParseContentType(t *testing.T) {
	tests := []struct {
		name, in, typ, sub string
		params             []Param
		ok                 bool
	}{
		{"plain", "text/plain", "text", "plain", nil, true},
		{"case", "TEXT/HTML; CHARSET=UTF-8", "text", "html", []Param{{"charset", "UTF-8"}}, true},
		{"spaces", " text / plain ; charset = \"utf-8\" ", "text", "plain", []Param{{"charset", "utf-8"}}, true},
		{"comment", "text/plain (comment); format=flowed", "text", "plain", []Param{{"format", "flowed"}}, true},
		{"missing semicolon", "text/plain charset=utf-8 format=flowed", "text", "plain", []Param{{"charset", "utf-8"}, {"format", "flowed"}}, true},
		{"unquoted spaces", "application/pdf; name=my report.pdf; x=1", "application", "pdf", []Param{{"name", "my report.pdf"}, {"x", "1"}}, true},
		{"unterminated quote", `text/plain; name="abc`, "text", "plain", []Param{{"name", "abc"}}, true},
		{"duplicate", "text/plain; charset=a; charset=b", "text", "plain", []Param{{"charset", "a"}}, true},
		{"junk params", "text/plain; ;; junk; a=b", "text", "plain", []Param{{"a", "b"}}, true},
		{"no subtype", "text", "", "", nil, false},
		{"empty", "", "", "", nil, false},
		{"2231 out of order", "a/b; n*2=c; n*0=a; n*1=b", "a", "b", []Param{{"n", "abc"}}, true},
		{"2231 wins", "a/b; n=plain; n*=us-ascii''ext", "a", "b", []Param{{"n", "ext"}}, true},
		{"2231 bad percent", "a/b; n*=utf-8''100%", "a", "b", []Param{{"n", "100%"}}, true},
		{"2231 no charset", "a/b; n*=abc%20d", "a", "b", []Param{{"n", "abc d"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, sub, params, ok := parseContentType(tt.in)
			if typ != tt.typ || sub != tt.sub || ok != tt.ok || !reflect.DeepEqual(params, tt.params) {
				t.Errorf("parseContentType(%q) = %q %q %q %v, want %q %q %q %v", tt.in, typ, sub, params, ok, tt.typ, tt.sub, tt.params, tt.ok)
			}
		})
	}
}

func TestEnvelope(t *testing.T) {
	alice := []Address{{Name: "Alice Example", Mailbox: "alice", Host: "example.org"}}
	tests := []struct {
		file string
		want Envelope
	}{
		{"simple.eml", Envelope{
			Date:    "Mon, 2 Jan 2006 15:04:05 -0700",
			Subject: "Lunch tomorrow?",
			From:    alice, Sender: alice, ReplyTo: alice,
			To:        []Address{{Name: "Bob", Mailbox: "bob", Host: "example.com"}, {Mailbox: "carol", Host: "example.com"}},
			Cc:        []Address{{Name: "Doe, John", Mailbox: "john.doe", Host: "example.net"}},
			InReplyTo: "<1000@example.com>",
			MessageID: "<1234@example.org>",
		}},
		{"rfc2047.eml", Envelope{
			Date:    "6 Jan 2006 09:00 GMT",
			Subject: "=?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?= =?UTF-8?Q?_und_K=C3=B6ln?=",
			From:    []Address{{Name: "=?ISO-8859-1?Q?Andr=E9?= Pirard", Mailbox: "PIRARD", Host: "vm1.ulg.ac.be"}},
			Sender:  []Address{{Name: "=?ISO-8859-1?Q?Andr=E9?= Pirard", Mailbox: "PIRARD", Host: "vm1.ulg.ac.be"}},
			ReplyTo: []Address{{Name: "=?ISO-8859-1?Q?Andr=E9?= Pirard", Mailbox: "PIRARD", Host: "vm1.ulg.ac.be"}},
			To:      []Address{{Name: "=?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?=", Mailbox: "juergen", Host: "example.de"}},
		}},
		{"groups.eml", Envelope{
			Date:    "Fri, 6 Jan 2006 09:00:00 +0000",
			Subject: "Groups",
			From:    []Address{{Name: "Alice", Mailbox: "alice", Host: "example.org"}},
			Sender:  []Address{{Name: "Alice", Mailbox: "alice", Host: "example.org"}},
			ReplyTo: []Address{{Name: "Alice", Mailbox: "alice", Host: "example.org"}},
			To:      []Address{{Mailbox: "undisclosed-recipients", GroupStart: true}, {GroupEnd: true}},
			Cc: []Address{
				{Mailbox: "Team", GroupStart: true},
				{Name: "Smith, Ann", Mailbox: "ann", Host: "example.org"},
				{Name: "Bob B", Mailbox: "bob", Host: "example.org"},
				{GroupEnd: true},
				{Mailbox: "dan", Host: "example.com"},
			},
			Bcc: []Address{
				{Route: "@relay1.example,@relay2.example", Mailbox: "route", Host: "example.org"},
				{Mailbox: "nodomain", Host: MissingDomain},
				{Name: "Quoted Name", Mailbox: MissingMailbox, Host: MissingDomain},
			},
			MessageID: "<groups@example.org>",
		}},
		{"8bit-headers.eml", Envelope{
			Subject: "Caf\xe9 cr\xe8me",
			From:    []Address{{Name: "Jürgen Müller", Mailbox: "jm", Host: "example.de"}},
			Sender:  []Address{{Name: "Jürgen Müller", Mailbox: "jm", Host: "example.de"}},
			ReplyTo: []Address{{Name: "Jürgen Müller", Mailbox: "jm", Host: "example.de"}},
			To:      []Address{{Mailbox: "x", Host: "example.org"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := load(t, tt.file).Envelope()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("envelope\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestEmbeddedEnvelope(t *testing.T) {
	m := load(t, "nested-rfc822.eml")
	p, _ := m.Part([]int{2})
	e := p.Envelope()
	if e.Subject != "Plans" || e.MessageID != "<plans@example.net>" || len(e.From) != 1 || e.From[0].Mailbox != "eve" {
		t.Errorf("embedded envelope %+v", e)
	}
	if got := m.Envelope().Subject; got != "Fwd: Plans" {
		t.Errorf("outer subject %q", got)
	}
}

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want []Address
	}{
		{"", nil},
		{"a@b", []Address{{Mailbox: "a", Host: "b"}}},
		{"<a@b>", []Address{{Mailbox: "a", Host: "b"}}},
		{`"A \"B\" C" <a@b>`, []Address{{Name: `A "B" C`, Mailbox: "a", Host: "b"}}},
		{"John  Q.  Public <jqp@example.com>", []Address{{Name: "John Q. Public", Mailbox: "jqp", Host: "example.com"}}},
		{"a@b (Comment (nested))", []Address{{Name: "Comment (nested)", Mailbox: "a", Host: "b"}}},
		{"a@b; c@d", []Address{{Mailbox: "a", Host: "b"}, {Mailbox: "c", Host: "d"}}},
		{"a@b,,, ,c@d", []Address{{Mailbox: "a", Host: "b"}, {Mailbox: "c", Host: "d"}}},
		{"g: a@b", []Address{{Mailbox: "g", GroupStart: true}, {Mailbox: "a", Host: "b"}, {GroupEnd: true}}},
		{`"quoted local"@example.org`, []Address{{Mailbox: "quoted local", Host: "example.org"}}},
		{"a@[192.0.2.1]", []Address{{Mailbox: "a", Host: "[192.0.2.1]"}}},
		{"Name <a@b", []Address{{Name: "Name", Mailbox: "a", Host: "b"}}},
		{`"unterminated <a@b>`, []Address{{Mailbox: "unterminated <a@b>", Host: MissingDomain}}},
		{"@", nil},
		{"<>", []Address{{Mailbox: MissingMailbox, Host: MissingDomain}}},
		{"=?utf-8?q?J=C3=BCrgen?= <j@x>", []Address{{Name: "=?utf-8?q?J=C3=BCrgen?=", Mailbox: "j", Host: "x"}}},
	}
	for _, tt := range tests {
		if got := ParseAddressList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAddressList(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
}

func TestDeepNesting(t *testing.T) {
	m := load(t, "deep-nesting.eml")
	checkInvariants(t, m)
	depth := 0
	p := m.Root()
	for p.IsMultipart() {
		if len(p.Children) != 1 {
			t.Fatalf("depth %d: %d children", depth, len(p.Children))
		}
		p = p.Children[0]
		depth++
	}
	if depth != MaxDepth {
		t.Errorf("multipart depth %d, want %d", depth, MaxDepth)
	}
	if p.Type != "application" || p.Subtype != "octet-stream" {
		t.Errorf("part at the limit is %s/%s", p.Type, p.Subtype)
	}
	// The capped part still holds all the deeper content.
	if !strings.Contains(string(p.Body()), "the bottom") {
		t.Errorf("capped part lost its content")
	}
	path := make([]int, MaxDepth)
	for i := range path {
		path[i] = 1
	}
	if b, ok := m.Section(Section{Path: path}); !ok || !strings.Contains(string(b), "the bottom") {
		t.Errorf("section at the limit: %v %q", ok, b)
	}
}

func TestNestedMessageDepth(t *testing.T) {
	// message/rfc822 nested beyond MaxDepth.
	var b strings.Builder
	for i := 0; i < MaxDepth+10; i++ {
		b.WriteString("Subject: level " + fmt.Sprint(i) + "\r\nContent-Type: message/rfc822\r\n\r\n")
	}
	b.WriteString("Subject: bottom\r\n\r\nbottom text\r\n")
	m := Parse([]byte(b.String()))
	checkInvariants(t, m)
	n := 0
	for p := m.Root(); p.Embedded != nil; p = p.Embedded {
		n++
	}
	if n != MaxDepth {
		t.Errorf("embedded depth %d, want %d", n, MaxDepth)
	}
}

func TestMaxParts(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=x\r\n\r\n")
	for i := 0; i < MaxParts+100; i++ {
		b.WriteString("--x\r\n\r\np\r\n")
	}
	b.WriteString("--x--\r\n")
	m := Parse([]byte(b.String()))
	checkInvariants(t, m)
	if n := len(m.Root().Children); n != MaxParts-1 {
		t.Errorf("%d children, want %d", n, MaxParts-1)
	}
}

func TestHeaderEdgeCases(t *testing.T) {
	tests := []struct {
		name, raw string
		headerEnd int64
		subject   string
	}{
		{"no body", "Subject: x\r\n", 12, "x"},
		{"no final newline", "Subject: x", 10, "x"},
		{"empty", "", 0, ""},
		{"only blank", "\r\nbody", 2, ""},
		{"mbox From line", "From a@b Mon Jan  1 00:00:00 2024\nSubject: s\n\nbody\n", 46, "s"},
		{"garbage line", "Subject: s\nnot a header\nX: y\n\nbody", 30, "s"},
		{"orphan continuation", " cont\nSubject: s\n\n", 18, "s"},
		{"space before colon", "Subject : s\n\n", 13, "s"},
		{"lone CR at end", "Subject: s\r", 11, "s"},
		{"whitespace line is a continuation", "Subject: s\n \nX: y\n\nb", 19, "s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse([]byte(tt.raw))
			checkInvariants(t, m)
			if m.Root().HeaderEnd != tt.headerEnd {
				t.Errorf("header end %d, want %d", m.Root().HeaderEnd, tt.headerEnd)
			}
			if got := m.Envelope().Subject; got != tt.subject {
				t.Errorf("subject %q, want %q", got, tt.subject)
			}
		})
	}
}

func TestBoundaryPrefix(t *testing.T) {
	// The outer boundary is a prefix of the inner one.
	raw := "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: multipart/alternative; boundary=b-inner\r\n\r\n" +
		"--b-inner\r\n\r\none\r\n--b-inner\r\n\r\ntwo\r\n--b-inner--\r\n" +
		"--b \t\r\n\r\nthree\r\n--b--"
	m := Parse([]byte(raw))
	checkInvariants(t, m)
	want := "((text/plain[charset=us-ascii] 7bit 3 0 text/plain[charset=us-ascii] 7bit 3 0 alternative) text/plain[charset=us-ascii] 7bit 5 0 mixed)"
	if got := shape(m.Root()); got != want {
		t.Errorf("shape\n got %s\nwant %s", got, want)
	}
}

func TestToCRLF(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a", "a"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb\n", "a\r\nb\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"a\rb", "a\rb"},
		{"a\r\n", "a\r\n"},
	}
	for _, tt := range tests {
		got := ToCRLF([]byte(tt.in))
		if string(got) != tt.want {
			t.Errorf("ToCRLF(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if n := CRLFLen([]byte(tt.in)); n != int64(len(tt.want)) {
			t.Errorf("CRLFLen(%q) = %d, want %d", tt.in, n, len(tt.want))
		}
	}
	in := []byte("no bare\r\n")
	if out := ToCRLF(in); &out[0] != &in[0] {
		t.Errorf("ToCRLF copied input without bare LF")
	}
	m := load(t, "bare-lf.eml")
	if m.CRLFSize() != int64(len(ToCRLF(m.Raw()))) {
		t.Errorf("CRLFSize %d, ToCRLF length %d", m.CRLFSize(), len(ToCRLF(m.Raw())))
	}
}

func TestAllFixturesInvariants(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			m := load(t, filepath.Base(f))
			checkInvariants(t, m)
			checkSections(t, m)
		})
	}
}
