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
// mailbox lock; a file that another program renamed meanwhile (ErrMoved)
// is looked for again by a sync and the change retried once; every
// change is published to the subscribers only after it is on disk.

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
func (m *Mailbox) SetFlags(ctx context.Context, uids []uint32, op FlagOp, flags maildir.Flags, from *Subscription) ([]Message, error) {
	m.lockWriter()
	defer m.unlockWriter()
	defer m.withLogLocked(ctx)()
	ch := &Changes{}
	var out []Message
	err := m.retryMoved(ctx, uids, func(e *entry) error {
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
// them.
func (m *Mailbox) Expunge(ctx context.Context, uids []uint32, from *Subscription) ([]Message, error) {
	m.lockWriter()
	defer m.unlockWriter()
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
	err := m.retryMoved(ctx, uids, func(e *entry) error {
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

// retryMoved runs change on the message of each UID under the mailbox
// lock; flush applies what the changes did to the state before a sync. A file that another program renamed or removed meanwhile
// (ErrMoved) is looked for by a sync, with the lock released, and the
// change is tried once more where the sync found it; the sync's own
// findings go to every subscriber. Held with wmu and mu.
func (m *Mailbox) retryMoved(ctx context.Context, uids []uint32, change func(*entry) error, flush func()) error {
	for attempt := 0; attempt < 2 && len(uids) > 0; attempt++ {
		var moved []uint32
		var lock *uidlist.Lock
		var err error
		m.unlocked(func() { lock, err = uidlist.AcquireLock(ctx, m.dir, m.opts.Lock) })
		if err != nil {
			if m.checkDir() != nil {
				return ErrMailboxGone
			}
			return fmt.Errorf("store: locking %s: %w", m.dir, err)
		}
		if err := m.checkDir(); err != nil {
			lock.Release()
			return err // the files at the path are another mailbox's
		}
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
				lock.Release()
				return err
			}
		}
		lock.Release()
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

// Append delivers a message into the mailbox with the given flags and
// internal date (zero: now) and returns it with its UID. The message is
// durable before Append returns (DESIGN.md §4).
func (m *Mailbox) Append(ctx context.Context, r io.Reader, flags maildir.Flags, date time.Time, from *Subscription) (Message, error) {
	name, err := maildir.Deliver(m.dir, r, maildir.DeliverOptions{Cur: true, Flags: flags, Time: date})
	if err != nil {
		return Message{}, err
	}
	msgs, err := m.adoptDelivered(ctx, []string{name}, from)
	if err != nil {
		return Message{}, err
	}
	if len(msgs) != 1 {
		return Message{}, fmt.Errorf("store: appended %s vanished before it got a UID", name)
	}
	return msgs[0], nil
}

// adoptDelivered gives UIDs to files that this process just put into
// cur/, in one append, and returns them in the order given.
func (m *Mailbox) adoptDelivered(ctx context.Context, names []string, from *Subscription) ([]Message, error) {
	m.lockWriter()
	defer m.unlockWriter()
	defer m.withLogLocked(ctx)()
	fresh := make(map[string][]sighting, len(names))
	order := make([]string, len(names))
	for i, n := range names {
		order[i] = maildir.BaseName(n)
		if _, known := m.byBase[order[i]]; !known { // a sync may have been faster
			fresh[order[i]] = []sighting{{maildir.Cur, n}}
		}
	}
	f, err := m.refreshUIDList()
	if err != nil {
		return nil, err
	}
	ch := &Changes{}
	if err := m.assign(ctx, f, fresh, order, ch); err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(names))
	for _, n := range names {
		if e, ok := m.byBase[maildir.BaseName(n)]; ok {
			out = append(out, e.message())
		}
	}
	sortByUID(ch.New)
	m.publish(ch, from)
	return out, nil
}

// Copy copies the messages with the given UIDs into dst, keeping their
// flags and internal dates, and returns the pairs of source and
// destination UIDs in source UID order (COPYUID). Files are hard-linked
// when both mailboxes share a filesystem. The two mailboxes are never
// locked at once.
func (m *Mailbox) Copy(ctx context.Context, uids []uint32, dst *Mailbox, from *Subscription) (src, dstUIDs []uint32, err error) {
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

	var names []string
	var copied []uint32
	for _, it := range items {
		name, err := copyInto(it.path, dst.dir, it.flags)
		if errors.Is(err, os.ErrNotExist) {
			// Renamed under our feet: look it up again once.
			if msg, ok := m.lookupFresh(ctx, it.uid); ok {
				name, err = copyInto(filepath.Join(m.dir, msg.Sub, msg.Filename), dst.dir, msg.Flags)
			}
		}
		if errors.Is(err, os.ErrNotExist) {
			continue // expunged meanwhile: not copied
		}
		if err != nil {
			return nil, nil, err
		}
		names = append(names, name)
		copied = append(copied, it.uid)
	}
	msgs, err := dst.adoptDelivered(ctx, names, from)
	if err != nil {
		return nil, nil, err
	}
	byBase := make(map[string]uint32, len(msgs))
	for _, msg := range msgs {
		byBase[msg.Base] = msg.UID
	}
	for i, n := range names {
		if uid, ok := byBase[maildir.BaseName(n)]; ok {
			src = append(src, copied[i])
			dstUIDs = append(dstUIDs, uid)
		}
	}
	return src, dstUIDs, nil
}

// copyInto puts the message file at path into the Maildir dir's cur/
// with flags: a hard link where possible, else a durable copy with the
// same mtime (the internal date).
func copyInto(path, dir string, flags maildir.Flags) (string, error) {
	opts := maildir.DeliverOptions{Cur: true, Flags: flags}
	name, err := maildir.Link(path, dir, opts)
	// A copy where no link can be: across filesystems, or a file another
	// user owns (a foreign program's delivery) where the kernel protects
	// hard links (fs.protected_hardlinks: EPERM).
	if !errors.Is(err, maildir.ErrCrossDevice) && !errors.Is(err, fs.ErrPermission) {
		return name, err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	opts.Time = fi.ModTime()
	return maildir.Deliver(dir, f, opts)
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
	f, err := os.Open(filepath.Join(m.dir, msg.Sub, msg.Filename))
	if err == nil {
		return f, msg, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, msg, err
	}
	msg, ok := m.lookupFresh(ctx, uid)
	if !ok {
		return nil, Message{}, ErrNoSuchMessage
	}
	f, err = os.Open(filepath.Join(m.dir, msg.Sub, msg.Filename))
	if errors.Is(err, os.ErrNotExist) {
		return nil, msg, ErrNoSuchMessage
	}
	return f, msg, err
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
