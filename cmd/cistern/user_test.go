package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/internal/auth"
)

func init() {
	// Cheap hashes: the format is what matters here.
	userHashOptions = auth.HashOptions{BcryptCost: 4, SHA512Rounds: 1000, Argon2: auth.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}}
}

// runUserCmd runs "cistern user args..." with stdin and returns the exit
// code, stdout and stderr.
func runUserCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(context.Background(), append([]string{"user"}, args...), Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errOut})
	return exitCode(err, &errOut), out.String(), errOut.String()
}

func lookupUser(t *testing.T, path, name string) *auth.User {
	t.Helper()
	f, _, err := auth.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := f.Lookup(name)
	if !ok {
		return nil
	}
	return u
}

func checkPassword(t *testing.T, path, name, password, scheme string) {
	t.Helper()
	u := lookupUser(t, path, name)
	if u == nil {
		t.Fatalf("no user %s", name)
	}
	if s, _ := auth.SplitScheme(u.Password); s != scheme {
		t.Errorf("%s: scheme %s, want %s", name, s, scheme)
	}
	if ok, err := auth.Verify(u.Password, password); !ok || err != nil {
		t.Errorf("%s: password %q does not verify against %q: %v", name, password, u.Password, err)
	}
}

func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "passwd")
	steps := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string
		stderr string // must contain
		check  func(t *testing.T)
	}{
		{"add", "secret\n", []string{"add", "--passwd-file", pf, "alice"}, 0, "", "",
			func(t *testing.T) { checkPassword(t, pf, "alice", "secret", auth.SchemeBlfCrypt) }},
		{"add flags after name", "pässwörd", []string{"add", "bob", "--scheme", "sha512-crypt", "--passwd-file", pf, "--home", "/home/bob", "--uid", "1000", "--gid", "100"}, 0, "", "",
			func(t *testing.T) {
				checkPassword(t, pf, "bob", "pässwörd", auth.SchemeSHA512Crypt)
				if u := lookupUser(t, pf, "bob"); u.Home != "/home/bob" || u.UID != "1000" || u.GID != "100" {
					t.Errorf("bob = %+v", u)
				}
			}},
		{"add argon2id, first line only", "one\r\ntwo\n", []string{"add", "--passwd-file", pf, "--scheme", "ARGON2ID", "carol@example.org"}, 0, "", "",
			func(t *testing.T) { checkPassword(t, pf, "carol@example.org", "one", auth.SchemeArgon2ID) }},
		{"add plain warns", "clear\n", []string{"add", "--passwd-file", pf, "--scheme", "PLAIN", "dave"}, 0, "", "clear text",
			func(t *testing.T) { checkPassword(t, pf, "dave", "clear", auth.SchemePlain) }},
		{"add existing", "secret\n", []string{"add", "--passwd-file", pf, "alice"}, 1, "", "already exists", nil},
		{"list", "", []string{"list", "--passwd-file", pf}, 0, "alice\nbob\ncarol@example.org\ndave\n", "", nil},
		{"passwd", "new one\n", []string{"passwd", "--passwd-file", pf, "alice"}, 0, "", "",
			func(t *testing.T) { checkPassword(t, pf, "alice", "new one", auth.SchemeBlfCrypt) }},
		{"passwd changes scheme", "x\n", []string{"passwd", "--passwd-file", pf, "--scheme", "ARGON2ID", "dave"}, 0, "", "",
			func(t *testing.T) { checkPassword(t, pf, "dave", "x", auth.SchemeArgon2ID) }},
		{"passwd unknown", "x\n", []string{"passwd", "--passwd-file", pf, "erin"}, 1, "", "no user", nil},
		{"passwd empty", "\n", []string{"passwd", "--passwd-file", pf, "alice"}, 1, "", "empty password",
			func(t *testing.T) { checkPassword(t, pf, "alice", "new one", auth.SchemeBlfCrypt) }},
		{"passwd no stdin", "", []string{"passwd", "--passwd-file", pf, "alice"}, 1, "", "no password", nil},
		{"passwd too long", strings.Repeat("x", auth.MaxPasswordLen+1) + "\n", []string{"passwd", "--passwd-file", pf, "alice"}, 1, "", "longer", nil},
		{"bcrypt over 72 bytes", strings.Repeat("x", 73) + "\n", []string{"passwd", "--passwd-file", pf, "alice"}, 1, "", "72", nil},
		{"del", "", []string{"del", "--passwd-file", pf, "bob"}, 0, "", "",
			func(t *testing.T) {
				if lookupUser(t, pf, "bob") != nil {
					t.Error("bob still there")
				}
			}},
		{"del unknown", "", []string{"del", "--passwd-file", pf, "bob"}, 1, "", "no user", nil},
		{"list after", "", []string{"list", "--passwd-file", pf}, 0, "alice\ncarol@example.org\ndave\n", "", nil},

		{"bad scheme", "x\n", []string{"add", "--passwd-file", pf, "--scheme", "MD5", "erin"}, 2, "", "MD5", nil},
		{"bad name", "x\n", []string{"add", "--passwd-file", pf, "../erin"}, 2, "", "invalid user name", nil},
		{"no name", "", []string{"add", "--passwd-file", pf}, 2, "", "NAME", nil},
		{"two names", "", []string{"del", "--passwd-file", pf, "a", "b"}, 2, "", "NAME", nil},
		{"list with name", "", []string{"list", "--passwd-file", pf, "alice"}, 2, "", "NAME", nil},
		{"home for passwd", "x\n", []string{"passwd", "--passwd-file", pf, "--home", "/x", "alice"}, 2, "", "--home", nil},
		{"unknown flag", "", []string{"list", "--passwd", pf}, 2, "", "not defined", nil},
		{"unknown subcommand", "", []string{"rename", "alice"}, 2, "", "unknown user command", nil},
		{"no subcommand", "", nil, 2, userHelp, "", nil},
		{"help", "", []string{"-h"}, 0, userHelp, "", nil},
		{"list missing file", "", []string{"list", "--passwd-file", filepath.Join(dir, "absent")}, 1, "", "no such file", nil},
	}
	for _, s := range steps {
		code, stdout, stderr := runUserCmd(t, s.stdin, s.args...)
		if code != s.code || stdout != s.stdout || !strings.Contains(stderr, s.stderr) {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr containing %q",
				s.name, code, stdout, stderr, s.code, s.stdout, s.stderr)
		}
		if s.check != nil {
			s.check(t)
		}
	}
	fi, err := os.Stat(pf)
	if err != nil || fi.Mode() != 0o600 {
		t.Errorf("passwd-file mode %v, %v; want 0600", fi.Mode(), err)
	}
}

func TestUserPasswdFileFromConfig(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "users")
	cfg := filepath.Join(dir, "cistern.toml")
	if err := os.WriteFile(cfg, []byte("passwd_file = \""+pf+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runUserCmd(t, "pw\n", "add", "--config", cfg, "alice"); code != 0 {
		t.Fatalf("add: exit %d: %s", code, stderr)
	}
	checkPassword(t, pf, "alice", "pw", auth.SchemeBlfCrypt)

	// --passwd-file wins over the configuration.
	other := filepath.Join(dir, "other")
	if code, _, stderr := runUserCmd(t, "pw\n", "add", "--config", cfg, "--passwd-file", other, "bob"); code != 0 {
		t.Fatalf("add: exit %d: %s", code, stderr)
	}
	if lookupUser(t, other, "bob") == nil || lookupUser(t, pf, "bob") != nil {
		t.Error("--passwd-file did not win over the configuration")
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("passwd = \"/x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runUserCmd(t, "", "list", "--config", bad); code != 1 || !strings.Contains(stderr, "passwd: unknown key") {
		t.Errorf("bad config: exit %d, %q", code, stderr)
	}
}

// TestUserPasswordFromTerminal runs "user add" on a pseudo-terminal: the
// password is asked for twice and never echoed, and the terminal's echo
// is back on afterwards.
func TestUserPasswordFromTerminal(t *testing.T) {
	master, slave := openPty(t)
	pf := filepath.Join(t.TempDir(), "passwd")

	var (
		mu     sync.Mutex
		screen []byte
	)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			screen = append(screen, buf[:n]...)
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	waitFor := func(s string, count int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			n := strings.Count(string(screen), s)
			mu.Unlock()
			if n >= count {
				return
			}
		}
		t.Fatalf("terminal never showed %q %d times; screen %q", s, count, screen)
	}

	for _, tt := range []struct {
		name, first, second string
		code                int
	}{
		{"alice", "s3cret-pw", "s3cret-pw", 0},
		{"bob", "s3cret-pw", "other-pw", 1},
	} {
		done := make(chan error, 1)
		go func() {
			done <- Run(context.Background(), []string{"user", "add", "--passwd-file", pf, tt.name}, Stdio{In: slave, Out: io.Discard, Err: slave})
		}()
		waitFor("New password: ", map[string]int{"alice": 1, "bob": 2}[tt.name])
		master.Write([]byte(tt.first + "\n"))
		waitFor("Retype new password: ", map[string]int{"alice": 1, "bob": 2}[tt.name])
		master.Write([]byte(tt.second + "\n"))
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("user add did not finish")
		}
		if code := exitCode(err, io.Discard); code != tt.code {
			t.Fatalf("%s: exit %d (%v), want %d", tt.name, code, err, tt.code)
		}
	}
	checkPassword(t, pf, "alice", "s3cret-pw", auth.SchemeBlfCrypt)
	if lookupUser(t, pf, "bob") != nil {
		t.Error("bob was added with mismatched passwords")
	}
	time.Sleep(50 * time.Millisecond) // let the reader catch up
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(string(screen), "pw") {
		t.Errorf("the password was echoed: %q", screen)
	}
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil || tio.Lflag&unix.ECHO == 0 {
		t.Errorf("echo not restored: %v", err)
	}
}

// openPty opens a pseudo-terminal pair with echo on.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Lflag |= unix.ECHO | unix.ICANON
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return m, s
}
