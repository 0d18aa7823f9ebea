package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
	"golang.org/x/sys/unix"
)

// ErrMoveNeedsCopy is returned by Move when the messages cannot be moved
// by rename(2): the two mailboxes are on different filesystems (EXDEV),
// or the target has no dovecot-uidlist to record them in. Nothing was
// done; the caller copies and expunges instead.
var ErrMoveNeedsCopy = errors.New("store: the messages cannot be moved by rename; copy and expunge them")

// Test hooks of Move, run under the target's lock: before the renames
// (a foreign program may rename or remove a source file then), and after
// them, before the UIDs are appended.
var (
	testHookMoveBeforeRenames func()
	testHookMoveBeforeAppend  func()
)

// lockTouchEvery: a Move of many messages holds the target's lock as
// long as its renames take, and refreshes the lock this often so that
// nobody takes it over as stale (uidlist.DefaultStaleAfter, 2 minutes).
const lockTouchEvery = 10 * time.Second

// moveNames makes the fresh base names of messages whose own collides in
// the target; one generator for the process, so that no two are equal.
var moveNames maildir.NameGen

// moving is one message of a Move.
type moving struct {
	e *entry // the source's entry; read only under the source's mu
	// uid and base are the source's; sub and filename where its file is
	// (found again after a foreign rename).
	uid           uint32
	base          string
	sub, filename string
	// name is the file's name in the target's cur/ once renamed ("":
	// not moved), dstUID its UID there once appended.
	name   string
	dstUID uint32
}

// Move moves the messages with the given UIDs into dst and returns the
// UIDVALIDITY of dst that their new UIDs belong to, and the pairs of
// source and destination UIDs in source UID order (COPYUID). On one
// filesystem each message is one rename(2) from m's new/ or cur/ into
// dst's cur/: at every instant its file is in exactly one of the two
// mailboxes, whenever the process dies. The steps:
//
//  1. m's turn among this process's changes and dst's lock
//     (dovecot-uidlist.lock) are taken, then m's writer lock; the
//     messages are taken from the state and dst's uidlist is read.
//  2. Each file is renamed into dst's cur/ under its final name: its base
//     name, or a fresh one (with the same S= and W=) when dst's uidlist
//     already has a record for it (basesRecorded), and its flags with the keywords given
//     dst's letters (added to dst's dovecot-keywords as needed). A file
//     that another program renamed meanwhile is looked for by base name
//     in m's new/ and cur/ and renamed from there; one that is gone was
//     expunged, and is not moved. A crash here: the moved files have no
//     UID in dst, whose next sync gives them one, and m's next proven
//     sync expunges them.
//  3. dst's cur/ and then the source directories are fsynced, and the
//     new UIDs appended to dst's uidlist in one append, in source UID
//     order. Only then is dst's lock released: no other process gave a
//     moved file a UID meanwhile.
//  4. When step 2 (but for vanished files) or 3 fails, or dst's path no
//     longer leads to its directory after the uidlist append (a program
//     that ignores the lock renamed it), every moved file is renamed
//     back, still under dst's lock, and the error returned: nothing was
//     moved. The renames, fsyncs and renames back of steps 2 to 4 go
//     through the new/ and cur/ of the directories the two Mailboxes
//     hold open (moveDirs), never by path. Other filesystems (EXDEV) or a dst without a
//     uidlist give ErrMoveNeedsCopy.
//  5. The moved messages leave m's state, still under m's writer lock,
//     so that no sync in this process saw their absence first; the
//     expunges go to m's subscribers but from, whose owner reports them.
//  6. With m's locks released, dst adopts the messages under its own
//     writer lock with the UIDs appended, and tells its subscribers.
//
// Move is a change of m whose mailbox lock is dst's (lock.go): it takes
// m's turn, dst's dotlock, then m's writer lock, and while it holds that
// only the leaf locks of dst's keyword cache and uidlist reader; it
// takes dst's writer lock after letting go of m's and of the dotlock. It
// never waits for a lock while holding a writer lock, and never holds
// two turns, two dotlocks or two writer locks, so a Move in the other
// direction cannot deadlock with it. Index entries follow the messages
// into dst.
//
// Takes: m's turn, dst's dotlock, m's wmu and mu; then dst's wmu and mu
// (adoptMoved).
func (m *Mailbox) Move(ctx context.Context, uids []uint32, dst *Mailbox, from *Subscription) (validity uint32, srcUIDs, dstUIDs []uint32, err error) {
	moved, validity, err := m.moveOut(ctx, uids, dst, from)
	if err != nil || len(moved) == 0 {
		return 0, nil, nil, err
	}
	m.followCached(dst, moved)
	if err := dst.adoptMoved(ctx, validity, moved); err != nil {
		// The messages are in dst and in its uidlist: its next sync
		// finds them under these UIDs.
		dst.log.Warn("adopting moved messages; the next sync takes them", "err", err)
	}
	for _, mv := range moved {
		srcUIDs = append(srcUIDs, mv.uid)
		dstUIDs = append(dstUIDs, mv.dstUID)
	}
	return validity, srcUIDs, dstUIDs, nil
}

// moveOut does steps 1 to 5 of Move and returns the messages moved, in
// source UID order, and dst's UIDVALIDITY.
//
// Held: none; takes m's turn, dst's dotlock, then m's wmu and mu.
func (m *Mailbox) moveOut(ctx context.Context, uids []uint32, dst *Mailbox, from *Subscription) ([]*moving, uint32, error) {
	// A change of m whose mailbox lock is dst's (lock.go): m's turn,
	// then dst's lock, then m's writer lock, never waiting for a lock
	// while holding a writer lock.
	timeout := m.lockTimeout()
	deadline := time.Now().Add(timeout)
	giveTurn, err := m.takeTurn(ctx, timeout)
	if err != nil {
		return nil, 0, err
	}
	defer giveTurn()
	lock, err := dst.acquireUntil(ctx, deadline, timeout)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if err := lock.Release(); err != nil {
			dst.log.Warn("releasing the mailbox lock", "err", err)
		}
	}()
	m.lockWriter()
	defer m.unlockWriter()
	defer m.withLogLocked(ctx)()
	uids = slices.Clone(uids)
	slices.Sort(uids)
	uids = slices.Compact(uids)
	var ms []*moving
	for _, uid := range uids {
		if e := m.byUID(uid); e != nil {
			ms = append(ms, &moving{e: e, uid: uid, base: e.base(), sub: e.sub, filename: e.filename})
		}
	}
	if len(ms) == 0 {
		return nil, 0, nil
	}
	var validity uint32
	var stuck []*moving
	var gone error
	m.unlocked(func() {
		if gone = m.checkDir(); gone == nil {
			validity, stuck, err = m.renameInto(dst, lock, ms)
		}
	})
	if gone != nil {
		return nil, 0, gone
	}
	if err != nil {
		// What could not be renamed back is in dst, without a UID
		// there: gone from m, and every session hears of it.
		m.forgetMoved(stuck, nil)
		return nil, 0, err
	}
	moved := slices.DeleteFunc(ms, func(mv *moving) bool { return mv.name == "" })
	m.forgetMoved(moved, from)
	return moved, validity, nil
}

// forgetMoved drops the entries of messages moved out of m from the
// state and publishes them as expunged to the subscribers but from. An
// entry already gone is not reported again.
//
// Held: wmu, mu.
func (m *Mailbox) forgetMoved(ms []*moving, from *Subscription) {
	if len(ms) == 0 {
		return
	}
	ch := &Changes{}
	gone := make(map[*entry]bool, len(ms))
	for _, mv := range ms {
		e := mv.e
		if m.bases()[e.base()] != e {
			continue
		}
		m.dropEntry(e, ch)
		gone[e] = true
	}
	m.msgs = slices.DeleteFunc(m.msgs, func(e *entry) bool { return gone[e] })
	m.msgsChanged()
	m.waiting.Store(int64(m.suspects))
	sortByUID(ch.Expunged)
	m.publish(ch, from)
}

// dropEntry takes e out of the indexes and reports it expunged in ch;
// the caller takes it out of m.msgs.
//
// Held: wmu, mu.
func (m *Mailbox) dropEntry(e *entry, ch *Changes) {
	if e.suspect {
		m.resolveSuspect(e, resolvedExpunged)
	}
	delete(m.byBase, e.base())
	ch.Expunged = append(ch.Expunged, e.message())
}

// renameInto does steps 1 (from the lock on) to 4 of Move for ms, in
// source UID order, under dst's lock: on success the moved ones have
// their name and dstUID. On failure it returns the messages it could
// not rename back.
//
// Held: turn, wmu; not mu; the dotlock held is dst's.
func (m *Mailbox) renameInto(dst *Mailbox, lock *uidlist.Lock, ms []*moving) (validity uint32, stuck []*moving, err error) {
	locked := time.Now()
	f, problems, err := dst.reader.Refresh()
	for _, p := range problems {
		dst.log.Warn("dovecot-uidlist damage", "problem", p.String())
	}
	if errors.Is(err, uidlist.ErrNotExist) || errors.Is(err, fs.ErrNotExist) ||
		errors.Is(err, uidlist.ErrBadHeader) || errors.Is(err, uidlist.ErrBadVersion) {
		// No UID can be appended to it without making a new UIDVALIDITY:
		// the copy path syncs dst first, which deals with that.
		return 0, nil, fmt.Errorf("%w: %s has no usable %s: %w", ErrMoveNeedsCopy, dst.dir, uidlist.FileName, err)
	}
	if err != nil {
		return 0, nil, err
	}
	// The base names of ms that dst's uidlist holds (COPY's test too).
	// One that only dst's state holds is a stale entry: adoptMoved
	// replaces it.
	bases := make([]string, len(ms))
	for i, mv := range ms {
		bases[i] = mv.base
	}
	taken, err := dst.basesRecorded(f, bases)
	if err != nil {
		return 0, nil, err
	}
	kw := &keywordMap{src: m, dst: dst, lock: lock, letters: make(map[byte]byte)}
	dirs, err := openMoveDirs(m, dst)
	if err != nil {
		return 0, nil, err
	}
	defer dirs.close()

	if testHookMoveBeforeRenames != nil {
		testHookMoveBeforeRenames()
	}
	var done, vanished []*moving
	// fail renames back what was moved and returns err.
	fail := func(err error) (uint32, []*moving, error) {
		stuck := m.renameBack(dst, dirs, done)
		if errors.Is(err, syscall.EXDEV) {
			err = fmt.Errorf("%w: %w", ErrMoveNeedsCopy, err)
		}
		return 0, stuck, err
	}
	for _, mv := range ms {
		if time.Since(locked) > lockTouchEvery {
			if err := lock.Touch(); err != nil {
				return fail(err)
			}
			locked = time.Now()
		}
		err := m.renameOne(dst, dirs, mv, taken, kw)
		switch {
		case err == nil:
			done = append(done, mv)
		case errors.Is(err, fs.ErrNotExist):
			vanished = append(vanished, mv)
		default:
			return fail(err)
		}
	}
	if len(vanished) > 0 {
		// Renamed by someone else (a flag change, new/ to cur/): where
		// the file is now, by its base name; one that is nowhere was
		// expunged meanwhile and is not moved.
		if err := m.findFiles(vanished); err != nil {
			return fail(err)
		}
		for _, mv := range vanished {
			if mv.filename == "" {
				continue
			}
			err := m.renameOne(dst, dirs, mv, taken, kw)
			switch {
			case err == nil:
				done = append(done, mv)
			case errors.Is(err, fs.ErrNotExist):
			default:
				return fail(err)
			}
		}
		slices.SortFunc(done, func(a, b *moving) int { return int(int64(a.uid) - int64(b.uid)) })
	}
	if len(done) == 0 {
		return f.Header.UIDValidity, nil, nil
	}
	if testHookMoveBeforeAppend != nil {
		testHookMoveBeforeAppend()
	}
	// The target first: a power failure between the two fsyncs may leave
	// a message in both directories, never in neither.
	if err := m.syncMoved(dirs, done); err != nil {
		return fail(err)
	}
	next := max(f.Header.NextUID, f.LastUID()+1, 1)
	recs := make([]uidlist.Record, len(done))
	for i, mv := range done {
		base := maildir.BaseName(mv.name)
		recs[i] = uidlist.Record{UID: next + uint32(i), Name: base}
		if size, vsize := maildir.SizeFields(base); size >= 0 && vsize >= 0 {
			recs[i].Ext = []string{fmt.Sprintf("W%d", vsize)}
		}
	}
	if err := uidlist.Append(lock, dst.dir, recs); err != nil {
		return fail(fmt.Errorf("store: appending to %s: %w", filepath.Join(dst.dir, uidlist.FileName), err))
	}
	// The uidlist was written by path: a program that renamed dst's
	// directory meanwhile, without the lock, sent the records elsewhere.
	if err := dst.checkDir(); err != nil {
		return fail(err)
	}
	for i, mv := range done {
		mv.dstUID = recs[i].UID
	}
	return f.Header.UIDValidity, nil, nil
}

// renameOne renames mv's file into dst's cur/ under its final name. A
// base name that dst's uidlist (taken) already holds, or a file name
// that exists there, gives the message a fresh base name. Errors match
// fs.ErrNotExist when the file is not where mv says.
//
// Held: turn, wmu; not mu; the dotlock held is dst's.
func (m *Mailbox) renameOne(dst *Mailbox, dirs *moveDirs, mv *moving, taken map[string]bool, kw *keywordMap) error {
	n, err := maildir.ParseName(mv.filename)
	if err != nil {
		return err
	}
	flags, err := kw.flags(context.Background(), n.Flags) // kw.lock is held: no wait
	if err != nil {
		return err
	}
	n = n.WithFlags(flags)
	n.Base = mv.base
	for try := 0; ; try++ {
		if taken[n.Base] {
			size, vsize := maildir.SizeFields(mv.base)
			n.Base = maildir.WithSizes(moveNames.New(time.Time{}), size, vsize)
		}
		err = maildir.RenameNoReplaceAt(dirs.src[mv.sub], mv.filename, dirs.dst[maildir.Cur], n.Filename())
		if errors.Is(err, fs.ErrExist) && try == 0 {
			taken[n.Base] = true // someone else's file: a fresh name
			continue
		}
		if err != nil {
			return err
		}
		mv.name = n.Filename()
		taken[n.Base] = true
		return nil
	}
}

// findFiles looks for the files of ms by base name in m's new/ and then
// cur/ (a file moving between the two is seen twice, never zero times;
// cur/ wins) and sets where they are; filename "" for one not found.
//
// Held: wmu; not mu.
func (m *Mailbox) findFiles(ms []*moving) error {
	want := make(map[string]*moving, len(ms))
	for _, mv := range ms {
		want[mv.base] = mv
		mv.filename = ""
	}
	for _, sub := range []string{maildir.New, maildir.Cur} {
		l, err := m.list(filepath.Join(m.dir, sub))
		if err != nil {
			return err
		}
		for _, name := range l.Names {
			if mv, ok := want[maildir.BaseName(name)]; ok {
				mv.sub, mv.filename = sub, name
			}
		}
	}
	return nil
}

// syncMoved fsyncs dst's cur/ and then the source directories of ms.
//
// Held: any.
func (m *Mailbox) syncMoved(dirs *moveDirs, ms []*moving) error {
	if err := fsyncDir(dirs.dst[maildir.Cur]); err != nil {
		return fmt.Errorf("store: fsync of the target's cur/: %w", err)
	}
	for _, sub := range []string{maildir.New, maildir.Cur} {
		if slices.ContainsFunc(ms, func(mv *moving) bool { return mv.sub == sub }) {
			if err := fsyncDir(dirs.src[sub]); err != nil {
				return fmt.Errorf("store: fsync of %s/: %w", filepath.Join(m.dir, sub), err)
			}
		}
	}
	return nil
}

// moveDirs are the new/ and cur/ of a Move's source and target, opened
// from the directories the two Mailboxes hold open, not by path: a
// program that renames either folder's directory meanwhile, without the
// lock, sends no rename, fsync or rename back elsewhere.
type moveDirs struct {
	src, dst map[string]int // by maildir.New, maildir.Cur
}

func openMoveDirs(m, dst *Mailbox) (*moveDirs, error) {
	d := &moveDirs{src: make(map[string]int), dst: make(map[string]int)}
	for _, sub := range []string{maildir.New, maildir.Cur} {
		fd, err := maildir.OpenSubdirAt(int(m.dirf.Fd()), sub)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("store: %s: %w", m.dir, err)
		}
		d.src[sub] = fd
		if fd, err = maildir.OpenSubdirAt(int(dst.dirf.Fd()), sub); err != nil {
			d.close()
			return nil, fmt.Errorf("store: %s: %w", dst.dir, err)
		}
		d.dst[sub] = fd
	}
	return d, nil
}

func (d *moveDirs) close() {
	for _, fds := range []map[string]int{d.src, d.dst} {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
}

// fsyncDir fsyncs the open directory fd.
func fsyncDir(fd int) error {
	for {
		if err := unix.Fsync(fd); err != unix.EINTR {
			return err
		}
	}
}

// renameBack renames the files of ms from dst's cur/ back to where they
// were in m, and returns those it could not: they stay in dst, without a
// UID there until its next sync gives them one. A file that someone
// renamed in dst meanwhile is looked for by base name.
//
// Held: turn, wmu; not mu; the dotlock held is dst's.
func (m *Mailbox) renameBack(dst *Mailbox, dirs *moveDirs, ms []*moving) (stuck []*moving) {
	var lost []*moving
	for _, mv := range ms {
		err := maildir.RenameNoReplaceAt(dirs.dst[maildir.Cur], mv.name, dirs.src[mv.sub], mv.filename)
		if errors.Is(err, fs.ErrNotExist) {
			lost = append(lost, mv)
			continue
		}
		if err != nil {
			m.writerLog().Error("a moved message could not be put back: it stays in the target", "file", mv.name, "target", dst.dir, "err", err)
			stuck = append(stuck, mv)
			continue
		}
		mv.name = ""
	}
	if len(lost) > 0 {
		found := make(map[string][2]string) // sub, name
		for _, sub := range []string{maildir.New, maildir.Cur} {
			if l, err := dst.list(filepath.Join(dst.dir, sub)); err == nil {
				for _, name := range l.Names {
					found[maildir.BaseName(name)] = [2]string{sub, name}
				}
			}
		}
		for _, mv := range lost {
			p, ok := found[maildir.BaseName(mv.name)]
			if ok {
				if err := maildir.RenameNoReplaceAt(dirs.dst[p[0]], p[1], dirs.src[mv.sub], mv.filename); err == nil {
					mv.name = ""
					continue
				}
			}
			m.writerLog().Error("a moved message could not be put back: it stays in the target", "file", mv.name, "target", dst.dir)
			stuck = append(stuck, mv)
		}
	}
	// Best effort: the renames back are as durable as the moves were.
	m.syncMoved(dirs, ms)
	return stuck
}

// keywordMap gives the keyword letters of src's messages dst's letters
// for the same names (keywords are per mailbox in Maildir), adding names
// to dst's dovecot-keywords: under lock, dst's lock that the caller holds
// (Move), or, when lock is nil, taking it for the write (COPY, before its
// copies are made, so that each enters dst under its final name). A
// letter without a name in src, or a name for which dst has no letter
// left, is dropped.
type keywordMap struct {
	src, dst *Mailbox
	lock     *uidlist.Lock // dst's, held by the caller; nil: not held
	letters  map[byte]byte // src's letter -> dst's (0: none)
}

func (k *keywordMap) flags(ctx context.Context, f maildir.Flags) (maildir.Flags, error) {
	if k.src == k.dst || f.Keywords() == 0 {
		return f, nil
	}
	out := f &^ f.Keywords() // system flags and letters no client sees
	var names []string
	var need []byte
	for c := byte('a'); c <= 'z'; c++ {
		if !f.Has(c) {
			continue
		}
		if d, ok := k.letters[c]; ok {
			if d != 0 {
				out = out.With(d)
			}
			continue
		}
		srcKw, err := k.src.Keywords()
		if err != nil {
			return 0, err
		}
		name, ok := srcKw.Name(c)
		if !ok {
			k.letters[c] = 0
			continue
		}
		names = append(names, name)
		need = append(need, c)
	}
	if len(names) == 0 {
		return out, nil
	}
	_, absent, err := k.dst.knownKeywordFlags(names)
	if err != nil {
		return 0, err
	}
	if len(absent) > 0 && k.lock != nil {
		if _, _, err := k.dst.keywordFlagsHeld(k.lock, absent); err != nil {
			return 0, err
		}
	} else if len(absent) > 0 {
		if _, _, err := k.dst.KeywordFlags(ctx, absent, true); err != nil {
			return 0, err
		}
	}
	dstKw, err := k.dst.Keywords()
	if err != nil {
		return 0, err
	}
	for i, name := range names {
		d, _ := dstKw.Letter(name) // 0 when dst had no letter left
		k.letters[need[i]] = d
		if d != 0 {
			out = out.With(d)
		}
	}
	return out, nil
}

// followCached carries the index entries of moved messages from m to
// dst under their names there; an entry dst may hold for such a name
// is dropped when m has none, so that none is ever stale.
//
// Held: any.
func (m *Mailbox) followCached(dst *Mailbox, moved []*moving) {
	if m.opts.Index == nil && dst.opts.Index == nil {
		return
	}
	bases := make([]string, len(moved))
	for i, mv := range moved {
		bases[i] = mv.base
		nb := maildir.BaseName(mv.name)
		if dst.opts.Index == nil {
			continue
		}
		if m.opts.Index != nil {
			if e, ok := m.opts.Index.Get(m.dir, mv.base); ok {
				dst.opts.Index.Put(dst.dir, nb, e)
				continue
			}
		}
		dst.opts.Index.Forget(dst.dir, []string{nb})
	}
	if m.opts.Index != nil {
		m.opts.Index.Forget(m.dir, bases)
	}
}

// adoptMoved gives dst's state the messages moved into it, with the UIDs
// Move appended to its uidlist under validity, and tells the
// subscribers. When the state is not of that uidlist (never synced, or
// the uidlist was replaced meanwhile), a sync adopts them instead.
//
// Held: none; takes wmu and mu.
func (m *Mailbox) adoptMoved(ctx context.Context, validity uint32, moved []*moving) error {
	m.lockWriter()
	defer m.unlockWriter()
	defer m.withLogLocked(ctx)()
	var f *uidlist.File
	var err error
	m.unlocked(func() { f, err = m.refreshUIDList() })
	if err != nil {
		return err
	}
	if f == nil || m.uidvalidity == 0 || m.uidvalidity != validity || f.Header.UIDValidity != validity {
		_, err := m.syncPublishLocked(ctx)
		return err
	}
	ch := &Changes{}
	var stale []*entry
	for _, mv := range moved {
		base := maildir.BaseName(mv.name)
		if e, known := m.bases()[base]; known {
			if e.uid == mv.dstUID {
				continue // a sync was faster
			}
			// An older message of this base name, whose record another
			// program dropped from the uidlist once its file was gone
			// (before this process's syncs saw it go): that message is
			// gone, and the uidlist says which UID the file has now.
			stale = append(stale, e)
			m.dropEntry(e, ch)
		}
		if m.byUID(mv.dstUID) != nil {
			m.writerLog().Error("a moved message's UID is another message's; the next sync sorts it out", "uid", mv.dstUID, "base", base)
			continue
		}
		m.adopt(mv.dstUID, base, sighting{maildir.Cur, mv.name}, ch)
	}
	if len(stale) > 0 {
		m.msgs = slices.DeleteFunc(m.msgs, func(e *entry) bool { return slices.Contains(stale, e) })
		m.msgsChanged()
		m.waiting.Store(int64(m.suspects))
		m.forgetCached(ch.Expunged)
	}
	sortByUID(ch.New)
	sortByUID(ch.Expunged)
	m.publish(ch, nil)
	return nil
}
