package message

import (
	"bytes"
	"encoding/base64"
)

// base64LineLen is the length of the base64 lines EncodeBinaryParts
// writes: RFC 2045 §6.8 allows at most 76 characters.
const base64LineLen = 76

// EncodeBinaryParts returns raw with every leaf body part that a BODY[]
// literal cannot carry re-encoded as base64: those whose
// Content-Transfer-Encoding is binary, and those with an identity
// encoding (7bit, 8bit, none) whose body holds a NUL octet. It is what a
// server does with a message APPENDed as a literal8 (RFC 3516 §4.4; RFC
// 9051 §7.5.2: "non-textual data such as binary data MUST be transfer
// encoded into a textual form, such as base64, prior to being sent"),
// as Dovecot does (istream-binary-converter): BINARY[part] then gives
// back exactly the octets the client sent, and BODY[part] is base64
// text that no line-ending conversion can damage.
//
// Each such part keeps its header, with its first Content-Transfer-Encoding
// field replaced by "Content-Transfer-Encoding: base64" (any later ones
// dropped; one is added when there is none), and gets its body as base64
// in lines of 76 characters, ending with the line endings its header
// uses and without a line ending after the last line (the one before
// the next delimiter belongs to the delimiter). A text/* body is first
// put in canonical form (bare LF to CRLF, RFC 2046 §4.1.1), so that
// BINARY[] of text is CRLF-terminated (RFC 9051 §7.5.2). Multipart and
// message/rfc822 parts are never re-encoded (RFC 2045 §6.4 allows them
// only identity encodings); the parts inside them are. A message over
// the structure limits (MaxDepth, MaxParts) is returned as it is: its
// deepest parts are not known. NUL octets stay in a header (no encoding
// can hide them) and in the text of a multipart without delimiters (its
// one part has no header to name an encoding). raw itself is returned
// when nothing changes.
func EncodeBinaryParts(raw []byte) []byte {
	m := Parse(raw)
	if m.lim.hit&LimitParts != 0 {
		return raw
	}
	var edits []edit
	var walk func(p *Part)
	walk = func(p *Part) {
		switch {
		case len(p.Children) > 0:
			for _, ch := range p.Children {
				// A child that starts where the body does stands in
				// for the parts of a multipart without delimiters:
				// a header added to it would be read as its text.
				if ch.HeaderStart != p.BodyStart {
					walk(ch)
				}
			}
		case p.Embedded != nil:
			walk(p.Embedded)
		case needsBase64(p, raw):
			edits = append(edits, reencodeBase64(raw, p)...)
		}
	}
	walk(m.root)
	if len(edits) == 0 {
		return raw
	}
	n := len(raw)
	for _, e := range edits {
		n += len(e.with) - (e.end - e.start)
	}
	out := make([]byte, 0, n)
	pos := 0
	for _, e := range edits {
		out = append(out, raw[pos:e.start]...)
		out = append(out, e.with...)
		pos = e.end
	}
	return append(out, raw[pos:]...)
}

// edit replaces raw[start:end] with with; edits are made in order and do
// not overlap.
type edit struct {
	start, end int
	with       []byte
}

// needsBase64 reports whether the leaf part p is one EncodeBinaryParts
// re-encodes.
func needsBase64(p *Part, raw []byte) bool {
	if p.BodyEnd == p.BodyStart || p.Type == "multipart" || p.Type == "message" {
		return false
	}
	switch p.Encoding {
	case "binary":
		return true
	case "7bit", "8bit":
		return bytes.IndexByte(raw[p.BodyStart:p.BodyEnd], 0) >= 0
	}
	return false
}

// reencodeBase64 returns the edits that make the leaf part p base64.
func reencodeBase64(raw []byte, p *Part) []edit {
	var edits []edit
	hs, he := int(p.HeaderStart), int(p.HeaderEnd)
	nl := "\r\n"
	if he > hs && raw[he-1] == '\n' && (he-hs < 2 || raw[he-2] != '\r') {
		nl = "\n"
	}
	field := []byte("Content-Transfer-Encoding: base64" + nl)
	replaced := false
	s := fieldScanner{raw: raw, pos: hs, end: he}
	for {
		f, ok := s.next()
		if !ok {
			break
		}
		if !equalFoldASCII(f.name, "content-transfer-encoding") {
			continue
		}
		e := edit{start: f.start, end: f.end}
		if !replaced {
			e.with, replaced = field, true
		}
		edits = append(edits, e)
	}
	if !replaced {
		// Before the blank line that ends the header; a part without a
		// header (its body starts at once) gets one.
		at := he
		if he > hs && isBlankLine(raw, lastLineStart(raw, hs, he), he) {
			at = lastLineStart(raw, hs, he)
		} else {
			field = append(field, nl...)
		}
		edits = append(edits, edit{start: at, end: at, with: field})
	}
	body := raw[p.BodyStart:p.BodyEnd]
	if p.Type == "text" {
		body = ToCRLF(body)
	}
	enc := base64.StdEncoding.EncodeToString(body)
	var b []byte
	for len(enc) > base64LineLen {
		b = append(b, enc[:base64LineLen]...)
		b = append(b, nl...)
		enc = enc[base64LineLen:]
	}
	b = append(b, enc...)
	return append(edits, edit{start: int(p.BodyStart), end: int(p.BodyEnd), with: b})
}
