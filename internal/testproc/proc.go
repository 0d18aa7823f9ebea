// Package testproc starts the servers that tests and benchmarks run as
// child processes (Dovecot, Postfix's helpers, 'cistern serve'), waits
// until they are ready, and stops them, so that interop/, cmd/cistern's
// tests and bench/ share one way of doing it.
//
//	piece                      what it does
//	Start                      starts a command in a process group of its own,
//	                           its standard output and error appended to a file
//	Proc.WaitReady             polls a readiness check (Greets: a TCP greeting)
//	                           until it passes, the child exits, or a deadline;
//	                           the error holds the tail of the child's output
//	Proc.Stop, Proc.Kill       SIGTERM, then SIGKILL to the group after a grace
//	                           period; reaps; says when the child had exited
//	                           by itself before
//	StartServer                Start + WaitReady on free loopback ports,
//	                           retried on other ports when one was taken
//	StartDovecot, DovecotBase  a private Dovecot in the foreground (dovecot.go)
//	BuildCistern, StartCistern the cistern binary built once per test binary,
//	CisternConfig              its configuration, 'cistern serve' (cistern.go)
//
// The output goes to a file, not a pipe: Dovecot's children inherit it,
// and waiting for the master must not wait for them. A child's group is
// its own (Setpgid), so that Stop reaches the processes it started; Stop
// returns once no process of the group is left, so that nothing of a
// stopped server still touches the files under test.
//
// Ports are picked by listening on 127.0.0.1:0 and closing the listener
// before the child binds them; another process may take one in between,
// so StartServer retries a start whose error says an address is in use
// (StartTries times).
//
// A Proc's methods are called from one goroutine; Done may be waited on
// from any.
package testproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

const (
	// StartTimeout bounds the wait for a child to be ready: generous,
	// because test machines are small and children run with -race.
	StartTimeout = 30 * time.Second
	// StopTimeout is the grace after SIGTERM, and again the wait for the
	// group's other processes, before SIGKILL.
	StopTimeout = 20 * time.Second
	// StartTries is how many sets of ports StartServer tries when the
	// child finds one taken.
	StartTries = 3
	// TailLines is how many lines of a child's output an error quotes.
	TailLines = 20

	greetingTimeout = 5 * time.Second
	dialTimeout     = time.Second
	pollInterval    = 20 * time.Millisecond
)

// Proc is a started child process.
type Proc struct {
	Name string
	// Addr is the address that greeted, when StartServer started it.
	Addr string

	cmd     *exec.Cmd
	pgid    int
	output  string // the file the child's output is appended to
	logFrom int64  // where this start's output begins in it
	done    chan struct{}
	stopped bool // Stop or Kill was called
}

// Start starts cmd in a process group of its own with its standard output
// and error appended to the file output (made if missing). Other fields
// of cmd.SysProcAttr, such as Pdeathsig, are kept.
func Start(name string, cmd *exec.Cmd, output string) (*Proc, error) {
	out, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	from, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, pgid: cmd.Process.Pid, output: output, logFrom: from, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the child has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// State is how the child ended; nil while it runs.
func (p *Proc) State() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.cmd.ProcessState
}

// Pgid is the process group of the child and of the processes it
// started: the pid of the child.
func (p *Proc) Pgid() int { return p.pgid }

// Output returns what the child wrote since this start.
func (p *Proc) Output() string { return readFrom(p.output, p.logFrom) }

// Tail returns the last n lines of Output.
func (p *Proc) Tail(n int) string { return LastLines(p.Output(), n) }

// WaitReady calls ready every few milliseconds until it returns nil. It
// fails when the child exits first, or when timeout passes, with the
// tail of the child's output (and the last error of ready) in the error.
func (p *Proc) WaitReady(timeout time.Duration, ready func() error) error {
	exited := fmt.Errorf("exited: %w", ErrGaveUp)
	err := Poll(timeout, func() error {
		if p.Exited() {
			return exited
		}
		return ready()
	})
	switch {
	case errors.Is(err, exited):
		return fmt.Errorf("%s exited (%v) before it was ready:\n%s", p.Name, p.cmd.ProcessState, p.Tail(TailLines))
	case err != nil:
		return fmt.Errorf("%s %w\n%s", p.Name, err, p.Tail(TailLines))
	}
	return nil
}

// Poll calls ready every few milliseconds until it returns nil, for a
// server that is not a child (one that puts itself in the background).
// When timeout passes first, the error carries ready's last error; an
// error that wraps ErrGaveUp ends the wait at once.
func Poll(timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrGaveUp) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// ErrGaveUp, wrapped in the error of a readiness check, says that waiting
// longer cannot help.
var ErrGaveUp = errors.New("gave up")

// Greets is a readiness check: addr answers a connection with a first
// line that starts with prefix ("* OK" for IMAP, "220 " for SMTP and
// LMTP).
func Greets(addr, prefix string) func() error {
	return func() error {
		line, err := ReadGreeting(addr)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, prefix) {
			return fmt.Errorf("%s greeted %q, want %q…", addr, line, prefix)
		}
		return nil
	}
}

// Stop sends SIGTERM to the child, SIGKILL to its group when it is still
// there after grace, and waits until no process of the group is left.
// It returns an error when a SIGKILL was needed, or when the child had
// exited by itself before Stop (an unexpected exit). A clean stop returns
// nil; the exit status is State's. Stopping a stopped child does nothing.
func (p *Proc) Stop(grace time.Duration) error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	var err error
	if p.Exited() {
		err = fmt.Errorf("%s had exited by itself (%v):\n%s", p.Name, p.cmd.ProcessState, p.Tail(TailLines))
	} else {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			err = fmt.Errorf("%s ignored SIGTERM for %v; killed", p.Name, grace)
			syscall.Kill(-p.pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	return errors.Join(err, p.waitGroup(grace))
}

// Kill sends SIGKILL to the child's group and waits until no process of
// it is left. It returns an error when the child had exited by itself
// before (it was not the SIGKILL that ended it).
func (p *Proc) Kill() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	var err error
	if p.Exited() {
		err = fmt.Errorf("%s had exited by itself (%v):\n%s", p.Name, p.cmd.ProcessState, p.Tail(TailLines))
	}
	syscall.Kill(-p.pgid, syscall.SIGKILL)
	<-p.done
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); err == nil && (!ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL) {
		err = fmt.Errorf("%s ended with %v before the SIGKILL", p.Name, p.cmd.ProcessState)
	}
	return errors.Join(err, p.waitGroup(StopTimeout))
}

// waitGroup waits until no process of the child's group is left, killing
// them after timeout.
func (p *Proc) waitGroup(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for syscall.Kill(-p.pgid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(-p.pgid, syscall.SIGKILL)
			return fmt.Errorf("%s: processes of its group outlived it by %v; killed", p.Name, timeout)
		}
		time.Sleep(pollInterval)
	}
	return nil
}

// Greeting is an address and the start of the first line a server sends
// there once it is up.
type Greeting struct {
	Addr, Prefix string
}

// Spec says how StartServer starts one server.
type Spec struct {
	// Name names the server in errors ("dovecot", "cistern").
	Name string
	// Ports is how many free loopback ports Command is given.
	Ports int
	// Command returns the command to run on the given ports and the
	// greetings that say the server is up (the first one's address
	// becomes Proc.Addr). It may write configuration files; it is called
	// again, with other ports, when a start is retried.
	Command func(ports []int) (*exec.Cmd, []Greeting, error)
	// Output is the file the child's standard output and error are
	// appended to.
	Output string
	// Log, when set, is a log file of the server whose last lines go into
	// the error of a failed start.
	Log string
}

// StartServer starts the server that s describes on free ports and
// returns once every greeting of it came, trying other ports when the
// child's error says that an address is in use.
func StartServer(s Spec) (*Proc, error) {
	var err error
	for try := 1; ; try++ {
		var p *Proc
		p, err = tryServer(s)
		if err == nil {
			return p, nil
		}
		if try == StartTries || !strings.Contains(strings.ToLower(err.Error()), "in use") {
			break
		}
	}
	return nil, fmt.Errorf("starting %s: %w", s.Name, err)
}

func tryServer(s Spec) (*Proc, error) {
	ports, err := FreePorts(s.Ports)
	if err != nil {
		return nil, err
	}
	cmd, greetings, err := s.Command(ports)
	if err != nil {
		return nil, err
	}
	if len(greetings) == 0 {
		return nil, fmt.Errorf("%s: no greeting to wait for", s.Name)
	}
	p, err := Start(s.Name, cmd, s.Output)
	if err != nil {
		return nil, err
	}
	p.Addr = greetings[0].Addr
	deadline := time.Now().Add(StartTimeout)
	for _, g := range greetings {
		if err := p.WaitReady(time.Until(deadline), Greets(g.Addr, g.Prefix)); err != nil {
			p.Stop(StopTimeout)
			if s.Log != "" {
				err = fmt.Errorf("%w\n%s:\n%s", err, s.Log, LastLines(readFrom(s.Log, 0), TailLines))
			}
			return nil, err
		}
	}
	return p, nil
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreeAddr returns a loopback address (host:port) whose port was free a
// moment ago.
func FreeAddr() (string, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return "", err
	}
	return Loopback(ports[0]), nil
}

// Loopback is 127.0.0.1:port.
func Loopback(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// ReadGreeting connects to addr and returns the first line it sends,
// without its line end.
func ReadGreeting(addr string) (string, error) {
	nc, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(greetingTimeout))
	line, err := bufio.NewReader(nc).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// LastLines returns the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}

// readFrom returns the content of path from offset on, or "" when it
// cannot be read.
func readFrom(path string, offset int64) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}
