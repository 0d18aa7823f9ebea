package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/config"
	"github.com/cistern-mail/cistern/internal/tlscert"
)

// unprivilegedTestUID is the effective uid that 'cistern serve' and
// 'cistern deliver' see when they run inside a test process that is
// root (see init).
const unprivilegedTestUID = 65534

func init() {
	// Most tests run 'cistern serve' and 'cistern deliver' inside this
	// process, which must neither drop its own privileges nor be refused
	// for being root: there they see an unprivileged uid. The child
	// processes of the binary tests (childEnv) see the real one, and the
	// tests below check the real thing in them.
	if os.Getenv(childEnv) != "1" && os.Geteuid() == 0 {
		effectiveUID = func() int { return unprivilegedTestUID }
	}
}

// testRunAs is the user the binary tests give 'cistern serve' and
// 'cistern deliver' when the test runs as root: nobody, which Debian
// has, with its primary group nogroup and no other.
const testRunAs = "nobody"

// runAsUser returns the configuration line that makes a 'cistern serve'
// the test starts (as a child process) run as testRunAs, after making
// dir usable by that user: dir and everything in it become theirs, and
// the temporary directories above it passable. A test that is not root
// starts servers that run as itself: it gets "" and dir is left alone.
// Call it once dir holds the configuration and the passwd-file.
func runAsUser(t *testing.T, dir string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		return ""
	}
	id, err := lookupIdentity(testRunAs, "")
	if err != nil {
		t.Fatal(err)
	}
	passable(t, dir)
	err = filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, id.uid, id.gid)
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("user = %q\n", testRunAs)
}

// passable lets every user pass through the directories between the
// system's temporary directory and dir (the test's own, mode 0700).
func passable(t *testing.T, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if !strings.HasPrefix(p, tmp+string(filepath.Separator)) {
				t.Fatalf("%s (mode %v) is not passable for %s, and not a temporary directory to change", p, fi.Mode(), testRunAs)
			}
			if err := os.Chmod(p, fi.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
		if p == tmp || p == filepath.Dir(p) {
			return
		}
	}
}

// cisternChild is the cistern binary running as a child of the test
// (cisternCommand), with its standard error read line by line.
type cisternChild struct {
	cmd    *exec.Cmd
	lines  chan string   // standard error, line by line; closed at its end
	exited chan struct{} // closed once cmd has been waited for

	mu  sync.Mutex
	log strings.Builder // all of standard error; guarded by mu
}

// startChild starts 'cistern args...' and kills it at the end of the
// test if it still runs.
func startChild(t *testing.T, args ...string) *cisternChild {
	t.Helper()
	c := &cisternChild{cmd: cisternCommand(t, args...), lines: make(chan string, 1000), exited: make(chan struct{})}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stdout = io.Discard
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer close(c.lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.mu.Lock()
			c.log.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			select {
			case c.lines <- sc.Text():
			default: // nobody waits for it
			}
		}
	}()
	go func() {
		<-read
		c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			// Privileges dropped, the kernel cleared the child's
			// parent-death signal: it must be killed here.
			c.cmd.Process.Kill()
			<-c.exited
		}
		if t.Failed() {
			t.Logf("cistern %q wrote:\n%s", args, c.stderr())
		}
		if log := c.stderr(); strings.Contains(log, "DATA RACE") || strings.Contains(log, "panic") {
			t.Errorf("cistern %q: a data race or a panic:\n%s", args, log)
		}
	})
	return c
}

func (c *cisternChild) stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// waitLine returns the submatches of the next line of standard error
// that matches re, failing the test when none comes within timeout.
func (c *cisternChild) waitLine(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("cistern ended (%v) before a line matching %s", c.cmd.ProcessState, re)
			}
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-deadline:
			t.Fatalf("cistern: no line matching %s within %v", re, timeout)
		}
	}
}

// wait waits for the child to exit and returns its exit status (-1 for
// a signal), failing the test when it does not exit within timeout.
func (c *cisternChild) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-c.exited:
		return c.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("cistern still running %v later", timeout)
		return 0
	}
}

// runChild runs 'cistern args...' to its end with stdin and returns its
// exit status and standard error.
func runChild(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	cmd := cisternCommand(t, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("cistern %q: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// fakeAccounts is a lookupFunc on a fixed table.
func fakeAccounts(userName, groupName string) (*identity, error) {
	accounts := map[string]*identity{
		"cistern": {name: "cistern", uid: 998, gid: 997, groups: []int{997, 110}},
		"root":    {name: "root", uid: 0, gid: 0, groups: []int{0}},
		"toor":    {name: "toor", uid: 0, gid: 1000, groups: []int{1000}},
	}
	groups := map[string]int{"mail": 8, "root": 0}
	a, ok := accounts[userName]
	if !ok {
		return nil, fmt.Errorf("user %q: unknown", userName)
	}
	id := *a
	if groupName != "" {
		gid, ok := groups[groupName]
		if !ok {
			return nil, fmt.Errorf("group %q: unknown", groupName)
		}
		id.gid, id.groups = gid, append([]int{gid}, a.groups...)
	}
	return &id, nil
}

func TestServeIdentity(t *testing.T) {
	tests := []struct {
		name        string
		euid        int
		user, group string
		want        *identity // nil: stays as it is
		err         string    // "": no error
		root        bool      // the error is errRootRefused
	}{
		{name: "root without user", euid: 0, err: `sets no user: set user = "cistern"`, root: true},
		{name: "unprivileged without user", euid: 1000},
		{name: "root becomes user", euid: 0, user: "cistern", want: &identity{name: "cistern", uid: 998, gid: 997, groups: []int{997, 110}}},
		{name: "root becomes user and group", euid: 0, user: "cistern", group: "mail", want: &identity{name: "cistern", uid: 998, gid: 8, groups: []int{8, 997, 110}}},
		{name: "already the user", euid: 998, user: "cistern"},
		{name: "another user", euid: 1000, user: "cistern", err: "only root can switch users"},
		{name: "user root", euid: 0, user: "root", err: "choose an unprivileged user", root: true},
		{name: "a uid 0 by another name", euid: 0, user: "toor", root: true},
		{name: "group root", euid: 0, user: "cistern", group: "root", root: true},
		{name: "unknown user", euid: 0, user: "nosuch", err: `user "nosuch": unknown`},
		{name: "unknown group", euid: 0, user: "cistern", group: "nosuch", err: `group "nosuch": unknown`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := serveIdentity(tc.euid, tc.user, tc.group, fakeAccounts)
			if tc.err == "" && !tc.root {
				if err != nil {
					t.Fatalf("error %v", err)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				if errors.Is(err, errRootRefused) != tc.root {
					t.Errorf("errors.Is(%v, errRootRefused) = %v", err, !tc.root)
				}
				return
			}
			switch {
			case tc.want == nil && id != nil:
				t.Errorf("becomes %v, want to stay", id)
			case tc.want != nil && (id == nil || id.uid != tc.want.uid || id.gid != tc.want.gid || !slices.Equal(id.groups, tc.want.groups)):
				t.Errorf("becomes %+v, want %+v", id, tc.want)
			}
		})
	}
}

// noSuchUID is a uid no account has on a test machine.
const noSuchUID = "2000000000"

func TestDeliverIdentity(t *testing.T) {
	nobody, err := lookupIdentity(testRunAs, "")
	if err != nil {
		t.Fatal(err)
	}
	withUser := &config.Config{User: "cistern"}
	tests := []struct {
		name     string
		euid     int
		uid, gid string
		cfg      *config.Config
		want     *identity // nil: stays as it is
		err      string
	}{
		{name: "not root", euid: 1000, uid: "0", gid: "0", cfg: &config.Config{}},
		{name: "root, nothing to become", cfg: &config.Config{}, err: "no uid and gid and the configuration sets no user"},
		{name: "configured user", cfg: withUser, want: &identity{uid: 998, gid: 997, groups: []int{997, 110}}},
		{name: "numeric ids", uid: "5000", gid: "5001", cfg: &config.Config{}, want: &identity{uid: 5000, gid: 5001, groups: []int{5001}}},
		{name: "ids over configured user", uid: "5000", gid: "5001", cfg: withUser, want: &identity{uid: 5000, gid: 5001, groups: []int{5001}}},
		{name: "named ids", uid: testRunAs, gid: "nogroup", cfg: &config.Config{}, want: &identity{uid: nobody.uid, gid: nobody.gid, groups: []int{nobody.gid}}},
		{name: "uid name gives gid", uid: testRunAs, cfg: &config.Config{}, want: &identity{uid: nobody.uid, gid: nobody.gid, groups: []int{nobody.gid}}},
		{name: "uid without account or gid", uid: noSuchUID, cfg: &config.Config{}, err: "but no gid"},
		{name: "uid without account, configured gid", uid: noSuchUID, cfg: withUser, want: &identity{uid: 2000000000, gid: 997, groups: []int{997}}},
		{name: "gid only", gid: "5001", cfg: withUser, want: &identity{uid: 998, gid: 5001, groups: []int{5001}}},
		{name: "gid only without user", gid: "5001", cfg: &config.Config{}, err: "gid but no uid"},
		{name: "uid 0", uid: "0", gid: "5001", cfg: withUser, err: "would run as"},
		{name: "gid 0", uid: "5000", gid: "0", cfg: withUser, err: "would run as"},
		{name: "configured root", cfg: &config.Config{User: "root"}, err: "would run as"},
		{name: "unknown uid name", uid: "no-such-user-here", gid: "5001", cfg: &config.Config{}, err: "uid field"},
		{name: "unknown gid name", uid: "5000", gid: "no-such-group-here", cfg: &config.Config{}, err: "gid field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := &auth.User{Name: "alice", UID: tc.uid, GID: tc.gid}
			id, err := deliverIdentity(tc.euid, u, tc.cfg, fakeAccounts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errRootRefused) {
					t.Fatalf("error %v, want a refusal saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			switch {
			case tc.want == nil && id != nil:
				t.Errorf("becomes %v, want to stay", id)
			case tc.want != nil && (id == nil || id.uid != tc.want.uid || id.gid != tc.want.gid || !slices.Equal(id.groups, tc.want.groups)):
				t.Errorf("becomes %+v, want %+v", id, tc.want)
			}
		})
	}
}

// TestLookupIdentity resolves the system's nobody by name and by uid.
func TestLookupIdentity(t *testing.T) {
	u, err := user.Lookup(testRunAs)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{testRunAs, u.Uid} {
		id, err := lookupIdentity(name, "")
		if err != nil {
			t.Fatal(err)
		}
		if strconv.Itoa(id.uid) != u.Uid || strconv.Itoa(id.gid) != u.Gid || !slices.Contains(id.groups, id.gid) || id.name != testRunAs {
			t.Errorf("lookupIdentity(%q) = %+v, want %s's uid %s and gid %s", name, id, testRunAs, u.Uid, u.Gid)
		}
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	for _, group := range []string{g.Name, g.Gid} {
		if id, err := lookupIdentity(testRunAs, group); err != nil || strconv.Itoa(id.gid) != g.Gid {
			t.Errorf("lookupIdentity(%q, %q) = %+v, %v; want gid %s", testRunAs, group, id, err, g.Gid)
		}
	}
	if _, err := lookupIdentity("no-such-user-here", ""); err == nil {
		t.Error("an unknown user resolved")
	}
	if _, err := lookupIdentity(testRunAs, "no-such-group-here"); err == nil {
		t.Error("an unknown group resolved")
	}
}

func TestProcStatus(t *testing.T) {
	const good = "Name:\tcistern\nUmask:\t0022\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\n" +
		"Groups:\t65534 \nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
	id := &identity{name: "nobody", uid: 65534, gid: 65534, groups: []int{65534}}
	tests := []struct {
		name, status string
		err          string // "": passes
	}{
		{"dropped", good, ""},
		{"saved uid root", strings.Replace(good, "Uid:\t65534\t65534\t65534", "Uid:\t65534\t65534\t0", 1), "uids"},
		{"fs gid root", strings.Replace(good, "Gid:\t65534\t65534\t65534\t65534", "Gid:\t65534\t65534\t65534\t0", 1), "gids"},
		{"groups kept", strings.Replace(good, "Groups:\t65534 ", "Groups:\t0 65534 ", 1), "groups"},
		{"capabilities kept", strings.Replace(good, "CapPrm:\t0000000000000000", "CapPrm:\t000001ffffffffff", 1), "capabilities"},
		{"effective capability", strings.Replace(good, "CapEff:\t0000000000000000", "CapEff:\t0000000000000400", 1), "capabilities"},
		{"no Uid line", strings.Replace(good, "Uid:", "Uix:", 1), "no Uid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "status")
			if err := os.WriteFile(path, []byte(tc.status), 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := readProcStatus(path)
			if err == nil {
				err = st.check(id)
			}
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// TestVerifyIdentity holds this test process to its own identity: as
// root the check must fail (setuid(0) succeeds), as anyone else pass.
func TestVerifyIdentity(t *testing.T) {
	self := &identity{name: "self", uid: os.Geteuid(), gid: os.Getegid()}
	groups, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	self.groups = groups
	err = verifyIdentity(self)
	if os.Geteuid() == 0 {
		if err == nil || !strings.Contains(err.Error(), "setuid(0) still succeeds") {
			t.Errorf("root verified as dropped: %v", err)
		}
		return
	}
	if err != nil {
		t.Errorf("this unprivileged process fails the check: %v", err)
	}
}

// freeLowPort returns a port below 1024 free on 127.0.0.1 a moment ago:
// only root may bind it.
func freeLowPort(t *testing.T) int {
	t.Helper()
	start := 600 + os.Getpid()%300
	for i := range 400 {
		port := 600 + (start-600+i)%400
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port in 600..999")
	return 0
}

// writePasswd writes a passwd-file at path with the users, whose
// password is "secret".
func writePasswd(t *testing.T, path string, users ...auth.User) {
	t.Helper()
	stored, err := auth.HashWith(auth.DefaultScheme, "secret", auth.HashOptions{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		u.Password = stored
		if err := auth.Add(path, u); err != nil {
			t.Fatal(err)
		}
	}
}

// ownerOf returns the uid and gid of path's owner.
func ownerOf(t *testing.T, path string) (uid, gid int, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid), fi.Mode()
}

// checkTree fails the test unless everything under root belongs to
// uid:gid and is private: directories 0700, files 0600.
func checkTree(t *testing.T, root string, uid, gid int) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		u, g, mode := ownerOf(t, path)
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = fs.ModeDir | 0o700
		}
		if u != uid || g != gid || mode != want {
			t.Errorf("%s: %d:%d %v, want %d:%d %v", path, u, g, mode, uid, gid, want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkNoNewPrivs checks that every thread of process pid has the
// no_new_privs flag: NoNewPrivs 1 in its /proc status.
func checkNoNewPrivs(t *testing.T, pid int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		on, err := readNoNewPrivs(filepath.Join(dir, task.Name(), "status"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if !on {
			t.Errorf("thread %s of 'cistern serve' (pid %d): NoNewPrivs 0", task.Name(), pid)
		}
	}
	if n == 0 {
		t.Fatalf("%s: no threads", dir)
	}
}

// threadStatuses reads the status of every thread of process pid.
func threadStatuses(t *testing.T, pid int) map[string]*procStatus {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*procStatus{}
	for _, task := range tasks {
		st, err := readProcStatus(filepath.Join(dir, task.Name(), "status"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[task.Name()] = st
	}
	if len(out) == 0 {
		t.Fatalf("%s: no threads", dir)
	}
	return out
}

// TestServeDropsPrivileges runs the binary as a daemon started by root:
// it binds a port only root may bind, reads a key only root may read,
// and then serves as nobody, whose files are private; root without a
// user, and a user that is root, are refused. A test that is not root
// checks what such a process can: a user it is not is refused, and its
// own name is accepted without a switch.
func TestServeDropsPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		serveUnprivileged(t)
		return
	}
	nobody, err := lookupIdentity(testRunAs, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	writePasswd(t, passwd, auth.User{Name: "alice"})
	if err := os.Mkdir(filepath.Join(dir, "mail"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o700); err != nil {
		t.Fatal(err)
	}
	userLine := runAsUser(t, dir)
	// The passwd-file as an operator keeps it: root's, readable by the
	// group the server runs in.
	if err := os.Chown(passwd, 0, nobody.gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(passwd, 0o640); err != nil {
		t.Fatal(err)
	}
	// The certificate and key are root's, mode 0600: read at start only.
	tlsDir := filepath.Join(dir, "tls")
	if err := os.Mkdir(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem")
	certPEM, keyPEM, err := tlscert.SelfSigned("localhost", []string{"localhost"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freeLowPort(t)
	socket := filepath.Join(dir, "run", "lmtp.sock")
	data := filepath.Join(dir, "data") // missing: serve makes it
	base := fmt.Sprintf(`data_dir = %q
mail_location = %q
passwd_file = %q
[imap]
listen = ["127.0.0.1:%d"]
listen_tls = ["127.0.0.1:0"]
[lmtp]
socket = %q
socket_mode = "0660"
[tls]
cert = %q
key = %q
`, data, filepath.Join(dir, "mail", "%u", "Maildir"), passwd, port, socket, certPath, keyPath)
	conf := filepath.Join(dir, "cistern.toml")
	if err := os.WriteFile(conf, []byte(userLine+base), 0o600); err != nil {
		t.Fatal(err)
	}

	// Refusals first: they must not leave anything behind.
	for _, tc := range []struct{ name, line, says string }{
		{"no user", "", `refusing to touch mail as root: cistern runs as root and the configuration sets no user: set user = "cistern"`},
		{"user root", "user = \"root\"\n", "refusing to touch mail as root: user = \"root\""},
		{"group root", userLine + "group = \"root\"\n", "refusing to touch mail as root"},
	} {
		path := filepath.Join(dir, "refused.toml")
		if err := os.WriteFile(path, []byte(tc.line+base), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stderr := runChild(t, "", "serve", "--config", path)
		if code != 1 || !strings.Contains(stderr, tc.says) {
			t.Errorf("%s: exit %d, %q; want 1 and %q", tc.name, code, stderr, tc.says)
		}
	}
	if _, err := os.Lstat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused start made data_dir: %v", err)
	}
	demo := startChild(t, "serve", "--demo", "--demo-dir", filepath.Join(dir, "demo"), "--listen", "127.0.0.1:0",
		"--demo-lmtp", "127.0.0.1:0", "--demo-tls-listen", "")
	demo.waitLine(t, regexp.MustCompile(`demo: running as root`), serveStartTimeout)
	demo.waitLine(t, regexp.MustCompile(`lmtp: listening`), serveStartTimeout)
	if err := demo.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := demo.wait(t, serveStartTimeout); code != 0 {
		t.Errorf("demo as root: exit %d after SIGTERM", code)
	}

	child := startChild(t, "serve", "--config", conf)
	dropped := child.waitLine(t, regexp.MustCompile(`msg="privileges: running as an unprivileged user" user=(\S+) uid=(\d+) gid=(\d+)`), serveStartTimeout)
	if dropped[1] != testRunAs || dropped[2] != strconv.Itoa(nobody.uid) || dropped[3] != strconv.Itoa(nobody.gid) {
		t.Errorf("dropped to %q", dropped[1:])
	}
	imapAddr := fmt.Sprintf("127.0.0.1:%d", port)
	// The listeners were logged before the drop.
	m := regexp.MustCompile(`msg="imap: listening with implicit TLS" addr=(\S+)`).FindStringSubmatch(child.stderr())
	if m == nil {
		t.Fatal("no implicit-TLS listener in the log")
	}
	tlsAddr := m[1]
	if !strings.Contains(child.stderr(), `msg="imap: listening" addr=`+imapAddr) {
		t.Errorf("not listening on %s", imapAddr)
	}

	// Every thread of the process is nobody, without a way back, and
	// no_new_privs.
	for tid, st := range threadStatuses(t, child.cmd.Process.Pid) {
		if err := st.check(nobody); err != nil {
			t.Errorf("thread %s: %v", tid, err)
		}
	}
	checkNoNewPrivs(t, child.cmd.Process.Pid)

	// The socket belongs to the user now, with its mode.
	if uid, gid, mode := ownerOf(t, socket); uid != nobody.uid || gid != nobody.gid || mode.Perm() != 0o660 || mode&fs.ModeSocket == 0 {
		t.Errorf("socket %d:%d %v, want %d:%d with mode 0660", uid, gid, mode, nobody.uid, nobody.gid)
	}
	// data_dir was made for the user.
	if uid, gid, mode := ownerOf(t, data); uid != nobody.uid || gid != nobody.gid || mode != fs.ModeDir|0o700 {
		t.Errorf("data_dir %d:%d %v, want %d:%d drwx------", uid, gid, mode, nobody.uid, nobody.gid)
	}

	// The key read as root serves TLS.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	tc, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("TLS: %v", err)
	}
	tc.Close()

	// LOGIN, APPEND and an LMTP delivery over the socket work as nobody.
	c, err := imapclient.DialInsecure(imapAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", "secret").Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	msg := "From: a@example.org\r\nSubject: appended\r\n\r\nhello\r\n"
	app := c.Append("INBOX", int64(len(msg)), nil)
	app.Write([]byte(msg))
	app.Close()
	if _, err := app.Wait(); err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	if err := c.Create("Lists", nil).Wait(); err != nil {
		t.Fatalf("CREATE: %v", err)
	}
	if err := lmtpSend(t, "unix", socket, "s@example.org", []string{"alice@example.org"}, "Subject: over the socket\r\n\r\nx\r\n"); err != nil {
		t.Fatalf("LMTP over the socket: %v", err)
	}
	c.Logout().Wait()

	// SIGHUP: the key is root's, the reload fails and says why.
	if err := child.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reload := child.waitLine(t, regexp.MustCompile(`msg="tls: reload failed; the certificate in force stays".*hint="([^"]*)"`), serveStartTimeout)
	if !strings.Contains(reload[1], "must be readable by uid "+strconv.Itoa(nobody.uid)) {
		t.Errorf("reload failure hint %q", reload[1])
	}
	if !strings.Contains(child.stderr(), `msg="tls: the user cistern runs as cannot read this file`) {
		t.Error("no warning at start that the key cannot be reloaded")
	}

	if err := child.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := child.wait(t, serveStopTimeout); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	if _, err := os.Lstat(socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the socket outlived the server: %v", err)
	}

	// What the server made is nobody's and private.
	if n := checkTree(t, filepath.Join(dir, "mail", "alice"), nobody.uid, nobody.gid); n < 10 {
		t.Errorf("alice's mail holds %d files and directories, want her Maildir, a folder and two messages", n)
	}
	checkTree(t, data, nobody.uid, nobody.gid)
	if msgs, _ := filepath.Glob(filepath.Join(dir, "mail", "alice", "Maildir", "*", "*")); len(msgs) < 2 {
		t.Errorf("alice's Maildir holds %q, want the two messages", msgs)
	}
}

// serveUnprivileged is TestServeDropsPrivileges for a test that is not
// root: configured as a user it is not, serve is refused; configured as
// itself, it serves as itself.
func serveUnprivileged(t *testing.T) {
	self, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	other, refusal := testRunAs, "only root can switch users"
	if self.Username == testRunAs {
		other, refusal = "root", "refusing to touch mail as root"
	}
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	writePasswd(t, passwd, auth.User{Name: "alice"})
	base := fmt.Sprintf(`data_dir = %q
mail_location = %q
passwd_file = %q
[imap]
listen = ["127.0.0.1:0"]
`, filepath.Join(dir, "data"), filepath.Join(dir, "mail", "%u", "Maildir"), passwd)
	conf := filepath.Join(dir, "cistern.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("user = %q\n", other)+base), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stderr := runChild(t, "", "serve", "--config", conf)
	if code != 1 || !strings.Contains(stderr, refusal) {
		t.Errorf("serve as %s by uid %s: exit %d, %q; want 1 and %q", other, self.Uid, code, stderr, refusal)
	}
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("user = %q\n", self.Username)+base), 0o600); err != nil {
		t.Fatal(err)
	}
	child := startChild(t, "serve", "--config", conf)
	addr := child.waitLine(t, regexp.MustCompile(`msg="imap: listening" addr=(\S+)`), serveStartTimeout)[1]
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", "secret").Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	c.Logout().Wait()
	if strings.Contains(child.stderr(), "privileges:") {
		t.Error("a server started as its own user switched users")
	}
	checkNoNewPrivs(t, child.cmd.Process.Pid)
	if err := child.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := child.wait(t, serveStopTimeout); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
}

// TestDeliverDropsPrivileges runs 'cistern deliver' as root: it delivers
// as the passwd-file's uid:gid, or as the configured user, and refuses
// root and nobody to be. A test that is not root delivers as itself.
func TestDeliverDropsPrivileges(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	writePasswd(t, passwd,
		auth.User{Name: "alice"},
		auth.User{Name: "bob", UID: "4242", GID: "4243"},
		auth.User{Name: "carol", UID: "0", GID: "0"})
	if err := os.Mkdir(filepath.Join(dir, "mail"), 0o700); err != nil {
		t.Fatal(err)
	}
	// bob's uid is no account: his directory must be his already.
	if err := os.Mkdir(filepath.Join(dir, "mail", "bob"), 0o700); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("data_dir = %q\nmail_location = %q\npasswd_file = %q\n",
		filepath.Join(dir, "data"), filepath.Join(dir, "mail", "%u", "Maildir"), passwd)
	userLine := runAsUser(t, dir)
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(dir, "mail", "bob"), 4242, 4243); err != nil {
			t.Fatal(err)
		}
		// As /var/mail is: every user passes through.
		if err := os.Chmod(filepath.Join(dir, "mail"), 0o711); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "cistern.toml")
	if err := os.WriteFile(conf, []byte(userLine+base), 0o600); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(dir, "bare.toml")
	if err := os.WriteFile(bare, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := "From: s@example.org\nSubject: hi\n\nhello\n"
	deliver := func(conf, rcpt string) (int, string) {
		return runChild(t, msg, "deliver", "--config", conf, "-u", rcpt, "-f", "s@example.org")
	}
	messages := func(user string) []string {
		names, _ := filepath.Glob(filepath.Join(dir, "mail", user, "Maildir", "new", "*"))
		return names
	}

	if os.Geteuid() != 0 {
		if code, stderr := deliver(conf, "alice"); code != 0 {
			t.Fatalf("deliver: exit %d, %s", code, stderr)
		}
		names := messages("alice")
		if len(names) != 1 {
			t.Fatalf("alice's new/ holds %q", names)
		}
		if uid, _, mode := ownerOf(t, names[0]); uid != os.Geteuid() || mode != 0o600 {
			t.Errorf("message %d %v, want %d -rw-------", uid, mode, os.Geteuid())
		}
		return
	}

	nobody, err := lookupIdentity(testRunAs, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, conf, rcpt string
		uid, gid         int // of the delivered message; -1: refused
	}{
		{"configured user", conf, "alice", nobody.uid, nobody.gid},
		{"passwd-file ids", conf, "bob", 4242, 4243},
		{"passwd-file ids without configured user", bare, "bob", 4242, 4243},
		{"root in the passwd-file", conf, "carol", -1, -1},
		{"nobody to become", bare, "alice", -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := messages(tc.rcpt)
			code, stderr := deliver(tc.conf, tc.rcpt)
			after := messages(tc.rcpt)
			if tc.uid < 0 {
				if code != exTempFail || !strings.Contains(stderr, "refusing to touch mail as root") {
					t.Errorf("exit %d, %q; want %d and a refusal", code, stderr, exTempFail)
				}
				if len(after) != len(before) {
					t.Errorf("a refused delivery delivered: %q", after)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if len(after) != len(before)+1 {
				t.Fatalf("new/ holds %q after, %q before", after, before)
			}
			checkTree(t, filepath.Join(dir, "mail", tc.rcpt, "Maildir"), tc.uid, tc.gid)
		})
	}
	if _, err := os.Lstat(filepath.Join(dir, "mail", "carol")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused delivery to carol made her directory: %v", err)
	}
}
