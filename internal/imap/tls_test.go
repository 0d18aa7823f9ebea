package imap_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/testnet"
)

// serveOn serves ts's server on one more listener at addr (host:port),
// with implicit TLS when implicit, and returns the listener's address.
func serveOn(t *testing.T, ts *testServer, addr string, implicit bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		if implicit {
			done <- ts.srv.ServeTLS(ln)
		} else {
			done <- ts.srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		// Before startServer's own cleanup, which shuts down again.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ts.srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, imap.ErrServerClosed) {
			t.Errorf("Serve on %s: %v", addr, err)
		}
	})
	return ln.Addr().String()
}

// rawOver reads the greeting on c and returns a rawClient on it.
func rawOver(t *testing.T, c net.Conn) (*rawClient, string) {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c)}
	greet := rc.line()
	if !strings.HasPrefix(greet, "* OK [CAPABILITY ") {
		t.Fatalf("greeting %q", greet)
	}
	return rc, greet
}

func dialTLS(t *testing.T, addr string, pool *x509.CertPool) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: readTimeout}
	return tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
}

// startTLS runs STARTTLS on rc and makes rc speak TLS from then on.
func (rc *rawClient) startTLS(pool *x509.CertPool) {
	rc.t.Helper()
	rc.ok("STARTTLS")
	tc := tls.Client(rc.c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	tc.SetDeadline(time.Now().Add(readTimeout))
	if err := tc.Handshake(); err != nil {
		rc.t.Fatalf("TLS handshake after STARTTLS: %v", err)
	}
	tc.SetDeadline(time.Time{})
	rc.c, rc.r = tc, bufio.NewReader(tc)
}

// capsOf returns the capabilities of a greeting or of an untagged
// CAPABILITY response.
func capsOf(line string) []string {
	if i := strings.Index(line, "CAPABILITY "); i >= 0 {
		line = line[i+len("CAPABILITY "):]
	}
	line, _, _ = strings.Cut(line, "]")
	return strings.Fields(line)
}

func hasCap(caps []string, name string) bool {
	for _, c := range caps {
		if strings.EqualFold(c, name) {
			return true
		}
	}
	return false
}

// TestImplicitTLS: on a ServeTLS listener the handshake comes first,
// then the greeting, which offers AUTH=PLAIN and no STARTTLS; LOGIN
// works. A client that does not trust the certificate, and one that
// speaks plain IMAP, get nothing.
func TestImplicitTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	ts := startServer(t, func(s *imap.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	addr := serveOn(t, ts, "127.0.0.1:0", true)

	tc, err := dialTLS(t, addr, pool)
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	rc, greet := rawOver(t, tc)
	caps := capsOf(greet)
	if hasCap(caps, "STARTTLS") || hasCap(caps, "LOGINDISABLED") || !hasCap(caps, "AUTH=PLAIN") {
		t.Fatalf("greeting over TLS: %q", greet)
	}
	if _, tagged := rc.cmd("STARTTLS"); !strings.Contains(tagged, " BAD ") {
		t.Errorf("STARTTLS over TLS: %s, want BAD", tagged)
	}
	rc.ok("LOGIN alice secret")
	rc.ok("SELECT INBOX")
	rc.ok("LOGOUT")

	// Verification is real: a client without the certificate refuses it.
	if c, err := dialTLS(t, addr, x509.NewCertPool()); err == nil {
		c.Close()
		t.Error("a client that does not trust the certificate completed the handshake")
	}

	// A plain-text client gets no greeting: the server waits for a
	// ClientHello, and answers the bytes it got with a TLS alert at most.
	pc, err := net.DialTimeout("tcp", addr, readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(readTimeout))
	io.WriteString(pc, "a1 CAPABILITY\r\n")
	got, _ := io.ReadAll(pc)
	if strings.Contains(string(got), "* OK") || strings.Contains(string(got), "CAPABILITY") {
		t.Errorf("plain-text client on the TLS port got %q", got)
	}
}

// TestServeTLSWithoutConfig: ServeTLS refuses to serve without a
// certificate rather than serve plain text on a TLS port.
func TestServeTLSWithoutConfig(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := (&imap.Server{}).ServeTLS(ln); err == nil || errors.Is(err, imap.ErrServerClosed) {
		t.Fatalf("ServeTLS without TLSConfig: %v", err)
	}
}

// TestPlaintextAuthRefused: a client on a non-loopback address (in a
// network namespace of the test's own), without TLS, is told LOGINDISABLED, and LOGIN and
// AUTHENTICATE are refused without the password being asked for; after
// STARTTLS on the same connection it logs in. With AllowPlaintextAuth it
// logs in without TLS.
func TestPlaintextAuthRefused(t *testing.T) {
	ip, inside := testnet.NonLoopback(t)
	if !inside {
		return
	}
	host := ip.String()
	cert, pool := selfSigned(t)
	ts := startServer(t, func(s *imap.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	addr := serveOn(t, ts, net.JoinHostPort(host, "0"), false)
	nc, err := net.DialTimeout("tcp", addr, readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if ip := nc.LocalAddr().(*net.TCPAddr).IP; ip.IsLoopback() {
		t.Fatalf("the client's address %v is a loopback address", ip)
	}
	rc, greet := rawOver(t, nc)
	for _, caps := range [][]string{capsOf(greet), capsOf(rc.ok("CAPABILITY")[0])} {
		if !hasCap(caps, "LOGINDISABLED") || !hasCap(caps, "STARTTLS") || hasCap(caps, "AUTH=PLAIN") || hasCap(caps, "SASL-IR") {
			t.Fatalf("capabilities of a plain connection from %s: %q, want LOGINDISABLED and STARTTLS, no AUTH=PLAIN", host, caps)
		}
	}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret"))
	for _, cmd := range []string{"LOGIN alice secret", "AUTHENTICATE PLAIN " + plain, "AUTHENTICATE PLAIN"} {
		// Without an initial response the server must refuse at once,
		// not send "+" to ask for the password.
		lines, tagged := rc.cmd("%s", cmd)
		if !strings.Contains(tagged, " NO [PRIVACYREQUIRED]") || len(lines) != 0 {
			t.Errorf("%s without TLS from %s: %q %s, want NO [PRIVACYREQUIRED]", strings.Fields(cmd)[0], host, lines, tagged)
		}
	}
	if _, tagged := rc.cmd("SELECT INBOX"); !strings.Contains(tagged, " BAD ") {
		t.Errorf("SELECT after the refused logins: %s, want BAD (not logged in)", tagged)
	}
	rc.startTLS(pool)
	if caps := capsOf(rc.ok("CAPABILITY")[0]); hasCap(caps, "LOGINDISABLED") || !hasCap(caps, "AUTH=PLAIN") {
		t.Errorf("capabilities after STARTTLS: %q", caps)
	}
	rc.ok("LOGIN alice secret")
	rc.ok("SELECT INBOX")
	rc.ok("LOGOUT")

	// The same server, told to allow plain-text passwords.
	allowed := startServer(t, func(s *imap.Server) { s.AllowPlaintextAuth = true })
	nc, err = net.DialTimeout("tcp", serveOn(t, allowed, net.JoinHostPort(host, "0"), false), readTimeout)
	if err != nil {
		t.Fatal(err)
	}
	rc, greet = rawOver(t, nc)
	if caps := capsOf(greet); hasCap(caps, "LOGINDISABLED") || !hasCap(caps, "AUTH=PLAIN") {
		t.Errorf("greeting with AllowPlaintextAuth: %q", greet)
	}
	rc.ok("LOGIN alice secret")
	rc.ok("LOGOUT")
}

// TestPlaintextAuthLoopback: without TLS, a loopback client may log in.
func TestPlaintextAuthLoopback(t *testing.T) {
	ts := startServer(t)
	for _, host := range []string{"127.0.0.1", "[::1]"} {
		nc, err := net.DialTimeout("tcp", serveOn(t, ts, host+":0", false), readTimeout)
		if err != nil {
			t.Fatal(err)
		}
		rc, greet := rawOver(t, nc)
		if caps := capsOf(greet); hasCap(caps, "LOGINDISABLED") || !hasCap(caps, "AUTH=PLAIN") {
			t.Errorf("greeting on %s: %q", host, greet)
		}
		rc.ok("AUTHENTICATE PLAIN %s", base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret")))
		rc.ok("LOGOUT")
	}
}
