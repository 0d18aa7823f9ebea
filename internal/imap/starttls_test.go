package imap_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/imap"
)

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cistern test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestStartTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	ts := startServer(t, func(s *imap.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	rc := dialRaw(t, ts)
	lines := rc.ok("CAPABILITY")
	if len(lines) != 1 || !strings.Contains(lines[0], " STARTTLS") {
		t.Fatalf("STARTTLS not offered: %q", lines)
	}
	rc.ok("STARTTLS")
	tc := tls.Client(rc.c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	rc.c, rc.r = tc, bufio.NewReader(tc)
	lines = rc.ok("CAPABILITY")
	if strings.Contains(lines[0], "STARTTLS") || !strings.Contains(lines[0], "AUTH=PLAIN") {
		t.Fatalf("capabilities after TLS: %q", lines)
	}
	_, tagged := rc.cmd("STARTTLS")
	if !strings.Contains(tagged, "BAD") {
		t.Fatalf("second STARTTLS: %s", tagged)
	}
	rc.ok("LOGIN alice secret")
	rc.ok("SELECT INBOX")
	rc.ok("LOGOUT")
}

// TestStartTLSInjection: a command sent in plain text behind STARTTLS,
// before the handshake, is never run.
func TestStartTLSInjection(t *testing.T) {
	cert, _ := selfSigned(t)
	ts := startServer(t, func(s *imap.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	})
	rc := dialRaw(t, ts)
	rc.c.Write([]byte("a1 STARTTLS\r\na2 LOGIN alice secret\r\n"))
	l := rc.line()
	if !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("got %q, want BYE", l)
	}
	if rest, err := rc.r.ReadString('\n'); err == nil && strings.Contains(rest, "a2 OK") {
		t.Fatalf("the injected command ran: %q", rest)
	}
}

// TestStartTLSNotConfigured: without a certificate STARTTLS is neither
// offered nor accepted.
func TestStartTLSNotConfigured(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts)
	if lines := rc.ok("CAPABILITY"); strings.Contains(lines[0], "STARTTLS") {
		t.Fatalf("offered without a certificate: %q", lines)
	}
	if _, tagged := rc.cmd("STARTTLS"); !strings.Contains(tagged, "NO") {
		t.Fatalf("STARTTLS without a certificate: %s", tagged)
	}
}

// TestStateErrorsNameTheReason: a command refused in the session's state
// says why (logged in already, TLS already active, no mailbox selected),
// never a state that is not the reason (STARTTLS after login was once
// refused "without a selected mailbox").
func TestStateErrorsNameTheReason(t *testing.T) {
	cert, pool := selfSigned(t)
	ts := startServer(t, func(s *imap.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	want := func(rc *rawClient, cmd, text string) {
		t.Helper()
		_, tagged := rc.cmd("%s", cmd)
		if !strings.Contains(tagged, " BAD ") || !strings.Contains(tagged, text) {
			t.Errorf("%s: %q, want BAD saying %q", cmd, tagged, text)
		}
	}
	rc := dialRaw(t, ts)
	want(rc, "FETCH 1 FLAGS", "FETCH is not allowed before logging in")
	rc.ok("LOGIN alice secret")
	want(rc, "STARTTLS", "STARTTLS is not allowed: already logged in")
	want(rc, "LOGIN alice secret", "LOGIN is not allowed: already logged in")
	want(rc, "AUTHENTICATE PLAIN", "AUTHENTICATE is not allowed: already logged in")
	want(rc, "FETCH 1 FLAGS", "FETCH is not allowed without a selected mailbox")
	rc.ok("SELECT INBOX")
	want(rc, "STARTTLS", "STARTTLS is not allowed: already logged in")
	want(rc, "LOGIN alice secret", "LOGIN is not allowed: already logged in")

	tc := dialRaw(t, ts)
	tc.ok("STARTTLS")
	c := tls.Client(tc.c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	tc.c, tc.r = c, bufio.NewReader(c)
	tc.ok("LOGIN alice secret")
	want(tc, "STARTTLS", "TLS is already active")
	for _, s := range []string{"without a selected mailbox", "with a mailbox selected"} {
		_, tagged := tc.cmd("LOGIN alice secret")
		if strings.Contains(tagged, s) {
			t.Errorf("LOGIN after login: %q names the mailbox state", tagged)
		}
	}
}
