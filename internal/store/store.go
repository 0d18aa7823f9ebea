package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cistern-mail/cistern/internal/logctx"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// Options configure a Mailbox. The zero value is safe: lockless proofs,
// the default read budget, logs discarded.
type Options struct {
	// Logger receives damage reports, duplicates and UIDVALIDITY changes.
	Logger *slog.Logger
	// Lock tunes the dovecot-uidlist.lock dotlock.
	Lock uidlist.LockOptions
	// MaxTries is the stable-timestamp read budget per listing (0: the
	// maildir package's default).
	MaxTries int
	// Caps, when set, replace filesystem detection (tests).
	Caps *maildir.Capabilities
	// Now is the clock (nil: time.Now); tests move it.
	Now func() time.Time
	// Index, when set, caches what costs a read of a message file; the
	// entries of expunged messages are dropped.
	Index *Index
	// Metrics, when set, count syncs, their proofs and suspects
	// (metrics.go).
	Metrics *Metrics
	// MaxFolders is how many folders an account may hold (INBOX not
	// counted): CREATE and RENAME past it fail with ErrTooManyFolders.
	// 0: DefaultMaxFolders.
	MaxFolders int

	// background counts the background syncs (Kick) of the mailboxes a
	// Registry opened, for its Close to wait for; nil: not counted.
	background *background

	// UnsafeTrustReaddir switches the expunge rule off: listings are read
	// with plain readdir and every message missing from one is expunged at
	// once. It exists to show that the torture checker sees phantom
	// expunges; never use it to serve mail.
	UnsafeTrustReaddir bool
}

// Message is one message as the last sync saw it.
type Message struct {
	UID uint32
	// Base is the base name: the message's identity in its mailbox.
	Base string
	// Sub is maildir.New or maildir.Cur.
	Sub string
	// Filename is the file's name in Sub.
	Filename string
	// Flags are the letters of the file name's info part.
	Flags maildir.Flags
	// Suspect: missing from a listing that could not be proven complete;
	// kept until a proof says it is gone or it is seen again.
	Suspect bool
	// UIDValidity is the UIDVALIDITY that UID belongs to, set by what
	// gives a message its UID for a client (Append, Copy): read with the
	// UID under the lock, so that APPENDUID and COPYUID never pair a UID
	// with a UIDVALIDITY that changed since. 0 elsewhere.
	UIDValidity uint32
}

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

type entry struct {
	uid      uint32
	base     string
	sub      string
	filename string
	flags    maildir.Flags
	suspect  bool
	seen     uint64 // generation of the last listing that held it
}

func (e *entry) message() Message {
	return Message{UID: e.uid, Base: e.base, Sub: e.sub, Filename: e.filename, Flags: e.flags, Suspect: e.suspect}
}

// Mailbox is the synced state of one Maildir. Its methods are safe for
// concurrent use; syncs are serialized.
//
// Its log lines name the mailbox. Those of a sync or change that a
// session asked for, through a ctx that carries the session's logger
// (package logctx), go to that logger, and name the session too; the
// others (a sync after a change notice, the index cache) go to
// Options.Logger.
type Mailbox struct {
	dir  string // immutable
	opts Options
	log  *slog.Logger // immutable
	// waiting is suspects, for readers without mu (the metrics gauge).
	waiting atomic.Int64
	// The directory the state belongs to (identity.go): held open, so
	// that its inode is not reused, and its identity; gone is set once
	// the path leads elsewhere, and stays set.
	dirf *os.File // immutable
	id   dirID    // immutable
	gone atomic.Bool

	// changeTurn is this process's queue of changes for the mailbox
	// lock (capacity 1): a change holds it from before it asks for the
	// lock until it has let go of it, so that our changes hand the lock
	// over here instead of polling its file. Taken before the mailbox
	// lock and wmu, never after; a sync holding wmu only tries it
	// (lock.go).
	changeTurn chan struct{}
	// kickAfterChange: a sync left its news to the change under way
	// (leaveNewsLocked); set until that change has numbered it, else the
	// change kicks a sync when it ends.
	kickAfterChange atomic.Bool

	// wmu serializes the writers: syncs and every change of the
	// mailbox's files and state. It is taken before mu, never after, and
	// after changeTurn and the mailbox lock (lock.go). A
	// writer holds mu while it reads or changes the state, and lets go of
	// it (unlocked) around I/O that needs none — listing the directories,
	// taking the uidlist lock, appending to the uidlist — so that readers
	// (FETCH, SEARCH, a SELECT's snapshot) do not wait for the disk.
	// Readers then see a consistent state, perhaps with part of a sync's
	// findings applied; subscribers hear of them when the writer
	// publishes, at its end.
	wmu sync.Mutex
	// opLog is the logger of the writer that holds wmu, when its ctx
	// carries one (withLogLocked); nil: log. Guarded by wmu.
	opLog *slog.Logger
	// held is the mailbox lock of the change that holds wmu, which the
	// syncs it makes use; nil: no change holds wmu. Guarded by wmu.
	held *uidlist.Lock
	// lockBusy: this sync could not have the mailbox lock and does not
	// ask again; undone: it left work for a later sync (files without a
	// UID, duplicates), which the cheap check must not skip. Both are
	// reset by every sync. Guarded by wmu.
	lockBusy, undone bool
	// newsWaiting: syncs have been leaving new files without a UID
	// since it was logged (newsWaitLocked). Guarded by wmu.
	newsWaiting bool
	// waitingNews: the files the last sync left to the change under way
	// (leaveNewsLocked). Guarded by wmu.
	waitingNews map[string][]sighting

	retryMu    sync.Mutex  // guards retryTimer; taken after mu, never before
	retryTimer *time.Timer // a pending retry (retryLater)
	// stopped: Close was called; no retry or Kick starts a sync. Set
	// under retryMu, so that a retry's check and Close's Stop are
	// ordered; read without it by Kick, which the retry timer calls
	// under retryMu.
	stopped atomic.Bool

	mu          sync.Mutex // guards every field below
	reader      *uidlist.Reader
	uidvalidity uint32
	nextUID     uint32
	msgs        []*entry // ascending UID
	// uidSnap is every UID of msgs, shared read-only with callers of UIDs
	// (nil: to be rebuilt; cleared by every change of msgs); unseenSnap
	// is the position of the first message without S (-1: to be
	// recomputed; reset by every change of msgs or of a message's flags).
	uidSnap    []uint32
	unseenSnap int64
	byBase     map[string]*entry
	// byName indexes the messages by file name, in new/ ([0]) and cur/
	// ([1]): a sync whose listings hold exactly these names has nothing
	// to change, and finds that out with one lookup per name.
	byName   [2]map[string]*entry
	gen      uint64
	suspects int
	// stamps of the last sync that was proven with no suspects left.
	newStamp, curStamp maildir.DirStamp
	lastFile           *uidlist.File // the uidlist as that sync ended
	compactCounted     *uidlist.File // the uidlist whose dead records were last counted
	stampsValid        bool
	newProof, curProof maildir.Proof
	foreignLogged      map[string]bool
	subs               []*Subscription
	goneSent           bool        // the subscribers were told the mailbox is gone
	recent             recentMark  // recent.go
	kicked             atomic.Bool // a background sync is scheduled (Kick)

	kwMu    sync.Mutex        // guards kw and kwStamp; taken after mu, never before
	kw      *uidlist.Keywords // cached dovecot-keywords; nil: read it
	kwStamp fileID
}

// Open prepares the state of the Maildir at dir. It reads the uidlist if
// there is one; messages appear with the first Sync.
//
// A folder directory (.X in an account's root) that is a symbolic link
// is not a Maildir: Open refuses it, and holds the directory it opened
// without following one, so that every message it opens later is read
// from that directory (OpenMessage) even if a link replaces it. An
// account's root (INBOX) may be reached through links the administrator
// made (maildir/nofollow.go).
func Open(dir string, opts Options) (*Mailbox, error) {
	if !maildir.IsMaildir(dir) {
		return nil, fmt.Errorf("store: %s is not a Maildir (new/, cur/, tmp/)", dir)
	}
	folder := accountRoot(dir) != dir
	if folder && maildir.IsLink(dir) {
		return nil, fmt.Errorf("store: %s is not a Maildir: %w", dir, maildir.ErrSymlink)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dirf, id, err := holdDir(dir, folder)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	m := &Mailbox{
		dirf:          dirf,
		id:            id,
		dir:           dir,
		opts:          opts,
		log:           log.With("mailbox", dir),
		reader:        uidlist.NewReader(dir),
		byBase:        make(map[string]*entry),
		byName:        [2]map[string]*entry{make(map[string]*entry), make(map[string]*entry)},
		foreignLogged: make(map[string]bool),
		unseenSnap:    -1,
		changeTurn:    make(chan struct{}, 1),
	}
	f, err := m.refreshUIDList()
	if err != nil {
		dirf.Close()
		return nil, err
	}
	if f != nil {
		m.uidvalidity, m.nextUID = f.Header.UIDValidity, f.Header.NextUID
		m.settleRecentLocked(false)
	}
	// Deliveries that crashed before their rename leave files in tmp/;
	// opening the mailbox is the moment to clear those past the age.
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if n, err := maildir.CleanTmp(dir, now()); err != nil {
		m.log.Warn("cleaning tmp/", "err", err)
	} else if n > 0 {
		m.log.Info("removed stale files from tmp/", "count", n)
	}
	return m, nil
}

// Close releases what the Mailbox holds open and cancels a pending
// retry (retryLater). A closed Mailbox can still be used; it opens again
// what it needs, but arranges no more retries: news that waited for the
// lock then comes with the next sync that someone asks for. A closed
// Mailbox no longer holds its directory open: its inode number may be
// given to another directory, which the identity check (identity.go)
// would then take for its own.
func (m *Mailbox) Close() error {
	m.stopRetries()
	m.dirf.Close()
	return m.reader.Close()
}

// Dir returns the Maildir's path.
func (m *Mailbox) Dir() string { return m.dir }

// UIDValidity returns the mailbox's UIDVALIDITY (0 before the first sync
// of a mailbox without a uidlist).
func (m *Mailbox) UIDValidity() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.uidvalidity
}

// NextUID returns the UID the next new message will get at the least.
func (m *Mailbox) NextUID() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nextUID
}

// Messages returns the messages in UID order, suspects included.
func (m *Mailbox) Messages() []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Message, len(m.msgs))
	for i, e := range m.msgs {
		out[i] = e.message()
	}
	return out
}

// UIDs returns every UID, ascending, and the 1-based position of the
// first message without the S flag (0 when every message has it).
//
// The slice is shared by every caller until the mailbox changes: it must
// not be written to (its capacity equals its length, so an append copies).
func (m *Mailbox) UIDs() ([]uint32, uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.uidSnap == nil {
		out := make([]uint32, len(m.msgs))
		for i, e := range m.msgs {
			out[i] = e.uid
		}
		m.uidSnap = out[:len(out):len(out)]
	}
	if m.unseenSnap < 0 {
		m.unseenSnap = 0
		for i, e := range m.msgs {
			if !e.flags.Has(maildir.FlagSeen) {
				m.unseenSnap = int64(i + 1)
				break
			}
		}
	}
	return m.uidSnap, uint32(m.unseenSnap)
}

// logLocked is the logger of the writer that holds wmu. Held with wmu,
// or before the Mailbox is shared (Open).
func (m *Mailbox) logLocked() *slog.Logger {
	if m.opLog != nil {
		return m.opLog
	}
	return m.log
}

// withLogLocked makes the logger that ctx carries, naming the mailbox,
// the one of the operation under way, and returns the function that
// ends that. An operation nested in another keeps the outer one's.
// Held with wmu.
func (m *Mailbox) withLogLocked(ctx context.Context) func() {
	l := logctx.From(ctx)
	if l == nil || m.opLog != nil {
		return func() {}
	}
	m.opLog = l.With("mailbox", m.dir)
	return func() { m.opLog = nil }
}

// lockWriter takes wmu, then mu: what every writer holds.
func (m *Mailbox) lockWriter() {
	m.wmu.Lock()
	m.mu.Lock()
}

func (m *Mailbox) unlockWriter() {
	m.mu.Unlock()
	m.wmu.Unlock()
}

// unlocked runs io without mu, for a writer's I/O that reads and changes
// no state (see wmu). Held with wmu and mu; mu is held again when it
// returns.
func (m *Mailbox) unlocked(io func()) {
	m.mu.Unlock()
	defer m.mu.Lock()
	io()
}

// markSuspect makes e a suspect; resolveSuspect ends that, as outcome
// (metrics.go). Held with mu.
func (m *Mailbox) markSuspect(e *entry) {
	e.suspect = true
	m.suspects++
	m.opts.Metrics.suspected()
}

func (m *Mailbox) resolveSuspect(e *entry, outcome string) {
	e.suspect = false
	m.suspects--
	m.opts.Metrics.resolvedAs(outcome)
}

// msgsChanged drops what UIDs cached: call it after every change of
// m.msgs. flagsChanged does the same after a change of an entry's flags.
func (m *Mailbox) msgsChanged()  { m.uidSnap, m.unseenSnap = nil, -1 }
func (m *Mailbox) flagsChanged() { m.unseenSnap = -1 }

// Lookup returns the message with base name base.
func (m *Mailbox) Lookup(base string) (Message, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byBase[base]
	if !ok {
		return Message{}, false
	}
	return e.message(), true
}

// refreshUIDList reads what changed in dovecot-uidlist, logging damage.
// A missing file is (nil, nil).
func (m *Mailbox) refreshUIDList() (*uidlist.File, error) {
	f, problems, err := m.reader.Refresh()
	for _, p := range problems {
		m.logLocked().Warn("dovecot-uidlist damage", "problem", p.String())
	}
	if errors.Is(err, uidlist.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if errors.Is(err, uidlist.ErrBadHeader) || errors.Is(err, uidlist.ErrBadVersion) {
		// No UID can be read from it: it is as good as missing. The next
		// write keeps a copy of it before replacing it.
		m.logLocked().Error("dovecot-uidlist is unreadable; a copy is kept when it is replaced", "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// replaceUIDList writes file as the new dovecot-uidlist under the held
// lock. When the file on disk is damaged (unreadable, or with lines that
// were skipped), a copy of it is kept first: what it held may still be
// recovered by hand.
func (m *Mailbox) replaceUIDList(lock *uidlist.Lock, file *uidlist.File) error {
	path := filepath.Join(m.dir, uidlist.FileName)
	if data, err := os.ReadFile(path); err == nil {
		if _, problems, err := uidlist.Parse(path, data); err != nil || len(problems) > 0 {
			cp, err := uidlist.KeepCopy(m.dir)
			if err != nil {
				return fmt.Errorf("store: keeping a copy of damaged %s: %w", path, err)
			}
			m.logLocked().Warn("kept a copy of the damaged dovecot-uidlist before replacing it", "copy", cp)
		}
	}
	if err := uidlist.Rewrite(lock, m.dir, file); err != nil {
		return fmt.Errorf("store: writing %s: %w", path, err)
	}
	return nil
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
// Held with wmu and mu; it lets go of mu around the listings and the
// uidlist's lock and append (unlocked).
func (m *Mailbox) syncPublishLocked(ctx context.Context) (*Changes, error) {
	defer m.withLogLocked(ctx)()
	m.refreshKeywords()
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
	m.publish(ch, nil)
	return ch, nil
}

// forgetCached drops index entries of expunged messages.
func (m *Mailbox) forgetCached(gone []Message) {
	if m.opts.Index == nil || len(gone) == 0 {
		return
	}
	bases := make([]string, len(gone))
	for i, g := range gone {
		bases[i] = g.Base
	}
	m.opts.Index.Forget(m.dir, bases)
}

// Cached returns the index entry of msg, if there is one for the file as
// it is: its size must still be what was cached (S= field, else a stat).
func (m *Mailbox) Cached(msg Message) (IndexEntry, bool) {
	if m.opts.Index == nil {
		return IndexEntry{}, false
	}
	e, ok := m.opts.Index.Get(m.dir, msg.Base)
	if !ok {
		return IndexEntry{}, false
	}
	size, _ := maildir.SizeFields(msg.Base)
	if size < 0 {
		fi, err := maildir.LstatMessage(m.Path(msg))
		if err != nil {
			return IndexEntry{}, false
		}
		size = fi.Size()
	}
	return e, size == e.FileSize
}

// Cache stores the index entry of msg (nothing without an index).
func (m *Mailbox) Cache(msg Message, e IndexEntry) {
	if m.opts.Index == nil {
		return
	}
	m.opts.Index.Put(m.dir, msg.Base, e)
}

// errRestart: the uidlist got another UIDVALIDITY during the sync, and
// the state was reset; the sync starts over.
var errRestart = errors.New("store: UIDVALIDITY changed during the sync")

// testHookBeforeAssignLock, set by tests, runs when a sync is about to
// take the lock to assign UIDs: the moment another process may replace
// the uidlist.
var testHookBeforeAssignLock func()

// maxRestarts bounds the restarts of one sync; a uidlist replaced again
// and again is an error for the caller to report.
const maxRestarts = 3

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

func (m *Mailbox) syncOnce(ctx context.Context, ch *Changes) error {
	newDir, curDir := filepath.Join(m.dir, maildir.New), filepath.Join(m.dir, maildir.Cur)
	if err := m.checkDir(); err != nil {
		return err
	}

	if m.stampsValid && m.suspects == 0 {
		ns, err1 := maildir.StatDir(newDir)
		cs, err2 := maildir.StatDir(curDir)
		// The uidlist must be the very version the last sync ended with
		// (the Reader answers with the same *File while the file is the
		// same, and holds it open so that its inode is not reused): a
		// rewrite may have changed UIDVALIDITY.
		f, err3 := m.refreshUIDList()
		if err1 == nil && err2 == nil && err3 == nil && f != nil && f == m.lastFile &&
			ns == m.newStamp && cs == m.curStamp {
			ch.Skipped = true
			ch.NewProof, ch.CurProof = m.newProof, m.curProof
			return nil
		}
	}

	// The uidlist is read before the listings: a record that is absent
	// from it now was appended after this point, by a process that saw
	// its file exist.
	f, err := m.refreshUIDList()
	if err != nil {
		return err
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
	m.unlocked(func() {
		if ln, err = m.list(newDir); err == nil {
			lc, err = m.list(curDir)
		}
	})
	if err := m.checkDir(); err != nil {
		return err // the listings may be of another directory
	}
	if err != nil {
		return err
	}
	ch.NewProof, ch.CurProof = ln.Proof, lc.Proof
	proven := ln.Proof.Proven() && lc.Proof.Proven()
	if proven && !m.opts.UnsafeTrustReaddir && m.unchanged(ln, lc) && (f != nil || m.uidvalidity != 0) {
		return m.finish(ch, ln, lc, proven)
	}

	m.gen++
	gen := m.gen
	fresh := make(map[string][]sighting, max(0, len(ln.Names)+len(lc.Names)-len(m.msgs)))
	var dups map[string][]sighting
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
		e, ok := m.byBase[base]
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
		if err := m.resolveDuplicate(ctx, base, ss, ch); err != nil {
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
		m.logLocked().Warn("no room on the disk for the UIDs of new messages; they wait for a sync with room",
			"messages", len(fresh), "err", err)
	}
	if err := m.expungeAbsent(gen, proven, newDir, ch); err != nil {
		return err
	}
	if proven && !m.opts.UnsafeTrustReaddir {
		if err := m.compact(ctx, nextBefore, len(ch.Expunged) > 0); err != nil {
			m.logLocked().Warn("uidlist compaction failed", "err", err)
		}
	}
	return m.finish(ch, ln, lc, proven)
}

// finish records what the next sync's cheap check starts from.
func (m *Mailbox) finish(ch *Changes, ln, lc *maildir.Listing, proven bool) error {
	var err error
	ch.Suspects = m.suspects
	m.stampsValid = proven && m.suspects == 0 && ch.Unassigned == 0 && ln.StampValid && lc.StampValid && !m.opts.UnsafeTrustReaddir && !m.undone
	m.newStamp, m.curStamp = ln.Stamp, lc.Stamp
	// Records appended since the listings are for files that arrived
	// since: their directory's stamp no longer matches, so taking the
	// newest uidlist here cannot hide them from the cheap check.
	if m.lastFile, err = m.refreshUIDList(); err != nil {
		return err
	}
	if m.lastFile != nil && m.lastFile.Header.UIDValidity != m.uidvalidity {
		m.lastFile = nil // replaced meanwhile: the next sync deals with it
	}
	m.newProof, m.curProof = ln.Proof, lc.Proof
	sortByUID(ch.New)
	sortByUID(ch.Flags)
	sortByUID(ch.Expunged)
	return nil
}

func sortByUID(ms []Message) {
	slices.SortFunc(ms, func(a, b Message) int { return int(int64(a.UID) - int64(b.UID)) })
}

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
// change.
func (m *Mailbox) place(e *entry, sub, name string, ch *Changes) {
	n, err := maildir.ParseName(name)
	if err != nil {
		m.foreign(sub, name)
		return
	}
	m.unindexName(e)
	e.sub, e.filename = sub, strings.Clone(name)
	m.indexName(e)
	if n.Flags != e.flags {
		e.flags = n.Flags
		m.flagsChanged()
		ch.Flags = append(ch.Flags, e.message())
	}
}

func subIndex(sub string) int {
	if sub == maildir.Cur {
		return 1
	}
	return 0
}

func (m *Mailbox) indexName(e *entry) { m.byName[subIndex(e.sub)][e.filename] = e }

func (m *Mailbox) unindexName(e *entry) {
	if m.byName[subIndex(e.sub)][e.filename] == e {
		delete(m.byName[subIndex(e.sub)], e.filename)
	}
}

// unchanged reports whether the listings hold exactly the messages of
// the state under their file names, besides files that are not messages:
// then the sync has nothing to do. It only reads. Distinct names of one
// directory listing map to distinct messages, so as many matches as
// messages means every message was seen, once.
func (m *Mailbox) unchanged(ln, lc *maildir.Listing) bool {
	if m.suspects != 0 {
		return false
	}
	matched := 0
	for i, l := range [2]*maildir.Listing{ln, lc} {
		idx := m.byName[i]
		for j, name := range l.Names {
			if ignorable(name, l.Types[j]) {
				// A known name may be a link now (a message file
				// replaced by one): then the message is not there.
				continue
			}
			if _, ok := idx[name]; ok {
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

func (m *Mailbox) foreign(sub, name string) {
	if m.firstSighting(sub, name) {
		m.logLocked().Warn("ignoring a file that is not a Maildir message", "file", filepath.Join(m.dir, sub, name))
	}
}

// foreignLink logs, once, a symbolic link in new/ or cur/: never a
// message, never followed.
func (m *Mailbox) foreignLink(sub, name string) {
	if m.firstSighting(sub, name) {
		m.logLocked().Warn("ignoring a symbolic link in the Maildir: it is not a message and is not followed", "file", filepath.Join(m.dir, sub, name))
	}
}

// firstSighting reports whether sub/name was not logged before, and
// remembers it (up to a bound).
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

// resetLocked drops the state after the uidlist was replaced with another
// UIDVALIDITY: every message will be new again.
func (m *Mailbox) resetLocked(f *uidlist.File, ch *Changes) {
	m.logLocked().Error("UIDVALIDITY changed: dovecot-uidlist was replaced, every UID is void",
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
	m.byName = [2]map[string]*entry{make(map[string]*entry), make(map[string]*entry)}
	m.suspects = 0
	m.stampsValid = false
	m.uidvalidity, m.nextUID = f.Header.UIDValidity, f.Header.NextUID
}

// expungeAbsent turns known messages that this sync did not see into
// suspects, and suspects into expunges when the listings were proven.
func (m *Mailbox) expungeAbsent(gen uint64, proven bool, newDir string, ch *Changes) error {
	var candidates []*entry
	for _, e := range m.msgs {
		if e.seen == gen {
			continue
		}
		if !e.suspect {
			m.markSuspect(e)
		}
		if proven {
			candidates = append(candidates, e)
		}
	}
	if len(candidates) == 0 {
		return nil
	}
	if !m.opts.UnsafeTrustReaddir {
		// A file moved from cur/ back to new/ after new/ was read would be
		// missed by both reads: read new/ once more.
		l2, err := m.list(newDir)
		if err != nil {
			return err
		}
		if !l2.Proof.Proven() {
			return nil
		}
		inNew := make(map[string]string, len(l2.Names))
		for _, name := range l2.Names {
			inNew[maildir.BaseName(name)] = name
		}
		kept := candidates[:0]
		for _, e := range candidates {
			if name, ok := inNew[e.base]; ok {
				m.resolveSuspect(e, resolvedFound)
				e.seen = gen
				m.place(e, maildir.New, name, ch)
				continue
			}
			kept = append(kept, e)
		}
		candidates = kept
	}
	if len(candidates) == 0 {
		return nil
	}
	gone := make(map[*entry]bool, len(candidates))
	for _, e := range candidates {
		gone[e] = true
		m.resolveSuspect(e, resolvedExpunged)
		delete(m.byBase, e.base)
		m.unindexName(e)
		ch.Expunged = append(ch.Expunged, e.message())
	}
	m.msgs = slices.DeleteFunc(m.msgs, func(e *entry) bool { return gone[e] })
	m.msgsChanged()
	return nil
}

// reserve makes room in an empty state for the fresh messages, so that a
// mailbox's first sync does not grow its maps and list step by step.
func (m *Mailbox) reserve(fresh map[string][]sighting) {
	if len(m.msgs) != 0 || len(m.byBase) != 0 || len(fresh) < 64 {
		return
	}
	var inCur int
	for _, ss := range fresh {
		if ss[0].sub == maildir.Cur {
			inCur++
		}
	}
	m.byBase = make(map[string]*entry, len(fresh))
	m.byName = [2]map[string]*entry{make(map[string]*entry, len(fresh)-inCur), make(map[string]*entry, inCur)}
	m.msgs = make([]*entry, 0, len(fresh))
}

// adopt adds a message with a known UID to the state.
func (m *Mailbox) adopt(uid uint32, base string, s sighting, ch *Changes) {
	n, err := maildir.ParseName(s.filename)
	if err != nil {
		m.foreign(s.sub, s.filename)
		return
	}
	// One copy of the name, out of the listing's buffer; the base name is
	// its prefix (fresh sightings are keyed by their base names).
	filename := strings.Clone(s.filename)
	var b string
	if n.Base == base {
		b = filename[:len(base)]
	} else {
		b = strings.Clone(base)
	}
	e := &entry{uid: uid, base: b, sub: s.sub, filename: filename, flags: n.Flags, seen: m.gen}
	m.byBase[e.base] = e
	m.indexName(e)
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
// Held with wmu and mu; mu is let go while the lock is taken, the files
// are checked and the uidlist is appended to.
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
	m.adoptRecorded(f, fresh, ch)
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
	m.unlocked(func() { f, err = m.refreshUIDList() })
	if err != nil {
		return err
	}
	if err := m.checkDir(); err != nil {
		return err // the lock and the uidlist may be another directory's
	}
	if f != nil && m.uidvalidity != 0 && f.Header.UIDValidity != m.uidvalidity {
		// Replaced after this sync read it: what the sync did so far is
		// about void UIDs. Drop the state and sync again from the start.
		m.resetLocked(f, ch)
		return errRestart
	}
	m.adoptRecorded(f, fresh, ch)
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
// Held with wmu, mu and the mailbox lock.
func (m *Mailbox) assignOwn(f *uidlist.File, names []string, ch *Changes) error {
	fresh := make(map[string][]sighting, len(names))
	bases := make([]string, 0, len(names))
	for _, n := range names {
		base := maildir.BaseName(n)
		if _, known := m.byBase[base]; known {
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
// Held with wmu and mu; mu is let go during the append.
func (m *Mailbox) recordNew(lock *uidlist.Lock, f *uidlist.File, bases []string, fresh map[string][]sighting, ch *Changes) error {
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

// adoptRecorded adopts the base names of fresh that f has records for,
// with those UIDs, and drops them from fresh. A UID the state already
// gives another base name is logged and left. Held with mu.
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
			m.logLocked().Error("dovecot-uidlist gives one UID to two base names; keeping the first",
				"uid", r.UID, "base", base)
			continue
		}
		m.adopt(r.UID, base, ss[0], ch)
	}
}

// createUIDList writes the first dovecot-uidlist of a mailbox with recs,
// importing Courier's UIDs first when courierimapuiddb exists (recs are
// then numbered after them). It returns the file written.
func (m *Mailbox) createUIDList(lock *uidlist.Lock, recs []uidlist.Record) (*uidlist.File, error) {
	file := &uidlist.File{Header: uidlist.Header{Version: 3, GUID: uidlist.NewGUID()}}
	courier := filepath.Join(m.dir, uidlist.CourierFileName)
	if data, err := os.ReadFile(courier); err == nil {
		cf, problems, err := uidlist.ParseCourier(courier, data)
		for _, p := range problems {
			m.logLocked().Warn("courierimapuiddb damage", "problem", p.String())
		}
		if err == nil {
			m.logLocked().Info("importing UIDs from courierimapuiddb", "records", len(cf.Records))
			file.Header.UIDValidity = cf.Header.UIDValidity
			file.Header.NextUID = cf.Header.NextUID
			file.Records = cf.Records
		} else {
			m.logLocked().Warn("courierimapuiddb unreadable", "err", err)
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
		m.logLocked().Error("dovecot-uidlist is missing: UIDs are rebuilt with a new UIDVALIDITY",
			"old", m.uidvalidity, "new", file.Header.UIDValidity)
	}
	if err := m.replaceUIDList(lock, file); err != nil {
		return nil, err
	}
	m.uidvalidity = file.Header.UIDValidity
	m.nextUID = max(m.nextUID, next)
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
	if err := m.checkDir(); err != nil {
		return nil, err // never write this state into another directory
	}
	if f, err := m.refreshUIDList(); err != nil || f != nil {
		return f, err // someone else rebuilt it meanwhile
	}
	file := &uidlist.File{Header: uidlist.Header{Version: 3, UIDValidity: m.uidvalidity, NextUID: m.nextUID, GUID: uidlist.NewGUID()}}
	for _, e := range m.msgs {
		file.Records = append(file.Records, uidlist.Record{UID: e.uid, Name: e.base})
	}
	m.logLocked().Error("dovecot-uidlist vanished: rewriting it from the synced state", "records", len(file.Records))
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
func (m *Mailbox) compact(ctx context.Context, nextBefore uint32, expunged bool) error {
	f, err := m.refreshUIDList()
	if err != nil || f == nil {
		return err
	}
	// Records only die when messages go: without an expunge here, and
	// with the uidlist as it was at the last count, the count stands.
	if !expunged && f == m.compactCounted {
		return nil
	}
	m.compactCounted = f
	dead := 0
	for _, r := range f.Records {
		if r.UID < nextBefore {
			if _, ok := m.byBase[r.Base()]; !ok {
				dead++
			}
		}
	}
	if dead < compactThreshold || dead*4 < len(f.Records) {
		return nil
	}
	lock, release, err := m.syncLockLocked(ctx)
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
	f, err = m.refreshUIDList()
	if err != nil || f == nil {
		return err
	}
	if f.Header.UIDValidity != m.uidvalidity {
		return nil
	}
	// A file moved from cur/ back to new/ during the sync's reads was
	// missed by both: keep the records of whatever new/ holds now.
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
	m.logLocked().Info("compacting dovecot-uidlist", "records", len(f.Records), "kept", len(out.Records))
	return m.replaceUIDList(lock, out)
}

// resolveDuplicate handles a known base name seen under more than one file
// name in this sync.
func (m *Mailbox) resolveDuplicate(ctx context.Context, base string, ss []sighting, ch *Changes) error {
	live, err := m.liveDistinct(ctx, base, ss)
	if err != nil {
		return err
	}
	e := m.byBase[base]
	if len(live) == 0 {
		return nil // every name vanished: renames; the next sync sees where they went
	}
	// Keep the sighting the state already points to if it is live,
	// else the first live one.
	keep := live[0]
	for _, s := range live {
		if s.sub == e.sub && s.filename == e.filename {
			keep = s
		}
	}
	if keep.sub != e.sub || keep.filename != e.filename {
		m.place(e, keep.sub, keep.filename, ch)
	}
	return nil
}

// resolveFreshDuplicate handles an unknown base name seen under more than
// one file name, returning the sightings to treat as the message.
func (m *Mailbox) resolveFreshDuplicate(ctx context.Context, base string, ss []sighting) ([]sighting, error) {
	live, err := m.liveDistinct(ctx, base, ss)
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
// message by the next sync). The live sightings are returned, the one in
// cur/ first.
func (m *Mailbox) liveDistinct(ctx context.Context, base string, ss []sighting) ([]sighting, error) {
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
		if a.s.sub == b.s.sub {
			return a.fi.ModTime().Compare(b.fi.ModTime())
		}
		if a.s.sub == maildir.Cur {
			return -1
		}
		return 1
	})
	if len(ls) <= 1 {
		out := make([]sighting, len(ls))
		for i, l := range ls {
			out[i] = l.s
		}
		return out, nil
	}
	_, release, err := m.syncLockLocked(ctx)
	if errors.Is(err, errLockBusy) {
		// Fixed by a later sync; until then the first is the message.
		m.undone = true
		m.retryLater()
		return []sighting{ls[0].s}, nil
	}
	if err != nil {
		return nil, err
	}
	defer release()
	first := filepath.Join(m.dir, ls[0].s.sub, ls[0].s.filename)
	var gen maildir.NameGen
	for _, l := range ls[1:] {
		path := filepath.Join(m.dir, l.s.sub, l.s.filename)
		same, err := sameContent(first, path)
		if err != nil {
			continue // vanished meanwhile
		}
		if same {
			m.logLocked().Warn("removing an identical second copy of a message", "base", base, "kept", first, "removed", path)
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
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
		m.logLocked().Warn("two different messages share a base name: giving the later one a new name",
			"base", base, "file", path, "renamed", target)
		if err := renameNoReplace(path, target); err != nil {
			return nil, err
		}
	}
	return []sighting{ls[0].s}, nil
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
