package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// testHookBeforeAssignLock, set by tests, runs when a sync is about to
// take the lock to assign UIDs: the moment another process may replace
// the uidlist.
var testHookBeforeAssignLock func()

// reserve makes room in an empty state for the fresh messages, so that a
// mailbox's first sync does not grow its maps and list step by step.
//
// Held: wmu, mu.
func (m *Mailbox) reserve(fresh map[string][]sighting) {
	if len(m.msgs) != 0 || len(m.byBase) != 0 || len(fresh) < 64 {
		return
	}
	m.byBase = make(map[string]*entry, len(fresh))
	m.msgs = make([]*entry, 0, len(fresh))
}

// adopt adds a message with a known UID to the state, with the modseq
// of the change under way.
//
// Held: wmu, mu; lets go of mu while it takes a modseq (modSeqLocked),
// before it changes anything.
func (m *Mailbox) adopt(uid uint32, base string, s sighting, ch *Changes) {
	n, err := maildir.ParseName(s.filename)
	if err != nil || n.Base != base || len(base) > 255 {
		// (Fresh sightings are keyed by their base names, and a file
		// name is at most 255 bytes: only a name no file has.)
		m.foreign(s.sub, s.filename)
		return
	}
	// One copy of the name, out of the listing's buffer; the base name is
	// its prefix.
	modseq := m.modSeqLocked()
	e := &entry{uid: uid, baseLen: uint8(len(base)), sub: s.sub, filename: strings.Clone(s.filename), flags: n.Flags, seen: m.gen, modseq: modseq}
	m.bases()[e.base()] = e
	if k := len(m.msgs); k == 0 || m.msgs[k-1].uid < uid {
		m.msgs = append(m.msgs, e)
	} else {
		i, _ := slices.BinarySearchFunc(m.msgs, uid, func(x *entry, u uint32) int { return int(int64(x.uid) - int64(u)) })
		m.msgs = slices.Insert(m.msgs, i, e)
	}
	m.msgsChanged()
	if uid >= m.nextUID {
		m.nextUID = uid + 1
	}
	ch.New = append(ch.New, e.message())
}

// assignFound gives UIDs to the base names a sync's listings found that
// the state did not know: from the uidlist when another process assigned
// them, else new ones under the mailbox lock, in base-name order, for
// the files that exist while the lock is held, so that a file that came
// and went between two listings leaves no record.
//
// When the lock cannot be had, or the uidlist cannot be written (a
// read-only or immutable file: EACCES, EPERM), the files without a UID
// stay out of the state (Changes.Unassigned) and the sync goes on: a
// later sync numbers them (newsWaitLocked). Only a mailbox without a
// UIDVALIDITY cannot be shown that way: its error wraps ErrLocked, or is
// the write's own.
//
// Held: wmu, mu; lets go of mu while it takes the dotlock, checks the files
// and appends to the uidlist.
func (m *Mailbox) assignFound(ctx context.Context, f *uidlist.File, fresh map[string][]sighting, ch *Changes) error {
	// A mailbox gets its UIDVALIDITY on its first sync, with messages or
	// without: RFC 9051 §2.3.1.1 wants a non-zero one in every SELECT and
	// STATUS, and it must not change when the first message comes.
	if len(fresh) == 0 && (f != nil || m.uidvalidity != 0) {
		m.newsArrivedLocked()
		return nil
	}
	if f != nil && m.uidvalidity == 0 {
		m.uidvalidity = f.Header.UIDValidity
	}
	m.reserve(fresh)
	ch.New = slices.Grow(ch.New, len(fresh))
	if err := m.adoptFromUIDList(f, fresh, ch); err != nil {
		return err
	}
	if len(fresh) == 0 && (f != nil || m.uidvalidity != 0) {
		m.newsArrivedLocked()
		return nil
	}

	if testHookBeforeAssignLock != nil {
		testHookBeforeAssignLock()
	}
	lock, release, err := m.syncLockLocked(ctx)
	if err != nil {
		if !errors.Is(err, errLockBusy) {
			return err
		}
		if m.uidvalidity == 0 {
			return fmt.Errorf("%w: %s has no dovecot-uidlist yet: %w", ErrLocked, m.dir, err)
		}
		ch.Unassigned = len(fresh)
		if errors.Is(err, errOurChange) {
			m.leaveNewsLocked(fresh)
		}
		m.newsWaitLocked(len(fresh), err)
		return nil
	}
	defer release()
	var gone error
	m.unlocked(func() {
		if f, err = m.refreshUIDList(); err == nil {
			gone = m.checkDir()
		}
	})
	if err != nil {
		return err
	}
	if gone != nil {
		return gone // the lock and the uidlist may be another directory's
	}
	if f != nil && m.uidvalidity != 0 && f.Header.UIDValidity != m.uidvalidity {
		// Replaced after this sync read it: what the sync did so far is
		// about void UIDs. Drop the state and sync again from the start.
		m.resetLocked(f, ch)
		return errRestart
	}
	if err := m.adoptFromUIDList(f, fresh, ch); err != nil {
		return err
	}
	if len(fresh) == 0 {
		if f == nil && m.uidvalidity == 0 {
			_, err := m.createUIDList(lock, nil)
			return err
		}
		m.newsArrivedLocked()
		return nil
	}

	// Only files that exist now, while the lock is held, get a UID.
	bases := make([]string, 0, len(fresh))
	m.unlocked(func() {
		for base, ss := range fresh {
			s := ss[0]
			if _, err := os.Lstat(filepath.Join(m.dir, s.sub, s.filename)); err != nil {
				continue // moved or removed: the next sync finds it where it went
			}
			bases = append(bases, base)
		}
	})
	if len(bases) == 0 {
		m.newsArrivedLocked()
		return nil
	}
	slices.Sort(bases)
	if err := m.recordNew(lock, f, bases, fresh, ch); err != nil {
		if m.uidvalidity == 0 {
			return err
		}
		ch.Unassigned = len(bases)
		m.newsWaitLocked(len(bases), err)
		return nil
	}
	m.newsArrivedLocked()
	return nil
}

// assignOwn gives UIDs to the files names that this process has just put
// into cur/ under the mailbox lock it holds (m.held: APPEND, COPY), in
// the order given: a COPY's destination UIDs follow its source UIDs
// (RFC 4315 COPYUID). They get their UIDs whether or not they are still
// where they were put: a program that ignores the lock may rename or
// delete one at once; the next sync then follows it or, proven gone,
// expunges it, and the APPEND or COPY was truthfully answered with its
// UID. All or none: on error nothing is adopted, and the caller takes
// the files back. f is the uidlist as read under the lock.
//
// Held: turn, dotlock, wmu, mu; lets go of mu during the append.
func (m *Mailbox) assignOwn(f *uidlist.File, names []string, ch *Changes) error {
	fresh := make(map[string][]sighting, len(names))
	bases := make([]string, 0, len(names))
	for _, n := range names {
		base := maildir.BaseName(n)
		if _, known := m.bases()[base]; known {
			continue // no sync can have seen it (wmu), but a name is a name
		}
		if _, dup := fresh[base]; !dup {
			fresh[base] = []sighting{{maildir.Cur, n}}
			bases = append(bases, base)
		}
	}
	if len(bases) == 0 {
		return nil
	}
	return m.recordNew(m.held, f, bases, fresh, ch)
}

// recordNew numbers bases, in the order given, above every UID the state
// and f know, writes their records to the uidlist under lock in one
// append (or writes the first uidlist when f is nil), and only then
// adopts them from fresh. On error the state is as it was.
//
// Held: dotlock, wmu, mu; lets go of mu during the append and while it
// takes a modseq (modSeqLocked).
func (m *Mailbox) recordNew(lock *uidlist.Lock, f *uidlist.File, bases []string, fresh map[string][]sighting, ch *Changes) error {
	// Their modseq is taken now, while mu may be let go: adopt must not
	// let go of it (APPEND and COPY show no message before it is
	// durable).
	m.modSeqLocked()
	next := m.nextUID
	if f != nil {
		next = max(next, f.Header.NextUID)
		if k := len(f.Records); k > 0 {
			next = max(next, f.Records[k-1].UID+1)
		}
	}
	if next == 0 {
		next = 1
	}
	recs := make([]uidlist.Record, len(bases))
	for i, base := range bases {
		recs[i] = uidlist.Record{UID: next + uint32(i), Name: base}
		if size, vsize := maildir.SizeFields(base); size >= 0 && vsize >= 0 {
			recs[i].Ext = []string{fmt.Sprintf("W%d", vsize)}
		}
	}
	if f == nil {
		written, err := m.createUIDList(lock, recs)
		if err != nil {
			return err
		}
		m.adoptRecorded(written, fresh, ch)
	} else {
		var err error
		m.unlocked(func() { err = uidlist.Append(lock, m.dir, recs) })
		if err != nil {
			return fmt.Errorf("store: appending to %s: %w", filepath.Join(m.dir, uidlist.FileName), err)
		}
		m.adoptRecorded(&uidlist.File{Records: recs}, fresh, ch)
	}
	ch.Assigned += len(bases)
	return nil
}

// adoptFromUIDList adopts the base names of fresh that the uidlist f
// read by m.reader has records for: those of f's records (adoptRecorded),
// which are the lean Reader's last read alone, then those that only an
// earlier read may have held (MayHold), looked up in the whole file,
// read once. A record may not be missed: its base name would get a
// second UID.
//
// Held: wmu, mu; lets go of mu to read the file, and as adopt does.
func (m *Mailbox) adoptFromUIDList(f *uidlist.File, fresh map[string][]sighting, ch *Changes) error {
	m.adoptRecorded(f, fresh, ch)
	if f == nil || !f.Partial() || len(fresh) == 0 {
		return nil
	}
	maybe := false
	for base := range fresh {
		if m.reader.MayHold(base) {
			maybe = true
			break
		}
	}
	if !maybe {
		return nil
	}
	var whole *uidlist.File
	var err error
	m.unlocked(func() { whole, err = m.readWholeUIDList() })
	if err != nil {
		return err
	}
	if whole != nil && whole.Header.UIDValidity == f.Header.UIDValidity {
		m.adoptRecorded(whole, fresh, ch)
	}
	return nil
}

// adoptRecorded adopts the base names of fresh that f has records for,
// with those UIDs, and drops them from fresh. A UID the state already
// gives another base name is logged and left.
//
// Held: wmu, mu.
func (m *Mailbox) adoptRecorded(f *uidlist.File, fresh map[string][]sighting, ch *Changes) {
	if f == nil {
		return
	}
	for _, r := range f.Records {
		base := r.Base()
		ss, ok := fresh[base]
		if !ok {
			continue
		}
		delete(fresh, base)
		if _, used := slices.BinarySearchFunc(m.msgs, r.UID, func(x *entry, u uint32) int { return int(int64(x.uid) - int64(u)) }); used {
			m.writerLog().Error("dovecot-uidlist gives one UID to two base names; keeping the first",
				"uid", r.UID, "base", base)
			continue
		}
		m.adopt(r.UID, base, ss[0], ch)
	}
}
