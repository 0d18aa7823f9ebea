package store

import (
	"errors"
	"fmt"

	"github.com/cistern-mail/cistern/maildir"
)

// DefaultMaxFolders is how many folders (INBOX not counted) an account
// may hold when Options.MaxFolders is 0: well above what real accounts
// use (hundreds at most), low enough that one account cannot make
// LIST ... RETURN (STATUS ...) take seconds or take tens of thousands of
// inodes (5,000 CREATEs took 30,000 inodes and a 15 s LIST). Dovecot's
// quota plugin has the like, quota_mailbox_count, unlimited by default.
const DefaultMaxFolders = 3000

// ErrTooManyFolders: a CREATE or RENAME would give the account more
// folders than its limit (Options.MaxFolders, Account.LimitFolders).
var ErrTooManyFolders = errors.New("store: maximum number of folders reached")

// LimitFolders sets how many folders the account may hold, in place of
// its Registry's Options.MaxFolders (for an account opened without one,
// as the LDA does); 0 restores the default. Call it before the account
// is used.
func (a *Account) LimitFolders(n int) { a.maxFolders = n }

// folderLimit is the number of folders the account may hold.
func (a *Account) folderLimit() int {
	switch {
	case a.maxFolders > 0:
		return a.maxFolders
	case a.reg != nil && a.reg.opts.MaxFolders > 0:
		return a.reg.opts.MaxFolders
	}
	return DefaultMaxFolders
}

// roomForFolderLocked fails with ErrTooManyFolders when the account
// holds as many folders as its limit allows, or more (folders made by
// other programs count too), so that one more cannot be made. The
// folders are those ListFolders finds: Maildirs, not the levels of the
// hierarchy above them. Held with a.mu, which orders this process's
// folder changes; another program may still add folders meanwhile.
func (a *Account) roomForFolderLocked() error {
	folders, err := maildir.ListFolders(a.root)
	if err != nil {
		return err
	}
	if n, max := len(folders), a.folderLimit(); n >= max {
		return fmt.Errorf("%w: %d folders, the limit is %d", ErrTooManyFolders, n, max)
	}
	return nil
}
