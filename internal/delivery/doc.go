// Package delivery puts received messages into users' Maildirs, durably
// (DESIGN.md §2.3, §4): the one delivery path behind LMTP (package lmtp)
// and the LDA (cistern deliver). It speaks no protocol; each front maps
// the Kind of an error to its own answer (an SMTP reply, an exit code).
//
// # Recipients
//
// Resolve turns an address into a Recipient: a user of the passwd-file
// (through the Users interface), that user's Maildir root, and the
// folder asked for. An address local@domain or a bare name is tried, in
// order, as
//
//	candidate                    example for bob+Lists@example.org
//	the whole address            bob+Lists@example.org
//	the address without detail   bob@example.org      (folder "Lists")
//	the local part               bob+Lists
//	the local part w/o detail    bob                  (folder "Lists")
//
// The detail is what follows the first delimiter character (Deliverer
// Delimiter, "+" by default) in the local part. Names are matched exactly,
// as the passwd-file matches them. The detail is logged with the
// delivery; it names the folder to file into only with Deliverer
// SaveToDetailMailbox (lmtp.save_to_detail_mailbox; off by default, as
// Dovecot's lmtp_save_to_detail_mailbox: any sender may write user+folder).
// It names a folder the way IMAP
// names it ('.' between levels, UTF-8, "INBOX" in any case for the
// inbox), mapped to its Maildir++ directory as package backend maps it
// (modified UTF-7 elements, ".A.B"); a name that no folder can have
// (a '/', an empty level, a leading '.') never reaches the file system.
// The message goes to that folder when it exists and to INBOX otherwise,
// unless the Recipient asks to create it (the LDA's -m and --create,
// which the operator's command line sets: Postfix's "-m ${extension}"
// passes the detail that way).
//
// Whoever names it (the detail, -m), a folder whose special use
// (RFC 6154) is \Sent, \Drafts or \Trash never receives a delivery
// (ProtectedUse): the message goes to INBOX, and that is logged. A
// message in Sent or Drafts would pass for one the user wrote (and a
// draft may be sent on), one in Trash may never be seen. \Junk is not
// protected: a sender can only demote its own message there, and
// filters file spam there on purpose. A folder (or
// a Maildir root) that exists but that this process may not look inside
// is not missing: the delivery fails with ErrNoAccess (NoAccess), and
// nothing is filed anywhere else.
//
// # Steps (DESIGN.md §4)
//
// Deliver writes the message once and hard-links it into every
// recipient's Maildir:
//
//  1. Each recipient's account is opened; its Maildir, with the default
//     folders, is made on the first delivery (failure: CannotCreate).
//  2. The added header lines and the message, its line endings made CRLF,
//     are written to one file in the first recipient's tmp/ and fsynced
//     (maildir.Spool). Crash: a tmp/ file, removed after 36 hours.
//  3. For each recipient, in order: the quota is checked with the size of
//     that file (store.CheckQuota), the file is linked into the target's
//     new/ and that directory fsynced (maildir.Link; maildir.Deliver
//     copies when the target is on another filesystem), the usage is
//     recorded (store.AddQuota) and the daemon's Registry is told, so
//     that IDLE sessions hear of it at once. Crash: the copies made so
//     far are durable, none is half made.
//  4. The spool name is removed.
//
// A recipient's Result is a success only once its copy and new/ are
// fsynced; nothing short of that is ever reported as delivered. UIDs are
// not assigned here: the next sync of the mailbox does it, under its
// lock, as for any foreign delivery into new/.
//
// # Failures and the mailbox lock
//
// A message durably in new/ is delivered: that is the Maildir contract,
// which every reader (ours, Dovecot, mutt) honours by numbering what it
// finds there. So delivery, unlike APPEND and COPY (package store), takes
// no mailbox lock and writes no dovecot-uidlist: a lock held by a live
// process, left empty or garbled, or a uidlist that cannot be written
// neither delays nor fails a delivery; the UID waits for the first sync
// that can write it. Taking the lock here would turn a stuck lock into
// bounced or deferred mail, and buy nothing a sync does not do.
//
// A failure reported leaves no message behind. Every step that can fail
// comes before the rename into new/ (quota check, spool, link into tmp/,
// whose file is then removed), except the fsync of new/ after it, on
// whose failure maildir.Link unlinks the message again. What follows the
// fsync (the quota record, the notice to the daemon) cannot undo a
// delivery, so its failure is logged, not reported.
//
// # Added header lines
//
//	Return-Path: <sender>    always ("<>" for the null sender)
//	Delivered-To: recipient  only when the message has exactly one recipient
//
// All recipients share one file, so a line naming one recipient would be
// wrong in every other copy, and would show each recipient the others;
// Dovecot's LMTP leaves Delivered-To out of shared copies for the same
// reason. Delivered-To has RFC 9228's form, the address without angle
// brackets, as given in RCPT TO (or to 'cistern deliver -u').
//
// # Message content
//
//	input                          handling
//	bare LF line endings           stored as CRLF, as IMAP serves them
//	bare CR                        stored as is
//	no line ending at the end      stored as is (nothing is appended)
//	lines longer than 998 bytes    stored as is (RFC 5322 §2.1.1 is the sender's rule)
//	8-bit bytes, in headers too    stored as is (RFC 6532)
//	NUL bytes                      refused: ErrNUL (IMAP cannot carry NUL in a literal)
//	no bytes at all                refused: ErrEmpty
//	more than MaxSize bytes        refused: ErrTooBig
//
// MaxSize counts the bytes given, before header lines and CRLF are
// added. A refused message leaves nothing behind.
//
// # Errors
//
// Errors wrap a sentinel that KindOf turns into a Kind: ErrUnknownUser,
// ErrBadAddress, store.ErrOverQuota, ErrTooBig, ErrBadMessage (ErrNUL,
// ErrEmpty), ErrCannotCreate, ErrNoAccess (or any permission error:
// NoAccess). A full disk (ENOSPC, or the owner's EDQUOT) is DiskFull,
// even where it kept a Maildir from being made. Anything else is
// Temporary (a disk, lock or I/O failure, a passwd-file that cannot be
// read, the message reader's own error). The sender retries DiskFull,
// NoAccess and Temporary.
//
// # Concurrency
//
// A Deliverer is safe for concurrent use and holds no lock: Maildir
// delivery needs none, and concurrent deliveries to one user are
// independent files. Other processes (an LDA next to the daemon) share
// nothing with it but the files. Counters are atomic.
package delivery
