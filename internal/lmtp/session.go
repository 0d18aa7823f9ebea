package lmtp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"github.com/emersion/go-smtp"

	"github.com/cistern-mail/cistern/internal/delivery"
	"github.com/cistern-mail/cistern/internal/logctx"
)

// backend makes a session for each connection that says LHLO.
type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		// After STARTTLS go-smtp reads through TLS on top of ours.
		nc = tc.NetConn()
	}
	cn, ok := nc.(*conn)
	if !ok {
		// Serve wraps every connection; anything else is a broken
		// invariant, which go-smtp recovers and errorLog counts.
		panic("lmtp: session on a connection Serve did not accept")
	}
	cn.mu.Lock()
	draining := cn.draining
	cn.mu.Unlock()
	if draining {
		return nil, errShuttingDown
	}
	id := logctx.NewID()
	log := b.s.logger().With("session", id, "remote", cn.RemoteAddr().String())
	return &session{s: b.s, conn: cn, id: id, log: log}, nil
}

// session is one connection's LMTP state. go-smtp calls its methods from
// the connection's goroutine, and LMTPData from one it starts for the
// message while that goroutine waits: never two at once.
type session struct {
	s    *Server
	conn *conn
	id   string       // names the connection in the log (logctx.NewID)
	log  *slog.Logger // the Server's, with the session's id and peer
	txn  int          // transactions begun
	open bool         // a transaction is under way (MAIL accepted, no Reset yet)

	from   string
	rcpts  []*delivery.Recipient
	rcptTo []string // the addresses as go-smtp passes them to SetStatus
}

var _ smtp.LMTPSession = (*session)(nil)

// txnID names the current transaction in the log.
func (ss *session) txnID() string { return ss.id + "." + strconv.Itoa(ss.txn) }

// envelope is the current transaction's, for package delivery: its
// lines go to the session's logger.
func (ss *session) envelope() delivery.Envelope {
	return delivery.Envelope{From: ss.from, ID: ss.txnID(), Logger: ss.log}
}

// Mail implements smtp.Session. RFC 5321 §4.1.1.2.
func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if ss.open {
		// go-smtp keeps the recipients of the transaction under way; a
		// second MAIL must not start another (RFC 5321 §4.1.4).
		return replyNestedMail
	}
	if err := delivery.ValidAddress(from); err != nil {
		return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: "Bad sender address syntax"}
	}
	if opts != nil && opts.Size > ss.s.maxMessageSize() {
		return replyTooBig // RFC 1870 §6.1
	}
	if err := ss.conn.beginTxn(); err != nil {
		return err
	}
	ss.txn++
	ss.open = true
	ss.from, ss.rcpts, ss.rcptTo = from, nil, nil
	return nil
}

// Rcpt implements smtp.Session: the recipient is resolved now, so that
// an unknown user is refused here. RFC 5321 §4.1.1.3, RFC 2033 §4.1.
func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	r, err := ss.s.Deliverer.ResolveFor(ss.envelope(), to)
	if err != nil {
		return ss.s.reply(err)
	}
	ss.rcpts = append(ss.rcpts, r)
	ss.rcptTo = append(ss.rcptTo, to)
	return nil
}

// LMTPData implements smtp.LMTPSession: one delivery for every
// recipient, then one status each, in RCPT order. RFC 2033 §4.2.
func (ss *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	ss.conn.setData(true)
	defer ss.conn.setData(false)
	env := ss.envelope()
	results := ss.s.Deliverer.Deliver(env, ss.rcpts, &dataReader{r: r, max: ss.s.maxMessageSize()})
	// A refused message was not read to its end: read the rest, so that
	// the replies follow it (each read bounded by DataTimeout).
	io.Copy(io.Discard, r)
	for i, res := range results {
		status.SetStatus(ss.rcptTo[i], ss.s.replyFor(env.ID, res.Err))
	}
	// go-smtp gives this to any recipient without a status of its own:
	// there is none, and were there one, it was not delivered.
	return replyTemporary
}

// Data implements smtp.Session for a peer that speaks SMTP: one reply
// for the whole message, a success only when every recipient has it.
// In LMTP mode go-smtp calls LMTPData instead.
func (ss *session) Data(r io.Reader) error {
	var first error
	ss.LMTPData(r, collectFirst{&first})
	return first
}

// collectFirst keeps the first failure status.
type collectFirst struct{ err *error }

func (c collectFirst) SetStatus(rcpt string, err error) {
	var se *smtp.SMTPError
	if *c.err == nil && errors.As(err, &se) && se.Code >= 400 {
		*c.err = err
	}
}

// Reset implements smtp.Session: the transaction is over (RSET, LHLO, or
// after the replies to DATA).
func (ss *session) Reset() {
	ss.open = false
	ss.from, ss.rcpts, ss.rcptTo = "", nil, nil
	ss.conn.endTxn()
}

// Logout implements smtp.Session.
func (ss *session) Logout() error { return nil }

// dataReader enforces the message size limit, and turns go-smtp's own
// size refusal into delivery's, so that the delivery counts it.
type dataReader struct {
	r    io.Reader
	max  int64
	read int64
}

func (d *dataReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.read += int64(n)
	switch {
	case d.read > d.max:
		return 0, fmt.Errorf("%w: more than %d bytes", delivery.ErrTooBig, d.max)
	case errors.Is(err, smtp.ErrDataTooLarge):
		err = delivery.ErrTooBig
	}
	return n, err
}

// Replies.
var (
	replyUnknownUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"}
	replyBadAddress  = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad recipient address syntax"}
	replyQuotaPerm   = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Mailbox is full"}
	replyQuotaTemp   = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox is full, try again later"}
	replyTooBig      = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message too big"}
	replyNUL         = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message contains NUL bytes"}
	replyEmpty       = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message is empty"}
	replyTemporary   = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}
	replyDiskFull    = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Mail system full, try again later"}
	replyNoAccess    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "Mailbox unavailable, try again later"}
	replyNestedMail  = &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Nested MAIL command"}
)

// reply is the one place where delivery errors become LMTP replies (see
// the package doc's table); err is not nil.
func (s *Server) reply(err error) *smtp.SMTPError {
	if errors.Is(err, errTimeout) {
		return errTimeout
	}
	if errors.Is(err, errTooSlow) {
		return errTooSlow
	}
	switch delivery.KindOf(err) {
	case delivery.UnknownUser:
		return replyUnknownUser
	case delivery.BadAddress:
		return replyBadAddress
	case delivery.OverQuota:
		if s.QuotaFullTempfail {
			return replyQuotaTemp
		}
		return replyQuotaPerm
	case delivery.TooBig:
		return replyTooBig
	case delivery.BadMessage:
		if errors.Is(err, delivery.ErrNUL) {
			return replyNUL
		}
		return replyEmpty
	case delivery.DiskFull:
		return replyDiskFull // RFC 5321 §4.2.2 452, RFC 3463 4.3.1
	case delivery.NoAccess:
		return replyNoAccess
	}
	return replyTemporary
}

// replyFor is the status of one recipient after DATA: a 250 naming the
// transaction, or reply(err).
func (s *Server) replyFor(id string, err error) error {
	if err == nil {
		return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: id + " Saved"}
	}
	return s.reply(err)
}
