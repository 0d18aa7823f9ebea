package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cistern-mail/cistern/bench/internal/serverproc"
)

// The one IMAP user of both servers.
const (
	benchUser     = "bench"
	benchPassword = "imapbench-secret"
)

// mailOwner is the unprivileged account Dovecot reads and writes the copy
// as (serverproc.MailUser).
type mailOwner = serverproc.Owner

// server is an IMAP server under test.
type server struct {
	name string // "cistern" or "dovecot"
	addr string // 127.0.0.1:port
}

// checkDovecotPrerequisites fails unless Dovecot can be run here: the
// binary, root, the mail user, and a work directory it can reach.
func checkDovecotPrerequisites(binary, root string) (*mailOwner, error) {
	return serverproc.CheckDovecot(binary, root, "run bench/imap.sh (as root), or pass --skip-dovecot")
}

// dovecot is a private Dovecot serving the copy to benchUser.
type dovecot struct {
	*server
	version string
	proc    *serverproc.Proc
}

// dovecotConfig is the whole configuration: IMAP only, on loopback, no
// TLS, one passwd-file user, mail in the copy with Dovecot's index files
// in the Maildir (the default), Dovecot's defaults for everything about
// caching and fsync (mail_fsync = optimized, said again here).
func dovecotConfig(dir, maildir string, port int, owner *mailOwner) string {
	return fmt.Sprintf(`# Private Dovecot of bench/imapbench.
%[7]s
protocols = imap
disable_plaintext_auth = no
auth_mechanisms = plain

mail_location = maildir:%[2]s
mail_fsync = optimized

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
# Mail access as %[5]s; Dovecot refuses root.
userdb {
  driver = static
  args = uid=%[4]d gid=%[6]d home=%[1]s/home
}
`, dir, maildir, port, owner.UID, owner.Name, owner.GID, serverproc.DovecotBase(dir))
}

// startDovecot starts Dovecot in the foreground as a child in a process
// group of its own, and returns once its port greets.
func startDovecot(binary string, w *workDir, owner *mailOwner) (*dovecot, error) {
	version, err := serverproc.DovecotVersion(binary)
	if err != nil {
		return nil, err
	}
	dir := w.dovecotRun
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	if err := owner.Chown(home); err != nil {
		return nil, err
	}
	passwd := fmt.Sprintf("%s:{PLAIN}%s\n", benchUser, benchPassword)
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd), 0o644); err != nil {
		return nil, err
	}
	p, err := serverproc.StartDovecot(binary, dir, func(port int) string {
		return dovecotConfig(dir, w.dovecotMaildir, port, owner)
	}, "* OK")
	if err != nil {
		return nil, err
	}
	return &dovecot{server: &server{name: "dovecot", addr: p.Addr}, version: version, proc: p}, nil
}

// stop stops the master and waits until no process of its group is left.
func (d *dovecot) stop() error { return d.proc.Stop() }
