package store

import (
	"context"
	"io"
	"path/filepath"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

// An Account with a quota (OpenAccountWithQuota) keeps maildirsize up to
// date for what goes through it: Append, Copy, Move and Expunge below,
// and DeleteFolder and RenameFolder. Each checks before it writes
// (CheckQuota) and records what it changed after the change is on disk
// (AddQuota); a Move changes the usage only between Trash and the
// counted folders. A refusal wraps ErrOverQuota and leaves the Maildir
// untouched. A failure to record a change that is already on disk is
// logged, not returned: the mail operation happened, and the next
// recalculation corrects the usage.
//
// The messages of the folder QuotaTrash are not counted (the Maildir++
// rule): appending, copying or moving into Trash is never refused;
// moving out of Trash needs room.
//
// The Mailbox methods themselves (Mailbox.Append, ...) know nothing of
// quota: a Mailbox is a directory, shared by every session, and the
// account root and limit are the Account's.

// OpenAccountWithQuota is OpenAccount for an account whose usage is limited
// by q (the zero QuotaLimit: no limit, no maildirsize).
func OpenAccountWithQuota(root string, reg *Registry, q QuotaLimit) (*Account, error) {
	a, err := OpenAccount(root, reg)
	if err != nil {
		return nil, err
	}
	a.quota = q
	return a, nil
}

// Quota returns the account's limit.
func (a *Account) Quota() QuotaLimit { return a.quota }

// QuotaUsage returns the account's usage (ReadQuota).
func (a *Account) QuotaUsage() (QuotaUsage, error) { return ReadQuota(a.root, a.quota) }

// QuotaCounts reports whether the messages of the folder path (nil for
// INBOX) count against the quota: all but those of QuotaTrash.
func QuotaCounts(path []string) bool {
	return len(path) != 1 || path[0] != QuotaTrash
}

func (a *Account) quotaCounts(path []string) bool { return QuotaCounts(path) }

// QuotaCountsDir is QuotaCounts for the mailbox directory dir of the
// Maildir whose root is root.
func QuotaCountsDir(root, dir string) bool {
	return filepath.Clean(dir) != filepath.Join(root, "."+QuotaTrash)
}

// countsDir is quotaCounts for a mailbox directory.
func (a *Account) countsDir(dir string) bool { return QuotaCountsDir(a.root, dir) }

// folderUsage counts the messages of the folder path (INBOX: the root's
// own new/ and cur/), counted by the quota or not; nothing without a
// limit.
func (a *Account) folderUsage(path []string) (QuotaUsage, error) {
	var u QuotaUsage
	if a.quota.Unlimited() {
		return u, nil
	}
	dir, err := a.dir(path)
	if err != nil {
		return u, err
	}
	if len(path) > 0 && maildir.IsLink(dir) {
		return u, nil // no folder: nothing of the account's in it
	}
	_, err = countMaildir(dir, &u, nil)
	return u, err
}

// addQuota records a change of usage that is already on disk; a failure
// is logged (see above).
func (a *Account) addQuota(bytes, messages int64) {
	if err := AddQuota(a.root, a.quota, bytes, messages); err != nil {
		a.logger().Warn("quota: change not recorded; the next recalculation corrects it",
			"root", a.root, "bytes", bytes, "messages", messages, "err", err)
	}
}

// Append delivers a message into mb, a mailbox of this account, as
// Mailbox.Append does, after checking that it fits the quota. size is the
// message's size when the caller knows it (an IMAP literal), else -1: the
// check is then for one more message and no more bytes, and the size
// delivered is recorded all the same.
func (a *Account) Append(ctx context.Context, mb *Mailbox, r io.Reader, size int64, flags maildir.Flags, date time.Time, from *Subscription) (Message, error) {
	counted := !a.quota.Unlimited() && a.countsDir(mb.dir)
	if counted {
		if err := CheckQuota(a.root, a.quota, max(size, 0), 1); err != nil {
			return Message{}, err
		}
	}
	msg, err := mb.Append(ctx, r, flags, date, from)
	if err != nil || !counted {
		return msg, err
	}
	if n, err := messageSize(filepath.Join(mb.dir, msg.Sub), msg.Filename); err == nil {
		a.addQuota(n, 1)
	} else {
		a.addQuota(max(size, 0), 1)
	}
	return msg, nil
}

// Copy copies messages from src into dst, both mailboxes of this account,
// as Mailbox.Copy does, after checking that the copies fit the quota.
// move says that the originals are expunged (through Expunge) right
// after, as MOVE does across filesystems: the check is then for what the
// move adds, which is nothing between two counted mailboxes, so moving
// never needs room unless it is out of Trash.
func (a *Account) Copy(ctx context.Context, src *Mailbox, uids []uint32, dst *Mailbox, move bool, from *Subscription) (validity uint32, srcUIDs, dstUIDs []uint32, err error) {
	if a.quota.Unlimited() {
		return src.Copy(ctx, uids, dst, from)
	}
	toCounted, fromCounted := a.countsDir(dst.dir), a.countsDir(src.dir)
	if toCounted && !(move && fromCounted) { // the originals go: usage does not grow
		if err := a.checkAdding(src, uids); err != nil {
			return 0, nil, nil, err
		}
	}
	validity, srcUIDs, dstUIDs, err = src.Copy(ctx, uids, dst, from)
	if err != nil || !toCounted {
		return validity, srcUIDs, dstUIDs, err
	}
	added := usageOf(dst, dstUIDs)
	a.addQuota(added.Bytes, added.Messages)
	return validity, srcUIDs, dstUIDs, nil
}

// Move moves messages from src into dst, both mailboxes of this account,
// as Mailbox.Move does. Between two counted mailboxes (or two that are
// not) the usage does not change and nothing is checked; out of Trash
// into a counted mailbox the messages must fit the quota, and what moves
// into Trash is freed.
func (a *Account) Move(ctx context.Context, src *Mailbox, uids []uint32, dst *Mailbox, from *Subscription) (validity uint32, srcUIDs, dstUIDs []uint32, err error) {
	if a.quota.Unlimited() {
		return src.Move(ctx, uids, dst, from)
	}
	toCounted, fromCounted := a.countsDir(dst.dir), a.countsDir(src.dir)
	if toCounted && !fromCounted {
		if err := a.checkAdding(src, uids); err != nil {
			return 0, nil, nil, err
		}
	}
	validity, srcUIDs, dstUIDs, err = src.Move(ctx, uids, dst, from)
	if err != nil || toCounted == fromCounted {
		return validity, srcUIDs, dstUIDs, err
	}
	moved := usageOf(dst, dstUIDs)
	if !toCounted {
		moved = QuotaUsage{-moved.Bytes, -moved.Messages}
	}
	a.addQuota(moved.Bytes, moved.Messages)
	return validity, srcUIDs, dstUIDs, nil
}

// checkAdding checks that the messages of src with the given UIDs fit the
// quota on top of the usage.
func (a *Account) checkAdding(src *Mailbox, uids []uint32) error {
	// A file renamed meanwhile counts as 0 bytes here; what was added is
	// recorded exactly afterwards.
	add := usageOf(src, uids)
	if add.Bytes == 0 && add.Messages == 0 {
		return nil
	}
	return CheckQuota(a.root, a.quota, add.Bytes, add.Messages)
}

// usageOf is what the messages of mb with the given UIDs use; messages
// that are gone count nothing (whoever removed them recorded it).
func usageOf(mb *Mailbox, uids []uint32) QuotaUsage {
	var u QuotaUsage
	for _, uid := range uids {
		msg, ok := mb.LookupUID(uid)
		if !ok {
			continue
		}
		if n, err := messageSize(filepath.Join(mb.dir, msg.Sub), msg.Filename); err == nil {
			u.Bytes += n
		}
		u.Messages++
	}
	return u
}

// Expunge removes messages from mb, a mailbox of this account, as
// Mailbox.Expunge does, and records the usage freed.
func (a *Account) Expunge(ctx context.Context, mb *Mailbox, uids []uint32, from *Subscription) ([]Message, error) {
	if a.quota.Unlimited() || !a.countsDir(mb.dir) {
		return mb.Expunge(ctx, uids, from)
	}
	// Sizes are taken before the files go; a name without S= needs its
	// file.
	sizes := make(map[uint32]int64, len(uids))
	for _, uid := range uids {
		if msg, ok := mb.LookupUID(uid); ok {
			if n, err := messageSize(filepath.Join(mb.dir, msg.Sub), msg.Filename); err == nil {
				sizes[uid] = n
			}
		}
	}
	gone, err := mb.Expunge(ctx, uids, from)
	var freed QuotaUsage
	for _, msg := range gone {
		n, ok := sizes[msg.UID]
		if !ok {
			n, _ = maildir.SizeFields(msg.Base)
		}
		freed.Bytes += max(n, 0)
		freed.Messages++
	}
	a.addQuota(-freed.Bytes, -freed.Messages)
	return gone, err
}
