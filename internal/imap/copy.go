package imap

import (
	"fmt"
)

// COPY, MOVE and their UID forms — RFC 9051 §6.4.7, §6.4.8, RFC 6851,
// RFC 4315 (COPYUID). State: selected. MOVE answers its COPYUID in an
// untagged OK, then the expunges of the originals, then the tagged OK
// (RFC 6851 §4.3).
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
	var validity uint32
	var src, dst, gone []uint32
	if move {
		validity, src, dst, gone, err = c.move(uids, dest)
	} else {
		validity, src, dst, err = s.mb.Copy(c.ctx, uids, dest)
	}
	if err != nil {
		return c.missingDest(dest, err)
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
	s.held = append(s.held, gone...)
	if err := c.updates(true); err != nil {
		return err
	}
	return c.ok(tag, "", "MOVE completed")
}

// move moves through the backend's Mover, or copies and then expunges
// the originals where the backend has none.
func (c *conn) move(uids []uint32, dest string) (validity uint32, src, dst, gone []uint32, err error) {
	mb := c.sel.mb
	if mv, ok := mb.(Mover); ok {
		return mv.Move(c.ctx, uids, dest)
	}
	if validity, src, dst, err = mb.Copy(c.ctx, uids, dest); err != nil {
		return 0, nil, nil, nil, err
	}
	if gone, err = mb.Expunge(c.ctx, src); err != nil {
		return 0, nil, nil, nil, err
	}
	return validity, src, dst, gone, nil
}

func init() {
	register("COPY", selected_, true, cmdCopy)
	register("MOVE", selected_, true, cmdMove)
}
