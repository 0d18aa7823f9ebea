package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

// resolveDuplicate handles a known base name seen under more than one file
// name in this sync; keep is the file the state named before the sync.
//
// Held: wmu, mu; lets go of mu for liveDistinct's I/O.
func (m *Mailbox) resolveDuplicate(ctx context.Context, base string, ss []sighting, keep sighting, ch *Changes) error {
	e := m.bases()[base]
	live, err := m.liveDistinct(ctx, base, ss, keep)
	if err != nil {
		return err
	}
	if len(live) == 0 {
		return nil // every name vanished: renames; the next sync sees where they went
	}
	// The first is the file kept: keep when it is live.
	if k := live[0]; k.sub != e.sub || k.filename != e.filename {
		m.place(e, k.sub, k.filename, ch)
	}
	return nil
}

// resolveFreshDuplicate handles an unknown base name seen under more than
// one file name, returning the sightings to treat as the message.
//
// Held: wmu, mu; lets go of mu for liveDistinct's I/O.
func (m *Mailbox) resolveFreshDuplicate(ctx context.Context, base string, ss []sighting) ([]sighting, error) {
	live, err := m.liveDistinct(ctx, base, ss, sighting{})
	if err != nil {
		return nil, err
	}
	if len(live) == 0 {
		return ss[:1], nil
	}
	return live[:1], nil
}

// liveDistinct stats every sighting of one base name, drops the ones that
// vanished (renames seen twice) and the ones that are the same inode as
// another, and fixes real duplicates under the lock: an identical copy is
// removed, a different file gets a fresh base name (it is found as a new
// message by the next sync). The file kept is keep, the one the state
// names (zero: none), when it is live: its UID was told to clients with
// its content (a COPY that kept its base name while another program put
// a file of that name into the target meanwhile); else the one in cur/,
// the oldest first. The live sightings are returned, the kept one first.
//
// Held: wmu, mu; lets go of mu for all its I/O (fixDuplicates).
func (m *Mailbox) liveDistinct(ctx context.Context, base string, ss []sighting, keep sighting) ([]sighting, error) {
	var out []sighting
	var busy bool
	var err error
	m.unlocked(func() { out, busy, err = m.fixDuplicates(ctx, base, ss, keep) })
	if busy {
		m.retryLater()
	}
	return out, err
}

// fixDuplicates is liveDistinct's work, which reads and changes files
// and no state: the stats, the lock, the comparison of whole files and
// the removal or rename. busy: the lock could not be had, and a later
// sync is to fix the duplicates (retryLater).
//
// Held: wmu; not mu.
func (m *Mailbox) fixDuplicates(ctx context.Context, base string, ss []sighting, keep sighting) (out []sighting, busy bool, err error) {
	type live struct {
		s  sighting
		fi os.FileInfo
	}
	var ls []live
	for _, s := range ss {
		fi, err := maildir.LstatMessage(filepath.Join(m.dir, s.sub, s.filename))
		if err != nil {
			continue // gone, or replaced by a link: no message
		}
		dup := false
		for _, l := range ls {
			if os.SameFile(l.fi, fi) {
				dup = true
			}
		}
		if !dup {
			ls = append(ls, live{s, fi})
		}
	}
	slices.SortStableFunc(ls, func(a, b live) int {
		if a.s == keep || b.s == keep {
			if a.s == keep {
				return -1
			}
			return 1
		}
		if a.s.sub == b.s.sub {
			return a.fi.ModTime().Compare(b.fi.ModTime())
		}
		if a.s.sub == maildir.Cur {
			return -1
		}
		return 1
	})
	if len(ls) <= 1 {
		out = make([]sighting, len(ls))
		for i, l := range ls {
			out[i] = l.s
		}
		return out, false, nil
	}
	_, release, err := m.syncLock(ctx)
	if errors.Is(err, errLockBusy) {
		// Fixed by a later sync; until then the first is the message.
		m.undone = true
		return []sighting{ls[0].s}, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer release()
	if testHookWriterIO != nil {
		testHookWriterIO(m, "duplicates")
	}
	first := filepath.Join(m.dir, ls[0].s.sub, ls[0].s.filename)
	var gen maildir.NameGen
	for _, l := range ls[1:] {
		path := filepath.Join(m.dir, l.s.sub, l.s.filename)
		same, err := sameContent(first, path)
		if err != nil {
			continue // vanished meanwhile
		}
		if same {
			m.writerLog().Warn("removing an identical second copy of a message", "base", base, "kept", first, "removed", path)
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, false, err
			}
			continue
		}
		n, err := maildir.ParseName(l.s.filename)
		if err != nil {
			continue
		}
		size, vsize := maildir.SizeFields(base)
		nb := gen.New(time.Now())
		if size >= 0 && vsize >= 0 {
			nb = maildir.WithSizes(nb, size, vsize)
		}
		n.Base = nb
		target := filepath.Join(m.dir, l.s.sub, n.Filename())
		m.writerLog().Warn("two different messages share a base name: giving the later one a new name",
			"base", base, "file", path, "renamed", target)
		if err := renameNoReplace(path, target); err != nil {
			return nil, false, err
		}
	}
	return []sighting{ls[0].s}, false, nil
}

func sameContent(a, b string) (bool, error) {
	da, err := readMessageFile(a)
	if err != nil {
		return false, err
	}
	db, err := readMessageFile(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(da, db), nil
}

// readMessageFile reads the message file at path (…/new/x or …/cur/x),
// following no link (maildir.OpenMessagePath).
func readMessageFile(path string) ([]byte, error) {
	f, err := maildir.OpenMessagePath(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// renameNoReplace renames without ever replacing an existing file. A
// source that vanished meanwhile is not an error: someone else moved it.
func renameNoReplace(from, to string) error {
	if err := maildir.RenameNoReplace(from, to); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
