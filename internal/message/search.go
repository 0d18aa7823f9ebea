package message

import (
	"bytes"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Searching (RFC 9051 §6.4.4) is a case-insensitive substring match on
// decoded text: header values with RFC 2047 encoded-words decoded, bodies
// with their transfer encoding undone and their charset converted to
// UTF-8. Case-insensitive means Unicode case folding after NFC
// normalisation, so "müller" finds "MÜLLER" and "strasse" finds "Straße".

// fold returns the folded form of s that matching compares.
func fold(s []byte) []byte {
	if ascii(s) {
		out := make([]byte, len(s))
		for i, c := range s {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			out[i] = c
		}
		return out
	}
	return cases.Fold().Bytes(norm.NFC.Bytes(s))
}

// A matcher holds a folded needle.
type matcher struct {
	needle []byte
	ascii  bool
}

func newMatcher(needle string) matcher {
	n := fold([]byte(needle))
	return matcher{needle: n, ascii: ascii(n)}
}

// match reports whether the folded hay contains the needle. ASCII text is
// folded a chunk at a time in a fixed buffer, without allocating.
func (m matcher) match(hay []byte) bool {
	if len(m.needle) == 0 {
		return true
	}
	if !ascii(hay) {
		return bytes.Contains(fold(hay), m.needle)
	}
	if !m.ascii {
		return false // an ASCII text folds to ASCII only
	}
	const chunk = 4096
	if len(m.needle) > chunk/2 {
		return bytes.Contains(fold(hay), m.needle)
	}
	var buf [chunk]byte
	overlap := len(m.needle) - 1
	for start := 0; start < len(hay); {
		end := min(start+chunk, len(hay))
		b := buf[:end-start]
		for i, c := range hay[start:end] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		if bytes.Contains(b, m.needle) {
			return true
		}
		if end == len(hay) {
			break
		}
		start = end - overlap
	}
	return false
}

// HeaderValues returns the values of every field of the message header
// named field (case-insensitive), in order, unfolded, trimmed and with
// RFC 2047 encoded-words decoded to UTF-8.
func (m *Message) HeaderValues(field string) []string {
	var out []string
	s := fieldScanner{raw: m.raw, pos: int(m.root.HeaderStart), end: int(m.root.HeaderEnd)}
	for {
		f, ok := s.next()
		if !ok {
			return out
		}
		if len(f.name) == len(field) && strings.EqualFold(string(f.name), field) {
			out = append(out, decodeValue(f.value))
		}
	}
}

// decodeValue makes a raw field value searchable text.
func decodeValue(v []byte) string {
	return decodeWords(string(asUTF8(unfoldBytes(v))))
}

// isAddressField reports the fields whose values are address lists.
func isAddressField(name []byte) bool {
	for _, n := range [...]string{"from", "to", "cc", "bcc", "sender", "reply-to", "resent-from", "resent-to", "resent-cc", "resent-bcc", "resent-sender", "return-path", "delivered-to"} {
		if equalFoldASCII(name, n) {
			return true
		}
	}
	return false
}

// DisplayAddress returns the decoded display form of an address, as
// searches see it: `Name <mailbox@host>`, or `mailbox@host` without a
// name; a group start is its name followed by ':'. The Missing
// placeholders are left out.
func DisplayAddress(a Address) string {
	switch {
	case a.GroupEnd:
		return ";"
	case a.GroupStart:
		return decodeWords(a.Mailbox) + ":"
	}
	addr := a.Mailbox
	if addr == MissingMailbox {
		addr = ""
	}
	if a.Host != "" && a.Host != MissingDomain {
		addr += "@" + a.Host
	}
	if a.Name == "" {
		return addr
	}
	return decodeWords(a.Name) + " <" + addr + ">"
}

// HeaderContains reports whether a field named field (case-insensitive)
// of the message header contains needle (SEARCH HEADER, FROM, SUBJECT,
// ...). The empty field name searches every field, as "Name: value".
// Address fields match their decoded value and the display form of each
// address (DisplayAddress). Only the message header is searched; see
// TextContains for the MIME headers.
func (m *Message) HeaderContains(field, needle string) bool {
	return headerContains(m.raw, m.root, field, newMatcher(needle))
}

func headerContains(raw []byte, p *Part, field string, mt matcher) bool {
	s := fieldScanner{raw: raw, pos: int(p.HeaderStart), end: int(p.HeaderEnd)}
	for {
		f, ok := s.next()
		if !ok {
			return false
		}
		if field == "" {
			line := append(append(append([]byte(nil), f.name...), ':', ' '), decodeValue(f.value)...)
			if mt.match(line) {
				return true
			}
			continue
		}
		if len(f.name) != len(field) || !strings.EqualFold(string(f.name), field) {
			continue
		}
		// One copy of the value serves both matches: a field of
		// millions of addresses costs its size a small number of times,
		// and its addresses are walked only up to MaxFieldAddresses.
		v := string(asUTF8(unfoldBytes(f.value)))
		if mt.match([]byte(decodeWords(v))) {
			return true
		}
		if isAddressField(f.name) {
			for _, a := range ParseAddressList(v) {
				if mt.match([]byte(DisplayAddress(a))) {
					return true
				}
			}
		}
	}
}

// BodyContains reports whether the body text of the message contains
// needle (SEARCH BODY): every text/* leaf, transfer and charset decoded,
// and the header and text of every embedded message/rfc822. Other leaves
// (images, applications) are not searched.
func (m *Message) BodyContains(needle string) bool {
	mt := newMatcher(needle)
	if len(mt.needle) == 0 {
		return true
	}
	return bodyContains(m.raw, m.root, mt)
}

func bodyContains(raw []byte, p *Part, mt matcher) bool {
	switch {
	case p.Embedded != nil:
		return headerContains(raw, p.Embedded, "", mt) || bodyContains(raw, p.Embedded, mt)
	case len(p.Children) > 0:
		for _, c := range p.Children {
			if bodyContains(raw, c, mt) {
				return true
			}
		}
		return false
	case p.Type == "text":
		return mt.match(textOf(raw, p))
	}
	return false
}

// textOf returns the decoded UTF-8 text of a text/* leaf. An unknown
// transfer encoding is searched as stored.
func textOf(raw []byte, p *Part) []byte {
	body := raw[p.BodyStart:p.BodyEnd]
	dec, err := decodeCTE(p.Encoding, body)
	if err != nil {
		dec = body
	}
	return asUTF8(toUTF8(p.Param("charset"), dec))
}

// TextContains reports whether needle occurs in the message header, the
// MIME header of any part, or the body text (SEARCH TEXT).
func (m *Message) TextContains(needle string) bool {
	mt := newMatcher(needle)
	if len(mt.needle) == 0 {
		return true
	}
	return textContains(m.raw, m.root, mt)
}

func textContains(raw []byte, p *Part, mt matcher) bool {
	if headerContains(raw, p, "", mt) {
		return true
	}
	switch {
	case p.Embedded != nil:
		return textContains(raw, p.Embedded, mt)
	case len(p.Children) > 0:
		for _, c := range p.Children {
			if textContains(raw, c, mt) {
				return true
			}
		}
		return false
	case p.Type == "text":
		return mt.match(textOf(raw, p))
	}
	return false
}
