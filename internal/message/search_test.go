package message

import (
	"reflect"
	"testing"
	"time"
)

func TestHeaderValues(t *testing.T) {
	tests := []struct {
		file, field string
		want        []string
	}{
		{"rfc2047.eml", "subject", []string{"Grüße aus München und Köln"}},
		{"rfc2047.eml", "FROM", []string{"André Pirard <PIRARD@vm1.ulg.ac.be>"}},
		{"rfc2047.eml", "to", []string{"Jürgen Müller <juergen@example.de>"}},
		{"rfc2047.eml", "x-latin", []string{"café and If you can read this yo text"}},
		{"rfc2047.eml", "x-missing", nil},
		{"simple.eml", "received", []string{"from mx.example.org (mx.example.org [192.0.2.1])\tby mail.example.com with ESMTP; Mon, 2 Jan 2006 15:04:05 -0700"}},
		{"8bit-headers.eml", "subject", []string{"Café crème"}},
		{"8bit-headers.eml", "from", []string{"Jürgen Müller <jm@example.de>"}},
	}
	for _, tt := range tests {
		if got := load(t, tt.file).HeaderValues(tt.field); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s HeaderValues(%q) = %q, want %q", tt.file, tt.field, got, tt.want)
		}
	}
}

func TestDecodeWords(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"},
		{"=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"},
		{"=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"},
		{"x =?utf-8?B?w6k=?= y", "x é y"},
		{"=?iso-8859-1?q?=E9?=", "é"},
		{"=?windows-1252?q?=80?=", "€"},
		{"=?utf-8*en?q?lang?=", "lang"},
		{"=?utf-8?x?bad?=", "=?utf-8?x?bad?="},
		{"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"},
		{"=??q?empty charset?=", "=??q?empty charset?="},
		{"=?unknown-charset?q?abc?=", "abc"},
		{"=?utf-8?q?a_b?=", "a b"},
		{"a=?utf-8?q?b?=c", "abc"},
	}
	for _, tt := range tests {
		if got := decodeWords(tt.in); got != tt.want {
			t.Errorf("decodeWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSearch(t *testing.T) {
	type op int
	const (
		header op = iota
		body
		text
	)
	tests := []struct {
		name, file  string
		op          op
		field, find string
		want        bool
	}{
		{"subject B and Q words", "rfc2047.eml", header, "subject", "grüße aus münchen und köln", true},
		{"subject upper case", "rfc2047.eml", header, "Subject", "GRÜSSE AUS", true},
		{"subject miss", "rfc2047.eml", header, "subject", "berlin", false},
		{"from latin-1 name", "rfc2047.eml", header, "from", "andré pirard", true},
		{"from display form", "rfc2047.eml", header, "from", "André Pirard <pirard@vm1.ulg.ac.be>", true},
		{"to B-encoded name", "rfc2047.eml", header, "to", "JÜRGEN MÜLLER", true},
		{"wrong field", "rfc2047.eml", header, "to", "pirard", false},
		{"any field", "rfc2047.eml", header, "", "x-latin: café", true},
		{"any field miss", "rfc2047.eml", header, "", "nowhere", false},
		{"empty needle", "simple.eml", header, "subject", "", true},
		{"absent field", "simple.eml", header, "x-none", "", false},
		{"folded subject", "simple.eml", header, "subject", "lunch tomorrow", true},
		{"address without name", "simple.eml", header, "to", "carol@example.com", true},
		{"quoted name", "simple.eml", header, "cc", "doe, john <john.doe@", true},
		{"8-bit subject", "8bit-headers.eml", header, "subject", "CAFÉ", true},
		{"8-bit from", "8bit-headers.eml", header, "from", "jürgen", true},

		{"body Müller finds MÜLLER", "rfc2047.eml", body, "", "Müller", true},
		{"body ß folds to ss", "rfc2047.eml", body, "", "GRÜSSE", true},
		{"body miss", "rfc2047.eml", body, "", "Meier", false},
		{"body not headers", "rfc2047.eml", body, "", "Pirard", false},
		{"quoted-printable utf-8", "alternative.eml", body, "", "herr müller", true},
		{"soft line break joined", "alternative.eml", body, "", "long line", true},
		{"html part", "alternative.eml", body, "", "<b>WORLD</b>", true},
		{"preamble not searched", "alternative.eml", body, "", "multi-part message", false},
		{"epilogue not searched", "alternative.eml", body, "", "epilogue", false},
		{"latin-1 body", "mixed-attachment.eml", body, "", "grüße", true},
		{"attachment not searched", "mixed-attachment.eml", body, "", "abcdefghij", false},
		{"base64 text not searched encoded", "mixed-attachment.eml", body, "", "AAECAwQFBgcICQ", false},
		{"base64 text decoded", "bare-lf.eml", body, "", "äpfel", true},
		{"embedded text", "nested-rfc822.eml", body, "", "SECRET PLANS", true},
		{"embedded header", "nested-rfc822.eml", body, "", "eve@example.net", true},
		{"undeclared 8-bit body", "8bit-headers.eml", body, "", "with é byte", true},
		{"unknown CTE searched raw", "garbage-cte.eml", body, "", "uryyb", true},
		{"text below the depth limit not searched", "deep-nesting.eml", body, "", "the bottom", false},

		{"text finds MIME header", "mixed-attachment.eml", text, "", "Quarterly report", true},
		{"text finds body", "mixed-attachment.eml", text, "", "attached report", true},
		{"text finds header", "mixed-attachment.eml", text, "", "subject: report", true},
		{"text miss", "mixed-attachment.eml", text, "", "zebra", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := load(t, tt.file)
			var got bool
			switch tt.op {
			case header:
				got = m.HeaderContains(tt.field, tt.find)
			case body:
				got = m.BodyContains(tt.find)
			case text:
				got = m.TextContains(tt.find)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatcherChunks(t *testing.T) {
	// A match that straddles the ASCII chunk boundary.
	hay := make([]byte, 10000)
	for i := range hay {
		hay[i] = 'x'
	}
	copy(hay[4090:], "NEEDLE")
	if !newMatcher("needle").match(hay) {
		t.Error("missed a match across chunks")
	}
	if newMatcher("needles").match(hay) {
		t.Error("false match")
	}
	if !newMatcher("XXX").match(hay[9990:]) {
		t.Error("missed a match in the last chunk")
	}
}

func TestParseDate(t *testing.T) {
	utc := time.UTC
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"Mon, 2 Jan 2006 15:04:05 -0700", time.Date(2006, 1, 2, 22, 4, 5, 0, utc), true},
		{"2 Jan 2006 15:04:05 +0000", time.Date(2006, 1, 2, 15, 4, 5, 0, utc), true},
		{"Mon, 02 Jan 2006 15:04 GMT", time.Date(2006, 1, 2, 15, 4, 0, 0, utc), true},
		{"Mon, 2 Jan 06 15:04:05 EST", time.Date(2006, 1, 2, 20, 4, 5, 0, utc), true},
		{"Mon, 2 Jan 99 15:04:05 +0000", time.Date(1999, 1, 2, 15, 4, 5, 0, utc), true},
		{"Mon, 2 Jan 106 15:04:05 +0000", time.Date(2006, 1, 2, 15, 4, 5, 0, utc), true},
		{"Mon, 2 Jan 2006 15:04:05 +0100 (CET)", time.Date(2006, 1, 2, 14, 4, 5, 0, utc), true},
		{"Mon,2 Jan 2006 15:04:05 GMT+0100", time.Date(2006, 1, 2, 14, 4, 5, 0, utc), true},
		{"Mon Jan  2 15:04:05 2006", time.Date(2006, 1, 2, 15, 4, 5, 0, utc), true},
		{"Monday, January 2, 2006 3:04:05 -0000", time.Date(2006, 1, 2, 3, 4, 5, 0, utc), true},
		{"2006-01-02 15:04:05", time.Date(2006, 1, 2, 15, 4, 5, 0, utc), true},
		{"2006-01-02T15:04:05Z", time.Date(2006, 1, 2, 15, 4, 5, 0, utc), true},
		{"2006-01-02T15:04:05+01:00", time.Date(2006, 1, 2, 14, 4, 5, 0, utc), true},
		{"02.01.2006 15:04", time.Date(2006, 1, 2, 15, 4, 0, 0, utc), true},
		{"2-Jan-2006 15:04:05 +0000", time.Date(2006, 1, 2, 15, 4, 5, 0, utc), true},
		{"2 Jan 2006", time.Date(2006, 1, 2, 0, 0, 0, 0, utc), true},
		{"Mon, 2 Jan 2006 15:04:05.123 +0000", time.Date(2006, 1, 2, 15, 4, 5, 0, utc), true},
		{"Sat, 31 Dec 2016 23:59:60 +0000", time.Date(2016, 12, 31, 23, 59, 59, 0, utc), true},
		{"", time.Time{}, false},
		{"garbage", time.Time{}, false},
		{"Jan 2006", time.Time{}, false},
		{"32 Jan 2006", time.Time{}, false},
		{"2 Jan 2006 25:00:00", time.Time{}, false},
		{"2 Jan 2006 1:2:3:4", time.Time{}, false},
		// Dates that do not exist are unreadable, not rolled over.
		{"Mon, 31 Feb 1994 08:00:00 +0000", time.Time{}, false},
		{"Wed, 30 Feb 1994 08:00:00 +0000", time.Time{}, false},
		{"Tue, 29 Feb 1994 08:00:00 +0000", time.Time{}, false},
		{"Tue, 29 Feb 2000 08:00:00 +0000", time.Date(2000, 2, 29, 8, 0, 0, 0, utc), true},
		{"Wed, 31 Apr 2024 08:00:00 +0000", time.Time{}, false},
		{"Mon, 2 Jan 2006 25:00:00 +0000", time.Time{}, false},
		{"Mon, 2 Jan 2006 24:00:00 +0000", time.Time{}, false},
		{"Mon, 2 Jan 2006 08:61:00 +0000", time.Time{}, false},
		{"Mon, 2 Jan 2006 08:00:61 +0000", time.Time{}, false},
		{"0 Jan 2006 08:00:00 +0000", time.Time{}, false},
		{"2006-13-02 08:00:00", time.Time{}, false},
		{"2006-02-30", time.Time{}, false},
		{"30.02.2006", time.Time{}, false},
		{"02/30/2006", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseDate(tt.in)
		if ok != tt.ok || (ok && !got.Equal(tt.want)) {
			t.Errorf("ParseDate(%q) = %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if _, off := mustDate(t, "Mon, 2 Jan 2006 15:04:05 -0700").Zone(); off != -7*3600 {
		t.Errorf("zone offset %d, want -25200", off)
	}
}

func mustDate(t *testing.T, s string) time.Time {
	t.Helper()
	d, ok := ParseDate(s)
	if !ok {
		t.Fatalf("ParseDate(%q) failed", s)
	}
	return d
}

func TestMessageDate(t *testing.T) {
	d, ok := load(t, "simple.eml").Date()
	if !ok || !d.Equal(time.Date(2006, 1, 2, 22, 4, 5, 0, time.UTC)) {
		t.Errorf("Date() = %v, %v", d, ok)
	}
	if _, ok := load(t, "8bit-headers.eml").Date(); ok {
		t.Error("Date() without a Date: field")
	}
}
