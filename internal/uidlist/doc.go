// Package uidlist reads and writes the UID control files of a Maildir that
// Cistern shares with Dovecot and Courier: dovecot-uidlist (the UID map),
// dovecot-keywords (keyword letters), Courier's courierimapuiddb (read only,
// for migration) and the dotlock dovecot-uidlist.lock that serialises every
// writer of those files. It owns the formats, the lock protocol and the
// durable-write recipes; it knows nothing about IMAP or about listing the
// Maildir (see package maildir and internal/store).
//
// # dovecot-uidlist
//
// A text file, one line per item, '\n' terminated (a trailing '\r' is
// tolerated). Line 1 is the header; every other line is a record. The header
// starts with a one-digit version and a space.
//
//	version | header                                   | record
//	--------+------------------------------------------+---------------------------------------
//	1       | 1 <uidvalidity> <nextuid>                | <uid> <filename>
//	2       | 2 <uidvalidity> <nextuid>                | <uid> <flags> <filename>
//	3       | 3 V<uidvalidity> N<nextuid> G<guid> ...  | <uid> [<ext> ...] :<filename>
//
// Version 1 is Dovecot up to v1.0 (and the shape of Courier's file); it
// stores full file names, flags included. Version 2 was written by a few
// Dovecot v1.0 development releases; its <flags> token is internal state and
// is dropped when read. Version 3 (Dovecot v1.1 and later) is the only one
// written, by Marshal, Append and Rewrite.
//
// Version 3 header fields are <key><value> tokens separated by spaces:
//
//	key | meaning
//	----+-----------------------------------------------------------------
//	V   | UIDVALIDITY, decimal, non-zero (required)
//	N   | next UID, decimal, non-zero (required); may be stale, see below
//	G   | mailbox GUID, 32 hex digits (Dovecot writes lowercase)
//	*   | anything else (e.g. P, the POP3 UIDL format): kept verbatim
//
// Version 3 record extension fields are tokens whose first byte is 'A'..'Z'
// and that contain no space, ended by the first token that starts with ':'.
// Everything after that ':' up to the end of the line is the file name
// (Dovecot writes the base name; full names with ":2,<flags>" also occur and
// are kept as they are). Known keys:
//
//	key | meaning
//	----+-----------------------------------------------------------------
//	S   | physical size, when the file name has no ,S=
//	W   | virtual (CRLF) size, when the file name has no ,W=
//	G   | message GUID (default: the base name)
//	P   | POP3 UIDL override
//	O   | POP3 order
//
// Records are in strictly ascending UID order. The next UID to assign is
// max(N, last UID + 1): Dovecot appends records without touching the header,
// so N is usually stale in a file that has been appended to. In versions 1
// and 2 a UID at or above N is damage (reported as a Problem and repaired by
// raising NextUID).
//
// One base name (the file name up to the first ':') has at most one record.
// When a later line repeats a base name the later line wins and the earlier
// record is dropped, as Dovecot does ("Duplicate file entry").
//
// Damage never makes the whole file unusable unless the header is unusable:
// a bad record line (bad UID, UID out of order, no ':' before the name in
// version 3, a '/' or NUL in the name, a last line without '\n') is skipped
// and returned as a Problem, and every valid record is kept. Dovecot, in
// contrast, deletes a file it finds broken and starts over with a new
// UIDVALIDITY; that is why callers keep a copy (KeepCopy) before they
// rewrite over damage.
//
// # dovecot-keywords
//
//	<index> <name>
//
// one line per keyword, index 0..25 standing for the Maildir file name flag
// letters 'a'..'z'. Lines without a space, with a bad index or an empty
// name are skipped (reported as Problems). Names compare case-insensitively,
// as in Dovecot. The file is replaced as a whole (see WriteKeywords), and
// its mtime in whole seconds must grow with every write because Dovecot
// notices changes by mtime alone.
//
// # courierimapuiddb
//
//	1 <uidvalidity> <nextuid>
//	<uid> <basename>
//
// Courier-IMAP's UID map (imap/imapscanclient.c, IMAPDBVERSION 1), always
// rewritten whole by Courier, base names without ":2,<flags>". ParseCourier
// turns it into a File so that a Courier mailbox keeps its UIDs.
//
// # The lock
//
// dovecot-uidlist.lock in the mailbox directory is Dovecot's dotlock
// (src/lib/file-dotlock.c, used by maildir-uidlist.c). A writer creates it
// with O_CREAT|O_EXCL and writes "<pid>:<hostname>" (no newline) into it.
// Another writer waits, polling with backoff, and treats the lock as stale
// and removes it when either
//
//   - its holder is on this host and its pid no longer exists (kill(pid, 0)
//     fails with ESRCH), or
//   - neither the lock file nor dovecot-uidlist has changed (inode, size,
//     mtime, ctime) for the stale timeout, 2 minutes as in Dovecot
//     (MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT).
//
// Before removing a stale lock the waiter checks that the path still names
// the very file it judged stale (device, inode, size, times), so a lock that
// was just taken over by someone else is left alone; after removing one it
// sleeps a short random time so that a second waiter that judged the same
// file stale does not remove the new lock. Within one process, a lock file
// that names our own pid is live only while this process holds it (a
// registry of held locks); otherwise it is a leftover from an earlier process
// that had our pid, and stale. Release removes the lock only while the path
// still names our lock file.
//
// We create the lock with its holder text already in it: written to a
// temporary file, then link(2)ed into place, so that it never exists
// empty. A full disk (ENOSPC, EDQUOT) has no block for that text; the
// lock is then created empty with O_CREAT|O_EXCL, as Dovecot's is before
// its write, so that syncs and expunges still work (they need no free
// block, and expunges free some). An empty lock names no holder and is
// judged by age alone: left by a crash, it holds the mailbox's writers
// off for the stale timeout.
//
// Everything that changes dovecot-uidlist or dovecot-keywords requires the
// lock (the write functions take *Lock to make that visible), as in Dovecot,
// where maildir-keywords.c relies on the uidlist lock too. Readers never
// take it.
//
// # Writes and crashes
//
// Append adds records with one write(2) at the end of the file and then
// fsyncs; a crash leaves either the old file or the old file plus a prefix
// of the new lines, of which a last line without '\n' is ignored by every
// reader (and terminated by the next Append, so it can never glue onto a
// new record). Rewrite and WriteKeywords write a temporary file, fsync it,
// rename it over the target and fsync the directory: after a crash the
// target is the complete old or the complete new file, never a mixture.
//
// # Concurrency
//
// Any number of processes may read at once without a lock: files are only
// appended to in whole lines or replaced by rename(2). A Reader keeps the
// last parsed state and refreshes it cheaply: one stat when nothing changed,
// a parse of the new bytes when the file grew, a full parse when the path
// names a new inode. A Reader is safe for concurrent use by several
// goroutines; the *File it returns is shared and must not be modified.
// A lean Reader (NewLeanReader, lean.go) keeps no records: its Files hold
// the records of its last read, Settle lets them go, and MayHold says,
// exactly when it says no, whether the file holds a base name's record;
// a caller that needs the record of a yes parses the whole file.
// Parse, ParseCourier and Marshal are pure functions. A Lock is held by one
// owner; its methods are safe to call from several goroutines.
package uidlist
