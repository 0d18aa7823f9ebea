package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/logctx"
)

// state is a session's state (RFC 9051 §3).
type state int

const (
	stateNotAuth state = iota
	stateAuth
	stateSelected
	stateLogout
)

// selected is the session's selected mailbox.
type selected struct {
	name     string
	mb       Mailbox
	view     *View
	readOnly bool
	// held are expunges not yet announced: they wait for a moment when
	// EXPUNGE responses are allowed.
	held []uint32
	// searchRes is the saved search result (RFC 5182), as UIDs.
	searchRes []uint32
	// recent are the UIDs recent in this session, ascending; recentN
	// is how many of the view's messages are among them, recentSent the
	// count the client was last told (recent.go).
	recent              []uidSpan
	recentN, recentSent uint32
	// keywords are those the client was told of in FLAGS (flags.go).
	keywords map[string]bool
	// Modseqs told (condstore.go): fullModSeq is a HIGHESTMODSEQ below
	// which the client was told every change; fetchedModSeq the highest
	// MODSEQ told since updates last settled; highestDue a HIGHESTMODSEQ
	// to tell with the next response (0: none).
	fullModSeq, fetchedModSeq, highestDue uint64
}

type conn struct {
	srv *Server
	nc  net.Conn
	log *slog.Logger
	ctx context.Context

	br  *bufio.Reader
	bw  *bufio.Writer
	dec *wire.Decoder
	enc *wire.Encoder

	state     state
	user      User
	userSlot  func() // gives back the user's connection slot (limits.go)
	sel       *selected
	utf8      bool // ENABLE UTF8=ACCEPT (RFC 6855)
	rev2      bool // ENABLE IMAP4rev2
	condstore bool // CONDSTORE enabled (RFC 7162 §3.1)
	qresync   bool // ENABLE QRESYNC (RFC 7162 §3.2.3)
	preAuth   int  // commands before authentication
	stopping  atomic.Bool
	idleBreak chan struct{} // shutdown interrupts IDLE
	// raw is the accepted connection under any TLS, for the deadline and
	// the Close of other goroutines: nc changes at STARTTLS. immutable
	raw net.Conn
	// waiting: the session waits for the first byte of a command, the
	// one wait that shutdown interrupts (awaitCommand).
	waitMu  sync.Mutex // guards waiting and the read deadline of raw
	waiting bool
	// loginBy is the end of the time the session has to log in
	// (Server.LoginTimeout). immutable
	loginBy time.Time
	// release gives back the connection's slots (limits.go); set by
	// admit. immutable
	release func()
	// entry is the session among the pre-login connections, nil once it
	// logged in or was closed to make room. Guarded by srv.pre.mu.
	entry *preEntry
	// evicted: the session was closed to make room (prelogin.go); its
	// reads fail from then on.
	evicted atomic.Bool
	// outcome is the current command's tagged response so far (ok, no,
	// bad; "" for none yet), for the metrics and the command log line.
	outcome string
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, raw: nc, idleBreak: make(chan struct{}, 1), loginBy: time.Now().Add(s.loginTimeout())}
	if tc, ok := nc.(*tls.Conn); ok {
		c.raw = tc.NetConn()
	}
	c.setLogger(s.logger().With("session", logctx.NewID(), "remote", nc.RemoteAddr().String()))
	c.br = bufio.NewReaderSize(nc, 16<<10)
	c.bw = bufio.NewWriterSize(nc, 16<<10)
	c.dec = wire.NewDecoder(c.br, c.continueLiteral, s.Limits)
	c.enc = wire.NewEncoder(c.bw)
	return c
}

// setLogger makes l the session's logger: the one of its own lines and,
// through c.ctx (package logctx), of the lines the backend and the
// Throttle write for it.
func (c *conn) setLogger(l *slog.Logger) {
	c.log = l
	c.ctx = logctx.With(context.Background(), l)
}

// continueLiteral answers a synchronizing literal (RFC 9051 §4.3).
func (c *conn) continueLiteral(size int64) error {
	c.bw.WriteString("+ Ready for literal data\r\n")
	return c.flush()
}

func (c *conn) flush() error {
	c.nc.SetWriteDeadline(c.deadline(writeTimeout))
	return c.bw.Flush()
}

// deadline is the deadline of an I/O that may take d: now+d, but no
// later than loginBy before the session logged in.
func (c *conn) deadline(d time.Duration) time.Time {
	t := time.Now().Add(d)
	if c.state == stateNotAuth && c.loginBy.Before(t) {
		return c.loginBy
	}
	return t
}

// setReadDeadline sets the read deadline of the connection, unless it
// was closed to make room: its reads fail at once then.
func (c *conn) setReadDeadline(t time.Time) {
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	if c.evicted.Load() {
		t = time.Unix(1, 0)
	}
	c.raw.SetReadDeadline(t)
}

// setDeadline sets the read and write deadlines (a TLS handshake's), as
// setReadDeadline does.
func (c *conn) setDeadline(t time.Time) {
	c.setReadDeadline(t)
	c.raw.SetWriteDeadline(t)
}

// interrupt ends the reads of a session closed to make room: it wakes
// up and says BYE (serve).
func (c *conn) interrupt() {
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	c.evicted.Store(true)
	c.raw.SetReadDeadline(time.Unix(1, 0))
}

// shutdown asks the session to end with BYE at its next chance.
func (c *conn) shutdown() {
	c.waitMu.Lock()
	c.stopping.Store(true)
	if c.waiting {
		// A session waiting for a command wakes up now; one running a
		// command finishes it first.
		c.raw.SetReadDeadline(time.Now())
	}
	c.waitMu.Unlock()
	select {
	case c.idleBreak <- struct{}{}:
	default:
	}
}

// awaitCommand waits for the first byte of the next command, and reports
// false when the session must end instead: the connection failed (err)
// or the server is shutting down (nil; the caller says BYE). Shutdown
// interrupts this wait and no other, so that a command under way, such
// as an APPEND whose literal is still arriving, runs to its tagged
// response before the BYE.
func (c *conn) awaitCommand() (bool, error) {
	c.waitMu.Lock()
	stopping := c.stopping.Load()
	c.waiting = !stopping
	c.waitMu.Unlock()
	if stopping {
		return false, nil
	}
	_, err := c.br.Peek(1)
	c.waitMu.Lock()
	c.waiting = false
	c.waitMu.Unlock()
	switch {
	case c.stopping.Load():
		// What the client sent as the server stopped is not run.
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// secure reports whether the connection is encrypted or local, where
// plain-text passwords may be sent.
func (c *conn) secure() bool {
	if _, ok := c.nc.(*tls.Conn); ok {
		return true
	}
	if c.srv.AllowPlaintextAuth {
		return true
	}
	if a, ok := c.nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.IsLoopback()
	}
	_, unix := c.nc.RemoteAddr().(*net.UnixAddr)
	return unix
}

func (c *conn) serve() {
	defer c.nc.Close()
	defer func() {
		if r := recover(); r != nil {
			c.srv.Panics.Add(1)
			c.log.Error("session panicked", "panic", r, "stack", string(debug.Stack()))
			c.bw.WriteString("* BYE Internal error\r\n")
			c.flush()
		}
	}()
	defer c.closeSelected()
	if !c.handshake() {
		c.byeUnauthenticated()
		return
	}

	greeting := c.srv.Greeting
	if greeting == "" {
		greeting = "Cistern ready"
	}
	fmt.Fprintf(c.bw, "* OK [CAPABILITY %s] %s\r\n", c.capabilities(), greeting)
	if c.flush() != nil {
		return
	}
	for c.state != stateLogout {
		if c.stopping.Load() {
			c.byeShutdown()
			return
		}
		if err := c.command(); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
				c.log.Info("session ended", "err", err)
			}
			if c.byeUnauthenticated() {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && !c.stopping.Load() {
				c.bw.WriteString("* BYE Autologout; idle for too long\r\n")
				c.flush()
			}
			if c.stopping.Load() {
				c.byeShutdown()
			}
			return
		}
	}
}

// byeUnauthenticated says BYE to a session that ends before logging in
// because it was closed to make room or its LoginTimeout passed, and
// reports whether it was one of those. Dovecot's login process says the
// same words. The BYE gets a short write deadline of its own: the
// login deadline is past.
func (c *conn) byeUnauthenticated() bool {
	text := ""
	switch {
	case c.stopping.Load() || c.state != stateNotAuth:
		return false
	case c.evicted.Load():
		text = byeQueueFull
	case !time.Now().Before(c.loginBy):
		c.srv.LoginTimeouts.Add(1)
		c.log.Info("connection closed: not logged in within the login timeout", "timeout", c.srv.loginTimeout())
		text = byeLoginTimeout
	default:
		return false
	}
	if tc, ok := c.nc.(*tls.Conn); ok && !tc.ConnectionState().HandshakeComplete {
		return true // nothing can be said before the handshake
	}
	c.nc.SetWriteDeadline(time.Now().Add(evictTimeout))
	c.bw.WriteString("* BYE " + text + "\r\n")
	c.bw.Flush()
	return true
}

// Bounds of the wait for a client to close its side after a shutdown
// BYE (byeShutdown): long enough for a client that reads the BYE to
// close, short beside the server's wait for its sessions.
const (
	lingerTimeout = 2 * time.Second
	lingerMax     = 1 << 20 // bytes the client may still send meanwhile
)

// byeShutdown says BYE to a session the server stops, and lets the
// client read it: a connection closed with input unread is reset by the
// kernel, and a client (a pipelining one, whose next command is on its
// way) may then lose the BYE before it reads it. So the server closes
// only its sending side (FIN after the BYE) and drops what the client
// still sends until the client closes too, for lingerTimeout and
// lingerMax at most; serve then closes the connection.
func (c *conn) byeShutdown() {
	c.bw.WriteString("* BYE Server shutting down\r\n")
	if c.flush() != nil {
		return
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		tc.CloseWrite() // close_notify
	}
	cw, ok := c.raw.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.raw.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.CopyN(io.Discard, c.raw, lingerMax)
}

func (c *conn) closeSelected() {
	if c.sel != nil {
		c.sel.mb.Close()
		c.sel = nil
	}
	if c.user != nil {
		c.user.Close()
		c.user = nil
	}
	if c.userSlot != nil {
		c.userSlot()
		c.userSlot = nil
	}
}

// command reads, runs and answers one command. The error ends the
// session (a broken connection); protocol errors are answered instead.
// Each command is counted (metrics.go) and logged at debug level once
// its tag is read.
func (c *conn) command() error {
	// Before login the deadline is loginBy, for the whole command: its
	// literals and an AUTHENTICATE exchange included.
	c.setReadDeadline(c.deadline(c.srv.idleTimeout()))
	if ok, err := c.awaitCommand(); !ok {
		return err
	}
	tag, err := c.dec.Tag()
	if err != nil && !wire.IsProtocolError(err) {
		return err
	}
	start, label := time.Now(), otherCommand
	c.outcome = ""
	// Until the line is known to be a command, its first word may be
	// anything a client sent, such as a SASL response sent without
	// waiting for "+" (credentials): the log gets no tag then.
	parsed := false
	defer func() {
		if parsed {
			c.commandDone(tag, label, start)
		} else {
			c.unparsedDone(tag, start)
		}
	}()
	if err != nil {
		return c.badLine("*", err)
	}
	if err := c.dec.SP(); err != nil {
		return c.badLine(tag, err)
	}
	name, err := c.dec.Atom()
	if err != nil {
		return c.badLine(tag, err)
	}
	name = strings.ToUpper(name)
	uid := false
	if name == "UID" {
		if err := c.dec.SP(); err != nil {
			return c.badLine(tag, err)
		}
		if name, err = c.dec.Atom(); err != nil {
			return c.badLine(tag, err)
		}
		name = strings.ToUpper(name)
		uid = true
	}
	label = commandLabel(name, uid)
	cmd, ok := commands[name]
	if !ok || (uid && !cmd.uid) {
		return c.badLine(tag, &wire.Error{Msg: "unknown command " + name})
	}
	parsed = true
	if c.state == stateNotAuth {
		c.preAuth++
		max := c.srv.MaxCommandsBeforeAuth
		if max == 0 {
			max = DefaultMaxCommandsBeforeAuth
		}
		if c.preAuth > max {
			c.outcome = outcomeNo
			c.bw.WriteString("* BYE Too many commands without logging in\r\n")
			c.flush()
			c.state = stateLogout
			return nil
		}
	}
	if !cmd.allowed(c.state) {
		return c.badLine(tag, &wire.Error{Msg: c.notAllowed(name, cmd)})
	}
	err = cmd.run(c, tag, uid)
	if err != nil {
		if errors.Is(err, errConnection) {
			return err
		}
		return c.respondErr(tag, err)
	}
	return c.flush()
}

// commandDone counts and logs the command with tag, label (metrics.go)
// that began at start; a command without a tagged response is an error.
func (c *conn) commandDone(tag, label string, start time.Time) {
	outcome := c.outcome
	if outcome == "" {
		outcome = outcomeError
	}
	c.srv.met.commandDone(label, outcome, start)
	if c.log.Enabled(c.ctx, slog.LevelDebug) {
		c.log.Debug("command", "tag", tag, "command", label, "outcome", outcome, "duration", time.Since(start))
	}
}

// notAllowed says why the command name (cmd) may not run in the
// session's state: the reason, not merely the state. A command of the
// not-authenticated state (LOGIN, STARTTLS) after login is refused
// because the session is logged in, not for want of a mailbox.
// unparsedDone counts and logs a line that did not parse as a command,
// whose first word was first: at debug level, with at most
// unparsedLogPrefix characters of that word, sanitized, never the word.
func (c *conn) unparsedDone(first string, start time.Time) {
	outcome := c.outcome
	if outcome == "" {
		outcome = outcomeError
	}
	c.srv.met.commandDone(otherCommand, outcome, start)
	if c.log.Enabled(c.ctx, slog.LevelDebug) {
		c.log.Debug("not a command", "prefix", logPrefix(first), "outcome", outcome)
	}
}

// unparsedLogPrefix is how much of a line that is not a command may be
// logged: few enough characters that a base64 SASL PLAIN response (an
// authorization identity, NUL, a user name, NUL, then the password)
// never shows a byte of the password (4 base64 characters are 3 bytes),
// enough to tell garbage from a client's mistake.
const unparsedLogPrefix = 4

// logPrefix is s cut to unparsedLogPrefix characters, each outside
// printable ASCII replaced by '?', with "..." when cut.
func logPrefix(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i >= unparsedLogPrefix {
			b.WriteString("...")
			break
		}
		if r < 0x21 || r > 0x7e {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (c *conn) notAllowed(name string, cmd command) string {
	switch {
	case c.state == stateNotAuth:
		return name + " is not allowed before logging in"
	case name == "STARTTLS" && c.isTLS():
		return "TLS is already active"
	case cmd.allowed(stateNotAuth):
		return name + " is not allowed: already logged in"
	case c.state == stateAuth:
		return name + " is not allowed without a selected mailbox"
	}
	return name + " is not allowed now"
}

// isTLS reports whether the session runs over TLS (implicit or after
// STARTTLS).
func (c *conn) isTLS() bool {
	_, ok := c.nc.(*tls.Conn)
	return ok
}

// errConnection wraps errors of the connection itself: the session ends.
var errConnection = errors.New("connection")

// badLine answers a syntax error with BAD and skips the rest of the line.
func (c *conn) badLine(tag string, err error) error {
	var we *wire.Error
	if !errors.As(err, &we) {
		if isConnErr(err) {
			return err
		}
		we = &wire.Error{Msg: "syntax error"}
	}
	if derr := c.dec.Discard(); derr != nil && !wire.IsProtocolError(derr) {
		return derr
	}
	code := ""
	if we.Code != "" {
		code = "[" + we.Code + "] "
	}
	c.outcome = outcomeBad
	fmt.Fprintf(c.bw, "%s BAD %s%s\r\n", tag, code, sanitize(we.Msg))
	return c.flush()
}

func isConnErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, errConnection)
}

// respondErr is the one place where errors become responses (STYLE.md
// rule 3): syntax errors BAD, known conditions NO with an RFC 5530 code,
// anything else NO [SERVERBUG] with the details in the log only.
func (c *conn) respondErr(tag string, err error) error {
	if isConnErr(err) {
		return err
	}
	var we *wire.Error
	if errors.As(err, &we) {
		return c.badLine(tag, err)
	}
	code, text := "", ""
	c.outcome = outcomeNo
	if errors.Is(err, ErrSelectedGone) && c.sel != nil {
		c.byeGone()
		return nil
	}
	var ne *noError
	switch {
	case errors.Is(err, ErrAuthFailed):
		code, text = "AUTHENTICATIONFAILED", "Authentication failed"
	case errors.Is(err, ErrNoSuchMailbox):
		code, text = "NONEXISTENT", "No such mailbox"
	case errors.Is(err, ErrMailboxExists):
		code, text = "ALREADYEXISTS", "Mailbox exists"
	case errors.Is(err, ErrBadMailboxName):
		code, text = "CANNOT", "Bad mailbox name"
	case errors.Is(err, ErrNotSelectable):
		code, text = "CANNOT", "Mailbox cannot be selected"
	case errors.Is(err, ErrTooBig):
		code, text = "TOOBIG", "Message too big"
	case errors.Is(err, ErrOverQuota):
		code, text = "OVERQUOTA", "Over quota"
	case errors.Is(err, ErrNoSpace):
		// RFC 5530 has no code for a full disk: Dovecot's answer.
		c.log.Warn("no disk space", "tag", tag, "err", err)
		c.outcome = outcomeError
		code, text = "OVERQUOTA", "Not enough disk space"
	case errors.Is(err, ErrNoPerm):
		c.log.Warn("permission denied", "tag", tag, "err", err)
		c.outcome = outcomeError
		code, text = "NOPERM", "Permission denied"
	case errors.Is(err, ErrInUse):
		code, text = "INUSE", "Mailbox busy; try again"
	case errors.Is(err, ErrLocked):
		// RFC 5530 §3: someone else holds the lock the command needs;
		// nothing was done, and a later try may succeed.
		c.log.Warn("mailbox locked", "tag", tag, "err", err)
		code, text = "INUSE", "Mailbox is locked by another process; try again later"
	case errors.Is(err, ErrUnavailable):
		c.log.Warn("temporary failure", "tag", tag, "err", err)
		c.outcome = outcomeError
		code, text = "UNAVAILABLE", "Temporary failure; try again later"
	case errors.Is(err, ErrKeywordsFull):
		code, text = "LIMIT", "No room for another keyword in this mailbox"
	case errors.Is(err, ErrTooManyMailboxes):
		// Dovecot's words (quota_mailbox_count).
		code, text = "LIMIT", "Maximum number of mailboxes reached"
	case errors.Is(err, ErrNoSuchMessageErr):
		code, text = "EXPUNGEISSUED", "Some messages were expunged meanwhile"
	case errors.As(err, &ne):
		code, text = ne.code, ne.text
	default:
		c.log.Error("command failed", "tag", tag, "err", err)
		c.outcome = outcomeError
		code, text = "SERVERBUG", "Internal error; see the server log"
	}
	if code != "" {
		code = "[" + code + "] "
	}
	c.sayHighest()
	fmt.Fprintf(c.bw, "%s NO %s%s\r\n", tag, code, text)
	return c.flush()
}

// noError is a NO answer decided by a command.
type noError struct{ code, text string }

func (e *noError) Error() string { return e.text }

func no(code, text string) error { return &noError{code, text} }

// ok writes the tagged OK, after the updates the moment allows. A
// HIGHESTMODSEQ due (condstore.go) goes in its code when it has none.
func (c *conn) ok(tag, code, text string) error {
	if code == "" && c.sel != nil && c.sel.highestDue != 0 {
		code = fmt.Sprintf("HIGHESTMODSEQ %d", c.sel.highestDue)
		c.sel.highestDue = 0
	}
	c.sayHighest()
	if code != "" {
		code = "[" + code + "] "
	}
	c.outcome = outcomeOK
	fmt.Fprintf(c.bw, "%s OK %s%s\r\n", tag, code, text)
	return nil
}

// sanitize keeps a client-visible text on one line.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// command table -------------------------------------------------------

type command struct {
	run    func(c *conn, tag string, uid bool) error
	states []state
	uid    bool // has a UID form
}

func (cmd command) allowed(s state) bool {
	for _, x := range cmd.states {
		if x == s {
			return true
		}
	}
	return false
}

var (
	any_      = []state{stateNotAuth, stateAuth, stateSelected}
	notAuth   = []state{stateNotAuth}
	authed    = []state{stateAuth, stateSelected}
	selected_ = []state{stateSelected}
)

// commands is filled by the command files' init functions.
var commands = map[string]command{}

func register(name string, states []state, uid bool, run func(c *conn, tag string, uid bool) error) {
	commands[name] = command{run: run, states: states, uid: uid}
}

// Updates -------------------------------------------------------------

// updates takes what others changed in the selected mailbox and tells the
// client: EXISTS and flag FETCHes always, EXPUNGEs only when
// allowExpunge. It returns errConnection-wrapped errors only.
func (c *conn) updates(allowExpunge bool) error {
	s := c.sel
	if s == nil {
		return nil
	}
	u := s.mb.Take()
	if u.Gone {
		c.byeGone()
		return nil
	}
	if u.Void {
		c.bw.WriteString("* BYE [UIDVALIDITY] The mailbox was rebuilt; select it again\r\n")
		c.flush()
		c.state = stateLogout
		return nil
	}
	s.held = append(s.held, u.Expunged...)
	if allowExpunge && len(s.held) > 0 {
		s.forgetRecent(s.held)
		if c.qresync {
			c.vanished(s.held)
		} else {
			for _, seq := range s.view.Expunge(s.held) {
				fmt.Fprintf(c.bw, "* %d EXPUNGE\r\n", seq)
			}
		}
		s.held = s.held[:0]
	}
	if len(u.New) > 0 {
		before := s.view.Len()
		uids := make([]uint32, len(u.New))
		for i, m := range u.New {
			uids[i] = m.UID
		}
		if n := s.view.Add(uids); n != before {
			fmt.Fprintf(c.bw, "* %d EXISTS\r\n", n)
			c.takeRecent()
		}
	}
	c.tellRecent()
	for _, m := range u.Flags {
		if seq := s.view.Seq(m.UID); seq != 0 && !containsUID(s.held, m.UID) {
			c.flagsFetch(seq, m)
		}
	}
	c.settleModSeq(u.HighestModSeq)
	return nil
}

// flagsFetch tells a message's flags: "* seq FETCH (FLAGS (...) UID n)",
// with its MODSEQ once CONDSTORE is enabled, after a FLAGS response for
// any keyword the client was not told of yet. UID always: mbsync and
// offlineimap need it in STORE's answers too.
func (c *conn) flagsFetch(seq uint32, m MessageInfo) {
	c.announce(m.Flags)
	fmt.Fprintf(c.bw, "* %d FETCH (FLAGS ", seq)
	c.flags(m.UID, m.Flags)
	fmt.Fprintf(c.bw, " UID %d", m.UID)
	c.modseqIfEnabled(m.ModSeq)
	c.bw.WriteString(")\r\n")
}

// byeGone ends the session whose selected mailbox was deleted or
// renamed: none of its UIDs mean anything now, and IMAP has no way to
// leave the selected state unasked. Dovecot says the same.
func (c *conn) byeGone() {
	c.bw.WriteString("* BYE Selected mailbox was deleted or renamed, have to disconnect.\r\n")
	c.flush()
	c.state = stateLogout
}

func containsUID(uids []uint32, u uint32) bool {
	for _, x := range uids {
		if x == u {
			return true
		}
	}
	return false
}

var (
	errIdleBad  = errors.New("IDLE ended without DONE")
	errShutdown = errors.New("server shutting down")
)

// errWrap marks err as the end of the connection.
func errWrap(err error) error { return fmt.Errorf("%w: %w", errConnection, err) }

func (c *conn) respondBadIdle(tag string) error {
	c.outcome = outcomeBad
	fmt.Fprintf(c.bw, "%s BAD Expected DONE\r\n", tag)
	return nil
}
