package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/config"
)

// Cistern never reads or writes mail as root: a bug in a parser that
// strangers feed must not be a bug with root's powers, and a file that
// root made in a Maildir is one the daemon can no longer rewrite.
//
//   - 'cistern serve' started as root opens every listener, reads the TLS
//     certificate, makes data_dir when it is missing, gives data_dir (when
//     it made it) and the LMTP socket to the configured user and group,
//     and then becomes that user for good (become). Root without a
//     configured user is refused; so is a user that is root.
//   - Started as anyone else, it stays who it is; a configured user it is
//     not is refused (only root may switch).
//   - 'cistern deliver' started as root becomes the recipient's uid:gid
//     from the passwd-file, or the configured user when the line has
//     none, before it touches the Maildir; with neither it refuses.
//   - 'cistern serve --demo' as root warns and serves as root: it
//     touches nothing but its own directory, and the README's first
//     command must work in a root shell too.

// errRootRefused is the error of every refusal to touch mail as root.
var errRootRefused = errors.New("refusing to touch mail as root")

// effectiveUID is os.Geteuid. Tests that run 'cistern serve' inside the
// test process replace it: a test process must not drop its own
// privileges. privilege_test.go runs the binary to check the real thing.
var effectiveUID = os.Geteuid

// identity is what a process becomes: a uid, a primary gid and the
// supplementary groups.
type identity struct {
	name   string // the user's name, or the uid in decimal, for messages
	uid    int
	gid    int
	groups []int // supplementary groups, gid among them
}

func (id *identity) String() string {
	return fmt.Sprintf("%s (uid %d, gid %d)", id.name, id.uid, id.gid)
}

// privileged reports whether id would keep root's powers or group.
func (id *identity) privileged() bool { return id.uid == 0 || id.gid == 0 }

// lookupFunc resolves a configured user and group (see lookupIdentity).
type lookupFunc func(userName, groupName string) (*identity, error)

// lookupIdentity resolves a user (a name, or a uid) and a group (a name
// or a gid; "": the user's primary group) in the system's user and group
// databases. The supplementary groups are the user's (as initgroups(3)
// gives them) and the group.
func lookupIdentity(userName, groupName string) (*identity, error) {
	u, err := user.Lookup(userName)
	if _, unknown := errors.AsType[user.UnknownUserError](err); unknown && isNumber(userName) {
		u, err = user.LookupId(userName)
	}
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", userName, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %q: uid %q is not a number", userName, u.Uid)
	}
	gidText := u.Gid
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if _, unknown := errors.AsType[user.UnknownGroupError](err); unknown && isNumber(groupName) {
			g, err = user.LookupGroupId(groupName)
		}
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", groupName, err)
		}
		gidText = g.Gid
	}
	gid, err := strconv.Atoi(gidText)
	if err != nil {
		return nil, fmt.Errorf("user %q: gid %q is not a number", userName, gidText)
	}
	id := &identity{name: u.Username, uid: uid, gid: gid, groups: []int{gid}}
	// No group database to read leaves the primary group alone.
	more, _ := u.GroupIds()
	for _, s := range more {
		if g, err := strconv.Atoi(s); err == nil && !slices.Contains(id.groups, g) {
			id.groups = append(id.groups, g)
		}
	}
	return id, nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 31)
	return err == nil
}

// serveIdentity decides whom 'cistern serve', running with effective
// uid euid, must become: nil when it stays who it is. userName and
// groupName are the configuration's user and group.
func serveIdentity(euid int, userName, groupName string, lookup lookupFunc) (*identity, error) {
	if userName == "" {
		if euid == 0 {
			return nil, fmt.Errorf("%w: cistern runs as root and the configuration sets no user: set user = \"cistern\" (an unprivileged user that owns data_dir and the Maildirs) to serve as that user", errRootRefused)
		}
		return nil, nil
	}
	id, err := lookup(userName, groupName)
	if err != nil {
		return nil, err
	}
	switch {
	case id.privileged():
		return nil, fmt.Errorf("%w: user = %q, group = %q are %s: choose an unprivileged user and group", errRootRefused, userName, groupName, id)
	case euid == 0:
		return id, nil
	case euid == id.uid:
		return nil, nil
	}
	return nil, fmt.Errorf("user = %q is %s, but cistern runs as uid %d: only root can switch users (start it as root, or as %s)", userName, id, euid, id.name)
}

// deliverIdentity decides whom 'cistern deliver', running with
// effective uid euid, must become before it touches the Maildir of u:
// nil when it is not root (the MTA runs it as the recipient already).
// As root it is u's uid and gid from the passwd-file (numbers, or names
// in the system's databases); a field left empty comes from the account
// the uid names, else from the configuration's user and group. The
// supplementary groups are the gid alone, or the configured user's when
// the passwd-file gives neither field.
func deliverIdentity(euid int, u *auth.User, cfg *config.Config, lookup lookupFunc) (*identity, error) {
	if euid != 0 {
		return nil, nil
	}
	var base *identity
	if cfg.User != "" {
		var err error
		if base, err = lookup(cfg.User, cfg.Group); err != nil {
			return nil, err
		}
	}
	fail := func(format string, args ...any) (*identity, error) {
		return nil, fmt.Errorf("%w: user %s: %s", errRootRefused, u.Name, fmt.Sprintf(format, args...))
	}
	var id *identity
	switch {
	case u.UID == "" && u.GID == "":
		if base == nil {
			return fail("the passwd-file gives no uid and gid and the configuration sets no user, so there is nobody to deliver as")
		}
		id = base
	case u.UID == "":
		if base == nil {
			return fail("the passwd-file gives a gid but no uid and the configuration sets no user")
		}
		gid, err := lookupGID(u.GID)
		if err != nil {
			return fail("%v", err)
		}
		id = &identity{name: base.name, uid: base.uid, gid: gid, groups: []int{gid}}
	default:
		acct, err := lookupUID(u.UID)
		if err != nil {
			return fail("%v", err)
		}
		switch {
		case u.GID != "":
			if acct.gid, err = lookupGID(u.GID); err != nil {
				return fail("%v", err)
			}
		case acct.gid < 0 && base != nil:
			acct.gid = base.gid
		case acct.gid < 0:
			return fail("the passwd-file gives uid %s but no gid, and neither the system nor the configuration's user has one for it", u.UID)
		}
		acct.groups = []int{acct.gid}
		id = acct
	}
	if id.privileged() {
		return fail("the delivery would run as %s", id)
	}
	return id, nil
}

// lookupUID resolves a passwd-file uid field: a number (gid -1 when no
// account has it), or a user name (with that user's primary gid).
func lookupUID(field string) (*identity, error) {
	if isNumber(field) {
		uid, _ := strconv.Atoi(field)
		id := &identity{name: field, uid: uid, gid: -1}
		if u, err := user.LookupId(field); err == nil {
			id.name = u.Username
			if gid, err := strconv.Atoi(u.Gid); err == nil {
				id.gid = gid
			}
		}
		return id, nil
	}
	id, err := lookupIdentity(field, "")
	if err != nil {
		return nil, fmt.Errorf("uid field: %w", err)
	}
	return id, nil
}

// lookupGID resolves a passwd-file gid field: a number or a group name.
func lookupGID(field string) (int, error) {
	if isNumber(field) {
		return strconv.Atoi(field)
	}
	g, err := user.LookupGroup(field)
	if err != nil {
		return 0, fmt.Errorf("gid field: %w", err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("gid field: group %q has gid %q", field, g.Gid)
	}
	return gid, nil
}

// become makes every thread of the process id, for good: the
// supplementary groups, then the gid, then the uid (real, effective and
// saved, so that there is no way back), and then checks that it worked
// (verifyIdentity). Go applies each of these calls to every thread of
// the process (syscall.AllThreadsSyscall, or the C library's broadcast
// when cgo is linked), not only to the calling one.
func become(id *identity) error {
	if err := syscall.Setgroups(id.groups); err != nil {
		return fmt.Errorf("becoming %s: setgroups(%v): %w", id, id.groups, err)
	}
	if err := syscall.Setresgid(id.gid, id.gid, id.gid); err != nil {
		return fmt.Errorf("becoming %s: setresgid: %w", id, err)
	}
	if err := syscall.Setresuid(id.uid, id.uid, id.uid); err != nil {
		return fmt.Errorf("becoming %s: setresuid: %w", id, err)
	}
	if err := verifyIdentity(id); err != nil {
		return fmt.Errorf("becoming %s: %w", id, err)
	}
	return nil
}

// verifyIdentity checks that the process is id and cannot be root
// again: setuid(0) and setgid(0) fail, and the status of every thread
// (/proc/self/task/*/status) shows id's uid and gid in all four places
// (real, effective, saved, file system), id's groups, and no
// capabilities.
func verifyIdentity(id *identity) error {
	if err := syscall.Setuid(0); err == nil {
		return errors.New("setuid(0) still succeeds")
	}
	if err := syscall.Setgid(0); err == nil {
		return errors.New("setgid(0) still succeeds")
	}
	ruid, euid, suid := unix.Getresuid()
	rgid, egid, sgid := unix.Getresgid()
	if ruid != id.uid || euid != id.uid || suid != id.uid || rgid != id.gid || egid != id.gid || sgid != id.gid {
		return fmt.Errorf("uids %d %d %d, gids %d %d %d", ruid, euid, suid, rgid, egid, sgid)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no /proc here: getresuid and getresgid must do
	}
	if err != nil {
		return err
	}
	for _, t := range tasks {
		path := filepath.Join("/proc/self/task", t.Name(), "status")
		st, err := readProcStatus(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread ended
		}
		if err != nil {
			return err
		}
		if err := st.check(id); err != nil {
			return fmt.Errorf("thread %s: %w", t.Name(), err)
		}
	}
	return nil
}

// procStatus is what /proc/<pid>/status says of a thread's credentials.
type procStatus struct {
	uids, gids     []int  // real, effective, saved, file system
	groups         []int  // supplementary
	capPrm, capEff string // hexadecimal capability sets
}

// readProcStatus reads the credential lines of a status file of /proc.
func readProcStatus(path string) (*procStatus, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := &procStatus{}
	ints := func(s string) ([]int, error) {
		var out []int
		for _, f := range strings.Fields(s) {
			n, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", path, f)
			}
			out = append(out, n)
		}
		return out, nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), ":")
		switch key {
		case "Uid":
			st.uids, err = ints(val)
		case "Gid":
			st.gids, err = ints(val)
		case "Groups":
			st.groups, err = ints(val)
		case "CapPrm":
			st.capPrm = strings.TrimSpace(val)
		case "CapEff":
			st.capEff = strings.TrimSpace(val)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(st.uids) != 4 || len(st.gids) != 4 {
		return nil, fmt.Errorf("%s: no Uid and Gid lines of four ids", path)
	}
	return st, nil
}

// check reports how st differs from id, with no capabilities.
func (st *procStatus) check(id *identity) error {
	for _, u := range st.uids {
		if u != id.uid {
			return fmt.Errorf("uids %v, want %d", st.uids, id.uid)
		}
	}
	for _, g := range st.gids {
		if g != id.gid {
			return fmt.Errorf("gids %v, want %d", st.gids, id.gid)
		}
	}
	have, want := slices.Sorted(slices.Values(st.groups)), slices.Sorted(slices.Values(id.groups))
	if !slices.Equal(slices.Compact(have), slices.Compact(want)) {
		return fmt.Errorf("groups %v, want %v", st.groups, id.groups)
	}
	if strings.Trim(st.capPrm, "0") != "" || strings.Trim(st.capEff, "0") != "" {
		return fmt.Errorf("capabilities left: permitted %s, effective %s", st.capPrm, st.capEff)
	}
	return nil
}

// dropServePrivileges makes 'cistern serve' id once everything that
// needs root is done (listeners open, the certificate read): it makes
// data_dir when it is missing (mode 0700), gives it and the LMTP socket
// to id, becomes id, and then checks what id must be able to do (write
// data_dir and its index, read the passwd-file), so that a wrong owner
// is one clear error at start rather than a failure at every login.
func dropServePrivileges(id *identity, cfg *config.Config, logger *slog.Logger) error {
	d := cfg.WithDefaults()
	made, err := makeDataDir(d.DataDir)
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	if made {
		if err := os.Lchown(d.DataDir, id.uid, id.gid); err != nil {
			return fmt.Errorf("data_dir: %w", err)
		}
	}
	if d.LMTP.Socket != "" {
		// The socket's mode (lmtp.socket_mode) lets its owner and group
		// connect: they become the user cistern runs as.
		if err := os.Lchown(d.LMTP.Socket, id.uid, id.gid); err != nil {
			return fmt.Errorf("lmtp.socket: %w", err)
		}
	}
	if err := become(id); err != nil {
		return err
	}
	if err := verifyNoNewPrivs(); err != nil {
		return err
	}
	logger.Info("privileges: running as an unprivileged user", "user", id.name, "uid", id.uid, "gid", id.gid, "groups", id.groups, "no_new_privs", true)

	need := func(key, path string, mode uint32, what string) error {
		if err := unix.Access(path, mode); err != nil {
			return fmt.Errorf("%s %s: user %s cannot %s it (%w): give it to them, or loosen its mode", key, path, id.name, what, err)
		}
		return nil
	}
	if err := need("data_dir", d.DataDir, unix.W_OK|unix.X_OK, "write in"); err != nil {
		return err
	}
	index := filepath.Join(d.DataDir, indexFile)
	if _, err := os.Lstat(index); err == nil {
		if err := need("the index", index, unix.R_OK|unix.W_OK, "read and write"); err != nil {
			return err
		}
	}
	if err := need("passwd_file", d.PasswdFile, unix.R_OK, "read"); err != nil {
		return err
	}
	for _, p := range []string{d.TLS.Cert, d.TLS.Key} {
		if p == "" {
			continue
		}
		if err := unix.Access(p, unix.R_OK); err != nil {
			logger.Warn("tls: the user cistern runs as cannot read this file: SIGHUP cannot reload the certificate, the one read at start stays until a restart",
				"path", p, "user", id.name, "err", err)
		}
	}
	return nil
}

// makeDataDir makes the data directory, mode 0700, when it is missing,
// and its missing parents with mode 0755 (they are only passed through).
func makeDataDir(dir string) (made bool, err error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return false, err
	}
	err = os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	return err == nil, err
}
