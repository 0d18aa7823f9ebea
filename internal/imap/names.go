package imap

import "fmt"

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
//     (backend.path).

// forbiddenChar returns the first control character in name.
func forbiddenChar(name string) (rune, bool) {
	for _, r := range name {
		if IsControl(r) {
			return r, true
		}
	}
	return 0, false
}

// IsControl reports whether r is a character no mailbox name may hold
// (RFC 9051 §5.1): C0, DEL or C1.
func IsControl(r rune) bool {
	return r <= 0x1f || (r >= 0x7f && r <= 0x9f)
}

// HasControl reports whether name holds a character IsControl refuses.
func HasControl(name string) bool {
	_, bad := forbiddenChar(name)
	return bad
}

// checkNewName refuses a new mailbox name (CREATE, RENAME's target,
// SUBSCRIBE) that holds a control character, as Dovecot words it.
func checkNewName(name string) error {
	if r, bad := forbiddenChar(name); bad {
		return no("CANNOT", fmt.Sprintf("New mailbox name contains forbidden character (U+%04X)", r))
	}
	return nil
}
