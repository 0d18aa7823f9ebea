// Package wire is the IMAP wire syntax of a server: it decodes the
// commands clients send and encodes the responses the server sends, for
// IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) with the syntax of
// LITERAL+/LITERAL- (RFC 7888), BINARY (RFC 3516), SEARCHRES (RFC 5182),
// ESEARCH (RFC 4731), CONDSTORE (RFC 7162) and UTF8=ACCEPT (RFC 6855).
//
// It owns syntax only. It does no networking beyond the bufio.Reader and
// bufio.Writer it is given, touches no files, and decides no policy: which
// command is allowed in which state, which literal sizes a user may send,
// and what a response says are the server's. Decoder and Encoder are not
// safe for concurrent use; a connection owns one of each.
//
// # Decoding
//
// The server reads a command with Tag, SP, Atom (the command name), then
// the primitives of that command's grammar, and CRLF. Every read is
// bounded by Limits: the bytes of a command outside literals, the size and
// number of literals, and the nesting depth. No allocation depends on an
// unchecked client number.
//
// A method that fails returns an *Error for a client mistake, or the
// reader's error for a failed connection (io.ErrUnexpectedEOF mid-command;
// io.EOF from Tag means the client closed between commands). On an *Error
// the server answers "tag BAD [code] msg" and calls Discard, which leaves
// the decoder at the next command without reading anything the client
// has not been invited to send. If Discard fails the server sends BYE and
// closes.
//
// # Literals
//
// A literal announces its size, then CRLF, then the bytes (RFC 9051 §4.3).
// Sizes are checked before anything is allocated or read:
//
//	Form      Syntax         Continuation            Accepted when
//	literal   {n} CRLF       cont(n) before data     n <= the limit of the
//	                         (RFC 9051 §7.5)         argument; cont may refuse
//	LITERAL+  {n+} CRLF      none (RFC 7888 §3)      Limits.NonSyncMax == 0
//	LITERAL-  {n+} CRLF      none (RFC 7888 §4)      NonSyncMax > 0 and n <= it (4096)
//	literal8  ~{n} CRLF,     as above                APPEND data only (Literal);
//	          ~{n+} CRLF                             may contain NUL (RFC 3516 §4.1)
//
// The limit of a literal is Limits.MaxString where a string is expected
// and Limits.MaxLiteral (or the smaller max given to Literal) for message
// data. A literal other than literal8 may not contain NUL (CHAR8).
//
// A refused literal ends in *Error with code TOOBIG (RFC 9051 §7.1). After
// a refused synchronizing literal the client sends nothing more for the
// command, and Discard reads nothing. After a refused non-synchronizing
// literal the bytes are already on the way, and Discard skips them (up to
// Limits.MaxLiteral; beyond that it returns ErrUnrecoverable).
//
// # Strictness and leniencies
//
// The decoder accepts what the RFC grammar allows and refuses the rest:
// exactly one SP between arguments, CRLF line ends, nz-numbers without
// leading zeros in sequence sets, canonical modified UTF-7 in mailbox
// names. Keywords (command names, search keys, fetch items, status items,
// month names) are case-insensitive, as RFC 9051 §9 and RFC 5234 §2.3
// define them. Deliberate leniencies, each for clients seen doing it:
//
//   - Quoted strings may carry valid UTF-8 in IMAP4rev1 sessions too, as
//     RFC 9051 allows in IMAP4rev2: scripts on Python's imaplib pass
//     8-bit search strings through quoted (SEARCH SUBJECT "…"), and
//     Jakarta/Angus Mail quotes UTF-8 search strings for servers that
//     advertise UTF8=ACCEPT. Invalid UTF-8 is still refused.
//   - Discard (only) takes a bare LF as the end of a line, so that a
//     client ending lines with LF (hand-typed sessions through nc or
//     telnet) gets one BAD per command rather than losing the next one.
//
// # Encoding
//
// Encoder writes values: atoms verbatim, strings quoted when that is safe
// and as literals otherwise, mailbox names in modified UTF-7, date-times,
// lists, flags. Its first write error is sticky (Err); the server flushes
// once per batch of responses.
package wire
