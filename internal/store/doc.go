// Package store owns the synced state of Maildir mailboxes: which message
// (base name) has which UID and flags, and what changed since the last
// sync. It reconciles the files of a Maildir with its dovecot-uidlist
// without a global lock, and never reports an expunge that did not happen.
//
// # State
//
// A Mailbox holds, for one Maildir directory:
//
//	field         meaning
//	directory     the inode it was opened on, held open; the state is that
//	              directory's, never the path's (identity.go)
//	UIDVALIDITY   from dovecot-uidlist; a new uidlist takes it from the
//	              account's dovecot-uidvalidity allocator (package uidlist),
//	              so a name deleted or renamed and made again never
//	              repeats one; changes only when the UID map is lost
//	next UID      never lowered; the uidlist's own, raised past every UID seen
//	GUID          the uidlist header's G (Dovecot's mailbox GUID, RFC 8474
//	              MAILBOXID): moves with the directory, given once to a
//	              uidlist without one, kept when a vanished one is rebuilt
//	              (guid.go)
//	messages      UID ↔ base name ↔ (new/ or cur/, file name, flags), UID order
//	suspects      known messages missing from a listing that was not proven
//
// # Sync (DESIGN.md §3)
//
//  1. Cheap check: when the last sync was proven, no message is a suspect
//     and new/ and cur/ still have the inode, mtime and ctime stamps of that sync
//     (fine-grained timestamps only), nothing changed: done.
//  2. List new/, then cur/ (maildir.List: proven complete when it can be).
//     A message moving new/ → cur/ between the reads is seen twice, never
//     zero times; the two sightings are one base name.
//  3. Known base names found: location and flags updated (a flag change is
//     reported). A suspect found again is simply no longer a suspect.
//  4. Unknown base names: their UID is taken from dovecot-uidlist when
//     another process assigned one (read without the lock). The rest get
//     UIDs under the lock, after rereading the uidlist and checking that
//     each file still exists, in one append. A file found by a listing is
//     never given a UID unless it existed while the lock was held, so a
//     base name whose record was dropped (it was proven gone) never comes
//     back with a second UID. When the lock cannot be had at once (see
//     Locking) or the uidlist cannot be written, those files stay out of
//     the state until a later sync numbers them (Changes.Unassigned):
//     the news waits, the sync succeeds. Files this process has just made
//     (APPEND, COPY) are put into cur/ only under the lock, and get
//     their UIDs in any case: a foreign program may rename or delete one
//     at once, and the next sync follows or expunges it.
//     When the disk has no room for their records (ENOSPC, EDQUOT), the
//     files found by the listings wait unnumbered the same way: reading
//     never needs free space. A mailbox without a UIDVALIDITY yet cannot
//     be read without writing one.
//  5. Known base names absent from the listings are suspects. A suspect
//     becomes an expunge only when the new/ and cur/ listings of this sync
//     were both proven complete, and a proven reread of new/ (for a file
//     moved back from cur/ to new/ between the reads) lacks it too.
//     Otherwise it waits, and every later sync tries again. The number of
//     waiting suspects is reported with every sync.
//
// Two files with one base name are one message when they are the same
// inode (a rename seen twice, or a hard link). Different inodes with equal
// content: the extra copy is removed under the lock. Different content:
// the later file is given a fresh base name under the lock (Dovecot's rule)
// and becomes a new message; both are logged.
//
// # What sessions hear
//
// News travels in two shapes here, each adding meaning to the one before,
// and one more in package imap. Changes is what one sync or change found,
// in the order it found it, with what the sync itself needs (proofs,
// Skipped, Assigned, Unassigned, Suspects). A Subscription (one per
// session) folds every Changes published while its owner was busy into
// one Pending: bounded by the mailbox's size, an expunge cancels earlier
// news of the same UID, a message keeps its latest flags, and an owner's
// own change refreshes what it holds instead of adding to it. The
// protocol engine's Update is Pending in IMAP's terms (package imap).
//
// # A mailbox deleted or renamed
//
// A sync starts, and a writer goes on once it holds the mailbox lock,
// only when the path still leads to the directory the Mailbox was
// opened on; the listings are checked the same way after they are read.
// When it does not (DELETE, RENAME, or another program removing or
// moving the directory), the Mailbox is gone for good: ErrMailboxGone,
// Changes.Gone / Pending.Gone to its subscribers, and a Registry opens
// whatever is at the path afterwards as a new Mailbox. Account's
// DeleteFolder and RenameFolder take the mailbox lock of every directory
// they move first (a change holds that lock from before its files enter
// the directory until their UIDs are recorded, so no APPEND, COPY or
// MOVE is cut in two by them), and tell the Registry at once
// (Registry.Vanished). A program that moves a folder's directory
// without the lock can still do that; what such a change put there then
// stays with the directory, and is logged.
//
// # Symbolic links
//
// Every user shares the service uid, so a link inside a Maildir is a way
// into another user's mail or any file: links are never followed
// (maildir/nofollow.go). A link in new/ or cur/ is no message: it gets no
// UID and is logged once. A folder name that is a link, or a folder whose
// new/, cur/ or tmp/ is one, is no folder: not listed (logged), not
// opened, selected, counted by the quota, appended, copied or moved
// into, renamed or deleted. A Mailbox opens its folder directory once,
// without following a link, and opens every message file relative to
// that directory with O_NOFOLLOW, so a folder swapped for a link after
// the open is never read through. The decision for the account root is
// the other way: the path to it may hold links (an administrator's
// /home/u/Maildir -> /data/u), for no user writes above their Maildir.
// Still by name, and so open to a swap in the moment between the
// identity check (identity.go) and the call: the listings of new/ and
// cur/ (opened O_NOFOLLOW, so a linked cur/ fails, but under a folder
// path that a swap could redirect), flag renames, expunges, MOVE's
// renames, deliveries and the uidlist and its lock.
//
// # Move
//
// Mailbox.Move moves messages into another mailbox on the same
// filesystem with one rename(2) per message, from the source's new/ or
// cur/ into the target's cur/, under the name the message keeps there
// (its base name unless the target's uidlist already holds it, and its
// flags with the target's keyword letters): at every instant its file
// is in exactly one of the two mailboxes, whenever the process dies. The
// renames and the one append of the new UIDs to the target's uidlist
// happen under the target's lock, after the directories are fsynced
// (the target's first); when the append fails the files are renamed
// back, still under that lock, and nothing was moved. The source's
// state drops the messages under its writer lock, held since before the
// renames, so no sync of this process takes their absence for an
// expunge of its own; the target adopts them afterwards, under its own.
// A crash leaves each moved file either where it was or in the target,
// where the next sync gives it a UID (the source's next proven sync
// then expunges it). Across filesystems Move answers ErrMoveNeedsCopy,
// and the caller copies and expunges.
//
// # Locking
//
// Mailbox.wmu serializes the writers: syncs and every change (STORE,
// EXPUNGE, APPEND, COPY's adoption, MOVE on both sides). Mailbox.mu
// guards the state, which only a writer holding both changes; a writer
// may therefore read the state holding wmu alone. It holds mu while it
// changes the state and lets go of it (Mailbox.unlocked) around its file
// system I/O, so that readers (FETCH, SEARCH, a SELECT's snapshot) do
// not wait for the disk: the check that the path still leads to the
// mailbox's directory, the stats of the cheap check, the reads of the
// uidlist and of dovecot-keywords' stamp, the listings and the reread of
// new/ before an expunge, the wait for the mailbox lock and its release,
// the uidlist's append, creation, rebuild and compaction, the stats,
// comparison, removal and renames that fix duplicates, the renames of
// STORE and MOVE and the unlinks of EXPUNGE, the reservation of a block
// of modseqs and the wait for the clock (Modification sequences). Readers meanwhile see the
// state as it was; what a writer did reaches the subscribers when it
// publishes, at its end. A reader that opens a file that a STORE has
// just renamed gets ENOENT and looks again (OpenMessage): its sync
// waits for wmu, so it finds the file where the STORE put it, and opens
// it before any other change of ours can rename it again.
//
// Disk I/O under mu is left only where it must be, or costs nothing:
//
//   - APPEND and COPY check the mailbox's directory and fsync cur/ under
//     mu after recording the new messages: no reader may see a message
//     before it is durable, as it may yet be taken back.
//   - The first sync of a UIDVALIDITY reads the \Recent mark from the
//     index (settleRecentLocked): a bbolt read, usually from memory.
//   - Check and CheckFiles (tests, cistern check) read the files under
//     mu to compare them with a state that stands still.
//   - Log lines are written where they arise, mu or not.
//
// No method does network I/O. Every unexported method says in its doc
// which locks its caller holds (a line "Held: …"), every exported one
// what it takes ("Takes: …"); the rule is at the Mailbox type.
//
// The mailbox lock (dovecot-uidlist.lock, shared with Dovecot's tools)
// is taken to append to or rewrite the uidlist, to fix duplicates, and
// for every change; its holders keep it for milliseconds. Who waits for
// it, and for how long (lock.go):
//
//   - A change (APPEND, COPY, STORE, EXPUNGE) takes its turn among this
//     process's changes, then the lock, then wmu: it never waits for the
//     lock while holding wmu. It waits up to the lock timeout
//     (Options.Lock.Timeout), then fails with ErrLocked, having changed
//     nothing; so does a new keyword's write to dovecot-keywords, which
//     holds nothing else while it waits. APPEND and COPY write their
//     files into tmp/ before they wait, and rename them into cur/ only
//     under the lock; a uidlist that cannot be written, or a cur/ that
//     cannot be fsynced, gets them unlinked again before the lock is let
//     go: a change that fails leaves no message.
//   - A sync that is no part of a change (SELECT, EXAMINE, STATUS, NOOP,
//     IDLE, Kick, FETCH's lookup of a moved file) is a reader of the
//     lock: it tries it for readerLockWait at most once per sync, and not
//     at all while one of this process's changes holds it or waits for
//     it. Without it, new files stay without a UID and the sync
//     succeeds. Files left because of a change of ours are numbered by
//     that change, under its lock, before it ends; for any other holder
//     the first such sync in a row logs it, and a retry is arranged (a
//     sync lockRetryDelay later when someone is subscribed). The cheap
//     check never skips the next sync.
//   - The first sync of a mailbox with neither a dovecot-uidlist nor a
//     UIDVALIDITY waits as a change does, but only creatorLockWait, then
//     fails with ErrLocked: nothing can be shown before the uidlist.
//   - A sync that a change makes (a STORE that found a file renamed)
//     uses the change's lock.
//
// Deliveries (package delivery, other programs) put files into new/
// without the lock; they get their UIDs at the next sync.
//
// Lock order: a change's turn, then a mailbox lock (dotlock), then a
// writer lock (wmu), then mu. A Move is a change of its source whose
// mailbox lock is the target's: it takes the source's turn, the
// target's dotlock, then the source's writer lock; it adopts the moved
// messages in the target only after letting go of the dotlock. No
// writer lock is held while a dotlock is waited for, and no Move holds
// two writer locks or two dotlocks, so Moves in opposite directions
// cannot deadlock. The keyword cache's kwMu is a leaf: nothing is taken
// under it. So is the flock of cistern-modseq, taken with wmu held (and
// perhaps the dotlock), never mu, and held for one small durable write.
//
// # Modification sequences
//
// Every message carries a MODSEQ (Message.ModSeq, RFC 7162) and the
// Mailbox a HIGHESTMODSEQ (HighestModSeq). A writer takes one modseq for
// what it publishes at once (modSeqLocked; publish ends it): every
// message it changes — our STORE, APPEND, COPY and MOVE arrivals, files
// a sync finds (deliveries, foreign files), flags a sync finds changed
// (foreign renames, Dovecot) — gets it, and every UID it expunges is
// remembered with it; HIGHESTMODSEQ is raised to it when the change is
// published, never before, so a reader that read HIGHESTMODSEQ h has
// seen every change at or below h (a message may already carry a higher
// one). A sync that finds nothing takes none. A message changed twice
// is published twice, with two modseqs, strictly increasing (a STORE
// that must look for a moved file publishes what it did before the sync
// does). The first sync of a Mailbox takes a modseq whatever it finds,
// and every message it finds gets it: with no per-message modseq
// persisted, every message counts as changed then, which RFC 7162
// allows. (The index's entries carry a version byte; the warm start can
// add a version whose entries hold the modseq, and then adopt it
// instead of the starting value when the mark proves it current.)
//
// Expunges (expungelog.go) are kept as UID ranges with the highest
// modseq of each; ranges that touch (hi+1 == lo) merge. ExpungedSince(n)
// returns the ranges above n: a superset of the UIDs expunged since n,
// holding only UIDs that were expunged (never a live one: a UID is
// never given twice). Past 65,536 ranges the older half by modseq is
// forgotten and the log's floor raised to the highest modseq forgotten;
// an n below the floor (or below the first sync's modseq) is answered
// with every UID below the next UID that no message holds. Either way a
// client may be told too much (RFC 7162 §3.2.5.1 allows UIDs expunged
// earlier or never given), never too little.
//
// Modseqs never go back. The high-water mark, cistern-modseq in the
// Maildir directory itself ("1 <H>\n"; no dot: no Maildir++ folder; no
// dovecot- prefix: not Dovecot's; not in new/ or cur/: no message), is
// above every modseq any process handed out for the mailbox. A process
// hands out only from a block it reserved (reserveMark): under an
// exclusive flock of the file at the path, it reads H (missing or
// unreadable: 0), takes lo = max(H, its own next, the clock in
// microseconds), writes hi = lo+4096 to cistern-modseq.tmp, fsyncs it,
// renames it over the mark, fsyncs the directory, and only then hands
// out lo..hi-1. Besides, no modseq is handed out above the clock: one
// that would be waits for it (at most modseqMaxWait: bursts above a
// million changes a second, or a restart within a block's time).
//
// Proof. (1) Two reservations never overlap, in one process or two, on
// one host or several (issue 19): a reserver checks, holding the flock,
// that the file it locked is the one at the path; only the holder of
// the lock of the file at the path renames a new one there, and it
// lets go only after the rename. So the reservations that pass the
// check are serialized, each reads the hi its predecessor wrote, and
// its lo is at least that. A process that dies lets go of its flock
// with its descriptors: no stale lock, and a tmp file left behind is
// overwritten by the next holder. (2) Restart, crash (kill -9 at any
// point), index deleted or corrupt: the mark is on disk before any
// modseq of its block was handed out, so every modseq told is below H,
// and the next reservation starts at H or above; the index holds no
// modseq. A crash between reservation and use loses the rest of a
// block: a gap, allowed. (3) Dovecot or any program serving the tree in
// between: its changes are found by the next sync, whose modseq comes
// from a reservation above H; the first sync of a Mailbox stamps every
// message above H, and ExpungedSince below that answers with every UID
// no message holds. (4) A restore of the Maildir (mail and mark) from a
// backup: the mark may go back, but every modseq handed out before the
// restore was at most the clock when it was handed out, and the next
// reservation starts at the clock or above: above them all, as long as
// the clock did not go back. (5) If it did (or the mark comes from a
// machine whose clock is ahead), the mark still keeps modseqs going up;
// only the restore case is then unprotected until the clock catches up,
// and the first modseq handed out ahead of the clock by more than
// modseqMaxWait is logged as an error. A restore under a running server
// is not covered: it keeps handing out its block; restore with the
// servers stopped. (6) A mark that cannot be written (a full or
// read-only disk: reading needs no free space) is logged once, and the
// clock alone keeps modseqs going up, a block of one at a time, each
// change trying the mark again.
//
// Cost: no fsync per STORE. A STORE costs no fsync today (a rename
// under the dotlock); with modseqs, two fsyncs (the mark's temporary
// file and the directory) per 4096 modseqs handed out, plus one
// reservation at a Mailbox's first sync.
//
// # Warm start
//
// With an Index, the synced state is stored in it (warm.go: per message
// UID, file name and base name length, new/ or cur/, flags, modseq; per
// mailbox UIDVALIDITY, next UID, HIGHESTMODSEQ, the expunge log, the
// proofs, and the stamps that prove it current: the directory's
// identity, new/'s and cur/'s identity, mtime and ctime from the last
// proven listing (maildir.DirStamp), dovecot-uidlist's
// identity, size, mtime and ctime, and
// dovecot-keywords' identity, size, mtime and ctime; CRC-32C over all). It is
// stored only when the cheap check itself would trust the state
// (stampsValid: the last sync was proven, its stamps were valid, not
// too recent, no suspect, nothing left undone), with no change under
// way, and when the uidlist is the very version that sync ended with.
// It is stored by the Registry when it closes a mailbox (eviction,
// Vanished, and at shutdown after a last sync, so that the stamps are
// the files' own after a STORE), and by a sync that the cheap check
// skipped (the mailbox is quiet) at most every stateSaveInterval, when
// it differs from what was stored. Not on every change: it is
// megabytes.
//
// Open serves it instead of reading the uidlist, and the first sync's
// cheap check then skips the listings, only when every stamp matches
// the files, and the modseq mark is above its HIGHESTMODSEQ. A load
// copies the names out of the index in one string and the records into
// one array of entries, and builds nothing else: the index by base name
// is built by the first writer that needs it (a sync that finds a
// change, APPEND, MOVE; Mailbox.bases), so a mailbox that nothing
// changed answers SELECT, FETCH and STORE by UID without it, and the
// GUID (a SELECT's MAILBOXID) is read from the held uidlist's header
// line alone (uidlist.ReadHeader). Anything
// else (another directory at the path, a delivery, a rename or a delete
// in new/ or cur/, a directory replaced, the uidlist rewritten or
// appended to, dovecot-keywords changed, a lower mark, a version, a
// checksum or a length that is not this one's) drops it, and Open reads
// the files as on a cold start. Until a sync reads the uidlist, the
// cheap check compares its stamp (held open: its inode is not reused)
// instead of the Reader's version.
//
// Proof. The state stored is what the last proven listings found plus
// what this process changed since; each of our changes renames, links
// or unlinks in new/ or cur/, or appends to the uidlist, and so moves a
// stamp away from the stored one. When the stamps match at the next
// start, no one (we, Dovecot, a foreign program) changed new/, cur/ or
// the uidlist since those listings: the running daemon's cheap check
// trusts exactly that, on the same fine-grained timestamps (DESIGN.md
// §3), and no expunge is ever made from a stored state. While the
// daemon is down (or running), a program may also set a directory's
// mtime back after changing it (a restore that keeps mtimes, touch -d);
// none can set a ctime, and a DirStamp holds both. Modseqs: every
// modseq stored was handed out from a reserved block, so is below the
// mark on disk; the load checks HIGHESTMODSEQ < mark, and the first
// change after it reserves a new block at the mark or above: above
// every modseq any client was told. A crash before a store leaves an
// older state whose stamps no longer match (every change since moved
// them): a cold start, whose first sync's modseq is above the mark. A
// state whose stamps match but that is older than what was told cannot
// exist: a published change took a modseq and moved a stamp.
//
// # Memory
//
// A Mailbox keeps, per message, one entry (64 bytes: UID, listing mark,
// directory, file name, flags, modseq, the base name's length: the
// base name is the file name's prefix), its file name (one allocation
// after a sync, one string for all after a warm start), a pointer in
// msgs and one entry of byBase (none after a warm start until a writer
// needs it). A listing's names are matched through byBase alone
// (unchanged compares the directory and file name of the entry the base
// name leads to), so there is no second map by file name.
//
// The uidlist is not kept beside the state: the Reader is lean
// (uidlist.NewLeanReader), its Files hold the records of its last read
// only, and every sync lets them go when it ends (finish: Settle). What
// stays of it is a set of hashes of the base names read, 8 bytes a
// record at most three quarters full. What needs a record read before
// asks MayHold, whose no is exact, and reads the whole file on a yes
// (readWholeUIDList): a file a sync finds whose record another process
// appended before (adoptFromUIDList), a base name MOVE brings into a
// uidlist that may hold it, a compaction (when the records outnumber
// the messages by enough), the rewrite that gives a GUID. A sync that
// finds a delivery reads only the uidlist's appended tail, as before.
//
// A first sync of a large mailbox allocates several times what stays
// (the listings, the uidlist's bytes and parse, the list of new
// messages); one that found at least releaseAfter new messages hands
// the memory back to the system releaseDelay later (release.go: one
// forced collection, at most one at a time).
//
// bench/memstate measures the store's live heap and the resident memory
// of a daemon with one large mailbox selected, after a cold and a warm
// start; bench/README.md has the figures.
//
// # Quota
//
// The Maildir++ quota file maildirsize (format, recalculation rules and
// concurrency: quota.go) is read by CheckQuota and appended to by
// AddQuota. An Account opened with a QuotaLimit (OpenAccountWithQuota)
// checks its Append, Copy and Move against it before writing and records
// every change its Append, Copy, Move, Expunge, DeleteFolder and
// RenameFolder make; Mailbox methods know nothing of quota.
//
// # Logs and metrics
//
// A Mailbox's lines name it (mailbox=<dir>). A sync or change made with
// a ctx that carries a session's logger (package logctx) writes its
// lines with that logger, so they name the session too; syncs nobody
// asked for (change notices, Kick) and the index cache use
// Options.Logger. Options.Metrics counts syncs by the proof of their
// listings, failed syncs, and suspects: made, resolved, and waiting in
// the mailboxes a Registry has open (metrics.go).
//
// # Guarantees checked
//
// Check lists and verifies every invariant of the state against itself and
// against the files; tests call it after every step.
package store
