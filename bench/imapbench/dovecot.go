package main

import (
	"github.com/cistern-mail/cistern/internal/testproc"
)

// The one IMAP user of both servers.
const (
	benchUser     = "bench"
	benchPassword = "imapbench-secret"
)

// mailOwner is the unprivileged account Dovecot reads and writes the copy
// as (testproc.MailUser).
type mailOwner = testproc.Owner

// server is an IMAP server under test.
type server struct {
	name string // "cistern" or "dovecot"
	addr string // 127.0.0.1:port; a restart changes it
	// restart stops the server and starts it again on the same mail and
	// indexes, dropping the page cache in between when cold.
	restart func(cold bool) error
}

// checkDovecotPrerequisites fails unless Dovecot can be run here: the
// binary, root, the mail user, and a work directory it can reach.
func checkDovecotPrerequisites(binary, root string) (*mailOwner, error) {
	return testproc.CheckDovecot(binary, root, "run bench/imap.sh (as root), or pass --skip-dovecot")
}

// dovecot is a private Dovecot serving the copy to benchUser.
type dovecot struct {
	*server
	version string
	proc    *testproc.Proc
}

// startDovecot starts Dovecot in the foreground as a child in a process
// group of its own, and returns once its port greets. Its configuration
// is IMAP only, on loopback, no TLS, one passwd-file user, mail in the
// copy with Dovecot's index files in the Maildir (the default), Dovecot's
// defaults for everything about caching and fsync (mail_fsync =
// optimized, said again here).
func startDovecot(binary string, w *workDir, owner *mailOwner) (*dovecot, error) {
	version, err := testproc.DovecotVersion(binary)
	if err != nil {
		return nil, err
	}
	dir := w.dovecotRun
	if err := testproc.WriteDovecotUser(dir, benchUser, benchPassword, owner); err != nil {
		return nil, err
	}
	p, err := testproc.StartDovecot(binary, dir, func(port int) string {
		return "# Private Dovecot of bench/imapbench.\n" +
			testproc.DovecotIMAP(dir, w.dovecotMaildir, port, owner, "mail_fsync = optimized\n")
	}, "* OK")
	if err != nil {
		return nil, err
	}
	return &dovecot{server: &server{name: "dovecot", addr: p.Addr}, version: version, proc: p}, nil
}

// stop stops the master and waits until no process of its group is left.
func (d *dovecot) stop() error { return d.proc.Stop(testproc.StopTimeout) }

// restartWith makes d.restart stop d and start a new Dovecot in its
// place, with the same configuration, mail and index files.
func (d *dovecot) restartWith(binary string, w *workDir, owner *mailOwner) {
	d.server.restart = func(cold bool) error {
		if err := d.stop(); err != nil {
			return err
		}
		if cold {
			if err := dropCaches(); err != nil {
				return err
			}
		}
		nd, err := startDovecot(binary, w, owner)
		if err != nil {
			return err
		}
		d.proc, d.server.addr = nd.proc, nd.server.addr
		return nil
	}
}
