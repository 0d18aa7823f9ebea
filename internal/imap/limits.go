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
// MaxConnections or MaxConnectionsPerIP first makes room by closing a
// connection that has not logged in (prelogin.go); when none can be
// closed it gets BYE as its greeting (RFC 9051 §7.1.5 allows it: the
// server will not serve this client) and is closed. A login over
// MaxConnectionsPerUser gets NO [LIMIT] (RFC 5530 §3); a login the
// Throttle refuses gets NO [UNAVAILABLE], which tells a client to try
// again later rather than to ask its user for another password: the
// password was not even checked.
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

// admit takes the slots of the new connection c, closing pre-login
// connections to make room where needed (prelogin.go), and enters c
// among the pre-login connections. It sets c.release, the function
// that gives the slots back, or returns the text of the BYE that
// refuses the connection.
func (s *Server) admit(c *conn) (refusal string) {
	addr := c.nc.RemoteAddr()
	hasIP := throttle.HasIP(addr)
	key := ""
	if hasIP {
		key = throttle.AddrKey(addr)
	}
	known := s.Throttle.Known(addr)
	p := &s.pre
	p.mu.Lock()
	defer p.mu.Unlock()
	// Room from the address's own connections first: one address
	// pushes out only its own.
	if hasIP {
		share, perIP := s.maxUnauthenticatedPerIP(), s.MaxConnectionsPerIP
		for share > 0 && p.byAddr[key] >= share || perIP > 0 && s.open.byAddr.Count(key) >= perIP {
			v := p.oldestOfLocked(key)
			if v == nil {
				s.RefusedConnections.Add(1)
				s.logger().Info("connection refused: too many connections from the address", "remote", addr.String(), "max", perIP)
				return byeTooManyFromIP
			}
			s.evictLocked(v)
		}
	}
	for budget, all := s.maxUnauthenticated(), s.MaxConnections; budget > 0 && p.order.Len() >= budget || all > 0 && s.open.all.Count("") >= all; {
		v := p.victimLocked()
		if v == nil {
			s.RefusedConnections.Add(1)
			s.logger().Info("connection refused: too many connections", "remote", addr.String(), "max", all, "max_unauthenticated", budget)
			return byeTooMany
		}
		s.evictLocked(v)
	}
	// The counts were checked under p.mu, which every admit holds, and
	// only fall meanwhile: the slots are there.
	s.open.all.Acquire("", 0)
	if !hasIP {
		c.release = sync.OnceFunc(func() { s.open.all.Release("") })
	} else {
		s.open.byAddr.Acquire(key, 0)
		c.release = sync.OnceFunc(func() {
			s.open.byAddr.Release(key)
			s.open.all.Release("")
		})
	}
	c.entry = &preEntry{c: c, key: key, known: known}
	p.addLocked(c.entry)
	return ""
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
