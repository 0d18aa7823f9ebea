package message

import (
	"bytes"
	"strings"
)

// Section specifiers (RFC 3501 §6.4.5, RFC 9051 §6.4.5).
const (
	SpecAll          = ""
	SpecHeader       = "HEADER"
	SpecHeaderFields = "HEADER.FIELDS"
	SpecHeaderNot    = "HEADER.FIELDS.NOT"
	SpecText         = "TEXT"
	SpecMIME         = "MIME"
)

// Section names a FETCH BODY[...] section: a part path (nil for the whole
// message), a specifier (case-insensitive; one of the Spec constants), and
// for HEADER.FIELDS and HEADER.FIELDS.NOT the field names.
type Section struct {
	Path      []int
	Specifier string
	Fields    []string
}

// Part returns the part at path, following the numbering in the package
// documentation; path nil is the root. False when there is no such part.
func (m *Message) Part(path []int) (*Part, bool) {
	return findPart(m.root, path)
}

// findPart resolves a part path. At each step the current node is either
// a message (the root, or the Embedded part of a message/rfc822) whose
// parts are numbered, or a part. A multipart's parts are its children; a
// non-multipart entity has exactly one part, 1, which is itself (its body).
// Between steps, a message/rfc822 part stands for the message it contains.
func findPart(root *Part, path []int) (*Part, bool) {
	cur := root
	for i, n := range path {
		if i > 0 && cur.Embedded != nil {
			cur = cur.Embedded
		}
		if cur.IsMultipart() && len(cur.Children) > 0 {
			if n < 1 || n > len(cur.Children) {
				return nil, false
			}
			cur = cur.Children[n-1]
		} else if n != 1 {
			return nil, false
		}
	}
	return cur, true
}

// Section returns the bytes of a section, with the line endings of the
// raw message. Except for HEADER.FIELDS and HEADER.FIELDS.NOT the result
// is a slice of the raw message (do not modify it). False when the part
// does not exist, the specifier is unknown, MIME is asked of the whole
// message, or HEADER/TEXT of a part that is not message/rfc822; the IMAP
// server then answers with an empty string or NIL (RFC 3501 §6.4.5).
func (m *Message) Section(s Section) ([]byte, bool) {
	p, ok := findPart(m.root, s.Path)
	if !ok {
		return nil, false
	}
	spec := strings.ToUpper(s.Specifier)
	if spec == SpecAll {
		if len(s.Path) == 0 {
			return m.raw, true
		}
		return m.raw[p.BodyStart:p.BodyEnd], true
	}
	if spec == SpecMIME {
		if len(s.Path) == 0 {
			return nil, false
		}
		return m.raw[p.HeaderStart:p.HeaderEnd], true
	}
	// HEADER, HEADER.FIELDS[.NOT] and TEXT address a message: the root,
	// or the message inside a message/rfc822 part.
	msg := p
	if len(s.Path) > 0 {
		if p.Embedded == nil {
			return nil, false
		}
		msg = p.Embedded
	}
	switch spec {
	case SpecHeader:
		return m.raw[msg.HeaderStart:msg.HeaderEnd], true
	case SpecText:
		return m.raw[msg.BodyStart:msg.BodyEnd], true
	case SpecHeaderFields:
		return headerFields(m.raw, int(msg.HeaderStart), int(msg.HeaderEnd), s.Fields, false), true
	case SpecHeaderNot:
		return headerFields(m.raw, int(msg.HeaderStart), int(msg.HeaderEnd), s.Fields, true), true
	}
	return nil, false
}

// headerFields returns the fields of the header raw[start:end] whose name
// is (not, with exclude) in names, in their original order and with their
// continuation lines, followed by the header's blank line ("\r\n" when the
// header has none). Lines that are not fields are never returned.
func headerFields(raw []byte, start, end int, names []string, exclude bool) []byte {
	var out []byte
	s := fieldScanner{raw: raw, pos: start, end: end}
	for {
		f, ok := s.next()
		if !ok {
			break
		}
		match := false
		for _, n := range names {
			if len(n) == len(f.name) && strings.EqualFold(n, string(f.name)) {
				match = true
				break
			}
		}
		if match == exclude {
			continue
		}
		out = append(out, raw[f.start:f.end]...)
		if raw[f.end-1] != '\n' {
			out = append(out, '\r', '\n')
		}
	}
	if s.done && s.pos > start && isBlankLine(raw, lastLineStart(raw, start, s.pos), s.pos) && raw[s.pos-1] == '\n' {
		return append(out, raw[lastLineStart(raw, start, s.pos):s.pos]...)
	}
	return append(out, '\r', '\n')
}

// lastLineStart returns the start of the line that ends at end.
func lastLineStart(raw []byte, start, end int) int {
	if i := bytes.LastIndexByte(raw[start:end-1], '\n'); i >= 0 {
		return start + i + 1
	}
	return start
}

// Binary returns the content of the part at path with its
// Content-Transfer-Encoding undone (RFC 3516, RFC 9051 §6.4.5 BINARY[]).
// The whole message (path nil) and identity encodings return raw bytes.
// A multipart or message/rfc822 part is returned as it is stored (their
// encoding must be an identity one, RFC 2045 §6.4). Errors: ErrNoPart,
// ErrUnknownCTE.
func (m *Message) Binary(path []int) ([]byte, error) {
	p, ok := findPart(m.root, path)
	if !ok {
		return nil, ErrNoPart
	}
	if len(path) == 0 {
		return m.raw, nil
	}
	body := m.raw[p.BodyStart:p.BodyEnd]
	if p.IsMultipart() || p.Embedded != nil {
		return body, nil
	}
	return decodeCTE(p.Encoding, body)
}

// UnknownCTE reports whether Binary(path) fails with ErrUnknownCTE,
// without decoding anything: the part exists and is a leaf whose
// Content-Transfer-Encoding is not one RFC 2045 §6 defines.
func (m *Message) UnknownCTE(path []int) bool { return unknownCTE(m.root, path) }

func unknownCTE(root *Part, path []int) bool {
	p, ok := findPart(root, path)
	if !ok || len(path) == 0 || p.IsMultipart() || p.Embedded != nil {
		return false
	}
	switch p.Encoding {
	case "", "7bit", "8bit", "binary", "base64", "quoted-printable":
		return false
	}
	return true
}

// BinarySize returns the length of Binary(path) (BINARY.SIZE, RFC 3516
// §4.2).
func (m *Message) BinarySize(path []int) (int64, error) {
	p, ok := findPart(m.root, path)
	if !ok {
		return 0, ErrNoPart
	}
	if len(path) > 0 && !p.IsMultipart() && p.Embedded == nil && p.Encoding == "base64" {
		return base64Len(m.raw[p.BodyStart:p.BodyEnd]), nil
	}
	b, err := m.Binary(path)
	return int64(len(b)), err
}

// base64Len is len(decodeBase64(src)) without decoding.
func base64Len(src []byte) int64 {
	n := int64(0)
	for _, c := range src {
		if c == '=' {
			break
		}
		if base64Value[c] != 0xff {
			n++
		}
	}
	full := n / 4 * 3
	switch n % 4 {
	case 2:
		full++
	case 3:
		full += 2
	}
	return full
}

// ToCRLF returns b with every bare LF replaced by CRLF, for serving files
// written with Unix line endings to IMAP clients, which expect CRLF
// (RFC 9051 §2.2). It returns b itself when there is no bare LF.
func ToCRLF(b []byte) []byte {
	n := bytes.Count(b, []byte{'\n'}) - bytes.Count(b, []byte("\r\n"))
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return append(out, b...)
		}
		if i > 0 && b[i-1] == '\r' {
			out = append(out, b[:i+1]...)
		} else {
			out = append(out, b[:i]...)
			out = append(out, '\r', '\n')
		}
		b = b[i+1:]
	}
}

// CRLFLen returns len(ToCRLF(b)) without converting.
func CRLFLen(b []byte) int64 { return crlfLen(b) }

func crlfLen(b []byte) int64 {
	return int64(len(b) + bytes.Count(b, []byte{'\n'}) - bytes.Count(b, []byte("\r\n")))
}
