package imap

import (
	"crypto/tls"
	"strconv"
	"strings"
)

// capabilities lists what the session may use now (RFC 9051 §6.1.1):
// only what the engine implements. LITERAL- is implemented but not
// advertised: RFC 7888 §5 forbids advertising both, LITERAL+ allows
// everything LITERAL- does and more, and IMAP4rev2 (RFC 9051 §4.3)
// implies LITERAL- anyway. AUTH=PLAIN and LOGIN only where a password may
// be sent (LOGINDISABLED elsewhere, RFC 9051 §6.2.3).
func (c *conn) capabilities() string {
	caps := []string{"IMAP4rev1", "IMAP4rev2", "LITERAL+", "ID", "ENABLE", "IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "UNSELECT",
		"CHILDREN", "SPECIAL-USE", "CREATE-SPECIAL-USE", "STATUS=SIZE", "BINARY", "UTF8=ACCEPT", "ESEARCH", "SEARCHRES", "LIST-EXTENDED", "LIST-STATUS",
		"CONDSTORE", "QRESYNC", "OBJECTID",
		"APPENDLIMIT=" + strconv.FormatInt(c.dec.Limits().MaxLiteral, 10)}
	if c.state == stateNotAuth {
		if _, isTLS := c.nc.(*tls.Conn); !isTLS && c.srv.TLSConfig != nil {
			caps = append(caps, "STARTTLS")
		}
		if c.secure() {
			caps = append(caps, "SASL-IR", "AUTH=PLAIN")
		} else {
			caps = append(caps, "LOGINDISABLED")
		}
	}
	return strings.Join(caps, " ")
}

// CAPABILITY — RFC 9051 §6.1.1. State: any.
func cmdCapability(c *conn, tag string, _ bool) error {
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	c.bw.WriteString("* CAPABILITY " + c.capabilities() + "\r\n")
	return c.ok(tag, "", "CAPABILITY completed")
}

func init() { register("CAPABILITY", any_, false, cmdCapability) }
