package testfault

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestUnwritable: the file refuses an append until restored, then takes
// one.
func TestUnwritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dovecot-uidlist")
	if err := os.WriteFile(path, []byte("3 V1 N1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	restore := Unwritable(t, path)
	if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		f.Close()
		t.Fatal("writable after Unwritable")
	}
	restore()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("not writable after restore: %v", err)
	}
	f.Close()
}

// TestHoldLock: each kind of lock is there, with its content, until
// released; a live holder lives until then and not after.
func TestHoldLock(t *testing.T) {
	for _, k := range LockKinds {
		t.Run(k.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "dovecot-uidlist.lock")
			release := HoldLock(t, dir, k)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			pid := 0
			switch k {
			case LockLive:
				host, _ := os.Hostname()
				p, h, ok := strings.Cut(string(data), ":")
				if pid, err = strconv.Atoi(p); err != nil || !ok || h != host {
					t.Fatalf("live lock holds %q", data)
				}
				if err := syscall.Kill(pid, 0); err != nil {
					t.Fatalf("holder %d is not alive: %v", pid, err)
				}
			case LockEmpty:
				if len(data) != 0 {
					t.Fatalf("empty lock holds %q", data)
				}
			case LockGarbage:
				if len(data) == 0 || strings.Contains(string(data), ":") {
					t.Fatalf("garbage lock holds %q", data)
				}
			}
			release()
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("lock still there after release: %v", err)
			}
			if pid != 0 {
				if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
					t.Fatalf("holder %d still there after release: %v", pid, err)
				}
			}
		})
	}
}
