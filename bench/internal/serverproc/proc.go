// Package serverproc starts the servers that the benchmarks under bench/
// measure as child processes on loopback ports, waits until they greet,
// and stops them: a private Dovecot with a configuration of its own
// (StartDovecot), or any other server command (Start), such as Cistern's
// daemon.
//
// A child runs in the foreground in a process group of its own, with its
// standard output and error appended to a file (not a pipe: Dovecot's
// children inherit it, and waiting for the master must not wait for
// them). Stop sends SIGTERM to the child, SIGKILL to the group when it
// lingers, and returns once no process of the group is left, so that a
// benchmark never leaves a server behind.
//
// Ports are picked by listening on 127.0.0.1:0 and closing the listener
// before the child binds them; another process may take one in between,
// so a start whose child reports an address in use is retried on other
// ports (StartTries times).
package serverproc

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
	// StartTimeout bounds the wait for a child's greeting.
	StartTimeout = 30 * time.Second
	// StopTimeout bounds the wait after SIGTERM, and again the wait for
	// the group's other processes, before SIGKILL.
	StopTimeout = 10 * time.Second
	// StartTries is how many sets of ports a start tries when the child
	// finds one taken.
	StartTries = 3

	greetingTimeout = 5 * time.Second
	pollInterval    = 50 * time.Millisecond
)

// Spec says how to start one server.
type Spec struct {
	// Name names the server in errors ("dovecot", "cistern").
	Name string
	// Ports is how many free loopback ports Command is given.
	Ports int
	// Command returns the command to run on the given ports and the
	// address (host:port) whose greeting says that the server is up. It
	// may write configuration files; it is called again, with other
	// ports, when a start is retried.
	Command func(ports []int) (cmd *exec.Cmd, addr string, err error)
	// Greeting is what the first line the server sends on addr must
	// start with ("* OK" for IMAP, "220 " for LMTP).
	Greeting string
	// Output is the file the child's standard output and error are
	// appended to.
	Output string
	// Log, when set, is a log file of the server whose last lines go
	// into the error of a failed start.
	Log string
}

// Proc is a running server.
type Proc struct {
	Name string
	Addr string // the address that greeted
	pid  int
	cmd  *exec.Cmd
	// exited is closed once cmd has been waited for.
	exited chan struct{}
}

// Start starts the server that s describes and returns once it greets on
// its address.
func Start(s Spec) (*Proc, error) {
	var err error
	for try := 1; ; try++ {
		var p *Proc
		p, err = tryStart(s)
		if err == nil {
			return p, nil
		}
		if try == StartTries || !strings.Contains(strings.ToLower(err.Error()), "in use") {
			break
		}
	}
	where := s.Output
	if s.Log != "" {
		where = s.Log
	}
	return nil, fmt.Errorf("starting %s: %w (see %s)", s.Name, err, where)
}

func tryStart(s Spec) (*Proc, error) {
	ports, err := FreePorts(s.Ports)
	if err != nil {
		return nil, err
	}
	cmd, addr, err := s.Command(ports)
	if err != nil {
		return nil, err
	}
	out, err := os.OpenFile(s.Output, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	start, _ := out.Seek(0, io.SeekEnd)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Name: s.Name, Addr: addr, pid: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()

	deadline := time.Now().Add(StartTimeout)
	for {
		select {
		case <-p.exited:
			said := lastLines(readFrom(s.Output, start), 10) + lastLines(readFrom(s.Log, 0), 10)
			return nil, fmt.Errorf("%s exited (%v): %s", s.Name, cmd.ProcessState, strings.TrimSpace(said))
		default:
		}
		greeting, err := ReadGreeting(addr)
		if err == nil {
			if !strings.HasPrefix(greeting, s.Greeting) {
				p.Stop()
				return nil, fmt.Errorf("%s on %s greeted %q, want %q…", s.Name, addr, greeting, s.Greeting)
			}
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("no greeting from %s on %s after %v: %v", s.Name, addr, StartTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// Stop sends SIGTERM to the server, SIGKILL to its process group if it
// lingers, and waits until no process of the group is left. Stopping a
// stopped server does nothing.
func (p *Proc) Stop() error {
	if p.cmd == nil {
		return nil
	}
	pgid := p.cmd.Process.Pid
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd = nil
	var err error
	select {
	case <-p.exited:
	case <-time.After(StopTimeout):
		err = fmt.Errorf("%s ignored SIGTERM for %v; killed", p.Name, StopTimeout)
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
	deadline := time.Now().Add(StopTimeout)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			return errors.Join(err, fmt.Errorf("%s: processes of its group outlived it by %v; killed", p.Name, StopTimeout))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// Pgid is the process group of the server and of the processes it
// started: the pid of its main process.
func (p *Proc) Pgid() int { return p.pid }

// Exited reports whether the server's main process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// FreePorts returns n loopback TCP ports that were free a moment ago.
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

// ReadGreeting connects to addr and returns the first line it sends,
// without its line end.
func ReadGreeting(addr string) (string, error) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(greetingTimeout))
	line, err := bufio.NewReader(nc).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
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

func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}
