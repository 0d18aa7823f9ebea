package wire

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cistern-mail/cistern/internal/mailboxname"
)

// MaxQuoted is the longest string Encoder.String sends quoted; longer ones
// go as literals, which clients read without scanning for escapes.
const MaxQuoted = 1024

// Encoder writes server responses. It writes values correctly and decides
// nothing else: which responses to send, and when, is the server's. The
// first write error is kept (Err) and later writes are skipped; methods
// chain:
//
//	e.Untagged().Number(3).SP().Atom("EXISTS").CRLF()
//
// It is not safe for concurrent use.
type Encoder struct {
	w   *bufio.Writer
	err error
	// UTF8 allows UTF-8 in quoted strings and text (IMAP4rev2, or
	// UTF8=ACCEPT enabled; RFC 9051 §9, RFC 6855 §3). Without it, strings
	// with 8-bit bytes are sent as literals.
	UTF8 bool
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w *bufio.Writer) *Encoder { return &Encoder{w: w} }

// Err returns the first write error.
func (e *Encoder) Err() error { return e.err }

// Flush flushes the buffer and returns the first error.
func (e *Encoder) Flush() error {
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return e.err
}

func (e *Encoder) raw(s string) *Encoder {
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
	return e
}

func (e *Encoder) rawBytes(b []byte) *Encoder {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
	return e
}

// Special writes one syntax byte such as '(' or '['.
func (e *Encoder) Special(c byte) *Encoder {
	if e.err == nil {
		e.err = e.w.WriteByte(c)
	}
	return e
}

// Atom writes s verbatim: an atom, a response keyword, a flag or another
// token the caller knows to be valid where it is written.
func (e *Encoder) Atom(s string) *Encoder { return e.raw(s) }

// SP writes one space.
func (e *Encoder) SP() *Encoder { return e.Special(' ') }

// CRLF ends a response line.
func (e *Encoder) CRLF() *Encoder { return e.raw("\r\n") }

// Untagged starts an untagged response: "* ".
func (e *Encoder) Untagged() *Encoder { return e.raw("* ") }

// Tagged starts a tagged response: "tag ".
func (e *Encoder) Tagged(tag string) *Encoder { return e.raw(tag).SP() }

// Continue writes a continuation request "+ text" CRLF (RFC 9051 §7.5).
func (e *Encoder) Continue(text string) *Encoder {
	e.raw("+ ")
	return e.Text(text).CRLF()
}

// Text writes human-readable text (RFC 9051 §9, text = 1*TEXT-CHAR): CR,
// LF and NUL become spaces so that the response stays one line, and 8-bit
// bytes become "?" unless UTF8 allows valid UTF-8.
func (e *Encoder) Text(s string) *Encoder {
	if e.err != nil {
		return e
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c == '\r' || c == '\n' || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean || e.UTF8 && utf8.ValidString(s) && !strings.ContainsAny(s, "\x00\r\n") {
		return e.raw(s)
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0 || r == '\r' || r == '\n':
			b = append(b, ' ')
		case r < 0x80:
			b = append(b, byte(r))
		case e.UTF8 && r != utf8.RuneError:
			b = append(b, s[i:i+size]...)
		default:
			b = append(b, '?')
		}
		i += size
	}
	return e.rawBytes(b)
}

// Number writes a number.
func (e *Encoder) Number(n uint32) *Encoder { return e.Number64(uint64(n)) }

// Number64 writes a number64 or mod-sequence-value.
func (e *Encoder) Number64(n uint64) *Encoder {
	if e.err != nil {
		return e
	}
	return e.rawBytes(strconv.AppendUint(e.w.AvailableBuffer(), n, 10))
}

// NIL writes NIL.
func (e *Encoder) NIL() *Encoder { return e.raw("NIL") }

// quotable reports whether s can be sent as a quoted string: no NUL, CR
// or LF (RFC 9051 §9, QUOTED-CHAR), at most MaxQuoted bytes, 7-bit unless
// utf8 allows valid UTF-8.
func quotable(s string, utf8ok bool) bool {
	if len(s) > MaxQuoted {
		return false
	}
	eightBit := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0 || c == '\r' || c == '\n':
			return false
		case c >= 0x80:
			eightBit = true
		}
	}
	return !eightBit || utf8ok && utf8.ValidString(s)
}

// String writes s as a quoted string when quotable, else as a literal
// {n} CRLF s. A NUL cannot be sent in either (CHAR8 excludes it): in a
// literal it is sent as 0x80 (see Literal); callers holding binary data
// use Literal8 where BINARY allows it (RFC 3516).
func (e *Encoder) String(s string) *Encoder {
	if !quotable(s, e.UTF8) {
		if strings.IndexByte(s, 0) >= 0 {
			return e.Literal([]byte(s))
		}
		return e.literalHeader(false, int64(len(s))).raw(s)
	}
	if e.err != nil {
		return e
	}
	e.Special('"')
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			e.raw(s[start:i]).Special('\\')
			start = i
		}
	}
	return e.raw(s[start:]).Special('"')
}

// AString writes s as an atom when it is 1*ASTRING-CHAR (and not "NIL",
// which some clients would read as nil), else as String.
func (e *Encoder) AString(s string) *Encoder {
	if isAString(s) && !strings.EqualFold(s, "NIL") {
		return e.raw(s)
	}
	return e.String(s)
}

// NString writes NIL when null, else String(s).
func (e *Encoder) NString(s string, null bool) *Encoder {
	if null {
		return e.NIL()
	}
	return e.String(s)
}

func (e *Encoder) literalHeader(binary bool, n int64) *Encoder {
	if binary {
		e.Special('~')
	}
	if e.err != nil {
		return e
	}
	b := append(e.w.AvailableBuffer(), '{')
	b = strconv.AppendInt(b, n, 10)
	b = append(b, '}', '\r', '\n')
	return e.rawBytes(b)
}

// Literal writes b as a literal: {n} CRLF b. A literal cannot hold NUL
// (RFC 9051 §4.3: CHAR8 excludes it): each is sent as 0x80, as Dovecot
// sends them, which keeps the size (BODY[] of a message with NUL octets
// a foreign program stored; BINARY[] uses Literal8 for those).
func (e *Encoder) Literal(b []byte) *Encoder {
	e.literalHeader(false, int64(len(b)))
	for {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return e.rawBytes(b)
		}
		e.rawBytes(b[:i]).rawBytes(nulReplacement)
		b = b[i+1:]
	}
}

// nulReplacement is what Literal and String send for a NUL.
var nulReplacement = []byte{0x80}

// Literal8 writes b as a literal8: ~{n} CRLF b (RFC 3516 §4.1), for
// BINARY[] data that contains NUL.
func (e *Encoder) Literal8(b []byte) *Encoder {
	return e.literalHeader(true, int64(len(b))).rawBytes(b)
}

// LiteralFrom writes a literal (literal8 when binary) of exactly n bytes
// copied from r, so that a message body is not held in memory. If r ends
// early the encoder fails with io.ErrUnexpectedEOF: the response is then
// broken and the server closes the connection.
func (e *Encoder) LiteralFrom(r io.Reader, n int64, binary bool) *Encoder {
	e.literalHeader(binary, n)
	if e.err != nil {
		return e
	}
	written, err := io.Copy(e.w, io.LimitReader(r, n))
	if err == nil && written < n {
		err = io.ErrUnexpectedEOF
	}
	e.err = err
	return e
}

// Mailbox writes a mailbox name: "INBOX" in any case as INBOX (RFC 9051
// §5.1), otherwise encoded in modified UTF-7 unless utf8 (RFC 6855 §3),
// as an astring.
func (e *Encoder) Mailbox(name string, utf8 bool) *Encoder {
	if strings.EqualFold(name, "INBOX") {
		return e.raw("INBOX")
	}
	if !utf8 {
		name = mailboxname.EncodeMUTF7(name)
	}
	return e.AString(name)
}

// List writes "(" item(0) SP item(1) ... ")".
func (e *Encoder) List(n int, item func(i int)) *Encoder {
	e.Special('(')
	for i := range n {
		if i > 0 {
			e.SP()
		}
		item(i)
	}
	return e.Special(')')
}

// Flags writes a flag list, "(" flag *(SP flag) ")"; flags are written
// verbatim (they are atoms or "\" atom).
func (e *Encoder) Flags(flags []string) *Encoder {
	e.Special('(')
	for i, f := range flags {
		if i > 0 {
			e.SP()
		}
		e.raw(f)
	}
	return e.Special(')')
}

// DateTimeLayout is date-time without its quotes, date-day-fixed padded
// with a space (RFC 9051 §9).
const DateTimeLayout = "_2-Jan-2006 15:04:05 -0700"

// DateTime writes a quoted date-time ("dd-Mon-yyyy hh:mm:ss +zzzz").
func (e *Encoder) DateTime(t time.Time) *Encoder {
	if e.err != nil {
		return e
	}
	b := append(e.w.AvailableBuffer(), '"')
	b = t.AppendFormat(b, DateTimeLayout)
	b = append(b, '"')
	return e.rawBytes(b)
}

// SeqSet writes a sequence-set.
func (e *Encoder) SeqSet(s SeqSet) *Encoder { return e.raw(s.String()) }
