// Package testfs gives tests the file system troubles a mail server meets
// in production and a test machine does not have: a full disk, and
// permissions that apply (tests here often run as root, whom a directory
// of mode 000 does not stop).
//
//	helper        gives                                          needs
//	Small         a small ext4 file system, loop-mounted for     root, mkfs.ext4 and a loop device;
//	              the test and unmounted when it ends            without them the test is skipped,
//	                                                             the reason printed
//	Fill          a file system with no free block left          nothing
//	              (ENOSPC), and the function that frees it
//	Unprivileged  the rest of the test run as uid and gid        nothing: as root the test runs
//	              65534 (nobody), so that permissions apply      again in a child process
//	Snapshot      every file (content, mtime) and directory of   nothing
//	              a tree, to hold before and after (Diff)
//	BenchMaildir  a Maildir with n empty message files in cur/,  nothing (bench.go)
//	              made fast, reusable across runs (BenchDirEnv)
//
// Each call of Small makes its own image and mount point, so tests that
// use it may run in parallel.
package testfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// SmallSize is the size of the file system Small makes: ext4 with 1 KiB
// blocks, about 6.4 MiB free, filled by Fill in a few milliseconds.
const SmallSize = 8 << 20

// Bounds of the unmount at the end of a test: a file system still busy
// (a server of the test not yet stopped) gets this long to let go.
const (
	unmountTries = 50
	unmountPause = 100 * time.Millisecond
)

// Small makes an ext4 file system of SmallSize bytes in an image file,
// mounts it (a loop device) and returns its mount point, an empty
// directory apart from lost+found. It is unmounted when the test ends
// (passed or not); one still busy then is detached lazily and the test
// fails. Without root, mkfs.ext4 or a loop device the test is skipped,
// with the reason.
func Small(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("testfs: mounting a file system image needs root")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, SmallSize); err != nil {
		t.Fatal(err)
	}
	// -m 0: no blocks reserved for root, who would otherwise still find
	// room on a file system full for everyone else.
	if out, err := exec.Command("mkfs.ext4", "-q", "-m", "0", "-F", img).CombinedOutput(); err != nil {
		t.Skipf("testfs: mkfs.ext4: %v: %s", err, bytes.TrimSpace(out))
	}
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("testfs: mount -o loop: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { unmount(t, mnt) })
	return mnt
}

// unmount unmounts mnt, waiting a little for it to stop being busy: a
// file the test left open (a leak) fails the test.
func unmount(t *testing.T, mnt string) {
	var out []byte
	var err error
	for i := 0; i < unmountTries; i++ {
		if out, err = exec.Command("umount", mnt).CombinedOutput(); err == nil {
			return
		}
		time.Sleep(unmountPause)
	}
	t.Errorf("testfs: umount %s: %v: %s (something of the test still uses it; detached lazily)", mnt, err, bytes.TrimSpace(out))
	if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
		t.Errorf("testfs: umount -l %s: %v: %s", mnt, err, bytes.TrimSpace(out))
	}
}

// fillChunk is the largest write Fill makes; it halves the size down to
// one byte once a write finds no room, so that no block stays free.
const fillChunk = 64 << 10

// fillRounds bounds the write-then-fsync rounds of Fill: an fsync may
// give back blocks that delayed allocation had set aside.
const fillRounds = 8

// probeSize is the size of the write that checks that the file system
// is full: a whole block, which no inode can hold inline.
const probeSize = 4096

// Fill writes a file in dir until the file system holding dir has no
// free block left (writes fail with ENOSPC; inodes remain, so empty
// files can still be made), checks that a new file of one block cannot
// be written, and returns the function that removes the file again and
// syncs the file system, which then has its free blocks back.
func Fill(t testing.TB, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, ".testfs-fill")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatalf("testfs: fill: %v", err)
	}
	defer f.Close()
	buf := make([]byte, fillChunk)
	for round := 0; round < fillRounds; round++ {
		wrote := false
		for n := len(buf); n >= 1; n /= 2 {
			for {
				k, err := f.Write(buf[:n])
				wrote = wrote || k > 0
				if err == nil {
					continue
				}
				if !errors.Is(err, unix.ENOSPC) {
					t.Fatalf("testfs: fill: %v", err)
				}
				break
			}
		}
		if err := f.Sync(); err != nil && !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("testfs: fill: fsync: %v", err)
		}
		if !wrote {
			break
		}
	}
	if err := probeFull(dir); err != nil {
		t.Fatalf("testfs: fill: %v", err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(path); err != nil {
			t.Errorf("testfs: free: %v", err)
			return
		}
		if err := syncFS(dir); err != nil {
			t.Errorf("testfs: free: %v", err)
		}
	}
}

// probeFull checks that one block cannot be written in dir.
func probeFull(dir string) error {
	probe := filepath.Join(dir, ".testfs-probe")
	f, err := os.OpenFile(probe, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(probe)
	defer f.Close()
	_, err = f.Write(make([]byte, probeSize))
	if err == nil {
		err = f.Sync()
	}
	if errors.Is(err, unix.ENOSPC) {
		return nil
	}
	return fmt.Errorf("a %d-byte file could still be written in %s (%v): the file system is not full", probeSize, dir, err)
}

func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// NobodyUID and NobodyGID are the identity Unprivileged runs tests as:
// Debian's nobody and nogroup.
const (
	NobodyUID = 65534
	NobodyGID = 65534
)

// unprivilegedEnv names, in the environment of the child process
// Unprivileged starts, the test that is to drop root's privileges.
const unprivilegedEnv = "CISTERN_TESTFS_UNPRIVILEGED"

// Unprivileged makes the rest of the test run without root's privileges,
// so that file permissions apply to it. It returns true when the caller
// goes on with the test: the test does not run as root, or it is the
// child process below. As root it returns false, and the caller returns
// at once: the test binary was run again, with -test.run naming only
// this test and the environment telling it so; that process became uid
// NobodyUID and gid NobodyGID (no supplementary groups, real, effective
// and saved ids all set) when it got here, ran the rest of the test, and
// its output is in this test's log. Its failure fails this test, its
// skip skips it. Files the test uses must be usable by nobody: the child
// makes its own temporary directories.
func Unprivileged(t *testing.T) bool {
	t.Helper()
	if os.Getenv(unprivilegedEnv) == t.Name() {
		if os.Geteuid() == 0 {
			if err := dropRoot(); err != nil {
				t.Fatalf("testfs: %v", err)
			}
		}
		return true
	}
	if os.Geteuid() != 0 {
		return true
	}
	Rerun(t, fmt.Sprintf("as uid %d", NobodyUID), nil, unprivilegedEnv+"="+t.Name())
	return false
}

// Rerun runs the calling test again in a child process of the test
// binary, started through prefix (a command and its arguments, such as
// unshare --net; none: the binary itself) with env added to its
// environment, and logs its output. The child's failure fails t, its
// skip skips t; a child that did not run the test fails t. what says
// how the child runs, for the log.
func Rerun(t *testing.T, what string, prefix []string, env string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append(slices.Clone(prefix), exe, "-test.run="+runPattern(t.Name()), "-test.v", "-test.count=1")
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout="+time.Until(d).Round(time.Second).String())
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env)
	// A test binary killed by its timeout leaves no child behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("testfs: the test again %s:\n%s", what, out)
	name := regexp.QuoteMeta(t.Name())
	switch {
	case err != nil:
		t.Fatalf("testfs: the test %s failed: %v", what, err)
	case regexp.MustCompile(`(?m)^\s*--- SKIP: ` + name + ` `).Match(out):
		t.Skipf("testfs: the test %s was skipped", what)
	case !regexp.MustCompile(`(?m)^\s*--- PASS: ` + name + ` `).Match(out):
		t.Fatalf("testfs: the test %s did not run", what)
	}
}

// runPattern is the -test.run pattern that matches the test (or
// subtest) name and no other.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// dropRoot makes every thread of the process nobody for good (Go applies
// these calls to all threads).
func dropRoot() error {
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresgid(NobodyGID, NobodyGID, NobodyGID); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setresuid(NobodyUID, NobodyUID, NobodyUID); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	if os.Geteuid() != NobodyUID || os.Getegid() != NobodyGID {
		return fmt.Errorf("still uid %d gid %d after dropping root", os.Geteuid(), os.Getegid())
	}
	return nil
}

// Tree is every file and directory below a root, by path: a file's
// content and modification time, "dir" for a directory. Two Trees are
// equal (maps.Equal) when nothing below the root was made, removed,
// renamed, written or touched between them.
type Tree map[string]string

// Snapshot returns the Tree below root (root included).
func Snapshot(t testing.TB, root string) Tree {
	t.Helper()
	out := Tree{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[path] = "dir"
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		out[path] = fmt.Sprintf("%s@%d", data, fi.ModTime().UnixNano())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Diff lists what differs between two Trees, one path a line, sorted:
// "+ path" only in after, "- path" only in before, "~ path" changed.
func Diff(before, after Tree) string {
	var lines []string
	for p, v := range before {
		if w, ok := after[p]; !ok {
			lines = append(lines, "- "+p)
		} else if v != w {
			lines = append(lines, "~ "+p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			lines = append(lines, "+ "+p)
		}
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[2:], b[2:]) })
	return strings.Join(lines, "\n")
}
