package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// TestRegistryCloseWaitsForKick: Registry.Close returns once the sync
// that a Kick started has ended, so that a process that exits after it
// leaves no lock behind: the new message has its UID, and the lock is
// gone. The sync runs before the mailbox is closed, not after: then it
// would open the mailbox's files again and keep them (a file system the
// process could no longer unmount).
func TestRegistryCloseWaitsForKick(t *testing.T) {
	f := newFixture(t)
	reg := NewRegistry(Options{Logger: testLogger(t)}, nil)
	mb, release, err := reg.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	sync1(t, mb)
	base := f.put(maildir.New, "")
	mb.Kick()
	release()
	reg.Close()
	data, err := os.ReadFile(filepath.Join(f.dir, uidlist.FileName))
	if err != nil {
		t.Fatal(err)
	}
	list, _, err := uidlist.Parse(uidlist.FileName, data)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range list.Records {
		found = found || r.Base() == base
	}
	if !found {
		t.Errorf("Close returned before the kicked sync gave %s a UID", base)
	}
	if _, err := os.Lstat(filepath.Join(f.dir, uidlist.LockName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the lock is there after Close: %v", err)
	}
	if open := openFilesUnder(t, f.dir); len(open) != 0 {
		t.Errorf("files of the mailbox still open after Close: %q", open)
	}
	// A Kick after Close starts nothing.
	mb.Kick()
	reg.opts.background.wait()
	if open := openFilesUnder(t, f.dir); len(open) != 0 {
		t.Errorf("files of the mailbox open after a Kick that followed Close: %q", open)
	}
}

// openFilesUnder lists what this process holds open under dir
// (/proc/self/fd).
func openFilesUnder(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("reading /proc/self/fd: %v", err)
	}
	var out []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && (target == dir || strings.HasPrefix(target, dir+"/")) {
			out = append(out, target)
		}
	}
	return out
}
