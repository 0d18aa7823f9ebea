package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// TestRegistryCloseWaitsForKick: Registry.Close returns once the sync
// that a Kick started has ended, so that a process that exits after it
// leaves no lock behind: the new message has its UID, and the lock is
// gone.
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
}
