package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/testnet"
	"github.com/cistern-mail/cistern/internal/tlscert"
)

// trusting returns a client configuration that trusts only the
// certificates in the PEM file at path, for the name server.
func trusting(t *testing.T, path, server string) *tls.Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("%s holds no certificate", path)
	}
	return &tls.Config{RootCAs: pool, ServerName: server}
}

// peerName dials addr with implicit TLS, verifying with cfg, and returns
// the common name of the certificate the server presented.
func peerName(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: eventTimeout}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// lmtpStartTLS says LHLO on addr, checks that STARTTLS is offered, and
// completes it, verifying with cfg.
func lmtpStartTLS(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, eventTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(eventTimeout))
	r := bufio.NewReader(nc)
	fmt.Fprintf(nc, "LHLO test\r\n")
	offered := false
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("LMTP: %q, %v", l, err)
		}
		offered = offered || strings.TrimSpace(l) == "250-STARTTLS" || strings.TrimSpace(l) == "250 STARTTLS"
		if strings.HasPrefix(l, "250 ") || !strings.HasPrefix(l, "2") {
			break
		}
	}
	if !offered {
		t.Fatalf("LMTP on %s does not offer STARTTLS", addr)
	}
	fmt.Fprintf(nc, "STARTTLS\r\n")
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "220 ") {
		t.Fatalf("STARTTLS: %q, %v", l, err)
	}
	return tls.Client(nc, cfg).Handshake()
}

// TestServeDemoTLS: the demo makes a self-signed certificate on its
// first start, private and durable, and serves it with STARTTLS and on
// its implicit-TLS listener, to clients that trust that file; later
// starts keep it, and one that is missing, broken or about to expire is
// replaced.
func TestServeDemoTLS(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--demo", "--demo-dir", dir, "--listen", "127.0.0.1:0", "--demo-lmtp", "127.0.0.1:0", "--demo-tls-listen", "127.0.0.1:0"}
	r := startServe(t, args...)
	out := demoLines(t, r.before)
	if out.cert != filepath.Join(dir, demoCertFile) || out.tlsAddr == "" {
		t.Fatalf("demo output %+v, want the certificate %s and a TLS address", out, filepath.Join(dir, demoCertFile))
	}
	lmtpAddr := nextLine(t, r.out, regexp.MustCompile(`^lmtp listening: (\S+)$`))[1]
	keyPath := filepath.Join(dir, demoKeyFile)
	for _, p := range []string{out.cert, keyPath} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want mode 0600", p, err, fi.Mode())
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(tmp) != 0 {
		t.Errorf("temporary files left behind: %q", tmp)
	}
	pair, err := tls.LoadX509KeyPair(out.cert, keyPath)
	if err != nil {
		t.Fatalf("the demo's certificate and key: %v", err)
	}
	leaf := pair.Leaf
	if k, ok := pair.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", pair.PrivateKey)
	}
	if leaf.Subject.CommonName != "localhost" || fmt.Sprint(leaf.DNSNames) != "[localhost]" || fmt.Sprint(leaf.IPAddresses) != "[127.0.0.1 ::1]" {
		t.Errorf("certificate for CN %q, DNS %v, IP %v; want localhost, 127.0.0.1, ::1", leaf.Subject.CommonName, leaf.DNSNames, leaf.IPAddresses)
	}
	if d := leaf.NotAfter.Sub(time.Now()); d < demoCertValidity-time.Hour || d > demoCertValidity {
		t.Errorf("certificate valid until %v, want a year from now", leaf.NotAfter)
	}

	for _, name := range []string{"localhost", "127.0.0.1"} {
		cfg := trusting(t, out.cert, name)
		tc, err := imapclient.DialTLS(out.tlsAddr, &imapclient.Options{TLSConfig: cfg})
		if err != nil {
			t.Fatalf("implicit TLS as %s: %v", name, err)
		}
		if got := inbox(t, tc, "demo", out.password); len(got) != 1 {
			t.Errorf("INBOX over implicit TLS: %q", got)
		}
		tc.Close()
		sc, err := imapclient.DialStartTLS(out.addr, &imapclient.Options{TLSConfig: cfg})
		if err != nil {
			t.Fatalf("STARTTLS as %s: %v", name, err)
		}
		if got := inbox(t, sc, "demo", out.password); len(got) != 1 {
			t.Errorf("INBOX after STARTTLS: %q", got)
		}
		sc.Close()
	}
	if c, err := imapclient.DialTLS(out.tlsAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}}); err == nil {
		c.Close()
		t.Error("a client that does not trust the certificate connected")
	}
	if err := lmtpStartTLS(t, lmtpAddr, trusting(t, out.cert, "localhost")); err != nil {
		t.Errorf("LMTP STARTTLS: %v", err)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	certPEM, err := os.ReadFile(out.cert)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T)
		same    bool
	}{
		{"kept", func(t *testing.T) {}, true},
		{"missing", func(t *testing.T) { os.Remove(out.cert) }, false},
		{"broken", func(t *testing.T) { os.WriteFile(keyPath, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600) }, false},
		{"expiring", func(t *testing.T) {
			c, k, err := tlscert.SelfSigned("localhost", demoCertHosts, time.Now(), demoCertRenew/2)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(keyPath, k, 0o600)
			os.WriteFile(out.cert, c, 0o600)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.prepare(t)
			before, _ := os.ReadFile(out.cert)
			r := startServe(t, args...)
			again := demoLines(t, r.before)
			after, err := os.ReadFile(again.cert)
			if err != nil {
				t.Fatal(err)
			}
			if tc.same != bytes.Equal(after, certPEM) || (!tc.same && bytes.Equal(after, before)) {
				t.Errorf("certificate kept: %v, want %v", bytes.Equal(after, certPEM), tc.same)
			}
			certPEM = after
			if got := peerName(t, again.tlsAddr, trusting(t, again.cert, "localhost")); got != "localhost" {
				t.Errorf("served %q", got)
			}
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// writePair writes a new self-signed certificate named cn, for
// localhost, and its key.
func writePair(t *testing.T, cn, certPath, keyPath string) {
	t.Helper()
	c, k, err := tlscert.SelfSigned(cn, []string{"localhost"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, k, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, c, 0o600); err != nil {
		t.Fatal(err)
	}
}

// drain empties ch of the lines read so far, so that the next awaited
// line finds room in its buffer.
func drain(ch <-chan string) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// TestServeConfigTLSReload: a configured server serves tls.cert with
// implicit TLS, STARTTLS and LMTP STARTTLS; on SIGHUP it serves a new
// certificate to new connections while a session made before goes on,
// and a broken certificate file leaves the one in force.
func TestServeConfigTLSReload(t *testing.T) {
	// The test process keeps SIGHUP from killing it even when no server
	// listens for it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	writePasswd(t, passwd, auth.User{Name: "alice"})
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePair(t, "first", certPath, keyPath)
	firstCert, _ := os.ReadFile(certPath)
	// Both certificates are trusted: the test looks at which one is
	// presented.
	trustBoth := trusting(t, certPath, "localhost")
	cfg := filepath.Join(dir, "cistern.toml")
	toml := fmt.Sprintf(`data_dir = %q
mail_location = %q
passwd_file = %q
[imap]
listen = ["127.0.0.1:0"]
listen_tls = ["127.0.0.1:0"]
[lmtp]
listen = ["127.0.0.1:0"]
[tls]
cert = %q
key = %q
`, dir+"/data", dir+"/mail/%u/Maildir", passwd, certPath, keyPath)
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}

	r := startServe(t, "--config", cfg)
	tlsAddr := nextLine(t, r.errOut, regexp.MustCompile(`msg="imap: listening with implicit TLS" addr=(\S+)`))[1]
	lmtpAddr := nextLine(t, r.errOut, regexp.MustCompile(`msg="lmtp: listening" addr=(\S+)`))[1]

	if got := peerName(t, tlsAddr, trustBoth); got != "first" {
		t.Fatalf("implicit TLS presents %q, want first", got)
	}
	if err := lmtpStartTLS(t, lmtpAddr, trustBoth); err != nil {
		t.Fatalf("LMTP STARTTLS: %v", err)
	}
	old, err := imapclient.DialTLS(tlsAddr, &imapclient.Options{TLSConfig: trustBoth})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if got := inbox(t, old, "alice", "secret"); len(got) != 0 {
		t.Fatalf("alice's INBOX: %q", got)
	}
	starttls, err := imapclient.DialStartTLS(r.addr, &imapclient.Options{TLSConfig: trustBoth})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer starttls.Close()
	if err := starttls.Login("alice", "secret").Wait(); err != nil {
		t.Fatalf("LOGIN after STARTTLS: %v", err)
	}

	hangup := func(want *regexp.Regexp) {
		t.Helper()
		drain(r.errOut)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		nextLine(t, r.errOut, want)
	}
	writePair(t, "second", certPath, keyPath)
	secondCert, _ := os.ReadFile(certPath)
	trustBoth.RootCAs.AppendCertsFromPEM(secondCert)
	hangup(regexp.MustCompile(`msg="tls: certificate reloaded".*subject="?CN=second`))
	if got := peerName(t, tlsAddr, trustBoth); got != "second" {
		t.Errorf("after SIGHUP implicit TLS presents %q, want second", got)
	}
	// The sessions made with the first certificate go on.
	if err := old.Noop().Wait(); err != nil {
		t.Errorf("NOOP on the implicit-TLS session from before the reload: %v", err)
	}
	if _, err := old.Select("INBOX", nil).Wait(); err != nil {
		t.Errorf("SELECT on the session from before the reload: %v", err)
	}
	if _, err := starttls.Select("INBOX", nil).Wait(); err != nil {
		t.Errorf("SELECT on the STARTTLS session from before the reload: %v", err)
	}

	// A certificate file being rewritten (here: the first half of one)
	// does not load: the second certificate stays.
	if err := os.WriteFile(certPath, firstCert[:len(firstCert)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	hangup(regexp.MustCompile(`msg="tls: reload failed; the certificate in force stays"`))
	if got := peerName(t, tlsAddr, trustBoth); got != "second" {
		t.Errorf("after a failed reload implicit TLS presents %q, want second", got)
	}
	if err := lmtpStartTLS(t, lmtpAddr, trustBoth); err != nil {
		t.Errorf("LMTP STARTTLS after a failed reload: %v", err)
	}
	if err := old.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT of the old session: %v", err)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// TestServeConfigPlaintextAuth: from a non-loopback address (in a
// network namespace of the test's own), a plain connection is told LOGINDISABLED and its LOGIN is
// refused, until imap.allow_plaintext_auth says otherwise.
func TestServeConfigPlaintextAuth(t *testing.T) {
	ip, inside := testnet.NonLoopback(t)
	if !inside {
		return
	}
	host := ip.String()
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	writePasswd(t, passwd, auth.User{Name: "alice"})
	cfg := filepath.Join(dir, "cistern.toml")
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow_plaintext_auth=%v", allow), func(t *testing.T) {
			toml := fmt.Sprintf("data_dir = %q\nmail_location = %q\npasswd_file = %q\n[imap]\nlisten = [%q]\nallow_plaintext_auth = %v\n",
				dir+"/data", dir+"/mail/%u/Maildir", passwd, net.JoinHostPort(host, "0"), allow)
			if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
				t.Fatal(err)
			}
			r := startServe(t, "--config", cfg)
			c := dialIMAP(t, r.addr)
			if err := c.WaitGreeting(); err != nil {
				t.Fatal(err)
			}
			caps := c.Caps()
			if _, disabled := caps["LOGINDISABLED"]; disabled == allow {
				t.Errorf("LOGINDISABLED advertised: %v, want %v (capabilities %v)", disabled, !allow, caps)
			}
			err := c.Login("alice", "secret").Wait()
			if allow && err != nil {
				t.Errorf("LOGIN allowed without TLS: %v", err)
			}
			if !allow && (err == nil || !strings.Contains(err.Error(), "PRIVACYREQUIRED")) {
				t.Errorf("LOGIN without TLS from %s: %v, want NO [PRIVACYREQUIRED]", host, err)
			}
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}
