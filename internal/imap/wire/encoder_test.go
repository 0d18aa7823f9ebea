package wire

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func encode(utf8 bool, f func(e *Encoder)) string {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	e := NewEncoder(w)
	e.UTF8 = utf8
	f(e)
	if err := e.Flush(); err != nil {
		panic(err)
	}
	return b.String()
}

func TestEncoderString(t *testing.T) {
	long := strings.Repeat("x", MaxQuoted)
	tests := []struct {
		name string
		in   string
		utf8 bool
		want string
	}{
		{"plain", "hello world", false, `"hello world"`},
		{"empty", "", false, `""`},
		{"escapes", `a"b\c`, false, `"a\"b\\c"`},
		{"tab stays quoted", "a\tb", false, "\"a\tb\""},
		{"CR", "a\rb", false, "{3}\r\na\rb"},
		{"LF", "line1\nline2", false, "{11}\r\nline1\nline2"},
		{"NUL sent as 0x80", "a\x00", false, "{2}\r\na\x80"},
		{"8-bit rev1", "Grüße", false, "{7}\r\nGrüße"},
		{"8-bit utf8", "Grüße", true, `"Grüße"`},
		{"invalid utf8", "\xff", true, "{1}\r\n\xff"},
		{"at MaxQuoted", long, false, `"` + long + `"`},
		{"over MaxQuoted", long + "y", false, "{1025}\r\n" + long + "y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := encode(tt.utf8, func(e *Encoder) { e.String(tt.in) }); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEncoderValues(t *testing.T) {
	date := time.Date(1996, 7, 7, 2, 44, 25, 0, time.FixedZone("", -7*3600))
	tests := []struct {
		name string
		f    func(e *Encoder)
		want string
	}{
		{"astring atom", func(e *Encoder) { e.AString("Sent]") }, "Sent]"},
		{"astring space", func(e *Encoder) { e.AString("a b") }, `"a b"`},
		{"astring empty", func(e *Encoder) { e.AString("") }, `""`},
		{"astring NIL", func(e *Encoder) { e.AString("nil") }, `"nil"`},
		{"astring wildcard", func(e *Encoder) { e.AString("a*") }, `"a*"`},
		{"nstring nil", func(e *Encoder) { e.NString("x", true) }, "NIL"},
		{"nstring", func(e *Encoder) { e.NString("x", false) }, `"x"`},
		{"mailbox inbox", func(e *Encoder) { e.Mailbox("inbox", false) }, "INBOX"},
		{"mailbox mutf7", func(e *Encoder) { e.Mailbox("~peter/mail/台北/日本語", false) }, "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"mailbox utf8", func(e *Encoder) { e.Mailbox("台北", true) }, "{6}\r\n台北"},
		{"mailbox amp space", func(e *Encoder) { e.Mailbox("A & B", false) }, `"A &- B"`},
		{"datetime", func(e *Encoder) { e.DateTime(date) }, `" 7-Jul-1996 02:44:25 -0700"`},
		{"flags", func(e *Encoder) { e.Flags([]string{`\Seen`, "$Forwarded"}) }, `(\Seen $Forwarded)`},
		{"no flags", func(e *Encoder) { e.Flags(nil) }, `()`},
		{"list", func(e *Encoder) { e.List(3, func(i int) { e.Number(uint32(i)) }) }, "(0 1 2)"},
		{"literal", func(e *Encoder) { e.Literal([]byte("abc")) }, "{3}\r\nabc"},
		{"literal NUL as 0x80", func(e *Encoder) { e.Literal([]byte("\x00a\x00\x00b\x00")) }, "{6}\r\n\x80a\x80\x80b\x80"},
		{"literal8", func(e *Encoder) { e.Literal8([]byte("a\x00")) }, "~{2}\r\na\x00"},
		{"literal from", func(e *Encoder) { e.LiteralFrom(strings.NewReader("hello!"), 5, false) }, "{5}\r\nhello"},
		{"numbers", func(e *Encoder) { e.Number(4294967295).SP().Number64(9223372036854775807) }, "4294967295 9223372036854775807"},
		{"seqset", func(e *Encoder) { s, _ := ParseSeqSet("3,1:2,7"); e.SeqSet(s.Resolve(7)) }, "1:3,7"},
		{"untagged", func(e *Encoder) { e.Untagged().Number(3).SP().Atom("EXISTS").CRLF() }, "* 3 EXISTS\r\n"},
		{"tagged", func(e *Encoder) { e.Tagged("a1").Atom("OK").SP().Text("done").CRLF() }, "a1 OK done\r\n"},
		{"continue", func(e *Encoder) { e.Continue("Ready for literal data") }, "+ Ready for literal data\r\n"},
		{"text sanitized", func(e *Encoder) { e.Text("a\r\nb\x00é") }, "a  b ?"},
		{"special", func(e *Encoder) { e.Special('[').Atom("ALERT").Special(']') }, "[ALERT]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := encode(false, tt.f); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if got := encode(true, func(e *Encoder) { e.Text("é\n") }); got != "é " {
		t.Errorf("UTF8 text = %q", got)
	}
}

// The encoder's output decodes to what was encoded.
func TestEncoderDecoderRoundTrip(t *testing.T) {
	values := []string{"", "a", "a b", `"\`, "Grüße", "x\r\ny", strings.Repeat("z", 2000), "NIL", "{3}"}
	for _, utf8 := range []bool{false, true} {
		for _, v := range values {
			wire := encode(utf8, func(e *Encoder) { e.AString(v) })
			d, _ := args(t, wire+"\r\n", Limits{})
			got, err := d.AString()
			if err != nil || got != v {
				t.Errorf("AString round trip of %q via %q: %q, %v", v, wire, got, err)
			}
		}
	}
	for _, name := range []string{"INBOX", "Entwürfe", "A&B", "~peter/mail/台北/日本語", "a b*"} {
		wire := encode(false, func(e *Encoder) { e.Mailbox(name, false) })
		d, _ := args(t, wire+"\r\n", Limits{})
		if got, err := d.Mailbox(false); err != nil || got != name {
			t.Errorf("Mailbox round trip of %q via %q: %q, %v", name, wire, got, err)
		}
	}
	date := time.Date(2024, 2, 9, 8, 7, 6, 0, time.FixedZone("", 3600+1800))
	wire := encode(false, func(e *Encoder) { e.DateTime(date) })
	d, _ := args(t, wire+"\r\n", Limits{})
	if got, err := d.DateTime(); err != nil || !got.Equal(date) {
		t.Errorf("DateTime round trip via %q: %v, %v", wire, got, err)
	}
}

type failWriter struct{ n int }

var errWrite = errors.New("write failed")

func (w *failWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errWrite
}

func TestEncoderStickyError(t *testing.T) {
	fw := &failWriter{}
	e := NewEncoder(bufio.NewWriterSize(fw, 16))
	e.Atom(strings.Repeat("x", 100)).SP().String("abc")
	if e.Err() != errWrite {
		t.Fatalf("Err = %v", e.Err())
	}
	e.Atom(strings.Repeat("y", 100))
	if err := e.Flush(); err != errWrite || fw.n != 1 {
		t.Fatalf("Flush = %v after %d writes", err, fw.n)
	}
	var b bytes.Buffer
	e = NewEncoder(bufio.NewWriter(&b))
	e.LiteralFrom(strings.NewReader("ab"), 5, false)
	if e.Err() == nil {
		t.Fatal("short LiteralFrom did not fail")
	}
}
