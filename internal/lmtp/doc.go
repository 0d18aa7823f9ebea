// Package lmtp is Cistern's LMTP front (RFC 2033): the MTA hands it
// messages over TCP or a unix socket, and it answers for each recipient
// separately, once that recipient's copy is on disk. It runs go-smtp's
// server in LMTP mode; the deliveries themselves are package delivery's.
//
// # A transaction
//
//	LHLO      capabilities: PIPELINING, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES,
//	          CHUNKING (BDAT), SIZE, LIMITS RCPTMAX=<max_recipients>; SIZE says
//	          max_message_size + 1, because go-smtp refuses a message of
//	          exactly its own limit, which is therefore set one higher;
//	          STARTTLS on TCP when a TLSConfig is set (see TLS below)
//	MAIL      the sender; a SIZE= above max_message_size is refused at
//	          once (552 5.3.4)
//	RCPT      each recipient is resolved at once: an unknown user is
//	          refused here (550 5.1.1), so that the MTA bounces only
//	          that recipient; past max_recipients: 452 4.5.3
//	DATA/BDAT the message is stored once and linked to every recipient
//	          (package delivery); then one reply per accepted recipient
//	          (RFC 2033 §4.2), in RCPT order, each sent only after that
//	          recipient's copy and its new/ directory are fsynced
//
// # Replies
//
// Delivery outcomes become replies in one function (reply):
//
//	outcome                        reply
//	delivered                      250 2.0.0 <rcpt> <id> Saved
//	unknown user                   550 5.1.1 (at RCPT)
//	bad address                    501 5.1.3 (RCPT), 501 5.1.7 (MAIL)
//	over quota                     552 5.2.2; 452 4.2.2 with QuotaFullTempfail
//	message too big                552 5.3.4
//	NUL bytes, empty message       554 5.6.0
//	no reads for DataTimeout       421 4.4.2 for every recipient, then the connection is closed
//	a message under MinDataRate    421 4.4.2 for every recipient, nothing stored, the connection closed
//	no message TransactionTimeout  421 4.4.2, then the connection is closed
//	after connect or the last one
//	disk full (ENOSPC, EDQUOT)     452 4.3.1 (mail system full: the MTA retries)
//	a folder that cannot be used   451 4.2.0 (exists, may not be read; or the Maildir: never filed elsewhere)
//	disk, lock or I/O trouble      451 4.3.0 (the Maildir cannot be made: the same)
//	shutting down                  421 4.3.2 to a new transaction
//	over MaxConnections(PerIP)     421 4.7.0 as the greeting, then the connection is closed
//	MAIL inside a transaction      503 5.5.1 (the transaction goes on)
//
// Internal error text never reaches the MTA; it is in the log line each
// delivery writes (package delivery).
//
// # Logs and metrics
//
// Each connection is a session with an id (8 random base32 characters):
// the lines of its deliveries and refused recipients carry
// session=<id>, remote=<address> and id=<session>.<transaction>, the id
// of the 250 reply. go-smtp's own reports (a recovered panic, a broken
// connection) name no session: go-smtp gives them no connection. With
// Server.Metrics the server counts its connections and its Deliverer's
// outcomes (metrics.go, and package metrics for the list).
//
// # What the MTA may send, and what happens
//
// go-smtp reads DATA as RFC 5321 §4.1.1.4 says: it ends only at
// CRLF "." CRLF, and a leading dot is removed from lines that start with
// one (dot-stuffing). A trusted local MTA (Postfix, Exim) is the peer, so
// its message is stored as it sent it, as Dovecot's LMTP and Postfix's
// own local delivery do, except where IMAP could not serve it:
//
//	input                     what go-smtp does          what we do
//	bare LF line endings      passes them as data; a     store them as CRLF; a "." after
//	                          bare LF does not end a     a bare LF is not the end of the
//	                          line for the end marker    data (no smuggling), and is not
//	                          or dot-stuffing            unstuffed (stored as sent)
//	8-bit headers, UTF-8      passes them (8BITMIME,     store them as they are (RFC 6532)
//	                          SMTPUTF8 announced)
//	lines over 998 bytes      refuses lines over its     store them: the line limit is set to
//	                          line limit (2000 bytes     max_message_size, so only the size
//	                          by default), closing the   limit applies (commands too may be
//	                          connection                 that long; the peer is trusted)
//	no final CRLF             DATA always ends in CRLF;  store the message as it ends
//	                          BDAT may not
//	NUL bytes                 passes them                refuse: 554 5.6.0, nothing stored
//	empty message             passes it                  refuse: 554 5.6.0
//	DATA that never ends      waits forever (no          421 4.4.2 after DataTimeout without a
//	                          timeout is set)            byte, nothing stored, connection closed
//	more than max size        552 5.3.4 after reading    the same; nothing stored; a single
//	                          (and discarding) the rest  line longer than max size + 64 KiB
//	                                                     then closes the connection (500 5.4.0)
//
// A message is delivered to all of its accepted recipients or refused
// for all of them; a recipient can fail alone only for its own reason
// (its quota, its Maildir).
//
// # TLS
//
// With Server.TLSConfig, TCP connections are offered STARTTLS (RFC 3207):
// after "220 Ready to start TLS" go-smtp runs the handshake on the
// connection, drops whatever the peer sent before it (no plaintext
// command injection), and the peer starts again with LHLO. Unix sockets
// never offer it (STARTTLS there is 502): their traffic does not leave
// the kernel, and the socket's permissions say who may connect.
// Delivery is the same with or without TLS; LMTP has no authentication
// for TLS to protect, so TLS is never required.
//
// # Timeouts and shutdown
//
// Every read from the peer has a deadline:
//
//	reading         deadline of each read                      past it
//	a message       DataTimeout, and no later than the moment  421 4.4.2 for every recipient,
//	(DATA, BDAT)    its average rate since DATA falls under    nothing stored, connection
//	                MinDataRate (1 KiB/s) once DataRateGrace   closed
//	                (10 s) has passed
//	a command       commandTimeout (5 min), and no later than  421 4.4.2, connection closed
//	                TransactionTimeout (1 min) after connect
//	                or the end of the last message
//
// So a peer that sends a byte of its message every DataTimeout minus a
// second, or a NOOP every 4 minutes, or connects and says nothing,
// holds a connection slot for a minute or so, not for hours: only an
// MTA that delivers keeps its connection. Shutdown stops accepting,
// closes connections that are between transactions, and lets every
// transaction under way finish (a new one is refused with 421) until its
// context ends; Close then cuts what is left. A message whose replies
// were not sent is retried by the MTA and may be delivered twice, the
// one duplicate LMTP allows.
//
// # Concurrency
//
// A Server is safe for concurrent use: Serve may run on any number of
// listeners at once. Each connection has its own goroutines (go-smtp's);
// Server.mu guards the sets of listeners and connections, conn.mu one
// connection's state. No lock is held during network or disk I/O.
package lmtp
