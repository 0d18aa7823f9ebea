//go:build interop

// Package interop tests Cistern against real third-party programs that
// share its files or speak its protocols. It holds only tests and their
// helpers, behind the build tag "interop"; scripts/interop.sh installs the
// programs (from Debian's packages) and runs it:
//
//	bash scripts/interop.sh
//
// # Dovecot
//
// A test starts its own Dovecot (see [NewDovecot]) on a Maildir the test
// made: Dovecot runs in the foreground as a child of the test, with a
// configuration, runtime directory, state directory and log of its own in a
// temporary directory, listening for IMAP only on 127.0.0.1 at a free port,
// without TLS and with one user whose password is plain text. The
// Dovecot master runs as root (the test must run as root); mail access runs
// as the unprivileged system user [MailUser], because Dovecot refuses
// uid 0 for it. Files the test writes as root are handed to that user
// before every start.
//
// Dovecot keeps its control and index files in the Maildir itself, as a
// stock installation does: dovecot-uidlist (shared with Cistern), and
// dovecot-uidvalidity*, dovecot.index* and dovecot.list.index*, which are
// Dovecot's alone and which Cistern must tolerate.
//
// # Cistern and Postfix
//
// The delivery tests run 'cistern serve' itself (see [StartCistern]),
// built from this repository with the race detector, serving IMAP and
// LMTP on loopback ports for users of a passwd-file of its own; and a
// private Postfix instance (see [StartPostfix]) whose local domain is
// delivered to Cistern over LMTP. Mail is sent to Postfix's SMTP port with
// swaks. What Postfix did with each message is read from its maillog
// ([ParseMaillog]); what Cistern did, from the Maildirs and over IMAP.
package interop

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// DovecotBinary is where Debian's dovecot-core installs the server.
const DovecotBinary = "/usr/sbin/dovecot"

// MailUser is the unprivileged system account that Dovecot uses to access
// the test Maildirs; scripts/interop.sh creates it.
const MailUser = "cistern-interop"

// The one IMAP user of every test instance.
const (
	DovecotUser     = "tester"
	DovecotPassword = "interop-secret"
)

// Timeouts for the child process; generous because CI machines are small
// and tests run with -race.
const (
	dovecotStartTimeout = 20 * time.Second // until the port greets
	dovecotStopTimeout  = 10 * time.Second // SIGTERM to exit, then SIGKILL
	startAttempts       = 3                // another free port if bind lost a race
)

const installHint = "run `bash scripts/interop.sh` (as root) to install what the interop tests need"

// Dovecot is a private Dovecot instance serving one Maildir to the user
// [DovecotUser]. Start and Stop may alternate any number of times; the
// configuration, state and log are kept across restarts, and the port
// changes on every start. Methods must be called from the test's goroutine.
type Dovecot struct {
	t       *testing.T
	maildir string // the INBOX, immutable
	dir     string // config, runtime and state directory, immutable
	conf    string // config file, rewritten by every start
	logPath string // Dovecot's log_path, immutable
	outPath string // the master's stdout and stderr, immutable
	uid     int    // MailUser, immutable
	gid     int

	// Set while running.
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	addr   string        // 127.0.0.1:port
}

// NewDovecot prepares a private Dovecot instance for maildir, which must
// exist; it does not start it. The instance is stopped in t.Cleanup, where
// Dovecot's log is printed if the test failed. It fails the test when
// Dovecot or MailUser is missing or the process is not root.
func NewDovecot(t *testing.T, maildir string) *Dovecot {
	t.Helper()
	if _, err := os.Stat(DovecotBinary); err != nil {
		t.Fatalf("Dovecot is not installed (%v): %s", err, installHint)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("the Dovecot interop tests must run as root (Dovecot's master needs it): %s", installHint)
	}
	u, err := user.Lookup(MailUser)
	if err != nil {
		t.Fatalf("system user %s: %v: %s", MailUser, err, installHint)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil || uid == 0 {
		t.Fatalf("system user %s has uid %q gid %q: want a numeric non-root account", MailUser, u.Uid, u.Gid)
	}
	maildir, err = filepath.Abs(maildir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(maildir); err != nil || !fi.IsDir() {
		t.Fatalf("Maildir %s: not a directory (%v)", maildir, err)
	}

	dir := TraversableTempDir(t)
	d := &Dovecot{
		t:       t,
		maildir: maildir,
		dir:     dir,
		conf:    filepath.Join(dir, "dovecot.conf"),
		logPath: filepath.Join(dir, "dovecot.log"),
		outPath: filepath.Join(dir, "dovecot.out"),
		uid:     uid,
		gid:     gid,
	}
	for _, sub := range []string{"run", "state", "home"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "home"), uid, gid); err != nil {
		t.Fatal(err)
	}
	passwd := fmt.Sprintf("%s:{PLAIN}%s\n", DovecotUser, DovecotPassword)
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	// The Maildir itself becomes MailUser's; the way to it must be open.
	if err := checkTraversable(filepath.Dir(maildir)); err != nil {
		t.Fatalf("Maildir %s: %v (put it under TraversableTempDir)", maildir, err)
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			d.dumpLog()
		}
	})
	return d
}

// Addr is the address of the running instance, host:port.
func (d *Dovecot) Addr() string { return d.addr }

// LogPath is Dovecot's log file; it survives restarts.
func (d *Dovecot) LogPath() string { return d.logPath }

// config is the whole configuration of the instance for one port. Every
// path Dovecot writes is inside d.dir or the Maildir.
func (d *Dovecot) config(port int) string {
	return fmt.Sprintf(`# Private Dovecot of a Cistern interop test.
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[2]s
auth_verbose = yes
mail_debug = yes

listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
auth_cache_size = 0

# Mail access as the unprivileged %[7]s (uid %[5]d); Dovecot refuses root.
first_valid_uid = 1
first_valid_gid = 1
mail_fsync = always
maildir_very_dirty_syncs = no

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[4]d
  }
  inet_listener imaps {
    port = 0
  }
}

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/passwd
}
userdb {
  driver = static
  args = uid=%[5]d gid=%[6]d home=%[1]s/home mail=maildir:%[3]s
}
`, d.dir, d.logPath, d.maildir, port, d.uid, d.gid, MailUser)
}

// Start hands the Maildir to MailUser and starts Dovecot, returning once it
// greets on its port. It fails the test if Dovecot does not come up.
func (d *Dovecot) Start() {
	d.t.Helper()
	if d.cmd != nil {
		d.t.Fatal("Dovecot.Start: already running")
	}
	if err := chownTree(d.maildir, d.uid, d.gid); err != nil {
		d.t.Fatalf("handing the Maildir to %s: %v", MailUser, err)
	}
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		if err = d.tryStart(); err == nil {
			return
		}
		// Another process may have taken the free port between our probe
		// and Dovecot's bind; only that is worth another try.
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	d.dumpLog()
	d.t.Fatalf("starting Dovecot: %v", err)
}

func (d *Dovecot) tryStart() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.conf, []byte(d.config(port)), 0o644); err != nil {
		return err
	}
	// A file, not a pipe: the children inherit it, and Wait must return
	// when the master exits.
	out, err := os.OpenFile(d.outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(DovecotBinary, "-F", "-c", d.conf)
	cmd.Stdout = out
	cmd.Stderr = out
	// A group of its own, so that Stop can reach the children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	d.cmd, d.exited = cmd, exited
	d.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	deadline := time.Now().Add(dovecotStartTimeout)
	for {
		select {
		case <-exited:
			d.cmd = nil
			output, _ := os.ReadFile(d.outPath)
			return fmt.Errorf("dovecot exited (%v): %s%s", cmd.ProcessState, output, lastLines(d.Log(), 20))
		default:
		}
		greeting, err := readGreeting(d.addr)
		if err == nil {
			if !strings.HasPrefix(greeting, "* OK") {
				d.stop()
				return fmt.Errorf("unexpected greeting %q", greeting)
			}
			return nil
		}
		if time.Now().After(deadline) {
			d.stop()
			return fmt.Errorf("no IMAP greeting on %s after %v: %v", d.addr, dovecotStartTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops Dovecot (SIGTERM, then SIGKILL to its process group after
// dovecotStopTimeout) and waits until its processes are gone, so that the
// Maildir is no longer touched. Stopping a stopped instance does nothing.
func (d *Dovecot) Stop() {
	d.t.Helper()
	if err := d.stop(); err != nil {
		d.t.Error(err)
	}
}

func (d *Dovecot) stop() error {
	if d.cmd == nil {
		return nil
	}
	cmd := d.cmd
	d.cmd = nil
	pgid := cmd.Process.Pid
	var err error
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(dovecotStopTimeout):
		err = fmt.Errorf("dovecot did not exit %v after SIGTERM; killed", dovecotStopTimeout)
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-d.exited
	}
	// The master has exited; its children follow within moments. Wait for
	// the group to be empty, so no mail process still writes the Maildir.
	deadline := time.Now().Add(dovecotStopTimeout)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			err = errors.Join(err, fmt.Errorf("dovecot's processes outlived the master by %v; killed", dovecotStopTimeout))
			time.Sleep(100 * time.Millisecond)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// Client logs in as DovecotUser and returns the client, which is closed in
// t.Cleanup (a test may Logout earlier).
func (d *Dovecot) Client() *imapclient.Client {
	d.t.Helper()
	if d.cmd == nil {
		d.t.Fatal("Dovecot.Client: not running")
	}
	c, err := imapclient.DialInsecure(d.addr, &imapclient.Options{
		Dialer: &net.Dialer{Timeout: 10 * time.Second},
	})
	if err != nil {
		d.t.Fatalf("dialing Dovecot at %s: %v", d.addr, err)
	}
	d.t.Cleanup(func() { c.Close() })
	if err := c.Login(DovecotUser, DovecotPassword).Wait(); err != nil {
		d.t.Fatalf("LOGIN: %v", err)
	}
	return c
}

// IMAPMessage is one message as an IMAP server reported it.
type IMAPMessage struct {
	UID       uint32
	Flags     []imap.Flag // sorted
	MessageID string      // the Message-ID header field, with its <>
}

// Inbox is a mailbox (INBOX, or another one for SelectMailbox) as one
// SELECT and a UID FETCH of everything saw it.
type Inbox struct {
	UIDValidity uint32
	UIDNext     uint32
	Messages    []IMAPMessage          // in ascending UID order
	ByMessageID map[string]IMAPMessage // every message has a distinct Message-ID
}

// messageIDSection is BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)].
var messageIDSection = &imap.FetchItemBodySection{
	Specifier:    imap.PartSpecifierHeader,
	HeaderFields: []string{"Message-ID"},
	Peek:         true,
}

// SelectInbox sends SELECT INBOX and
// UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]),
// failing the test on an error, a message without a Message-ID or two
// messages with one.
func SelectInbox(t *testing.T, c *imapclient.Client) *Inbox {
	t.Helper()
	return SelectMailbox(t, c, "INBOX")
}

// SelectMailbox is SelectInbox for the mailbox called name.
func SelectMailbox(t *testing.T, c *imapclient.Client, name string) *Inbox {
	t.Helper()
	sel, err := c.Select(name, nil).Wait()
	if err != nil {
		t.Fatalf("SELECT %s: %v", name, err)
	}
	in := &Inbox{
		UIDValidity: sel.UIDValidity,
		UIDNext:     uint32(sel.UIDNext),
		ByMessageID: make(map[string]IMAPMessage),
	}
	if sel.NumMessages == 0 {
		return in
	}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}} // 1:*
	msgs, err := c.Fetch(all, &imap.FetchOptions{
		UID:         true,
		Flags:       true,
		BodySection: []*imap.FetchItemBodySection{messageIDSection},
	}).Collect()
	if err != nil {
		t.Fatalf("%s: UID FETCH 1:*: %v", name, err)
	}
	if len(msgs) != int(sel.NumMessages) {
		t.Errorf("%s: UID FETCH 1:* returned %d messages, SELECT said %d exist", name, len(msgs), sel.NumMessages)
	}
	for _, m := range msgs {
		header := m.FindBodySection(messageIDSection)
		msg, err := mail.ReadMessage(strings.NewReader(string(header) + "\r\n"))
		if err != nil {
			t.Fatalf("UID %d: parsing %q: %v", m.UID, header, err)
		}
		im := IMAPMessage{
			UID:       uint32(m.UID),
			Flags:     slices.Sorted(slices.Values(m.Flags)),
			MessageID: msg.Header.Get("Message-Id"),
		}
		if im.UID == 0 || im.MessageID == "" {
			t.Fatalf("FETCH response without UID or Message-ID: %+v (header %q)", im, header)
		}
		if prev, dup := in.ByMessageID[im.MessageID]; dup {
			t.Fatalf("%s: Message-ID %s at UID %d and %d", name, im.MessageID, prev.UID, im.UID)
		}
		in.ByMessageID[im.MessageID] = im
		in.Messages = append(in.Messages, im)
	}
	slices.SortFunc(in.Messages, func(a, b IMAPMessage) int { return cmp.Compare(a.UID, b.UID) })
	return in
}

// Log returns Dovecot's log so far.
func (d *Dovecot) Log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

func (d *Dovecot) dumpLog() {
	if output, _ := os.ReadFile(d.outPath); len(output) > 0 {
		d.t.Logf("dovecot stdout/stderr:\n%s", output)
	}
	d.t.Logf("dovecot log %s:\n%s", d.logPath, d.Log())
}

// TraversableTempDir returns t.TempDir() made reachable by MailUser and
// Dovecot's own unprivileged users: the testing package creates the
// directory's parent with mode 0700. It fails the test if an ancestor
// outside the test's control still blocks the way (a TMPDIR of mode 0700).
func TraversableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := checkTraversable(dir); err != nil {
		t.Fatalf("temporary directory %s: %v; set TMPDIR to a directory others may search", dir, err)
	}
	return dir
}

// checkTraversable reports an ancestor of dir (or dir) that others cannot
// search.
func checkTraversable(dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s has mode %v: others cannot search it", p, fi.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// chownTree gives root and everything below it to uid:gid. Files that
// vanish meanwhile are skipped.
func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := os.Lchown(path, uid, gid); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// readGreeting connects to addr and returns the server's first line.
func readGreeting(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
