package store

import (
	"context"
	"errors"
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
// fails leaves no copy behind.
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
			// Renamed under our feet: look it up again once.
			if msg, ok := m.lookupFresh(ctx, it.uid); ok {
				if flags, err = kw.flags(ctx, msg.Flags); err != nil {
					return 0, nil, nil, err
				}
				s, err = stageCopy(filepath.Join(m.dir, msg.Sub, msg.Filename), dst.dir, flags)
			}
		}
		if errors.Is(err, os.ErrNotExist) {
			continue // expunged meanwhile: not copied
		}
		if err != nil {
			return 0, nil, nil, err
		}
		staged = append(staged, s)
		copied = append(copied, it.uid)
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
