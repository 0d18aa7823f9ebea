package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// Changes is what one Sync found.
type Changes struct {
	// New messages, in UID order.
	New []Message
	// Flags lists messages whose flags changed, in UID order.
	Flags []Message
	// Expunged lists messages proven gone, in UID order.
	Expunged []Message
	// UIDValidityChanged: the uidlist was replaced by one with another
	// UIDVALIDITY; every earlier UID is void and New holds every message.
	UIDValidityChanged bool
	// Gone: the mailbox's directory was deleted or renamed
	// (ErrMailboxGone); nothing else is reported, ever again.
	Gone bool
	// Suspects is the number of messages waiting for a proof.
	Suspects int
	// NewProof and CurProof are the proofs of this sync's listings.
	NewProof, CurProof maildir.Proof
	// Skipped: the cheap check found nothing changed and nothing was read.
	Skipped bool
	// Assigned is the number of UIDs this sync appended to the uidlist.
	Assigned int
	// HighestModSeq is the mailbox's HIGHESTMODSEQ once these changes
	// are made: every message in New and Flags carries its new ModSeq,
	// and the UIDs of Expunged are in ExpungedSince of any lower modseq.
	HighestModSeq uint64
	// Unassigned is the number of files found without a UID that this
	// sync could not give one (the mailbox lock or the uidlist could not
	// be had, or the disk has no room for their records: ENOSPC,
	// EDQUOT): they are not in the state yet, and a later sync numbers
	// them.
	Unassigned int
}

// Empty reports whether the sync changed nothing that sessions see.
func (c *Changes) Empty() bool {
	return len(c.New) == 0 && len(c.Flags) == 0 && len(c.Expunged) == 0 && !c.UIDValidityChanged && !c.Gone
}

// sighting is one file name seen for a base name in this sync's listings.
type sighting struct {
	sub, filename string
}

// Sync reads the Maildir and reconciles it with the state and the
// uidlist, returning what changed (see the package doc for the rules).
//
// What it finds is also published to every Subscription.
//
// Sync is a reader's: it never waits for the mailbox lock beyond
// readerLockWait, and when the lock cannot be had, the files that need
// it to get a UID wait for a later sync (Changes.Unassigned; lock.go).
// Only the first sync of a mailbox that has neither a dovecot-uidlist nor
// a UIDVALIDITY takes the lock as a change does, waiting up to
// creatorLockWait (then ErrLocked): without the uidlist it cannot show
// anything.
//
// Takes: wmu and mu (the turn and the dotlock first for a mailbox without a
// uidlist); mu is let go around its I/O.
func (m *Mailbox) Sync(ctx context.Context) (*Changes, error) {
	if m.needsUIDList() {
		end, err := m.beginChange(ctx, min(creatorLockWait, m.lockTimeout()))
		if err != nil {
			return nil, err
		}
		defer end()
		return m.syncPublishLocked(ctx)
	}
	m.lockWriter()
	defer m.unlockWriter()
	return m.syncPublishLocked(ctx)
}

// needsUIDList reports whether the mailbox has no UIDVALIDITY yet and no
// dovecot-uidlist to take one from: its first sync must write one.
//
// Held: none; takes mu.
func (m *Mailbox) needsUIDList() bool {
	m.mu.Lock()
	uv := m.uidvalidity
	m.mu.Unlock()
	if uv != 0 {
		return false
	}
	_, err := os.Lstat(filepath.Join(m.dir, uidlist.FileName))
	return errors.Is(err, os.ErrNotExist)
}

// syncPublishLocked syncs and hands what it found to the subscribers.
//
// Held: wmu, mu; lets go of mu around its I/O (doc.go, Locking) and
// while it takes a modseq.
func (m *Mailbox) syncPublishLocked(ctx context.Context) (*Changes, error) {
	defer m.withLogLocked(ctx)()
	m.unlocked(m.refreshKeywords)
	m.lockBusy, m.undone, m.waitingNews = false, false, nil
	ch, err := m.syncLocked(ctx)
	m.waiting.Store(int64(m.suspects))
	m.opts.Metrics.synced(ch)
	if errors.Is(err, ErrMailboxGone) {
		m.publish(&Changes{}, nil)
	}
	if err != nil {
		return nil, err
	}
	m.forgetCached(ch.Expunged)
	m.settleRecentLocked(true)
	if m.highest == 0 && m.uidvalidity != 0 {
		// A mailbox's first sync takes a modseq whatever it found: its
		// HIGHESTMODSEQ, and the one of every message it found, is then
		// above anything told before this Mailbox existed.
		m.modSeqLocked()
	}
	m.publish(ch, nil)
	releaseMemory(len(ch.New))
	if ch.Skipped && m.now().Sub(m.savedAt) >= stateSaveInterval {
		// Quiet: the files are as the last listing found them.
		m.saveStateLocked()
	}
	return ch, nil
}

// errRestart: the uidlist got another UIDVALIDITY during the sync, and
// the state was reset; the sync starts over.
var errRestart = errors.New("store: UIDVALIDITY changed during the sync")

// maxRestarts bounds the restarts of one sync; a uidlist replaced again
// and again is an error for the caller to report.
const maxRestarts = 3

// syncLocked syncs, starting over (up to maxRestarts) when the uidlist
// got another UIDVALIDITY meanwhile.
//
// Held: wmu, mu; lets go of mu as syncOnce does.
func (m *Mailbox) syncLocked(ctx context.Context) (*Changes, error) {
	var voided []Message
	for restart := 0; ; restart++ {
		ch := &Changes{}
		err := m.syncOnce(ctx, ch)
		if errors.Is(err, errRestart) && restart < maxRestarts {
			voided = append(voided, ch.Expunged...)
			continue
		}
		if err != nil {
			return nil, err
		}
		if voided != nil {
			// Everything the caller knew is void: report it all expunged
			// and every message new, and nothing else.
			ch.UIDValidityChanged = true
			ch.Expunged = append(voided, ch.Expunged...)
			ch.Flags = nil
			sortByUID(ch.Expunged)
		}
		return ch, nil
	}
}

// syncOnce is one sync (package doc, Sync) adding what it finds to ch.
//
// Held: wmu, mu; lets go of mu around its I/O (doc.go, Locking).
func (m *Mailbox) syncOnce(ctx context.Context, ch *Changes) error {
	newDir, curDir := filepath.Join(m.dir, maildir.New), filepath.Join(m.dir, maildir.Cur)
	var f *uidlist.File
	var err error
	skip := false
	m.unlocked(func() {
		// The fields read here change only under wmu, which is held.
		if err = m.checkDir(); err != nil {
			return
		}
		if m.stampsValid && m.suspects == 0 {
			ns, err1 := maildir.StatDir(newDir)
			cs, err2 := maildir.StatDir(curDir)
			// The uidlist must be the very version the last sync ended
			// with (the Reader answers with the same *File while the
			// file is the same, and holds it open so that its inode is
			// not reused): a rewrite may have changed UIDVALIDITY.
			// A warm-started Mailbox has read no uidlist yet: the one
			// it was served with must still be at the path (warm.go).
			uidOK := false
			if m.lastFile != nil {
				f, err3 := m.refreshUIDList()
				uidOK = err3 == nil && f != nil && f == m.lastFile
			} else if m.warmUID != nil {
				uidOK = m.warmUID.unchanged(m.dir)
			}
			if err1 == nil && err2 == nil && uidOK && ns == m.newStamp && cs == m.curStamp {
				skip = true
				return
			}
		}
		// The uidlist is read before the listings: a record that is
		// absent from it now was appended after this point, by a
		// process that saw its file exist.
		f, err = m.refreshUIDList()
	})
	if err != nil {
		return err
	}
	if skip {
		ch.Skipped = true
		ch.NewProof, ch.CurProof = m.newProof, m.curProof
		return nil
	}
	if f != nil && m.uidvalidity != 0 && f.Header.UIDValidity != m.uidvalidity {
		m.resetLocked(f, ch)
	}
	if f == nil && len(m.msgs) > 0 {
		if f, err = m.rebuildUIDList(ctx); err != nil {
			return err
		}
	}
	nextBefore := m.nextUID
	if f != nil && f.Header.NextUID > nextBefore {
		nextBefore = f.Header.NextUID
	}

	var ln, lc *maildir.Listing
	var gone error
	m.unlocked(func() {
		if ln, err = m.list(newDir); err == nil {
			lc, err = m.list(curDir)
		}
		gone = m.checkDir()
	})
	if gone != nil {
		return gone // the listings may be of another directory
	}
	if err != nil {
		return err
	}
	ch.NewProof, ch.CurProof = ln.Proof, lc.Proof
	proven := ln.Proof.Proven() && lc.Proof.Proven()
	if proven && !m.opts.UnsafeTrustReaddir && m.unchanged(ln, lc) && (f != nil || m.uidvalidity != 0) {
		return m.finish(ch, ln, lc, proven)
	}

	gen := m.nextGenLocked()
	bases := m.bases()
	fresh := make(map[string][]sighting, max(0, len(ln.Names)+len(lc.Names)-len(m.msgs)))
	var dups map[string][]sighting
	// placed are the names known messages had before this sync placed
	// them at another: of a duplicate, the file the state named is kept.
	var placed map[string]sighting
	see := func(sub, name string, typ uint8) {
		if ignorable(name, typ) {
			switch typ {
			case syscall.DT_UNKNOWN, syscall.DT_REG:
				m.foreign(sub, name)
			case syscall.DT_LNK:
				m.foreignLink(sub, name)
			}
			return
		}
		base := maildir.BaseName(name)
		e, ok := bases[base]
		if !ok {
			fresh[base] = append(fresh[base], sighting{sub, name})
			return
		}
		if e.seen == gen {
			if dups == nil {
				dups = make(map[string][]sighting)
			}
			if len(dups[base]) == 0 {
				dups[base] = append(dups[base], sighting{e.sub, e.filename})
			}
			dups[base] = append(dups[base], sighting{sub, name})
			return
		}
		e.seen = gen
		if e.suspect {
			m.resolveSuspect(e, resolvedFound)
		}
		if e.sub != sub || e.filename != name {
			if placed == nil {
				placed = make(map[string]sighting)
			}
			placed[base] = sighting{e.sub, e.filename}
			m.place(e, sub, name, ch)
		}
	}
	for i, name := range ln.Names {
		see(maildir.New, name, ln.Types[i])
	}
	for i, name := range lc.Names {
		see(maildir.Cur, name, lc.Types[i])
	}

	for base, ss := range dups {
		keep, ok := placed[base]
		if !ok {
			e := m.bases()[base]
			keep = sighting{e.sub, e.filename}
		}
		if err := m.resolveDuplicate(ctx, base, ss, keep, ch); err != nil {
			return err
		}
	}
	for base, ss := range fresh {
		if len(ss) > 1 {
			kept, err := m.resolveFreshDuplicate(ctx, base, ss)
			if err != nil {
				return err
			}
			fresh[base] = kept
		}
	}
	if err := m.assignFound(ctx, f, fresh, ch); err != nil {
		if !maildir.NoSpace(err) || m.uidvalidity == 0 {
			return err
		}
		// Reading needs no room on the disk (DESIGN.md §4): the
		// mailbox is served as it was, and the new files wait.
		ch.Unassigned = len(fresh)
		m.writerLog().Warn("no room on the disk for the UIDs of new messages; they wait for a sync with room",
			"messages", len(fresh), "err", err)
	}
	if err := m.expungeAbsent(gen, proven, newDir, ch); err != nil {
		return err
	}
	if proven && !m.opts.UnsafeTrustReaddir {
		if err := m.compact(ctx, nextBefore, len(ch.Expunged) > 0); err != nil {
			m.writerLog().Warn("uidlist compaction failed", "err", err)
		}
	}
	return m.finish(ch, ln, lc, proven)
}

// finish records what the next sync's cheap check starts from.
//
// Held: wmu, mu.
func (m *Mailbox) finish(ch *Changes, ln, lc *maildir.Listing, proven bool) error {
	var err error
	ch.Suspects = m.suspects
	m.stampsValid = proven && m.suspects == 0 && ch.Unassigned == 0 && ln.StampValid && lc.StampValid && !m.opts.UnsafeTrustReaddir && !m.undone
	m.newStamp, m.curStamp = ln.Stamp, lc.Stamp
	// Records appended since the listings are for files that arrived
	// since: their directory's stamp no longer matches, so taking the
	// newest uidlist here cannot hide them from the cheap check.
	var last *uidlist.File
	m.unlocked(func() {
		last, err = m.refreshUIDList()
		if err == nil && last != nil {
			// The records read are in the state now, or are for files
			// that arrived since (the next sync finds them, and their
			// records through MayHold): the Reader lets them go.
			last = m.reader.Settle()
		}
		m.dropWarmUIDList()
	})
	if err != nil {
		return err
	}
	m.lastFile = last
	if m.lastFile != nil && m.lastFile.Header.UIDValidity != m.uidvalidity {
		m.lastFile = nil // replaced meanwhile: the next sync deals with it
	}
	m.newProof, m.curProof = ln.Proof, lc.Proof
	sortByUID(ch.New)
	sortByUID(ch.Flags)
	sortByUID(ch.Expunged)
	return nil
}

// list reads one directory of the Maildir, proven complete when it can
// be (maildir.List).
//
// Held: any.
func (m *Mailbox) list(dir string) (*maildir.Listing, error) {
	if m.opts.UnsafeTrustReaddir {
		return listPlain(dir)
	}
	return maildir.List(dir, maildir.ListOptions{MaxTries: m.opts.MaxTries, Caps: m.opts.Caps})
}

// listPlain is one plain readdir pass, marked proven: the broken
// behaviour that UnsafeTrustReaddir exists to show.
func listPlain(dir string) (*maildir.Listing, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	types := make([]uint8, len(names))
	for i, n := range names {
		if fi, err := os.Lstat(filepath.Join(dir, n)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			types[i] = syscall.DT_LNK
		}
	}
	return &maildir.Listing{Path: dir, Names: names, Types: types, Proof: maildir.ProofLocked, Tries: 1}, nil
}

// place records a new location for a known message and reports a flag
// change, with the modseq of the change under way.
//
// Held: wmu, mu; lets go of mu while it takes a modseq (modSeqLocked),
// before it changes anything.
func (m *Mailbox) place(e *entry, sub, name string, ch *Changes) {
	n, err := maildir.ParseName(name)
	if err != nil {
		m.foreign(sub, name)
		return
	}
	if n.Flags != e.flags {
		e.modseq = m.modSeqLocked()
	}
	e.sub, e.filename = sub, strings.Clone(name)
	if n.Flags != e.flags {
		e.flags = n.Flags
		m.flagsChanged()
		ch.Flags = append(ch.Flags, e.message())
	}
}

// unchanged reports whether the listings hold exactly the messages of
// the state under their file names, besides files that are not messages:
// then the sync has nothing to do. It only reads. Distinct names of one
// directory listing map to distinct messages, so as many matches as
// messages means every message was seen, once.
//
// Held: wmu, mu.
func (m *Mailbox) unchanged(ln, lc *maildir.Listing) bool {
	if m.suspects != 0 {
		return false
	}
	bases := m.bases()
	matched := 0
	for i, l := range [2]*maildir.Listing{ln, lc} {
		sub := maildir.New
		if i == 1 {
			sub = maildir.Cur
		}
		for j, name := range l.Names {
			if ignorable(name, l.Types[j]) {
				// A known name may be a link now (a message file
				// replaced by one): then the message is not there.
				continue
			}
			if e, ok := bases[maildir.BaseName(name)]; ok && e.sub == sub && e.filename == name {
				matched++
				continue
			}
			return false
		}
	}
	return matched == len(m.msgs)
}

// IsMessage reports whether an entry of new/ or cur/ (its name, and its
// d_type: 0 when unknown) is a message as a sync sees it; what is not is
// left alone and logged.
func IsMessage(name string, typ uint8) bool {
	if ignorable(name, typ) {
		return false
	}
	_, err := maildir.ParseName(name)
	return err == nil
}

// ignorable reports whether a directory entry is no message: not a file,
// a dot-file, or a name whose base name no dovecot-uidlist record can hold
// (a newline, a NUL, a trailing CR), which would otherwise stop every
// uidlist write of the mailbox.
//
// A symbolic link is no message either (maildir/nofollow.go): it may
// point at another user's mail or anywhere outside the Maildir, so it
// never gets a UID, is never opened and never renamed.
func ignorable(name string, typ uint8) bool {
	return (typ != syscall.DT_UNKNOWN && typ != syscall.DT_REG) ||
		name == "" || name[0] == '.' || uidlist.NameProblem(maildir.BaseName(name)) != ""
}

// foreign logs, once, a file in new/ or cur/ that is not a message.
//
// Held: wmu, mu.
func (m *Mailbox) foreign(sub, name string) {
	if m.firstSighting(sub, name) {
		m.writerLog().Warn("ignoring a file that is not a Maildir message", "file", filepath.Join(m.dir, sub, name))
	}
}

// foreignLink logs, once, a symbolic link in new/ or cur/: never a
// message, never followed.
//
// Held: wmu, mu.
func (m *Mailbox) foreignLink(sub, name string) {
	if m.firstSighting(sub, name) {
		m.writerLog().Warn("ignoring a symbolic link in the Maildir: it is not a message and is not followed", "file", filepath.Join(m.dir, sub, name))
	}
}

// firstSighting reports whether sub/name was not logged before, and
// remembers it (up to a bound).
//
// Held: wmu, mu.
func (m *Mailbox) firstSighting(sub, name string) bool {
	key := sub + "/" + name
	if m.foreignLogged[key] {
		return false
	}
	if len(m.foreignLogged) < 10000 {
		m.foreignLogged[key] = true
	}
	return true
}
