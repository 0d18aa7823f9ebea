//go:build interop

package interop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// Timeouts of the Cistern child process and its tools.
const (
	cisternBuildTimeout = 5 * time.Minute  // go build -race, cold cache on a small machine
	cisternToolTimeout  = 30 * time.Second // one 'cistern user add'
	cisternStartTimeout = 30 * time.Second // until both ports greet
	cisternStopTimeout  = 20 * time.Second // SIGTERM to exit; serve waits 10 s for sessions
)

// CisternUser is a user of a test Cistern's passwd-file.
type CisternUser struct {
	Name     string
	Password string
	// Extra are passwd-file extra fields, e.g. "userdb_quota_rule=*:storage=20k".
	Extra []string
}

// CisternOptions configure a test Cistern.
type CisternOptions struct {
	Users []CisternUser
	// QuotaFullTempfail is lmtp.quota_full_tempfail.
	QuotaFullTempfail bool
}

// Cistern is 'cistern serve' running as a child of the test, built from
// this repository with the race detector, with a configuration, data
// directory, passwd-file and Maildirs of its own in a temporary directory.
// It serves IMAP and LMTP on 127.0.0.1, each on a free port. Methods must
// be called from the test's goroutine.
type Cistern struct {
	t       *testing.T
	bin     string // the binary, immutable
	dir     string // everything else, immutable
	conf    string // the configuration file, rewritten by every start
	logPath string // standard output and error of every run, immutable
	opts    CisternOptions
	// runAs is the configuration's user: MailUser when the test is root
	// (cistern refuses to touch mail as root), else "". immutable
	runAs string

	// Set while running.
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has been waited for
	imapAddr string
	lmtpAddr string
}

// StartCistern builds the cistern command, writes its configuration and
// passwd-file (with 'cistern user add', then the extra fields), and starts
// 'cistern serve', returning once IMAP and LMTP both greet. The server is
// stopped in t.Cleanup, where its log is printed if the test failed; a
// panic or a data race in its log fails the test.
func StartCistern(t *testing.T, opts CisternOptions) *Cistern {
	t.Helper()
	dir, runAs := t.TempDir(), ""
	if os.Geteuid() == 0 {
		dir, runAs = TraversableTempDir(t), MailUser
	}
	c := &Cistern{
		t:       t,
		bin:     buildCistern(t),
		dir:     dir,
		conf:    filepath.Join(dir, "cistern.toml"),
		logPath: filepath.Join(dir, "cistern.log"),
		opts:    opts,
		runAs:   runAs,
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	// 'cistern user add' reads passwd_file from a configuration; the
	// ports are not known yet and do not matter to it.
	if err := os.WriteFile(c.conf, []byte(c.config(0, 0)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range opts.Users {
		c.addUser(u)
	}
	if runAs != "" {
		u, err := user.Lookup(runAs)
		if err != nil {
			t.Fatalf("system user %s: %v: %s", runAs, err, installHint)
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("system user %s: uid %q gid %q", runAs, u.Uid, u.Gid)
		}
		if err := chownTree(dir, uid, gid); err != nil {
			t.Fatalf("handing %s to %s: %v", dir, runAs, err)
		}
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Error(err)
		}
		c.checkLog()
		if t.Failed() {
			t.Logf("cistern log %s:\n%s", c.logPath, lastLines(c.Log(), 200))
		}
	})
	c.start()
	return c
}

// buildCistern builds ./cmd/cistern with the race detector into a
// temporary directory and returns the binary's path.
func buildCistern(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build cistern: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	bin := filepath.Join(t.TempDir(), "cistern")
	ctx, cancel := context.WithTimeout(context.Background(), cisternBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-race", "-o", bin, "./cmd/cistern")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -race ./cmd/cistern: %v\n%s", err, out)
	}
	return bin
}

// config is the whole configuration for these ports.
func (c *Cistern) config(imapPort, lmtpPort int) string {
	runAs := ""
	if c.runAs != "" {
		runAs = fmt.Sprintf("user = %q\n", c.runAs)
	}
	return runAs + fmt.Sprintf(`# Cistern of an interop test.
data_dir = %[1]q
mail_location = %[2]q
passwd_file = %[3]q

[imap]
listen = ["127.0.0.1:%[4]d"]

[lmtp]
listen = ["127.0.0.1:%[5]d"]
quota_full_tempfail = %[6]t
save_to_detail_mailbox = true

[log]
level = "info"
`, filepath.Join(c.dir, "data"), filepath.Join(c.dir, "mail", "%u", "Maildir"),
		filepath.Join(c.dir, "passwd"), imapPort, lmtpPort, c.opts.QuotaFullTempfail)
}

// addUser runs 'cistern user add' with the password on standard input,
// then appends the user's extra fields to their passwd-file line, for
// which 'user add' has no flag.
func (c *Cistern) addUser(u CisternUser) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cisternToolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, "user", "add", "--config", c.conf, "--scheme", "SHA512-CRYPT", u.Name)
	cmd.Stdin = strings.NewReader(u.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("cistern user add %s: %v\n%s", u.Name, err, out)
	}
	if len(u.Extra) == 0 {
		return
	}
	path := filepath.Join(c.dir, "passwd")
	b, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	found := false
	for i, line := range lines {
		body := strings.TrimSuffix(line, "\n")
		if !strings.HasPrefix(body, u.Name+":") {
			continue
		}
		found = true
		// name:password:uid:gid:gecos:home:shell:extra extra ...
		fields := strings.Split(body, ":")
		if len(fields) > 7 {
			c.t.Fatalf("passwd-file line of %s already has extra fields: %q", u.Name, body)
		}
		for len(fields) < 7 {
			fields = append(fields, "")
		}
		lines[i] = strings.Join(fields, ":") + ":" + strings.Join(u.Extra, " ") + "\n"
	}
	if !found {
		c.t.Fatalf("cistern user add %s wrote no line for it:\n%s", u.Name, b)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// IMAPAddr and LMTPAddr are the addresses of the running server.
func (c *Cistern) IMAPAddr() string { return c.imapAddr }
func (c *Cistern) LMTPAddr() string { return c.lmtpAddr }

// Maildir is the Maildir root (INBOX) of user, by mail_location.
func (c *Cistern) Maildir(user string) string {
	return filepath.Join(c.dir, "mail", user, "Maildir")
}

// Log returns what the server wrote so far.
func (c *Cistern) Log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

func (c *Cistern) start() {
	c.t.Helper()
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		if err = c.tryStart(); err == nil {
			return
		}
		// Another process may have taken a free port between our probe
		// and Cistern's bind; only that is worth another try.
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	c.t.Fatalf("starting cistern: %v", err)
}

func (c *Cistern) tryStart() error {
	imapPort, err1 := freePort()
	lmtpPort, err2 := freePort()
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if imapPort == lmtpPort {
		return fmt.Errorf("port %d: address already in use (probed twice)", imapPort)
	}
	if err := os.WriteFile(c.conf, []byte(c.config(imapPort, lmtpPort)), 0o600); err != nil {
		return err
	}
	out, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	start := int64(0)
	if fi, err := out.Stat(); err == nil {
		start = fi.Size()
	}
	cmd := exec.Command(c.bin, "serve", "--config", c.conf)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	c.cmd, c.exited = cmd, exited
	c.imapAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(imapPort))
	c.lmtpAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lmtpPort))

	deadline := time.Now().Add(cisternStartTimeout)
	for _, p := range []struct{ addr, greeting string }{{c.imapAddr, "* OK"}, {c.lmtpAddr, "220 "}} {
		for {
			select {
			case <-exited:
				c.cmd = nil
				return fmt.Errorf("cistern serve exited (%v):\n%s", cmd.ProcessState, c.Log()[start:])
			default:
			}
			line, err := readGreeting(p.addr)
			if err == nil {
				if !strings.HasPrefix(line, p.greeting) {
					c.stop()
					return fmt.Errorf("%s greeted %q, want %q...", p.addr, line, p.greeting)
				}
				break
			}
			if time.Now().After(deadline) {
				c.stop()
				return fmt.Errorf("no greeting on %s after %v: %v\n%s", p.addr, cisternStartTimeout, err, c.Log()[start:])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// Stop sends SIGTERM and waits for the server to exit; it fails the test
// unless the server exits with status 0 within cisternStopTimeout.
// Stopping a stopped server does nothing.
func (c *Cistern) Stop() {
	c.t.Helper()
	if err := c.stop(); err != nil {
		c.t.Error(err)
	}
}

func (c *Cistern) stop() error {
	if c.cmd == nil {
		return nil
	}
	cmd := c.cmd
	c.cmd = nil
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(cisternStopTimeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
		return fmt.Errorf("cistern serve did not exit %v after SIGTERM; killed", cisternStopTimeout)
	}
	if !cmd.ProcessState.Success() {
		return fmt.Errorf("cistern serve exited with %v after SIGTERM, want status 0", cmd.ProcessState)
	}
	return nil
}

// checkLog fails the test when the server logged a recovered panic or the
// race detector a data race.
func (c *Cistern) checkLog() {
	log := c.Log()
	for _, bad := range []string{"WARNING: DATA RACE", "panic"} {
		if i := strings.Index(log, bad); i >= 0 {
			from := max(0, strings.LastIndexByte(log[:i], '\n'))
			c.t.Errorf("cistern log contains %q:\n%s", bad, firstLines(log[from:], 40))
		}
	}
}

// Login dials the IMAP port and logs in as user. Every read and write of
// the connection fails after deadline, so that no command can hang the
// test. The client is closed in t.Cleanup.
func (c *Cistern) Login(user, password string, deadline time.Time, opts *imapclient.Options) *imapclient.Client {
	c.t.Helper()
	conn, err := net.DialTimeout("tcp", c.imapAddr, 10*time.Second)
	if err != nil {
		c.t.Fatalf("dialing cistern at %s: %v", c.imapAddr, err)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		c.t.Fatal(err)
	}
	client := imapclient.New(conn, opts)
	c.t.Cleanup(func() { client.Close() })
	if err := client.Login(user, password).Wait(); err != nil {
		c.t.Fatalf("LOGIN %s: %v", user, err)
	}
	return client
}

func firstLines(s string, n int) string {
	lines := strings.SplitAfterN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.TrimRight(strings.Join(lines, ""), "\n")
}
