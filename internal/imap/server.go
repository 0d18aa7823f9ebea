// Package imap is Cistern's IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051)
// protocol engine: connections, the session state machine, one file per
// command, and each session's view of its selected mailbox. It never
// touches files: storage is reached through the Backend interfaces.
//
// # Implementation notes
//
//   - One goroutine per connection reads a command, runs it, writes the
//     responses and flushes. Responses to one command are written by that
//     goroutine only; a session is never written to by another goroutine.
//   - Changes made by others reach a session through its Mailbox's
//     Update; the session applies them to its View only at moments the
//     protocol allows: EXPUNGE never during FETCH, STORE or SEARCH by
//     sequence number (RFC 9051 §7.5.1), and every change before the
//     tagged response of other commands and during IDLE. Update is the
//     last of three shapes of that news, and the only one that speaks
//     IMAP: the store's Changes is what one sync or change found, its
//     Pending what a session's subscription gathered over any number of
//     them (expunges win over later news of the same UID; the latest
//     flags only), and Update is Pending in the engine's terms (flag
//     names as IMAP spells them, keywords resolved, UIDVALIDITY change
//     as Void). Each step adds meaning, so none is merged into another.
//   - How STORE changes flags is one type, flagop.Op, from the parser
//     (wire.StoreAction.Mode) through Backend's Mailbox.Store to the
//     store, with no translation between them.
//   - No storage lock is held while writing to the network: backend calls
//     return values, and the session writes them afterwards.
//   - Errors become responses in one function (respondErr): backend
//     sentinels map to RFC 5530 codes; any other error is logged and the
//     client gets NO [SERVERBUG] without its text.
//   - A panic in a session is recovered at the connection, logged with its
//     stack, counted (Server.Panics) and answered with BYE on that
//     connection only.
//   - Every log line of a session carries session=<id> (8 random base32
//     characters), remote=<address> and, once logged in, user=<name>:
//     the session's logger also rides in the context of every backend
//     and Throttle call (package logctx), so the store's and the
//     Throttle's lines for the session carry them too. Each command is
//     logged at debug level and counted by name and outcome
//     (metrics.go).
//   - Strangers are kept out in limits.go, prelogin.go and login.go: a
//     connection must log in within LoginTimeout; a connection over the
//     connection limits closes one that has not logged in to make room
//     or, when there is none, gets BYE as its greeting; a login over the
//     per-user limit NO [LIMIT]; every login passes the Throttle, which
//     makes failures wait before their NO and refuses, with NO
//     [UNAVAILABLE] and without a password check, clients that failed
//     too often. A success never waits.
package imap

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/metrics"
	"github.com/cistern-mail/cistern/internal/throttle"
)

// Limits of a session that are not wire syntax.
const (
	// DefaultIdleTimeout: RFC 9051 §5.4 asks for at least 30 minutes of
	// inactivity before the server may close a session.
	DefaultIdleTimeout = 30 * time.Minute
	// MinIdleTimeout is the least the server may wait (RFC 9051 §5.4).
	MinIdleTimeout = 30 * time.Minute
	// DefaultMaxCommandsBeforeAuth bounds what an unauthenticated client
	// may send before it is disconnected.
	DefaultMaxCommandsBeforeAuth = 20
	// IdleKeepalive: an IDLE session gets "* OK Still here" this often, so
	// that NAT boxes keep the connection (and the client sees the server
	// alive); under the 30 minutes and most NAT timeouts.
	IdleKeepalive = 2 * time.Minute
	// PollInterval: a selected session syncs this often even without
	// change notices (a filesystem whose events do not reach us).
	PollInterval = 30 * time.Second
	// writeTimeout bounds one flush to a client that does not read.
	writeTimeout = 5 * time.Minute
)

// Server serves IMAP. Set the fields before Serve; the zero value of each
// optional field works.
type Server struct {
	Backend Backend
	Logger  *slog.Logger
	// Limits of the wire syntax; zero fields take wire's defaults.
	Limits wire.Limits
	// IdleTimeout is raised to MinIdleTimeout when lower; 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxCommandsBeforeAuth; 0 means DefaultMaxCommandsBeforeAuth.
	MaxCommandsBeforeAuth int
	// LoginTimeout is the time a connection has, from its accept, to
	// log in; 0 means DefaultLoginTimeout. See prelogin.go.
	LoginTimeout time.Duration
	// AllowPlaintextAuth: LOGIN and AUTHENTICATE on unencrypted
	// connections from non-loopback peers. Without it such a connection
	// is told LOGINDISABLED and its LOGIN gets NO [PRIVACYREQUIRED]
	// (RFC 9051 §6.2.3); TLS, loopback and unix-socket peers may always
	// log in.
	AllowPlaintextAuth bool
	// TLSConfig enables STARTTLS on Serve's connections (nil: not
	// offered); ServeTLS requires it. Read at each handshake.
	TLSConfig *tls.Config
	// Greeting text after "* OK [CAPABILITY ...]"; "" means a default.
	Greeting string
	// MaxConnections, MaxConnectionsPerIP and MaxConnectionsPerUser bound
	// open connections: in all, per client address (throttle.AddrKey;
	// peers without an IP address are not counted per address) and per
	// logged-in user; 0 means no limit. See limits.go.
	MaxConnections        int
	MaxConnectionsPerIP   int
	MaxConnectionsPerUser int
	// MaxUnauthenticated bounds the connections that have not logged in,
	// MaxUnauthenticatedPerIP those of one address; a new connection
	// past either closes an older one (prelogin.go). 0 means a quarter of
	// MaxConnections and half of MaxConnectionsPerIP (at least 1; no
	// limit when that limit is 0).
	MaxUnauthenticated      int
	MaxUnauthenticatedPerIP int
	// Throttle slows down and refuses clients whose logins fail; nil:
	// none.
	Throttle *throttle.Throttle
	// Metrics receives the server's metrics and its Throttle's
	// (metrics.go), registered at the first Serve; nil: none. A Registry
	// takes the metrics of one Server.
	Metrics *metrics.Registry

	// ResponseMemory bounds the bytes of messages that all sessions
	// together hold in memory for their responses, and
	// ResponseMemoryPerUser what one user's sessions hold (budget.go);
	// 0 means DefaultResponseMemory and a quarter of ResponseMemory.
	ResponseMemory        int64
	ResponseMemoryPerUser int64

	// Panics counts sessions that panicked and were closed.
	Panics atomic.Int64
	// RefusedConnections counts connections refused over MaxConnections
	// or MaxConnectionsPerIP; RefusedLogins logins refused over
	// MaxConnectionsPerUser.
	RefusedConnections atomic.Int64
	RefusedLogins      atomic.Int64
	// EvictedConnections counts connections that had not logged in and
	// were closed to make room for a new one; LoginTimeouts those closed
	// at LoginTimeout (prelogin.go).
	EvictedConnections atomic.Int64
	LoginTimeouts      atomic.Int64

	open    openCounts // see limits.go
	pre     preLogin   // see prelogin.go
	waits   waits      // see limits.go
	metOnce sync.Once
	// budgetOnce makes mem, the response memory budget (budget.go).
	budgetOnce sync.Once
	mem        *memBudget
	met        *serverMetrics // set by metOnce; nil without Metrics

	mu        sync.Mutex // guards the fields below
	listeners map[net.Listener]bool
	conns     map[*conn]bool
	closing   bool
	wg        sync.WaitGroup
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("imap: server closed")

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) idleTimeout() time.Duration {
	switch {
	case s.IdleTimeout == 0:
		return DefaultIdleTimeout
	case s.IdleTimeout < MinIdleTimeout:
		return MinIdleTimeout
	}
	return s.IdleTimeout
}

// Serve accepts connections on ln until Shutdown, backing off on
// temporary accept errors.
func (s *Server) Serve(ln net.Listener) error {
	s.metOnce.Do(s.initMetrics)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]bool)
		s.conns = make(map[*conn]bool)
	}
	s.listeners[ln] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			if temporaryAccept(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger().Warn("accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := newConn(s, nc)
		if refusal := s.admit(c); refusal != "" {
			s.refuse(nc, refusal)
			continue
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.leavePreLogin()
			c.release()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		s.met.accept()
		go func() {
			defer s.wg.Done()
			c.serve()
			c.leavePreLogin()
			c.release()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// temporaryAccept: errors after which accepting may work again, such as
// running out of file descriptors or a connection aborted before accept.
func temporaryAccept(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() ||
		errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS)
}

// Shutdown stops accepting, tells every session BYE, and waits for the
// sessions to end or ctx to expire (then it closes them).
func (s *Server) Shutdown(ctx context.Context) error {
	s.waits.stop()
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.shutdown()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.raw.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
