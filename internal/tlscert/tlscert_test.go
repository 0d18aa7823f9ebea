package tlscert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// ioTimeout bounds every network wait of these tests; none comes near it.
const ioTimeout = 30 * time.Second

// pair is one certificate and key, as PEM files in a directory.
type pair struct {
	certPEM, keyPEM []byte
	cert            *x509.Certificate
}

func newPair(t *testing.T, cn string) pair {
	t.Helper()
	c, k, err := SelfSigned(cn, []string{"localhost", "127.0.0.1", "::1"}, time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(c)
	if b == nil {
		t.Fatalf("SelfSigned: no PEM in %q", c)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pair{c, k, cert}
}

// write puts p's files at cert and key.
func (p pair) write(t *testing.T, cert, key string) {
	t.Helper()
	if err := os.WriteFile(key, p.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, p.certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSelfSigned(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	certPEM, keyPEM, err := SelfSigned("localhost", []string{"localhost", "127.0.0.1", "::1"}, now, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("the certificate and the key are not a pair: %v", err)
	}
	cert := pc.Leaf
	if cert.Subject.CommonName != "localhost" {
		t.Errorf("CN = %q, want localhost", cert.Subject.CommonName)
	}
	if !slices.Equal(cert.DNSNames, []string{"localhost"}) {
		t.Errorf("DNS names = %q, want [localhost]", cert.DNSNames)
	}
	if len(cert.IPAddresses) != 2 || !cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !cert.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IP addresses = %v, want 127.0.0.1 and ::1", cert.IPAddresses)
	}
	if !cert.NotAfter.Equal(now.Add(365*24*time.Hour)) || cert.NotBefore.After(now) {
		t.Errorf("valid %v..%v, want from before %v for a year", cert.NotBefore, cert.NotAfter, now)
	}
	if k, ok := pc.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", pc.PrivateKey)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("key PEM block %v, want PRIVATE KEY (PKCS #8)", b)
	}
	if cert.IsCA || cert.SerialNumber.Sign() <= 0 {
		t.Errorf("IsCA %v, serial %v: want a leaf with a positive serial", cert.IsCA, cert.SerialNumber)
	}
	// A client that trusts the certificate itself accepts it for each
	// name, and for no other.
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: now}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "example.org", CurrentTime: now}); err == nil {
		t.Error("verified for example.org")
	}
	// Two calls make two keys.
	again, _, err := SelfSigned("localhost", nil, now, time.Hour)
	if err != nil || bytes.Equal(again, certPEM) {
		t.Errorf("second SelfSigned: %v, same certificate %v", err, bytes.Equal(again, certPEM))
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	a, b := newPair(t, "a"), newPair(t, "b")

	if _, err := Load(certFile, keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load without files: %v, want ErrNotExist", err)
	}
	a.write(t, certFile, keyFile)
	s, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	current := func() string {
		c, err := s.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if c != s.Certificate() {
			t.Fatal("GetCertificate and Certificate disagree")
		}
		return c.Leaf.Subject.CommonName
	}
	if got := current(); got != "a" {
		t.Fatalf("after Load: %q, want a", got)
	}

	b.write(t, certFile, keyFile)
	c, err := s.Reload()
	if err != nil || c.Leaf.Subject.CommonName != "b" {
		t.Fatalf("Reload: %v, %v", c, err)
	}
	if got := current(); got != "b" {
		t.Fatalf("after Reload: %q, want b", got)
	}

	// Every failed Reload keeps b.
	for _, tc := range []struct {
		name       string
		cert, key  []byte
		removeCert bool
	}{
		{"garbage certificate", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"), b.keyPEM, false},
		{"empty certificate", nil, b.keyPEM, false},
		{"key of another certificate", b.certPEM, a.keyPEM, false},
		{"truncated key", b.certPEM, b.keyPEM[:len(b.keyPEM)/2], false},
		{"missing certificate", nil, b.keyPEM, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(certFile, tc.cert, 0o600)
			os.WriteFile(keyFile, tc.key, 0o600)
			if tc.removeCert {
				os.Remove(certFile)
			}
			_, err := s.Reload()
			var te *Error
			if !errors.As(err, &te) || te.Cert != certFile || te.Key != keyFile {
				t.Errorf("Reload: %v, want an *Error naming both files", err)
			}
			if got := current(); got != "b" {
				t.Errorf("after a failed Reload: %q, want b", got)
			}
		})
	}
}

// TestReloadHandshakes: a connection made before a Reload keeps working
// after it; the next handshake gets the new certificate. TLS 1.1 is
// refused.
func TestReloadHandshakes(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	a, b := newPair(t, "a"), newPair(t, "b")
	a.write(t, certFile, keyFile)
	s, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", s.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// An echo server: each connection copies what it reads back.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(ioTimeout))
				io.Copy(c, c)
			}()
		}
	}()
	pool := x509.NewCertPool()
	pool.AddCert(a.cert)
	pool.AddCert(b.cert)
	dial := func(max uint16) (*tls.Conn, error) {
		d := &net.Dialer{Timeout: ioTimeout}
		c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: max})
		if err == nil {
			c.SetDeadline(time.Now().Add(ioTimeout))
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	echo := func(c *tls.Conn, msg string) {
		t.Helper()
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo: %q, %v", buf, err)
		}
	}
	peer := func(c *tls.Conn) string { return c.ConnectionState().PeerCertificates[0].Subject.CommonName }

	old, err := dial(0)
	if err != nil {
		t.Fatal(err)
	}
	echo(old, "before")
	if got := peer(old); got != "a" {
		t.Fatalf("first connection got certificate %q, want a", got)
	}
	b.write(t, certFile, keyFile)
	if _, err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	echo(old, "after the reload")
	fresh, err := dial(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := peer(fresh); got != "b" {
		t.Fatalf("connection after the reload got certificate %q, want b", got)
	}
	echo(fresh, "new")
	if c, err := dial(tls.VersionTLS11); err == nil {
		t.Errorf("a TLS 1.1 client connected (version %x)", c.ConnectionState().Version)
	}
}
