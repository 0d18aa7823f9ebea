package message

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseDate: ParseDate never panics, and a date it reads, written
// back in RFC 5322's form, reads as the same instant in the same zone.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"Mon, 2 Jan 2006 15:04:05 -0700", "2 Jan 2006 15:04 +0000 (UTC)", "Mon, 02 Jan 06 15:04:05 GMT",
		"Mon Jan  2 15:04:05 2006", "2006-01-02 15:04:05", "2006-01-02T15:04:05Z", "02.01.2006 15:04", "01/02/2006",
		"Tue, 31 Feb 2023 24:00:60 EDT", "Thu, 1 Jan 1970 00:00:00 GMT+0100", "1 Jan 99 12:00 -23:59", "(comment (nested)) 1 Jan 2000",
		"31 Dec 9999 23:59:59 -1200", "0 Jan 2000", "1 Foo 2000", "", "1 Jan 2000 1:2:3:4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseDate(s)
		if !ok {
			return
		}
		if y := d.Year(); y < 0 || y > 9999 {
			return // time.Date carried a 9999-12-31 24:00 into year 10000
		}
		text := d.Format(time.RFC1123Z)
		again, ok := ParseDate(text)
		if !ok || !again.Equal(d) {
			t.Fatalf("ParseDate(%q) = %v, written %q, read back as %v, %v", s, d, text, again, ok)
		}
		_, off := d.Zone()
		if _, off2 := again.Zone(); off2 != off {
			t.Fatalf("ParseDate(%q): zone %d, written %q, read back with zone %d", s, off, text, off2)
		}
	})
}

// FuzzDecodeWords: RFC 2047 decoding leaves text without encoded-words
// alone, makes valid UTF-8 of valid UTF-8, and never grows its input by
// more than the widest charset conversion (a byte to a 3-byte rune, as
// U+FFFD).
func FuzzDecodeWords(f *testing.F) {
	for _, s := range []string{"=?utf-8?B?w4lsb2TDrWU=?=", "=?iso-8859-1?Q?fwd=3A_caf=E9?= =?iso-8859-1?Q?_b?=", "=?UTF-8*fr?q?x?=",
		"a =?x-unknown?B?/w==?= b", "=?utf-16?b?2D3eAA==?=", "=?windows-1252?q?=80=81?=", "=?utf-7?q?+AGE-?=", "=?koi8-r?B?8tXT08vJ0Q==?=",
		"=?iso-2022-jp?B?GyRCJEYkOSRIGyhC?=", "=??q?x?=", "=?utf-8?x?y?=", "=?utf-8?q?a\r\nb?=", "plain text", "=?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := decodeWords(s)
		if !strings.Contains(s, "=?") && got != s {
			t.Fatalf("decodeWords(%q) = %q without an encoded-word", s, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("decodeWords(%q) = %q, not UTF-8", s, got)
		}
		if len(got) > 3*len(s) {
			t.Fatalf("decodeWords(%q) = %d bytes from %d", s, len(got), len(s))
		}
	})
}
