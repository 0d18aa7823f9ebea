package message

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unsafe"
)

func TestSection(t *testing.T) {
	nested := load(t, "nested-rfc822.eml")
	nraw := string(nested.Raw())
	embedded := nraw[strings.Index(nraw, "From: Eve"):strings.Index(nraw, "\r\n--outer--")]
	eHeader := embedded[:strings.Index(embedded, "\r\n\r\n")+4]
	eText := embedded[len(eHeader):]

	simple := load(t, "simple.eml")
	sraw := string(simple.Raw())
	sHeader := sraw[:strings.Index(sraw, "\r\n\r\n")+4]

	lf := load(t, "bare-lf.eml")

	tests := []struct {
		name string
		m    *Message
		s    Section
		want string
		ok   bool
	}{
		{"whole", simple, Section{}, sraw, true},
		{"header", simple, Section{Specifier: "HEADER"}, sHeader, true},
		{"text", simple, Section{Specifier: "TEXT"}, sraw[len(sHeader):], true},
		{"lower-case specifier", simple, Section{Specifier: "text"}, sraw[len(sHeader):], true},
		{"part 1 of single part", simple, Section{Path: []int{1}}, sraw[len(sHeader):], true},
		{"1.MIME of single part", simple, Section{Path: []int{1}, Specifier: "MIME"}, sHeader, true},
		{"part 2 of single part", simple, Section{Path: []int{2}}, "", false},
		{"MIME without path", simple, Section{Specifier: "MIME"}, "", false},
		{"1.HEADER of non-message", simple, Section{Path: []int{1}, Specifier: "HEADER"}, "", false},
		{"unknown specifier", simple, Section{Specifier: "BOGUS"}, "", false},
		{"part 0", simple, Section{Path: []int{0}}, "", false},
		{"fields with continuation", simple, Section{Specifier: "HEADER.FIELDS", Fields: []string{"SUBJECT", "received"}},
			"Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n\tby mail.example.com with ESMTP; Mon, 2 Jan 2006 15:04:05 -0700\r\nSubject: Lunch\r\n tomorrow?\r\n\r\n", true},
		{"fields none match", simple, Section{Specifier: "HEADER.FIELDS", Fields: []string{"X-Nothing"}}, "\r\n", true},
		{"fields not", simple, Section{Specifier: "HEADER.FIELDS.NOT", Fields: []string{"Received", "Return-Path", "Subject", "cc", "To", "From", "Date", "Message-ID", "In-Reply-To"}},
			"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", true},

		{"nested 1", nested, Section{Path: []int{1}}, "Forwarding the plans below.", true},
		{"nested 1.MIME", nested, Section{Path: []int{1}, Specifier: "MIME"}, "Content-Type: text/plain\r\n\r\n", true},
		{"nested 2", nested, Section{Path: []int{2}}, embedded, true},
		{"nested 2.MIME", nested, Section{Path: []int{2}, Specifier: "MIME"}, "Content-Type: message/rfc822\r\nContent-Description: forwarded message\r\n\r\n", true},
		{"nested 2.HEADER", nested, Section{Path: []int{2}, Specifier: "HEADER"}, eHeader, true},
		{"nested 2.TEXT", nested, Section{Path: []int{2}, Specifier: "TEXT"}, eText, true},
		{"nested 2.HEADER.FIELDS", nested, Section{Path: []int{2}, Specifier: "HEADER.FIELDS", Fields: []string{"subject", "MESSAGE-ID"}}, "Subject: Plans\r\nMessage-ID: <plans@example.net>\r\n\r\n", true},
		{"nested 2.1", nested, Section{Path: []int{2, 1}}, "The secret plans are in the vault.", true},
		{"nested 2.2.MIME", nested, Section{Path: []int{2, 2}, Specifier: "MIME"}, "Content-Type: text/html; charset=utf-8\r\n\r\n", true},
		{"nested 2.3", nested, Section{Path: []int{2, 3}}, "", false},
		{"nested 3", nested, Section{Path: []int{3}}, "", false},
		{"nested 1.HEADER", nested, Section{Path: []int{1}, Specifier: "HEADER"}, "", false},
		{"nested 2.1.1 leaf is its own part 1", nested, Section{Path: []int{2, 1, 1}}, "The secret plans are in the vault.", true},
		{"nested 2.1.2", nested, Section{Path: []int{2, 1, 2}}, "", false},
		{"nested HEADER.FIELDS", nested, Section{Specifier: "HEADER.FIELDS", Fields: []string{"Subject"}}, "Subject: Fwd: Plans\r\n\r\n", true},

		{"LF fields", lf, Section{Specifier: "HEADER.FIELDS", Fields: []string{"subject"}}, "Subject: bare LF\n\n", true},
		{"LF part 1", lf, Section{Path: []int{1}}, "line one\nline two", true},
		{"LF 2.MIME", lf, Section{Path: []int{2}, Specifier: "MIME"}, "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.m.Section(tt.s)
			if ok != tt.ok || string(got) != tt.want {
				t.Errorf("Section(%+v) = %q, %v\nwant %q, %v", tt.s, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestSectionHeaderWithoutBlankLine(t *testing.T) {
	m := Parse([]byte("Subject: a\r\nFrom: b@c"))
	got, ok := m.Section(Section{Specifier: "HEADER.FIELDS", Fields: []string{"from", "subject"}})
	if want := "Subject: a\r\nFrom: b@c\r\n\r\n"; !ok || string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDigestSections(t *testing.T) {
	m := load(t, "digest.eml")
	got, ok := m.Section(Section{Path: []int{1}, Specifier: "HEADER.FIELDS", Fields: []string{"subject"}})
	if !ok || string(got) != "Subject: first\r\n\r\n" {
		t.Errorf("1.HEADER.FIELDS = %q, %v", got, ok)
	}
	got, ok = m.Section(Section{Path: []int{1, 1}})
	if !ok || string(got) != "first message" {
		t.Errorf("1.1 = %q, %v", got, ok)
	}
}

func TestBinary(t *testing.T) {
	pdf := make([]byte, 0, 1024)
	for i := 0; i < 4; i++ {
		for b := 0; b < 256; b++ {
			pdf = append(pdf, byte(b))
		}
	}
	tests := []struct {
		file string
		path []int
		want string
		err  error
	}{
		{"mixed-attachment.eml", []int{2}, string(pdf), nil},
		{"mixed-attachment.eml", []int{1}, "See the attached report. Gr\xfc\xdfe", nil},
		{"alternative.eml", []int{1}, "Grüße aus München, lieber Herr Müller! This is a long line.", nil},
		{"alternative.eml", []int{3}, "", ErrNoPart},
		{"garbage-cte.eml", []int{1}, "", ErrUnknownCTE},
		{"garbage-cte.eml", []int{2}, "Hello world", nil},
		{"garbage-cte.eml", []int{3}, "Broken =ZZ escape and softbreak = end", nil},
		{"bare-lf.eml", []int{2}, "Äpfel\n", nil},
		{"nested-rfc822.eml", []int{2, 1}, "The secret plans are in the vault.", nil},
		{"simple.eml", []int{1}, "Hi Bob,\r\n\r\nShall we have lunch tomorrow at noon?\r\n\r\nAlice\r\n", nil},
	}
	for _, tt := range tests {
		m := load(t, tt.file)
		got, err := m.Binary(tt.path)
		if !errors.Is(err, tt.err) || string(got) != tt.want {
			t.Errorf("%s Binary(%v) = %q, %v\nwant %q, %v", tt.file, tt.path, got, err, tt.want, tt.err)
		}
		n, err := m.BinarySize(tt.path)
		if !errors.Is(err, tt.err) || n != int64(len(tt.want)) {
			t.Errorf("%s BinarySize(%v) = %d, %v, want %d, %v", tt.file, tt.path, n, err, len(tt.want), tt.err)
		}
	}
	m := load(t, "simple.eml")
	if b, err := m.Binary(nil); err != nil || !bytes.Equal(b, m.Raw()) {
		t.Errorf("Binary(nil) is not the raw message")
	}
}

func TestDecodeQP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a=3Db", "a=b"},
		{"a=3db", "a=b"},
		{"soft=\r\nbreak", "softbreak"},
		{"soft=\nbreak", "softbreak"},
		{"soft= \t\r\nbreak", "softbreak"},
		{"trailing   \r\nspace", "trailing\r\nspace"},
		{"kept=20\r\n", "kept \r\n"},
		{"bad=G1", "bad=G1"},
		{"end=", "end"},
		{"end=4", "end=4"},
		{"=", ""},
	}
	for _, tt := range tests {
		if got := string(decodeQP([]byte(tt.in), false)); got != tt.want {
			t.Errorf("decodeQP(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeBase64(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"aGVsbG8=", "hello"},
		{"aGVs\r\nbG8=", "hello"},
		{"aGVsbG8", "hello"},
		{"aGVsbA", "hell"},
		{"a", ""},
		{"!!aG Vs*bG8=trailing", "hello"},
	}
	for _, tt := range tests {
		if got := string(decodeBase64([]byte(tt.in))); got != tt.want {
			t.Errorf("decodeBase64(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if n := base64Len([]byte(tt.in)); n != int64(len(tt.want)) {
			t.Errorf("base64Len(%q) = %d, want %d", tt.in, n, len(tt.want))
		}
	}
}

// within reports whether b is a sub-slice of raw (or empty).
func within(b, raw []byte) bool {
	if len(b) == 0 {
		return true
	}
	if len(raw) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= start && p+uintptr(len(b)) <= start+uintptr(len(raw))
}

// partPaths lists the paths of every addressable part (bounded), walking
// the tree by the numbering rules; checkSections resolves them through
// Message.Part, so the two must agree.
func partPaths(m *Message) [][]int {
	var out [][]int
	var visit func(prefix []int, p *Part, message bool)
	visit = func(prefix []int, p *Part, message bool) {
		if len(out) >= 5000 {
			return
		}
		if !message && p.Embedded != nil {
			visit(prefix, p.Embedded, true)
			return
		}
		if p.IsMultipart() {
			for i, c := range p.Children {
				path := append(append([]int(nil), prefix...), i+1)
				out = append(out, path)
				visit(path, c, false)
			}
			return
		}
		if message {
			path := append(append([]int(nil), prefix...), 1)
			out = append(out, path)
			if p.Embedded != nil {
				visit(path, p.Embedded, true)
			}
		}
	}
	visit(nil, m.Root(), true)
	return out
}

// checkSections fetches every section of every part and checks that the
// bytes come from the raw message.
func checkSections(t testing.TB, m *Message) {
	t.Helper()
	raw := m.Raw()
	paths := append([][]int{nil}, partPaths(m)...)
	for _, path := range paths {
		for _, spec := range []string{"", "HEADER", "TEXT", "MIME", "HEADER.FIELDS", "HEADER.FIELDS.NOT"} {
			s := Section{Path: path, Specifier: spec, Fields: []string{"Subject", "Content-Type", "From"}}
			b, ok := m.Section(s)
			if !ok {
				if spec == "" {
					t.Fatalf("Section(%v) missing for a listed part", path)
				}
				continue
			}
			if strings.HasPrefix(spec, "HEADER.FIELDS") {
				msg, _ := m.Part(path)
				if len(path) > 0 {
					msg = msg.Embedded
				}
				hdr := raw[msg.HeaderStart:msg.HeaderEnd]
				// Field lines from the header, then a blank line.
				lines := bytes.SplitAfter(b, []byte("\n"))
				if last := lines[len(lines)-1]; len(last) != 0 || len(lines) < 2 || len(bytes.TrimRight(lines[len(lines)-2], "\r\n")) != 0 {
					t.Fatalf("Section(%v %s) = %q does not end with a blank line", path, spec, b)
				}
				for _, line := range lines[:len(lines)-2] {
					line = bytes.TrimRight(line, "\r\n")
					if len(line) == 0 || !bytes.Contains(hdr, line) {
						t.Fatalf("Section(%v %s) line %q is not in the header", path, spec, line)
					}
				}
				continue
			}
			if !within(b, raw) {
				t.Fatalf("Section(%v %s) is not within the raw message", path, spec)
			}
		}
		if len(path) > 0 {
			b, err := m.Binary(path)
			if err == nil {
				if n, err := m.BinarySize(path); err != nil || n != int64(len(b)) {
					t.Fatalf("BinarySize(%v) = %d, %v; len(Binary) = %d", path, n, err, len(b))
				}
			} else if !errors.Is(err, ErrUnknownCTE) {
				t.Fatalf("Binary(%v): %v", path, err)
			}
		}
	}
}
