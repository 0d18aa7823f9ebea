package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
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
	// ModSeq is the message's modification sequence (RFC 7162): raised
	// by every change of it, from any source (doc.go, Modification
	// sequences).
	ModSeq uint64
	// UIDValidity is the UIDVALIDITY that UID belongs to, set by what
	// gives a message its UID for a client (Append, Copy): read with the
	// UID under the lock, so that APPENDUID and COPYUID never pair a UID
	// with a UIDVALIDITY that changed since. 0 elsewhere.
	UIDValidity uint32
}

// entry is one message of the state. Its fields are ordered for the
// fewest bytes of padding: one is kept per message (doc.go, Memory).
type entry struct {
	uid uint32
	// seen is the generation (Mailbox.gen) of the last listing that held
	// it; generations wrap after 2^32 listings (nextGenLocked).
	seen     uint32
	sub      string
	filename string
	flags    maildir.Flags
	modseq   uint64
	// baseLen is the length of the base name, filename's prefix (a
	// file name is at most 255 bytes: NAME_MAX).
	baseLen uint8
	suspect bool
}

// base returns the base name: the message's identity in its mailbox.
func (e *entry) base() string { return e.filename[:e.baseLen] }

func (e *entry) message() Message {
	return Message{UID: e.uid, Base: e.base(), Sub: e.sub, Filename: e.filename, Flags: e.flags, Suspect: e.suspect, ModSeq: e.modseq}
}

// Mailbox is the synced state of one Maildir. Its methods are safe for
// concurrent use; syncs are serialized.
//
// Its log lines name the mailbox. Those of a sync or change that a
// session asked for, through a ctx that carries the session's logger
// (package logctx), go to that logger, and name the session too; the
// others (a sync after a change notice, the index cache) go to
// Options.Logger.
//
// # Lock discipline
//
// The locks, in the order they are taken (the names every Held line
// uses): turn (changeTurn: this process's queue of changes), dotlock
// (the mailbox lock, dovecot-uidlist.lock, lock.go), wmu (the writers),
// mu (the state), then the leaves kwMu, retryMu and each Subscription's
// mu. The fields below say which guards them.
//
// Every unexported method of Mailbox ends its doc comment with one line
// in a fixed form (TestHeldLines checks it):
//
//	Held: wmu, mu.                 the caller holds these, in lock order
//	Held: wmu, mu; lets go of mu…  …and the method lets go of some for a while
//	Held: none; takes wmu and mu.  the caller holds none: the method takes them
//	Held: any.                     it touches nothing a lock guards
//
// A method name that ends in Locked says its caller holds mu (its Held
// line lists mu). A name that ends in Held (keywordRoomHeld) says the
// caller holds the dotlock. Exported methods take what they need, and
// say so in a line "Takes: …"; none is to be called with a lock held.
//
// The state under mu is changed only by a writer that holds wmu and mu
// (besides the few fields marked "mu alone"), so a writer that holds wmu
// may read it without mu: that is what lets a writer do its I/O without
// mu (unlocked) and keep its place in the state.
type Mailbox struct {
	dir  string  // immutable
	opts Options // immutable
	// reader reads dovecot-uidlist; immutable, and safe for concurrent
	// use (package uidlist). It is lean: its Files hold the records of
	// its last read alone, let go of at the end of every sync (finish),
	// so that the uidlist's records are not kept beside the state; what
	// needs a record it read before asks MayHold and reads the whole
	// file (readWholeUIDList).
	reader *uidlist.Reader
	log    *slog.Logger // immutable
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
	// writer holds mu while it changes the state, and lets go of it
	// (unlocked) around its I/O — listing the directories, the uidlist,
	// the mailbox lock, renames and unlinks (doc.go, Locking) — so that
	// readers (FETCH, SEARCH, a SELECT's snapshot) do not wait for the
	// disk. Readers then see a consistent state, perhaps with part of a
	// sync's findings applied; subscribers hear of them when the writer
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
	// compactFew is the record count (uidlist.File.Len) of the uidlist
	// whose dead records compaction last counted and found too few; 0:
	// none. Guarded by wmu.
	compactFew int
	// ms hands out modseqs (modseq.go). Guarded by wmu.
	ms modseqCounter
	// warmUID is the uidlist a warm start served the state with, while
	// no sync has read it (lastFile nil); saved is what the last state
	// stored or loaded said, at savedAt (warm.go). Guarded by wmu.
	warmUID *warmUIDList
	saved   savedState
	savedAt time.Time

	retryMu    sync.Mutex  // guards retryTimer; taken after mu, never before
	retryTimer *time.Timer // a pending retry (retryLater)
	// stopped: Close was called; no retry or Kick starts a sync. Set
	// under retryMu, so that a retry's check and Close's Stop are
	// ordered; read without it by Kick, which the retry timer calls
	// under retryMu.
	stopped atomic.Bool

	// mu guards every field below. A writer changes them holding wmu
	// and mu; readers hold mu. Fields marked "mu alone" are changed by
	// readers too, holding mu only.
	mu          sync.Mutex
	uidvalidity uint32
	nextUID     uint32
	msgs        []*entry // ascending UID
	// uidSnap is every UID of msgs, shared read-only with callers of UIDs
	// (nil: to be rebuilt; cleared by every change of msgs); unseenSnap
	// is the position of the first message without S (-1: to be
	// recomputed; reset by every change of msgs or of a message's flags).
	uidSnap    []uint32 // mu alone
	unseenSnap int64    // mu alone
	// byBase indexes the messages by base name; a listed file name is
	// the message's when its base name leads to an entry with that very
	// directory and file name (unchanged), so no second index by file
	// name is kept (it cost a map entry per message). nil after a warm
	// start until a writer needs it (bases): a mailbox that nothing
	// changed is served without it. Deleting from it needs no build.
	byBase   map[string]*entry
	gen      uint32 // of the last listing; see entry.seen
	suspects int
	// stamps of the last sync that was proven with no suspects left.
	newStamp, curStamp maildir.DirStamp
	lastFile           *uidlist.File // the uidlist as that sync ended
	stampsValid        bool
	newProof, curProof maildir.Proof
	foreignLogged      map[string]bool
	subs               []*Subscription // mu alone (Subscribe, Subscription.Close)
	goneSent           bool            // the subscribers were told the mailbox is gone; mu alone (vanished)
	recent             recentMark      // recent.go; mu alone (ClaimRecent)
	kicked             atomic.Bool     // a background sync is scheduled (Kick)
	// highest is HIGHESTMODSEQ: raised when a change is published
	// (endModSeqLocked); exp remembers the expunged UIDs with their
	// modseqs (expungelog.go).
	highest uint64
	exp     expungeLog
	// warmGUID is the GUID of the uidlist a warm start was served with,
	// read from its header alone (warmHeaderGUID); "" until then.
	warmGUID string

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
		reader:        uidlist.NewLeanReader(dir),
		byBase:        make(map[string]*entry),
		foreignLogged: make(map[string]bool),
		unseenSnap:    -1,
		changeTurn:    make(chan struct{}, 1),
		ms:            modseqCounter{disabled: testModSeqNoMark, floorOff: testModSeqNoFloor},
	}
	if opts.Index != nil && m.loadState() {
		// Warm start: the uidlist is read when a sync needs it.
		m.settleRecentLocked(false)
	} else {
		f, err := m.refreshUIDList()
		if err != nil {
			dirf.Close()
			return nil, err
		}
		if f != nil {
			m.uidvalidity, m.nextUID = f.Header.UIDValidity, f.Header.NextUID
			m.settleRecentLocked(false)
		}
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
//
// Takes: retryMu.
func (m *Mailbox) Close() error {
	m.stopRetries()
	m.wmu.Lock()
	m.dropWarmUIDList()
	m.wmu.Unlock()
	m.dirf.Close()
	return m.reader.Close()
}

// Dir returns the Maildir's path.
//
// Takes: nothing.
func (m *Mailbox) Dir() string { return m.dir }

// UIDValidity returns the mailbox's UIDVALIDITY (0 before the first sync
// of a mailbox without a uidlist).
//
// Takes: mu.
func (m *Mailbox) UIDValidity() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.uidvalidity
}

// NextUID returns the UID the next new message will get at the least.
//
// Takes: mu.
func (m *Mailbox) NextUID() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nextUID
}

// Messages returns the messages in UID order, suspects included.
//
// Takes: mu.
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
//
// Takes: mu.
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

// writerLog is the logger of the writer that holds wmu.
//
// Held: wmu (or the Mailbox is not shared yet: Open).
func (m *Mailbox) writerLog() *slog.Logger {
	if m.opLog != nil {
		return m.opLog
	}
	return m.log
}

// withLogLocked makes the logger that ctx carries, naming the mailbox,
// the one of the operation under way, and returns the function that
// ends that. An operation nested in another keeps the outer one's.
//
// Held: wmu, mu.
func (m *Mailbox) withLogLocked(ctx context.Context) func() {
	l := logctx.From(ctx)
	if l == nil || m.opLog != nil {
		return func() {}
	}
	m.opLog = l.With("mailbox", m.dir)
	return func() { m.opLog = nil }
}

// lockWriter takes wmu, then mu: what every writer holds.
//
// Held: none; takes wmu, then mu.
func (m *Mailbox) lockWriter() {
	m.wmu.Lock()
	m.mu.Lock()
	m.ms.op = 0 // a change that was never published gives no modseq to the next
}

// unlockWriter lets go of what lockWriter took.
//
// Held: wmu, mu; lets go of both.
func (m *Mailbox) unlockWriter() {
	m.mu.Unlock()
	m.wmu.Unlock()
}

// testHookWriterIO, set by tests, runs where a writer does I/O that
// doc.go promises runs without mu: what names the place.
var testHookWriterIO func(m *Mailbox, what string)

// unlocked runs io without mu, for a writer's I/O that reads and changes
// no state (see wmu); mu is held again when it returns.
//
// Held: wmu, mu; lets go of mu while io runs.
func (m *Mailbox) unlocked(io func()) {
	m.mu.Unlock()
	defer m.mu.Lock()
	io()
}

// msgsChanged drops what UIDs cached: call it after every change of
// m.msgs. flagsChanged does the same after a change of an entry's flags.
//
// Held: wmu, mu.
func (m *Mailbox) msgsChanged() { m.uidSnap, m.unseenSnap = nil, -1 }

// flagsChanged drops what UIDs cached about the S flag: call it after
// a change of an entry's flags.
//
// Held: wmu, mu.
func (m *Mailbox) flagsChanged() { m.unseenSnap = -1 }

// Lookup returns the message with base name base.
//
// Takes: mu.
func (m *Mailbox) Lookup(base string) (Message, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byBase == nil {
		// A warm start's state, not indexed yet: only a writer builds
		// the index (bases), so a reader looks through the messages.
		for _, e := range m.msgs {
			if e.base() == base {
				return e.message(), true
			}
		}
		return Message{}, false
	}
	e, ok := m.byBase[base]
	if !ok {
		return Message{}, false
	}
	return e.message(), true
}

// bases returns the index of the messages by base name, building it
// first when a warm start left it unbuilt (doc.go, Warm start). A base
// name found twice (a stored state that passed its checksum but was
// written wrong) keeps its first message and is logged; the other
// becomes a suspect at the next listing, as any message the listings
// do not lead to.
//
// Held: wmu, mu.
func (m *Mailbox) bases() map[string]*entry {
	if m.byBase == nil {
		idx := make(map[string]*entry, len(m.msgs))
		for _, e := range m.msgs {
			if _, dup := idx[e.base()]; dup {
				m.writerLog().Error("the stored state gives one base name two UIDs; keeping the first", "base", e.base(), "uid", e.uid)
				continue
			}
			idx[e.base()] = e
		}
		m.byBase = idx
	}
	return m.byBase
}

func sortByUID(ms []Message) {
	slices.SortFunc(ms, func(a, b Message) int { return int(int64(a.UID) - int64(b.UID)) })
}

// nextGenLocked starts the generation of a new listing. When the
// counter wraps, every message's mark is cleared first, so that no mark
// left from 2^32 listings ago can pass for the new generation (a
// message taken for seen when it was not would only delay its expunge,
// but the marks are exact all the same).
//
// Held: wmu, mu.
func (m *Mailbox) nextGenLocked() uint32 {
	m.gen++
	if m.gen == 0 {
		for _, e := range m.msgs {
			e.seen = 0
		}
		m.gen = 1
	}
	return m.gen
}

// byUID returns the entry with uid, or nil.
//
// Held: mu, or wmu alone for a writer that only reads.
func (m *Mailbox) byUID(uid uint32) *entry {
	i, found := slices.BinarySearchFunc(m.msgs, uid, func(x *entry, u uint32) int { return int(int64(x.uid) - int64(u)) })
	if !found {
		return nil
	}
	return m.msgs[i]
}

// Path returns where msg's file was when the state last saw it.
//
// Takes: nothing.
func (m *Mailbox) Path(msg Message) string { return filepath.Join(m.dir, msg.Sub, msg.Filename) }

// LookupUID returns the message with uid.
//
// Takes: mu.
func (m *Mailbox) LookupUID(uid uint32) (Message, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.byUID(uid)
	if e == nil {
		return Message{}, false
	}
	return e.message(), true
}
