package mailboxname

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Modified UTF-7 for mailbox names, RFC 3501 §5.1.3: printable US-ASCII
// (0x20-0x7e) represents itself, except "&" which is "&-"; any other
// character is UTF-16 in modified BASE64 (RFC 2152 with "," instead of
// "/", no padding) between "&" and "-".

const mbase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

var mbase64Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(mbase64); i++ {
		t[mbase64[i]] = int8(i)
	}
	return t
}()

var errMUTF7 = errors.New("mailboxname: invalid modified UTF-7")

func printable(r rune) bool { return 0x20 <= r && r <= 0x7e }

// EncodeMUTF7 encodes a UTF-8 mailbox name in modified UTF-7. Invalid
// UTF-8 is encoded as U+FFFD. The result is canonical: DecodeMUTF7
// accepts exactly the strings EncodeMUTF7 can produce.
func EncodeMUTF7(s string) string {
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		b.WriteByte('&')
		var acc uint32
		bits := 0
		for _, u := range run {
			acc = acc<<16 | uint32(u)
			bits += 16
			for bits >= 6 {
				bits -= 6
				b.WriteByte(mbase64[acc>>bits&0x3f])
			}
		}
		if bits > 0 {
			b.WriteByte(mbase64[acc<<(6-bits)&0x3f])
		}
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if printable(r) {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteByte(byte(r))
			}
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			run = append(run, uint16(r1), uint16(r2))
		} else {
			run = append(run, uint16(r))
		}
	}
	flush()
	return b.String()
}

// DecodeMUTF7 decodes a modified UTF-7 mailbox name to UTF-8. It refuses
// anything EncodeMUTF7 would not produce, so that one name has one
// spelling: bytes outside printable US-ASCII, a "&" without "-", BASE64
// for a printable US-ASCII character, nonzero padding bits, two adjacent
// BASE64 runs, and unpaired UTF-16 surrogates (RFC 3501 §5.1.3).
func DecodeMUTF7(s string) (string, error) {
	// Fast path: most names are plain ASCII.
	if strings.IndexByte(s, '&') < 0 {
		for i := 0; i < len(s); i++ {
			if !printable(rune(s[i])) {
				return "", errMUTF7
			}
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	afterRun := false // the previous token was a BASE64 run
	for i := 0; i < len(s); {
		c := s[i]
		if !printable(rune(c)) {
			return "", errMUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			afterRun = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errMUTF7
		}
		enc := s[i+1 : i+1+end]
		i += end + 2
		if enc == "" {
			b.WriteByte('&')
			afterRun = false
			continue
		}
		if afterRun {
			return "", errMUTF7
		}
		if err := decodeRun(&b, enc); err != nil {
			return "", err
		}
		afterRun = true
	}
	return b.String(), nil
}

// decodeRun decodes the modified BASE64 between "&" and "-".
func decodeRun(b *strings.Builder, enc string) error {
	var acc uint32
	bits := 0
	var units []uint16
	for i := 0; i < len(enc); i++ {
		v := mbase64Index[enc[i]]
		if v < 0 {
			return errMUTF7
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 16 {
			bits -= 16
			units = append(units, uint16(acc>>bits))
			acc &= 1<<bits - 1
		}
	}
	// Leftover bits are padding: fewer than 6 and all zero.
	if bits >= 6 || acc != 0 || len(units) == 0 {
		return errMUTF7
	}
	for i := 0; i < len(units); i++ {
		u := rune(units[i])
		switch {
		case utf16.IsSurrogate(u):
			if u >= 0xdc00 || i+1 >= len(units) {
				return errMUTF7
			}
			r := utf16.DecodeRune(u, rune(units[i+1]))
			if r == utf8.RuneError {
				return errMUTF7
			}
			b.WriteRune(r)
			i++
		case printable(u):
			return errMUTF7
		default:
			b.WriteRune(u)
		}
	}
	return nil
}
