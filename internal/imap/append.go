package imap

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cistern-mail/cistern/internal/imap/wire"
)

// APPEND — RFC 9051 §6.3.12, with UIDPLUS's APPENDUID (RFC 4315) and
// LITERAL+. State: authenticated. The message is durable before OK. A
// missing mailbox is NO [TRYCREATE] (names.go, missingDest).
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
	lit, _, err := c.dec.Literal(c.dec.Limits().MaxLiteral)
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
	validity, uid, err := c.user.Append(c.ctx, name, lit, flags, date)
	if err != nil {
		io.Copy(io.Discard, lit) // the literal must be read off the wire
		c.dec.Discard()
		return c.missingDest(name, err)
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	if c.sel != nil {
		if err := c.sel.mb.Sync(c.ctx); err == nil {
			c.updates(true)
		}
	}
	return c.ok(tag, fmt.Sprintf("APPENDUID %d %d", validity, uid), "APPEND completed")
}

func init() { register("APPEND", authed, false, cmdAppend) }
