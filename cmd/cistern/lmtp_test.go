package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/maildir"
)

// eventTimeout bounds the wait for a change an IDLE session must hear of.
const eventTimeout = 30 * time.Second

// nextLine returns the next line of ch that matches re, failing the test
// when none comes in time.
func nextLine(t *testing.T, ch <-chan string, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(serveStartTimeout)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("output ended before a line matching %s", re)
			}
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("no line matching %s", re)
		}
	}
}

// idleClient logs in, selects INBOX, starts IDLE, and returns a channel
// of the message counts the server announces (EXISTS).
func idleClient(t *testing.T, addr, user, password string) (<-chan uint32, uint32) {
	t.Helper()
	exists := make(chan uint32, 16)
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idle.Close() })
	return exists, sel.NumMessages
}

func waitExists(t *testing.T, exists <-chan uint32, want uint32) {
	t.Helper()
	deadline := time.After(eventTimeout)
	for {
		select {
		case n := <-exists:
			if n == want {
				return
			}
		case <-deadline:
			t.Fatalf("IDLE: no EXISTS %d", want)
		}
	}
}

func lmtpSend(t *testing.T, network, addr, from string, to []string, msg string) error {
	t.Helper()
	nc, err := net.DialTimeout(network, addr, eventTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := smtp.NewClientLMTP(nc)
	c.CommandTimeout, c.SubmissionTimeout = eventTimeout, eventTimeout
	err = c.SendMail(from, to, strings.NewReader(msg))
	c.Close()
	return err
}

// The demo delivers over LMTP into the INBOX an IDLE session watches,
// through the daemon's one Registry.
func TestServeDemoLMTP(t *testing.T) {
	dir := t.TempDir()
	r := startServe(t, "--demo", "--demo-dir", dir, "--listen", "127.0.0.1:0", "--demo-lmtp", "127.0.0.1:0", "--demo-tls-listen", "")
	password := demoCredentials(t, r.before)
	lmtpAddr := nextLine(t, r.out, regexp.MustCompile(`^lmtp listening: (\S+)$`))[1]

	exists, n := idleClient(t, r.addr, "demo", password)
	if n != 1 {
		t.Fatalf("INBOX holds %d messages, want the welcome message", n)
	}
	if err := lmtpSend(t, "tcp", lmtpAddr, "friend@example.org", []string{"demo@localhost"}, "Subject: over LMTP\r\n\r\nhello\r\n"); err != nil {
		t.Fatalf("LMTP: %v", err)
	}
	waitExists(t, exists, 2)
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestServeConfigLMTP(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	writePasswd(t, passwd, auth.User{Name: "alice"}, auth.User{Name: "tiny", Extra: []string{"quota_rule=*:bytes=10"}})
	socket := filepath.Join(dir, "lmtp.sock")
	cfg := filepath.Join(dir, "cistern.toml")
	toml := fmt.Sprintf(`data_dir = %q
mail_location = %q
passwd_file = %q
[imap]
listen = ["127.0.0.1:0"]
[lmtp]
listen = ["127.0.0.1:0"]
socket = %q
socket_mode = "0600"
save_to_detail_mailbox = true
`, dir+"/data", dir+"/mail/%u/Maildir", passwd, socket)
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	mail := func(user string) string { return filepath.Join(dir, "mail", user, "Maildir") }

	r := startServe(t, "--config", cfg)
	listening := regexp.MustCompile(`msg="lmtp: listening" addr=(\S+)`)
	tcpAddr := nextLine(t, r.errOut, listening)[1]
	if got := nextLine(t, r.errOut, listening)[1]; got != socket {
		t.Errorf("second LMTP listener %s, want the socket %s", got, socket)
	}
	if fi, err := os.Stat(socket); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket: %v %v, want a socket with mode 0600", fi.Mode(), err)
	}

	exists, n := idleClient(t, r.addr, "alice", "secret")
	if n != 0 {
		t.Fatalf("alice's INBOX holds %d", n)
	}

	// Over TCP: one recipient delivered, one unknown, one over quota.
	err := lmtpSend(t, "tcp", tcpAddr, "s@example.org", []string{"alice@example.org", "nobody@example.org", "tiny@example.org"}, "Subject: mixed\r\n\r\nx\r\n")
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 {
		t.Errorf("unknown recipient: %v, want 550 at RCPT", err)
	}
	if err := lmtpSend(t, "tcp", tcpAddr, "s@example.org", []string{"alice@example.org", "tiny@example.org"}, "Subject: two\r\n\r\nx\r\n"); err == nil {
		t.Error("a message for tiny, over its quota, was accepted")
	} else {
		var lerr smtp.LMTPDataError
		if !errors.As(err, &lerr) || len(lerr) != 1 || lerr["tiny@example.org"] == nil || lerr["tiny@example.org"].Code != 552 {
			t.Errorf("over quota: %v, want 552 for tiny only", err)
		}
	}
	waitExists(t, exists, 1)

	// Over the unix socket, into the detail's folder
	// (lmtp.save_to_detail_mailbox), but never into Sent.
	if err := lmtpSend(t, "unix", socket, "", []string{"alice+Junk@example.org"}, "Subject: to Junk\r\n\r\nx\r\n"); err != nil {
		t.Fatalf("LMTP over the socket: %v", err)
	}
	if names, _ := filepath.Glob(filepath.Join(mail("alice"), ".Junk", maildir.New, "*")); len(names) != 1 {
		t.Errorf("alice's Junk holds %q, want the message for alice+Junk", names)
	}
	if err := lmtpSend(t, "unix", socket, "", []string{"alice+Sent@example.org"}, "Subject: to Sent\r\n\r\nx\r\n"); err != nil {
		t.Fatalf("LMTP over the socket: %v", err)
	}
	if names, _ := filepath.Glob(filepath.Join(mail("alice"), ".Sent", maildir.New, "*")); len(names) != 0 {
		t.Errorf("alice's Sent holds %q, want nothing: alice+Sent goes to INBOX", names)
	}
	waitExists(t, exists, 2)

	// The LDA next to the running daemon: the IDLE session hears of it.
	// -m Drafts files into INBOX too.
	var stderr strings.Builder
	err = Run(context.Background(), []string{"deliver", "--config", cfg, "-u", "alice", "-m", "Drafts", "-f", "lda@example.org"}, Stdio{In: strings.NewReader("Subject: by the LDA\n\nx\n"), Out: io.Discard, Err: &stderr})
	if err != nil {
		t.Fatalf("deliver: %v (%s)", err, stderr.String())
	}
	waitExists(t, exists, 3)
	if names, _ := filepath.Glob(filepath.Join(mail("alice"), ".Drafts", maildir.New, "*")); len(names) != 0 {
		t.Errorf("alice's Drafts holds %q, want nothing", names)
	}

	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Lstat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is still there after the stop: %v", err)
	}
}

func TestListenUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lmtp.sock")
	// A socket a server that is gone left behind is replaced.
	old, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	ln, err := listenUnix(path, 0o640)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer ln.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, %v; want 0640", fi.Mode(), err)
	}
	// One that answers is not taken over.
	if _, err := listenUnix(path, 0o640); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Errorf("over a live socket: %v", err)
	}
	if c, err := net.Dial("unix", path); err != nil {
		t.Errorf("the live socket was broken: %v", err)
	} else {
		c.Close()
	}
}
