package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/mailboxname"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/testfault"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// TestErrorsFromTheStore makes each storage failure happen for real and
// checks that the adapter answers with the one engine error the imap
// package documents for it (and no other), so that the engine's single
// mapping (conn.go) gives the client the right response code.
//
// The engine errors the adapter never returns, because nothing in the
// storage means them, are matched by no case: ErrAuthFailed (the
// Authenticator's), ErrTooBig (the engine's literal limit), ErrInUse
// (the store's lock refusals are ErrLocked), ErrUnavailable (the
// Authenticator's, in cmd/cistern) and ErrNotSelectable (a level of the
// hierarchy without a Maildir answers ErrNoSuchMailbox, as Dovecot's
// SELECT of a \Noselect name does). isOnly fails a case that returns
// any of them.
func TestErrorsFromTheStore(t *testing.T) {
	ctx := context.Background()
	lockOpts := store.Options{Lock: uidlist.LockOptions{Timeout: 300 * time.Millisecond}}
	msg := "Subject: x\r\n\r\nbody\r\n"
	// locked holds INBOX's lock in a live process.
	locked := func(t *testing.T, e *env) { testfault.HoldLock(t, e.root, testfault.LockLive) }
	// gone selects Doomed and deletes it underneath the session.
	gone := func(t *testing.T, e *env) *Mailbox {
		if err := e.u.Create(ctx, "Doomed", ""); err != nil {
			t.Fatal(err)
		}
		uid := e.append("Doomed", msg)
		mb := e.selectBox("Doomed")
		if err := e.u.Delete(ctx, "Doomed"); err != nil {
			t.Fatal(err)
		}
		if uid != 1 {
			t.Fatalf("first UID %d", uid)
		}
		return mb
	}
	keywords26 := make([]string, 26)
	for i := range keywords26 {
		keywords26[i] = fmt.Sprintf("kw%02d", i)
	}
	for _, tt := range []struct {
		name  string
		opts  store.Options
		quota store.QuotaLimit
		root  string // the reason the case needs root; "" for none
		run   func(t *testing.T, e *env) error
		want  error // nil: no error
	}{
		// ErrNoSuchMailbox: store.ErrNoSuchFolder, maildir.ErrFolderNotFound,
		// a name with a control character (mailboxname.ErrControl).
		{name: "select missing folder", want: imap.ErrNoSuchMailbox, run: func(t *testing.T, e *env) error {
			_, err := e.u.Select(ctx, "Nope")
			return err
		}},
		{name: "status missing folder", want: imap.ErrNoSuchMailbox, run: func(t *testing.T, e *env) error {
			_, err := e.u.Status(ctx, "Nope")
			return err
		}},
		{name: "append to missing folder", want: imap.ErrNoSuchMailbox, run: func(t *testing.T, e *env) error {
			_, _, err := e.u.Append(ctx, "Nope", strings.NewReader(msg), int64(len(msg)), nil, time.Time{})
			return err
		}},
		{name: "delete missing folder", want: imap.ErrNoSuchMailbox, run: func(t *testing.T, e *env) error {
			return e.u.Delete(ctx, "Nope")
		}},
		{name: "rename missing folder", want: imap.ErrNoSuchMailbox, run: func(t *testing.T, e *env) error {
			return e.u.Rename(ctx, "Nope", "Other")
		}},
		{name: "copy to missing folder", want: imap.ErrNoSuchMailbox, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg)
			_, _, _, err := e.selectBox("INBOX").Copy(ctx, []uint32{1}, "Nope")
			return err
		}},
		{name: "move to missing folder", want: imap.ErrNoSuchMailbox, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg)
			_, _, _, _, err := e.selectBox("INBOX").Move(ctx, []uint32{1}, "Nope")
			return err
		}},
		{name: "select a level without a Maildir", want: imap.ErrNoSuchMailbox, run: func(t *testing.T, e *env) error {
			if err := e.u.Create(ctx, "A.B", ""); err != nil {
				t.Fatal(err)
			}
			_, err := e.u.Select(ctx, "A")
			return err
		}},
		{name: "select a name with a control character", want: imap.ErrNoSuchMailbox, run: func(t *testing.T, e *env) error {
			// Made on disk by another program: still no mailbox.
			if err := os.MkdirAll(filepath.Join(e.root, ".A\x01B", "cur"), 0o700); err != nil {
				t.Fatal(err)
			}
			_, err := e.u.Select(ctx, "A\x01B")
			if !errors.Is(err, mailboxname.ErrControl) {
				t.Errorf("%v does not hold mailboxname.ErrControl", err)
			}
			return err
		}},
		{name: "status a name with a control character", want: imap.ErrNoSuchMailbox, run: func(t *testing.T, e *env) error {
			_, err := e.u.Status(ctx, "A\x7fB")
			return err
		}},

		// ErrMailboxExists: maildir.ErrFolderExists.
		{name: "create existing folder", want: imap.ErrMailboxExists, run: func(t *testing.T, e *env) error {
			return e.u.Create(ctx, "Sent", "")
		}},
		{name: "create INBOX", want: imap.ErrMailboxExists, run: func(t *testing.T, e *env) error {
			return e.u.Create(ctx, "inbox", "")
		}},
		{name: "rename onto existing folder", want: imap.ErrMailboxExists, run: func(t *testing.T, e *env) error {
			return e.u.Rename(ctx, "Sent", "Drafts")
		}},
		{name: "rename onto INBOX", want: imap.ErrMailboxExists, run: func(t *testing.T, e *env) error {
			return e.u.Rename(ctx, "Sent", "INBOX")
		}},

		// ErrBadMailboxName: maildir.ErrBadFolderName.
		{name: "create with an empty level", want: imap.ErrBadMailboxName, run: func(t *testing.T, e *env) error {
			return e.u.Create(ctx, "A..B", "")
		}},
		{name: "create with a slash", want: imap.ErrBadMailboxName, run: func(t *testing.T, e *env) error {
			return e.u.Create(ctx, "A/B", "")
		}},
		{name: "rename to a dot-dot level", want: imap.ErrBadMailboxName, run: func(t *testing.T, e *env) error {
			return e.u.Rename(ctx, "Sent", "A...")
		}},
		{name: "delete INBOX", want: imap.ErrBadMailboxName, run: func(t *testing.T, e *env) error {
			return e.u.Delete(ctx, "INBOX")
		}},

		// ErrTooManyMailboxes: store.ErrTooManyFolders. The account's
		// five default folders fill a limit of five.
		{name: "create past the folder limit", opts: store.Options{MaxFolders: len(store.DefaultFolders)}, want: imap.ErrTooManyMailboxes,
			run: func(t *testing.T, e *env) error { return e.u.Create(ctx, "One", "") }},
		{name: "rename INBOX past the folder limit", opts: store.Options{MaxFolders: len(store.DefaultFolders)}, want: imap.ErrTooManyMailboxes,
			run: func(t *testing.T, e *env) error { return e.u.Rename(ctx, "INBOX", "Old") }},
		{name: "create at the folder limit minus one", opts: store.Options{MaxFolders: len(store.DefaultFolders) + 1},
			run: func(t *testing.T, e *env) error { return e.u.Create(ctx, "One", "") }},

		// ErrOverQuota: store.ErrOverQuota (a *store.QuotaError).
		{name: "append past the message quota", quota: store.QuotaLimit{Messages: 1}, want: imap.ErrOverQuota, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg)
			_, _, err := e.u.Append(ctx, "INBOX", strings.NewReader(msg), int64(len(msg)), nil, time.Time{})
			return err
		}},
		{name: "append past the byte quota", quota: store.QuotaLimit{Bytes: 100}, want: imap.ErrOverQuota, run: func(t *testing.T, e *env) error {
			// With its size, as the engine's literal: refused before
			// a byte is written.
			r := strings.NewReader(msg + strings.Repeat("x", 200))
			_, _, err := e.u.Append(ctx, "INBOX", r, r.Size(), nil, time.Time{})
			return err
		}},
		{name: "copy past the message quota", quota: store.QuotaLimit{Messages: 1}, want: imap.ErrOverQuota, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg)
			_, _, _, err := e.selectBox("INBOX").Copy(ctx, []uint32{1}, "Sent")
			return err
		}},
		{name: "move out of Trash past the message quota", quota: store.QuotaLimit{Messages: 1}, want: imap.ErrOverQuota, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg)
			e.append("Trash", msg) // Trash is not counted
			_, _, _, _, err := e.selectBox("Trash").Move(ctx, []uint32{1}, "INBOX")
			return err
		}},

		// ErrNoSpace: ENOSPC from the filesystem.
		{name: "append on a full filesystem", root: "mounts a small tmpfs", want: imap.ErrNoSpace, run: func(t *testing.T, e *env) error {
			small := filepath.Join(e.root, ".Small")
			if err := os.Mkdir(small, 0o700); err != nil {
				t.Fatal(err)
			}
			tmpfsFolder(t, small, "64k")
			big := msg + strings.Repeat("0123456789abcdef\r\n", 20000) // 360 KB
			_, _, err := e.u.Append(ctx, "Small", strings.NewReader(big), int64(len(big)), nil, time.Time{})
			return err
		}},

		// ErrNoPerm: EPERM/EACCES (fs.ErrPermission). Root passes every
		// mode; the immutable attribute on tmp/ stops it.
		{name: "append into an immutable tmp/", root: "root writes through modes: the immutable attribute is set", want: imap.ErrNoPerm, run: func(t *testing.T, e *env) error {
			testfault.Unwritable(t, filepath.Join(e.root, ".Sent", maildir.Tmp))
			_, _, err := e.u.Append(ctx, "Sent", strings.NewReader(msg), int64(len(msg)), nil, time.Time{})
			return err
		}},

		// ErrLocked: store.ErrLocked, a live process holds the lock.
		{name: "append while another process holds the lock", opts: lockOpts, want: imap.ErrLocked, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg) // the uidlist exists: the sync needs no lock
			locked(t, e)
			_, _, err := e.u.Append(ctx, "INBOX", strings.NewReader(msg), int64(len(msg)), nil, time.Time{})
			return err
		}},
		{name: "store while another process holds the lock", opts: lockOpts, want: imap.ErrLocked, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg)
			mb := e.selectBox("INBOX")
			locked(t, e)
			_, err := mb.Store(ctx, []uint32{1}, flagop.Add, []string{`\Seen`})
			return err
		}},
		{name: "copy into a folder another process locks", opts: lockOpts, want: imap.ErrLocked, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg)
			mb := e.selectBox("INBOX")
			e.append("Sent", msg)
			testfault.HoldLock(t, filepath.Join(e.root, ".Sent"), testfault.LockLive)
			_, _, _, err := mb.Copy(ctx, []uint32{1}, "Sent")
			return err
		}},
		{name: "expunge while another process holds the lock", opts: lockOpts, want: imap.ErrLocked, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg)
			mb := e.selectBox("INBOX")
			locked(t, e)
			_, err := mb.Expunge(ctx, []uint32{1})
			return err
		}},

		// ErrKeywordsFull: the store reports names it had no letter for.
		{name: "append with a 27th keyword", want: imap.ErrKeywordsFull, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg, keywords26...)
			_, _, err := e.u.Append(ctx, "INBOX", strings.NewReader(msg), int64(len(msg)), []string{"kw26"}, time.Time{})
			return err
		}},
		{name: "store a 27th keyword", want: imap.ErrKeywordsFull, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg, keywords26...)
			_, err := e.selectBox("INBOX").Store(ctx, []uint32{1}, flagop.Add, []string{"kw26"})
			return err
		}},

		// ErrNoSuchMessageErr: store.ErrNoSuchMessage, or a UID the
		// mailbox does not have.
		{name: "open unknown UID", want: imap.ErrNoSuchMessageErr, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg)
			_, _, err := e.selectBox("INBOX").Open(ctx, 7)
			if !errors.Is(err, store.ErrNoSuchMessage) {
				t.Errorf("%v does not hold store.ErrNoSuchMessage", err)
			}
			return err
		}},
		{name: "stat unknown UID", want: imap.ErrNoSuchMessageErr, run: func(t *testing.T, e *env) error {
			_, err := e.selectBox("INBOX").Stat(ctx, 7)
			return err
		}},
		{name: "structure unknown UID", want: imap.ErrNoSuchMessageErr, run: func(t *testing.T, e *env) error {
			_, _, err := e.selectBox("INBOX").Structure(ctx, 7)
			return err
		}},
		{name: "read size of unknown UID", want: imap.ErrNoSuchMessageErr, run: func(t *testing.T, e *env) error {
			_, err := e.selectBox("INBOX").ReadSize(ctx, 7, false)
			return err
		}},
		{name: "open a message whose file went", want: imap.ErrNoSuchMessageErr, run: func(t *testing.T, e *env) error {
			e.append("INBOX", msg)
			mb := e.selectBox("INBOX")
			m, _ := mb.mb.LookupUID(1)
			if err := os.Remove(mb.mb.Path(m)); err != nil {
				t.Fatal(err)
			}
			_, _, err := mb.Open(ctx, 1)
			return err
		}},

		// ErrSelectedGone: the selected mailbox was deleted (the store's
		// ErrMailboxGone, or any error once Gone is set).
		{name: "sync of a deleted selected mailbox", want: imap.ErrSelectedGone, run: func(t *testing.T, e *env) error {
			return gone(t, e).Sync(ctx)
		}},
		{name: "store in a deleted selected mailbox", want: imap.ErrSelectedGone, run: func(t *testing.T, e *env) error {
			_, err := gone(t, e).Store(ctx, []uint32{1}, flagop.Add, []string{`\Seen`})
			return err
		}},
		{name: "expunge in a deleted selected mailbox", want: imap.ErrSelectedGone, run: func(t *testing.T, e *env) error {
			_, err := gone(t, e).Expunge(ctx, []uint32{1})
			return err
		}},
		{name: "open in a deleted selected mailbox", want: imap.ErrSelectedGone, run: func(t *testing.T, e *env) error {
			_, _, err := gone(t, e).Open(ctx, 1)
			return err
		}},
		// COPY finds the file gone, copies nothing, and says why: the
		// mailbox is gone, as the other commands do; the session's next
		// update says Gone too.
		{name: "copy from a deleted selected mailbox", want: imap.ErrSelectedGone, run: func(t *testing.T, e *env) error {
			mb := gone(t, e)
			_, _, _, err := mb.Copy(ctx, []uint32{1}, "Sent")
			if up := mb.Take(); !up.Gone {
				t.Errorf("Take after the COPY: %+v, want Gone", up)
			}
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root != "" && os.Geteuid() != 0 {
				t.Skipf("needs root: %s", tt.root)
			}
			e := newEnv(t, tt.opts, tt.quota)
			err := tt.run(t, e)
			if !isOnly(err, tt.want) {
				t.Fatalf("error %v matches %v, want only %v", err, engineErrsOf(err), tt.want)
			}
		})
	}
}

// TestMapErr checks mapErr itself with each storage sentinel, wrapped
// as the store wraps them, and that the storage error stays in the
// chain for the log. TestErrorsFromTheStore makes all of these happen
// for real but three, checked here only: store.ErrMailboxGone for a
// mailbox that is not the selected one (it takes a DELETE between
// OpenMailbox and the change, a race no test can order through the
// adapter), maildir.ErrBadFolderName reaching mapErr (path refuses
// every such name before the store sees it) and maildir.ErrFolderNotFound
// from a store call (the store turns a missing folder into its own
// ErrNoSuchFolder first).
func TestMapErr(t *testing.T) {
	enospc := &os.PathError{Op: "write", Path: "/m/dovecot-uidlist", Err: syscall.ENOSPC}
	for _, tt := range []struct {
		name string
		err  error
		want error // nil: passed on as it is, an internal error
	}{
		{"disk full", fmt.Errorf("store: appending: %w", enospc), imap.ErrNoSpace},
		{"disk quota", &os.PathError{Op: "write", Path: "/m/tmp/x", Err: syscall.EDQUOT}, imap.ErrNoSpace},
		{"permission", fmt.Errorf("store: mailbox cannot be used: %w", &os.PathError{Op: "stat", Path: "/m/.A/cur", Err: syscall.EACCES}), imap.ErrNoPerm},
		{"operation not permitted", &os.PathError{Op: "open", Path: "/m/tmp/x", Err: syscall.EPERM}, imap.ErrNoPerm},
		{"no folder", store.ErrNoSuchFolder, imap.ErrNoSuchMailbox},
		{"folder not found", fmt.Errorf("%w: .A", maildir.ErrFolderNotFound), imap.ErrNoSuchMailbox},
		{"mailbox gone", fmt.Errorf("store: appending: %w", store.ErrMailboxGone), imap.ErrNoSuchMailbox},
		{"folder exists", maildir.ErrFolderExists, imap.ErrMailboxExists},
		{"bad folder name", fmt.Errorf("%w: empty level", maildir.ErrBadFolderName), imap.ErrBadMailboxName},
		{"no message", fmt.Errorf("store: uid 3: %w", store.ErrNoSuchMessage), imap.ErrNoSuchMessageErr},
		{"quota", &store.QuotaError{Resource: "messages", Limit: 1, Used: 1, Add: 1}, imap.ErrOverQuota},
		{"too many folders", fmt.Errorf("%w: 5 folders", store.ErrTooManyFolders), imap.ErrTooManyMailboxes},
		{"locked", fmt.Errorf("%w: %w", store.ErrLocked, uidlist.ErrLockTimeout), imap.ErrLocked},
		{"read-only filesystem", &os.PathError{Op: "open", Path: "/m/tmp/x", Err: syscall.EROFS}, nil},
		{"other", errors.New("disk on fire"), nil},
	} {
		got := mapErr(tt.err)
		if !errors.Is(got, tt.err) {
			t.Errorf("%s: %v lost the storage error", tt.name, got)
		}
		if !isOnly(got, tt.want) {
			t.Errorf("%s: %v matches %v, want only %v", tt.name, got, engineErrsOf(got), tt.want)
		}
	}
	if mapErr(nil) != nil {
		t.Error("mapErr(nil) is not nil")
	}
}

// TestNewKeywordLocked: STORE, APPEND and COPY that need a new keyword
// take the mailbox lock to add it to dovecot-keywords
// (store.Mailbox.KeywordFlags, whose doc says it waits "as a change
// waits: ErrLocked"). When another process holds the lock past the
// timeout, the answer must be NO [INUSE] (imap.ErrLocked), as for every
// other change; the store returns uidlist.ErrLockTimeout unwrapped, which
// mapErr passes on as an internal error (NO [SERVERBUG]).
func TestNewKeywordLocked(t *testing.T) {
	ctx := context.Background()
	opts := store.Options{Lock: uidlist.LockOptions{Timeout: 300 * time.Millisecond}}
	msg := "Subject: x\r\n\r\nbody\r\n"
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, e *env) error
	}{
		{"store", func(t *testing.T, e *env) error {
			e.append("INBOX", msg)
			mb := e.selectBox("INBOX")
			testfault.HoldLock(t, e.root, testfault.LockLive)
			_, err := mb.Store(ctx, []uint32{1}, flagop.Add, []string{"Fresh"})
			return err
		}},
		{"append", func(t *testing.T, e *env) error {
			e.append("INBOX", msg)
			testfault.HoldLock(t, e.root, testfault.LockLive)
			_, _, err := e.u.Append(ctx, "INBOX", strings.NewReader(msg), int64(len(msg)), []string{"Fresh"}, time.Time{})
			return err
		}},
		{"copy", func(t *testing.T, e *env) error {
			e.append("INBOX", msg, "Fresh")
			mb := e.selectBox("INBOX")
			e.append("Sent", msg) // the uidlist exists: the sync needs no lock
			testfault.HoldLock(t, filepath.Join(e.root, ".Sent"), testfault.LockLive)
			_, _, _, err := mb.Copy(ctx, []uint32{1}, "Sent")
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, opts, store.QuotaLimit{})
			err := tt.run(t, e)
			if !isOnly(err, imap.ErrLocked) {
				t.Errorf("error %v matches %v, want only %v", err, engineErrsOf(err), imap.ErrLocked)
			}
		})
	}
}
