package lmtp

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/cistern-mail/cistern/internal/throttle"
)

// refuseTimeout bounds writing the refusal to a connection over the
// limits. The listeners are plain TCP and unix sockets (STARTTLS comes
// later), so a one-line write to a new connection fills no buffer and
// does not block the accept loop.
const refuseTimeout = time.Second

// openCounts are a Server's open connections.
type openCounts struct {
	all    throttle.Gauge // key ""
	byAddr throttle.Gauge // by throttle.AddrKey
}

// admit takes the slots of a new connection and returns the function
// that gives them back (at most once). A connection over
// MaxConnections or MaxConnectionsPerIP is told 421 4.7.0, as the
// greeting RFC 5321 §3.1 allows for refusing service, and closed: admit
// returns nil, and the MTA tries again later.
func (s *Server) admit(nc net.Conn) func() {
	addr := nc.RemoteAddr()
	limit, over := 0, ""
	key := ""
	switch {
	case !s.open.all.Acquire("", s.MaxConnections):
		limit, over = s.MaxConnections, "in all"
	case throttle.HasIP(addr):
		key = throttle.AddrKey(addr)
		if !s.open.byAddr.Acquire(key, s.MaxConnectionsPerIP) {
			s.open.all.Release("")
			limit, over = s.MaxConnectionsPerIP, "from the address"
		}
	}
	if over == "" {
		return sync.OnceFunc(func() {
			if key != "" {
				s.open.byAddr.Release(key)
			}
			s.open.all.Release("")
		})
	}
	s.RefusedConnections.Add(1)
	s.logger().Info("lmtp: connection refused: too many connections "+over, "remote", addr.String(), "max", limit)
	nc.SetWriteDeadline(time.Now().Add(refuseTimeout))
	io.WriteString(nc, "421 4.7.0 "+s.srv.Domain+" Too many connections, try again later\r\n")
	nc.Close()
	return nil
}
