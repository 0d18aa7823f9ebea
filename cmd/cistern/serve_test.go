package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cistern-mail/cistern/internal/auth"
)

func init() {
	// bcrypt at cost 12 takes seconds under -race; the cost is not what
	// these tests are about.
	demoHashOptions = auth.HashOptions{BcryptCost: 4}
}

// Bounds of the waits in these tests.
const (
	serveStartTimeout = 60 * time.Second
	serveStopTimeout  = 15 * time.Second // more than shutdownTimeout
)

// serveRun is one `cistern serve` running in a goroutine.
type serveRun struct {
	cancel context.CancelFunc
	done   chan error
	out    chan string    // stdout, line by line; closed at the end
	errOut chan string    // stderr, line by line; closed at the end
	before []string       // stdout lines up to the "listening:" line
	reads  sync.WaitGroup // the readers of stdout and stderr
	addr   string         // from the "listening:" line (demo) or the log
}

// startServe runs `cistern serve args...` and waits until it listens,
// which the demo says on stdout and the configured server in its log.
func startServe(t *testing.T, args ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &serveRun{cancel: cancel, done: make(chan error, 1), out: make(chan string, 100), errOut: make(chan string, 100)}
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	go func() {
		err := Run(ctx, append([]string{"serve"}, args...), Stdio{In: strings.NewReader(""), Out: outW, Err: errW})
		outW.Close()
		errW.Close()
		r.done <- err
	}()
	// Readers drain the pipes to the end, so that the server never blocks
	// on a write nobody reads.
	lines := func(rd io.Reader, ch chan string, logged bool) {
		sc := bufio.NewScanner(rd)
		for sc.Scan() {
			if logged {
				t.Log(sc.Text())
			}
			select {
			case ch <- sc.Text():
			default: // nobody waits for it any more
			}
		}
		close(ch)
	}
	r.reads.Add(2)
	go func() { defer r.reads.Done(); lines(outR, r.out, false) }()
	go func() { defer r.reads.Done(); lines(errR, r.errOut, true) }()
	t.Cleanup(func() {
		r.cancel()
		select {
		case <-r.done:
			r.reads.Wait() // Run closed the pipes: they end now
		case <-time.After(serveStopTimeout):
			t.Errorf("serve did not return within %v of the cancel", serveStopTimeout)
		}
	})

	demo := false
	for _, a := range args {
		demo = demo || a == "--demo"
	}
	logAddr := regexp.MustCompile(`msg="imap: listening" addr=(\S+)`)
	deadline := time.After(serveStartTimeout)
	for r.addr == "" {
		select {
		case l, ok := <-r.out:
			if !ok {
				r.out = nil
				continue
			}
			r.before = append(r.before, l)
			if a, ok := strings.CutPrefix(l, "listening: "); ok && demo {
				r.addr = a
			}
		case l, ok := <-r.errOut:
			if !ok {
				r.errOut = nil
				continue
			}
			if m := logAddr.FindStringSubmatch(l); m != nil && !demo {
				r.addr = m[1]
			}
		case err := <-r.done:
			r.done <- err
			t.Fatalf("serve %q returned before listening: %v; stdout %q", args, err, r.before)
		case <-deadline:
			t.Fatalf("serve %q: not listening after %v; stdout %q", args, serveStartTimeout, r.before)
		}
	}
	return r
}

// stop cancels the server's ctx and returns Run's error.
func (r *serveRun) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(serveStopTimeout):
		t.Fatalf("serve did not return within %v of the cancel", serveStopTimeout)
		return nil
	}
}

// demoCredentials checks the demo's stdout lines up to "listening:" and
// returns the password.
func demoCredentials(t *testing.T, lines []string) string {
	t.Helper()
	return demoLines(t, lines).password
}

// demoOutput is what the demo says on stdout up to "listening:".
type demoOutput struct {
	password string
	cert     string // the certificate's path
	addr     string // IMAP with STARTTLS
	tlsAddr  string // IMAP with implicit TLS; "" when off
}

// demoLines checks the demo's stdout lines up to "listening:", with or
// without the implicit-TLS listener.
func demoLines(t *testing.T, lines []string) demoOutput {
	t.Helper()
	if len(lines) != 5 && len(lines) != 7 {
		t.Fatalf("demo printed %d lines, want user, password, certificate, connect, [connect TLS, tls listening,] listening: %q", len(lines), lines)
	}
	var out demoOutput
	if lines[0] != "user: demo" {
		t.Errorf("line 1 = %q, want %q", lines[0], "user: demo")
	}
	pw, ok := strings.CutPrefix(lines[1], "password: ")
	if !ok || !regexp.MustCompile(`^[A-Za-z0-9]{16}$`).MatchString(pw) {
		t.Fatalf("line 2 = %q, want \"password: \" and 16 letters and digits", lines[1])
	}
	out.password = pw
	if out.cert, ok = strings.CutPrefix(lines[2], "certificate: "); !ok || !filepath.IsAbs(out.cert) {
		t.Errorf("line 3 = %q, want \"certificate: \" and an absolute path", lines[2])
	}
	connect := func(line, addr, security string) {
		t.Helper()
		host, port, _ := strings.Cut(addr, ":")
		if want := "connect: IMAP " + host + " port " + port + ", " + security + ", user demo"; line != want {
			t.Errorf("%q, want %q", line, want)
		}
	}
	out.addr, ok = strings.CutPrefix(lines[len(lines)-1], "listening: ")
	if !ok {
		t.Fatalf("last line %q, want \"listening: \"", lines[len(lines)-1])
	}
	connect(lines[3], out.addr, "STARTTLS")
	if len(lines) == 7 {
		if out.tlsAddr, ok = strings.CutPrefix(lines[5], "tls listening: "); !ok {
			t.Fatalf("line 6 = %q, want \"tls listening: \"", lines[5])
		}
		connect(lines[4], out.tlsAddr, "TLS")
	}
	return out
}

func dialIMAP(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// inbox logs in, selects INBOX and returns the subjects of its messages.
func inbox(t *testing.T, c *imapclient.Client, user, password string) []string {
	t.Helper()
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatalf("LOGIN %s: %v", user, err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT INBOX: %v", err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, sel.NumMessages), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	var subjects []string
	for _, m := range msgs {
		subjects = append(subjects, m.Envelope.Subject)
	}
	return subjects
}

func TestServeDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"--demo", "--demo-dir", dir, "--listen", "127.0.0.1:0", "--demo-lmtp", "127.0.0.1:0", "--demo-tls-listen", "127.0.0.1:0"}

	r := startServe(t, args...)
	password := demoCredentials(t, r.before)
	if fi, err := os.Stat(filepath.Join(dir, demoPasswordFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, mode %v; want mode 0600", demoPasswordFile, err, fi.Mode())
	}
	file, _, err := auth.LoadFile(filepath.Join(dir, "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := file.Lookup("demo"); !ok || !strings.HasPrefix(u.Password, "{"+auth.DefaultScheme+"}") {
		t.Errorf("passwd-file user demo = %+v, want a %s password", u, auth.DefaultScheme)
	}

	c := dialIMAP(t, r.addr)
	if got := inbox(t, c, "demo", password); len(got) != 1 || got[0] != "Welcome to Cistern" {
		t.Fatalf("INBOX subjects = %q, want just the welcome message", got)
	}
	body, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil || len(body) != 1 || len(body[0].BodySection) != 1 {
		t.Fatalf("FETCH BODY.PEEK[]: %v, %d messages", err, len(body))
	}
	msg := string(body[0].BodySection[0].Bytes)
	for _, want := range []string{"\r\nFrom: ", "\r\nDate: ", "\r\nMessage-ID: <", "\r\nMIME-Version: 1.0\r\n",
		"\r\nContent-Type: text/plain; charset=utf-8\r\n", "\r\n\r\nWelcome to Cistern", "port 1143"} {
		if !strings.Contains("\r\n"+msg, want) {
			t.Errorf("welcome message lacks %q:\n%s", want, msg)
		}
	}

	// A wrong password is AUTHENTICATIONFAILED (auth.ErrBadCredentials
	// mapped to imap.ErrAuthFailed), not a server error.
	bad := dialIMAP(t, r.addr)
	var imapErr *imap.Error
	if err := bad.Login("demo", password+"x").Wait(); !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeAuthenticationFailed {
		t.Errorf("LOGIN with a wrong password: %v, want NO [AUTHENTICATIONFAILED]", err)
	}

	// Stopping with a session still selected: it is told BYE, and Run
	// returns nil.
	if err := r.stop(t); err != nil {
		t.Fatalf("serve after cancel: %v, want nil", err)
	}
	if err := c.Noop().Wait(); err == nil {
		t.Error("NOOP after the server stopped: no error")
	}

	// The second start knows the password and adds no second welcome.
	r2 := startServe(t, args...)
	if again := demoCredentials(t, r2.before); again != password {
		t.Errorf("second start printed password %q, first %q", again, password)
	}
	c2 := dialIMAP(t, r2.addr)
	if got := inbox(t, c2, "demo", password); len(got) != 1 {
		t.Errorf("INBOX after the second start: %q, want one welcome message", got)
	}
	if err := c2.Logout().Wait(); err != nil {
		t.Error(err)
	}
	if err := r2.stop(t); err != nil {
		t.Fatalf("second serve after cancel: %v, want nil", err)
	}
}

// A lost demo-password file gets the demo user a new password, printed.
func TestServeDemoLostPassword(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--demo", "--demo-dir", dir, "--listen", "127.0.0.1:0", "--demo-lmtp", "127.0.0.1:0", "--demo-tls-listen", ""}
	r := startServe(t, args...)
	first := demoCredentials(t, r.before)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, demoPasswordFile)); err != nil {
		t.Fatal(err)
	}
	r = startServe(t, args...)
	second := demoCredentials(t, r.before)
	if second == first {
		t.Fatal("same password after demo-password was removed")
	}
	c := dialIMAP(t, r.addr)
	if got := inbox(t, c, "demo", second); len(got) != 1 {
		t.Errorf("INBOX: %q, want one welcome message", got)
	}
}

func TestServeConfig(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	writePasswd(t, passwd, auth.User{Name: "alice"})
	cfg := filepath.Join(dir, "cistern.toml")
	writeConfig := func(listen, extra string) {
		t.Helper()
		toml := "data_dir = \"" + dir + "/data\"\n" +
			"mail_location = \"" + dir + "/mail/%u/Maildir\"\n" +
			"passwd_file = \"" + passwd + "\"\n" +
			"[imap]\nlisten = " + listen + "\n" + extra +
			"[log]\nlevel = \"debug\"\n"
		if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const listen = `["127.0.0.1:0"]`
	writeConfig(listen, "")

	r := startServe(t, "--config", cfg)
	c := dialIMAP(t, r.addr)
	if got := inbox(t, c, "alice", "secret"); len(got) != 0 {
		t.Errorf("alice's new INBOX: %q, want empty", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "mail", "alice", "Maildir", "cur")); err != nil {
		t.Errorf("alice's Maildir is not at mail_location: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "index.db")); err != nil {
		t.Errorf("the index is not under data_dir: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Error(err)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("serve after cancel: %v, want nil", err)
	}

	// What cannot be served is refused at the start.
	for _, tc := range []struct {
		name, listen, extra, want string
	}{
		{"missing certificate", listen, "listen_tls = [\"127.0.0.1:0\"]\n[tls]\ncert = \"" + dir + "/none.pem\"\nkey = \"" + dir + "/none.key\"\n", dir + "/none.pem"},
		{"no listener", "[]", "", "nothing to serve"},
		{"LMTP socket on a file", listen, "[lmtp]\nsocket = \"" + passwd + "\"\n", "not a socket"},
		{"bad config", listen, "nonsense = 1\n", "unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeConfig(tc.listen, tc.extra)
			var stderr strings.Builder
			err := Run(context.Background(), []string{"serve", "--config", cfg}, Stdio{In: strings.NewReader(""), Out: io.Discard, Err: &stderr})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("serve: %v, want an error about %s", err, tc.want)
			}
		})
	}
	t.Run("no passwd-file", func(t *testing.T) {
		writeConfig(listen, "")
		if err := os.Remove(passwd); err != nil {
			t.Fatal(err)
		}
		err := Run(context.Background(), []string{"serve", "--config", cfg}, Stdio{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
		if err == nil || !strings.Contains(err.Error(), "cistern user add") {
			t.Errorf("serve without a passwd-file: %v, want an error", err)
		}
	})
}

func TestServeFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool // else nil
	}{
		{"help", []string{"-h"}, false},
		{"config and demo", []string{"--demo", "--config", "/x.toml"}, true},
		{"listen without demo", []string{"--listen", "127.0.0.1:0"}, true},
		{"demo-dir without demo", []string{"--demo-dir", "/tmp"}, true},
		{"demo-lmtp without demo", []string{"--demo-lmtp", "127.0.0.1:0"}, true},
		{"demo-tls-listen without demo", []string{"--demo-tls-listen", ""}, true},
		{"argument", []string{"--demo", "extra"}, true},
		{"unknown flag", []string{"--nope"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			err := Run(context.Background(), append([]string{"serve"}, tc.args...), Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut})
			if tc.usage {
				if !errors.Is(err, errUsage) {
					t.Errorf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			if !strings.HasPrefix(out.String(), "usage: cistern serve") {
				t.Errorf("-h printed %q, want the help", out.String())
			}
		})
	}
}
