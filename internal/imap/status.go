package imap

import (
	"fmt"
	"strings"

	"github.com/cistern-mail/cistern/internal/imap/wire"
)

// STATUS — RFC 9051 §6.3.11. State: authenticated.
func cmdStatus(c *conn, tag string, _ bool) error {
	name, err := c.mailboxArg()
	if err != nil {
		return err
	}
	if err := c.dec.SP(); err != nil {
		return err
	}
	items, err := c.dec.StatusItems()
	if err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	st, err := c.user.Status(c.ctx, name)
	if err != nil {
		return err
	}
	c.writeStatus(name, items, st)
	return c.ok(tag, "", "STATUS completed")
}

// writeStatus writes "* STATUS name (items)" for STATUS and for LIST
// RETURN (STATUS ...) (RFC 5819).
func (c *conn) writeStatus(name string, items []string, st StatusInfo) {
	var parts []string
	for _, it := range items {
		switch strings.ToUpper(it) {
		case "MESSAGES":
			parts = append(parts, fmt.Sprintf("MESSAGES %d", st.Messages))
		case "RECENT":
			parts = append(parts, fmt.Sprintf("RECENT %d", st.Recent))
		case "UIDNEXT":
			parts = append(parts, fmt.Sprintf("UIDNEXT %d", max(st.UIDNext, 1)))
		case "UIDVALIDITY":
			parts = append(parts, fmt.Sprintf("UIDVALIDITY %d", st.UIDValidity))
		case "UNSEEN":
			parts = append(parts, fmt.Sprintf("UNSEEN %d", st.Unseen))
		case "DELETED":
			parts = append(parts, fmt.Sprintf("DELETED %d", st.Deleted))
		case "SIZE":
			parts = append(parts, fmt.Sprintf("SIZE %d", st.Size))
		case "HIGHESTMODSEQ":
			// RFC 7162 §3.1.6; a CONDSTORE enabling command (§3.1).
			c.enableCondstore()
			parts = append(parts, fmt.Sprintf("HIGHESTMODSEQ %d", st.HighestModSeq))
		case "MAILBOXID": // RFC 8474 §4.3
			if !wire.IsObjectID(st.MailboxID) {
				panic("imap: the backend gave MAILBOXID " + st.MailboxID + ", which is no objectid")
			}
			parts = append(parts, "MAILBOXID ("+st.MailboxID+")")
		}
	}
	c.bw.WriteString("* STATUS ")
	c.enc.Mailbox(name, c.utf8)
	c.bw.WriteString(" (" + strings.Join(parts, " ") + ")\r\n")
}

func init() { register("STATUS", authed, false, cmdStatus) }
