package message

import (
	"bytes"
	"errors"
)

// Limits on the structure Parse builds. Parts beyond them are not split
// further, so that a hostile message costs memory and time linear in its
// size with a small constant, and BODYSTRUCTURE stays a sane size.
const (
	// MaxDepth is the deepest nesting of multipart and message/rfc822
	// parts that Parse descends into (the root is depth 0). A multipart or
	// message part at this depth becomes a leaf of type
	// application/octet-stream. Real mail nests a handful of levels;
	// Dovecot stops at 100.
	MaxDepth = 64

	// MaxParts is the most parts Parse creates for one message. Once it is
	// reached, multiparts stop being split: a multipart whose first
	// child would exceed it becomes application/octet-stream, and a
	// multipart that reaches it mid-way keeps the children it has.
	MaxParts = 10000
)

// Sentinel errors.
var (
	// ErrUnknownCTE: the part's Content-Transfer-Encoding is not one of
	// 7bit, 8bit, binary, base64, quoted-printable (RFC 3516 §4.3: the
	// server answers NO [UNKNOWN-CTE]).
	ErrUnknownCTE = errors.New("message: unknown content-transfer-encoding")

	// ErrNoPart: the section path names no part of the message.
	ErrNoPart = errors.New("message: no such part")
)

// Message is a parsed message: the raw bytes and the root part. It is
// immutable after Parse and safe for concurrent use. It refers to the
// raw bytes given to Parse, which the caller must not modify.
type Message struct {
	raw  []byte
	root *Part
	lim  limiter // what the part tree holds; Structure adds the envelopes
}

// Part is one MIME entity (RFC 2045 §2.4): the whole message, a body part
// of a multipart, or a message embedded in a message/rfc822 part.
//
// Offsets are into the raw message. raw[HeaderStart:HeaderEnd] is the
// header including its terminating blank line (empty when the part has no
// header); raw[BodyStart:BodyEnd] is the body. BodyStart == HeaderEnd.
//
// Type and Subtype are never empty. A part that is multipart has at least
// one child; a part whose Type is "message" and Subtype "rfc822" or
// "global" has Embedded set, and no other part has.
type Part struct {
	HeaderStart, HeaderEnd int64
	BodyStart, BodyEnd     int64
	// FileHeaderStart and FileBodyStart are HeaderStart and BodyStart in
	// the file the message came from when ParseFile made it (ToCRLF
	// inserts CRs: see stream.go); Parse sets them equal.
	FileHeaderStart, FileBodyStart int64

	// Content-Type (RFC 2045 §5), lower case. Without a usable
	// Content-Type: text/plain with Params charset=us-ascii, or
	// message/rfc822 in a multipart/digest (RFC 2046 §5.1.5).
	Type, Subtype string
	Params        []Param

	ID          string // Content-ID, unfolded, as written
	Description string // Content-Description, unfolded, encoded-words kept
	Encoding    string // Content-Transfer-Encoding, lower case; "7bit" when absent
	MD5         string // Content-MD5

	Disposition       string // Content-Disposition value, lower case; "" when absent
	DispositionParams []Param
	Language          []string // Content-Language tags
	Location          string   // Content-Location, white space removed

	Children []*Part // the body parts of a multipart, in order
	Embedded *Part   // the root part of the message in a message/rfc822 body

	// Lines is the number of line endings ('\n') in the body, set for
	// text/* and embedded messages (the IMAP body-fld-lines); 0 otherwise.
	Lines int64
	// Size is the body size in octets as stored (raw bytes).
	Size int64
	// CRLFSize is the body size after ToCRLF: what an IMAP server that
	// serves bare-LF files with CRLF line endings must announce.
	CRLFSize int64

	raw []byte    // the whole message; nil in a Structure
	env *Envelope // set in a Structure for message roots
}

// IsMultipart reports whether p has children.
func (p *Part) IsMultipart() bool { return p.Type == "multipart" }

// Param returns the named Content-Type parameter, or "".
func (p *Part) Param(name string) string { return ParamValue(p.Params, name) }

// Header returns the part's header bytes, or nil in a Structure.
func (p *Part) Header() []byte {
	if p.raw == nil {
		return nil
	}
	return p.raw[p.HeaderStart:p.HeaderEnd]
}

// Body returns the part's body bytes (still transfer-encoded), or nil in a
// Structure.
func (p *Part) Body() []byte {
	if p.raw == nil {
		return nil
	}
	return p.raw[p.BodyStart:p.BodyEnd]
}

// Root returns the message's root part.
func (m *Message) Root() *Part { return m.root }

// Raw returns the message bytes given to Parse.
func (m *Message) Raw() []byte { return m.raw }

// Size returns the message size in octets (RFC822.SIZE of the raw bytes).
func (m *Message) Size() int64 { return int64(len(m.raw)) }

// CRLFSize returns the message size after ToCRLF.
func (m *Message) CRLFSize() int64 { return crlfLen(m.raw) }

// Envelope returns the envelope of the message.
func (m *Message) Envelope() Envelope { return m.root.Envelope() }

// Parse parses raw as an RFC 5322 message with MIME structure. It never
// fails: see the package documentation for what it makes of malformed
// input. Parse keeps raw; the caller must not modify it afterwards.
func Parse(raw []byte) *Message {
	p := parser{raw: raw}
	root := p.part(0, len(raw), 0, false, true)
	return &Message{raw: raw, root: root, lim: p.lim}
}

type parser struct {
	raw   []byte
	parts int
	lim   limiter
}

// part parses the entity raw[start:end]. digest selects the multipart/digest
// default type; messageRoot marks a message's root (which always has a
// header block) as opposed to a body part (which may start straight with
// text).
func (p *parser) part(start, end, depth int, digest, messageRoot bool) *Part {
	p.parts++
	raw := p.raw
	part := &Part{raw: raw, HeaderStart: int64(start)}
	l := &p.lim

	var ctype, cte []byte
	var haveType, haveCTE, haveID, haveDesc, haveMD5, haveDisp, haveLang, haveLoc bool
	he := start
	if messageRoot || looksLikeHeader(raw, start, end) {
		s := fieldScanner{raw: raw, pos: start, end: end}
		for {
			f, ok := s.next()
			if !ok {
				break
			}
			n := f.name
			if len(n) < 9 || !equalFoldASCII(n[:8], "content-") {
				continue
			}
			switch rest := n[8:]; {
			case equalFoldASCII(rest, "type"):
				if !haveType {
					ctype, haveType = f.value, true
				}
			case equalFoldASCII(rest, "transfer-encoding"):
				if !haveCTE {
					cte, haveCTE = f.value, true
				}
			case equalFoldASCII(rest, "id"):
				if !haveID {
					part.ID, haveID = unfoldCut(f.value, l), true
				}
			case equalFoldASCII(rest, "description"):
				if !haveDesc {
					part.Description, haveDesc = unfoldCut(f.value, l), true
				}
			case equalFoldASCII(rest, "md5"):
				if !haveMD5 {
					part.MD5, haveMD5 = unfoldCut(f.value, l), true
				}
			case equalFoldASCII(rest, "disposition"):
				if !haveDisp {
					haveDisp = true
					d, ps := parseDisposition(unfold(f.value))
					part.Disposition, part.DispositionParams = l.str(d), l.paramList(ps)
				}
			case equalFoldASCII(rest, "language"):
				if !haveLang {
					haveLang = true
					part.Language = l.languages(parseLanguage(unfold(f.value)))
				}
			case equalFoldASCII(rest, "location"):
				if !haveLoc {
					haveLoc = true
					part.Location = l.str(removeWSP(unfold(f.value)))
				}
			}
		}
		he = s.pos
	}
	part.HeaderEnd = int64(he)
	part.BodyStart = int64(he)
	part.FileHeaderStart, part.FileBodyStart = part.HeaderStart, part.BodyStart
	part.BodyEnd = int64(end)
	body := raw[he:end]
	part.Size = int64(len(body))
	nl := bytes.Count(body, []byte{'\n'})
	part.CRLFSize = part.Size + int64(nl-bytes.Count(body, []byte("\r\n")))

	ok := false
	boundary := ""
	if haveType {
		var ps []Param
		part.Type, part.Subtype, ps, ok = parseContentType(unfold(ctype))
		part.Type, part.Subtype = l.token(part.Type), l.token(part.Subtype)
		// The boundary splits the body even when the parameter itself is
		// beyond the limits.
		boundary = ParamValue(ps, "boundary")
		part.Params = l.paramList(ps)
	}
	if !ok {
		if digest {
			part.Type, part.Subtype, part.Params = "message", "rfc822", nil
		} else {
			part.Type, part.Subtype = "text", "plain"
			part.Params = []Param{{Name: "charset", Value: "us-ascii"}}
		}
	}
	part.Encoding = "7bit"
	if haveCTE {
		if e := firstToken(unfold(cte)); e != "" {
			part.Encoding = l.token(e)
		}
	}

	switch part.Type {
	case "multipart":
		if depth >= MaxDepth || p.parts >= MaxParts {
			l.hit |= LimitParts
			part.Type, part.Subtype = "application", "octet-stream"
			break
		}
		p.children(part, boundary, depth+1, part.Subtype == "digest")
	case "message":
		if part.Subtype != "rfc822" && part.Subtype != "global" {
			break
		}
		// An encoded inner message (forbidden for message/rfc822 by
		// RFC 2046 §5.2.1, allowed for message/global by RFC 6532 §3.5)
		// has no offsets in the raw bytes; nor is one past the limits
		// parsed.
		if depth >= MaxDepth || p.parts >= MaxParts || !identityCTE(part.Encoding) {
			if identityCTE(part.Encoding) {
				l.hit |= LimitParts
			}
			part.Type, part.Subtype = "application", "octet-stream"
			break
		}
		part.Embedded = p.part(he, end, depth+1, false, true)
		part.Lines = int64(nl)
	case "text":
		part.Lines = int64(nl)
	}
	return part
}

func identityCTE(enc string) bool {
	switch enc {
	case "7bit", "8bit", "binary":
		return true
	}
	return false
}

// children splits the body of the multipart part at its boundary
// (RFC 2046 §5.1.1). A delimiter is "--boundary" at the start of a line,
// followed by optional white space and the line end; the line ending before
// it belongs to the delimiter. "--boundary--" closes the multipart; what
// follows (the epilogue), and what precedes the first delimiter (the
// preamble), belong to no part. Without a closing delimiter the last part
// runs to the end of the body. Without any delimiter (or without a boundary
// parameter) the whole body becomes one part with an empty header, so that
// its content stays reachable as part 1.
func (p *parser) children(part *Part, boundary string, depth int, digest bool) {
	raw := p.raw
	bs, be := int(part.BodyStart), int(part.BodyEnd)
	d := -1
	var delim []byte
	if boundary != "" {
		delim = make([]byte, 0, 2+len(boundary))
		delim = append(append(delim, "--"...), boundary...)
		d = findDelimiter(raw, bs, be, bs, delim)
	}
	if d < 0 {
		p.parts++
		part.Children = []*Part{p.bare(bs, be)}
		return
	}
	for {
		after := d + len(delim)
		if after+1 < be && raw[after] == '-' && raw[after+1] == '-' {
			break // close delimiter
		}
		start := lineEnd(raw, after, be)
		next := findDelimiter(raw, bs, be, start, delim)
		end := be
		if next >= 0 {
			end = next
			if end > start && raw[end-1] == '\n' {
				end--
				if end > start && raw[end-1] == '\r' {
					end--
				}
			}
		}
		part.Children = append(part.Children, p.part(start, end, depth, digest, false))
		if next < 0 {
			break
		}
		if p.parts >= MaxParts {
			p.lim.hit |= LimitParts
			break
		}
		d = next
	}
	if len(part.Children) == 0 {
		// The first delimiter was the closing one.
		p.parts++
		part.Children = []*Part{p.bare(bs, bs)}
	}
}

// bare returns a text/plain part with an empty header spanning
// raw[start:end]. It stands in for the missing children of a broken
// multipart (also in a digest: a bare body is no message).
func (p *parser) bare(start, end int) *Part {
	body := p.raw[start:end]
	nl := bytes.Count(body, []byte{'\n'})
	part := &Part{
		raw:         p.raw,
		HeaderStart: int64(start), HeaderEnd: int64(start),
		BodyStart: int64(start), BodyEnd: int64(end),
		FileHeaderStart: int64(start), FileBodyStart: int64(start),
		Type: "text", Subtype: "plain",
		Params:   []Param{{Name: "charset", Value: "us-ascii"}},
		Encoding: "7bit",
		Lines:    int64(nl),
		Size:     int64(len(body)),
		CRLFSize: int64(len(body) + nl - bytes.Count(body, []byte("\r\n"))),
	}
	return part
}

// findDelimiter returns the offset of the next delimiter line (opening,
// separating or closing) at or after from in the body raw[bs:be], or -1.
func findDelimiter(raw []byte, bs, be, from int, delim []byte) int {
	for from < be {
		i := bytes.Index(raw[from:be], delim)
		if i < 0 {
			return -1
		}
		d := from + i
		from = d + 1
		if d != bs && raw[d-1] != '\n' {
			continue
		}
		after := d + len(delim)
		if after+1 < be && raw[after] == '-' && raw[after+1] == '-' {
			return d
		}
		ok := true
		for j := after; j < be && raw[j] != '\n'; j++ {
			if c := raw[j]; c != ' ' && c != '\t' && c != '\r' {
				ok = false
				break
			}
		}
		if ok {
			return d
		}
	}
	return -1
}
