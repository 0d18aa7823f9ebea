package imaptorture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// readBufferBytes is the size of a connection's read buffer.
	readBufferBytes = 64 << 10
	// logoutTimeout bounds the goodbye at the end of a session.
	logoutTimeout = 5 * time.Second
)

// ErrClosed is returned for a connection the server closed.
var ErrClosed = errors.New("connection closed by the server")

// imapConn is one IMAP client connection: it sends commands and reads
// responses, every read and write under a deadline of timeout, and hands
// each untagged response to the caller before the tagged one.
type imapConn struct {
	nc       net.Conn
	r        *bufio.Reader
	timeout  time.Duration
	tags     int
	caps     map[string]bool
	greeting string

	// deadline bounds the whole of the command in progress: a server
	// that sends untagged data for ever does not hold it for ever.
	deadline time.Time

	wmu sync.Mutex // serializes writes: IDLE's DONE comes from a timer

	// watch, when set, sees every response as it came off the wire
	// (the symbolic link actor's check, foreignLinks.watchResponse).
	watch func(rawResponse)
}

// untaggedFunc receives the untagged responses of a command, each with
// the time it was read.
type untaggedFunc func(r *Response, at time.Time) error

// dialIMAP connects to addr and reads the greeting.
func dialIMAP(ctx context.Context, addr string, timeout time.Duration) (*imapConn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &imapConn{nc: nc, r: bufio.NewReaderSize(nc, readBufferBytes), timeout: timeout, caps: make(map[string]bool)}
	g, _, err := c.read()
	if err == nil && (g.Tag != "*" || g.Type != "OK" && g.Type != "PREAUTH") {
		err = fmt.Errorf("greeting %q", g.Line)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	c.greeting = g.Line
	if g.Code == "CAPABILITY" {
		c.setCaps(g.CodeArgs)
	}
	return c, nil
}

// read reads and parses one response under the deadline.
func (c *imapConn) read() (*Response, time.Time, error) {
	d := time.Now().Add(c.timeout)
	if !c.deadline.IsZero() && c.deadline.Before(d) {
		d = c.deadline
	}
	c.nc.SetReadDeadline(d)
	raw, err := readRaw(c.r)
	at := time.Now()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, at, ErrClosed
		}
		return nil, at, err
	}
	if c.watch != nil {
		c.watch(raw)
	}
	resp, err := parseResponse(raw)
	return resp, at, err
}

func (c *imapConn) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := c.nc.Write([]byte(s))
	return err
}

// nextTag starts a command: its tag, and its deadline, extra after the
// timeout.
func (c *imapConn) nextTag(extra time.Duration) string {
	c.deadline = time.Now().Add(c.timeout + extra)
	c.tags++
	return "t" + strconv.Itoa(c.tags)
}

func (c *imapConn) setCaps(list []string) {
	clear(c.caps)
	for _, s := range list {
		c.caps[strings.ToUpper(s)] = true
	}
}

// has reports a capability.
func (c *imapConn) has(capability string) bool { return c.caps[capability] }

// command sends one command line (without tag and CRLF) and reads its
// responses up to the tagged one, which it returns whatever its status.
func (c *imapConn) command(line string, f untaggedFunc) (*Response, error) {
	tag := c.nextTag(0)
	if err := c.write(tag + " " + line + "\r\n"); err != nil {
		return nil, err
	}
	return c.until(tag, f)
}

// until reads responses until the one tagged tag.
func (c *imapConn) until(tag string, f untaggedFunc) (*Response, error) {
	for {
		resp, at, err := c.read()
		if err != nil {
			return nil, err
		}
		switch resp.Tag {
		case tag:
			if resp.Code == "CAPABILITY" {
				c.setCaps(resp.CodeArgs)
			}
			return resp, nil
		case "*":
			if resp.Type == "CAPABILITY" {
				caps := make([]string, len(resp.Data))
				for i, v := range resp.Data {
					caps[i] = v.Text
				}
				c.setCaps(caps)
			}
			if f != nil {
				if err := f(resp, at); err != nil {
					return nil, err
				}
			}
		case "+":
			return nil, fmt.Errorf("unexpected continuation request %q", resp.Line)
		default:
			return nil, fmt.Errorf("response with a tag we did not send: %q", resp.Line)
		}
	}
}

// commandLiteral sends prefix, a literal of lit, and suffix as one
// command (APPEND), with a non-synchronizing literal when the server
// offers LITERAL+ (RFC 7888) and waiting for the continuation otherwise.
func (c *imapConn) commandLiteral(prefix string, lit []byte, suffix string, f untaggedFunc) (*Response, error) {
	tag := c.nextTag(0)
	if c.has("LITERAL+") {
		msg := tag + " " + prefix + "{" + strconv.Itoa(len(lit)) + "+}\r\n" + string(lit) + suffix + "\r\n"
		if err := c.write(msg); err != nil {
			return nil, err
		}
		return c.until(tag, f)
	}
	if err := c.write(tag + " " + prefix + "{" + strconv.Itoa(len(lit)) + "}\r\n"); err != nil {
		return nil, err
	}
	for {
		resp, at, err := c.read()
		if err != nil {
			return nil, err
		}
		if resp.Tag == "+" {
			break
		}
		if resp.Tag == tag {
			return resp, nil
		}
		if resp.Tag != "*" {
			return nil, fmt.Errorf("response with a tag we did not send: %q", resp.Line)
		}
		if f != nil {
			if err := f(resp, at); err != nil {
				return nil, err
			}
		}
	}
	if err := c.write(string(lit) + suffix + "\r\n"); err != nil {
		return nil, err
	}
	return c.until(tag, f)
}

// idle runs IDLE (RFC 2177) for about d after the server's continuation,
// then says DONE and reads up to the tagged response.
func (c *imapConn) idle(d time.Duration, f untaggedFunc) (*Response, error) {
	tag := c.nextTag(d)
	if err := c.write(tag + " IDLE\r\n"); err != nil {
		return nil, err
	}
	for {
		resp, at, err := c.read()
		if err != nil {
			return nil, err
		}
		if resp.Tag == tag {
			return resp, nil // refused
		}
		if resp.Tag == "+" {
			break
		}
		if resp.Tag != "*" {
			return nil, fmt.Errorf("response with a tag we did not send: %q", resp.Line)
		}
		if f != nil {
			if err := f(resp, at); err != nil {
				return nil, err
			}
		}
	}
	done := make(chan error, 1)
	timer := time.AfterFunc(d, func() { done <- c.write("DONE\r\n") })
	resp, err := c.until(tag, f)
	if timer.Stop() {
		// The server ended IDLE before DONE: never send it now.
		return resp, err
	}
	if werr := <-done; err == nil && werr != nil {
		err = werr
	}
	return resp, err
}

// logout says LOGOUT and closes the connection, within logoutTimeout.
func (c *imapConn) logout() {
	c.timeout = logoutTimeout
	c.command("LOGOUT", nil)
	c.nc.Close()
}

func (c *imapConn) close() { c.nc.Close() }

// quote makes s an IMAP quoted string (RFC 9051 §4.3).
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
