package testproc

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
	"testing"
)

// DovecotBinary is where Debian's dovecot-core installs the server.
const DovecotBinary = "/usr/sbin/dovecot"

// MailUser is the unprivileged account Dovecot reads and writes mail as
// (Dovecot refuses root for mail access), and 'cistern serve' runs as
// when a test is root. scripts/lib.sh's add_mail_user creates it.
const MailUser = "cistern-interop"

// Owner is a numeric identity files are given to.
type Owner struct {
	Name     string
	UID, GID int
}

// Chown gives path (not what a link points to) to o.
func (o *Owner) Chown(path string) error { return os.Lchown(path, o.UID, o.GID) }

// ChownTree gives root and everything below it to o. Files that vanish
// meanwhile are skipped.
func (o *Owner) ChownTree(root string) error {
	return filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := o.Chown(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// LookupOwner returns the identity of the system account name, which must
// not be root.
func LookupOwner(name string) (*Owner, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil || uid == 0 {
		return nil, fmt.Errorf("system user %s has uid %q gid %q: want a numeric non-root account", name, u.Uid, u.Gid)
	}
	return &Owner{Name: name, UID: uid, GID: gid}, nil
}

// CheckDovecot fails unless Dovecot can be run here: the binary, root,
// MailUser, and a work directory root that MailUser can reach. hint is
// appended to each error (how to get what is missing).
func CheckDovecot(binary, root, hint string) (*Owner, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("dovecot is not installed (%v): %s", err, hint)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("dovecot's master must run as root: %s", hint)
	}
	o, err := LookupOwner(MailUser)
	if err != nil {
		return nil, fmt.Errorf("mail user: %v: %s", err, hint)
	}
	if err := CheckTraversable(root); err != nil {
		return nil, fmt.Errorf("work directory: %w (use one under /var/tmp)", err)
	}
	return o, nil
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

// TraversableTempDir returns t.TempDir() made reachable by MailUser and
// the servers' own unprivileged users: the testing package makes the
// directory's parent with mode 0700. It fails the test if an ancestor
// outside the test's control still blocks the way (a TMPDIR of mode 0700).
func TraversableTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckTraversable(dir); err != nil {
		t.Fatalf("temporary directory %s: %v; set TMPDIR to a directory others may search", dir, err)
	}
	return dir
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
// state directories and the log (dir/dovecot.log) under dir, loopback
// only, no TLS, and mail access as any non-root account.
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

// DovecotIMAP is a whole configuration of a Dovecot that serves the
// Maildir maildir over IMAP on 127.0.0.1:port to the one user of
// dir/passwd (see WriteDovecotUser), with mail access as owner. extra is
// appended: what a caller tunes (mail_fsync, debugging).
func DovecotIMAP(dir, maildir string, port int, owner *Owner, extra string) string {
	return DovecotBase(dir) + fmt.Sprintf(`protocols = imap
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:%[2]s

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
# Mail access as %[6]s; Dovecot refuses root.
userdb {
  driver = static
  args = uid=%[4]d gid=%[5]d home=%[1]s/home
}
`, dir, maildir, port, owner.UID, owner.GID, owner.Name) + extra
}

// WriteDovecotUser writes dir/passwd with the one user of DovecotIMAP and
// makes its home, dir/home, owned by owner.
func WriteDovecotUser(dir, name, password string, owner *Owner) error {
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return err
	}
	if err := owner.Chown(home); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "passwd"), []byte(name+":{PLAIN}"+password+"\n"), 0o644)
}

// StartDovecot starts a private Dovecot in dir: config(port) is written
// to dir/dovecot.conf (it should start with DovecotBase(dir) and listen
// on 127.0.0.1:port), and the master runs in the foreground with it,
// its output in dir/dovecot.out, until Stop. It returns once the port
// greets with greeting.
func StartDovecot(binary, dir string, config func(port int) string, greeting string) (*Proc, error) {
	for _, sub := range []string{"", "run", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, "dovecot.conf")
	return StartServer(Spec{
		Name:  "dovecot",
		Ports: 1,
		Command: func(ports []int) (*exec.Cmd, []Greeting, error) {
			if err := os.WriteFile(conf, []byte(config(ports[0])), 0o644); err != nil {
				return nil, nil, err
			}
			return exec.Command(binary, "-F", "-c", conf), []Greeting{{Loopback(ports[0]), greeting}}, nil
		},
		Output: filepath.Join(dir, "dovecot.out"),
		Log:    filepath.Join(dir, "dovecot.log"),
	})
}

// OpenWorkDir makes dir (and its parents) if missing and returns its
// absolute path, with mode 0755: mktemp -d makes a directory 0700, and
// MailUser must reach the mail below it.
func OpenWorkDir(dir string) (string, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	return root, os.Chmod(root, 0o755)
}
