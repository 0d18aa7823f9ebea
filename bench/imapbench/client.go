package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Limits of the client: every read is bounded.
const (
	dialTimeout = 10 * time.Second
	// logoutTimeout bounds the wait for the server to end a session.
	logoutTimeout = 10 * time.Second
	// commandTimeout bounds one command. The longest is Cistern's first
	// FETCH 1:* (ENVELOPE), which fills its index at about 11 ms a
	// message: more than 10 minutes for 100,000 (see bench/README.md).
	commandTimeout = time.Hour
	// maxLine bounds one response without its literals; the longest is
	// a SEARCH that matches everything (under 1 MB for 100,000).
	maxLine = 16 << 20
	// maxLiteral bounds one literal, which is discarded unread.
	maxLiteral = 64 << 20
	readBuffer = 64 << 10
)

// client is the least IMAP client that can time a server: it sends a
// command and reads responses until the tagged one, keeping only what the
// checks need (counts, EXISTS, SEARCH hits). It never sends literals.
type client struct {
	nc   net.Conn
	r    *bufio.Reader
	tags int
	line []byte // a response that did not fit in r's buffer in one piece
}

// reply is what one command's responses said.
type reply struct {
	bytes    int64 // every response byte, the tagged line included
	untagged int
	fetches  int // untagged FETCH responses
	exists   int // the last "* n EXISTS", -1 without one
	hits     int // numbers in SEARCH responses, -1 without one
	// uidValidity and highestModSeq: the last UIDVALIDITY and
	// HIGHESTMODSEQ response codes, 0 without one.
	uidValidity   uint32
	highestModSeq uint64
	vanished      bool // a VANISHED response came
}

// dial connects and reads the greeting.
func dial(addr string) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return nil, err
	}
	c := &client{nc: nc, r: bufio.NewReaderSize(nc, readBuffer)}
	nc.SetDeadline(time.Now().Add(dialTimeout))
	line, _, err := c.readResponse()
	if err == nil && !bytes.HasPrefix(line, []byte("* OK")) {
		err = fmt.Errorf("greeting %q", trim(line))
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return c, nil
}

// login dials addr and logs in as benchUser.
func login(addr string) (*client, error) {
	c, err := dial(addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.run("LOGIN " + benchUser + " " + benchPassword); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// close says LOGOUT and reads until the server closes the connection:
// then its session has ended and let go of the mailbox, and the next
// session does not find it still open.
func (c *client) close() {
	c.nc.SetDeadline(time.Now().Add(logoutTimeout))
	if _, err := c.nc.Write([]byte("z LOGOUT\r\n")); err == nil {
		io.Copy(io.Discard, c.r)
	}
	c.nc.Close()
}

// run sends one command and reads its responses up to its tagged
// response, which must be OK.
func (c *client) run(command string) (reply, error) {
	c.tags++
	tag := "t" + strconv.Itoa(c.tags)
	rep := reply{exists: -1, hits: -1}
	c.nc.SetDeadline(time.Now().Add(commandTimeout))
	if _, err := c.nc.Write([]byte(tag + " " + command + "\r\n")); err != nil {
		return rep, err
	}
	for {
		line, n, err := c.readResponse()
		rep.bytes += n
		if err != nil {
			return rep, fmt.Errorf("%s: %w", command, err)
		}
		switch {
		case bytes.HasPrefix(line, []byte("* ")):
			rep.untagged++
			rep.count(line[2:])
		case bytes.HasPrefix(line, []byte(tag+" ")):
			status := line[len(tag)+1:]
			if !bytes.HasPrefix(status, []byte("OK")) {
				return rep, fmt.Errorf("%s: %s", command, trim(status))
			}
			return rep, nil
		default:
			return rep, fmt.Errorf("%s: unexpected response %q", command, trim(line[:min(len(line), 200)]))
		}
	}
}

// count notes what the checks need from one untagged response (without
// its "* ").
func (rep *reply) count(resp []byte) {
	num, rest, ok := bytes.Cut(resp, []byte(" "))
	if ok && len(num) > 0 && num[0] >= '0' && num[0] <= '9' {
		switch {
		case bytes.HasPrefix(rest, []byte("FETCH ")):
			rep.fetches++
		case bytes.HasPrefix(rest, []byte("EXISTS")):
			rep.exists, _ = strconv.Atoi(string(num))
		}
		return
	}
	switch {
	case bytes.Equal(num, []byte("SEARCH")):
		rep.hits = max(rep.hits, 0) + len(bytes.Fields(rest))
	case bytes.Equal(num, []byte("VANISHED")):
		rep.vanished = true
	case bytes.Equal(num, []byte("OK")):
		if v, ok := responseCode(rest, "UIDVALIDITY"); ok {
			rep.uidValidity = uint32(v)
		}
		if v, ok := responseCode(rest, "HIGHESTMODSEQ"); ok {
			rep.highestModSeq = v
		}
	}
}

// responseCode reads "[NAME number]" at the start of an OK response's
// text.
func responseCode(text []byte, name string) (uint64, bool) {
	rest, ok := bytes.CutPrefix(text, []byte("["+name+" "))
	if !ok {
		return 0, false
	}
	digits, _, ok := bytes.Cut(rest, []byte("]"))
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(string(digits), 10, 64)
	return v, err == nil
}

// readResponse reads one response: a line, and when it ends in a literal
// the literal (discarded) and the lines that follow it. It returns the
// response's text without the literals and the number of bytes read. The
// text is valid until the next read.
func (c *client) readResponse() ([]byte, int64, error) {
	var n int64
	joined := false // the response is being gathered in c.line
	c.line = c.line[:0]
	for {
		frag, err := c.r.ReadSlice('\n')
		n += int64(len(frag))
		if errors.Is(err, bufio.ErrBufferFull) || err == nil && joined {
			if len(c.line)+len(frag) > maxLine {
				return nil, n, fmt.Errorf("response longer than %d bytes", maxLine)
			}
			c.line = append(c.line, frag...)
			joined = true
			if err != nil {
				continue
			}
		}
		if err != nil {
			return nil, n, err
		}
		line := frag
		if joined {
			line = c.line
		}
		size, ok := literalAtEnd(line)
		if !ok {
			return line, n, nil
		}
		if size > maxLiteral {
			return nil, n, fmt.Errorf("literal of %d bytes", size)
		}
		if !joined {
			c.line = append(c.line, frag...)
			joined = true
		}
		d, err := c.r.Discard(size)
		n += int64(d)
		if err != nil {
			return nil, n, err
		}
	}
}

// literalAtEnd reports the size of the literal announced at the end of
// line ("{123}\r\n", RFC 9051 §4.3).
func literalAtEnd(line []byte) (int, bool) {
	line = bytes.TrimSuffix(line, []byte("\r\n"))
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	size, err := strconv.Atoi(string(line[open+1 : len(line)-1]))
	if err != nil || size < 0 {
		return 0, false
	}
	return size, true
}

func trim(b []byte) string { return string(bytes.TrimRight(b, "\r\n")) }
