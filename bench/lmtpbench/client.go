package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Limits of the client: every read is bounded.
const (
	dialTimeout = 10 * time.Second
	// replyTimeout bounds the wait for one reply. A delivery's reply
	// waits for the server's fsyncs, milliseconds on a healthy disk.
	replyTimeout = 2 * time.Minute
	// maxReplyLines bounds a multiline reply (LHLO's has about ten).
	maxReplyLines = 100
	// The buffers: a reply line is short; a message goes out in 64 KiB
	// writes.
	readBuffer  = 4 << 10
	writeBuffer = 64 << 10
)

// lmtpClient is the least LMTP client (RFC 2033) that can time a server:
// LHLO once, then MAIL FROM / RCPT TO / DATA transactions back to back on
// one connection, reading every reply before the next command (no
// PIPELINING), and after DATA one reply per accepted recipient. Message
// data is dot-stuffed on the way out.
type lmtpClient struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

// reply is one SMTP reply (RFC 5321 §4.2): a code and the text of its
// lines, joined by "\n".
type reply struct {
	code int
	text string
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.code, r.text) }

// ok reports a positive completion reply (2yz).
func (r reply) ok() bool { return r.code/100 == 2 }

// replyError is a reply other than the one a command needed.
type replyError struct {
	command string
	reply   reply
}

func (e *replyError) Error() string { return fmt.Sprintf("%s: %v", e.command, e.reply) }

// dialLMTP connects to addr, reads the greeting and says LHLO.
func dialLMTP(addr, lhlo string) (*lmtpClient, error) {
	nc, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return nil, err
	}
	c := &lmtpClient{nc: nc, r: bufio.NewReaderSize(nc, readBuffer), w: bufio.NewWriterSize(nc, writeBuffer)}
	greeting, err := c.readReply()
	if err == nil && greeting.code != 220 {
		err = &replyError{"greeting", greeting}
	}
	if err == nil {
		_, err = c.command("LHLO "+lhlo, 250)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return c, nil
}

// readReply reads one reply, all its lines.
func (c *lmtpClient) readReply() (reply, error) {
	c.nc.SetReadDeadline(time.Now().Add(replyTimeout))
	var rep reply
	var text []string
	for range maxReplyLines {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return rep, fmt.Errorf("reading a reply: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) < 3 || len(line) > 3 && line[3] != ' ' && line[3] != '-' {
			return rep, fmt.Errorf("malformed reply line %q", line)
		}
		code, err := strconv.Atoi(string(line[:3]))
		if err != nil || code < 200 || code > 599 {
			return rep, fmt.Errorf("malformed reply code in %q", line)
		}
		if rep.code != 0 && code != rep.code {
			return rep, fmt.Errorf("reply code changed from %d to %d within one reply", rep.code, code)
		}
		rep.code = code
		if len(line) > 4 {
			text = append(text, string(line[4:]))
		}
		if len(line) == 3 || line[3] == ' ' {
			rep.text = strings.Join(text, "\n")
			return rep, nil
		}
	}
	return rep, fmt.Errorf("reply longer than %d lines", maxReplyLines)
}

// command sends one command line and reads its reply, which must have
// the code want.
func (c *lmtpClient) command(line string, want int) (reply, error) {
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if err := c.flush(); err != nil {
		return reply{}, err
	}
	rep, err := c.readReply()
	if err != nil {
		return rep, fmt.Errorf("%s: %w", line, err)
	}
	if rep.code != want {
		return rep, &replyError{line, rep}
	}
	return rep, nil
}

func (c *lmtpClient) flush() error {
	c.nc.SetWriteDeadline(time.Now().Add(replyTimeout))
	return c.w.Flush()
}

// deliver runs one transaction: MAIL FROM:<from>, RCPT TO for each of
// rcpts, and when any was accepted DATA with the message, given in
// parts that together are the message with CRLF line ends. It returns
// one reply per recipient: the RCPT reply of a refused one, the reply
// after the data of an accepted one (RFC 2033 §4.2). The error is for
// what ends the transaction: a refused MAIL, a failed DATA, a broken
// connection.
func (c *lmtpClient) deliver(from string, rcpts []string, parts ...[]byte) ([]reply, error) {
	if _, err := c.command("MAIL FROM:<"+from+">", 250); err != nil {
		return nil, err
	}
	replies := make([]reply, len(rcpts))
	var accepted []int
	for i, rcpt := range rcpts {
		rep, err := c.command("RCPT TO:<"+rcpt+">", 250)
		var re *replyError
		if err != nil && !errors.As(err, &re) {
			return nil, err
		}
		replies[i] = rep
		if rep.ok() {
			accepted = append(accepted, i)
		}
	}
	if len(accepted) == 0 {
		_, err := c.command("RSET", 250)
		return replies, err
	}
	if _, err := c.command("DATA", 354); err != nil {
		return replies, err
	}
	lineStart := true
	for _, p := range parts {
		lineStart = writeDotStuffed(c.w, p, lineStart)
	}
	if !lineStart {
		c.w.WriteString("\r\n")
	}
	c.w.WriteString(".\r\n")
	if err := c.flush(); err != nil {
		return replies, err
	}
	for _, i := range accepted {
		rep, err := c.readReply()
		if err != nil {
			return replies, fmt.Errorf("reply for <%s> after DATA: %w", rcpts[i], err)
		}
		replies[i] = rep
	}
	return replies, nil
}

// writeDotStuffed writes data to w with a '.' doubled at the start of
// every line (RFC 5321 §4.5.2). lineStart says whether data begins a
// line; the result says whether the next byte would.
func writeDotStuffed(w *bufio.Writer, data []byte, lineStart bool) bool {
	if len(data) == 0 {
		return lineStart
	}
	if lineStart && data[0] == '.' {
		w.WriteByte('.')
	}
	for {
		i := bytes.Index(data, []byte("\n."))
		if i < 0 {
			w.Write(data)
			return data[len(data)-1] == '\n'
		}
		w.Write(data[:i+2])
		w.WriteByte('.')
		data = data[i+2:]
		if len(data) == 0 {
			return false
		}
	}
}

// quit says QUIT, reads the reply, and closes the connection.
func (c *lmtpClient) quit() error {
	_, err := c.command("QUIT", 221)
	return errors.Join(err, c.nc.Close())
}

// close closes the connection without a word.
func (c *lmtpClient) close() { c.nc.Close() }
