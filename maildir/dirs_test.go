package maildir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// currentUmask reads the umask without changing it (syscall.Umask would
// race with parallel tests creating files).
func currentUmask(t testing.TB) os.FileMode {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			return os.FileMode(m)
		}
	}
	t.Skip("no Umask line in /proc/self/status")
	return 0
}

// newMaildir makes an empty Maildir in a fresh temporary directory.
func newMaildir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Maildir")
	if err := Create(dir, 0); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCreate(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b", "Maildir")
	if IsMaildir(dir) {
		t.Fatal("IsMaildir before Create")
	}
	if err := Create(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if !IsMaildir(dir) {
		t.Fatal("not a Maildir after Create")
	}
	umask := currentUmask(t)
	for _, sub := range []string{"", New, Cur, Tmp} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		if want := os.FileMode(0o750) &^ umask; fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", sub, fi.Mode().Perm(), want)
		}
	}
	// Idempotent, and it completes a half-made Maildir.
	if err := Create(dir, 0); err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, Tmp)); err != nil {
		t.Fatal(err)
	}
	if IsMaildir(dir) {
		t.Fatal("IsMaildir without tmp/")
	}
	if err := Create(dir, 0); err != nil || !IsMaildir(dir) {
		t.Fatalf("Create did not complete the Maildir: %v", err)
	}
}

func TestCreateOverFile(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Create(file, 0); err == nil {
		t.Error("Create over a file succeeded")
	}
	dir := filepath.Join(base, "md")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, Cur), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Create(dir, 0); err == nil {
		t.Error("Create with a file named cur succeeded")
	}
	if IsMaildir(dir) {
		t.Error("IsMaildir with a file named cur")
	}
	if IsMaildir(filepath.Join(base, "missing")) {
		t.Error("IsMaildir of a missing path")
	}
}

func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Errorf("SyncDir(dir): %v", err)
	}
	err := SyncDir(filepath.Join(dir, "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncDir(missing) = %v, want not exist", err)
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(file); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("SyncDir(file) = %v, want ENOTDIR", err)
	}
}
