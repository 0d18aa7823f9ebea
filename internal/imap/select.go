package imap

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cistern-mail/cistern/internal/imap/wire"
)

// SELECT and EXAMINE — RFC 9051 §6.3.2, §6.3.3, with RFC 7162's
// (CONDSTORE) and (QRESYNC (...)) (§3.1.8, §3.2.5; condstore.go). State:
// authenticated or selected (a selected mailbox is closed first, without
// expunging, and the client is told so with [CLOSED], RFC 7162 §3.2.11).
// HIGHESTMODSEQ is read before the snapshot of the messages: every
// change at or below it is in the snapshot.
func cmdSelect(c *conn, tag string, _ bool) error  { return c.open(tag, false) }
func cmdExamine(c *conn, tag string, _ bool) error { return c.open(tag, true) }

func (c *conn) open(tag string, readOnly bool) error {
	if err := c.dec.SP(); err != nil {
		return err
	}
	// A name that is no valid encoding is answered once the command is
	// read: the SELECT still fails, and so closes the selected mailbox
	// (RFC 3501 §6.3.1).
	name, err := c.dec.Mailbox(c.utf8)
	var ne *wire.NameError
	if err != nil && !errors.As(err, &ne) {
		return err
	}
	condstore, q, err := c.selectParams()
	if err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	if c.sel != nil {
		c.sel.mb.Close()
		c.sel, c.state = nil, stateAuth
		c.bw.WriteString("* OK [CLOSED] Previous mailbox closed\r\n")
	}
	if ne != nil {
		return nameErr(ne, "NONEXISTENT")
	}
	mb, err := c.user.Select(c.ctx, name)
	if err != nil {
		return err
	}
	if condstore {
		c.enableCondstore()
	}
	highest := mb.HighestModSeq()
	uids, unseen := mb.UIDs()
	c.sel = &selected{name: name, mb: mb, view: NewView(uids), readOnly: readOnly, fullModSeq: highest}
	c.state = stateSelected
	c.sendFlags(nil)
	fmt.Fprintf(c.bw, "* %d EXISTS\r\n", len(uids))
	if !c.rev2 {
		c.takeRecent()
		c.sel.recentSent = c.sel.recentN
		fmt.Fprintf(c.bw, "* %d RECENT\r\n", c.sel.recentN)
	}
	if unseen != 0 && !c.rev2 { // RFC 9051 dropped UNSEEN from SELECT
		fmt.Fprintf(c.bw, "* OK [UNSEEN %d] First unseen\r\n", unseen)
	}
	fmt.Fprintf(c.bw, "* OK [UIDVALIDITY %d] UIDs valid\r\n", mb.UIDValidity())
	fmt.Fprintf(c.bw, "* OK [UIDNEXT %d] Predicted next UID\r\n", mb.UIDNext())
	fmt.Fprintf(c.bw, "* OK [HIGHESTMODSEQ %d] Highest\r\n", highest)
	// RFC 8474 §4.2.
	c.bw.WriteString("* OK [")
	c.writeObjectID("MAILBOXID", mb.MailboxID())
	c.bw.WriteString("] Mailbox ID\r\n")
	if c.rev2 {
		// RFC 9051 §6.3.2: the mailbox's name as the server spells it.
		c.bw.WriteString(`* LIST () "." `)
		c.enc.Mailbox(name, c.utf8)
		c.bw.WriteString("\r\n")
	}
	if q != nil && q.validity == mb.UIDValidity() {
		c.qresyncSelect(q)
	}
	if readOnly {
		return c.ok(tag, "READ-ONLY", "EXAMINE completed")
	}
	return c.ok(tag, "READ-WRITE", "SELECT completed")
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

// CLOSE — RFC 9051 §6.4.1: expunge \Deleted messages silently (unless
// read-only) and leave the selected state. UNSELECT (RFC 3691) leaves
// without expunging.
func cmdClose(c *conn, tag string, _ bool) error    { return c.unselect(tag, true) }
func cmdUnselect(c *conn, tag string, _ bool) error { return c.unselect(tag, false) }

func (c *conn) unselect(tag string, expunge bool) error {
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	s := c.sel
	if expunge && !s.readOnly {
		if del := s.mb.Deleted(); len(del) > 0 {
			if _, err := s.mb.Expunge(c.ctx, del); err != nil {
				return err
			}
		}
	}
	s.mb.Close()
	c.sel, c.state = nil, stateAuth
	return c.ok(tag, "", "Mailbox closed")
}

func init() {
	register("SELECT", authed, false, cmdSelect)
	register("EXAMINE", authed, false, cmdExamine)
	register("CLOSE", selected_, false, cmdClose)
	register("UNSELECT", selected_, false, cmdUnselect)
}
