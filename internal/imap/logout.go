package imap

// LOGOUT — RFC 9051 §6.1.3. State: any.
func cmdLogout(c *conn, tag string, _ bool) error {
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	c.bw.WriteString("* BYE Logging out\r\n")
	c.state = stateLogout
	return c.ok(tag, "", "LOGOUT completed")
}

func init() { register("LOGOUT", any_, false, cmdLogout) }
