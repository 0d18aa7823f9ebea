package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// Copy copies the messages with the given UIDs into dst, keeping their
// flags and internal dates, and returns dst's UIDVALIDITY that the new
// UIDs belong to (as it was when they were recorded) and the pairs of
// source and destination UIDs in source UID order (COPYUID). Files are hard-linked
// when both mailboxes share a filesystem. A copy keeps its message's
// base name, its identity (EMAILID), where dst may take it: when dst's
// state and uidlist know no message of that name (claimBases); else, as
// for a second copy into one mailbox, it gets a fresh one. A file of
// that name another program puts into dst meanwhile is a duplicate that
// dst's next sync sorts out, keeping the copy (liveDistinct). The two mailboxes are never
// locked at once: the copies are staged in dst's tmp/ without a lock,
// then adopted by dst all or none (adoptStaged), so that a COPY that
// fails leaves no copy behind. When one of the messages is gone (before
// the COPY or during it), none is copied: ErrNoSuchMessage.
//
// Takes: mu for a moment; then dst's turn, dotlock, wmu and mu
// (adoptStaged); a sync of m (wmu, mu) for a file renamed meanwhile.
func (m *Mailbox) Copy(ctx context.Context, uids []uint32, dst *Mailbox, from *Subscription) (validity uint32, src, dstUIDs []uint32, err error) {
	type item struct {
		uid   uint32
		base  string
		path  string
		flags maildir.Flags
	}
	m.mu.Lock()
	var items []item
	for _, uid := range uids {
		if e := m.byUID(uid); e != nil {
			items = append(items, item{uid, e.base(), filepath.Join(m.dir, e.sub, e.filename), e.flags})
		}
	}
	m.mu.Unlock()

	var staged []*maildir.Staged
	defer func() {
		for _, s := range staged {
			s.Discard()
		}
	}()
	var copied []uint32
	kw := &keywordMap{src: m, dst: dst, letters: make(map[byte]byte)} // adds names to dst before the copies enter it
	for _, it := range items {
		flags, err := kw.flags(ctx, it.flags)
		if err != nil {
			return 0, nil, nil, err
		}
		s, err := stageCopy(it.path, dst.dir, it.base, flags)
		if errors.Is(err, os.ErrNotExist) {
			// Renamed under our feet: look it up again.
			s, err = m.stageFresh(ctx, it.uid, dst.dir, kw)
		}
		if errors.Is(err, os.ErrNotExist) {
			// Expunged meanwhile: a COPY copies all or nothing (RFC
			// 2180 §4.4.1), and the staged copies go (the deferred
			// Discard) before any enters dst.
			return 0, nil, nil, ErrNoSuchMessage
		}
		if err != nil {
			return 0, nil, nil, err
		}
		staged = append(staged, s)
		copied = append(copied, it.uid)
	}
	if len(copied) < len(uids) {
		return 0, nil, nil, ErrNoSuchMessage // a UID that was gone before the COPY began
	}
	msgs, err := dst.adoptStaged(ctx, staged, from)
	if err != nil {
		return 0, nil, nil, err
	}
	for i, msg := range msgs {
		src = append(src, copied[i])
		dstUIDs = append(dstUIDs, msg.UID)
		validity = msg.UIDValidity
	}
	return validity, src, dstUIDs, nil
}

// stageFreshTries bounds stageFresh's lookups of a message whose flags
// keep changing.
const stageFreshTries = 3

// stageFresh stages the copy of the message with uid after a sync found
// where its file is now. wmu is held from the lookup to the link, so that
// no change of this process (a STORE, which renames without mu) renames
// the file in between; its flags in dir's mailbox are worked out before
// (kw may take that mailbox's locks, which are never taken under m's),
// and a flag change meanwhile sends it round again. A message the sync
// does not find is os.ErrNotExist.
//
// Held: none; takes wmu and mu (a sync), then wmu again.
func (m *Mailbox) stageFresh(ctx context.Context, uid uint32, dir string, kw *keywordMap) (*maildir.Staged, error) {
	for range stageFreshTries {
		msg, ok := m.lookupFresh(ctx, uid)
		if !ok {
			return nil, os.ErrNotExist
		}
		flags, err := kw.flags(ctx, msg.Flags)
		if err != nil {
			return nil, err
		}
		m.wmu.Lock()
		m.mu.Lock()
		e := m.byUID(uid)
		m.mu.Unlock()
		if e == nil {
			m.wmu.Unlock()
			return nil, os.ErrNotExist
		}
		if e.flags != msg.Flags {
			m.wmu.Unlock()
			continue
		}
		s, err := stageCopy(filepath.Join(m.dir, e.sub, e.filename), dir, e.base(), flags)
		m.wmu.Unlock()
		return s, err
	}
	return nil, fmt.Errorf("store: copy of UID %d: its flags changed %d times while it was looked up", uid, stageFreshTries)
}

// stageCopy stages the message file at path, whose base name is base, in
// the Maildir dir's tmp/, to go into cur/ with flags under base where dir
// may take it (claimBases): a hard link where possible,
// else a durable copy with the same mtime (the internal date).
func stageCopy(path, dir, base string, flags maildir.Flags) (*maildir.Staged, error) {
	opts := maildir.DeliverOptions{Cur: true, Flags: flags, Base: base}
	s, err := maildir.StageLink(path, dir, opts)
	// A copy where no link can be: across filesystems, or a file another
	// user owns (a foreign program's delivery) where the kernel protects
	// hard links (fs.protected_hardlinks: EPERM).
	if !errors.Is(err, maildir.ErrCrossDevice) && !errors.Is(err, fs.ErrPermission) {
		return s, err
	}
	f, err := maildir.OpenMessagePath(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	opts.Time = fi.ModTime()
	return maildir.Stage(dir, f, opts)
}

// testHookBasesClaimed, set by tests, runs when a COPY has checked under
// the target's lock which copies may keep their base names, before they
// are placed: the moment another program may put a file of one of those
// names into the target.
var testHookBasesClaimed func()

// basesRecorded returns which of bases m's uidlist, read under m's lock
// as f (the last refresh), has a record of: no message arriving in m
// under its own base name (COPY, MOVE) may take those (records stay
// after their message left, until a compaction, and a base name must
// never get a second UID in one uidlist). m's Reader is lean: f holds
// its last read's records alone, and a base name it may have read
// before (MayHold) is looked up in the whole file. Files of those names
// that no sync has seen yet are the caller's to look for. A uidlist
// unusable as a whole: ErrMoveNeedsCopy (the copy path syncs first).
//
// Held: dotlock; wmu or not; not mu.
func (m *Mailbox) basesRecorded(f *uidlist.File, bases []string) (map[string]bool, error) {
	taken := make(map[string]bool, len(bases))
	for _, b := range bases {
		taken[b] = false
	}
	mark := func(f *uidlist.File) {
		for _, r := range f.Records {
			if _, ok := taken[r.Base()]; ok {
				taken[r.Base()] = true
			}
		}
	}
	if f != nil {
		mark(f)
	}
	maybe := false
	for base, t := range taken {
		if !t && m.reader.MayHold(base) {
			maybe = true
			break
		}
	}
	if !maybe {
		return taken, nil
	}
	whole, err := m.readWholeUIDList()
	if err != nil {
		return nil, err
	}
	if whole == nil {
		return nil, fmt.Errorf("%w: %s has no usable %s", ErrMoveNeedsCopy, m.dir, uidlist.FileName)
	}
	mark(whole)
	return taken, nil
}

// claimBases, what lets a copy keep its base name, gives a fresh
// base name (maildir.Staged.Rebase) to every message of staged that asked
// to keep its own (a COPY's: maildir.DeliverOptions.Base) when m may not
// take it: m's uidlist holds it (basesRecorded), m's state does (which
// assignOwn cannot number, even for an entry whose file and record are
// gone, as MOVE's adoptMoved replaces), or an earlier message of staged
// has it. Under m's lock, no process that
// honours it records that name until the change ends; a file of that name
// that another program puts into new/ or cur/ meanwhile is a duplicate
// that a sync sorts out, keeping the copy (liveDistinct). Messages staged
// without a base name to keep (APPEND) cost nothing.
//
// Held: turn, dotlock; takes wmu and mu, and lets go of them.
func (m *Mailbox) claimBases(lock *uidlist.Lock, staged []*maildir.Staged) error {
	var bases []string
	for _, s := range staged {
		if s.KeepsBase() {
			bases = append(bases, s.Base())
		}
	}
	if len(bases) == 0 {
		return nil
	}
	m.enterChange(lock)
	defer m.leaveChange()
	var f *uidlist.File
	var err error
	m.unlocked(func() { f, err = m.refreshUIDList() })
	if err != nil {
		return err
	}
	var taken map[string]bool
	m.unlocked(func() { taken, err = m.basesRecorded(f, bases) })
	if err != nil {
		return err
	}
	for b := range taken {
		if _, known := m.bases()[b]; known {
			taken[b] = true
		}
	}
	for _, s := range staged {
		if !s.KeepsBase() {
			continue
		}
		if taken[s.Base()] {
			if err := s.Rebase(); err != nil {
				return err
			}
			continue
		}
		taken[s.Base()] = true
	}
	if testHookBasesClaimed != nil {
		testHookBasesClaimed()
	}
	return nil
}
