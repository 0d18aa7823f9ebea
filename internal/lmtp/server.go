package lmtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/cistern-mail/cistern/internal/delivery"
	"github.com/cistern-mail/cistern/internal/metrics"
)

// Defaults of the Server's zero fields, and fixed limits, with their
// reasons.
const (
	// DefaultMaxMessageSize matches imap.max_literal's default: what can
	// be delivered can be APPENDed back.
	DefaultMaxMessageSize = 64 << 20
	// DefaultMaxRecipients is RFC 5321 §4.5.3.1.8's minimum.
	DefaultMaxRecipients = 100
	// DefaultDataTimeout bounds each read of a message; RFC 5321
	// §4.5.3.2.5 gives a server 3 minutes per data block.
	DefaultDataTimeout = 5 * time.Minute

	// lineSlack is more than go-smtp reads ahead of its size check (its
	// line limit counts the bytes read from the connection, 4 KiB at a
	// time).
	lineSlack = 64 << 10

	// commandTimeout bounds the wait for a command and each write of a
	// reply: RFC 5321 §4.5.3.2.7's 5 minutes.
	commandTimeout = 5 * time.Minute

	// DefaultTransactionTimeout bounds the time from connect, and from
	// each delivered message, to the next message (its DATA or BDAT):
	// an MTA sends its envelope at once and keeps an idle connection a
	// few seconds; a peer that never delivers must not keep a slot by
	// sending NOOP every 4 minutes.
	DefaultTransactionTimeout = time.Minute
	// DefaultMinDataRate is the least average rate of a message, in
	// bytes per second, once DefaultDataRateGrace has passed since its
	// DATA (or first BDAT): DataTimeout alone lets a peer that sends a
	// byte every DataTimeout hold a connection for days.
	DefaultMinDataRate = 1024
	// DefaultDataRateGrace: the first seconds of a message are not
	// measured (a slow start, a pause while the MTA reads its queue file).
	DefaultDataRateGrace = 10 * time.Second
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("lmtp: server closed")

// Server serves LMTP. Deliverer is required; every other zero field
// means its default. Fields must not change once Serve was called.
type Server struct {
	Deliverer *delivery.Deliverer
	Logger    *slog.Logger // nil: slog.Default()
	// Hostname is announced in the greeting; "": os.Hostname().
	Hostname string
	// MaxMessageSize bounds a message, announced as SIZE; 0: default.
	MaxMessageSize int64
	// MaxRecipients bounds the recipients of one transaction; 0: default.
	MaxRecipients int
	// DataTimeout bounds each read while a message is read; 0: default.
	DataTimeout time.Duration
	// MinDataRate is the least average rate of a message in bytes per
	// second, measured from its DATA once DataRateGrace has passed; a
	// slower one is refused with 421 4.4.2 (nothing stored) and the
	// connection closed. 0: DefaultMinDataRate, DataRateGrace 0:
	// DefaultDataRateGrace.
	MinDataRate   int64
	DataRateGrace time.Duration
	// TransactionTimeout bounds the time from connect, and from the end
	// of each message, to the next message; past it the connection gets
	// 421 4.4.2 and is closed. 0: DefaultTransactionTimeout.
	TransactionTimeout time.Duration
	// QuotaFullTempfail answers a full mailbox with 452 4.2.2 (the MTA
	// retries) instead of 552 5.2.2 (it bounces).
	QuotaFullTempfail bool
	// TLSConfig offers STARTTLS (RFC 3207) on TCP connections; nil: not
	// offered. Never on unix sockets, whose traffic stays in the kernel.
	TLSConfig *tls.Config

	// MaxConnections and MaxConnectionsPerIP bound open connections, in
	// all and per client address (throttle.AddrKey; unix-socket peers
	// count in the total only); 0 means no limit. See limits.go.
	MaxConnections      int
	MaxConnectionsPerIP int
	// Metrics receives the server's metrics and its Deliverer's
	// (metrics.go), registered when it first serves; nil: none. A
	// Registry takes the metrics of one Server.
	Metrics *metrics.Registry

	// Panics counts panics recovered while serving (go-smtp recovers
	// them per connection and command; each is logged with its stack).
	Panics atomic.Int64
	// RefusedConnections counts connections refused by the limits.
	RefusedConnections atomic.Int64

	open openCounts // see limits.go

	once     sync.Once
	srv      *smtp.Server     // TCP; immutable after once
	local    *smtp.Server     // unix sockets: srv without STARTTLS; immutable after once
	accepted *metrics.Counter // immutable after once; nil without Metrics

	mu        sync.Mutex // guards the fields below
	listeners map[*listener]struct{}
	conns     map[*conn]struct{}
	closed    bool
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) maxMessageSize() int64 {
	if s.MaxMessageSize > 0 {
		return s.MaxMessageSize
	}
	return DefaultMaxMessageSize
}

func (s *Server) dataTimeout() time.Duration {
	if s.DataTimeout > 0 {
		return s.DataTimeout
	}
	return DefaultDataTimeout
}

func (s *Server) minDataRate() int64 {
	if s.MinDataRate > 0 {
		return s.MinDataRate
	}
	return DefaultMinDataRate
}

func (s *Server) dataRateGrace() time.Duration {
	if s.DataRateGrace > 0 {
		return s.DataRateGrace
	}
	return DefaultDataRateGrace
}

func (s *Server) transactionTimeout() time.Duration {
	if s.TransactionTimeout > 0 {
		return s.TransactionTimeout
	}
	return DefaultTransactionTimeout
}

func (s *Server) init() {
	s.once.Do(func() {
		s.srv = s.newSMTP(s.TLSConfig)
		s.local = s.newSMTP(nil)
		s.listeners = make(map[*listener]struct{})
		s.conns = make(map[*conn]struct{})
		s.initMetrics()
	})
}

// newSMTP returns go-smtp's server set up as s says, with tlsConfig.
func (s *Server) newSMTP(tlsConfig *tls.Config) *smtp.Server {
	srv := smtp.NewServer(backend{s})
	srv.LMTP = true
	srv.Domain = s.Hostname
	if srv.Domain == "" {
		srv.Domain, _ = os.Hostname()
	}
	// go-smtp checks its limit before it looks for the end marker, so
	// it refuses a message of exactly its limit: it gets one byte
	// more (and announces it as SIZE). The limit itself is enforced
	// by Mail (SIZE=) and by dataReader.
	srv.MaxMessageBytes = s.maxMessageSize() + 1
	srv.MaxRecipients = s.MaxRecipients
	if srv.MaxRecipients <= 0 {
		srv.MaxRecipients = DefaultMaxRecipients
	}
	// go-smtp applies one line limit to commands and to message lines;
	// message lines of any length are stored, so the limit is the
	// message size (see the package doc), plus lineSlack so that a
	// long line trips the size limit first: 552 and the connection
	// goes on.
	srv.MaxLineLength = int(min(s.maxMessageSize()+lineSlack, 1<<31-1))
	// Read deadlines are conn's (they differ inside a message).
	srv.ReadTimeout = 0
	srv.WriteTimeout = commandTimeout
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = errorLog{s}
	srv.TLSConfig = tlsConfig
	return srv
}

// Serve accepts LMTP connections on ln until Shutdown or Close (then it
// returns ErrServerClosed) or until ln fails. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	l := &listener{Listener: ln, srv: s}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	srv := s.srv
	if ln.Addr().Network() == "unix" {
		srv = s.local
	}
	err := srv.Serve(l)
	l.Close()
	s.mu.Lock()
	delete(s.listeners, l)
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops accepting connections, closes those between
// transactions, refuses new transactions (421 4.3.2) and waits for the
// transactions under way to end, or for ctx to be done (it then returns
// ctx.Err(); Close cuts the rest).
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.drain()
	}
	s.mu.Unlock()
	var errs []error
	for _, srv := range []*smtp.Server{s.srv, s.local} {
		// ErrServerClosed: a second Shutdown, or one after Close.
		if err := srv.Shutdown(ctx); !errors.Is(err, smtp.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close closes every listener and connection at once. A delivery under
// way still finishes writing to disk; its replies are lost.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.Conn.Close()
	}
	s.mu.Unlock()
	var errs []error
	for _, srv := range []*smtp.Server{s.srv, s.local} {
		if err := srv.Close(); !errors.Is(err, smtp.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// listener wraps each accepted connection in a conn.
type listener struct {
	net.Listener
	srv  *Server
	once sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	var nc net.Conn
	var release func()
	for release == nil {
		var err error
		if nc, err = l.Listener.Accept(); err != nil {
			return nil, err
		}
		release = l.srv.admit(nc) // nil: refused and closed
	}
	l.srv.accepted.Inc()
	c := &conn{Conn: nc, srv: l.srv, release: release, nextBy: time.Now().Add(l.srv.transactionTimeout())}
	l.srv.mu.Lock()
	l.srv.conns[c] = struct{}{}
	c.draining = l.srv.closed
	l.srv.mu.Unlock()
	return c, nil
}

// Close closes the listener once; later calls return nil.
func (l *listener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() { err = l.Listener.Close() })
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// conn is one connection, as go-smtp sees it. It sets the deadline of
// every read, and ends the connection (reads return io.EOF) after a
// timeout inside a transaction or, when the server is shutting down,
// between transactions. Outside a message a read waits commandTimeout
// but no later than nextBy; inside one DataTimeout, but no later than
// the moment the message's average rate falls under MinDataRate.
type conn struct {
	net.Conn
	srv     *Server // immutable
	release func()  // gives back the connection's slots; immutable

	mu       sync.Mutex // guards the fields below and the read deadline
	inTxn    bool       // between MAIL and the end of the transaction
	inData   bool       // a message is being read
	draining bool       // the server is shutting down
	dead     bool       // a transaction timed out: no more reads
	// nextBy is when the next message must have begun: connect, or the
	// end of the last message, plus TransactionTimeout.
	nextBy time.Time
	// dataStart and dataRead measure the message being read.
	dataStart time.Time
	dataRead  int64
}

// errTimeout ends a transaction whose peer stopped sending; go-smtp sends
// it as the reply (of each recipient, or of BDAT).
var errTimeout = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Timeout waiting for data, closing connection"}

// errTooSlow ends a transaction whose message comes slower than
// MinDataRate.
var errTooSlow = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Data rate too low, closing connection"}

// errShuttingDown refuses a transaction while the server stops.
var errShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Shutting down, try again later"}

func (c *conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.dead || (c.draining && !c.inTxn) {
		c.mu.Unlock()
		return 0, io.EOF
	}
	c.Conn.SetReadDeadline(c.deadlineLocked(time.Now()))
	c.mu.Unlock()

	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inData {
		c.dataRead += int64(n)
	}
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		return n, err
	}
	switch {
	case c.draining && !c.inTxn:
		return n, io.EOF // interrupted by drain
	case c.inData && !time.Now().Before(c.rateByLocked()):
		c.dead = true
		c.srv.logger().Info("lmtp: message slower than the minimum data rate; connection closed",
			"remote", c.RemoteAddr().String(), "bytes", c.dataRead, "after", time.Since(c.dataStart), "min_rate", c.srv.minDataRate())
		return n, errTooSlow
	case c.inData:
		c.dead = true
		return n, errTimeout
	case c.inTxn:
		// A command of the envelope: go-smtp says 421 4.4.2 and closes.
		c.dead = true
	}
	return n, err // go-smtp says 421 4.4.2 and closes
}

// deadlineLocked is the read deadline of a read that begins at now.
func (c *conn) deadlineLocked(now time.Time) time.Time {
	if c.inData {
		return earliest(now.Add(c.srv.dataTimeout()), c.rateByLocked())
	}
	return earliest(now.Add(commandTimeout), c.nextBy)
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// rateByLocked is when the message being read falls under MinDataRate
// unless more of it comes: after the grace period, its bytes must keep
// up with MinDataRate times the time since its DATA.
func (c *conn) rateByLocked() time.Time {
	need := time.Duration(float64(c.dataRead) / float64(c.srv.minDataRate()) * float64(time.Second))
	return c.dataStart.Add(max(c.srv.dataRateGrace(), need))
}

func (c *conn) Close() error {
	c.srv.mu.Lock()
	delete(c.srv.conns, c)
	c.srv.mu.Unlock()
	c.release()
	return c.Conn.Close()
}

// drain marks the connection for shutdown and interrupts a read that
// waits for the next transaction. Called with srv.mu held.
func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if !c.inTxn {
		c.Conn.SetReadDeadline(time.Now())
	}
}

// beginTxn marks the start of a transaction, unless the server stops.
func (c *conn) beginTxn() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		return errShuttingDown
	}
	c.inTxn = true
	return nil
}

func (c *conn) endTxn() {
	c.mu.Lock()
	c.inTxn, c.inData = false, false
	c.mu.Unlock()
}

// setData marks the start (on) or the end of a message. Its end starts
// the time to the next one (TransactionTimeout).
func (c *conn) setData(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inData = on
	now := time.Now()
	if on {
		c.dataStart, c.dataRead = now, 0
	} else {
		c.nextBy = now.Add(c.srv.transactionTimeout())
	}
}

// errorLog receives go-smtp's own reports: panics it recovered (counted,
// logged as errors with their stacks) and connection failures.
type errorLog struct{ s *Server }

func (e errorLog) Printf(format string, v ...any) { e.report(fmt.Sprintf(format, v...)) }
func (e errorLog) Println(v ...any)               { e.report(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

func (e errorLog) report(msg string) {
	if strings.HasPrefix(msg, "panic serving") {
		e.s.Panics.Add(1)
		e.s.logger().Error("lmtp: panic while serving; connection closed", "report", msg)
		return
	}
	e.s.logger().Warn("lmtp: connection", "report", msg)
}
