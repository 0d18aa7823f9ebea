package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/maildir"
)

// quotaUser lets anyone in to one Maildir, with a quota.
type quotaUser struct {
	root  string
	quota store.QuotaLimit
}

func (a quotaUser) Authenticate(ctx context.Context, user, pass string) (Account, error) {
	return Account{MaildirRoot: a.root, Quota: a.quota}, nil
}

// env is one account in a temporary Maildir, driven through the
// adapter with no IMAP connection.
type env struct {
	t    *testing.T
	root string
	reg  *store.Registry
	u    *User
}

// newEnv logs a user in to a new account (the store makes it, with its
// default folders) under opts and quota.
func newEnv(t *testing.T, opts store.Options, quota store.QuotaLimit) *env {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Maildir")
	reg := store.NewRegistry(opts, nil)
	t.Cleanup(reg.Close)
	b := &Backend{Auth: quotaUser{root, quota}, Registry: reg}
	iu, err := b.Login(context.Background(), "alice", "secret")
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, root: root, reg: reg, u: iu.(*User)}
}

// append adds a message to mailbox name and returns its UID.
func (e *env) append(name, msg string, flags ...string) uint32 {
	e.t.Helper()
	_, uid, err := e.u.Append(context.Background(), name, strings.NewReader(msg), int64(len(msg)), flags, time.Time{})
	if err != nil {
		e.t.Fatalf("Append to %s: %v", name, err)
	}
	return uid
}

// selectBox selects mailbox name; the test's end closes it.
func (e *env) selectBox(name string) *Mailbox {
	e.t.Helper()
	imb, err := e.u.Select(context.Background(), name)
	if err != nil {
		e.t.Fatalf("Select %s: %v", name, err)
	}
	e.t.Cleanup(func() { imb.Close() })
	return imb.(*Mailbox)
}

// check runs the store's consistency checks on the mailbox of dir.
func (e *env) check(dir string) {
	e.t.Helper()
	mb, release, err := e.reg.Open(dir)
	if err != nil {
		e.t.Fatal(err)
	}
	defer release()
	if err := mb.Check(); err != nil {
		e.t.Error(err)
	}
}

// engineErrs is every error the imap package documents for a backend.
var engineErrs = []error{
	imap.ErrAuthFailed, imap.ErrNoSuchMailbox, imap.ErrMailboxExists, imap.ErrBadMailboxName,
	imap.ErrNotSelectable, imap.ErrTooBig, imap.ErrOverQuota, imap.ErrNoSpace, imap.ErrNoPerm,
	imap.ErrInUse, imap.ErrLocked, imap.ErrKeywordsFull, imap.ErrTooManyMailboxes,
	imap.ErrUnavailable, imap.ErrNoSuchMessageErr, imap.ErrSelectedGone,
}

// engineErrsOf lists the engine's errors err matches.
func engineErrsOf(err error) []error {
	var out []error
	for _, e := range engineErrs {
		if errors.Is(err, e) {
			out = append(out, e)
		}
	}
	return out
}

// isOnly reports whether err matches want and no other engine error
// (nil want: none at all).
func isOnly(err, want error) bool {
	got := engineErrsOf(err)
	if want == nil {
		return len(got) == 0
	}
	return len(got) == 1 && got[0] == want
}

// flagsOf lists the flags of the message uid in infos, sorted; ok is
// false when uid is not there.
func flagsOf(infos []imap.MessageInfo, uid uint32) (flags []string, ok bool) {
	for _, in := range infos {
		if in.UID == uid {
			f := slices.Clone(in.Flags)
			slices.Sort(f)
			return f, true
		}
	}
	return nil, false
}

func uidsOf(infos []imap.MessageInfo) []uint32 {
	var out []uint32
	for _, in := range infos {
		out = append(out, in.UID)
	}
	return out
}

// tmpfsFolder makes dir a Maildir++ folder on a tmpfs of its own of
// size ("4m"), unmounted at the end of the test: a file system that
// fills up, or that a rename cannot cross. Root only.
func tmpfsFolder(t *testing.T, dir, size string) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := maildir.Create(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}
