package imap

import (
	"errors"
	"fmt"

	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/mailboxname"
)

// nameErr turns a *wire.NameError into the NO with code that the
// command gives such a name (above); any other error is returned as it
// is.
func nameErr(err error, code string) error {
	var ne *wire.NameError
	if errors.As(err, &ne) {
		return no(code, ne.Error())
	}
	return err
}

// Mailbox names that are no valid encoding — modified UTF-7 that is not
// (RFC 3501 §5.1.3: "&Jjo", "&AGE-" for "a", "!#$&'+,-.0"), or, with
// UTF8=ACCEPT, bytes that are not UTF-8 — are syntactically valid
// astrings, so no BAD; they name no mailbox that exists or could be
// made. One decoding (wire.Decoder.Mailbox, *wire.NameError) and one
// answer, in Dovecot's words:
//
//   - CREATE and RENAME (the new name): NO [CANNOT];
//   - every other command naming a mailbox, UNSUBSCRIBE included: NO
//     [NONEXISTENT]. Dovecot lets UNSUBSCRIBE remove a name without a
//     mailbox, but not one that is no valid encoding: it refuses those
//     before looking (client_find_namespace), as SUBSCRIBE;
//   - APPEND, COPY and MOVE: NO [NONEXISTENT], not [TRYCREATE], since
//     CREATE would refuse the name (RFC 9051 §6.3.12: TRYCREATE only when
//     a CREATE could make the append succeed); likewise a name holding a
//     control character (below);
//   - LIST and LSUB: such a pattern (or reference) matches nothing, OK.
//
// Mailbox names — RFC 9051 §5.1: a name holds no control character
// (U+0000–U+001F, U+007F, U+0080–U+009F; RFC 9755 §3, whose wording
// Dovecot's answer follows). Modified UTF-7 (and UTF8=ACCEPT) can spell
// any of them ("&AAA-" is NUL, "&AA0ACg-" CR LF), and a name holding
// CR LF reaches a UTF8=ACCEPT client as a literal holding whatever
// follows, "* BYE" included. So:
//
//   - CREATE, RENAME (the new name) and SUBSCRIBE refuse such a name,
//     NO [CANNOT];
//   - LIST and LSUB (and LIST-STATUS) skip a folder or a subscription
//     whose name holds one (made by another program), and log it;
//   - every other command names no such mailbox: the backend finds none
//     (mailboxname.Folder).
//
// The rule itself is package mailboxname's (HasControl).

// checkNewName refuses a new mailbox name (CREATE, RENAME's target,
// SUBSCRIBE) that holds a control character, as Dovecot words it.
func checkNewName(name string) error {
	if r, bad := mailboxname.FirstControl(name); bad {
		return no("CANNOT", fmt.Sprintf("New mailbox name contains forbidden character (U+%04X)", r))
	}
	return nil
}

// missingDest answers err, the failure of an APPEND, COPY or MOVE into
// name: a missing mailbox is NO [TRYCREATE] (RFC 9051 §6.3.12, §6.4.7),
// in Dovecot's words, unless CREATE would refuse the name (above), when
// it stays NO [NONEXISTENT]. Any other error is returned as it is.
func (c *conn) missingDest(name string, err error) error {
	if !errors.Is(err, ErrNoSuchMailbox) || mailboxname.HasControl(name) {
		return err
	}
	if !c.utf8 {
		name = mailboxname.EncodeMUTF7(name)
	}
	return no("TRYCREATE", "Mailbox doesn't exist: "+sanitize(name))
}
