package imap

import (
	"errors"
	"fmt"
	"slices"
)

// COPY, MOVE and their UID forms — RFC 9051 §6.4.7, §6.4.8, RFC 6851,
// RFC 4315 (COPYUID). State: selected. MOVE answers its COPYUID in an
// untagged OK, then the expunges of the originals, then the tagged OK
// (RFC 6851 §4.3).
//
// A COPY or MOVE naming a message that someone else expunged meanwhile
// copies nothing and answers NO [EXPUNGEISSUED] (RFC 2180 §4.4.1, as
// Dovecot does). Pending EXPUNGEs are announced in answer to every COPY,
// by sequence number too: RFC 2180 §4.4 requires it, and RFC 9051
// §7.5.1 forbids them only during FETCH, STORE and SEARCH.
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
	if c.anyGone(uids) {
		err = ErrNoSuchMessageErr
	}
	var validity uint32
	var src, dst, gone []uint32
	switch {
	case err != nil:
	case move:
		validity, src, dst, gone, err = c.move(uids, dest)
	default:
		validity, src, dst, err = s.mb.Copy(c.ctx, uids, dest)
	}
	if err != nil {
		if errors.Is(err, ErrNoSuchMessageErr) {
			if err := c.updates(true); err != nil {
				return err
			}
			return no("EXPUNGEISSUED", "Some of the requested messages no longer exist")
		}
		return c.missingDest(dest, err)
	}
	code := ""
	if len(src) > 0 {
		code = fmt.Sprintf("COPYUID %d %s %s", validity, uidSet(src), uidSet(dst))
	}
	if !move {
		if err := c.updates(true); err != nil {
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

// anyGone reports whether a message of uids is no longer in the selected
// mailbox: expunged by someone else, and the session not told yet.
func (c *conn) anyGone(uids []uint32) bool {
	now, _ := c.sel.mb.UIDs()
	return slices.ContainsFunc(uids, func(u uint32) bool {
		_, ok := slices.BinarySearch(now, u)
		return !ok
	})
}

func init() {
	register("COPY", selected_, true, cmdCopy)
	register("MOVE", selected_, true, cmdMove)
}
