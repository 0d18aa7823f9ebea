package backend

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/maildir"
)

// TestMapErr: storage errors become the engine's, and the storage error
// stays in the chain for the log.
func TestMapErr(t *testing.T) {
	enospc := &os.PathError{Op: "write", Path: "/m/dovecot-uidlist", Err: syscall.ENOSPC}
	for _, tt := range []struct {
		name string
		err  error
		want error // nil: passed on as it is
	}{
		{"disk full", fmt.Errorf("store: appending: %w", enospc), imap.ErrNoSpace},
		{"disk quota", &os.PathError{Op: "write", Path: "/m/tmp/x", Err: syscall.EDQUOT}, imap.ErrNoSpace},
		{"permission", fmt.Errorf("store: mailbox cannot be used: %w", &os.PathError{Op: "stat", Path: "/m/.A/cur", Err: syscall.EACCES}), imap.ErrNoPerm},
		{"no folder", store.ErrNoSuchFolder, imap.ErrNoSuchMailbox},
		{"folder exists", maildir.ErrFolderExists, imap.ErrMailboxExists},
		{"quota", store.ErrOverQuota, imap.ErrOverQuota},
		{"other", errors.New("disk on fire"), nil},
	} {
		got := mapErr(tt.err)
		if !errors.Is(got, tt.err) {
			t.Errorf("%s: %v lost the storage error", tt.name, got)
		}
		for _, e := range []error{imap.ErrNoSpace, imap.ErrNoPerm, imap.ErrNoSuchMailbox, imap.ErrMailboxExists, imap.ErrOverQuota} {
			if errors.Is(got, e) != (e == tt.want) {
				t.Errorf("%s: errors.Is(%v, %v) = %v", tt.name, got, e, !(e == tt.want))
			}
		}
	}
	if mapErr(nil) != nil {
		t.Error("mapErr(nil) is not nil")
	}
}
