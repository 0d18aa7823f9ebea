package delivery

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/maildir"
)

// Sentinel errors. Callers branch on them with errors.Is, or on KindOf.
var (
	// ErrUnknownUser: no user of the passwd-file matches the address.
	// Users implementations wrap it for a name they do not know.
	ErrUnknownUser = errors.New("delivery: unknown user")

	// ErrBadAddress: an address is empty, too long or holds a control
	// character (it would break the header line it goes into).
	ErrBadAddress = errors.New("delivery: bad address")

	// ErrTooBig: the message is longer than Deliverer.MaxSize.
	ErrTooBig = errors.New("delivery: message too big")

	// ErrBadMessage: the message cannot be stored as it is. ErrNUL and
	// ErrEmpty wrap it.
	ErrBadMessage = errors.New("delivery: bad message")

	// ErrNUL: the message holds a NUL byte, which RFC 5322 forbids and an
	// IMAP literal cannot carry.
	ErrNUL = fmt.Errorf("%w: it contains NUL bytes", ErrBadMessage)

	// ErrEmpty: the message has no bytes at all.
	ErrEmpty = fmt.Errorf("%w: it is empty", ErrBadMessage)

	// ErrCannotCreate: the user's Maildir, or the folder asked to be
	// created, cannot be made.
	ErrCannotCreate = errors.New("delivery: cannot create the mailbox")

	// ErrNoAccess: the user's Maildir, or the folder asked for, exists
	// but this process may not look inside it (a permission error). The
	// message is not filed elsewhere: the sender retries once the
	// operator has fixed the permissions.
	ErrNoAccess = errors.New("delivery: the mailbox exists but cannot be used")
)

// Kind is the class of a delivery outcome, which each front maps to its
// answer in one place.
type Kind int

// The kinds of outcome.
const (
	Delivered    Kind = iota // durably in the mailbox
	UnknownUser              // ErrUnknownUser
	BadAddress               // ErrBadAddress
	OverQuota                // store.ErrOverQuota
	TooBig                   // ErrTooBig
	BadMessage               // ErrBadMessage (ErrNUL, ErrEmpty)
	CannotCreate             // ErrCannotCreate
	DiskFull                 // no room on the disk (maildir.NoSpace): ENOSPC, EDQUOT
	NoAccess                 // ErrNoAccess, or any permission error
	Temporary                // anything else: worth retrying later
)

var kindNames = [...]string{"delivered", "unknown user", "bad address", "over quota", "too big", "bad message", "cannot create", "disk full", "no access", "temporary failure"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// KindOf returns the kind of a delivery error; nil is Delivered.
func KindOf(err error) Kind {
	switch {
	case err == nil:
		return Delivered
	case errors.Is(err, ErrUnknownUser):
		return UnknownUser
	case errors.Is(err, ErrBadAddress):
		return BadAddress
	case errors.Is(err, store.ErrOverQuota):
		return OverQuota
	case errors.Is(err, ErrTooBig):
		return TooBig
	case errors.Is(err, ErrBadMessage):
		return BadMessage
	case maildir.NoSpace(err):
		// Before CannotCreate: a Maildir that a full disk kept from
		// being made is made once there is room.
		return DiskFull
	case errors.Is(err, ErrCannotCreate):
		return CannotCreate
	case errors.Is(err, ErrNoAccess), errors.Is(err, fs.ErrPermission):
		return NoAccess
	}
	return Temporary
}
