package testproc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The processes these tests start are this test binary, run with
// helperEnv set to what it should do (see TestMain).
const (
	helperEnv     = "TESTPROC_HELPER"
	helperAddrEnv = "TESTPROC_ADDR"
	// helperLife bounds every helper, should a test leave one behind.
	helperLife = 60 * time.Second
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

// helper is the child: "greet" serves "* OK" greetings on helperAddrEnv;
// "exit" says why on standard error and exits 3; "silent" waits;
// "stubborn" ignores SIGTERM and says "ignoring" once it does.
func helper(mode string) int {
	switch mode {
	case "greet":
		fmt.Println("greet: starting")
		ln, err := net.Listen("tcp", os.Getenv(helperAddrEnv))
		if err != nil {
			fmt.Fprintln(os.Stderr, "greet:", err)
			return 1
		}
		go func() {
			time.Sleep(helperLife)
			os.Exit(2)
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return 1
			}
			fmt.Fprintf(c, "* OK helper ready\r\n")
			c.Close()
		}
	case "exit":
		fmt.Fprintln(os.Stderr, "line one\nfatal: no configuration")
		return 3
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring")
	}
	time.Sleep(helperLife)
	return 0
}

// helperCommand is this test binary as the helper in mode.
func helperCommand(t *testing.T, mode, addr string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperAddrEnv+"="+addr)
	return cmd
}

// startHelper starts the helper in mode; the test stops it at the end,
// whatever it did.
func startHelper(t *testing.T, mode, addr string) *Proc {
	t.Helper()
	p, err := Start("helper-"+mode, helperCommand(t, mode, addr), filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-p.Pgid(), syscall.SIGKILL)
		<-p.Done()
	})
	return p
}

func TestStartServerWaitsForTheGreeting(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	commands := 0
	p, err := StartServer(Spec{
		Name:  "helper",
		Ports: 2,
		Command: func(ports []int) (*exec.Cmd, []Greeting, error) {
			commands++
			if ports[0] == ports[1] {
				t.Errorf("FreePorts gave port %d twice", ports[0])
			}
			return helperCommand(t, "greet", Loopback(ports[0])), []Greeting{{Loopback(ports[0]), "* OK"}}, nil
		},
		Output: out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if commands != 1 {
		t.Errorf("Command called %d times, want 1", commands)
	}
	if line, err := ReadGreeting(p.Addr); err != nil || line != "* OK helper ready" {
		t.Errorf("greeting at %s: %q, %v", p.Addr, line, err)
	}
	if !strings.Contains(p.Output(), "greet: starting") {
		t.Errorf("output %q lacks the helper's line", p.Output())
	}
	if err := p.Stop(StopTimeout); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if !p.Exited() || p.State() == nil {
		t.Fatal("the helper runs on after Stop")
	}
	if ws := p.State().Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("helper ended with %v, want SIGTERM", p.State())
	}
	if err := p.Stop(StopTimeout); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if syscall.Kill(-p.Pgid(), 0) == nil {
		t.Error("a process of the group is left after Stop")
	}
}

// A child that exits before it is ready: the error says how it ended and
// quotes its last output lines.
func TestWaitReadyEarlyExit(t *testing.T) {
	p := startHelper(t, "exit", "")
	start := time.Now()
	err := p.WaitReady(StartTimeout, func() error { return fmt.Errorf("not yet") })
	if err == nil {
		t.Fatal("WaitReady: nil for a child that exited")
	}
	for _, want := range []string{"helper-exit exited", "exit status 3", "fatal: no configuration"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if time.Since(start) >= StartTimeout {
		t.Errorf("WaitReady waited for its deadline, not for the exit")
	}
	if err := p.Stop(StopTimeout); err == nil || !strings.Contains(err.Error(), "had exited by itself") {
		t.Errorf("Stop after an unexpected exit: %v, want the exit reported", err)
	}
}

// The deadline of WaitReady holds while the child runs on; the error
// carries the last error of the check.
func TestWaitReadyDeadline(t *testing.T) {
	p := startHelper(t, "silent", "")
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(300*time.Millisecond, Greets(addr, "* OK"))
	if err == nil || !strings.Contains(err.Error(), "not ready after 300ms") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("WaitReady: %v, want the deadline and the refused connection", err)
	}
	if p.Exited() {
		t.Fatal("the child ended")
	}
	if err := p.Stop(StopTimeout); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// A wrong greeting is not readiness.
func TestGreetsWrongPrefix(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	p := startHelper(t, "greet", addr)
	if err := p.WaitReady(StartTimeout, Greets(addr, "* OK")); err != nil {
		t.Fatal(err)
	}
	if err := Greets(addr, "220 ")(); err == nil || !strings.Contains(err.Error(), `greeted "* OK helper ready"`) {
		t.Errorf("Greets with another prefix: %v", err)
	}
}

// A child that ignores SIGTERM is killed after the grace period, and
// Stop says so.
func TestStopKillsAfterGrace(t *testing.T) {
	p := startHelper(t, "stubborn", "")
	err := p.WaitReady(StartTimeout, func() error {
		if !strings.Contains(p.Output(), "ignoring") {
			return fmt.Errorf("no line yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Stop(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "ignored SIGTERM") {
		t.Errorf("Stop: %v, want the SIGKILL reported", err)
	}
	if ws := p.State().Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("helper ended with %v, want SIGKILL", p.State())
	}
}

func TestKill(t *testing.T) {
	p := startHelper(t, "silent", "")
	if err := p.Kill(); err != nil {
		t.Errorf("Kill: %v", err)
	}
	if !p.Exited() {
		t.Error("the child runs on after Kill")
	}

	q := startHelper(t, "exit", "")
	<-q.Done()
	if err := q.Kill(); err == nil || !strings.Contains(err.Error(), "had exited by itself") {
		t.Errorf("Kill of an exited child: %v, want the exit reported", err)
	}
}

func TestLastLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\n", 5, "a"},
	} {
		if got := LastLines(c.in, c.n); got != c.want {
			t.Errorf("LastLines(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestCisternConfig(t *testing.T) {
	c := CisternConfig{
		DataDir: "/d", MailLocation: "/m/%u/Maildir", PasswdFile: "/p",
		IMAP: "127.0.0.1:1", LMTP: "127.0.0.1:2", LMTPOptions: []string{"quota_full_tempfail = true"},
	}
	want := `data_dir = "/d"
mail_location = "/m/%u/Maildir"
passwd_file = "/p"

[imap]
listen = ["127.0.0.1:1"]

[lmtp]
listen = ["127.0.0.1:2"]
quota_full_tempfail = true
`
	if got := c.String(); got != want {
		t.Errorf("String:\n%s\nwant:\n%s", got, want)
	}
	c.User, c.LMTP, c.LogLevel = "mail", "", "info"
	got := c.String()
	if !strings.HasPrefix(got, "user = \"mail\"\n") || strings.Contains(got, "[lmtp]") || !strings.HasSuffix(got, "[log]\nlevel = \"info\"\n") {
		t.Errorf("String with a user, no LMTP and a log level:\n%s", got)
	}
	if g := c.ServeGreetings(); len(g) != 1 || g[0] != (Greeting{"127.0.0.1:1", "* OK"}) {
		t.Errorf("ServeGreetings: %v", g)
	}
}

// Poll stops at once on an error that wraps ErrGaveUp, and otherwise
// polls until the check passes.
func TestPoll(t *testing.T) {
	calls := 0
	err := Poll(StartTimeout, func() error {
		calls++
		return fmt.Errorf("broken: %w", ErrGaveUp)
	})
	if !errors.Is(err, ErrGaveUp) || calls != 1 {
		t.Errorf("Poll: %v after %d calls, want ErrGaveUp after 1", err, calls)
	}
	calls = 0
	err = Poll(StartTimeout, func() error {
		if calls++; calls < 3 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("Poll: %v after %d calls, want nil after 3", err, calls)
	}
}
