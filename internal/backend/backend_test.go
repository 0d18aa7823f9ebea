package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/uidlist"
)

// TestMoveByCopyUndone: across filesystems MOVE copies and then
// expunges; when the expunge fails (INBOX's lock is held by a live
// process that does not let go), the copies are expunged again and the
// MOVE fails: nothing moved, nothing is in two folders. The other
// filesystem is a tmpfs mounted over the folder, which needs root.
func TestMoveByCopyUndone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs as the other filesystem")
	}
	ctx := context.Background()
	e := newEnv(t, store.Options{Lock: uidlist.LockOptions{Timeout: 300 * time.Millisecond}}, store.QuotaLimit{})
	if err := e.u.Create(ctx, "Other", ""); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(e.root, ".Other")
	tmpfsFolder(t, other, "4m")
	for i := range 2 {
		e.append("INBOX", fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))
	}
	mb := e.selectBox("INBOX")

	// A live process (init) holds INBOX's lock: the expunge cannot be.
	host, _ := os.Hostname()
	lock := filepath.Join(e.root, uidlist.LockName)
	if err := os.WriteFile(lock, []byte("1:"+host), 0o600); err != nil {
		t.Fatal(err)
	}
	_, src, dst, gone, err := mb.Move(ctx, []uint32{1, 2}, "Other")
	if !errors.Is(err, uidlist.ErrLockTimeout) || src != nil || dst != nil || gone != nil {
		t.Fatalf("Move: %v %v %v, %v; want the lock timeout and nothing moved", src, dst, gone, err)
	}
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"INBOX": 2, "Other": 0} {
		st, err := e.u.Status(ctx, name)
		if err != nil || int(st.Messages) != want {
			t.Errorf("%s: %d messages (%v), want %d", name, st.Messages, err, want)
		}
	}
	for _, dir := range []string{e.root, other} {
		e.check(dir)
		smb, release, err := e.reg.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := smb.CheckFiles(); err != nil {
			t.Error(err)
		}
		release()
	}
}

// TestCopyAllOrNothing: a COPY that names a message gone meanwhile (the
// engine checked; the message went between its check and the copy)
// leaves no copy behind and fails with ErrNoSuchMessageErr, which the
// engine answers NO [EXPUNGEISSUED] (RFC 2180 §4.4.1).
func TestCopyAllOrNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, store.Options{}, store.QuotaLimit{})
	if err := e.u.Create(ctx, "Other", ""); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		e.append("INBOX", fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))
	}
	mb := e.selectBox("INBOX")
	if gone, err := mb.Expunge(ctx, []uint32{2}); err != nil || len(gone) != 1 {
		t.Fatalf("Expunge: %v, %v", gone, err)
	}
	_, src, dst, err := mb.Copy(ctx, []uint32{1, 2}, "Other")
	if !errors.Is(err, imap.ErrNoSuchMessageErr) {
		t.Errorf("Copy of UIDs 1 and 2 (2 gone): src %v dst %v, err %v; want ErrNoSuchMessageErr", src, dst, err)
	}
	st, err := e.u.Status(ctx, "Other")
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 0 || st.UIDNext != 1 {
		t.Errorf("Other holds %d messages, UIDNEXT %d after the failed COPY; want 0 and 1: no copy entered it", st.Messages, st.UIDNext)
	}
	if _, src, _, err := mb.Copy(ctx, []uint32{1}, "Other"); err != nil || len(src) != 1 {
		t.Errorf("Copy of UID 1: src %v, err %v", src, err)
	}
	for _, dir := range []string{e.root, filepath.Join(e.root, ".Other")} {
		e.check(dir)
	}
}
