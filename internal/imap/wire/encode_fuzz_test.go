package wire

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cistern-mail/cistern/internal/mailboxname"
)

// encodeThenDecode writes one value with write, followed by CRLF, and
// reads it back with read, which must consume the whole line.
func encodeThenDecode[T any](t *testing.T, utf8ok bool, write func(*Encoder), read func(*Decoder) (T, error)) (T, []byte) {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	e := NewEncoder(bw)
	e.UTF8 = utf8ok
	write(e)
	e.CRLF()
	if err := e.Flush(); err != nil {
		t.Fatalf("encoding: %v", err)
	}
	wrote := bytes.Clone(buf.Bytes())
	d := NewDecoder(bufio.NewReader(&buf), func(int64) error { return nil }, Limits{MaxString: MaxQuoted * 8})
	v, err := read(d)
	if err != nil {
		t.Fatalf("decoding %q: %v", wrote, err)
	}
	if err := d.CRLF(); err != nil {
		t.Fatalf("decoding %q: after the value: %v", wrote, err)
	}
	return v, wrote
}

// FuzzEncodeDecode: what the Encoder writes, the Decoder reads back as
// it was: astrings (in UTF-8 mode or not), mailbox names (modified UTF-7
// or UTF-8) and date-times.
func FuzzEncodeDecode(f *testing.F) {
	for _, s := range []string{"", "INBOX", "inbox", "NIL", "a b", `"quoted"`, `back\slash`, "caf\u00e9", "\xff\xfe",
		"line\r\nbreak", "Lists.Go", "~peter/mail/台北", "&", "&AGE-", "{3}", "*%", strings.Repeat("x", MaxQuoted+1)} {
		f.Add(s, false, int64(0), int16(0))
		f.Add(s, true, int64(760000000), int16(-420))
	}
	f.Add("x", false, int64(-62135596800), int16(5999))
	f.Add("x", true, int64(253402300799), int16(-5999))
	f.Fuzz(func(t *testing.T, s string, utf8ok bool, unix int64, zoneMinutes int16) {
		if !strings.Contains(s, "\x00") && len(s) <= MaxQuoted*8 {
			got, wrote := encodeThenDecode(t, utf8ok, func(e *Encoder) { e.AString(s) }, (*Decoder).AString)
			if got != s {
				t.Fatalf("AString(%q) wrote %q, read back as %q", s, wrote, got)
			}
		}
		if utf8.ValidString(s) && !strings.Contains(s, "\x00") && len(mailboxname.EncodeMUTF7(s)) <= MaxQuoted*8 {
			want := s
			if strings.EqualFold(s, "INBOX") {
				want = "INBOX"
			}
			got, wrote := encodeThenDecode(t, utf8ok, func(e *Encoder) { e.Mailbox(s, utf8ok) },
				func(d *Decoder) (string, error) { return d.Mailbox(utf8ok) })
			if got != want {
				t.Fatalf("Mailbox(%q, %v) wrote %q, read back as %q", s, utf8ok, wrote, got)
			}
		}
		// date-time has a 4-digit year and a zone of +-hhmm.
		if zoneMinutes <= -6000 || zoneMinutes >= 6000 || zoneMinutes%100 <= -60 || zoneMinutes%100 >= 60 {
			return
		}
		off := (int(zoneMinutes)/100*60 + int(zoneMinutes)%100) * 60
		when := time.Unix(unix, 0).In(time.FixedZone("", off))
		if y := when.Year(); y < 0 || y > 9999 {
			return
		}
		got, wrote := encodeThenDecode(t, false, func(e *Encoder) { e.DateTime(when) }, (*Decoder).DateTime)
		if !got.Equal(when) {
			t.Fatalf("DateTime(%v) wrote %q, read back as %v", when, wrote, got)
		}
		if _, gotOff := got.Zone(); gotOff != off {
			t.Fatalf("DateTime(%v) wrote %q, read back with offset %d", when, wrote, gotOff)
		}
	})
}
