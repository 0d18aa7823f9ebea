package imap

import "strings"

// ENABLE — RFC 5161, RFC 9051 §6.3.1, RFC 7162 §3.1, §3.2.3 (CONDSTORE,
// QRESYNC). State: authenticated.
// IMAP4rev2 switches the session to RFC 9051's responses: no RECENT,
// a LIST response in SELECT, ESEARCH for every SEARCH.
func cmdEnable(c *conn, tag string, _ bool) error {
	var enabled []string
	for {
		b, err := c.dec.Peek()
		if err != nil {
			return err
		}
		if b != ' ' {
			break
		}
		c.dec.SP()
		ext, err := c.dec.Atom()
		if err != nil {
			return err
		}
		switch strings.ToUpper(ext) {
		case "IMAP4REV2":
			if !c.rev2 {
				c.rev2 = true
				enabled = append(enabled, "IMAP4rev2")
			}
		case "CONDSTORE":
			if !c.condstore {
				c.enableCondstore()
				enabled = append(enabled, "CONDSTORE")
			}
		case "QRESYNC":
			// RFC 7162 §3.2.3: QRESYNC implies CONDSTORE; as Dovecot,
			// ENABLED names only what was asked for.
			if !c.qresync {
				c.qresync = true
				c.enableCondstore()
				enabled = append(enabled, "QRESYNC")
			}
		case "UTF8=ACCEPT":
			if !c.utf8 {
				c.utf8, c.enc.UTF8 = true, true
				enabled = append(enabled, "UTF8=ACCEPT")
			}
		}
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	c.bw.WriteString("* ENABLED")
	for _, e := range enabled {
		c.bw.WriteString(" " + e)
	}
	c.bw.WriteString("\r\n")
	return c.ok(tag, "", "ENABLE completed")
}

func init() { register("ENABLE", authed, false, cmdEnable) }
