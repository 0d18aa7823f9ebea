package message

import (
	"bytes"
	"strings"
)

// A headerField is one field of a header block, located in the raw message.
type headerField struct {
	start, end int    // the field's lines: name through the line ending of its last continuation line
	name       []byte // the field name, trailing white space removed
	value      []byte // after the colon up to the last line ending (folding line endings included)
}

// A fieldScanner walks the fields of the header block that starts at pos.
// The block ends at the first blank line (which it includes) or at end.
// Lines that are not fields (no colon, a name with white space or control
// characters, a continuation line with no field before it, an mbox "From "
// line) are skipped: RFC 5322 has no room for them, and a reader that gave
// up on them would lose the rest of the header.
type fieldScanner struct {
	raw  []byte
	pos  int
	end  int
	done bool
}

// lineEnd returns the offset just past the '\n' that ends the line starting
// at i, or end when the line is not terminated.
func lineEnd(raw []byte, i, end int) int {
	if j := bytes.IndexByte(raw[i:end], '\n'); j >= 0 {
		return i + j + 1
	}
	return end
}

// isBlankLine reports whether raw[i:j] is an empty line ("\n", "\r\n", or a
// lone "\r" at the very end).
func isBlankLine(raw []byte, i, j int) bool {
	switch j - i {
	case 1:
		return raw[i] == '\n' || raw[i] == '\r'
	case 2:
		return raw[i] == '\r' && raw[i+1] == '\n'
	}
	return false
}

// trimLineEnding returns j moved back over a final "\n" or "\r\n".
func trimLineEnding(raw []byte, i, j int) int {
	if j > i && raw[j-1] == '\n' {
		j--
		if j > i && raw[j-1] == '\r' {
			j--
		}
	}
	return j
}

// fieldName returns the name of the field line raw[i:j], or nil when the
// line is not a field.
func fieldName(raw []byte, i, j int) []byte {
	c := bytes.IndexByte(raw[i:j], ':')
	if c <= 0 {
		return nil
	}
	name := raw[i : i+c]
	// "Subject : x" is obsolete syntax (RFC 5322 §4.5) but occurs.
	for len(name) > 0 && (name[len(name)-1] == ' ' || name[len(name)-1] == '\t') {
		name = name[:len(name)-1]
	}
	if len(name) == 0 {
		return nil
	}
	for _, b := range name {
		if b <= ' ' || b >= 0x7f {
			return nil
		}
	}
	return name
}

// next returns the next field; false when the header block has ended.
// After that, s.pos is the end of the header block.
func (s *fieldScanner) next() (headerField, bool) {
	raw := s.raw
	for !s.done && s.pos < s.end {
		ls := s.pos
		le := lineEnd(raw, ls, s.end)
		s.pos = le
		if isBlankLine(raw, ls, le) {
			s.done = true
			break
		}
		if raw[ls] == ' ' || raw[ls] == '\t' {
			continue // continuation without a field
		}
		name := fieldName(raw, ls, le)
		if name == nil {
			continue
		}
		for s.pos < s.end && (raw[s.pos] == ' ' || raw[s.pos] == '\t') {
			s.pos = lineEnd(raw, s.pos, s.end)
		}
		vs := ls + bytes.IndexByte(raw[ls:le], ':') + 1
		return headerField{
			start: ls,
			end:   s.pos,
			name:  name,
			value: raw[vs:trimLineEnding(raw, vs, s.pos)],
		}, true
	}
	s.done = true
	return headerField{}, false
}

// looksLikeHeader reports whether the part raw[i:end] starts with a header
// block: a blank line, a field, or an mbox "From " line. A body part that
// starts with text is taken to have an empty header (RFC 2046 §5.1.1 requires
// the blank line, broken generators omit it).
func looksLikeHeader(raw []byte, i, end int) bool {
	if i >= end {
		return true
	}
	le := lineEnd(raw, i, end)
	if isBlankLine(raw, i, le) {
		return true
	}
	return fieldName(raw, i, le) != nil
}

// equalFoldASCII reports whether b equals the lower-case ASCII string s,
// ignoring ASCII case in b.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// unfold returns a field value with its folding line endings removed
// (RFC 5322 §2.2.3) and surrounding white space trimmed. It copies the
// value once.
func unfold(v []byte) string {
	v = trimWSP(v)
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 {
		return string(v)
	}
	var b strings.Builder
	b.Grow(len(v))
	for len(v) > 0 {
		i := bytes.IndexAny(v, "\r\n")
		if i < 0 {
			b.Write(v)
			break
		}
		b.Write(v[:i])
		v = v[i+1:]
	}
	return b.String()
}

// unfoldBytes is unfold returning a new byte slice.
func unfoldBytes(v []byte) []byte {
	v = trimWSP(v)
	out := make([]byte, 0, len(v))
	for len(v) > 0 {
		i := bytes.IndexAny(v, "\r\n")
		if i < 0 {
			out = append(out, v...)
			break
		}
		out = append(out, v[:i]...)
		v = v[i+1:]
	}
	return out
}

func isWSP(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

func trimWSP(v []byte) []byte {
	for len(v) > 0 && isWSP(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isWSP(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	return v
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
