// Package fsck verifies, offline, every invariant of one user's Maildir
// tree (the root Maildir, INBOX, and its Maildir++ folders) and repairs
// what can be repaired without changing any message's UID. It is the
// engine of 'cistern check'.
//
// # What is checked
//
//	kind              finding                                             repair
//	----------------  --------------------------------------------------  ------------------------------------------
//	header            dovecot-uidlist's header damaged or unusable        rewrite, when UIDVALIDITY can be read
//	damaged-line      a uidlist line no reader can use                    rewrite without it
//	duplicate-uid     two lines with one UID (readers skip the second)    rewrite; the later file gets a new UID
//	uid-order         a UID not above the line before (readers skip it)   rewrite in order, the UID kept
//	duplicate-record  one base name with two UIDs (readers use the later) rewrite with the later UID only
//	next-uid          the next UID is not above a UID the file holds      rewrite with the next UID raised
//	stale-record      a record whose file is gone                         rewrite without it (proven listings only)
//	missing-uid       a message file without a record                     the store's sync appends its UID
//	duplicate-name    one base name, two different files                  the store's sync renames the later file
//	unnamed-keyword   a keyword letter dovecot-keywords does not name     none: the name is unknown (see below)
//	stale-tmp         a tmp/ file older than 36 hours (maildir.CleanTmp)  removed
//	quota             maildirsize disagrees with a recount, or its limit  maildirsize recalculated
//	                  is not the user's
//	index-stale       an index entry of a message or mailbox that is gone entry dropped (the index is a cache)
//	index-size        an index entry whose size is not the file's         entry dropped
//	symlink           a symbolic link as a folder, as a folder's new/,     the link moved into cistern-links/ of the
//	                  cur/ or tmp/, or in new/ or cur/ (never followed)    root (rename(2) of the link itself)
//
// Missing UIDs, stale records and stale tmp/ files also arise in normal
// operation: a message delivered since the mailbox was last opened has no
// UID yet, and expunged messages keep their records until the store
// compacts the file. They are reported all the same, since the check
// verifies the invariants as they stand.
//
// A keyword letter without a name stays as it is: the name it stood for
// is lost, and an invented one ("keyword3") would show up in every client
// as if a user had set it. Adding the name to dovecot-keywords by hand
// ("<index> <name>", index 0 for letter a) repairs it.
//
// Symbolic links inside a Maildir are never followed (maildir/nofollow.go):
// the server does not serve them, and the check neither reads nor counts
// what they point at. A root whose new/, cur/ or tmp/ is a link is no
// Maildir and is not checked.
//
// # Reading without locks
//
// Check takes no lock and writes nothing (the filesystem probe of
// maildir.Detect excepted, a dot-file in tmp/ created and removed at
// once). It lists new/ and cur/ with maildir.List, so a listing carries
// its proof of completeness (DESIGN.md §3), and reads dovecot-uidlist
// before the listings. A record whose file is absent is reported only
// when the listings were proven; when they were not, a note says so. A
// finding that a live writer may have caused (a file not numbered yet, a
// record of a file expunged meanwhile, an append under way, a rename
// seen twice) is checked again, once, against a second reading, and
// reported only when it is still there. A folder the user running the
// check may not read is a note and is left out, its index entries too;
// the rest of the tree is checked.
//
// # Repairing
//
// Repair acts on the mailboxes of a Report, each kind as the table says,
// and never changes the UID of a message that has one: records are only
// dropped (a stale record, the earlier of two records of one file) or
// restored (a line readers skipped whose UID no other line holds), the
// next UID is only raised, and the UIDVALIDITY is kept. A uidlist with an
// unusable header is rewritten only when its UIDVALIDITY can be read; a
// damaged uidlist is copied aside (dovecot-uidlist.damaged.<time>) before
// it is replaced. The uidlist is rewritten under the mailbox lock with
// proven listings made while holding it, which is the expunge rule of
// DESIGN.md §3 for the records it drops; files get UIDs and duplicate
// base names are resolved by the store's own sync (internal/store),
// which takes the lock itself. The index is pruned only when no other
// process (the daemon) holds it.
package fsck
