package serverproc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// MailUser is the unprivileged account Dovecot reads and writes mail as
// (Dovecot refuses root for mail access). It is the interop suite's
// account; bench/imap.sh, bench/lmtp.sh and scripts/interop.sh create it.
const MailUser = "cistern-interop"

// Owner is MailUser's numeric identity.
type Owner struct {
	Name     string
	UID, GID int
}

// Chown gives path to o.
func (o *Owner) Chown(path string) error { return os.Lchown(path, o.UID, o.GID) }

// CheckDovecot fails unless Dovecot can be run here: the binary, root,
// MailUser, and a work directory root that MailUser can reach. hint is
// appended to each error (how to get what is missing).
func CheckDovecot(binary, root, hint string) (*Owner, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("dovecot: %v: %s", err, hint)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("dovecot's master must run as root: %s", hint)
	}
	u, err := user.Lookup(MailUser)
	if err != nil {
		return nil, fmt.Errorf("mail user: %v: %s", err, hint)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil || uid == 0 {
		return nil, fmt.Errorf("mail user %s has uid %q gid %q: want a non-root account", MailUser, u.Uid, u.Gid)
	}
	if err := CheckTraversable(root); err != nil {
		return nil, fmt.Errorf("work directory: %w (use one under /var/tmp)", err)
	}
	return &Owner{Name: MailUser, UID: uid, GID: gid}, nil
}

// CheckTraversable reports the first directory from dir up to / that
// other users cannot search: MailUser could not reach its mail below it.
func CheckTraversable(dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return &fs.PathError{Op: "search by others", Path: p, Err: fmt.Errorf("mode %v", fi.Mode().Perm())}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// DovecotVersion is "dovecot <version>" as the binary reports it.
func DovecotVersion(binary string) (string, error) {
	out, err := exec.Command(binary, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", binary, err)
	}
	return "dovecot " + strings.TrimSpace(string(out)), nil
}

// DovecotBase is the start of every private configuration: runtime and
// state directories and the log under dir, loopback only, no TLS, and
// mail access as any non-root account.
func DovecotBase(dir string) string {
	return fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log

listen = 127.0.0.1
ssl = no
first_valid_uid = 1
first_valid_gid = 1
`, dir)
}

// StartDovecot starts a private Dovecot in dir: config(port) is written
// to dir/dovecot.conf (it should start with DovecotBase(dir) and listen
// on 127.0.0.1:port), and the master runs in the foreground with it
// until Stop. It returns once the port greets with greeting.
func StartDovecot(binary, dir string, config func(port int) string, greeting string) (*Proc, error) {
	for _, sub := range []string{"", "run", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, "dovecot.conf")
	return Start(Spec{
		Name:  "dovecot",
		Ports: 1,
		Command: func(ports []int) (*exec.Cmd, string, error) {
			if err := os.WriteFile(conf, []byte(config(ports[0])), 0o644); err != nil {
				return nil, "", err
			}
			return exec.Command(binary, "-F", "-c", conf), "127.0.0.1:" + strconv.Itoa(ports[0]), nil
		},
		Greeting: greeting,
		Output:   filepath.Join(dir, "dovecot.out"),
		Log:      filepath.Join(dir, "dovecot.log"),
	})
}
