// Package imaptorture tortures any IMAP server over the wire (Cistern,
// Dovecot, anything on a socket) and checks the guarantees of DESIGN.md
// §2 against what every session was told. It is `cistern torture imap`.
//
// # Actors
//
//	actor              does                                          records
//	IMAP session (N)   a weighted random mix: SELECT/EXAMINE, FETCH  every command, every response
//	                   (flags, envelope, body), STORE (+/- flags and
//	                   keywords), SEARCH, COPY and MOVE to Aux,
//	                   EXPUNGE and UID EXPUNGE, APPEND, NOOP, IDLE
//	LMTP deliverer     one transaction at a time                     made (before MAIL), accepted (250)
//	foreign renamer    flag renames in cur/, new/ → cur/ moves       \Deleted (T) marks, before the rename
//	foreign deliverer  tmp/ → new/, fsynced                          made, accepted (after the rename)
//	foreign deleter    unlinks                                       the deletion, before the unlink
//
// The foreign writers run only with Config.Maildir, the mailbox's
// directory on this machine, and take no lock, as mutt and procmail do.
// Every message is made with a Message-ID of its own
// (<torture-RUN-N@cistern>); that is its identity. A session learns which
// UID names which message by fetching
// UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)] for every sequence
// number it has not learned yet, after every command.
//
// # The ground truth (ledger)
//
// One ledger, on one monotonic clock, holds: each message (who made it,
// when, whether the server accepted it, the UIDs it was seen under), and
// every removal an actor asked for: UID STORE +FLAGS (\Deleted) and
// foreign T renames (per UID or Message-ID, when sent), EXPUNGE and UID
// EXPUNGE (when sent, when done), UID MOVE (when sent), foreign
// deletions (before the unlink). An intent is recorded before the
// command is written, so that a server's report of its effect can only
// be read after it.
//
// # The model of each session
//
// Each session keeps its own view as the server described it to it
// (RFC 9051 §2.3.1): sequence number → UID (unknown until learned),
// UID → flags. EXISTS grows it, EXPUNGE n removes n, SELECT starts it
// anew; untagged FETCH must name a sequence number in range and a UID
// consistent with the view. A session's own STORE .SILENT is applied to
// its model, since the server does not echo it.
//
// # Violations
//
//	kind                    reported when
//	phantom_expunge         a session is told EXPUNGE of a message that no
//	                        actor had removed before (no foreign deletion, no
//	                        MOVE of it, no \Deleted mark followed by an
//	                        EXPUNGE or UID EXPUNGE still running or later),
//	                        or that the server still shows at the end; a
//	                        message seen once that is gone at the end with no
//	                        such cause; a file still on disk that the server
//	                        no longer shows
//	uid_change              a sequence number's UID changes; a message shows
//	                        up under a UID it did not have (APPENDUID
//	                        included) while its old UID is gone from the
//	                        view; a UID names two messages; a FETCH of a body
//	                        or ENVELOPE shows another message than the UID's
//	duplicate               one message is visible twice in one view
//	lost                    an APPEND OK, LMTP 250 or foreign delivery that
//	                        never appeared and that no actor removed
//	expunge_during_command  EXPUNGE while responding to FETCH, STORE or SEARCH
//	                        by sequence number (RFC 9051 §7.5.1)
//	exists_decrease         EXISTS below the view's size
//	seq_out_of_range        EXPUNGE, FETCH or SEARCH naming a sequence number
//	                        the session was never told of
//	uid_order               a UID not between its neighbours' in the view; a
//	                        SEARCH result not ascending; a new message whose
//	                        UID is not above every UID seen before it was made
//	uidnext                 UIDNEXT not above every UID seen before the
//	                        command, or lower than a UIDNEXT reported before
//	uidvalidity             a UIDVALIDITY other than the first one
//	flags_diverge           after the actors stop and every session has
//	                        listened in NOOP rounds until one brings no news:
//	                        a session's model differs from its final
//	                        UID FETCH 1:*, sessions' views differ from a new
//	                        session's, or (with a Maildir) a file's flags
//	                        differ from the server's, or the server shows a
//	                        message whose file is gone
//
// The causes are read generously (a \Deleted mark counts even if it was
// removed again before the EXPUNGE), so that a race between actors is
// never reported; what is reported is a response no sequence of actions
// could explain. Each violation carries the session, the command in
// progress and the responses that prove it.
//
// # Bounds
//
// Every read and write has a deadline (Config.Timeout); responses,
// literals and nesting are bounded (response.go); a server that closes a
// connection or sends what is not IMAP ends that actor with an error in
// the result, never the run. The run stops by itself after
// Config.Duration and the final check. Only loopback addresses are
// accepted unless Config.AllowRemote.
//
// # Concurrency
//
// Each actor runs on its own goroutine and owns its connection and
// model; the ledger and the recorder of operations are shared and lock
// themselves.
package imaptorture
