package imap

import (
	"strings"

	"github.com/cistern-mail/cistern/internal/imap/wire"
)

// mailboxArg reads " mailbox", the name of a mailbox that should exist.
// A name that is no valid encoding names none (names.go): NO
// [NONEXISTENT].
func (c *conn) mailboxArg() (string, error) {
	if err := c.dec.SP(); err != nil {
		return "", err
	}
	name, err := c.dec.Mailbox(c.utf8)
	return name, nameErr(err, "NONEXISTENT")
}

// newMailboxArg reads " mailbox", the name of a mailbox to make (CREATE,
// RENAME's target). A name that is no valid encoding can never be made
// (names.go): NO [CANNOT].
func (c *conn) newMailboxArg() (string, error) {
	if err := c.dec.SP(); err != nil {
		return "", err
	}
	name, err := c.dec.Mailbox(c.utf8)
	return name, nameErr(err, "CANNOT")
}

// CREATE — RFC 9051 §6.3.4, with CREATE-SPECIAL-USE's USE option
// (RFC 6154 §3) parsed and honoured. State: authenticated.
func cmdCreate(c *conn, tag string, _ bool) error {
	name, err := c.newMailboxArg()
	if err != nil {
		return err
	}
	use := ""
	if b, _ := c.dec.Peek(); b == ' ' {
		c.dec.SP()
		err := c.dec.List(func() error {
			opt, err := c.dec.Atom()
			if err != nil {
				return err
			}
			if !strings.EqualFold(opt, "USE") {
				return no("CANNOT", "Unknown CREATE option "+opt)
			}
			if err := c.dec.SP(); err != nil {
				return err
			}
			return c.dec.List(func() error {
				u, err := c.dec.Flag()
				if use == "" {
					use = u
				}
				return err
			})
		})
		if err != nil {
			return err
		}
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	if err := checkNewName(name); err != nil {
		return err
	}
	name = strings.TrimSuffix(name, ".") // RFC 9051 §6.3.4: a trailing separator asks for a parent
	if err := c.user.Create(c.ctx, name, use); err != nil {
		return err
	}
	// RFC 8474 §4.1: the new mailbox's id in the tagged OK. The mailbox
	// is made: when its id cannot be had (deleted meanwhile), the OK
	// goes without it.
	st, err := c.user.Status(c.ctx, name)
	if err != nil || !wire.IsObjectID(st.MailboxID) {
		c.log.Warn("no MAILBOXID for the new mailbox", "mailbox", name, "err", err)
		return c.ok(tag, "", "CREATE completed")
	}
	return c.ok(tag, "MAILBOXID ("+st.MailboxID+")", "CREATE completed")
}

// DELETE — RFC 9051 §6.3.5.
func cmdDelete(c *conn, tag string, _ bool) error {
	name, err := c.mailboxArg()
	if err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	if c.sel == nil || c.sel.name != name || strings.EqualFold(name, "INBOX") {
		if err := c.user.Delete(c.ctx, name); err != nil {
			return err
		}
		return c.ok(tag, "", "DELETE completed")
	}
	// The selected mailbox: closed first, and then the session ends,
	// whatever the answer, as Dovecot's does (RFC 9051 §6.3.4 leaves it
	// open): its view is of a mailbox that is no more.
	c.sel.mb.Close()
	c.sel, c.state = nil, stateAuth
	if err := c.user.Delete(c.ctx, name); err != nil {
		if rerr := c.respondErr(tag, err); rerr != nil {
			return rerr
		}
	} else {
		c.ok(tag, "", "DELETE completed")
	}
	c.bw.WriteString("* BYE Selected mailbox was deleted, have to disconnect.\r\n")
	c.flush()
	c.state = stateLogout
	return nil
}

// RENAME — RFC 9051 §6.3.6.
func cmdRename(c *conn, tag string, _ bool) error {
	from, err := c.mailboxArg()
	if err != nil {
		return err
	}
	to, err := c.newMailboxArg()
	if err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	if err := checkNewName(to); err != nil {
		return err
	}
	if err := c.user.Rename(c.ctx, from, to); err != nil {
		return err
	}
	return c.ok(tag, "", "RENAME completed")
}

// SUBSCRIBE and UNSUBSCRIBE — RFC 9051 §6.3.7, §6.3.8.
func cmdSubscribe(c *conn, tag string, _ bool) error   { return c.subscribe(tag, true) }
func cmdUnsubscribe(c *conn, tag string, _ bool) error { return c.subscribe(tag, false) }

func (c *conn) subscribe(tag string, on bool) error {
	name, err := c.mailboxArg()
	if err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	if on {
		if err := checkNewName(name); err != nil {
			return err
		}
	}
	if err := c.user.SetSubscribed(c.ctx, name, on); err != nil {
		return err
	}
	return c.ok(tag, "", "Done")
}

// NAMESPACE — RFC 2342, RFC 9051 §6.3.10: one personal namespace.
func cmdNamespace(c *conn, tag string, _ bool) error {
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	c.bw.WriteString(`* NAMESPACE (("" ".")) NIL NIL` + "\r\n")
	return c.ok(tag, "", "NAMESPACE completed")
}

func init() {
	register("CREATE", authed, false, cmdCreate)
	register("DELETE", authed, false, cmdDelete)
	register("RENAME", authed, false, cmdRename)
	register("SUBSCRIBE", authed, false, cmdSubscribe)
	register("UNSUBSCRIBE", authed, false, cmdUnsubscribe)
	register("NAMESPACE", authed, false, cmdNamespace)
}
