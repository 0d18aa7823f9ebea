package imap

import (
	"container/list"
	"errors"
	"sync"
	"time"
)

// Connections that have not logged in (yet). A client that never logs
// in costs the server a slot and nothing else, so an attacker can open
// thousands of them and send nothing, or a byte at a time, or announce
// a literal it never sends: with a per-read deadline and a connection
// limit, the limit itself is the denial of service. Two rules bound
// them:
//
//   - LoginTimeout: a connection must log in within this long of its
//     accept, whatever it sends meanwhile. The deadline is absolute: it
//     covers the TLS handshake (implicit or STARTTLS), every command
//     line and literal, and the AUTHENTICATE exchange. When it passes
//     the client is told "* BYE Disconnected for inactivity." (Dovecot's
//     words) and the connection is closed. RFC 9051 §5.4 lets a server
//     close an unauthenticated connection sooner than the 30 minutes it
//     asks for after login.
//   - MaxUnauthenticated and MaxUnauthenticatedPerIP: a budget of
//     pre-login connections, smaller than MaxConnections, and an
//     address's share of it. A new connection that finds no room (in the
//     budget, in its address's share, under MaxConnections or under
//     MaxConnectionsPerIP) is not refused while a pre-login connection
//     can make room: the server closes one, with "* BYE Connection queue
//     full" as Dovecot's login process does (client_destroy_oldest), and
//     admits the new one. Only when nothing can be closed does the new
//     connection get BYE as its greeting.
//
// Which pre-login connection makes room (victim) is what decides who an
// attacker can push out. In order:
//
//  1. over an address's share or MaxConnectionsPerIP, the oldest of that
//     address's own: a client reconnecting as fast as it can from one
//     address only closes its own connections;
//  2. otherwise, never a connection whose password is being checked
//     (Dovecot never kills a client waiting for its login to finish);
//  3. a connection from an unknown address before one from an address
//     where somebody logged in recently (Throttle.Known: a week, the
//     Throttle's TrustFor), so that returning users are the last to go;
//  4. among those, one from the address holding the most pre-login
//     connections, so that an attacker spread over many addresses
//     closes its own connections first, and a client with one
//     connection from its address is closed only once every address
//     holds a single one;
//  5. the oldest.
//
// A legitimate client's login thus survives any number of attacking
// connections unless the attacker has at least MaxUnauthenticated
// addresses of its own, and survives even those when it connects from a
// known address. Logged-in sessions are never closed to make room.
const (
	// DefaultLoginTimeout: Dovecot closes a login connection after 3
	// minutes in all, and asks for about a minute; a client logs in in
	// a few round trips.
	DefaultLoginTimeout = time.Minute
	// unauthShareOfTotal: MaxUnauthenticated is this fraction of
	// MaxConnections when zero.
	unauthShareOfTotal = 4
	// unauthShareOfAddr: MaxUnauthenticatedPerIP is this fraction of
	// MaxConnectionsPerIP when zero.
	unauthShareOfAddr = 2
	// evictTimeout bounds writing the BYE of a connection closed to make
	// room.
	evictTimeout = time.Second

	byeLoginTimeout = "Disconnected for inactivity."
	byeQueueFull    = "Connection queue full"
)

func (s *Server) loginTimeout() time.Duration {
	if s.LoginTimeout > 0 {
		return s.LoginTimeout
	}
	return DefaultLoginTimeout
}

// maxUnauthenticated is the pre-login budget; 0: none.
func (s *Server) maxUnauthenticated() int {
	if s.MaxUnauthenticated > 0 {
		return s.MaxUnauthenticated
	}
	if s.MaxConnections > 0 {
		return max(1, s.MaxConnections/unauthShareOfTotal)
	}
	return 0
}

// maxUnauthenticatedPerIP is an address's share of the pre-login
// budget; 0: none.
func (s *Server) maxUnauthenticatedPerIP() int {
	if s.MaxUnauthenticatedPerIP > 0 {
		return s.MaxUnauthenticatedPerIP
	}
	if s.MaxConnectionsPerIP > 0 {
		return max(1, s.MaxConnectionsPerIP/unauthShareOfAddr)
	}
	return 0
}

// preLogin is a Server's connections that have not logged in. Its mu
// also serializes admit, so that a connection's check of the limits,
// the evictions it makes and its taking of the slots are one step.
type preLogin struct {
	mu     sync.Mutex     // guards the fields below
	order  list.List      // of *preEntry, oldest first
	byAddr map[string]int // pre-login connections per address key ("": no IP address)
}

// preEntry is one pre-login connection.
type preEntry struct {
	c     *conn // immutable
	key   string
	known bool          // its address logged in recently (Throttle.Known)
	el    *list.Element // in preLogin.order
	busy  bool          // its password is being checked: never a victim
}

func (p *preLogin) addLocked(e *preEntry) {
	if p.byAddr == nil {
		p.byAddr = make(map[string]int)
	}
	e.el = p.order.PushBack(e)
	p.byAddr[e.key]++
}

func (p *preLogin) removeLocked(e *preEntry) {
	p.order.Remove(e.el)
	if n := p.byAddr[e.key]; n <= 1 {
		delete(p.byAddr, e.key)
	} else {
		p.byAddr[e.key] = n - 1
	}
}

// oldestOfLocked is the oldest connection from key that is not busy, or
// nil.
func (p *preLogin) oldestOfLocked(key string) *preEntry {
	for el := p.order.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*preEntry); e.key == key && !e.busy {
			return e
		}
	}
	return nil
}

// victimLocked is the connection that makes room in the budget (steps
// 2 to 5 of the rule above), or nil when every one is busy.
func (p *preLogin) victimLocked() *preEntry {
	var best *preEntry
	for el := p.order.Front(); el != nil; el = el.Next() {
		e := el.Value.(*preEntry)
		switch {
		case e.busy:
		case best == nil:
			best = e
		case e.known != best.known:
			if !e.known {
				best = e
			}
		case p.byAddr[e.key] > p.byAddr[best.key]:
			// Older ones come first: a later one replaces best only
			// when its address holds more.
			best = e
		}
	}
	return best
}

// evictLocked closes e's connection to make room: its slots are free at
// once, and its session ends with byeQueueFull.
func (s *Server) evictLocked(e *preEntry) {
	s.pre.removeLocked(e)
	e.c.entry = nil
	e.c.release()
	s.EvictedConnections.Add(1)
	e.c.log.Info("connection closed to make room: too many connections not logged in")
	e.c.interrupt()
}

// leavePreLogin takes a session that logged in, or ended, out of the
// pre-login connections.
func (c *conn) leavePreLogin() {
	p := &c.srv.pre
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.entry != nil {
		p.removeLocked(c.entry)
		c.entry = nil
	}
}

// checking marks the session's password check as under way (on) or
// over, so that it is not closed to make room meanwhile. It reports
// false when the session was closed to make room already.
func (c *conn) checking(on bool) bool {
	p := &c.srv.pre
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.entry == nil {
		return !c.evicted.Load()
	}
	c.entry.busy = on
	return true
}

// unauthenticated returns the number of pre-login connections.
func (s *Server) unauthenticated() int {
	s.pre.mu.Lock()
	defer s.pre.mu.Unlock()
	return s.pre.order.Len()
}

// errEvicted ends a session closed to make room while it logged in.
var errEvicted = errors.New("closed to make room for another connection")
