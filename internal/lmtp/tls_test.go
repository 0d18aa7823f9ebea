package lmtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/tlscert"
)

// testCert makes a certificate for localhost and a pool that trusts it.
func testCert(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM, err := tlscert.SelfSigned("localhost", []string{"localhost", "127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, pool
}

// TestStartTLS: over TCP the server offers STARTTLS; a client that
// verifies the certificate switches to TLS, says LHLO again and
// delivers; a session that stays idle over TLS is closed by Shutdown. On
// a unix socket STARTTLS is neither offered nor accepted.
func TestStartTLS(t *testing.T) {
	cfg, pool := testCert(t)
	ts := startServer(t, func(s *Server) { s.TLSConfig = cfg })

	// startTLS says LHLO, checks that STARTTLS is offered, and switches
	// to TLS, trusting pool.
	startTLS := func(pool *x509.CertPool) (*tls.Conn, error) {
		rc := ts.rawOn(t, "tcp", ts.addr)
		if !rc.lhlo()["STARTTLS"] {
			t.Fatal("STARTTLS not offered over TCP")
		}
		rc.send("STARTTLS\r\n")
		rc.expect("220 ")
		tc := tls.Client(rc.c, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		return tc, tc.Handshake()
	}
	// A client that does not trust the certificate gives up.
	if _, err := startTLS(x509.NewCertPool()); err == nil {
		t.Error("the handshake verified a certificate the client does not trust")
	}

	tc, err := startTLS(pool)
	if err != nil {
		t.Fatalf("TLS handshake after STARTTLS: %v", err)
	}
	if v := tc.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Fatalf("TLS version %x", v)
	}
	// go-smtp's client reads a greeting first, which does not come
	// after STARTTLS: the rest is by hand.
	rc := &rawConn{t: t, c: tc, r: bufio.NewReader(tc)}
	if ext := rc.lhlo(); ext["STARTTLS"] || !ext["PIPELINING"] {
		t.Errorf("LHLO over TLS: extensions %v, want PIPELINING and no STARTTLS", ext)
	}
	rc.begin("good")
	rc.send("Subject: over TLS\r\n\r\nhello\r\n.\r\n")
	rc.expect("250 2.0.0")
	if got := messages(t, ts.root("good")); len(got) != 1 || !strings.Contains(got[0], "Subject: over TLS") {
		t.Errorf("good's mailbox: %q", got)
	}

	sock := filepath.Join(t.TempDir(), "lmtp")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.srv.Serve(ln) }()
	unix := ts.rawOn(t, "unix", sock)
	if ext := unix.lhlo(); ext["STARTTLS"] || !ext["PIPELINING"] {
		t.Errorf("LHLO on a unix socket: extensions %v, want PIPELINING and no STARTTLS", ext)
	}
	unix.send("STARTTLS\r\n")
	unix.expect("502 ")

	// Shutdown closes the TLS session, which is between transactions,
	// without waiting for its context to end.
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with an idle TLS session: %v", err)
	}
	if l, err := rc.r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Errorf("the TLS session after Shutdown: read %q, %v; want the end of the connection", l, err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve on the socket: %v", err)
	}
}

// lhlo says LHLO and returns the extensions of the reply.
func (rc *rawConn) lhlo() map[string]bool {
	rc.t.Helper()
	rc.send("LHLO mta.test\r\n")
	ext := map[string]bool{}
	for first := true; ; first = false {
		l, err := rc.r.ReadString('\n')
		if err != nil || len(l) < 4 || l[:3] != "250" {
			rc.t.Fatalf("LHLO: %q, %v", l, err)
		}
		if !first {
			ext[strings.Fields(l[4:])[0]] = true
		}
		if l[3] == ' ' {
			return ext
		}
	}
}

// rawOn dials network/addr and reads the greeting.
func (ts *testServer) rawOn(t *testing.T, network, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	rc := &rawConn{t: t, c: c, r: bufio.NewReader(c)}
	rc.expect("220 ")
	return rc
}
