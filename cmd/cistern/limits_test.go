package main

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/config"
	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/throttle"
)

// TestLimitIMAP: the configuration's limits and throttle reach the
// server, the defaults when the file sets none.
func TestLimitIMAP(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	srv := limitIMAP(&imap.Server{}, &config.Config{}, logger)
	if srv.MaxConnections != config.DefaultMaxConnections || srv.MaxConnectionsPerIP != config.DefaultMaxConnectionsPerIP ||
		srv.MaxConnectionsPerUser != config.DefaultMaxConnectionsPerUser || srv.Limits.MaxDepth != config.DefaultMaxNesting ||
		srv.Limits.MaxLiteralsPerCommand != config.DefaultMaxLiteralsPerCommand {
		t.Errorf("defaults: %+v", srv)
	}
	p := srv.Throttle.Policy
	want := throttle.Policy{BaseDelay: throttle.DefaultBaseDelay, MaxDelay: throttle.DefaultMaxDelay, Window: throttle.DefaultWindow,
		MaxAddrFailures: throttle.DefaultMaxAddrFailures, MaxUserFailures: throttle.DefaultMaxUserFailures,
		Penalty: throttle.DefaultPenalty, MaxKeys: throttle.DefaultMaxKeys}
	if p.BaseDelay != want.BaseDelay || p.MaxDelay != want.MaxDelay || p.Window != want.Window || p.MaxAddrFailures != want.MaxAddrFailures ||
		p.MaxUserFailures != want.MaxUserFailures || p.Penalty != want.Penalty || p.MaxKeys != want.MaxKeys || len(p.Exempt) != 0 {
		t.Errorf("default policy %+v, want package throttle's defaults %+v", p, want)
	}

	cfg := &config.Config{
		IMAP: config.IMAP{MaxConnections: 7, MaxConnectionsPerIP: 3, MaxConnectionsPerUser: 2, MaxNesting: 9, MaxLiteralsPerCommand: 4},
		Throttle: config.Throttle{Delay: time.Second, MaxDelay: 2 * time.Second, Window: time.Hour, MaxFailuresPerIP: 5,
			MaxFailuresPerUser: 6, Penalty: time.Minute, MaxTracked: 1000, ExemptNetworks: []string{"10.0.0.0/8"}},
	}
	srv = limitIMAP(&imap.Server{}, cfg, logger)
	if srv.MaxConnections != 7 || srv.MaxConnectionsPerIP != 3 || srv.MaxConnectionsPerUser != 2 || srv.Limits.MaxDepth != 9 || srv.Limits.MaxLiteralsPerCommand != 4 {
		t.Errorf("set: %+v", srv)
	}
	p = srv.Throttle.Policy
	if p.BaseDelay != time.Second || p.MaxDelay != 2*time.Second || p.Window != time.Hour || p.MaxAddrFailures != 5 ||
		p.MaxUserFailures != 6 || p.Penalty != time.Minute || p.MaxKeys != 1000 || !slices.Equal(p.Exempt, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}) {
		t.Errorf("set policy %+v", p)
	}
}

// TestServeLimits: a configured server logs failed logins with the
// address and the user name, and refuses a connection over
// imap.max_connections_per_ip when the ones it has are logged in.
func TestServeLimits(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	writePasswd(t, passwd, auth.User{Name: "alice"})
	cfg := filepath.Join(dir, "cistern.toml")
	toml := "data_dir = \"" + dir + "/data\"\n" +
		"mail_location = \"" + dir + "/mail/%u/Maildir\"\n" +
		"passwd_file = \"" + passwd + "\"\n" +
		"[imap]\nlisten = [\"127.0.0.1:0\"]\nmax_connections_per_ip = 1\n" +
		"[throttle]\ndelay = \"1ms\"\n"
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startServe(t, "--config", cfg)

	dial := func() (net.Conn, *bufio.Reader, string) {
		nc, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(serveStartTimeout))
		br := bufio.NewReader(nc)
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("greeting: %v", err)
		}
		return nc, br, strings.TrimRight(l, "\r\n")
	}
	nc, br, greeting := dial()
	if !strings.HasPrefix(greeting, "* OK ") {
		t.Fatalf("first connection: %q", greeting)
	}
	io.WriteString(nc, "a1 LOGIN alice wrong\r\n")
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "a1 NO [AUTHENTICATIONFAILED]") {
		t.Errorf("wrong password: %q", l)
	}
	found := false
	for !found {
		select {
		case l, ok := <-r.errOut:
			if !ok {
				t.Fatal("log ended without the failed login")
			}
			found = strings.Contains(l, `msg="login failed"`) && strings.Contains(l, "remote=127.0.0.1:") && strings.Contains(l, "user=alice")
		case <-time.After(serveStartTimeout):
			t.Fatal("no log line for the failed login")
		}
	}
	// Logged in, the first connection is no longer one that a new
	// connection may close to make room (imap/prelogin.go): the second
	// is refused.
	io.WriteString(nc, "a2 LOGIN alice secret\r\n")
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "a2 OK") {
		t.Fatalf("login: %q", l)
	}
	_, second, refused := dial()
	if refused != "* BYE Too many connections from your address" {
		t.Errorf("second connection: %q, want BYE", refused)
	}
	if rest, _ := io.ReadAll(second); len(rest) > 0 {
		t.Errorf("after BYE: %q", rest)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}
