package imap

import "fmt"

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
	var del []uint32
	for _, m := range s.mb.Messages() {
		if hasFlag(m.Flags, `\Deleted`) && (!uid || containsUID(only, m.UID)) {
			del = append(del, m.UID)
		}
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
