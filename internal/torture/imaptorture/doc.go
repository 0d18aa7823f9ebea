// Package imaptorture tortures any IMAP server over the wire (Cistern,
// Dovecot, anything on a socket) and checks the guarantees of DESIGN.md
// §2 against what every session was told. It is `cistern torture imap`.
//
// # Actors
//
//	actor              does                                          records
//	IMAP session (N)   a weighted random mix: SELECT/EXAMINE, FETCH  every command, every response
//	                   (flags, envelope, body, its text, partials,
//	                   RFC822.SIZE), STORE (+/- flags and
//	                   keywords; now and then a flood of 30 new
//	                   keywords, more than Maildir's 26 letters),
//	                   SEARCH, COPY and MOVE to Aux,
//	                   EXPUNGE and UID EXPUNGE, APPEND (one in 25
//	                   with junk after its literal: BAD, nothing
//	                   kept), NOOP, IDLE; half of them fetch MODSEQ
//	                   with FLAGS when the server offers CONDSTORE,
//	                   and make one STORE in 3 conditional (UNCHANGEDSINCE,
//	                   condstore.go)
//	resync (N)         with CONDSTORE: select, learn UID, flags,      every command, every response;
//	                   MODSEQ and HIGHESTMODSEQ, disconnect, stay     the model and HIGHESTMODSEQ it
//	                   away 1-5 s, come back with SELECT (QRESYNC     left with, the truth fetched
//	                   (uidvalidity modseq known-uids)) or with       right after it came back
//	                   UID FETCH (CHANGEDSINCE modseq VANISHED)
//	                   (without QRESYNC: CHANGEDSINCE and UID
//	                   SEARCH ALL), then UID FETCH 1:* (FLAGS
//	                   MODSEQ) and NOOP (resync.go)
//	LMTP deliverer     one transaction at a time                     made (before MAIL), accepted (250)
//	foreign renamer    flag renames in cur/, new/ → cur/ moves       \Deleted (T) marks, before the rename
//	foreign deliverer  tmp/ → new/, fsynced                          made, accepted (after the rename)
//	foreign deleter    unlinks                                       the deletion, before the unlink
//	aux lifecycle      RENAME Aux to a fresh name and back (now and  every command, every response;
//	                   then giving Aux a new life while the old one  DELETE and RENAME before they
//	                   is away), DELETE and CREATE it, APPEND to it, are sent, CREATE and RENAME
//	                   SELECT/EXAMINE and FETCH it, NOOP            after their OK
//	folder lifecycle   sibling folders of Aux (Aux-life1, ...):      the same
//	                   CREATE x, APPEND, SELECT/EXAMINE it, DELETE x
//	                   while selected, NOOP, CREATE x again, APPEND;
//	                   CREATE of a name holding a control character
//	foreign folders    rename Aux's directory away and back; rm -r   the removal, before the rename
//	                   of a sibling's directory, then a fresh        or the rm -r; the mkdir after
//	                   Maildir there
//	foreign links      symbolic links: folder links (.Aux-link-…)    every response of every
//	                   and message links in new/ and cur/ to decoys  connection, checked for the
//	                   outside the account holding a marker; LIST,   decoys' marker and the link
//	                   STATUS, SELECT, FETCH, STORE \Seen of the     folders' names; the decoys,
//	                   link folders                                  unchanged at the end
//	pre-login (N)      connections that never log in: idle, or a     each connect; a login probe
//	                   LOGIN line a byte a second; reopened when     every 250 ms: no greeting, BYE,
//	                   closed; from 127.77.x.y for a 127/8 server    or no OK is login_starved
//	hostile            APPEND to Aux-hostile messages built to make  every FETCH's response size,
//	                   ENVELOPE and BODYSTRUCTURE huge, FETCH both,  addresses and parameters
//	                   expunge all but the last few (hostile.go)
//
// The foreign writers run only with Config.Maildir, the mailbox's
// directory on this machine, and take no lock, as mutt and procmail do;
// the foreign folder actor works in the Maildir++ root that holds it
// (Maildir itself for INBOX) and never renames or removes the mailbox
// under test. The lifecycle actors run when their rates
// (Config.AuxLifecycle, FolderLifecycle, ForeignFolders, ForeignLinks) are above 0,
// and so does the hostile actor (Config.Hostile);
// each IMAP one has two connections: one that creates, deletes, renames
// and appends and never selects, and one that selects the mailboxes and
// so is there when they are deleted or renamed.
//
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
// EXPUNGE (when sent, when done), UID MOVE (when sent, and its
// answer), foreign deletions (before the unlink), and every change of
// a mailbox name: DELETE, RENAME (of both names) and the foreign folder
// renames and removals (when sent, when done), CREATE, RENAME to a name
// and foreign mkdir that succeeded (a new life of the name). An intent
// is recorded before the command is written, so that a server's report
// of its effect can only be read after it. Every APPEND, COPY and MOVE is
// recorded with the Message-IDs it carries, its target, its answer (OK;
// NO or BAD, which promise that nothing was done; none, when the
// connection was cut: it may or may not have run) and the UIDs its
// APPENDUID or COPYUID gave.
//
// It also holds every (mailbox name, UIDVALIDITY, UID) any session was
// told of, in every mailbox, with the message (Message-ID) it names and
// who was told when: from APPENDUID, COPYUID (of COPY and MOVE into Aux)
// and FETCH of UID and Message-ID.
//
// # Mailboxes other than the one under test
//
// Aux, its siblings and the names Aux is renamed to hold only what
// COPY, MOVE and APPEND put there; no actor expunges in them. So the
// only removal there is a change of the name: a DELETE or RENAME of it,
// a foreign rename or removal of its directory. A life of a name is a
// (name, UIDVALIDITY) pair; it began with the last creation of the name
// sent before the run first heard of it. A session that selects such a
// mailbox fetches the UID and Message-ID of every message in it (a
// look); every UID of that life told before the SELECT was sent must be
// in the look, and an EXPUNGE told there must follow a removal of the
// name, in both cases a removal sent before and finished after the life
// began. A session whose selected mailbox was removed that way may be
// told BYE (Dovecot disconnects it) or NO: it connects again and goes
// on. A BYE with no such removal ends the actor with an error, as it
// does every session on the mailbox under test.
//
// # The model of each session
//
// Each session keeps its own view as the server described it to it
// (RFC 9051 §2.3.1): sequence number → UID (unknown until learned),
// UID → flags. EXISTS grows it, EXPUNGE n removes n, SELECT starts it
// anew; untagged FETCH must name a sequence number in range and a UID
// consistent with the view. A session's own STORE .SILENT is applied to
// its model, since the server does not echo it. It also keeps, per
// selection, the keywords of the last FLAGS response and which UIDs it
// was shown with or without \Recent; the run keeps which read-write
// selection was shown each UID \Recent (recent.go).
//
// Every MODSEQ and HIGHESTMODSEQ of the mailbox under test any session
// was told is kept with when it came (resync.go). A server that offers
// neither CONDSTORE nor QRESYNC runs no resync actor and no modseq
// check, and Result.Notes says so.
//
// # Violations
//
//	kind                    reported when
//	phantom_expunge         a session is told EXPUNGE (or VANISHED, or
//	                        VANISHED (EARLIER) of a UID it knew) of a message
//	                        that no actor had removed before (no foreign
//	                        deletion, no MOVE of it the server did not
//	                        refuse, no \Deleted mark followed by an EXPUNGE
//	                        or UID EXPUNGE still running or later), or that
//	                        the server still shows at the end (or, after a
//	                        resync, in the fetch right after); a
//	                        message seen once that is gone at the end with no
//	                        such cause; a file still on disk that the server
//	                        no longer shows; in another mailbox, an EXPUNGE,
//	                        or a message a FETCH had shown missing from a
//	                        later look, with no removal of the name since
//	                        its life began
//	uid_change              a sequence number's UID changes; a message shows
//	                        up under a UID it did not have (APPENDUID
//	                        included) while its old UID is gone from the
//	                        view; a FETCH of a body or ENVELOPE shows another
//	                        message than the UID's; in another mailbox, a
//	                        look shows a message under another UID than it
//	                        was told of in the same life
//	uid_reuse               one (mailbox name, UIDVALIDITY, UID) names two
//	                        messages (by Message-ID) over the whole run, in
//	                        any session and any life of the name: a mailbox
//	                        made again after DELETE, or after RENAME away,
//	                        with an earlier life's UIDVALIDITY and its UIDs
//	                        from 1 again (RFC 9051 §2.3.1.1); learned from
//	                        APPENDUID, COPYUID and FETCH, in every mailbox
//	duplicate               one message is visible twice in one view
//	lost                    an APPEND OK, LMTP 250 or foreign delivery that
//	                        never appeared and that no actor removed; in
//	                        another mailbox, a UID an APPENDUID or COPYUID
//	                        gave missing from a later look, with no removal
//	                        of the name since its life began
//	refused_but_done        an APPEND, COPY or MOVE answered NO (or BAD) that
//	                        was done anyway: a message whose APPEND was
//	                        refused that a FETCH shows, in any mailbox, or
//	                        that is in the Maildir at the end; in a mailbox
//	                        other than the one under test, a copy seen after
//	                        a refused COPY or MOVE of it that no COPY or MOVE
//	                        of it sent before and not refused explains (by
//	                        the UIDVALIDITY and UID its COPYUID gave, under
//	                        whatever name a RENAME gave the target since;
//	                        one that named no UID or got no answer explains
//	                        any copy); a message gone from the mailbox under
//	                        test (told EXPUNGE, or vanished) whose only cause
//	                        is a refused MOVE of it, since a refused MOVE
//	                        removes nothing. A COPY or MOVE refused while its
//	                        target is deleted or renamed is no violation by
//	                        itself: a copy that went with a deleted mailbox
//	                        is never seen, one seen under the new name is a
//	                        violation, and so is the MOVE's message gone from
//	                        the source (the mailbox under test is never
//	                        deleted or renamed), when the server itself
//	                        deleted or renamed it: it orders those with its
//	                        changes. When a foreign program (taking no lock)
//	                        moved or removed the target's directory while the
//	                        COPY or MOVE ran, the NO is the truth as far as
//	                        any server can tell and what went with the
//	                        directory is that program's doing: such a MOVE
//	                        counts as one that may have happened. A STORE
//	                        of a keyword flood answered NO whose keywords
//	                        the server shows later (the mailbox's FLAGS, a
//	                        message's FETCH FLAGS) used keyword room all the
//	                        same (keywords.go)
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
//	uidvalidity             a UIDVALIDITY of the mailbox under test other
//	                        than the first one
//	flags_diverge           after the actors stop and every session has
//	                        listened in NOOP rounds until one brings no news:
//	                        a session's model differs from its final
//	                        UID FETCH 1:*, sessions' views differ from a new
//	                        session's, or (with a Maildir) a file's flags
//	                        differ from the server's, or the server shows a
//	                        message whose file is gone
//	login_starved           with the pre-login actor: a login of the
//	                        torture's own got no greeting, a BYE for one, or
//	                        no OK (a server whose slots strangers fill)
//	oversized_response      with Config.Hostile: a FETCH ENVELOPE or
//	                        BODYSTRUCTURE of a message built to be huge
//	                        (hostile.go) answered with more addresses or
//	                        parameters than Cistern's documented caps
//	                        (internal/message/limits.go), a response over
//	                        message.MaxEncodedStructure or past the
//	                        reader's bounds, or a NO or BAD
//	bad_name_accepted       with the folder lifecycle: a CREATE of a name
//	                        that holds a control character once decoded
//	                        (RFC 9051 §5.1; U+0000, CR LF, U+001F, U+0085
//	                        in modified UTF-7) answered OK
//	recent_wrong            \Recent (RFC 3501 §2.3.2) not in exactly one
//	                        session: a message shown \Recent to two
//	                        read-write selections (each SELECT is one; a
//	                        session that selects again is another); a
//	                        message that gains or loses \Recent within one
//	                        selection; at the end, a message made during the
//	                        run that no read-write selection was shown
//	                        \Recent, not even the checker's fresh SELECT,
//	                        unless a selection that ended before it
//	                        identified a message of that UID range may have
//	                        taken it (recent.go)
//	unannounced_keyword     a FETCH carries a keyword that the selection's
//	                        last FLAGS response did not list (RFC 3501
//	                        §7.2.6, RFC 9051 §7.3.5)
//	body_wrong              a FETCH of BODY[], BODY[TEXT], BODY[]<o.n> or
//	                        RFC822.SIZE that is not the bytes the run gave
//	                        the message, with CRLF line ends (content.go):
//	                        an APPEND's literal, a foreign file (written
//	                        with bare LF half the time), an LMTP message's
//	                        text
//	resync_missed           with the resync actor: what the resync reported
//	                        (VANISHED (EARLIER), FETCH) does not bring the
//	                        session's old model to the truth fetched right
//	                        after in the same session: a message of the
//	                        model whose flags there differ from the model's
//	                        and from what the resync reported, while its
//	                        MODSEQ there is not above the resync's
//	                        HIGHESTMODSEQ (a newer change may be missing);
//	                        a message of the model gone with no VANISHED
//	                        (without QRESYNC: still in UID SEARCH ALL)
//	modseq_regressed        a change of a message without a higher MODSEQ: a
//	                        FETCH showing other flags than the last one with
//	                        MODSEQ in the same selection, at a MODSEQ not
//	                        above that one's; in the fetch right after a
//	                        resync's SELECT, other flags than the message
//	                        had at the highest MODSEQ told for it (by any
//	                        session) before the SELECT was sent, at a MODSEQ
//	                        not above it; a HIGHESTMODSEQ of a SELECT or
//	                        EXAMINE below one received before it was sent.
//	                        Per UIDVALIDITY. A lower MODSEQ with the same
//	                        flags is no change (Dovecot shows its log's head
//	                        modseq for every message until its index tracks
//	                        modseqs)
//	unchangedsince_wrong    with CONDSTORE: a UID STORE (UNCHANGEDSINCE m)
//	                        (RFC 7162 §3.1.3) that named MODIFIED a message
//	                        the fetch right after shows at a MODSEQ not above
//	                        m while no session was ever told one above m for
//	                        it; that changed a message, not named MODIFIED,
//	                        whose MODSEQ above m (not above the one after) was
//	                        told before it was sent; or that named MODIFIED a
//	                        message whose flags went from those fetched right
//	                        before to what it asked while no other command
//	                        that may change flags ran (condstore.go)
//	objectid_wrong          with OBJECTID (sessions fetch EMAILID with FLAGS
//	                        now and then): in the mailbox under test, a
//	                        message told another EMAILID than before (RFC
//	                        8474 §5.1: it never changes), or two messages
//	                        (two Message-IDs, so two contents) told one
//	                        EMAILID. Copies are not judged: the mailbox
//	                        under test holds none, and a copy keeping its
//	                        EMAILID is a SHOULD that Maildir cannot always
//	                        keep (objectid.go)
//	search_modseq_wrong     with CONDSTORE: right after a resync's truth
//	                        fetch, UID SEARCH MODSEQ m (m one above the
//	                        HIGHESTMODSEQ the resync started from; RFC 7162
//	                        §3.1.5: every message whose MODSEQ is m or more)
//	                        left out a message the truth showed at a MODSEQ
//	                        of m or more and the session was told no
//	                        expunge of (MODSEQs never go down: more is
//	                        allowed, a message changed since)
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
