package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cistern-mail/cistern/maildir"
)

// Copy copies the messages with the given UIDs into dst, keeping their
// flags and internal dates, and returns dst's UIDVALIDITY that the new
// UIDs belong to (as it was when they were recorded) and the pairs of
// source and destination UIDs in source UID order (COPYUID). Files are hard-linked
// when both mailboxes share a filesystem. The two mailboxes are never
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
		path  string
		flags maildir.Flags
	}
	m.mu.Lock()
	var items []item
	for _, uid := range uids {
		if e := m.byUID(uid); e != nil {
			items = append(items, item{uid, filepath.Join(m.dir, e.sub, e.filename), e.flags})
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
		s, err := stageCopy(it.path, dst.dir, flags)
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
		s, err := stageCopy(filepath.Join(m.dir, e.sub, e.filename), dir, flags)
		m.wmu.Unlock()
		return s, err
	}
	return nil, fmt.Errorf("store: copy of UID %d: its flags changed %d times while it was looked up", uid, stageFreshTries)
}

// stageCopy stages the message file at path in the Maildir dir's tmp/,
// to go into cur/ with flags: a hard link where possible, else a durable
// copy with the same mtime (the internal date).
func stageCopy(path, dir string, flags maildir.Flags) (*maildir.Staged, error) {
	opts := maildir.DeliverOptions{Cur: true, Flags: flags}
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
