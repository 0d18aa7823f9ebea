package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode/utf8"
)

// Default limits, used where a Limits field is zero.
const (
	// DefaultMaxLine bounds the text of one command, literals excluded:
	// far above any legitimate command (a UID set of a few thousand ranges)
	// and small enough to keep per-connection memory bounded.
	DefaultMaxLine = 64 << 10
	// DefaultMaxLiteral bounds one literal (APPEND message data); it is the
	// value a server advertises as APPENDLIMIT (RFC 7889).
	DefaultMaxLiteral = 64 << 20
	// DefaultMaxDepth bounds parenthesis and NOT/OR nesting, which keeps
	// the recursive parsers off deep stacks.
	DefaultMaxDepth = 32
	// DefaultMaxLiteralsPerCommand bounds literals in one command
	// (MULTIAPPEND sends one per message, RFC 3502).
	DefaultMaxLiteralsPerCommand = 1000
	// LiteralMinusMax is the largest non-synchronizing literal a client may
	// send to a server that advertises LITERAL- (RFC 7888 §4). Use it as
	// Limits.NonSyncMax.
	LiteralMinusMax = 4096
)

// Limits bounds what a Decoder reads. The zero value means the defaults.
type Limits struct {
	// MaxLine bounds the bytes of one command outside literals (all of its
	// lines together). Default DefaultMaxLine.
	MaxLine int
	// MaxLiteral bounds one literal. Default DefaultMaxLiteral.
	MaxLiteral int64
	// MaxString bounds a literal read where a string is expected (AString,
	// String, NString, mailbox names, search strings). Default MaxLine.
	MaxString int
	// MaxDepth bounds nesting of parenthesized lists and of search NOT/OR.
	// Default DefaultMaxDepth.
	MaxDepth int
	// MaxLiteralsPerCommand bounds the literals in one command. Default
	// DefaultMaxLiteralsPerCommand.
	MaxLiteralsPerCommand int
	// NonSyncMax is the non-synchronizing literal policy: 0 accepts them
	// up to the literal's own limit (LITERAL+, RFC 7888 §3); a positive
	// value refuses larger ones (LiteralMinusMax for LITERAL-, RFC 7888
	// §4); a negative value refuses all of them (neither advertised).
	NonSyncMax int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxLine <= 0 {
		l.MaxLine = DefaultMaxLine
	}
	if l.MaxLiteral <= 0 {
		l.MaxLiteral = DefaultMaxLiteral
	}
	if l.MaxString <= 0 {
		l.MaxString = l.MaxLine
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxLiteralsPerCommand <= 0 {
		l.MaxLiteralsPerCommand = DefaultMaxLiteralsPerCommand
	}
	return l
}

// Decoder reads client commands. It is not safe for concurrent use.
//
// A command is read by calling Tag, then the primitives its grammar
// requires, then CRLF. A method that fails returns an *Error for a client
// mistake (the server answers BAD and calls Discard) or the reader's error
// for a broken connection.
type Decoder struct {
	r    *bufio.Reader
	cont func(size int64) error
	lim  Limits

	n      int  // bytes of the current command outside literals
	lits   int  // literals announced in the current command
	depth  int  // current nesting
	inLine bool // inside a command whose final CRLF is not read

	lit  *LiteralReader // literal being streamed to the caller, if any
	skip int64          // refused non-synchronizing literal bytes still coming

	tail [tailSize]byte // last bytes of the current line segment (ring)
	tn   int            // bytes written to tail since the segment began

	buf []byte // scratch for take
}

const tailSize = 32 // holds "{" + 19 digits + "+}\r" with room to spare

// NewDecoder returns a Decoder reading from r.
//
// cont is called with the size of each synchronizing literal, after the
// size is checked against the limits and before any literal byte is read:
// it writes the continuation request ("+ Ready for literal data\r\n") and
// flushes. cont may refuse the literal by returning an *Error (for instance
// with CodeTooBig for a quota); the client then sends nothing more for
// that command. Any other error is a connection failure and is returned
// as is. A nil cont refuses every synchronizing literal.
func NewDecoder(r *bufio.Reader, cont func(size int64) error, lim Limits) *Decoder {
	return &Decoder{r: r, cont: cont, lim: lim.withDefaults()}
}

// Limits returns the limits in effect, defaults filled in.
func (d *Decoder) Limits() Limits { return d.lim }

// SetLimits replaces the limits, for instance once a user is known or
// after ENABLE. It takes effect at the next command.
func (d *Decoder) SetLimits(lim Limits) { d.lim = lim.withDefaults() }

// beginLine resets the per-command state.
func (d *Decoder) beginLine() {
	d.n, d.lits, d.depth = 0, 0, 0
	d.inLine = true
	d.tn = 0
}

// endLine records that the command's last line has been consumed.
func (d *Decoder) endLine() {
	d.n, d.lits, d.depth = 0, 0, 0
	d.inLine = false
	d.tn = 0
}

// prepare drains a literal the caller left unread, so that the stream is
// positioned after it.
func (d *Decoder) prepare() error {
	if d.lit == nil {
		return nil
	}
	l := d.lit
	d.lit = nil
	if l.remain > 0 {
		if _, err := d.r.Discard(int(min(l.remain, int64(^uint(0)>>1)))); err != nil {
			return unexpectedEOF(err)
		}
		l.remain = 0
	}
	d.tn = 0
	return nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (d *Decoder) record(c byte) {
	d.tail[d.tn%tailSize] = c
	d.tn++
}

// readByte consumes one byte of line text.
func (d *Decoder) readByte() (byte, error) {
	if d.n >= d.lim.MaxLine {
		return 0, tooBig("command line too long")
	}
	c, err := d.r.ReadByte()
	if err != nil {
		return 0, unexpectedEOF(err)
	}
	d.n++
	d.record(c)
	return c, nil
}

func (d *Decoder) peekByte() (byte, error) {
	if err := d.prepare(); err != nil {
		return 0, err
	}
	b, err := d.r.Peek(1)
	if err != nil {
		return 0, unexpectedEOF(err)
	}
	return b[0], nil
}

// Peek returns the next byte without consuming it, for commands whose
// grammar branches on it.
func (d *Decoder) Peek() (byte, error) {
	d.inLine = true
	return d.peekByte()
}

// expect consumes c or fails naming what was expected.
func (d *Decoder) expect(c byte, what string) error {
	b, err := d.peekByte()
	if err != nil {
		return err
	}
	if b != c {
		return syntaxErr("expected %s", what)
	}
	_, err = d.readByte()
	return err
}

// take consumes the longest run of bytes in class mask and returns it in a
// scratch buffer valid until the next call.
func (d *Decoder) take(mask uint8) ([]byte, error) {
	if err := d.prepare(); err != nil {
		return nil, err
	}
	d.buf = d.buf[:0]
	for {
		if _, err := d.r.Peek(1); err != nil {
			if len(d.buf) > 0 && err == io.EOF {
				// The token ends at end of input; the next read reports it.
				return d.buf, nil
			}
			return nil, unexpectedEOF(err)
		}
		b, _ := d.r.Peek(d.r.Buffered())
		i := 0
		for i < len(b) && class[b[i]]&mask != 0 {
			i++
		}
		if room := d.lim.MaxLine - d.n; i > room {
			return nil, tooBig("command line too long")
		}
		d.buf = append(d.buf, b[:i]...)
		for _, c := range b[max(0, i-tailSize):i] {
			d.record(c)
		}
		d.n += i
		d.r.Discard(i)
		if i < len(b) {
			return d.buf, nil
		}
	}
}

// Tag reads the tag that starts a command: 1*<any ASTRING-CHAR except "+">
// (RFC 9051 §9). If the previous command was left unfinished, Tag first
// discards the rest of it (see Discard).
func (d *Decoder) Tag() (string, error) {
	if d.inLine || d.skip > 0 || d.lit != nil {
		if err := d.Discard(); err != nil {
			return "", err
		}
	}
	if err := d.prepare(); err != nil {
		return "", err
	}
	if _, err := d.r.Peek(1); err != nil {
		return "", err // io.EOF here is a clean close between commands
	}
	d.beginLine()
	b, err := d.take(cTag)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", syntaxErr("expected tag")
	}
	return string(b), nil
}

// SP reads exactly one space. RFC 9051 §9: arguments are separated by one
// SP; extra spaces are an error.
func (d *Decoder) SP() error {
	d.inLine = true
	return d.expect(' ', "SP")
}

// CRLF reads the end of the command. RFC 9051 §2.2: lines end in CRLF; a
// bare LF is an error.
func (d *Decoder) CRLF() error {
	d.inLine = true
	if err := d.expect('\r', "CRLF (end of command)"); err != nil {
		return err
	}
	if err := d.expect('\n', "LF after CR"); err != nil {
		return err
	}
	d.endLine()
	return nil
}

// Line reads one raw line without its CRLF, bounded by MaxLine: the
// client's answer to a continuation request (AUTHENTICATE, RFC 9051
// §6.2.2) and "DONE" ending IDLE (RFC 9051 §6.3.13). A bare LF also ends
// the line here, since no argument follows that could be misread.
func (d *Decoder) Line() (string, error) {
	if err := d.prepare(); err != nil {
		return "", err
	}
	d.beginLine()
	var sb []byte
	for {
		c, err := d.readByte()
		if err != nil {
			return "", err
		}
		if c == '\n' {
			d.endLine()
			return string(bytes.TrimSuffix(sb, []byte{'\r'})), nil
		}
		sb = append(sb, c)
	}
}

// Atom reads 1*ATOM-CHAR (RFC 9051 §9), as sent. Command names and other
// keywords are case-insensitive; the caller compares with strings.EqualFold
// or upper-cases.
func (d *Decoder) Atom() (string, error) {
	d.inLine = true
	b, err := d.take(cAtom)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", syntaxErr("expected atom")
	}
	return string(b), nil
}

// keyword reads an atom and upper-cases it.
func (d *Decoder) keyword(what string) (string, error) {
	d.inLine = true
	b, err := d.take(cAtom)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", syntaxErr("expected %s", what)
	}
	return upper(b), nil
}

func upper(b []byte) string {
	for _, c := range b {
		if 'a' <= c && c <= 'z' {
			return strings.ToUpper(string(b))
		}
	}
	return string(b)
}

// AString reads astring = 1*ASTRING-CHAR / string (RFC 9051 §9).
func (d *Decoder) AString() (string, error) {
	d.inLine = true
	c, err := d.peekByte()
	if err != nil {
		return "", err
	}
	if c == '"' || c == '{' {
		return d.String()
	}
	b, err := d.take(cAString)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", syntaxErr("expected atom or string")
	}
	return string(b), nil
}

// NString reads nstring = string / "NIL" (RFC 9051 §9). ok is false for NIL.
func (d *Decoder) NString() (s string, ok bool, err error) {
	d.inLine = true
	c, err := d.peekByte()
	if err != nil {
		return "", false, err
	}
	if c == '"' || c == '{' {
		s, err := d.String()
		return s, err == nil, err
	}
	b, err := d.take(cAtom)
	if err != nil {
		return "", false, err
	}
	if !strings.EqualFold(string(b), "NIL") {
		return "", false, syntaxErr("expected string or NIL")
	}
	return "", false, nil
}

// String reads string = quoted / literal (RFC 9051 §9). A literal is
// bounded by Limits.MaxString and may not contain NUL (CHAR8).
func (d *Decoder) String() (string, error) {
	d.inLine = true
	c, err := d.peekByte()
	if err != nil {
		return "", err
	}
	switch c {
	case '"':
		return d.quoted()
	case '{':
		size, sync, binary, err := d.literalHeader()
		if err != nil {
			return "", err
		}
		if binary {
			return "", syntaxErr("literal8 not allowed here")
		}
		if err := d.acceptLiteral(size, sync, int64(d.lim.MaxString)); err != nil {
			return "", err
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(d.r, b); err != nil {
			return "", unexpectedEOF(err)
		}
		d.tn = 0
		if bytes.IndexByte(b, 0) >= 0 {
			return "", syntaxErr("NUL in literal")
		}
		return string(b), nil
	}
	return "", syntaxErr("expected quoted string or literal")
}

// quoted reads DQUOTE *QUOTED-CHAR DQUOTE. RFC 9051 §9 allows UTF-8 in
// QUOTED-CHAR; RFC 3501 §9 allows 7-bit only. Valid UTF-8 is accepted in
// both (leniency: Jakarta/Angus Mail and scripts on Python's imaplib send
// 8-bit UTF-8 search strings quoted). Invalid UTF-8, NUL, CR and LF are
// errors, as is a backslash not followed by DQUOTE or backslash.
func (d *Decoder) quoted() (string, error) {
	if _, err := d.readByte(); err != nil { // the opening DQUOTE
		return "", err
	}
	d.buf = d.buf[:0]
	eightBit := false
	for {
		c, err := d.readByte()
		if err != nil {
			return "", err
		}
		switch {
		case c == '"':
			if eightBit && !utf8.Valid(d.buf) {
				return "", syntaxErr("invalid UTF-8 in quoted string")
			}
			return string(d.buf), nil
		case c == '\\':
			e, err := d.peekByte()
			if err != nil {
				return "", err
			}
			if e != '"' && e != '\\' {
				return "", syntaxErr(`backslash in quoted string must escape " or \`)
			}
			d.readByte()
			d.buf = append(d.buf, e)
		case c == 0 || c == '\r' || c == '\n':
			return "", syntaxErr("NUL, CR or LF in quoted string")
		default:
			if c >= 0x80 {
				eightBit = true
			}
			d.buf = append(d.buf, c)
		}
	}
}

// literalHeader reads "{" number64 ["+"] "}" CRLF, or "~{...}" (literal8,
// RFC 3516 §4.1), up to and including the CRLF.
func (d *Decoder) literalHeader() (size int64, sync, binary bool, err error) {
	c, err := d.peekByte()
	if err != nil {
		return 0, false, false, err
	}
	if c == '~' {
		binary = true
		d.readByte()
	}
	if err := d.expect('{', "{ starting a literal"); err != nil {
		return 0, false, false, err
	}
	digits, err := d.take(cDigit)
	if err != nil {
		return 0, false, false, err
	}
	n, ok := parseUint(digits, 1<<63-1)
	if !ok {
		return 0, false, false, syntaxErr("invalid literal size")
	}
	size = int64(n)
	sync = true
	if c, err := d.peekByte(); err == nil && c == '+' {
		sync = false
		d.readByte()
	}
	if err := d.expect('}', "} closing a literal size"); err != nil {
		return 0, false, false, err
	}
	if err := d.expect('\r', "CRLF after a literal size"); err != nil {
		return 0, false, false, err
	}
	if err := d.expect('\n', "CRLF after a literal size"); err != nil {
		return 0, false, false, err
	}
	d.tn = 0
	return size, sync, binary, nil
}

// acceptLiteral applies the limits and the continuation rule to an
// announced literal whose header has been read. On refusal it records how
// Discard must recover: after a synchronizing literal the client sends
// nothing more; after a non-synchronizing one its bytes are on the way.
func (d *Decoder) acceptLiteral(size int64, sync bool, max int64) error {
	d.lits++
	refuse := func(e *Error) error {
		if sync {
			d.endLine()
		} else {
			d.skip = size
		}
		return e
	}
	if d.lits > d.lim.MaxLiteralsPerCommand {
		return refuse(tooBig("too many literals in one command"))
	}
	if !sync {
		if d.lim.NonSyncMax < 0 {
			return refuse(syntaxErr("non-synchronizing literals are not supported"))
		}
		if d.lim.NonSyncMax > 0 && size > d.lim.NonSyncMax {
			return refuse(tooBig("non-synchronizing literal larger than %d bytes", d.lim.NonSyncMax))
		}
	}
	if size > max {
		return refuse(tooBig("literal larger than %d bytes", max))
	}
	if !sync {
		return nil
	}
	if d.cont == nil {
		return refuse(syntaxErr("synchronizing literals are not supported"))
	}
	if err := d.cont(size); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return refuse(e)
		}
		return err
	}
	return nil
}

// LiteralReader streams the data of a literal returned by Decoder.Literal.
// It must be read before the next Decoder call; whatever is left unread
// is skipped by that call.
type LiteralReader struct {
	d      *Decoder
	size   int64
	remain int64
	binary bool
}

// Size is the literal's announced size.
func (l *LiteralReader) Size() int64 { return l.size }

// Binary reports a literal8 (RFC 3516), which may contain NUL.
func (l *LiteralReader) Binary() bool { return l.binary }

// Read reads literal data. A NUL in a literal that is not a literal8 is an
// *Error (RFC 9051 §4.3: CHAR8 excludes NUL); the rest of the literal is
// then skipped by Discard.
func (l *LiteralReader) Read(p []byte) (int, error) {
	if l.remain == 0 || l.d.lit != l {
		return 0, io.EOF
	}
	if int64(len(p)) > l.remain {
		p = p[:l.remain]
	}
	n, err := l.d.r.Read(p)
	l.remain -= int64(n)
	if !l.binary {
		if i := bytes.IndexByte(p[:n], 0); i >= 0 {
			return i, syntaxErr("NUL in literal (use literal8)")
		}
	}
	if l.remain == 0 {
		l.d.lit = nil
		l.d.tn = 0
		if err == io.EOF {
			err = nil
		}
		if n == 0 {
			return 0, io.EOF
		}
	} else if err != nil {
		err = unexpectedEOF(err)
	}
	return n, err
}

// Literal reads a literal or literal8 (RFC 3516 §4.1) for message data
// (APPEND, RFC 9051 §6.3.12) and returns a stream of its bytes, so that a
// 64 MiB message is never held in memory by the decoder. The size is
// checked against max (if positive) and Limits.MaxLiteral before cont is
// called. binary reports a literal8.
func (d *Decoder) Literal(max int64) (r *LiteralReader, binary bool, err error) {
	d.inLine = true
	c, err := d.peekByte()
	if err != nil {
		return nil, false, err
	}
	if c != '{' && c != '~' {
		return nil, false, syntaxErr("expected literal")
	}
	size, sync, binary, err := d.literalHeader()
	if err != nil {
		return nil, false, err
	}
	limit := d.lim.MaxLiteral
	if max > 0 && max < limit {
		limit = max
	}
	if err := d.acceptLiteral(size, sync, limit); err != nil {
		return nil, binary, err
	}
	l := &LiteralReader{d: d, size: size, remain: size, binary: binary}
	if size > 0 {
		d.lit = l
	}
	return l, binary, nil
}

// Number reads number = 1*DIGIT as an unsigned 32-bit value (RFC 9051 §9).
func (d *Decoder) Number() (uint32, error) {
	n, err := d.number(1<<32-1, "number")
	return uint32(n), err
}

// Number64 reads number64, 0 to 2^63-1 (RFC 9051 §9; also
// mod-sequence-value, RFC 7162 §7).
func (d *Decoder) Number64() (uint64, error) {
	return d.number(1<<63-1, "number")
}

func (d *Decoder) number(max uint64, what string) (uint64, error) {
	d.inLine = true
	b, err := d.take(cDigit)
	if err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, syntaxErr("expected %s", what)
	}
	n, ok := parseUint(b, max)
	if !ok {
		return 0, syntaxErr("%s out of range", what)
	}
	return n, nil
}

// parseUint parses decimal digits, refusing values above max.
func parseUint(b []byte, max uint64) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (max-uint64(c-'0'))/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// List reads "(" [item *(SP item)] ")", calling item for each element.
// Nesting is bounded by Limits.MaxDepth.
func (d *Decoder) List(item func() error) error {
	d.inLine = true
	if err := d.expect('(', "("); err != nil {
		return err
	}
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > d.lim.MaxDepth {
		return tooBig("nesting deeper than %d", d.lim.MaxDepth)
	}
	c, err := d.peekByte()
	if err != nil {
		return err
	}
	if c == ')' {
		_, err := d.readByte()
		return err
	}
	for {
		if err := item(); err != nil {
			return err
		}
		c, err := d.peekByte()
		if err != nil {
			return err
		}
		if c == ')' {
			_, err := d.readByte()
			return err
		}
		if err := d.SP(); err != nil {
			return syntaxErr("expected SP or )")
		}
	}
}

// Discard skips the rest of the current command after an error, leaving
// the decoder at the start of the next one. It never reads data the client
// has not been invited to send:
//
//   - a literal being streamed to the caller is skipped;
//   - a refused non-synchronizing literal is skipped (its bytes are on the
//     way, RFC 7888 §4);
//   - a refused synchronizing literal ends the command: the client waits
//     for a continuation, receives the tagged BAD instead and abandons the
//     command (RFC 9051 §7.5), so nothing more is read;
//   - otherwise the line is skipped to its LF. If it ends in a literal
//     header, "{n}" means the client now waits (stop here, as above) and
//     "{n+}" means n bytes follow and then more of the command (skip them
//     and go on).
//
// Discard reads at most 2*MaxLine bytes of line text, so that a command
// refused for its length can still be skipped.
//
// Recovery for the server: write the tagged BAD (with the *Error's code
// and text), call Discard, and read the next Tag. If Discard returns
// ErrUnrecoverable (a line or literal beyond every limit) or an I/O error,
// write "* BYE" and close the connection.
//
// A bare LF ends the line here (not in CRLF), so that a client sending
// bare LFs gets one BAD per line rather than one for the whole session.
func (d *Decoder) Discard() error {
	if d.lit != nil {
		if err := d.prepare(); err != nil {
			return err
		}
	}
	if d.skip > 0 {
		if err := d.skipBytes(d.skip); err != nil {
			return err
		}
		d.skip = 0
	}
	if !d.inLine {
		d.endLine()
		return nil
	}
	budget := 2 * d.lim.MaxLine
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			return unexpectedEOF(err)
		}
		if c != '\n' {
			if budget--; budget < 0 {
				return ErrUnrecoverable
			}
			d.record(c)
			continue
		}
		size, kind := d.tailLiteral()
		switch kind {
		case tailPlain, tailSync:
			d.endLine()
			return nil
		case tailUnknown:
			return ErrUnrecoverable
		}
		if d.lits++; d.lits > d.lim.MaxLiteralsPerCommand {
			return ErrUnrecoverable
		}
		if err := d.skipBytes(size); err != nil {
			return err
		}
		d.tn = 0
	}
}

func (d *Decoder) skipBytes(n int64) error {
	if n < 0 || n > d.lim.MaxLiteral {
		return ErrUnrecoverable
	}
	if _, err := d.r.Discard(int(n)); err != nil {
		return unexpectedEOF(err)
	}
	d.tn = 0
	return nil
}

// Kinds of line ending seen by Discard.
const (
	tailPlain   = iota // no literal header
	tailSync           // "{n}": the client waits for a continuation
	tailNonSync        // "{n+}": n bytes follow
	tailUnknown        // "{…+}" whose size is lost or unparsable
)

// tailLiteral classifies the current line segment, just ended by LF: does
// it end in a literal header "{n}" or "{n+}" (optionally followed by CR)?
func (d *Decoder) tailLiteral() (size int64, kind int) {
	k := min(d.tn, tailSize)
	t := make([]byte, k)
	for i := range k {
		t[i] = d.tail[(d.tn-k+i)%tailSize]
	}
	t = bytes.TrimSuffix(t, []byte{'\r'})
	if len(t) < 2 || t[len(t)-1] != '}' {
		return 0, tailPlain
	}
	t = t[:len(t)-1]
	sync := true
	if t[len(t)-1] == '+' {
		sync = false
		t = t[:len(t)-1]
	}
	open := bytes.LastIndexByte(t, '{')
	digits := t[open+1:]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, tailPlain
		}
	}
	if open < 0 && d.tn <= tailSize || len(digits) == 0 {
		return 0, tailPlain
	}
	n, valid := parseUint(digits, 1<<63-1)
	switch {
	case sync:
		// The client waits whatever the size says.
		return 0, tailSync
	case open < 0 || !valid:
		// A header longer than the ring (leading zeros) or too big.
		return 0, tailUnknown
	}
	return int64(n), tailNonSync
}
