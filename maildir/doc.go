// Package maildir reads and writes Maildir directories (cr.yp.to's Maildir
// with Maildir++ folders) while other programs change them, without a
// global lock. It knows file names, flags, durable delivery, renames and
// folders; it knows nothing of UIDs or IMAP.
//
// # File names
//
//	part        example                               meaning
//	base name   1700000000.M123P45Q6.host,S=980,W=1001 the message's identity
//	info        :2,FRS                                flags, ASCII order
//	flags       D F P R S T                           draft flagged passed replied seen trashed
//	keywords    a–z                                   names in dovecot-keywords
//	S=, W=      ,S=<size>,W=<size with CRLF>          Dovecot's size fields
//
// A base name is unique within a mailbox; flag changes rename the file and
// keep the base name.
//
// # Listings and their proofs (DESIGN.md §3)
//
// readdir on a directory that is being renamed in may skip an entry or
// return it twice, so one plain pass can never show that a message is
// gone. List reads a directory and says which proof of completeness the
// result carries:
//
//	proof             when
//	atomic            one getdents64 call with room left in the buffer, on
//	                  ext4, xfs or tmpfs (the call holds the directory lock,
//	                  and rename needs it exclusively)
//	stable-timestamp  the directory mtime before the open equals the one
//	                  after the read, to the nanosecond, on a local
//	                  filesystem whose probe showed fine-grained timestamps
//	locked            the caller holds a lock that every writer honours
//	none              no proof: good for finding new files only
//
// Detect reports which proofs a filesystem supports (statfs magic and a
// timestamp-granularity probe); List uses it, cached per device.
//
// # Writing
//
// Delivery creates the file in tmp/ with O_EXCL, writes and fsyncs it,
// renames it into new/ (or cur/), then fsyncs that directory: a crash
// leaves the whole message or only a tmp/ file, which CleanTmp removes
// after 36 hours. Flag changes and new/ → cur/ moves are renames that
// never replace a file; a source that vanished is reported as ErrMoved so
// that the caller resyncs.
//
// # Concurrency
//
// Every function may run concurrently with any other program changing the
// same Maildir. The package keeps only caches (filesystem capabilities per
// device, read-buffer sizes per directory), guarded internally.
package maildir
