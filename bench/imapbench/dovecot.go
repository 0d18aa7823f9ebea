package main

import (
	"bufio"
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
	"time"
)

// mailUser is the unprivileged account Dovecot reads and writes the copy
// as (Dovecot refuses root for mail access). It is the account of the
// interop suite; bench/imap.sh and scripts/interop.sh create it.
const mailUser = "cistern-interop"

// The one IMAP user of both servers.
const (
	benchUser     = "bench"
	benchPassword = "imapbench-secret"
)

const (
	dovecotStartTimeout = 30 * time.Second // until the port greets
	dovecotStopTimeout  = 10 * time.Second // SIGTERM to exit, then SIGKILL
	dovecotStartTries   = 3                // another port if we lost a race for one
)

// server is an IMAP server under test.
type server struct {
	name string // "cistern" or "dovecot"
	addr string // 127.0.0.1:port
}

// mailOwner is mailUser's numeric identity.
type mailOwner struct {
	name     string
	uid, gid int
}

// checkDovecotPrerequisites fails unless Dovecot can be run here: the
// binary, root, mailUser, and a work directory mailUser can reach.
func checkDovecotPrerequisites(binary, root string) (*mailOwner, error) {
	const hint = "run bench/imap.sh (as root), or pass --skip-dovecot"
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("dovecot: %v: %s", err, hint)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("dovecot's master must run as root: %s", hint)
	}
	u, err := user.Lookup(mailUser)
	if err != nil {
		return nil, fmt.Errorf("mail user: %v: %s", err, hint)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil || uid == 0 {
		return nil, fmt.Errorf("mail user %s has uid %q gid %q: want a non-root account", mailUser, u.Uid, u.Gid)
	}
	if err := checkTraversable(root); err != nil {
		return nil, fmt.Errorf("work directory: %w (use one under /var/tmp)", err)
	}
	return &mailOwner{name: mailUser, uid: uid, gid: gid}, nil
}

// dovecot is a private Dovecot serving the copy to benchUser.
type dovecot struct {
	*server
	version string
	dir     string // dovecot-run
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd has been waited for
}

// dovecotConfig is the whole configuration: IMAP only, on loopback, no
// TLS, one passwd-file user, mail in the copy with Dovecot's index files
// in the Maildir (the default), Dovecot's defaults for everything about
// caching and fsync (mail_fsync = optimized, said again here).
func dovecotConfig(dir, maildir string, port int, owner *mailOwner) string {
	return fmt.Sprintf(`# Private Dovecot of bench/imapbench.
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log

listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain

mail_location = maildir:%[2]s
mail_fsync = optimized
# Mail access as %[5]s; Dovecot refuses root.
first_valid_uid = 1
first_valid_gid = 1

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[3]d
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
  args = uid=%[4]d gid=%[6]d home=%[1]s/home
}
`, dir, maildir, port, owner.uid, owner.name, owner.gid)
}

// startDovecot starts Dovecot in the foreground as a child in a process
// group of its own, and returns once its port greets.
func startDovecot(binary string, w *workDir, owner *mailOwner) (*dovecot, error) {
	out, err := exec.Command(binary, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", binary, err)
	}
	d := &dovecot{version: "dovecot " + strings.TrimSpace(string(out)), dir: w.dovecotRun}
	for _, sub := range []string{"", "run", "state", "home"} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Chown(filepath.Join(d.dir, "home"), owner.uid, owner.gid); err != nil {
		return nil, err
	}
	passwd := fmt.Sprintf("%s:{PLAIN}%s\n", benchUser, benchPassword)
	if err := os.WriteFile(filepath.Join(d.dir, "passwd"), []byte(passwd), 0o644); err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		err = d.tryStart(binary, w.dovecotMaildir, owner)
		if err == nil || try == dovecotStartTries || !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("starting dovecot: %w (log: %s)", err, filepath.Join(d.dir, "dovecot.log"))
	}
	return d, nil
}

func (d *dovecot) tryStart(binary, maildir string, owner *mailOwner) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(d.dir, "dovecot.conf")
	if err := os.WriteFile(conf, []byte(dovecotConfig(d.dir, maildir, port, owner)), 0o644); err != nil {
		return err
	}
	// A file, not a pipe: Dovecot's children inherit it, and Wait must
	// return when the master exits.
	outPath := filepath.Join(d.dir, "dovecot.out")
	out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(binary, "-F", "-c", conf)
	cmd.Stdout, cmd.Stderr = out, out
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
	d.server = &server{name: "dovecot", addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}

	deadline := time.Now().Add(dovecotStartTimeout)
	for {
		select {
		case <-exited:
			d.cmd = nil
			output, _ := os.ReadFile(outPath)
			log, _ := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
			return fmt.Errorf("dovecot exited (%v): %s%s", cmd.ProcessState, output, lastLines(string(log), 10))
		default:
		}
		greeting, err := readGreeting(d.addr)
		if err == nil {
			if !strings.HasPrefix(greeting, "* OK") {
				d.stop()
				return fmt.Errorf("dovecot greeted %q", greeting)
			}
			return nil
		}
		if time.Now().After(deadline) {
			d.stop()
			return fmt.Errorf("no greeting on %s after %v: %v", d.addr, dovecotStartTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM to the master, SIGKILL to its group if it lingers,
// and waits until no process of the group is left.
func (d *dovecot) stop() error {
	if d.cmd == nil {
		return nil
	}
	pgid := d.cmd.Process.Pid
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd = nil
	var err error
	select {
	case <-d.exited:
	case <-time.After(dovecotStopTimeout):
		err = fmt.Errorf("dovecot ignored SIGTERM for %v; killed", dovecotStopTimeout)
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-d.exited
	}
	deadline := time.Now().Add(dovecotStopTimeout)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			return errors.Join(err, fmt.Errorf("dovecot's children outlived the master by %v; killed", dovecotStopTimeout))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// readGreeting connects to addr and returns the first line it sends.
func readGreeting(addr string) (string, error) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(nc).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}
