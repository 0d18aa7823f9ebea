// Command memstate measures what one open mailbox costs in memory, per
// message (issue 14): the resident memory of a real `cistern serve` with
// one IMAP session that has selected a large INBOX and stays, and the
// live heap of the store's state for that mailbox.
//
//	go run ./bench/memstate [--messages 100000] [--bin PATH] [--heapprofile FILE] [--settle 5s]
//
// It makes a Maildir of --messages empty files in cur/ named as Dovecot
// names them (testfs.BenchFilename, about 70 bytes each; half with
// flags), as the demo user's INBOX under a new temporary directory, and
// then:
//
//  1. serve: starts the binary (--bin, or one built from this checkout)
//     with `serve --demo` on 127.0.0.1, logs in, SELECTs INBOX and, once
//     the SELECT is answered and one more NOOP has been, reads VmRSS and
//     VmHWM from /proc/<pid>/status; the same for the server before the
//     SELECT (logged in, nothing selected), so that the difference is the
//     mailbox's; and again --settle later (what stays: the store hands
//     the garbage of a big first sync back a moment after it), with
//     RssAnon. It does that twice: a cold start (the first sync reads
//     the files), then, after a shutdown that stores the state, a warm
//     start (doc.go of internal/store, Warm start);
//  2. in process: opens the same Maildir with store.Open and syncs it,
//     collects garbage and reads the live heap (runtime.MemStats.HeapAlloc)
//     before and after; with --heapprofile it writes a heap profile of
//     what is live then (go tool pprof -sample_index=inuse_space).
//
// It prints one line per figure, the per-message ones divided by
// --messages.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/bench/internal/cli"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/testfs"
)

// startTimeout bounds the server's start and every IMAP exchange.
const startTimeout = 120 * time.Second

func main() { cli.Main("memstate", run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("memstate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	messages := fs.Int("messages", 100_000, "messages in the INBOX")
	bin := fs.String("bin", "", "the cistern binary (default: built from this checkout)")
	heapProfile := fs.String("heapprofile", "", "write the in-process heap profile here")
	settle := fs.Duration("settle", 5*time.Second, "how long after the SELECT the settled figures are read")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", cli.ErrUsage, err)
	}
	if *messages <= 0 {
		return fmt.Errorf("%w: --messages must be positive", cli.ErrUsage)
	}
	tmp, err := os.MkdirTemp("", "memstate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *bin == "" {
		*bin = filepath.Join(tmp, "cistern")
		build := exec.CommandContext(ctx, "go", "build", "-o", *bin, "./cmd/cistern")
		build.Stdout, build.Stderr = stderr, stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build: %w", err)
		}
	}
	data := filepath.Join(tmp, "data")
	inbox := filepath.Join(data, "mail", "demo", "Maildir")
	if err := testfs.MakeBenchMaildir(inbox, *messages); err != nil {
		return err
	}
	n := float64(*messages)

	fmt.Fprintf(stdout, "messages           %d\n", *messages)
	// The first run syncs the INBOX from the files (a cold start) and
	// stores its state at shutdown; the second is served that state
	// (the warm start).
	for _, run := range []string{"cold", "warm"} {
		before, after, settled, err := serveAndSelect(ctx, *bin, data, *messages, *settle, stderr)
		if err != nil {
			return fmt.Errorf("%s start: %w", run, err)
		}
		fmt.Fprintf(stdout, "%s start:\n", run)
		fmt.Fprintf(stdout, "  serve RSS before   %d kB (logged in, nothing selected)\n", before.rss)
		fmt.Fprintf(stdout, "  serve RSS after    %d kB (INBOX selected), peak %d kB\n", after.rss, after.hwm)
		fmt.Fprintf(stdout, "  serve RSS/message  %.0f bytes (after), %.0f bytes (after - before)\n",
			float64(after.rss*1024)/n, float64((after.rss-before.rss)*1024)/n)
		fmt.Fprintf(stdout, "  settled %v:  %d kB anon %d kB: %.0f bytes/message, %.0f bytes/message above before\n",
			*settle, settled.rss, settled.anon, float64(settled.rss*1024)/n, float64((settled.rss-before.rss)*1024)/n)
	}

	live, err := inProcess(ctx, inbox, *messages, *heapProfile)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "store live heap    %d bytes, %.0f bytes/message\n", live, float64(live)/n)
	return nil
}

// memFigures: VmRSS, VmHWM and RssAnon (the resident memory that is the
// process's own, without the file pages it maps: the index's mmap).
type memFigures struct{ rss, hwm, anon int64 } // kB

// procMem reads VmRSS, VmHWM and RssAnon of pid.
func procMem(pid int) (memFigures, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memFigures{}, err
	}
	var f memFigures
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			f.rss = kb
		case "VmHWM":
			f.hwm = kb
		case "RssAnon":
			f.anon = kb
		}
	}
	return f, nil
}

// serveAndSelect starts the demo server on data, logs in, reads its
// memory, SELECTs INBOX (checking that it has n messages), and reads its
// memory again.
func serveAndSelect(ctx context.Context, bin, data string, n int, settle time.Duration, stderr io.Writer) (before, after, settled memFigures, err error) {
	cmd := exec.Command(bin, "serve", "--demo", "--demo-dir", data, "--listen", "127.0.0.1:0",
		"--demo-lmtp", "127.0.0.1:0", "--demo-tls-listen", "")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return before, after, settled, err
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return before, after, settled, err
	}
	defer func() {
		cmd.Process.Signal(unix.SIGTERM)
		cmd.Wait()
	}()
	var addr, user, password string
	lines := bufio.NewScanner(out)
	deadline := time.AfterFunc(startTimeout, func() { cmd.Process.Kill() })
	for lines.Scan() && addr == "" {
		k, v, _ := strings.Cut(lines.Text(), ": ")
		switch k {
		case "user":
			user = v
		case "password":
			password = v
		case "listening":
			addr = v
		}
	}
	deadline.Stop()
	go io.Copy(io.Discard, out)
	if addr == "" || user == "" || password == "" {
		return before, after, settled, errors.New("the server printed no listening:, user: and password: lines")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return before, after, settled, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(startTimeout))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		return before, after, settled, err
	}
	if _, err := command(c, r, "a LOGIN "+user+" "+password); err != nil {
		return before, after, settled, err
	}
	if before, err = procMem(cmd.Process.Pid); err != nil {
		return before, after, settled, err
	}
	resp, err := command(c, r, "b SELECT INBOX")
	if err != nil {
		return before, after, settled, err
	}
	if !strings.Contains(resp, "* "+strconv.Itoa(n)+" EXISTS") {
		return before, after, settled, fmt.Errorf("SELECT did not report %d messages:\n%s", n, resp)
	}
	if _, err := command(c, r, "c NOOP"); err != nil {
		return before, after, settled, err
	}
	if after, err = procMem(cmd.Process.Pid); err != nil {
		return before, after, settled, err
	}
	// What stays: the store hands back what a big first sync left
	// behind a moment after it (internal/store release.go).
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return before, after, settled, ctx.Err()
	}
	if _, err := command(c, r, "d NOOP"); err != nil {
		return before, after, settled, err
	}
	settled, err = procMem(cmd.Process.Pid)
	return before, after, settled, err
}

// command sends one tagged command and returns every line up to its
// tagged OK.
func command(c net.Conn, r *bufio.Reader, line string) (string, error) {
	tag, _, _ := strings.Cut(line, " ")
	if _, err := io.WriteString(c, line+"\r\n"); err != nil {
		return "", err
	}
	var b strings.Builder
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return b.String(), err
		}
		b.WriteString(l)
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				return b.String(), fmt.Errorf("%s: %s", strings.Fields(line)[1], strings.TrimSpace(l))
			}
			return b.String(), nil
		}
	}
}

// inProcess opens and syncs the Maildir at dir in this process and
// returns the live heap it added.
func inProcess(ctx context.Context, dir string, n int, profile string) (uint64, error) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	m, err := store.Open(dir, store.Options{})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	ch, err := m.Sync(ctx)
	if err != nil {
		return 0, err
	}
	if got := len(m.Messages()); got != n {
		return 0, fmt.Errorf("the store holds %d messages, want %d (sync found %d)", got, n, len(ch.New))
	}
	ch = nil
	runtime.GC()
	runtime.ReadMemStats(&ms)
	live := ms.HeapAlloc - base
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return 0, err
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			f.Close()
			return 0, err
		}
		if err := f.Close(); err != nil {
			return 0, err
		}
	}
	runtime.KeepAlive(m)
	return live, nil
}
