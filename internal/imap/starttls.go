package imap

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/cistern-mail/cistern/internal/imap/wire"
)

// tlsHandshakeTimeout bounds a TLS handshake (implicit or after
// STARTTLS) with a client that stalls.
const tlsHandshakeTimeout = 30 * time.Second

// ServeTLS serves implicit TLS on ln (RFC 8314 §3.2, port 993): every
// connection begins with a TLS handshake, with TLSConfig, and gets the
// greeting only once it is done. It is Serve otherwise, and Shutdown
// stops both.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.TLSConfig == nil {
		return errors.New("imap: ServeTLS needs a TLSConfig")
	}
	return s.Serve(tls.NewListener(ln, s.TLSConfig))
}

// handshake completes the TLS handshake of an implicit-TLS connection
// before the greeting, within tlsHandshakeTimeout and the login
// deadline (prelogin.go); it reports false when
// the connection must end. A plain connection passes at once.
func (c *conn) handshake() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	c.setDeadline(c.deadline(tlsHandshakeTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		c.log.Info("TLS handshake failed", "err", err)
		return false
	}
	c.setDeadline(time.Time{})
	return true
}

// STARTTLS — RFC 9051 §6.2.1. State: not authenticated. Bytes the client
// sent after the command, before the handshake, are a command injection
// (RFC 7817's plaintext-after-STARTTLS attack, CVE-2011-0411 in SMTP):
// the session ends instead of running them.
func cmdStartTLS(c *conn, tag string, _ bool) error {
	if err := c.dec.CRLF(); err != nil {
		return err
	}
	if c.srv.TLSConfig == nil {
		return no("CANNOT", "TLS is not configured")
	}
	if _, ok := c.nc.(*tls.Conn); ok {
		return &wire.Error{Msg: "TLS is already active"}
	}
	if c.br.Buffered() > 0 {
		c.bw.WriteString("* BYE Data after STARTTLS\r\n")
		c.flush()
		c.state = stateLogout
		return nil
	}
	c.ok(tag, "", "Begin TLS negotiation now")
	if err := c.flush(); err != nil {
		return errWrap(err)
	}
	tc := tls.Server(c.nc, c.srv.TLSConfig)
	// From here on nothing is said in clear text, even when the
	// handshake fails (byeUnauthenticated).
	c.nc = tc
	c.setDeadline(c.deadline(tlsHandshakeTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return errWrap(err)
	}
	c.setDeadline(time.Time{})
	c.br = bufio.NewReaderSize(tc, 16<<10)
	c.bw = bufio.NewWriterSize(tc, 16<<10)
	c.dec = wire.NewDecoder(c.br, c.continueLiteral, c.srv.Limits)
	c.enc = wire.NewEncoder(c.bw)
	return nil
}

func init() { register("STARTTLS", notAuth, false, cmdStartTLS) }
