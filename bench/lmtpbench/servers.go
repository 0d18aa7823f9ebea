package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cistern-mail/cistern/internal/testproc"
)

// recipientDomain is the domain of every recipient address; both servers
// look the user up by the local part.
const recipientDomain = "localhost"

// target is an LMTP server under test with its users' Maildirs.
type target struct {
	name    string // "cistern" or "dovecot"
	proc    *testproc.Proc
	mailDir func(user string) string // the user's Maildir
}

func (t *target) addr() string { return t.proc.Addr }

// rcpt is the recipient address of user.
func rcpt(user string) string { return user + "@" + recipientDomain }

// makeMaildir makes the empty Maildir dir (new/, cur/, tmp/) and the
// directories above it, giving the ones from top down to owner when it
// is not nil.
func makeMaildir(top, dir string, owner *testproc.Owner) error {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return err
	}
	for _, sub := range []string{"new", "cur"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	if owner == nil {
		return nil
	}
	return filepath.Walk(top, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return owner.Chown(path)
	})
}

// startCistern adds users to Cistern's passwd-file with 'cistern user
// add', makes their Maildirs, and starts 'cistern serve' as a child.
func startCistern(binary string, w *workDir, users []string) (*target, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("cistern binary: %w (bench/lmtp.sh builds it; or pass --skip-cistern)", err)
	}
	for _, dir := range []string{w.cisternData, w.cisternMail} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	t := &target{name: "cistern", mailDir: func(u string) string { return filepath.Join(w.cisternMail, u, "Maildir") }}
	for _, u := range users {
		cmd := exec.Command(binary, "user", "add", "--passwd-file", w.cisternPasswd, "--scheme", "PLAIN", u)
		// LMTP needs no password; the user needs one.
		cmd.Stdin = strings.NewReader("lmtpbench-unused\n")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("cistern user add %s: %w: %s", u, err, bytes.TrimSpace(out.Bytes()))
		}
		if err := makeMaildir(t.mailDir(u), t.mailDir(u), nil); err != nil {
			return nil, err
		}
	}
	// cistern serve refuses to touch mail as root: as root, it runs as
	// the mail user Dovecot uses too, who then owns the data, the mail
	// and the passwd-file, as interop's Cistern does.
	runAs := ""
	if os.Geteuid() == 0 {
		runAs = testproc.MailUser
		owner, err := testproc.LookupOwner(runAs)
		if err != nil {
			return nil, fmt.Errorf("%w (bench/lmtp.sh creates the user)", err)
		}
		if err := testproc.CheckTraversable(w.root); err != nil {
			return nil, err
		}
		for _, p := range []string{w.cisternData, w.cisternMail, w.cisternPasswd} {
			if err := owner.ChownTree(p); err != nil {
				return nil, fmt.Errorf("handing %s to %s: %w", p, runAs, err)
			}
		}
	}
	// One IMAP listener (serve needs one) and one LMTP listener on
	// loopback, users in passwd, mail at mail/<user>/Maildir, Cistern's
	// defaults for everything else.
	p, _, err := testproc.StartCistern(binary, w.cisternConfig, testproc.CisternConfig{
		User:         runAs,
		DataDir:      w.cisternData,
		MailLocation: filepath.Join(w.cisternMail, "%u", "Maildir"),
		PasswdFile:   w.cisternPasswd,
	}, w.cisternLog)
	if err != nil {
		return nil, err
	}
	t.proc = p
	return t, nil
}

// dovecotConfig is Dovecot's configuration: LMTP only, on loopback; the
// users in a passwd-file userdb, each with a home under dovecot-mail/
// and the Maildir ~/Maildir with Dovecot's index files in it (the
// default); mail_fsync as given; no plugins (no quota); a recipient's
// +detail is not a mailbox.
func dovecotConfig(w *workDir, port int, mailFsync string) string {
	return fmt.Sprintf(`# Private Dovecot of bench/lmtpbench.
%[1]s
protocols = lmtp

mail_location = maildir:~/Maildir
mail_fsync = %[2]s
mail_plugins =
lmtp_save_to_detail_mailbox = no

service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %[3]d
  }
}

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%n %[4]s
}
userdb {
  driver = passwd-file
  args = username_format=%%n %[4]s
}
`, testproc.DovecotBase(w.dovecotRun), mailFsync, port, w.dovecotUsers)
}

// startDovecot writes Dovecot's passwd-file (uid and gid: the mail
// user's; home: dovecot-mail/<user>), makes the users' Maildirs owned by
// the mail user, and starts the private Dovecot.
func startDovecot(binary string, w *workDir, owner *testproc.Owner, users []string, mailFsync string) (*target, error) {
	home := func(u string) string { return filepath.Join(w.dovecotMail, u) }
	t := &target{name: "dovecot", mailDir: func(u string) string { return filepath.Join(home(u), "Maildir") }}
	if err := os.MkdirAll(w.dovecotRun, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(w.dovecotMail, 0o755); err != nil {
		return nil, err
	}
	var passwd strings.Builder
	for _, u := range users {
		// user:password:uid:gid:gecos:home:shell:extra
		fmt.Fprintf(&passwd, "%s:{PLAIN}lmtpbench-unused:%d:%d::%s::\n", u, owner.UID, owner.GID, home(u))
		if err := makeMaildir(home(u), t.mailDir(u), owner); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(w.dovecotUsers, []byte(passwd.String()), 0o644); err != nil {
		return nil, err
	}
	p, err := testproc.StartDovecot(binary, w.dovecotRun, func(port int) string {
		return dovecotConfig(w, port, mailFsync)
	}, "220 ")
	if err != nil {
		return nil, err
	}
	t.proc = p
	return t, nil
}

// workDir is the layout of --dir (see the package doc).
type workDir struct {
	root          string
	cisternConfig string
	cisternPasswd string
	cisternData   string
	cisternMail   string
	cisternLog    string
	dovecotRun    string
	dovecotUsers  string
	dovecotMail   string
}

func newWorkDir(dir string) (*workDir, error) {
	root, err := testproc.OpenWorkDir(dir)
	if err != nil {
		return nil, err
	}
	w := &workDir{
		root:          root,
		cisternConfig: filepath.Join(root, "cistern.toml"),
		cisternPasswd: filepath.Join(root, "passwd"),
		cisternData:   filepath.Join(root, "cistern-data"),
		cisternMail:   filepath.Join(root, "cistern-mail"),
		cisternLog:    filepath.Join(root, "cistern.log"),
		dovecotRun:    filepath.Join(root, "dovecot-run"),
		dovecotMail:   filepath.Join(root, "dovecot-mail"),
	}
	w.dovecotUsers = filepath.Join(w.dovecotRun, "users")
	// Every run starts from nothing, and nothing is deleted before it:
	// on ext4 without a journal, creating files right after many were
	// deleted is slower (bench/README.md), which would be the runs' cost.
	for _, p := range []string{w.cisternConfig, w.cisternPasswd, w.cisternData, w.cisternMail, w.cisternLog, w.dovecotRun, w.dovecotMail} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: an earlier run's; use a new work directory (deleting many files just before a run slows it down, see bench/README.md)", p)
		}
	}
	return w, nil
}
