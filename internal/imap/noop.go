package imap

// NOOP — RFC 9051 §6.1.2. State: any. In the selected state it is the
// client's way to ask for updates: sync now, then report everything.
func cmdNoop(c *conn, tag string, _ bool) error {
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	if c.sel != nil {
		if err := c.sel.mb.Sync(c.ctx); err != nil {
			return err
		}
		if err := c.updates(true); err != nil {
			return err
		}
	}
	return c.ok(tag, "", "NOOP completed")
}

// CHECK — RFC 3501 §6.4.1 (gone from IMAP4rev2, kept as NOOP).
func cmdCheck(c *conn, tag string, uid bool) error { return cmdNoop(c, tag, uid) }

func init() {
	register("NOOP", any_, false, cmdNoop)
	register("CHECK", selected_, false, cmdCheck)
}
