// Package flagop is the one vocabulary for how a flag change combines
// the flags it names with a message's: STORE's FLAGS, +FLAGS and -FLAGS
// (RFC 9051 §6.4.6). The IMAP syntax (package wire) parses into it, the
// protocol engine (package imap) hands it to its storage interface, and
// the store (Mailbox.SetFlags) applies it, with no translation between
// them. It imports nothing, so that protocol code and storage may both
// use it without importing each other (DESIGN.md §6).
package flagop

// Op says how a flag change combines the given flags with a message's.
type Op int

const (
	Replace Op = iota // FLAGS: the flags a client can set become the given ones
	Add               // +FLAGS: the given flags are added
	Remove            // -FLAGS: the given flags are removed
)

// String returns the STORE data item that asks for op.
func (op Op) String() string {
	switch op {
	case Replace:
		return "FLAGS"
	case Add:
		return "+FLAGS"
	case Remove:
		return "-FLAGS"
	}
	return "flagop.Op(?)"
}
