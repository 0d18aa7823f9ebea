package imap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/message"
)

// APPEND — RFC 9051 §6.3.12, with UIDPLUS's APPENDUID (RFC 4315) and
// LITERAL+. State: authenticated. The message is durable before OK. A
// missing mailbox is NO [TRYCREATE] (names.go, missingDest).
//
// A message sent as a literal8 (BINARY, RFC 3516 §4.4) is stored with its
// binary parts re-encoded as base64 (message.EncodeBinaryParts, as
// Dovecot does): a BODY[] literal cannot carry NUL, and the CRLF the
// server gives stored bare LFs must not touch binary content. That needs
// the whole message in memory, taken from the response memory budget. A
// NUL in a plain {n} literal is refused with BAD (RFC 9051 §4.3: CHAR8
// excludes NUL; RFC 3516 lets a server refuse it).
func cmdAppend(c *conn, tag string, _ bool) error {
	name, err := c.mailboxArg()
	if err != nil {
		return err
	}
	if err := c.dec.SP(); err != nil {
		return err
	}
	var flags []string
	var date time.Time
	if b, _ := c.dec.Peek(); b == '(' {
		if flags, err = c.dec.FlagList(); err != nil {
			return err
		}
		if err := c.dec.SP(); err != nil {
			return err
		}
	}
	if b, _ := c.dec.Peek(); b == '"' {
		if date, err = c.dec.DateTime(); err != nil {
			return err
		}
		if err := c.dec.SP(); err != nil {
			return err
		}
	}
	lit, binary, err := c.dec.Literal(c.dec.Limits().MaxLiteral)
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) && we.Code == "TOOBIG" {
			if c.dec.Discard() != nil {
				// A non-synchronizing literal too big to skip: what
				// follows cannot be parsed, so the session ends, with
				// BYE rather than a silent close (RFC 7888 §4).
				c.outcome = outcomeNo
				fmt.Fprintf(c.bw, "%s NO [TOOBIG] Message too big\r\n* BYE Literal too big to skip\r\n", tag)
				c.state = stateLogout
				return nil
			}
			return ErrTooBig
		}
		return err
	}
	// The command must parse to its end before the message is stored: a
	// BAD, like a NO, means nothing was done. The line's end is read when
	// the literal is, so that the store, reading the message, fails
	// before it keeps anything.
	var data io.Reader = &thenLineEnd{r: lit, end: c.dec.CRLF}
	size := lit.Size()
	release := func() {}
	if binary {
		if release, err = c.reserve(binaryAppendCost(lit.Size())); err != nil {
			return err
		}
		// To its EOF, which is after the line's end; room for the
		// literal and bytes.MinRead, so that the buffer never grows.
		raw := bytes.NewBuffer(make([]byte, 0, lit.Size()+bytes.MinRead))
		if _, err := raw.ReadFrom(data); err != nil {
			release()
			return err
		}
		enc := message.EncodeBinaryParts(raw.Bytes())
		data, size = bytes.NewReader(enc), int64(len(enc))
	}
	validity, uid, err := c.user.Append(c.ctx, name, data, size, flags, date)
	release()
	if err != nil {
		io.Copy(io.Discard, lit) // the literal must be read off the wire
		c.dec.Discard()
		return c.missingDest(name, err)
	}
	if c.sel != nil {
		if err := c.sel.mb.Sync(c.ctx); err == nil {
			c.updates(true)
		}
	}
	return c.ok(tag, fmt.Sprintf("APPENDUID %d %d", validity, uid), "APPEND completed")
}

// thenLineEnd reads r, then, at its end, the end of the command's line
// (end): a line that goes on is the error of the read, in place of EOF.
type thenLineEnd struct {
	r    io.Reader
	end  func() error
	done bool
}

func (t *thenLineEnd) Read(p []byte) (int, error) {
	if t.done {
		return 0, io.EOF
	}
	n, err := t.r.Read(p)
	if err == io.EOF {
		t.done = true
		if lerr := t.end(); lerr != nil {
			return n, lerr
		}
	}
	return n, err
}

// binaryAppendCost is what a literal8 APPEND of size octets holds in
// memory: the literal, its base64 copy (4/3 of it, with line endings)
// and the parse between them.
func binaryAppendCost(size int64) int64 { return 3 * size }

func init() { register("APPEND", authed, false, cmdAppend) }
