package delivery

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/maildir"
)

func TestKindOfDiskAndAccess(t *testing.T) {
	enospc := &os.PathError{Op: "write", Path: "/m/tmp/x", Err: syscall.ENOSPC}
	eacces := &os.PathError{Op: "mkdir", Path: "/m", Err: syscall.EACCES}
	for _, tt := range []struct {
		name string
		err  error
		want Kind
	}{
		{"ENOSPC", fmt.Errorf("maildir: deliver: %w", enospc), DiskFull},
		{"EDQUOT", &os.PathError{Op: "write", Path: "/m/tmp/x", Err: syscall.EDQUOT}, DiskFull},
		{"no room to make the Maildir", fmt.Errorf("%w: %w", ErrCannotCreate, enospc), DiskFull},
		{"no access", fmt.Errorf("%w: %w", ErrNoAccess, eacces), NoAccess},
		{"permission denied", eacces, NoAccess},
		{"no permission to make the Maildir", fmt.Errorf("%w: %w", ErrCannotCreate, eacces), CannotCreate},
		{"over quota", store.ErrOverQuota, OverQuota},
		{"other", errors.New("I/O error"), Temporary},
	} {
		if got := KindOf(tt.err); got != tt.want {
			t.Errorf("%s: KindOf = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestDeliverFullDisk: with no free block, a delivery fails as DiskFull
// and leaves nothing, in tmp/ or elsewhere; a Maildir that cannot be made
// for want of room is DiskFull too (the sender retries), and leaves no
// half-made account; with room again, both deliveries work.
func TestDeliverFullDisk(t *testing.T) {
	f := newFixture(t, "a", "new")
	mnt := testfs.Small(t)
	for _, n := range []string{"a", "new"} {
		u := f.u.users[n]
		u.Root = filepath.Join(mnt, n, "Maildir")
		f.u.users[n] = u
	}
	if res := f.d.Deliver(Envelope{}, f.resolve(t, "a"), strings.NewReader(sampleMsg)); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	first := only(t, f.root("a"))
	free := testfs.Fill(t, mnt)

	res := f.d.Deliver(Envelope{}, f.resolve(t, "a", "new"), strings.NewReader(sampleMsg))
	for i, r := range res {
		if KindOf(r.Err) != DiskFull {
			t.Errorf("recipient %d on a full disk: %v (%v), want disk full", i, KindOf(r.Err), r.Err)
		}
	}
	if got := only(t, f.root("a")); got != first {
		t.Errorf("a's new/ holds %s, want only %s", got, first)
	}
	// Its parent may not even be there: making it needs a block.
	if ents, err := os.ReadDir(filepath.Join(mnt, "new")); (err != nil && !errors.Is(err, os.ErrNotExist)) || len(ents) != 0 {
		t.Errorf("where the Maildir that could not be made was to go: %v %v", ents, err)
	}
	if c := &f.d.Counters; c.TempFail.Load() != 2 || c.CannotCreate.Load() != 0 {
		t.Errorf("counters: temp %d, cannot create %d; want 2 and 0", c.TempFail.Load(), c.CannotCreate.Load())
	}
	if !strings.Contains(f.log.String(), `result="disk full"`) {
		t.Errorf("log: %s", f.log.String())
	}

	free()
	res = f.d.Deliver(Envelope{}, f.resolve(t, "a", "new"), strings.NewReader(sampleMsg))
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("recipient %d with room again: %v", i, r.Err)
		}
	}
	if names := files(t, f.root("a"), maildir.New); len(names) != 2 {
		t.Errorf("a's new/ holds %q, want 2 messages", names)
	}
	only(t, f.root("new"))
}

// TestDeliverUnusableFolder: a folder that exists but that the process
// may not look inside is not missing: its mail fails with NoAccess and
// goes nowhere else, with or without CreateFolder. As root the test
// runs as nobody.
func TestDeliverUnusableFolder(t *testing.T) {
	if !testfs.Unprivileged(t) {
		return
	}
	f := newFixture(t, "a")
	f.d.SaveToDetailMailbox = true
	if res := f.d.Deliver(Envelope{}, f.resolve(t, "a"), strings.NewReader(sampleMsg)); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	inbox := only(t, f.root("a"))
	if err := maildir.CreateFolder(f.root("a"), []string{"Closed"}); err != nil {
		t.Fatal(err)
	}
	closed := filepath.Join(f.root("a"), ".Closed")
	if err := os.Chmod(closed, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(closed, 0o700) })

	rs := f.resolve(t, "a+Closed")
	for _, create := range []bool{false, true} {
		rs[0].CreateFolder = create
		res := f.d.Deliver(Envelope{}, rs, strings.NewReader(sampleMsg))
		if KindOf(res[0].Err) != NoAccess || !errors.Is(res[0].Err, ErrNoAccess) || res[0].Folder != "Closed" {
			t.Errorf("create=%v: %v, folder %q (%v); want no access to Closed", create, KindOf(res[0].Err), res[0].Folder, res[0].Err)
		}
		if got := only(t, f.root("a")); got != inbox {
			t.Errorf("create=%v: INBOX holds %s, want only %s", create, got, inbox)
		}
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	empty(t, closed)

	// The Maildir root itself.
	if err := os.Chmod(f.root("a"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(f.root("a"), 0o700) })
	res := f.d.Deliver(Envelope{}, f.resolve(t, "a"), strings.NewReader(sampleMsg))
	if KindOf(res[0].Err) != NoAccess {
		t.Errorf("a Maildir root of mode 000: %v (%v), want no access", KindOf(res[0].Err), res[0].Err)
	}
	if err := os.Chmod(f.root("a"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got := only(t, f.root("a")); got != inbox {
		t.Errorf("INBOX holds %s, want only %s", got, inbox)
	}
}
