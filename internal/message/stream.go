package message

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
)

// Streaming a message from its file. A Maildir file may have bare-LF line
// endings; IMAP sends CRLF (RFC 9051 §2.2). ToCRLF converts a whole
// message in memory; the functions here produce the same bytes from the
// file through one fixed buffer, so that a FETCH of a 50 MB body holds
// kilobytes, not twice the message.
//
// Offsets. A Structure's offsets (Part.HeaderStart...) are into the
// message after ToCRLF, as Parse saw it when ParseFile made it; the
// FileHeaderStart and FileBodyStart of each part are the same two
// places in the file as stored. A Span names a section by where it
// starts in the file and how long it is after conversion: a CRLFReader
// reads it.

// ErrShortFile: the file ended before the bytes its index entry or
// structure promised (another program changed it underneath).
var ErrShortFile = errors.New("message: file shorter than its recorded size")

// Span is a section of a message's file: it starts at the file offset
// File and is Size octets long after ToCRLF.
type Span struct {
	File int64
	Size int64
}

// ParseFile parses a message file as stored: it converts it with ToCRLF,
// parses the result, and records in every part where its header and
// body start in file (FileHeaderStart, FileBodyStart), so that a
// Structure made from it can serve sections from the file.
func ParseFile(file []byte) *Message {
	crlf := ToCRLF(file)
	m := Parse(crlf)
	if len(crlf) != len(file) {
		mapFileOffsets(file, m.root)
	}
	return m
}

// mapFileOffsets sets FileHeaderStart and FileBodyStart of every part of
// root, whose offsets are into ToCRLF(file), to the file's offsets. An
// offset c of the converted message is c minus the CRs ToCRLF inserted
// before it.
func mapFileOffsets(file []byte, root *Part) {
	type target struct {
		crlf int64
		file *int64
	}
	var ts []target
	var walk func(p *Part)
	walk = func(p *Part) {
		ts = append(ts, target{p.HeaderStart, &p.FileHeaderStart}, target{p.BodyStart, &p.FileBodyStart})
		for _, ch := range p.Children {
			walk(ch)
		}
		if p.Embedded != nil {
			walk(p.Embedded)
		}
	}
	walk(root)
	slices.SortStableFunc(ts, func(a, b target) int {
		switch {
		case a.crlf < b.crlf:
			return -1
		case a.crlf > b.crlf:
			return 1
		}
		return 0
	})
	inserted := int64(0) // CRs inserted before file offset pos
	pos := 0             // next file offset to look for a bare LF from
	for _, t := range ts {
		// Count the bare LFs whose inserted CR lies before t.crlf: the
		// CR of a bare LF at file offset i lands at i+inserted.
		for pos < len(file) {
			i := bytes.IndexByte(file[pos:], '\n')
			if i < 0 {
				pos = len(file)
				break
			}
			lf := pos + i
			if lf > 0 && file[lf-1] == '\r' {
				pos = lf + 1
				continue
			}
			if int64(lf)+inserted >= t.crlf {
				break
			}
			inserted++
			pos = lf + 1
		}
		*t.file = t.crlf - inserted
	}
}

// CRLFReader reads a Span of a message file with every bare LF turned
// into CRLF, exactly as ToCRLF turns the whole file (the byte before the
// span decides whether an LF at its start is bare). It reads the file
// through the buffer it is given and holds nothing else.
//
// It returns exactly the requested octets: when the file ends before
// them it fails with ErrShortFile.
type CRLFReader struct {
	r      io.ReaderAt
	off    int64  // next file offset to read
	buf    []byte // the caller's buffer
	in     []byte // read from the file, not yet converted
	prevCR bool   // the last byte converted was CR
	owedLF bool   // a CR was produced for a bare LF whose LF is still due
	skip   int64  // converted octets still to drop
	left   int64  // converted octets still to deliver
	eof    bool
	err    error
}

// NewCRLFReader returns a reader of the converted octets [skip,
// skip+n) of span sp (the caller keeps skip+n within sp.Size), read from
// r through buf (at least 2 octets; a few KiB reads fast).
func NewCRLFReader(r io.ReaderAt, sp Span, skip, n int64, buf []byte) *CRLFReader {
	c := &CRLFReader{}
	c.Reset(r, sp, skip, n, buf)
	return c
}

// Reset makes c read another section, reusing nothing but buf.
func (c *CRLFReader) Reset(r io.ReaderAt, sp Span, skip, n int64, buf []byte) {
	*c = CRLFReader{r: r, off: sp.File, buf: buf, skip: skip, left: n}
	if sp.File > 0 && n > 0 {
		var b [1]byte
		if _, err := r.ReadAt(b[:], sp.File-1); err != nil {
			c.err = shortErr(err)
			return
		}
		c.prevCR = b[0] == '\r'
	}
}

func shortErr(err error) error {
	if errors.Is(err, io.EOF) {
		return ErrShortFile
	}
	return err
}

// fill reads the next chunk of the file into c.in.
func (c *CRLFReader) fill() bool {
	if c.eof || c.err != nil {
		return false
	}
	n, err := c.r.ReadAt(c.buf, c.off)
	c.off += int64(n)
	c.in = c.buf[:n]
	if err != nil {
		if !errors.Is(err, io.EOF) {
			c.err = err
		}
		c.eof = true
	}
	return n > 0
}

// convert fills dst with converted octets and returns how many.
func (c *CRLFReader) convert(dst []byte) int {
	n := 0
	if c.owedLF && len(dst) > 0 {
		dst[0] = '\n'
		n, c.owedLF, c.prevCR = 1, false, false
	}
	for n < len(dst) {
		if len(c.in) == 0 && !c.fill() {
			break
		}
		room := dst[n:]
		seg := c.in[:min(len(c.in), len(room))]
		i := bytes.IndexByte(seg, '\n')
		if i < 0 {
			copy(room, seg)
			n += len(seg)
			c.prevCR = seg[len(seg)-1] == '\r'
			c.in = c.in[len(seg):]
			continue
		}
		copy(room, seg[:i])
		n += i
		crBefore := c.prevCR
		if i > 0 {
			crBefore = seg[i-1] == '\r'
		}
		c.in = c.in[i+1:]
		c.prevCR = false
		if crBefore {
			room[i] = '\n'
			n++
			continue
		}
		room[i] = '\r'
		n++
		if i+1 < len(room) {
			room[i+1] = '\n'
			n++
		} else {
			c.owedLF = true
		}
	}
	return n
}

// Read implements io.Reader.
func (c *CRLFReader) Read(p []byte) (int, error) {
	for c.skip > 0 {
		if c.err != nil {
			return 0, c.err
		}
		// The skipped octets are converted into p and dropped.
		d := p[:min(int64(len(p)), c.skip)]
		if len(d) == 0 {
			return 0, nil
		}
		k := c.convert(d)
		if k == 0 {
			return 0, c.fail()
		}
		c.skip -= int64(k)
	}
	if c.left == 0 {
		return 0, io.EOF
	}
	if c.err != nil {
		return 0, c.err
	}
	p = p[:min(int64(len(p)), c.left)]
	k := c.convert(p)
	c.left -= int64(k)
	if k == 0 && len(p) > 0 {
		return 0, c.fail()
	}
	return k, nil
}

// fail is the error of a conversion that produced nothing: the file's
// read error, or its end.
func (c *CRLFReader) fail() error {
	if c.err == nil {
		c.err = ErrShortFile
	}
	return c.err
}

// CountCRLF reads r to its end through buf and returns its size and its
// size after ToCRLF.
func CountCRLF(r io.Reader, buf []byte) (size, crlfSize int64, err error) {
	prevCR := false
	for {
		n, rerr := r.Read(buf)
		b := buf[:n]
		size += int64(n)
		crlfSize += int64(n)
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				prevCR = b[len(b)-1] == '\r'
				break
			}
			if !(i > 0 && b[i-1] == '\r' || i == 0 && prevCR) {
				crlfSize++
			}
			prevCR = false
			b = b[i+1:]
		}
		if rerr == io.EOF {
			return size, crlfSize, nil
		}
		if rerr != nil {
			return size, crlfSize, rerr
		}
	}
}

// Span returns where section s lies (for HEADER.FIELDS and
// HEADER.FIELDS.NOT: the header they are taken from, see HeaderFields),
// as Message.Section would find it in the converted message. False when
// Section answers false.
func (s *Structure) Span(sec Section) (Span, bool) {
	p, ok := findPart(s.Root, sec.Path)
	if !ok {
		return Span{}, false
	}
	spec := strings.ToUpper(sec.Specifier)
	if spec == SpecAll {
		if len(sec.Path) == 0 {
			return Span{File: 0, Size: s.Size}, true
		}
		return bodySpan(p), true
	}
	if spec == SpecMIME {
		if len(sec.Path) == 0 {
			return Span{}, false
		}
		return headerSpan(p), true
	}
	msg := p
	if len(sec.Path) > 0 {
		if p.Embedded == nil {
			return Span{}, false
		}
		msg = p.Embedded
	}
	switch spec {
	case SpecHeader, SpecHeaderFields, SpecHeaderNot:
		return headerSpan(msg), true
	case SpecText:
		return bodySpan(msg), true
	}
	return Span{}, false
}

func headerSpan(p *Part) Span {
	return Span{File: p.FileHeaderStart, Size: p.HeaderEnd - p.HeaderStart}
}
func bodySpan(p *Part) Span { return Span{File: p.FileBodyStart, Size: p.BodyEnd - p.BodyStart} }

// HeaderFields returns what Section gives for HEADER.FIELDS (or, with
// exclude, HEADER.FIELDS.NOT) of names, from header: the converted bytes
// of the span Span returned for that section.
func HeaderFields(header []byte, names []string, exclude bool) []byte {
	return headerFields(header, 0, len(header), names, exclude)
}

// BinarySpan says where the data of BINARY[path] (RFC 3516) comes from:
// the span of the converted message whose content, with the encoding
// enc undone ("" when it is sent as it is), Message.Binary returns.
// Errors as Binary's.
func (s *Structure) BinarySpan(path []int) (sp Span, enc string, err error) {
	p, ok := findPart(s.Root, path)
	if !ok {
		return Span{}, "", ErrNoPart
	}
	if len(path) == 0 {
		return Span{File: 0, Size: s.Size}, "", nil
	}
	sp = bodySpan(p)
	if p.IsMultipart() || p.Embedded != nil {
		return sp, "", nil
	}
	switch p.Encoding {
	case "", "7bit", "8bit", "binary":
		return sp, "", nil
	case "base64", "quoted-printable":
		return sp, p.Encoding, nil
	}
	return Span{}, "", ErrUnknownCTE
}

// UnknownCTE is Message.UnknownCTE for a Structure.
func (s *Structure) UnknownCTE(path []int) bool { return unknownCTE(s.Root, path) }

// DecodeCTE undoes a Content-Transfer-Encoding as Binary does.
func DecodeCTE(enc string, body []byte) ([]byte, error) { return decodeCTE(enc, body) }

// Base64Reader decodes base64 from r exactly as Binary decodes a base64
// part (leniently: bytes outside the alphabet are skipped, '=' ends the
// data, a trailing partial group gives the whole octets it holds),
// holding three octets at a time.
type Base64Reader struct {
	r    io.Reader
	in   []byte // the caller's buffer
	rest []byte // read, not yet decoded
	acc  uint32
	n    int
	out  [3]byte
	outN int // octets of out still to deliver, from the end
	done bool
	err  error
}

// NewBase64Reader reads base64 text from r through buf.
func NewBase64Reader(r io.Reader, buf []byte) *Base64Reader {
	return &Base64Reader{r: r, in: buf}
}

func (d *Base64Reader) Read(p []byte) (int, error) {
	k := 0
	for k < len(p) {
		if d.outN > 0 {
			c := copy(p[k:], d.out[3-d.outN:])
			d.outN -= c
			k += c
			continue
		}
		if d.done {
			break
		}
		if len(d.rest) == 0 {
			n, err := d.r.Read(d.in)
			d.rest = d.in[:n]
			if err != nil && n == 0 {
				if err != io.EOF {
					d.err = err
				}
				d.finish()
				continue
			}
		}
		for len(d.rest) > 0 && d.outN == 0 {
			c := d.rest[0]
			d.rest = d.rest[1:]
			if c == '=' {
				d.finish()
				break
			}
			v := base64Value[c]
			if v == 0xff {
				continue
			}
			d.acc = d.acc<<6 | uint32(v)
			d.n++
			if d.n == 4 {
				d.out = [3]byte{byte(d.acc >> 16), byte(d.acc >> 8), byte(d.acc)}
				d.outN, d.acc, d.n = 3, 0, 0
			}
		}
	}
	if k == 0 && d.done {
		if d.err != nil {
			return 0, d.err
		}
		return 0, io.EOF
	}
	return k, nil
}

// finish ends the data: a partial group gives its whole octets.
func (d *Base64Reader) finish() {
	d.done = true
	switch d.n {
	case 2:
		d.out[2] = byte(d.acc >> 4)
		d.outN = 1
	case 3:
		d.out[1], d.out[2] = byte(d.acc>>10), byte(d.acc>>2)
		d.outN = 2
	}
	d.n = 0
}
