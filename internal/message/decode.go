package message

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
)

// decodeCTE undoes a Content-Transfer-Encoding (RFC 2045 §6). The identity
// encodings return body itself. Decoding is lenient: base64 ignores bytes
// outside its alphabet and stops at padding; quoted-printable keeps '='
// sequences it cannot decode.
func decodeCTE(enc string, body []byte) ([]byte, error) {
	switch enc {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "base64":
		return decodeBase64(body), nil
	case "quoted-printable":
		return decodeQP(body, false), nil
	}
	return nil, ErrUnknownCTE
}

// base64Value maps a byte to its base64 value, or 0xff.
var base64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	// The URL-safe alphabet turns up in the wild too.
	t['-'], t['_'] = 62, 63
	return t
}()

// decodeBase64 decodes base64 leniently: bytes outside the alphabet (line
// endings, spaces, garbage) are skipped, '=' ends the data, and a trailing
// partial group yields the whole bytes it holds.
func decodeBase64(src []byte) []byte {
	dst := make([]byte, 0, len(src)*3/4+3)
	var acc uint32
	n := 0
	for _, c := range src {
		if c == '=' {
			break
		}
		v := base64Value[c]
		if v == 0xff {
			continue
		}
		acc = acc<<6 | uint32(v)
		n++
		if n == 4 {
			dst = append(dst, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, n = 0, 0
		}
	}
	switch n {
	case 2:
		dst = append(dst, byte(acc>>4))
	case 3:
		dst = append(dst, byte(acc>>10), byte(acc>>2))
	}
	return dst
}

// decodeQP decodes quoted-printable (RFC 2045 §6.7) leniently. With
// header set it decodes the RFC 2047 "Q" form instead ('_' is a space, no
// soft line breaks). Trailing white space on a line is dropped, as rule 3
// asks; line endings are kept as they are.
func decodeQP(src []byte, header bool) []byte {
	dst := make([]byte, 0, len(src))
	lineStart := 0 // in dst: where trailing white space may be trimmed back to
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '=':
			if i+2 < len(src) {
				hi, ok1 := unhex(src[i+1])
				lo, ok2 := unhex(src[i+2])
				if ok1 && ok2 {
					dst = append(dst, hi<<4|lo)
					i += 2
					lineStart = len(dst)
					continue
				}
			}
			if !header {
				// Soft line break: '=' then optional white space then the line end.
				j := i + 1
				for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
					j++
				}
				if j == len(src) {
					i = j - 1
					continue
				}
				if src[j] == '\n' {
					i = j
					lineStart = len(dst)
					continue
				}
				if src[j] == '\r' && j+1 < len(src) && src[j+1] == '\n' {
					i = j + 1
					lineStart = len(dst)
					continue
				}
			}
			dst = append(dst, c)
			lineStart = len(dst)
		case c == '_' && header:
			dst = append(dst, ' ')
		case !header && (c == '\r' || c == '\n'):
			// Drop transport padding before the line ending.
			k := len(dst)
			for k > lineStart && (dst[k-1] == ' ' || dst[k-1] == '\t') {
				k--
			}
			dst = append(dst[:k], c)
			lineStart = len(dst)
		default:
			dst = append(dst, c)
			if c != ' ' && c != '\t' {
				lineStart = len(dst)
			}
		}
	}
	return dst
}

// isUTF8Name reports charset names that need no conversion.
func isUTF8Name(cs string) bool {
	switch strings.ToLower(strings.TrimSpace(cs)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii", "x-unknown", "unknown-8bit", "default":
		return true
	}
	return false
}

// toUTF8 converts b from the named charset to UTF-8. An unknown charset,
// or one whose decoder fails, leaves b as it is: searching the raw bytes
// beats finding nothing.
func toUTF8(cs string, b []byte) []byte {
	if isUTF8Name(cs) {
		return b
	}
	if ascii(b) && asciiCompatible(cs) {
		return b
	}
	r, err := charset.Reader(strings.TrimSpace(cs), bytes.NewReader(b))
	if err != nil {
		return b
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return b
	}
	return out
}

// asciiCompatible reports the common charsets that map ASCII bytes to
// themselves, for which ASCII text needs no decoder. (UTF-7, UTF-16,
// ISO-2022 and EBCDIC do not.)
func asciiCompatible(cs string) bool {
	cs = strings.ToLower(strings.TrimSpace(cs))
	for _, prefix := range [...]string{"iso-8859-", "iso8859-", "windows-125", "cp125", "koi8-", "latin"} {
		if strings.HasPrefix(cs, prefix) {
			return true
		}
	}
	return false
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// asUTF8 makes text UTF-8 for searching: 8-bit bytes that are not UTF-8
// (undeclared 8-bit in headers, where RFC 6532 allows only UTF-8, or in a
// body without a charset) are read as Windows-1252, their most common
// source.
func asUTF8(b []byte) []byte {
	if ascii(b) || utf8.Valid(b) {
		return b
	}
	out, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		return b
	}
	return out
}

// decodeWords decodes RFC 2047 encoded-words in s. White space between two
// adjacent encoded-words is dropped (§6.2). Malformed words are left as
// they are. Words inside other text or quoted strings are decoded too, as
// mail readers do.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	var out []byte
	i := 0
	pendingEW := false
	for i < len(s) {
		j := strings.Index(s[i:], "=?")
		if j < 0 {
			out = append(out, s[i:]...)
			break
		}
		text := s[i : i+j]
		word, n, ok := decodeWord(s[i+j:])
		if !ok {
			out = append(out, s[i:i+j+2]...)
			i += j + 2
			pendingEW = false
			continue
		}
		if !pendingEW || strings.Trim(text, " \t\r\n") != "" {
			out = append(out, text...)
		}
		out = append(out, word...)
		i += j + n
		pendingEW = true
	}
	return string(out)
}

// decodeWord decodes the encoded-word at the start of s ("=?cs?E?text?=")
// and returns its UTF-8 text and length.
func decodeWord(s string) (string, int, bool) {
	// s starts with "=?".
	q1 := strings.IndexByte(s[2:], '?')
	if q1 < 1 {
		return "", 0, false
	}
	q1 += 2
	cs := s[2:q1]
	if strings.ContainsAny(cs, " \t\r\n") || q1+3 > len(s) || s[q1+2] != '?' {
		return "", 0, false
	}
	enc := s[q1+1]
	rest := s[q1+3:]
	e := strings.Index(rest, "?=")
	if e < 0 || strings.ContainsAny(rest[:e], "\r\n") {
		return "", 0, false
	}
	text := rest[:e]
	n := q1 + 3 + e + 2
	if star := strings.IndexByte(cs, '*'); star >= 0 {
		cs = cs[:star] // RFC 2231 §5 language suffix
	}
	var raw []byte
	switch enc {
	case 'B', 'b':
		raw = decodeBase64([]byte(text))
	case 'Q', 'q':
		raw = decodeQP([]byte(text), true)
	default:
		return "", 0, false
	}
	return string(asUTF8(toUTF8(cs, raw))), n, true
}
