package imap

import (
	"errors"
	"fmt"
)

// COPY, MOVE and their UID forms — RFC 9051 §6.4.7, §6.4.8, RFC 6851,
// RFC 4315 (COPYUID). State: selected. MOVE copies, then expunges the
// originals and announces them before the tagged OK.
func cmdCopy(c *conn, tag string, uid bool) error { return c.copy(tag, uid, false) }
func cmdMove(c *conn, tag string, uid bool) error { return c.copy(tag, uid, true) }

func (c *conn) copy(tag string, uid, move bool) error {
	uids, err := c.setArg(uid)
	if err != nil {
		return err
	}
	dest, err := c.mailboxArg()
	if err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	s := c.sel
	if move && s.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	copyFn := s.mb.Copy
	if mc, ok := s.mb.(MoveCopier); ok && move {
		copyFn = mc.CopyForMove
	}
	validity, src, dst, err := copyFn(c.ctx, uids, dest)
	if err != nil {
		if errors.Is(err, ErrNoSuchMailbox) {
			return no("TRYCREATE", "No such mailbox")
		}
		return err
	}
	code := ""
	if len(src) > 0 {
		code = fmt.Sprintf("COPYUID %d %s %s", validity, uidSet(src), uidSet(dst))
	}
	if !move {
		if err := c.updates(uid); err != nil {
			return err
		}
		return c.ok(tag, code, "COPY completed")
	}
	if code != "" {
		c.bw.WriteString("* OK [" + code + "] Moved\r\n")
	}
	gone, err := s.mb.Expunge(c.ctx, src)
	if err != nil {
		return err
	}
	s.held = append(s.held, gone...)
	if err := c.updates(true); err != nil {
		return err
	}
	return c.ok(tag, "", "MOVE completed")
}

func init() {
	register("COPY", selected_, true, cmdCopy)
	register("MOVE", selected_, true, cmdMove)
}
