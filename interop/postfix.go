//go:build interop

package interop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/testproc"
)

// PostfixBinary is where Debian's postfix package installs the control
// command.
const PostfixBinary = "/usr/sbin/postfix"

// postfixSyslogName tags the maillog lines of the test instances.
const postfixSyslogName = "postfix-cistern-interop"

// Timeouts of the private Postfix; generous for small CI machines.
const (
	postfixCommandTimeout = 60 * time.Second // postfix check, start or stop
	postfixStartTimeout   = 20 * time.Second // after start, until smtpd greets
	postfixExitTimeout    = 10 * time.Second // after stop, until its processes are gone
)

// Postfix is a private Postfix instance: its own config_directory,
// queue_directory, data_directory and maillog_file in a temporary
// directory, started with 'postfix -c DIR start' and stopped with
// 'postfix -c DIR stop'. It is not registered with the system's default
// instance (alternate_config_directories, postmulti): only root runs
// 'postfix -c', and nothing uses the set-gid postdrop or postqueue, which
// are the programs that check that registration. The system
// configuration in /etc/postfix is neither read nor changed.
//
// The instance accepts SMTP on 127.0.0.1 at a free port and treats one
// domain as local, handing all its mail to an LMTP server by TCP
// (local_transport = lmtp:inet:...), with local_recipient_maps empty so
// that the LMTP server decides which users exist. All other mail fails
// at once: nothing leaves the machine. Queue timers are short, so that a
// deferred message is retried within seconds. Methods must be called
// from the test's goroutine.
type Postfix struct {
	t        *testing.T
	dir      string // instance root, immutable
	confDir  string // config_directory: main.cf and master.cf
	queueDir string // queue_directory
	dataDir  string // data_directory
	maillog  string // maillog_file
	domain   string // mydestination
	lmtpAddr string // local_transport's address

	running  bool
	smtpAddr string // 127.0.0.1:port while running
	logFrom  int    // where the maillog of the last start begins
}

// StartPostfix sets up and starts a private Postfix that delivers mail
// for domain to the LMTP server at lmtpAddr (host:port), returning once
// its smtpd greets. It is stopped in t.Cleanup, where the end of its
// maillog is printed if the test failed. It fails the test when Postfix
// is missing or the process is not root.
func StartPostfix(t *testing.T, domain, lmtpAddr string) *Postfix {
	t.Helper()
	if _, err := os.Stat(PostfixBinary); err != nil {
		t.Fatalf("Postfix is not installed (%v): %s", err, installHint)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("the Postfix interop tests must run as root (Postfix's master needs it): %s", installHint)
	}
	owner, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("the postfix system user: %v: %s", err, installHint)
	}
	uid, err1 := strconv.Atoi(owner.Uid)
	gid, err2 := strconv.Atoi(owner.Gid)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}

	// Postfix's daemons run as the postfix user and must reach the
	// queue and data directories.
	dir := testproc.TraversableTempDir(t)
	p := &Postfix{
		t:        t,
		dir:      dir,
		confDir:  filepath.Join(dir, "etc"),
		queueDir: filepath.Join(dir, "queue"),
		dataDir:  filepath.Join(dir, "data"),
		maillog:  filepath.Join(dir, "maillog"),
		domain:   domain,
		lmtpAddr: lmtpAddr,
	}
	for _, d := range []string{p.confDir, p.queueDir, p.dataDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The queue directory is root's (its subdirectories, made by
	// 'postfix check', are postfix's); the data directory is postfix's.
	if err := os.Chown(p.dataDir, uid, gid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Error(err)
		}
		p.checkMaillog()
		if t.Failed() {
			t.Logf("postfix maillog %s (end):\n%s", p.maillog, testproc.LastLines(p.Maillog(), 60))
		}
	})

	for attempt := 1; attempt <= testproc.StartTries; attempt++ {
		if err = p.tryStart(); err == nil {
			return p
		}
		// Another process may have taken the free port between our probe
		// and master's bind; only that is worth another try.
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	t.Fatalf("starting Postfix: %v", err)
	return nil
}

// SMTPAddr is the address of the instance's smtpd, host:port.
func (p *Postfix) SMTPAddr() string { return p.smtpAddr }

// Maillog returns the instance's maillog so far.
func (p *Postfix) Maillog() string {
	b, _ := os.ReadFile(p.maillog)
	return string(b)
}

// mainCF is the instance's main.cf. Every path Postfix writes is in p.dir.
func (p *Postfix) mainCF() string {
	return fmt.Sprintf(`# Private Postfix of a Cistern interop test.
compatibility_level = 3.6
queue_directory = %[1]s
data_directory = %[2]s
mail_owner = postfix
setgid_group = postdrop
multi_instance_enable = no
syslog_name = %[6]s
maillog_file = %[3]s
maillog_file_prefixes = %[7]s

myhostname = mx.%[4]s
mydomain = %[4]s
myorigin = $mydomain
mydestination = %[4]s
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
append_dot_mydomain = no
biff = no
smtputf8_enable = no
enable_long_queue_ids = yes

# The LMTP server decides who exists: no local recipient check, no aliases.
local_transport = lmtp:inet:%[5]s
local_recipient_maps =
alias_maps =
alias_database =
recipient_delimiter = +
lmtp_host_lookup = native

# Nothing leaves the machine.
relayhost =
default_transport = error:5.7.1 no outbound mail from a Cistern interop test
relay_transport = error:5.7.1 no outbound mail from a Cistern interop test
smtp_host_lookup = native

# Retry deferred mail within seconds; never slow down the sender.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
in_flow_delay = 0
`, p.queueDir, p.dataDir, p.maillog, p.domain, p.lmtpAddr, postfixSyslogName, p.dir)
}

// masterCF is the instance's master.cf: the services a local-only
// instance needs, none of them chrooted (the chroot would need copies of
// system files), smtpd on 127.0.0.1 at port only.
func masterCF(port int) string {
	return fmt.Sprintf(`# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:%d inet n     -       n       -       -       smtpd
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
smtp       unix  -       -       n       -       -       smtp
relay      unix  -       -       n       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
lmtp       unix  -       -       n       -       -       lmtp
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
`, port)
}

func (p *Postfix) tryStart() error {
	ports, err := testproc.FreePorts(1)
	if err != nil {
		return err
	}
	port := ports[0]
	// A failed attempt's fatal error stays in the maillog; it is not this
	// instance's.
	p.logFrom = len(p.Maillog())
	if err := os.WriteFile(filepath.Join(p.confDir, "main.cf"), []byte(p.mainCF()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.confDir, "master.cf"), []byte(masterCF(port)), 0o644); err != nil {
		return err
	}
	// check makes the queue's subdirectories with Postfix's ownership
	// and modes.
	if err := p.control("check"); err != nil {
		return err
	}
	if err := p.control("start"); err != nil {
		return err
	}
	p.running = true
	p.smtpAddr = testproc.Loopback(port)
	if err := testproc.Poll(postfixStartTimeout, testproc.Greets(p.smtpAddr, "220 ")); err != nil {
		p.stop()
		return fmt.Errorf("smtpd on %s: %v\n%s", p.smtpAddr, err, testproc.LastLines(p.Maillog(), 20))
	}
	return nil
}

// control runs 'postfix -c confDir verb', bounded by postfixCommandTimeout.
func (p *Postfix) control(verb string) error {
	ctx, cancel := context.WithTimeout(context.Background(), postfixCommandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, PostfixBinary, "-c", p.confDir, verb).CombinedOutput()
	if err != nil {
		return fmt.Errorf("postfix -c %s %s: %v\n%s%s", p.confDir, verb, err, out, testproc.LastLines(p.Maillog(), 20))
	}
	return nil
}

// checkMaillog fails the test on a fatal error or panic in the maillog
// since the last start, and shows Postfix's warnings.
func (p *Postfix) checkMaillog() {
	log := p.Maillog()
	for _, line := range strings.Split(log[min(p.logFrom, len(log)):], "\n") {
		_, msg, ok := strings.Cut(line, "]: ")
		switch {
		case !ok:
		case strings.HasPrefix(msg, "fatal: "), strings.HasPrefix(msg, "panic: "):
			p.t.Errorf("postfix: %s", line)
		case strings.HasPrefix(msg, "warning: "):
			p.t.Logf("postfix: %s", line)
		}
	}
}

// masterPID is the pid in the instance's master.pid, 0 if there is none.
func (p *Postfix) masterPID() int {
	b, err := os.ReadFile(filepath.Join(p.queueDir, "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// Stop stops the instance with 'postfix stop' and waits until its
// processes are gone. Stopping a stopped instance does nothing.
func (p *Postfix) Stop() {
	p.t.Helper()
	if err := p.stop(); err != nil {
		p.t.Error(err)
	}
}

func (p *Postfix) stop() error {
	if !p.running {
		return nil
	}
	p.running = false
	// The master leads a process group of its own with every daemon.
	pgid := p.masterPID()
	err := p.control("stop")
	if pgid == 0 {
		return err
	}
	deadline := time.Now().Add(postfixExitTimeout)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			return errors.Join(err, fmt.Errorf("postfix processes (group %d) still running %v after postfix stop; killed", pgid, postfixExitTimeout))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// QueueFile is what a maillog says about one queue file (see ParseMaillog).
type QueueFile struct {
	ID        string
	MessageID string // the first message-id= of cleanup, with its <>
	// NotificationOf is the queue ID of the message this one is a
	// delivery status notification (bounce) for, "" if none.
	NotificationOf string
	Attempts       []DeliveryAttempt // in log order
	Removed        bool              // qmgr removed the queue file: Postfix is done with it
}

// DeliveryAttempt is one "to=<...>, relay=..., status=..." line.
type DeliveryAttempt struct {
	To     string // the recipient, without <>
	Relay  string // e.g. 127.0.0.1[127.0.0.1]:2424, or none
	DSN    string // e.g. 2.0.0
	Status string // sent, bounced, deferred, ...
	Reply  string // the text in parentheses after the status
	Line   string // the whole log line
}

// Final is the last attempt, or false if there is none.
func (q *QueueFile) Final() (DeliveryAttempt, bool) {
	if len(q.Attempts) == 0 {
		return DeliveryAttempt{}, false
	}
	return q.Attempts[len(q.Attempts)-1], true
}

var (
	// "Nov 28 21:31:26 mx postfix-cistern-interop/lmtp[10783]: 4Nx...: rest"
	maillogLine = regexp.MustCompile(`^\S+\s+\d+\s+\S+\s+\S+\s+` + regexp.QuoteMeta(postfixSyslogName) + `/[\w-]+\[\d+\]: ([0-9A-Za-z]+): (.*)$`)
	// "to=<a@b>, orig_to=<...>, relay=..., delay=..., delays=..., dsn=5.1.1, status=bounced (text)"
	attemptLine = regexp.MustCompile(`^to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=([^,]*), .*dsn=([\d.]+), status=(\w+)(?: \((.*)\))?$`)
	// "sender non-delivery notification: 4Nx..."
	notificationLine = regexp.MustCompile(`^sender (?:non-)?delivery (?:status )?notification: ([0-9A-Za-z]+)$`)
)

// ParseMaillog reads the queue files of a Postfix maillog written with
// enable_long_queue_ids (a queue ID is never reused), by queue ID. A last
// line without its line end is being written and is left for the next
// read.
func ParseMaillog(log string) map[string]*QueueFile {
	files := make(map[string]*QueueFile)
	get := func(id string) *QueueFile {
		q := files[id]
		if q == nil {
			q = &QueueFile{ID: id}
			files[id] = q
		}
		return q
	}
	lines := strings.Split(log, "\n")
	for _, line := range lines[:len(lines)-1] {
		m := maillogLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		q, rest := get(m[1]), m[2]
		switch {
		case strings.HasPrefix(rest, "message-id="):
			if q.MessageID == "" {
				q.MessageID = strings.TrimPrefix(rest, "message-id=")
			}
		case rest == "removed":
			q.Removed = true
		default:
			if a := attemptLine.FindStringSubmatch(rest); a != nil {
				q.Attempts = append(q.Attempts, DeliveryAttempt{To: a[1], Relay: a[2], DSN: a[3], Status: a[4], Reply: a[5], Line: line})
			} else if n := notificationLine.FindStringSubmatch(rest); n != nil {
				get(n[1]).NotificationOf = q.ID
			}
		}
	}
	return files
}
