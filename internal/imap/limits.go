package imap

import (
	"context"
	"io"
	"net"
	"sync"
	"time"

	"github.com/cistern-mail/cistern/internal/throttle"
)

// Connection limits and login throttling. A connection over
// MaxConnections or MaxConnectionsPerIP gets BYE as its greeting (RFC
// 9051 §7.1.5 allows it: the server will not serve this client) and is
// closed; a login over MaxConnectionsPerUser gets NO [LIMIT] (RFC 5530
// §3); a login the Throttle refuses gets NO [UNAVAILABLE], which tells a
// client to try again later rather than to ask its user for another
// password: the password was not even checked.
const (
	byeTooMany       = "Too many connections; try again later"
	byeTooManyFromIP = "Too many connections from your address"
	// refuseTimeout bounds writing the refusal (for implicit TLS, the
	// handshake that comes first): a refused client gets no patience.
	refuseTimeout = 5 * time.Second
)

// openCounts are a Server's open connections.
type openCounts struct {
	all    throttle.Gauge // key ""
	byAddr throttle.Gauge // by throttle.AddrKey
	byUser throttle.Gauge // by user name, for logged-in sessions
}

// admit takes the slots of a new connection from addr. It returns the
// function that gives them back, or the text of the BYE that refuses
// the connection.
func (s *Server) admit(addr net.Addr) (release func(), refusal string) {
	if !s.open.all.Acquire("", s.MaxConnections) {
		s.RefusedConnections.Add(1)
		s.logger().Info("connection refused: too many connections", "remote", addr.String(), "max", s.MaxConnections)
		return nil, byeTooMany
	}
	if !throttle.HasIP(addr) {
		return sync.OnceFunc(func() { s.open.all.Release("") }), ""
	}
	key := throttle.AddrKey(addr)
	if !s.open.byAddr.Acquire(key, s.MaxConnectionsPerIP) {
		s.open.all.Release("")
		s.RefusedConnections.Add(1)
		s.logger().Info("connection refused: too many connections from the address", "remote", addr.String(), "max", s.MaxConnectionsPerIP)
		return nil, byeTooManyFromIP
	}
	return sync.OnceFunc(func() {
		s.open.byAddr.Release(key)
		s.open.all.Release("")
	}), ""
}

// refuse says BYE on nc and closes it, without blocking the accept loop.
func (s *Server) refuse(nc net.Conn, text string) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(refuseTimeout))
		io.WriteString(nc, "* BYE "+text+"\r\n")
	}()
}

// takeUserSlot counts the session as one of name's; false when name has
// MaxConnectionsPerUser already. closeSelected gives the slot back.
func (c *conn) takeUserSlot(name string) bool {
	if !c.srv.open.byUser.Acquire(name, c.srv.MaxConnectionsPerUser) {
		return false
	}
	c.userSlot = sync.OnceFunc(func() { c.srv.open.byUser.Release(name) })
	return true
}

// waits is the context of the waits the Throttle imposes: done at
// Shutdown, so that a stopping server does not wait for the clients it
// is slowing down.
type waits struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
}

func (w *waits) init() { w.ctx, w.cancel = context.WithCancel(context.Background()) }

func (w *waits) context() context.Context {
	w.once.Do(w.init)
	return w.ctx
}

func (w *waits) stop() {
	w.once.Do(w.init)
	w.cancel()
}
