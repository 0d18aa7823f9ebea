package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// Our own changes (DESIGN.md §4): renames and unlinks happen under the
// mailbox lock, which each change takes before wmu (beginChange,
// lock.go) and waits for up to the lock timeout (then ErrLocked, and
// nothing changed); a file that another program renamed meanwhile
// (ErrMoved) is looked for again by a sync and the change retried once;
// every change is published to the subscribers only after it is on disk.
//
// A NO means not done (DESIGN.md §4): APPEND and COPY write their files
// into tmp/ first, then take the lock, rename them into cur/ and record
// their UIDs; a lock that cannot be had leaves nothing but tmp/ files,
// which are removed, and a uidlist that cannot be written gets the files
// taken back out of cur/ before the lock is released, so that no other
// process can number them meanwhile.

// ErrNoSuchMessage: the UID is not (or no longer) in the mailbox.
var ErrNoSuchMessage = errors.New("store: no such message")

// FlagOp says how SetFlags combines the given flags with a message's.
type FlagOp int

const (
	FlagsReplace FlagOp = iota // FLAGS: the settable flags become f
	FlagsAdd                   // +FLAGS
	FlagsRemove                // -FLAGS
)

// Settable are the letters a replacement sets or clears: the system flags
// D F R S T and the keywords a–z. Other letters (P, and any a program
// invented) are kept: no client can see them, so none means to clear
// them.
var Settable = func() maildir.Flags {
	f, _ := maildir.ParseFlags("DFRSTabcdefghijklmnopqrstuvwxyz")
	return f
}()

func (op FlagOp) apply(old, f maildir.Flags) maildir.Flags {
	switch op {
	case FlagsAdd:
		return old | f
	case FlagsRemove:
		return old &^ f
	}
	return old&^Settable | f&Settable
}

// SetFlags changes the flags of the messages with the given UIDs and
// returns the messages as they are afterwards (changed or not), in UID
// order. UIDs that are gone are skipped. Subscribers other than from hear
// of the changes; the caller reports them itself.
//
// It waits for the mailbox lock up to the lock timeout; past that the
// error wraps ErrLocked and no flag changed.
func (m *Mailbox) SetFlags(ctx context.Context, uids []uint32, op FlagOp, flags maildir.Flags, from *Subscription) ([]Message, error) {
	if !m.anyKnown(uids) {
		return nil, nil
	}
	end, err := m.beginChange(ctx, m.lockTimeout())
	if err != nil {
		return nil, err
	}
	defer end()
	defer m.withLogLocked(ctx)()
	ch := &Changes{}
	var out []Message
	err = m.retryMoved(ctx, uids, func(e *entry) error {
		nf := op.apply(e.flags, flags)
		if nf == e.flags && e.sub == maildir.Cur {
			out = append(out, e.message())
			return nil
		}
		name, err := maildir.SetFlags(m.dir, e.sub, e.filename, nf)
		if err != nil {
			return err
		}
		m.unindexName(e)
		e.sub, e.filename = maildir.Cur, name
		m.indexName(e)
		if e.flags != nf {
			e.flags = nf
			m.flagsChanged()
			ch.Flags = append(ch.Flags, e.message())
		}
		out = append(out, e.message())
		return nil
	}, func() {})
	m.publish(ch, from)
	sortByUID(out)
	return out, err
}

// Expunge removes the messages with the given UIDs and returns those
// that were removed, in UID order. Subscribers other than from hear of
// them. It waits for the mailbox lock as SetFlags does (ErrLocked).
func (m *Mailbox) Expunge(ctx context.Context, uids []uint32, from *Subscription) ([]Message, error) {
	if !m.anyKnown(uids) {
		return nil, nil
	}
	end, err := m.beginChange(ctx, m.lockTimeout())
	if err != nil {
		return nil, err
	}
	defer end()
	defer m.withLogLocked(ctx)()
	ch := &Changes{}
	gone := make(map[*entry]bool)
	// forget drops the removed messages from the state, before any sync
	// could take their absence for someone else's expunge.
	forget := func() {
		if len(gone) == 0 {
			return
		}
		for e := range gone {
			if e.suspect {
				m.resolveSuspect(e, resolvedExpunged)
			}
			delete(m.byBase, e.base)
			m.unindexName(e)
			ch.Expunged = append(ch.Expunged, e.message())
		}
		m.msgs = slices.DeleteFunc(m.msgs, func(e *entry) bool { return gone[e] })
		m.msgsChanged()
		clear(gone)
	}
	err = m.retryMoved(ctx, uids, func(e *entry) error {
		if err := maildir.Remove(m.dir, e.sub, e.filename); err != nil {
			return err
		}
		gone[e] = true
		return nil
	}, forget)
	forget()
	m.waiting.Store(int64(m.suspects))
	sortByUID(ch.Expunged)
	m.forgetCached(ch.Expunged)
	ours := slices.Clone(ch.Expunged)
	m.publish(ch, from)
	return ours, err
}

// anyKnown reports whether any of uids is a message of the mailbox: a
// change of none needs no lock (a CLOSE with nothing to expunge works
// while another process holds the lock).
func (m *Mailbox) anyKnown(uids []uint32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.ContainsFunc(uids, func(uid uint32) bool { return m.byUID(uid) != nil })
}

// retryMoved runs change on the message of each UID; flush applies what
// the changes did to the state before a sync. A file that another
// program renamed or removed meanwhile (ErrMoved) is looked for by a sync
// (under the change's lock), and the change is tried once more where the
// sync found it; the sync's own findings go to every subscriber. Held
// with what beginChange takes.
func (m *Mailbox) retryMoved(ctx context.Context, uids []uint32, change func(*entry) error, flush func()) error {
	for attempt := 0; attempt < 2 && len(uids) > 0; attempt++ {
		var moved []uint32
		for _, uid := range uids {
			e := m.byUID(uid)
			if e == nil {
				continue
			}
			err := change(e)
			if errors.Is(err, maildir.ErrMoved) {
				moved = append(moved, uid)
				continue
			}
			if err != nil {
				return err
			}
		}
		if len(moved) == 0 || attempt == 1 {
			return nil // what moved twice: the next sync says where
		}
		flush()
		if _, err := m.syncPublishLocked(ctx); err != nil {
			return err
		}
		uids = moved
	}
	return nil
}

// testHookPublished, set by tests, runs when APPEND or COPY has put its
// files into cur/ and is about to record their UIDs.
var testHookPublished func()

// testHookSyncPlaced, set by tests, stands in for the fsync of cur/ after
// APPEND or COPY recorded their files: its failure is one a test cannot
// cause on a real file system.
var testHookSyncPlaced func() error

// Append delivers a message into the mailbox with the given flags and
// internal date (zero: now) and returns it with its UID. The message is
// durable before Append returns (DESIGN.md §4). On error nothing is left
// in the mailbox (adoptStaged); an error wrapping ErrLocked says the
// mailbox lock could not be had within the lock timeout.
func (m *Mailbox) Append(ctx context.Context, r io.Reader, flags maildir.Flags, date time.Time, from *Subscription) (Message, error) {
	s, err := maildir.Stage(m.dir, r, maildir.DeliverOptions{Cur: true, Flags: flags, Time: date})
	if err != nil {
		return Message{}, err
	}
	msgs, err := m.adoptStaged(ctx, []*maildir.Staged{s}, from)
	if err != nil {
		return Message{}, err
	}
	return msgs[0], nil
}

// adoptStaged delivers the messages staged in this mailbox's tmp/
// (maildir.Stage, StageLink) into cur/ and gives them UIDs, all or none,
// and returns them in the order given. The steps, and what each failure
// leaves:
//
//  1. Take the change's turn and the mailbox lock (lockChange), so that
//     no other process numbers a file whose command may yet fail. Not to
//     be had within the lock timeout: ErrLocked; the staged files are
//     removed from tmp/.
//  2. Read the uidlist under the lock; replaced by one with another
//     UIDVALIDITY: sync first, under the same lock, so that the new
//     files are numbered after the new UIDs, in the order given.
//  3. Rename the files into cur/ (maildir.Place), without wmu: syncs
//     meanwhile see them and leave them to this change. Failure: the
//     files renamed so far are unlinked again; the rest removed from
//     tmp/.
//  4. Append their records to the uidlist in one write and fsync it
//     (assignOwn), check that the mailbox's path still leads to its
//     directory (a program that ignores the lock may have renamed it
//     away, sending the renames or the records elsewhere), then fsync
//     cur/ from the directory the Mailbox holds open
//     (maildir.SyncPlacedAt; on ext4 the uidlist's fsync has already
//     carried the renames to the journal, so the lock is held for one
//     journal commit, not two). Failure of any (EACCES, EPERM, ENOSPC,
//     EIO, ErrMailboxGone): the files are unlinked from cur/ of that
//     open directory while the lock is still held (maildir.UnpublishAt),
//     the state is as it was (records already written stay, naming no
//     file, and their UIDs are never given again), and the error is
//     returned. A file a lockless program renamed meanwhile cannot be
//     taken back; that is logged.
//  5. Publish the new messages to the subscribers; let go of the lock.
//
// A crash after step 3 and before step 4 ends leaves files in cur/
// without a UID that no client was told of: the next sync numbers them
// (a message whose APPEND got no answer).
func (m *Mailbox) adoptStaged(ctx context.Context, staged []*maildir.Staged, from *Subscription) ([]Message, error) {
	defer func() {
		for _, s := range staged {
			s.Discard() // what is not in cur/ now is not to be
		}
	}()
	if len(staged) == 0 {
		return nil, nil
	}
	lock, unlock, err := m.lockChange(ctx, m.lockTimeout())
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := m.syncIfReplaced(ctx, lock); err != nil {
		return nil, err
	}
	if err := maildir.Place(staged); err != nil {
		return nil, err
	}
	if testHookPublished != nil {
		testHookPublished()
	}

	m.enterChange(lock)
	defer m.leaveChange()
	defer m.adoptWaitingLocked(ctx)
	defer m.withLogLocked(ctx)()
	names := make([]string, len(staged))
	for i, s := range staged {
		names[i] = s.Filename()
	}
	ch := &Changes{}
	f, err := m.refreshUIDList()
	if err == nil && f != nil && m.uidvalidity != 0 && f.Header.UIDValidity != m.uidvalidity {
		// Replaced since step 2, under our lock: only a program that
		// ignores the lock does that.
		err = fmt.Errorf("store: %s was replaced under the lock", filepath.Join(m.dir, uidlist.FileName))
	}
	if err == nil {
		err = m.assignOwn(f, names, ch)
		if err == nil {
			// The files were placed and the uidlist written by path: a
			// program that renamed the directory meanwhile, without the
			// lock, may have sent either elsewhere. Past this check, the
			// rest goes through the directory the Mailbox holds open.
			if err = m.checkDir(); err != nil {
				m.dropNewLocked(ch.New)
			}
		}
	}
	if err == nil {
		// mu stays held: no reader may see the messages before they are
		// durable, as they may yet be taken back.
		if testHookSyncPlaced != nil {
			err = testHookSyncPlaced()
		} else {
			err = maildir.SyncPlacedAt(m.dirf, staged)
		}
		if err != nil {
			m.dropNewLocked(ch.New)
		}
	}
	if err != nil {
		var uerr error
		m.unlocked(func() { uerr = maildir.UnpublishAt(m.dirf, staged) })
		if uerr != nil {
			m.logLocked().Error("a refused message could not be taken back: a later sync shows it",
				"err", uerr, "cause", err)
		}
		return nil, err
	}
	out := make([]Message, 0, len(names))
	for _, n := range names {
		if e, ok := m.byBase[maildir.BaseName(n)]; ok {
			msg := e.message()
			msg.UIDValidity = m.uidvalidity
			out = append(out, msg)
		}
	}
	if len(out) != len(names) {
		return nil, fmt.Errorf("store: %d of %d messages put into %s got no UID", len(names)-len(out), len(names), m.dir)
	}
	sortByUID(ch.New)
	m.publish(ch, from)
	return out, nil
}

// dropNewLocked takes messages that were just adopted, and published to
// no one, back out of the state; their UIDs stay used. Held with mu.
func (m *Mailbox) dropNewLocked(msgs []Message) {
	gone := make(map[*entry]bool, len(msgs))
	for _, msg := range msgs {
		if e, ok := m.byBase[msg.Base]; ok && e.uid == msg.UID {
			gone[e] = true
			delete(m.byBase, e.base)
			m.unindexName(e)
		}
	}
	m.msgs = slices.DeleteFunc(m.msgs, func(e *entry) bool { return gone[e] })
	m.msgsChanged()
}

// syncIfReplaced syncs, under the change's lock, when dovecot-uidlist now
// has another UIDVALIDITY than the state: what follows then numbers files
// after the new file's UIDs. It takes wmu and mu, and lets go of them.
func (m *Mailbox) syncIfReplaced(ctx context.Context, lock *uidlist.Lock) error {
	m.enterChange(lock)
	defer m.leaveChange()
	f, err := m.refreshUIDList()
	if err != nil || f == nil || m.uidvalidity == 0 || f.Header.UIDValidity == m.uidvalidity {
		return err
	}
	_, err = m.syncPublishLocked(ctx)
	return err
}

// Copy copies the messages with the given UIDs into dst, keeping their
// flags and internal dates, and returns dst's UIDVALIDITY that the new
// UIDs belong to (as it was when they were recorded) and the pairs of
// source and destination UIDs in source UID order (COPYUID). Files are hard-linked
// when both mailboxes share a filesystem. The two mailboxes are never
// locked at once: the copies are staged in dst's tmp/ without a lock,
// then adopted by dst all or none (adoptStaged), so that a COPY that
// fails leaves no copy behind.
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

// lookupFresh syncs and returns the message with uid where it is now.
func (m *Mailbox) lookupFresh(ctx context.Context, uid uint32) (Message, bool) {
	m.lockWriter()
	defer m.unlockWriter()
	if _, err := m.syncPublishLocked(ctx); err != nil {
		return Message{}, false
	}
	e := m.byUID(uid)
	if e == nil {
		return Message{}, false
	}
	return e.message(), true
}

// OpenMessage opens the file of the message with uid for reading. A file
// renamed by someone else (a flag change) is looked up again by a sync
// before the answer is that the message is gone (DESIGN.md §3: a FETCH
// retries before it answers).
func (m *Mailbox) OpenMessage(ctx context.Context, uid uint32) (*os.File, Message, error) {
	m.mu.Lock()
	e := m.byUID(uid)
	if e == nil {
		m.mu.Unlock()
		return nil, Message{}, ErrNoSuchMessage
	}
	msg := e.message()
	m.mu.Unlock()
	f, err := maildir.OpenMessageAt(m.dirf, msg.Sub, msg.Filename)
	if err == nil {
		return f, msg, nil
	}
	if !errors.Is(err, os.ErrNotExist) && !notMessageFile(err) {
		return nil, msg, err
	}
	// Renamed, or replaced by a link (which the sync leaves out).
	msg, ok := m.lookupFresh(ctx, uid)
	if !ok {
		return nil, Message{}, ErrNoSuchMessage
	}
	f, err = maildir.OpenMessageAt(m.dirf, msg.Sub, msg.Filename)
	if errors.Is(err, os.ErrNotExist) || notMessageFile(err) {
		if notMessageFile(err) {
			m.log.Warn("a message file is not a regular file (a symbolic link?): not read", "file", m.Path(msg), "err", err)
		}
		return nil, msg, ErrNoSuchMessage
	}
	return f, msg, err
}

// notMessageFile reports whether err says that a message's path leads
// to no regular file below the mailbox: a symbolic link (never
// followed), a directory or a device.
func notMessageFile(err error) bool {
	return errors.Is(err, maildir.ErrNotRegular) || errors.Is(err, maildir.ErrSymlink)
}

func (m *Mailbox) byUID(uid uint32) *entry {
	i, found := slices.BinarySearchFunc(m.msgs, uid, func(x *entry, u uint32) int { return int(int64(x.uid) - int64(u)) })
	if !found {
		return nil
	}
	return m.msgs[i]
}

// Path returns where msg's file was when the state last saw it.
func (m *Mailbox) Path(msg Message) string { return filepath.Join(m.dir, msg.Sub, msg.Filename) }

// LookupUID returns the message with uid.
func (m *Mailbox) LookupUID(uid uint32) (Message, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.byUID(uid)
	if e == nil {
		return Message{}, false
	}
	return e.message(), true
}
