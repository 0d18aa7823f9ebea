package imap_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/throttle"
)

// Connections that never log in (prelogin.go): the login deadline, and
// the budget whose full state makes room instead of refusing.

// raiseNoFile raises the open-file limit of the test process to at least
// n (both ends of every connection are in this process), up to the hard
// limit; it skips the test, saying why, when the hard limit is lower.
func raiseNoFile(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("needs %d open files; the hard limit is %d", n, lim.Max)
	}
	old := lim.Cur
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lim.Cur = old
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	})
}

// loopback returns the i-th test address of 127.0.0.0/8 outside
// 127.0.0.1 (Linux routes all of 127/8 to lo; nothing is added to it).
func loopback(i int) net.IP {
	return net.IPv4(127, byte(10+i>>16), byte(i>>8), byte(i))
}

// dialFrom connects to addr from the loopback address ip.
func dialFrom(ip net.IP, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: readTimeout}
	return d.Dial("tcp", addr)
}

// flood opens n connections that never log in, per connections from
// each of n/per loopback addresses, and returns them; they are closed
// at the end of the test.
func flood(t *testing.T, addr string, n, per int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialFrom(loopback(i/per), addr)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatalf("dialing the flood: %v", err)
	}
	return conns
}

// timedLogin connects from 127.0.0.1 and logs in as alice, and returns
// the greeting, the tagged answer to LOGIN and the time both took.
func timedLogin(t *testing.T, addr string) (greeting, tagged string, took time.Duration) {
	t.Helper()
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c)}
	greeting = rc.line()
	if !strings.HasPrefix(greeting, "* OK ") {
		return greeting, "", time.Since(start)
	}
	_, tagged = rc.cmd("LOGIN alice secret")
	return greeting, tagged, time.Since(start)
}

// TestPreLoginFlood is the attack of issue 11: 3,000 connections that
// never log in, from 150 addresses (per-address limits do not help),
// against the default ratio of the limits (2,000 connections, 20 per
// address); then a legitimate client connects and logs in, once with
// the flood sitting idle and once while the attacker reconnects as fast
// as it can. The old server answered BYE Too many connections.
func TestPreLoginFlood(t *testing.T) {
	const (
		attackers = 3000
		perAddr   = 20
	)
	raiseNoFile(t, 4*attackers+1000)
	ts := startServer(t, func(s *imap.Server) {
		s.MaxConnections = 2000
		s.MaxConnectionsPerIP = perAddr
	})
	conns := flood(t, ts.addr, attackers, perAddr)

	greeting, tagged, took := timedLogin(t, ts.addr)
	t.Logf("login with %d idle connections not logged in: %v (greeting %q)", attackers, took, greeting)
	if !strings.HasPrefix(greeting, "* OK ") || !strings.Contains(tagged, " OK ") {
		t.Fatalf("greeting %q, LOGIN %q; want OK and OK", greeting, tagged)
	}

	// The attacker closes and reopens its connections as fast as it can
	// while the client logs in.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	redials := 0
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i = (i + 16) % attackers {
				conns[i].Close()
				c, err := dialFrom(loopback(i/perAddr), ts.addr)
				if err != nil {
					continue
				}
				conns[i] = c
				mu.Lock()
				redials++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // the churn is under way
	greeting, tagged, took = timedLogin(t, ts.addr)
	cancel()
	wg.Wait()
	t.Logf("login while the attacker reconnected (%d reconnections): %v", redials, took)
	if !strings.HasPrefix(greeting, "* OK ") || !strings.Contains(tagged, " OK ") {
		t.Fatalf("during the churn: greeting %q, LOGIN %q; want OK and OK", greeting, tagged)
	}
	if n := ts.srv.EvictedConnections.Load(); n == 0 {
		t.Errorf("no connection was closed to make room")
	}
}

// greetFrom connects from ip and returns the greeting and the client.
func greetFrom(t *testing.T, ip net.IP, addr string) (string, *rawClient) {
	t.Helper()
	c, err := dialFrom(ip, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c)}
	return rc.line(), rc
}

// closedWith checks that the server says "* BYE "+text to rc next and
// then closes the connection.
func closedWith(t *testing.T, rc *rawClient, text string) {
	t.Helper()
	if l := rc.line(); l != "* BYE "+text {
		t.Fatalf("got %q, want BYE %s", l, text)
	}
	rc.c.SetReadDeadline(time.Now().Add(readTimeout))
	if rest, err := io.ReadAll(rc.r); err != nil || len(rest) > 0 {
		t.Errorf("after the BYE: %q, %v; want the end", rest, err)
	}
}

// TestPreLoginVictims pins who makes room when the budget is full: an
// address's own oldest over its share, never a connection whose
// password is being checked, unknown addresses before known ones, the
// address holding the most before the others, the oldest last.
func TestPreLoginVictims(t *testing.T) {
	t.Run("own share", func(t *testing.T) {
		ts := startServer(t, func(s *imap.Server) { s.MaxUnauthenticatedPerIP = 2 })
		_, first := greetFrom(t, loopback(1), ts.addr)
		_, second := greetFrom(t, loopback(1), ts.addr)
		_, other := greetFrom(t, loopback(2), ts.addr)
		if l, _ := greetFrom(t, loopback(1), ts.addr); !strings.HasPrefix(l, "* OK ") {
			t.Fatalf("third connection from one address: %q", l)
		}
		closedWith(t, first, "Connection queue full")
		second.ok("NOOP")
		other.ok("NOOP")
	})
	t.Run("most connections first", func(t *testing.T) {
		ts := startServer(t, func(s *imap.Server) { s.MaxUnauthenticated = 4 })
		_, lone := greetFrom(t, loopback(1), ts.addr) // the oldest
		var crowd []*rawClient
		for range 3 {
			_, rc := greetFrom(t, loopback(2), ts.addr)
			crowd = append(crowd, rc)
		}
		greetFrom(t, loopback(3), ts.addr)
		closedWith(t, crowd[0], "Connection queue full")
		lone.ok("LOGIN alice secret")
	})
	t.Run("known address last", func(t *testing.T) {
		ts := startServer(t, func(s *imap.Server) {
			s.MaxUnauthenticated = 3
			s.Throttle = &throttle.Throttle{}
		})
		_, rc := greetFrom(t, loopback(1), ts.addr)
		rc.ok("LOGIN alice secret")
		logout(rc)
		_, known := greetFrom(t, loopback(1), ts.addr)   // the oldest, known
		_, unknown := greetFrom(t, loopback(2), ts.addr) // the oldest unknown
		greetFrom(t, loopback(3), ts.addr)
		greetFrom(t, loopback(4), ts.addr)
		closedWith(t, unknown, "Connection queue full")
		greetFrom(t, loopback(5), ts.addr)
		known.ok("LOGIN alice secret")
		// Without the login before, the oldest goes first.
		_, stranger := greetFrom(t, loopback(6), ts.addr)
		greetFrom(t, loopback(7), ts.addr)
		greetFrom(t, loopback(8), ts.addr)
		greetFrom(t, loopback(9), ts.addr)
		closedWith(t, stranger, "Connection queue full")
	})
	t.Run("password check", func(t *testing.T) {
		gate := &gatedBackend{entered: make(chan struct{}), release: make(chan struct{})}
		ts := startServer(t, func(s *imap.Server) {
			gate.Backend = s.Backend
			s.Backend = gate
			s.MaxUnauthenticated = 1
		})
		_, rc := greetFrom(t, loopback(1), ts.addr)
		tag := rc.send("LOGIN alice secret")
		<-gate.entered
		// The only pre-login connection is checking its password: a new
		// one finds nothing to close and is refused.
		if l, _ := greetFrom(t, loopback(2), ts.addr); l != "* BYE Too many connections; try again later" {
			t.Errorf("while the only connection logs in: %q, want BYE", l)
		}
		close(gate.release)
		if _, tagged := rc.until(tag); !strings.Contains(tagged, " OK ") {
			t.Fatalf("LOGIN: %s", tagged)
		}
		// Logged in, it no longer counts.
		if l, _ := greetFrom(t, loopback(2), ts.addr); !strings.HasPrefix(l, "* OK ") {
			t.Errorf("after the login: %q", l)
		}
	})
}

// gatedBackend holds every Login until release is closed, and tells
// entered of the first.
type gatedBackend struct {
	imap.Backend
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (b *gatedBackend) Login(ctx context.Context, user, pass string) (imap.User, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return b.Backend.Login(ctx, user, pass)
}

// TestLoginTimeout: a client must log in within LoginTimeout of its
// connect, whatever it sends meanwhile (slowloris); after login the
// timeout no longer applies.
func TestLoginTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	cert, pool := selfSigned(t)
	ts := startServer(t, func(s *imap.Server) {
		s.LoginTimeout = timeout
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	bye := "Disconnected for inactivity."
	t.Run("idle", func(t *testing.T) {
		rc := dialRaw(t, ts)
		closedWith(t, rc, bye)
	})
	t.Run("a byte at a time", func(t *testing.T) {
		rc := dialRaw(t, ts)
		stop := make(chan struct{})
		done := make(chan int)
		go func() {
			// Each byte comes well within any per-read deadline.
			line := []byte("a1 LOGIN alice secret\r\n")
			sent := 0
			defer func() { done <- sent }()
			for _, b := range line {
				select {
				case <-stop:
					return
				case <-time.After(timeout / 10):
				}
				if _, err := rc.c.Write([]byte{b}); err != nil {
					return
				}
				sent++
			}
		}()
		l := rc.line()
		close(stop)
		sent := <-done
		if l != "* BYE "+bye {
			t.Fatalf("got %q after %d bytes, want BYE", l, sent)
		}
	})
	t.Run("literal never sent", func(t *testing.T) {
		rc := dialRaw(t, ts)
		rc.send("LOGIN {5}")
		if l := rc.line(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("got %q, want the continuation", l)
		}
		closedWith(t, rc, bye)
	})
	t.Run("authenticate exchange", func(t *testing.T) {
		rc := dialRaw(t, ts)
		rc.send("AUTHENTICATE PLAIN")
		if l := rc.line(); !strings.HasPrefix(l, "+") {
			t.Fatalf("got %q, want the continuation", l)
		}
		closedWith(t, rc, bye)
	})
	t.Run("starttls handshake", func(t *testing.T) {
		rc := dialRaw(t, ts)
		rc.ok("STARTTLS")
		// No handshake: the connection ends at the deadline, without a
		// BYE (nothing can be said in clear text now).
		rc.c.SetReadDeadline(time.Now().Add(readTimeout))
		if rest, err := io.ReadAll(rc.r); err != nil || len(rest) > 0 {
			t.Errorf("after STARTTLS without a handshake: %q, %v; want the end", rest, err)
		}
	})
	t.Run("after STARTTLS", func(t *testing.T) {
		rc := dialRaw(t, ts)
		rc.startTLS(pool)
		closedWith(t, rc, bye)
	})
	t.Run("logged in", func(t *testing.T) {
		rc := loginRaw(t, ts, "alice")
		time.Sleep(2 * timeout)
		rc.ok("NOOP")
	})
	if n := ts.srv.LoginTimeouts.Load(); n < 6 {
		t.Errorf("LoginTimeouts = %d, want at least 6", n)
	}
}

// TestLoginTimeoutImplicitTLS: a client that never completes the
// handshake of implicit TLS is closed at the login deadline, before the
// 30 s of the handshake's own bound.
func TestLoginTimeoutImplicitTLS(t *testing.T) {
	cert, _ := selfSigned(t)
	ts := startServer(t, func(s *imap.Server) {
		s.LoginTimeout = 300 * time.Millisecond
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	addr := serveOn(t, ts, "127.0.0.1:0", true)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(readTimeout))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("waiting for the server to close: %v", err)
	}
	t.Logf("closed after %v", time.Since(start))
	if n := ts.srv.LoginTimeouts.Load(); n != 1 {
		t.Errorf("LoginTimeouts = %d, want 1", n)
	}
}
