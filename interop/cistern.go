//go:build interop

package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cistern-mail/cistern/internal/testproc"
)

// Timeouts of the Cistern child process and its tools.
const (
	cisternToolTimeout = 30 * time.Second // one 'cistern user add'
	cisternStopTimeout = 20 * time.Second // SIGTERM to exit; serve waits 10 s for sessions
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
	cfg     testproc.CisternConfig

	proc *testproc.Proc // set while running
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
		// cistern refuses to touch mail as root.
		dir, runAs = testproc.TraversableTempDir(t), MailUser
	}
	c := &Cistern{
		t:       t,
		bin:     testproc.BuildCistern(t),
		dir:     dir,
		conf:    filepath.Join(dir, "cistern.toml"),
		logPath: filepath.Join(dir, "cistern.log"),
		cfg: testproc.CisternConfig{
			User:         runAs,
			DataDir:      filepath.Join(dir, "data"),
			MailLocation: filepath.Join(dir, "mail", "%u", "Maildir"),
			PasswdFile:   filepath.Join(dir, "passwd"),
			LMTPOptions:  []string{fmt.Sprintf("quota_full_tempfail = %t", opts.QuotaFullTempfail), "save_to_detail_mailbox = true"},
			LogLevel:     "info",
		},
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	// 'cistern user add' reads passwd_file from a configuration; the
	// ports are not known yet and do not matter to it.
	if err := c.cfg.Write(c.conf); err != nil {
		t.Fatal(err)
	}
	for _, u := range opts.Users {
		c.addUser(u)
	}
	if runAs != "" {
		owner, err := testproc.LookupOwner(runAs)
		if err != nil {
			t.Fatalf("%v: %s", err, installHint)
		}
		if err := owner.ChownTree(dir); err != nil {
			t.Fatalf("handing %s to %s: %v", dir, runAs, err)
		}
	}
	t.Cleanup(func() {
		c.Stop()
		c.checkLog()
		if t.Failed() {
			t.Logf("cistern log %s:\n%s", c.logPath, testproc.LastLines(c.Log(), 200))
		}
	})
	p, cfg, err := testproc.StartCistern(c.bin, c.conf, c.cfg, c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	c.proc, c.cfg = p, cfg
	return c
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
func (c *Cistern) IMAPAddr() string { return c.cfg.IMAP }
func (c *Cistern) LMTPAddr() string { return c.cfg.LMTP }

// Maildir is the Maildir root (INBOX) of user, by mail_location.
func (c *Cistern) Maildir(user string) string {
	return filepath.Join(c.dir, "mail", user, "Maildir")
}

// Log returns what the server wrote so far.
func (c *Cistern) Log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// Stop sends SIGTERM and waits for the server to exit; it fails the test
// unless the server exits with status 0 within cisternStopTimeout.
// Stopping a stopped server does nothing.
func (c *Cistern) Stop() {
	c.t.Helper()
	if c.proc == nil {
		return
	}
	p := c.proc
	c.proc = nil
	if err := p.Stop(cisternStopTimeout); err != nil {
		c.t.Error(err)
	} else if !p.State().Success() {
		c.t.Errorf("cistern serve exited with %v after SIGTERM, want status 0", p.State())
	}
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
	conn, err := net.DialTimeout("tcp", c.IMAPAddr(), 10*time.Second)
	if err != nil {
		c.t.Fatalf("dialing cistern at %s: %v", c.IMAPAddr(), err)
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
