package imap

// ID — RFC 2971. State: any. The client's values are read and logged.
func cmdID(c *conn, tag string, _ bool) error {
	if err := c.dec.SP(); err != nil {
		return err
	}
	var fields []string
	if b, _ := c.dec.Peek(); b == '(' {
		err := c.dec.List(func() error {
			s, _, err := c.dec.NString()
			fields = append(fields, s)
			return err
		})
		if err != nil {
			return err
		}
	} else if _, _, err := c.dec.NString(); err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	if len(fields) > 0 && len(fields) <= 60 {
		c.log.Info("client id", "fields", fields)
	}
	c.bw.WriteString(`* ID ("name" "Cistern")` + "\r\n")
	return c.ok(tag, "", "ID completed")
}

func init() { register("ID", any_, false, cmdID) }
