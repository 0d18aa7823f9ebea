package imap

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/logctx"
)

// LOGIN — RFC 9051 §6.2.3. State: not authenticated.
func cmdLogin(c *conn, tag string, _ bool) error {
	if err := c.dec.SP(); err != nil {
		return err
	}
	user, err := c.dec.AString()
	if err != nil {
		return err
	}
	if err := c.dec.SP(); err != nil {
		return err
	}
	pass, err := c.dec.AString()
	if err != nil {
		return err
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	if !c.secure() {
		return no("PRIVACYREQUIRED", "Plain-text passwords need TLS")
	}
	return c.login(tag, user, pass, true)
}

// login authenticates and answers with the new capabilities in the
// tagged OK, which clients such as Python's imaplib read (CLIENTS.md).
// Every attempt passes the Server's Throttle (limits.go): a client over
// its limits is refused before the password is checked, a failure waits
// before its NO, a success does not wait. wellFormed false is a request
// that cannot succeed (a malformed SASL message): a failure without a
// check.
func (c *conn) login(tag, user, pass string, wellFormed bool) error {
	addr := c.nc.RemoteAddr()
	// The waits end at Shutdown; the Throttle's lines name the session.
	wctx := logctx.With(c.srv.waits.context(), c.log)
	if err := c.srv.Throttle.Check(wctx, addr, user); err != nil {
		return no("UNAVAILABLE", "Too many failed logins; try again later")
	}
	var u User
	err := ErrAuthFailed
	if wellFormed {
		// A session whose password is being checked is not closed to
		// make room (prelogin.go) until it is told the outcome; one
		// closed already ends here.
		if !c.checking(true) {
			return errWrap(errEvicted)
		}
		defer c.checking(false)
		u, err = c.srv.Backend.Login(c.ctx, user, pass)
	}
	if errors.Is(err, ErrAuthFailed) {
		c.checking(false) // the Throttle's wait may be closed to make room
		c.srv.Throttle.Fail(wctx, addr, user)
		return err
	}
	if err != nil {
		return err
	}
	c.srv.Throttle.Succeed(addr, user)
	if !c.takeUserSlot(u.Username()) {
		u.Close()
		c.srv.RefusedLogins.Add(1)
		c.log.Info("login refused: too many connections for the user", "user", user, "max", c.srv.MaxConnectionsPerUser)
		return no("LIMIT", "Too many connections for this user")
	}
	c.user, c.state = u, stateAuth
	c.leavePreLogin()
	c.setReadDeadline(time.Time{}) // loginBy no longer applies
	c.setLogger(c.log.With("user", user))
	c.log.Info("logged in")
	return c.ok(tag, "CAPABILITY "+c.capabilities(), "Logged in")
}

// AUTHENTICATE — RFC 9051 §6.2.2, PLAIN (RFC 4616), with SASL-IR
// (RFC 4959). State: not authenticated.
func cmdAuthenticate(c *conn, tag string, _ bool) error {
	if err := c.dec.SP(); err != nil {
		return err
	}
	mech, err := c.dec.Atom()
	if err != nil {
		return err
	}
	var initial string
	haveInitial := false
	if b, _ := c.dec.Peek(); b == ' ' {
		c.dec.SP()
		if initial, err = c.dec.Atom(); err != nil {
			return err
		}
		haveInitial = true
	}
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	if !strings.EqualFold(mech, "PLAIN") {
		return no("CANNOT", "Unsupported mechanism")
	}
	if !c.secure() {
		return no("PRIVACYREQUIRED", "Plain-text passwords need TLS")
	}
	if !haveInitial {
		c.bw.WriteString("+ \r\n")
		if err := c.flush(); err != nil {
			return err
		}
		line, err := c.dec.Line()
		if err != nil {
			return err
		}
		initial = line
	}
	if initial == "*" {
		return &wire.Error{Msg: "authentication cancelled"}
	}
	if initial == "=" {
		initial = ""
	}
	raw, err := base64.StdEncoding.DecodeString(initial)
	if err != nil {
		return &wire.Error{Msg: "invalid base64"}
	}
	parts := bytes.Split(raw, []byte{0})
	if len(parts) != 3 {
		return c.login(tag, "", "", false)
	}
	// An authzid other than the authcid asks for a master user; there
	// are none.
	authz := len(parts[0]) == 0 || bytes.Equal(parts[0], parts[1])
	return c.login(tag, string(parts[1]), string(parts[2]), authz)
}

func init() {
	register("LOGIN", notAuth, false, cmdLogin)
	register("AUTHENTICATE", notAuth, false, cmdAuthenticate)
}
