package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// refreshUIDList reads what changed in dovecot-uidlist, logging damage.
// A missing file is (nil, nil).
//
// Held: wmu (or the Mailbox is not shared yet: Open); mu or not.
func (m *Mailbox) refreshUIDList() (*uidlist.File, error) {
	f, problems, err := m.reader.Refresh()
	for _, p := range problems {
		m.writerLog().Warn("dovecot-uidlist damage", "problem", p.String())
	}
	if errors.Is(err, uidlist.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if errors.Is(err, uidlist.ErrBadHeader) || errors.Is(err, uidlist.ErrBadVersion) {
		// No UID can be read from it: it is as good as missing. The next
		// write keeps a copy of it before replacing it.
		m.writerLog().Error("dovecot-uidlist is unreadable; a copy is kept when it is replaced", "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// readWholeUIDList reads and parses the whole dovecot-uidlist, for what
// needs every record, which the lean Reader's Files do not hold: a
// rewrite, a lookup of a record read before (MayHold). Damage is not
// logged again (the Reader did). A missing or unusable file is (nil,
// nil), as for refreshUIDList.
//
// Held: any.
func (m *Mailbox) readWholeUIDList() (*uidlist.File, error) {
	path := filepath.Join(m.dir, uidlist.FileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f, _, err := uidlist.Parse(path, data)
	if err != nil {
		return nil, nil
	}
	return f, nil
}

// replaceUIDList writes file as the new dovecot-uidlist under the held
// lock. When the file on disk is damaged (unreadable, or with lines that
// were skipped), a copy of it is kept first: what it held may still be
// recovered by hand.
//
// Held: dotlock, wmu; mu or not.
func (m *Mailbox) replaceUIDList(lock *uidlist.Lock, file *uidlist.File) error {
	path := filepath.Join(m.dir, uidlist.FileName)
	if data, err := os.ReadFile(path); err == nil {
		if _, problems, err := uidlist.Parse(path, data); err != nil || len(problems) > 0 {
			cp, err := uidlist.KeepCopy(m.dir)
			if err != nil {
				return fmt.Errorf("store: keeping a copy of damaged %s: %w", path, err)
			}
			m.writerLog().Warn("kept a copy of the damaged dovecot-uidlist before replacing it", "copy", cp)
		}
	}
	if err := uidlist.Rewrite(lock, m.dir, file); err != nil {
		return fmt.Errorf("store: writing %s: %w", path, err)
	}
	return nil
}

// resetLocked drops the state after the uidlist was replaced with another
// UIDVALIDITY: every message will be new again.
//
// Held: wmu, mu.
func (m *Mailbox) resetLocked(f *uidlist.File, ch *Changes) {
	m.writerLog().Error("UIDVALIDITY changed: dovecot-uidlist was replaced, every UID is void",
		"old", m.uidvalidity, "new", f.Header.UIDValidity)
	for _, e := range m.msgs {
		ch.Expunged = append(ch.Expunged, e.message())
		if e.suspect {
			m.resolveSuspect(e, resolvedExpunged)
		}
	}
	ch.UIDValidityChanged = true
	m.msgs = nil
	m.msgsChanged()
	m.byBase = make(map[string]*entry)
	m.suspects = 0
	m.stampsValid = false
	m.uidvalidity, m.nextUID = f.Header.UIDValidity, f.Header.NextUID
}

// createUIDList writes the first dovecot-uidlist of a mailbox with recs,
// importing Courier's UIDs first when courierimapuiddb exists (recs are
// then numbered after them). It returns the file written.
//
// Held: dotlock, wmu, mu; lets go of mu while it reads and writes the
// files (firstUIDList).
func (m *Mailbox) createUIDList(lock *uidlist.Lock, recs []uidlist.Record) (*uidlist.File, error) {
	var file *uidlist.File
	var err error
	m.unlocked(func() { file, err = m.firstUIDList(lock, recs) })
	if err != nil {
		return nil, err
	}
	m.uidvalidity = file.Header.UIDValidity
	m.nextUID = max(m.nextUID, file.Header.NextUID)
	return file, nil
}

// firstUIDList is createUIDList's I/O: it reads courierimapuiddb, takes
// a UIDVALIDITY when it has none, and writes the file.
//
// Held: dotlock, wmu; not mu.
func (m *Mailbox) firstUIDList(lock *uidlist.Lock, recs []uidlist.Record) (*uidlist.File, error) {
	file := &uidlist.File{Header: uidlist.Header{Version: 3, GUID: m.keptGUID()}}
	courier := filepath.Join(m.dir, uidlist.CourierFileName)
	if data, err := os.ReadFile(courier); err == nil {
		cf, problems, err := uidlist.ParseCourier(courier, data)
		for _, p := range problems {
			m.writerLog().Warn("courierimapuiddb damage", "problem", p.String())
		}
		if err == nil {
			m.writerLog().Info("importing UIDs from courierimapuiddb", "records", len(cf.Records))
			file.Header.UIDValidity = cf.Header.UIDValidity
			file.Header.NextUID = cf.Header.NextUID
			file.Records = cf.Records
		} else {
			m.writerLog().Warn("courierimapuiddb unreadable", "err", err)
		}
	}
	if file.Header.UIDValidity == 0 {
		v, err := m.newUIDValidity()
		if err != nil {
			return nil, err
		}
		file.Header.UIDValidity = v
	}
	known := make(map[string]bool, len(file.Records))
	next := max(file.Header.NextUID, 1)
	for _, r := range file.Records {
		known[r.Base()] = true
		next = max(next, r.UID+1)
	}
	for _, r := range recs {
		if known[r.Name] {
			continue
		}
		r.UID = next
		next++
		file.Records = append(file.Records, r)
	}
	file.Header.NextUID = next
	if m.uidvalidity != 0 && m.uidvalidity != file.Header.UIDValidity {
		m.writerLog().Error("dovecot-uidlist is missing: UIDs are rebuilt with a new UIDVALIDITY",
			"old", m.uidvalidity, "new", file.Header.UIDValidity)
	}
	if err := m.replaceUIDList(lock, file); err != nil {
		return nil, err
	}
	return file, nil
}

// rebuildUIDList writes dovecot-uidlist again from the state after it
// vanished: the UID map is not lost while this process holds it, so the
// UIDVALIDITY stays. Records that another process appended and this one
// never saw are gone with the file; their messages get new UIDs above
// every UID this process knows.
//
// Without the lock (syncLockLocked) it returns no file and leaves the
// rebuild to a later sync; this one then gives no new UIDs.
//
// Held: wmu, mu; lets go of mu for the dotlock and the files.
func (m *Mailbox) rebuildUIDList(ctx context.Context) (*uidlist.File, error) {
	lock, release, err := m.syncLockLocked(ctx)
	if errors.Is(err, errLockBusy) {
		m.undone = true
		m.retryLater()
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer release()
	var f *uidlist.File
	m.unlocked(func() { f, err = m.rewriteUIDList(lock) })
	return f, err
}

// rewriteUIDList is rebuildUIDList's I/O, under lock: the state is
// written as the uidlist unless someone else wrote one meanwhile.
//
// Held: dotlock, wmu; not mu.
func (m *Mailbox) rewriteUIDList(lock *uidlist.Lock) (*uidlist.File, error) {
	if err := m.checkDir(); err != nil {
		return nil, err // never write this state into another directory
	}
	if f, err := m.refreshUIDList(); err != nil || f != nil {
		return f, err // someone else rebuilt it meanwhile
	}
	file := &uidlist.File{Header: uidlist.Header{Version: 3, UIDValidity: m.uidvalidity, NextUID: m.nextUID, GUID: m.keptGUID()}}
	for _, e := range m.msgs {
		file.Records = append(file.Records, uidlist.Record{UID: e.uid, Name: e.base()})
	}
	m.writerLog().Error("dovecot-uidlist vanished: rewriting it from the synced state", "records", len(file.Records))
	if err := m.replaceUIDList(lock, file); err != nil {
		return nil, err
	}
	return m.refreshUIDList()
}

// compactThreshold: the uidlist is rewritten without the records of
// vanished messages once they are at least this many and a quarter of the
// file, so that appends stay the common case.
const compactThreshold = 256

// compact rewrites the uidlist without records of messages that this
// proven sync showed gone. Only records older than the listings
// (UID < nextBefore) can be dropped: a newer record may be for a file
// delivered after the listings were read.
//
// Held: wmu, mu; lets go of mu for all its I/O (compactFile).
func (m *Mailbox) compact(ctx context.Context, nextBefore uint32, expunged bool) error {
	var err error
	m.bases() // compactFile reads it without mu
	m.unlocked(func() { err = m.compactFile(ctx, nextBefore, expunged) })
	return err
}

// compactFile is compact's work: it reads the uidlist, and when enough
// of its records are dead takes the lock, reads it and new/ again, and
// rewrites it. It reads the state, which no one else changes while wmu
// is held, and changes none of it.
//
// Held: wmu; not mu.
func (m *Mailbox) compactFile(ctx context.Context, nextBefore uint32, expunged bool) error {
	f, err := m.refreshUIDList()
	if err != nil || f == nil {
		return err
	}
	// The lean Reader counts the records, not which are dead: every
	// record beyond the messages is about one dead record (the messages
	// have one each), and the whole file is read only when they could
	// be enough.
	if extra := f.Len() - len(m.msgs); extra < compactThreshold || extra*4 < f.Len() {
		return nil
	}
	// Records only die when messages go: without an expunge here, and
	// with as many records as at the last count, the count stands.
	if !expunged && f.Len() == m.compactFew {
		return nil
	}
	m.compactFew = 0
	lock, release, err := m.syncLock(ctx)
	if errors.Is(err, errLockBusy) {
		return nil // a later proven sync compacts
	}
	if err != nil {
		return err
	}
	defer release()
	if err := m.checkDir(); err != nil {
		return err
	}
	f, err = m.readWholeUIDList()
	if err != nil || f == nil {
		return err
	}
	if f.Header.UIDValidity != m.uidvalidity {
		return nil
	}
	dead := 0
	for _, r := range f.Records {
		if r.UID < nextBefore {
			if _, ok := m.byBase[r.Base()]; !ok {
				dead++
			}
		}
	}
	if dead < compactThreshold || dead*4 < len(f.Records) {
		m.compactFew = f.Len()
		return nil
	}
	// A file moved from cur/ back to new/ during the sync's reads was
	// missed by both: keep the records of whatever new/ holds now.
	if testHookWriterIO != nil {
		testHookWriterIO(m, "compact")
	}
	ln, err := m.list(filepath.Join(m.dir, maildir.New))
	if err != nil {
		return err
	}
	if !ln.Proof.Proven() {
		return nil
	}
	inNew := make(map[string]bool, len(ln.Names))
	for _, name := range ln.Names {
		inNew[maildir.BaseName(name)] = true
	}
	out := &uidlist.File{Header: f.Header}
	out.Header.NextUID = max(f.Header.NextUID, m.nextUID)
	if k := len(f.Records); k > 0 {
		out.Header.NextUID = max(out.Header.NextUID, f.Records[k-1].UID+1)
	}
	for _, r := range f.Records {
		if r.UID < nextBefore {
			if e, ok := m.byBase[r.Base()]; (!ok || e.uid != r.UID) && !inNew[r.Base()] {
				continue
			}
		}
		out.Records = append(out.Records, r)
	}
	m.writerLog().Info("compacting dovecot-uidlist", "records", len(f.Records), "kept", len(out.Records))
	return m.replaceUIDList(lock, out)
}
