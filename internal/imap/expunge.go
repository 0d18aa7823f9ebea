package imap

import (
	"fmt"
	"slices"
)

// EXPUNGE and UID EXPUNGE — RFC 9051 §6.4.3, RFC 4315 §2.1. State:
// selected. The session's own expunges are announced with every other
// pending one, highest sequence number first.
func cmdExpunge(c *conn, tag string, uid bool) error {
	var only []uint32
	if uid {
		var err error
		if only, err = c.setArg(true); err != nil {
			return err
		}
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	s := c.sel
	if s.readOnly {
		return no("READ-ONLY", "Mailbox is read-only")
	}
	del := s.mb.Deleted()
	if uid {
		// Both ascending: keep the deleted UIDs that the set names.
		del = slices.DeleteFunc(del, func(u uint32) bool {
			_, named := slices.BinarySearch(only, u)
			return !named
		})
	}
	gone, err := s.mb.Expunge(c.ctx, del)
	if err != nil {
		return err
	}
	s.held = append(s.held, gone...)
	if err := c.updates(true); err != nil {
		return err
	}
	return c.ok(tag, "", fmt.Sprintf("EXPUNGE completed (%d)", len(gone)))
}

func init() { register("EXPUNGE", selected_, true, cmdExpunge) }
