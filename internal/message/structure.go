package message

import (
	"encoding/binary"
	"errors"
)

// StructureVersion is the first byte of MarshalStructure's output. It
// changes whenever the format or what Parse computes changes, so that
// cached structures from an older Cistern are rebuilt, not misread.
const StructureVersion = 4

var (
	// ErrStructureVersion: the cached structure was written by another
	// version of this package; parse the message again.
	ErrStructureVersion = errors.New("message: structure cache version mismatch")
	// ErrCorruptStructure: the cached structure is damaged.
	ErrCorruptStructure = errors.New("message: corrupt structure cache")
)

// Structure is what ENVELOPE and BODYSTRUCTURE need, without the raw
// message: the message size, its envelope and its part tree. In its parts,
// Header and Body return nil, and Envelope works for the root and for
// message/rfc822 parts.
//
// A Structure holds at most what the limits allow (MaxAddresses,
// MaxStructureBytes...: see limits.go), whatever the message; Limited
// says which limits cut it.
type Structure struct {
	Size     int64
	Envelope Envelope
	Root     *Part
	Limited  Limit
	// ThreadRoot is the msg-id that names the message's thread: the
	// first of References, else of In-Reply-To, else its Message-ID;
	// "" when it has none (threadRoot). Kept here so that THREADID needs
	// no read of the file once the structure is cached.
	ThreadRoot string
}

// Structure returns the message's structure, detached from the raw bytes.
// Its envelopes (the root's and every embedded message's) share one
// account of addresses and bytes with the part tree.
func (m *Message) Structure() *Structure {
	l := m.lim
	root := detachRoot(m.root, &l)
	return &Structure{Size: m.Size(), Envelope: *root.env, Root: root, Limited: l.hit,
		ThreadRoot: threadRoot(m.root.raw, int(m.root.HeaderStart), int(m.root.HeaderEnd))}
}

// detach copies the part tree without the raw bytes.
func detach(p *Part, l *limiter) *Part {
	c := *p
	c.raw = nil
	c.Children = nil
	for _, ch := range p.Children {
		c.Children = append(c.Children, detach(ch, l))
	}
	if p.Embedded != nil {
		c.Embedded = detachRoot(p.Embedded, l)
	}
	return &c
}

// detachRoot detaches a message root (the top part or an Embedded part)
// and records its envelope, which a detached part cannot compute.
func detachRoot(p *Part, l *limiter) *Part {
	env := parseEnvelope(p.raw, int(p.HeaderStart), int(p.HeaderEnd), l)
	c := detach(p, l)
	c.env = &env
	return c
}

// MarshalStructure encodes the message's Structure for a cache. The
// format: StructureVersion, then uvarint sizes and counts, varint offsets,
// and length-prefixed strings, in field order (see appendPart).
func (m *Message) MarshalStructure() []byte {
	return m.Structure().Marshal()
}

// Marshal encodes s in the MarshalStructure format.
func (s *Structure) Marshal() []byte {
	b := make([]byte, 0, 256)
	b = append(b, StructureVersion, byte(s.Limited))
	b = binary.AppendUvarint(b, uint64(s.Size))
	b = appendEnvelope(b, &s.Envelope)
	b = appendString(b, s.ThreadRoot)
	return appendPart(b, s.Root)
}

// UnmarshalStructure decodes the output of MarshalStructure. Errors:
// ErrStructureVersion, ErrCorruptStructure. A structure beyond the limits
// that Parse keeps to (more addresses, parameters, parts or string bytes;
// a longer string) is corrupt: a damaged or forged cache entry costs no
// more than a parse.
func UnmarshalStructure(data []byte) (*Structure, error) {
	if len(data) < 2 {
		return nil, ErrCorruptStructure
	}
	if data[0] != StructureVersion {
		return nil, ErrStructureVersion
	}
	d := decoder{b: data[2:]}
	s := &Structure{Limited: Limit(data[1])}
	s.Size = int64(d.uvarint())
	s.Envelope = d.envelope()
	s.ThreadRoot = d.threadRoot()
	s.Root = d.part(0)
	if d.err != nil || len(d.b) != 0 {
		return nil, ErrCorruptStructure
	}
	env := s.Envelope
	s.Root.env = &env
	return s, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendAddresses(b []byte, as []Address) []byte {
	b = binary.AppendUvarint(b, uint64(len(as)))
	for _, a := range as {
		b = appendString(b, a.Name)
		b = appendString(b, a.Route)
		b = appendString(b, a.Mailbox)
		b = appendString(b, a.Host)
		var flags byte
		if a.GroupStart {
			flags |= 1
		}
		if a.GroupEnd {
			flags |= 2
		}
		b = append(b, flags)
	}
	return b
}

// appendEnvelope writes Date, Subject, From, Sender, ReplyTo, To, Cc,
// Bcc, InReplyTo, MessageID. Sender and ReplyTo are written even when
// they equal From: the cache is small next to the message.
func appendEnvelope(b []byte, e *Envelope) []byte {
	b = appendString(b, e.Date)
	b = appendString(b, e.Subject)
	for _, l := range [][]Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		b = appendAddresses(b, l)
	}
	b = appendString(b, e.InReplyTo)
	return appendString(b, e.MessageID)
}

func appendParams(b []byte, ps []Param) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendString(b, p.Name)
		b = appendString(b, p.Value)
	}
	return b
}

// appendPart writes a part: the four offsets, FileHeaderStart,
// FileBodyStart, Type, Subtype, Params, ID,
// Description, Encoding, MD5, Disposition, DispositionParams, Language,
// Location, Lines, Size, CRLFSize, the children (count, then each), and
// a byte 0/1 for Embedded followed by its envelope and part.
func appendPart(b []byte, p *Part) []byte {
	for _, v := range [...]int64{p.HeaderStart, p.HeaderEnd, p.BodyStart, p.BodyEnd, p.FileHeaderStart, p.FileBodyStart} {
		b = binary.AppendVarint(b, v)
	}
	b = appendString(b, p.Type)
	b = appendString(b, p.Subtype)
	b = appendParams(b, p.Params)
	b = appendString(b, p.ID)
	b = appendString(b, p.Description)
	b = appendString(b, p.Encoding)
	b = appendString(b, p.MD5)
	b = appendString(b, p.Disposition)
	b = appendParams(b, p.DispositionParams)
	b = binary.AppendUvarint(b, uint64(len(p.Language)))
	for _, l := range p.Language {
		b = appendString(b, l)
	}
	b = appendString(b, p.Location)
	b = binary.AppendVarint(b, p.Lines)
	b = binary.AppendVarint(b, p.Size)
	b = binary.AppendVarint(b, p.CRLFSize)
	b = binary.AppendUvarint(b, uint64(len(p.Children)))
	for _, c := range p.Children {
		b = appendPart(b, c)
	}
	if p.Embedded == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	env := p.Embedded.Envelope()
	b = appendEnvelope(b, &env)
	return appendPart(b, p.Embedded)
}

// decoder reads the MarshalStructure format; the first error sticks and
// every later read returns zero values. It holds the decoded structure
// to the limits of Parse.
type decoder struct {
	b   []byte
	err error
	// What has been decoded so far: addresses, parameters, string
	// bytes, parts.
	nAddrs, nParams, nBytes, nParts int
}

// What a Structure from Parse can hold at most, counted as the decoder
// counts: Sender and Reply-To written out even when they are From (so
// addresses and their bytes up to three times), a group end closing each
// cut list, the MIME tokens (type, subtype, encoding) and the default
// charset parameter of every part outside MaxStructureBytes.
const (
	maxCachedParts     = MaxParts + 2
	maxCachedAddresses = 3*MaxAddresses + 6*maxCachedParts
	maxCachedParams    = MaxMessageParams + maxCachedParts
	maxCachedBytes     = 3*MaxStructureBytes + maxCachedParts*(3*MaxTokenBytes+16)
)

func (d *decoder) fail() {
	if d.err == nil {
		d.err = ErrCorruptStructure
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items that take at least min bytes each, so a
// corrupt count cannot make the decoder allocate more than the input.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) || n > MaxStringBytes || d.nBytes+int(n) > maxCachedBytes {
		d.fail()
		return ""
	}
	d.nBytes += int(n)
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// threadRoot reads Structure.ThreadRoot: a string not charged to the
// cached bytes (a structure at their limit still decodes), and no longer
// than MaxThreadRootBytes.
func (d *decoder) threadRoot() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) || n > MaxThreadRootBytes {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) addresses() []Address {
	n := d.count(5)
	if n == 0 {
		return nil
	}
	// One group end beyond the limit closes a cut group.
	if n > MaxFieldAddresses+1 || d.nAddrs+n > maxCachedAddresses {
		d.fail()
		return nil
	}
	d.nAddrs += n
	as := make([]Address, n)
	for i := range as {
		as[i] = Address{Name: d.string(), Route: d.string(), Mailbox: d.string(), Host: d.string()}
		f := d.byte()
		if f > 3 {
			d.fail()
		}
		as[i].GroupStart, as[i].GroupEnd = f&1 != 0, f&2 != 0
	}
	return as
}

func (d *decoder) envelope() Envelope {
	var e Envelope
	e.Date = d.string()
	e.Subject = d.string()
	e.From = d.addresses()
	e.Sender = d.addresses()
	e.ReplyTo = d.addresses()
	e.To = d.addresses()
	e.Cc = d.addresses()
	e.Bcc = d.addresses()
	e.InReplyTo = d.string()
	e.MessageID = d.string()
	return e
}

func (d *decoder) params() []Param {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	if d.nParams+n > maxCachedParams {
		d.fail()
		return nil
	}
	d.nParams += n
	ps := make([]Param, n)
	for i := range ps {
		ps[i] = Param{Name: d.string(), Value: d.string()}
	}
	return ps
}

// maxStructureDepth bounds recursion on corrupt input: a part tree from
// Parse is at most 2*MaxDepth+1 parts deep.
const maxStructureDepth = 2*MaxDepth + 2

func (d *decoder) part(depth int) *Part {
	d.nParts++
	if depth > maxStructureDepth || d.nParts > maxCachedParts {
		d.fail()
	}
	p := &Part{}
	if d.err != nil {
		return p
	}
	p.HeaderStart, p.HeaderEnd, p.BodyStart, p.BodyEnd = d.varint(), d.varint(), d.varint(), d.varint()
	p.FileHeaderStart, p.FileBodyStart = d.varint(), d.varint()
	p.Type = d.string()
	p.Subtype = d.string()
	p.Params = d.params()
	p.ID = d.string()
	p.Description = d.string()
	p.Encoding = d.string()
	p.MD5 = d.string()
	p.Disposition = d.string()
	p.DispositionParams = d.params()
	if n := d.count(1); n > 0 {
		p.Language = make([]string, n)
		for i := range p.Language {
			p.Language[i] = d.string()
		}
	}
	p.Location = d.string()
	p.Lines = d.varint()
	p.Size = d.varint()
	p.CRLFSize = d.varint()
	if n := d.count(1); n > 0 {
		p.Children = make([]*Part, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			p.Children = append(p.Children, d.part(depth+1))
		}
	}
	switch d.byte() {
	case 0:
	case 1:
		env := d.envelope()
		p.Embedded = d.part(depth + 1)
		p.Embedded.env = &env
	default:
		d.fail()
	}
	return p
}
