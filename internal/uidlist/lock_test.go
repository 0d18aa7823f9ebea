package uidlist

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/testfs"
)

// helperEnv selects what TestHelperProcess does when the test binary runs
// itself as a child process.
const helperEnv = "CISTERN_UIDLIST_HELPER"

// TestHelperProcess is not a test: it is the child process of the
// cross-process lock tests.
//
//	hold <dir>:       take the lock, print "locked", release on stdin EOF
//	count <dir> <n>:  n times: lock, increment dir/counter, unlock
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process only")
	}
	args := strings.Fields(os.Getenv(helperEnv + "_ARGS"))
	ctx := context.Background()
	switch mode {
	case "hold":
		l, err := AcquireLock(ctx, args[0], LockOptions{Timeout: 10 * time.Second})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		if err := l.Release(); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	case "count":
		n, _ := strconv.Atoi(args[1])
		for range n {
			if err := lockedIncrement(args[0]); err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
		}
	}
	os.Exit(0)
}

func helper(t *testing.T, mode string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperEnv+"_ARGS="+strings.Join(args, " "))
	return cmd
}

// lockedIncrement reads dir/counter, adds one and writes it back, under the
// lock: lost updates show a broken lock.
func lockedIncrement(dir string) error {
	l, err := AcquireLock(context.Background(), dir, LockOptions{Timeout: 20 * time.Second})
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "counter")
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	n, _ := strconv.Atoi(string(data))
	if err := os.WriteFile(path, []byte(strconv.Itoa(n+1)), 0o600); err != nil {
		return err
	}
	return l.Release()
}

func readCounter(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLockContent(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireLock(context.Background(), dir, LockOptions{Hostname: "mx1.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, LockName))
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(os.Getpid()) + ":mx1.example.org"; string(data) != want {
		t.Errorf("lock content %q, want %q", data, want)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockName)); !os.IsNotExist(err) {
		t.Errorf("lock file still there after Release: %v", err)
	}
	if err := l.Release(); !errors.Is(err, ErrWrongLock) {
		t.Errorf("second Release = %v, want ErrWrongLock", err)
	}
	if err := l.Touch(); !errors.Is(err, ErrWrongLock) {
		t.Errorf("Touch after Release = %v, want ErrWrongLock", err)
	}
}

func TestLockExclusionGoroutines(t *testing.T) {
	dir := t.TempDir()
	const workers, rounds = 6, 40
	var inside atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				l, err := AcquireLock(context.Background(), dir, LockOptions{Timeout: 20 * time.Second})
				if err != nil {
					t.Error(err)
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders at once", n)
				}
				data, _ := os.ReadFile(filepath.Join(dir, "counter"))
				n, _ := strconv.Atoi(string(data))
				if err := os.WriteFile(filepath.Join(dir, "counter"), []byte(strconv.Itoa(n+1)), 0o600); err != nil {
					t.Error(err)
				}
				inside.Add(-1)
				if err := l.Release(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := readCounter(t, dir); n != workers*rounds {
		t.Errorf("counter = %d, want %d: lost updates", n, workers*rounds)
	}
}

func TestLockExclusionProcesses(t *testing.T) {
	dir := t.TempDir()
	const procs, rounds = 3, 40
	var cmds []*exec.Cmd
	for range procs {
		cmd := helper(t, "count", dir, strconv.Itoa(rounds))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	// This process competes too.
	for range rounds {
		if err := lockedIncrement(dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
	if n := readCounter(t, dir); n != (procs+1)*rounds {
		t.Errorf("counter = %d, want %d: lost updates", n, (procs+1)*rounds)
	}
}

// startHolder runs a child process that takes the lock of dir and holds it
// until the returned function is called; pid is the child's.
func startHolder(t *testing.T, dir string) (release func(), pid int) {
	cmd := helper(t, "hold", dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("holder said %q, %v", line, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("holder: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return release, cmd.Process.Pid
}

// TestLockLiveHolderTimesOut: a lock whose holder is alive is waited for,
// the whole timeout, and never taken over; then AcquireLock gives up with
// ErrLockTimeout naming that holder.
func TestLockLiveHolderTimesOut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	dir := t.TempDir()
	release, pid := startHolder(t, dir)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(dir, LockName)
	held, err := os.Stat(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	holder := fmt.Sprintf("%d:%s", pid, host)
	if b, err := os.ReadFile(lockPath); err != nil || string(b) != holder {
		t.Fatalf("lock holds %q (%v), want the holder's %q", b, err, holder)
	}

	// AcquireLock's deadline is time.Now()+timeout, taken after start, and
	// it gives up only at or past it, on the same monotonic clock. A lower
	// bound only: how much longer it took is the scheduler's business.
	start := time.Now()
	_, err = AcquireLock(context.Background(), dir, LockOptions{Timeout: timeout})
	waited := time.Since(start)
	t.Logf("gave up after %v", waited)
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("AcquireLock while held = %v, want ErrLockTimeout", err)
	}
	if waited < timeout {
		t.Errorf("gave up after %v, before the %v timeout", waited, timeout)
	}
	if !strings.Contains(err.Error(), strconv.Quote(holder)) {
		t.Errorf("timeout error %q does not name the holder %q", err, holder)
	}
	// The live holder's lock is untouched: not removed, not replaced.
	if now, err := os.Stat(lockPath); err != nil || !os.SameFile(now, held) {
		t.Errorf("the holder's lock was removed or replaced while it was live (%v)", err)
	}
	// Once the holder lets go, we get it, waiting as needed.
	go func() {
		time.Sleep(100 * time.Millisecond)
		release()
	}()
	l, err := AcquireLock(context.Background(), dir, LockOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("AcquireLock after release: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestLockContextCanceled(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, LockName), strconv.Itoa(os.Getppid())+":otherhost")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := AcquireLock(ctx, dir, LockOptions{Timeout: 10 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AcquireLock = %v, want context.DeadlineExceeded", err)
	}
}

// deadPid returns the pid of a process that has exited.
func deadPid(t *testing.T) int {
	prog, err := exec.LookPath("true")
	if err != nil {
		prog = os.Args[0] // slower, but always there
	}
	cmd := exec.Command(prog, "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestLockStale(t *testing.T) {
	const host = "mx1.example.org"
	tests := []struct {
		name       string
		content    func(t *testing.T) string
		staleAfter time.Duration
		timeout    time.Duration
		touchList  bool // keep changing dovecot-uidlist while waiting
		wantErr    error
		minWait    time.Duration
	}{
		{name: "dead pid", content: func(t *testing.T) string { return strconv.Itoa(deadPid(t)) + ":" + host },
			timeout: 2 * time.Second},
		{name: "dead pid with newline", content: func(t *testing.T) string { return strconv.Itoa(deadPid(t)) + ":" + host + "\n" },
			timeout: 2 * time.Second},
		{name: "our pid, not held (earlier process)", content: func(t *testing.T) string { return strconv.Itoa(os.Getpid()) + ":" + host },
			timeout: 2 * time.Second},
		{name: "live pid", content: func(t *testing.T) string { return strconv.Itoa(os.Getppid()) + ":" + host },
			timeout: 300 * time.Millisecond, wantErr: ErrLockTimeout},
		{name: "dead pid on another host is not checked", content: func(t *testing.T) string { return strconv.Itoa(deadPid(t)) + ":otherhost" },
			timeout: 300 * time.Millisecond, wantErr: ErrLockTimeout},
		{name: "by age", content: func(t *testing.T) string { return "1:otherhost" },
			staleAfter: 300 * time.Millisecond, timeout: 5 * time.Second, minWait: 300 * time.Millisecond},
		{name: "empty file by age", content: func(t *testing.T) string { return "" },
			staleAfter: 300 * time.Millisecond, timeout: 5 * time.Second, minWait: 300 * time.Millisecond},
		{name: "not by age while the uidlist changes", content: func(t *testing.T) string { return "1:otherhost" },
			staleAfter: 300 * time.Millisecond, timeout: 1200 * time.Millisecond, touchList: true, wantErr: ErrLockTimeout},
		{name: "never by age", content: func(t *testing.T) string { return "1:otherhost" },
			staleAfter: -1, timeout: 300 * time.Millisecond, wantErr: ErrLockTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			content := tt.content(t)
			writeFile(t, filepath.Join(dir, LockName), content)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if tt.touchList {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						case <-time.After(50 * time.Millisecond):
							writeFile(t, filepath.Join(dir, FileName), strings.Repeat("x", i%7))
						}
					}
				}()
			}
			start := time.Now()
			l, err := AcquireLock(context.Background(), dir, LockOptions{Timeout: tt.timeout, StaleAfter: tt.staleAfter, Hostname: host})
			close(stop)
			wg.Wait()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("AcquireLock = %v, want %v", err, tt.wantErr)
				}
				if data, _ := os.ReadFile(filepath.Join(dir, LockName)); string(data) != content {
					t.Errorf("lock content changed to %q", data)
				}
				return
			}
			if err != nil {
				t.Fatalf("AcquireLock = %v", err)
			}
			defer l.Release()
			if d := time.Since(start); d < tt.minWait {
				t.Errorf("took over after %v, before the stale time %v", d, tt.minWait)
			}
			data, _ := os.ReadFile(filepath.Join(dir, LockName))
			if want := strconv.Itoa(os.Getpid()) + ":" + host; string(data) != want {
				t.Errorf("lock content %q, want %q", data, want)
			}
		})
	}
}

func TestLockReleaseNotOurs(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireLock(context.Background(), dir, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Someone took it over (as stale) and holds a new lock file.
	path := filepath.Join(dir, LockName)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "1:otherhost")
	if err := l.Touch(); !errors.Is(err, ErrLockLost) {
		t.Errorf("Touch = %v, want ErrLockLost", err)
	}
	if err := Append(l, dir, []Record{{UID: 1, Name: "a"}}); !errors.Is(err, ErrLockLost) {
		t.Errorf("Append = %v, want ErrLockLost", err)
	}
	if err := l.Release(); !errors.Is(err, ErrLockLost) {
		t.Errorf("Release = %v, want ErrLockLost", err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "1:otherhost" {
		t.Errorf("other holder's lock file: %q, %v", data, err)
	}
}

func TestLockTouch(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireLock(context.Background(), dir, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	path := filepath.Join(dir, LockName)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if err := l.Touch(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(fi.ModTime()) > time.Minute {
		t.Errorf("mtime after Touch: %v", fi.ModTime())
	}
}

func TestLockMissingDir(t *testing.T) {
	start := time.Now()
	_, err := AcquireLock(context.Background(), filepath.Join(t.TempDir(), "nope"), LockOptions{Timeout: 5 * time.Second})
	if !errors.Is(err, ErrNotExist) {
		t.Fatalf("AcquireLock in missing dir = %v, want ErrNotExist", err)
	}
	if time.Since(start) > time.Second {
		t.Error("waited for a lock in a missing directory")
	}
}

// TestLockFullDisk: on a file system without a free block the lock is
// taken all the same, empty, excludes as ever, leaves nothing in tmp/,
// and is released; once there is room again it names its holder.
func TestLockFullDisk(t *testing.T) {
	mnt := testfs.Small(t)
	dir := filepath.Join(mnt, "Maildir")
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	free := testfs.Fill(t, mnt)
	ctx := context.Background()
	l, err := AcquireLock(ctx, dir, LockOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("AcquireLock on a full disk: %v", err)
	}
	path := filepath.Join(dir, LockName)
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("lock file on a full disk: %v, size %d, want an empty file", err, fi.Size())
	}
	if _, err := AcquireLock(ctx, dir, LockOptions{Timeout: 200 * time.Millisecond}); !errors.Is(err, ErrLockTimeout) {
		t.Errorf("a second AcquireLock while the empty lock is held: %v, want ErrLockTimeout", err)
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "tmp")); err != nil || len(ents) != 0 {
		t.Errorf("tmp/ after taking the lock on a full disk: %v %v, want it empty", ents, err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("Release of the empty lock: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("lock file still there after Release: %v", err)
	}
	free()
	l, err = AcquireLock(ctx, dir, LockOptions{Hostname: "mx1.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if data, err := os.ReadFile(path); err != nil || string(data) != strconv.Itoa(os.Getpid())+":mx1.example.org" {
		t.Errorf("lock content with room again: %q %v", data, err)
	}
}

// The lock file never exists without its holder in it, and taking it
// leaves no temporary file behind, in tmp/ or in the directory.
func TestLockNeverEmpty(t *testing.T) {
	for _, withTmp := range []bool{true, false} {
		dir := t.TempDir()
		if withTmp {
			if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		stop := make(chan struct{})
		var empty, reads atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				data, err := os.ReadFile(filepath.Join(dir, LockName))
				if err == nil {
					reads.Add(1)
					if len(data) == 0 {
						empty.Add(1)
					}
				}
			}
		}()
		for range 300 {
			l, err := AcquireLock(context.Background(), dir, LockOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Release(); err != nil {
				t.Fatal(err)
			}
		}
		close(stop)
		wg.Wait()
		if n := empty.Load(); n > 0 {
			t.Errorf("the lock file was read empty %d times of %d", n, reads.Load())
		}
		for _, d := range []string{dir, filepath.Join(dir, "tmp")} {
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				if e.Name() != "tmp" {
					t.Errorf("left behind: %s", filepath.Join(d, e.Name()))
				}
			}
		}
	}
}
