package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// No new privileges. 'cistern serve' runs with the no_new_privs flag
// (prctl PR_SET_NO_NEW_PRIVS, the kernel's
// Documentation/userspace-api/no_new_privs.rst): no program it could be
// made to execute gains privileges from a set-user-ID bit or file
// capabilities, so a compromised server cannot climb back through a
// setuid helper once it has dropped root.
//
// The flag belongs to a thread, and a thread made later inherits it
// from the thread that makes it. Go's runtime has several threads
// before main runs, and applies a system call to all of them only when
// cgo is not linked (syscall.AllThreadsSyscall), which it is here (the
// C library's user lookups). So main sets the flag on its own thread and
// executes the binary again from that thread (execWithNoNewPrivs): the
// new program starts with that one thread, flag set, and every thread
// after it inherits it. The flag takes nothing else away: root still
// binds port 143 and reads the key, then drops privileges
// (dropServePrivileges), which checks that every thread has the flag.

// noNewPrivsEnv marks the process the re-execution started, so that a
// failed prctl never loops.
const noNewPrivsEnv = "CISTERN_NO_NEW_PRIVS"

// execWithNoNewPrivs makes the process no_new_privs by executing itself
// again (see above). It returns only when that was not done: nil when
// the flag is set already, or the reason.
func execWithNoNewPrivs() error {
	if v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil && v == 1 {
		return nil
	}
	if os.Getenv(noNewPrivsEnv) != "" {
		return errors.New("no_new_privs: still not set after executing again")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: prctl: %w", err)
	}
	env := append(os.Environ(), noNewPrivsEnv+"=1")
	if err := syscall.Exec("/proc/self/exe", os.Args, env); err != nil {
		return fmt.Errorf("no_new_privs: executing again: %w", err)
	}
	return nil // not reached
}

// verifyNoNewPrivs checks that every thread of the process has the
// no_new_privs flag (the NoNewPrivs line of /proc/self/task/*/status).
func verifyNoNewPrivs() error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	for _, t := range tasks {
		on, err := readNoNewPrivs(filepath.Join("/proc/self/task", t.Name(), "status"))
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread ended
		}
		if err != nil {
			return err
		}
		if !on {
			return fmt.Errorf("no_new_privs: not set on thread %s", t.Name())
		}
	}
	return nil
}

// readNoNewPrivs reads the NoNewPrivs line of a status file of /proc.
func readNoNewPrivs(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "NoNewPrivs:"); ok {
			return strings.TrimSpace(v) == "1", nil
		}
	}
	return false, fmt.Errorf("%s: no NoNewPrivs line", path)
}
