// Package migrate adopts a Maildir tree that Courier-IMAP or Dovecot
// served, so that Cistern serves it with every UID and UIDVALIDITY kept
// and clients download nothing again. It is the engine of 'cistern
// migrate'.
//
// # What it converts
//
//	Courier's file              what it holds                     becomes
//	--------------------------  --------------------------------  -------------------------------------------
//	courierimapuiddb            UIDVALIDITY, next UID, UID ↔      dovecot-uidlist (version 3) with the same
//	                            base name (one per folder)        UIDVALIDITY, next UID and UIDs
//	courierimapkeywords/        keywords of each message          dovecot-keywords, and each keyword's letter
//	                                                              added to its messages' file names
//	courierimapsubscribed       subscribed folders, "INBOX" and   subscriptions (Maildir++), "INBOX" and
//	                            "INBOX.<folder>" (root only)      "<folder>"
//
// Courier's files are read and never changed or removed, so a migration
// that fails midway leaves them as they were, and they stay for whoever
// wants to look back.
//
// courierimapkeywords/ (Courier's libs/maildir, maildirkeywords2.c) holds
// the file ":list", keyword names one per line, an empty line, then one
// line per message with keywords:
//
//	<base name>:<index> <index> ...      index 0 is the first name listed
//
// and update files written since :list was last rewritten, one per
// message, each holding the message's keyword names one per line (none:
// the message has no keywords): ".<n>.<base name>", the highest n
// winning, or "<base name>", which beats every numbered one. Names
// starting ".tmp." are files being written.
//
// A tree that Dovecot (or Cistern) served already has dovecot-uidlist and
// dovecot-keywords, which are Cistern's own format: those mailboxes are
// left as they are. Dovecot's index files (dovecot.index*) may stay; they
// are Dovecot's cache and Cistern does not read them.
//
// # Order, crashes, idempotence
//
// Each mailbox is converted under its mailbox lock (dovecot-uidlist.lock)
// in this order, every file written by temp file, fsync and rename:
//
//  1. keyword letters added to file names (renames that never replace a
//     file; base names and other flags unchanged);
//  2. dovecot-keywords written;
//  3. dovecot-uidlist written: the mailbox is migrated.
//
// A mailbox is converted only while it lacks the file of that step
// (keywords while there is no dovecot-keywords, UIDs while there is no
// dovecot-uidlist, subscriptions while there is no subscriptions file),
// and the letters each keyword gets depend only on Courier's files, so a
// run interrupted at any point is completed by the next run, and a run
// after a complete one changes nothing, not even keywords that users
// changed since. Records of messages that a proven listing (DESIGN.md §3)
// shows gone are not carried over; the next UID stays Courier's, so no
// UID is handed out twice. Files that Courier had not numbered yet are
// then given UIDs by the store's normal sync, above Courier's next UID.
package migrate
