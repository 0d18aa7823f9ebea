package imap

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/message"
)

// The protocol engine reaches storage only through these interfaces
// (DESIGN.md §6): it never touches files, and storage never speaks IMAP.
// Mailbox names are Go strings in UTF-8 with '.' between hierarchy
// levels, "INBOX" for the inbox; flags are IMAP flag strings (`\Seen`,
// keywords as they are).

// Backend authenticates users.
type Backend interface {
	// Login checks a user name and password. A wrong password and an
	// unknown user both give ErrAuthFailed.
	Login(ctx context.Context, username, password string) (User, error)
}

// Errors a backend returns that the engine turns into response codes
// (RFC 5530). Any other error is an internal one: the client gets a NO
// with [SERVERBUG], never the error's text.
var (
	ErrAuthFailed       = errors.New("authentication failed")       // NO [AUTHENTICATIONFAILED]
	ErrNoSuchMailbox    = errors.New("no such mailbox")             // NO [NONEXISTENT]
	ErrMailboxExists    = errors.New("mailbox exists")              // NO [ALREADYEXISTS]
	ErrBadMailboxName   = errors.New("bad mailbox name")            // NO [CANNOT]
	ErrNotSelectable    = errors.New("mailbox cannot be selected")  // NO [CANNOT]
	ErrTooBig           = errors.New("message too big")             // NO [TOOBIG]
	ErrOverQuota        = errors.New("over quota")                  // NO [OVERQUOTA]
	ErrNoSpace          = errors.New("not enough disk space")       // NO [OVERQUOTA], saying so
	ErrNoPerm           = errors.New("permission denied")           // NO [NOPERM]
	ErrInUse            = errors.New("mailbox busy")                // NO [INUSE]
	ErrLocked           = errors.New("mailbox locked")              // NO [INUSE], "Mailbox is locked by another process"
	ErrKeywordsFull     = errors.New("no room for another keyword") // NO [LIMIT]
	ErrTooManyMailboxes = errors.New("too many mailboxes")          // NO [LIMIT], "Maximum number of mailboxes reached"
	ErrUnavailable      = errors.New("temporarily unavailable")     // NO [UNAVAILABLE]
	ErrNoSuchMessageErr = errors.New("no such message")             // NO [NONEXISTENT] / RFC 2180 for FETCH
	// ErrSelectedGone: the selected mailbox was deleted or renamed
	// meanwhile; the session ends with BYE, as Dovecot's does.
	ErrSelectedGone = errors.New("selected mailbox deleted or renamed")
)

// User is one logged-in user's view of the storage.
type User interface {
	Username() string
	// Folders lists every mailbox, INBOX first.
	Folders(ctx context.Context) ([]FolderInfo, error)
	Create(ctx context.Context, name, specialUse string) error
	Delete(ctx context.Context, name string) error
	Rename(ctx context.Context, from, to string) error
	SetSubscribed(ctx context.Context, name string, on bool) error
	Status(ctx context.Context, name string) (StatusInfo, error)
	// Select opens a mailbox for a session; the session Closes it.
	Select(ctx context.Context, name string) (Mailbox, error)
	// Append adds a message to a mailbox, durably before it returns. size
	// is the message's length when known (a literal's; -1: unknown), so
	// that a quota refuses it before a byte is written. A read of r that
	// fails (the command's line does not end after the literal) stores
	// nothing.
	Append(ctx context.Context, name string, r io.Reader, size int64, flags []string, date time.Time) (uidValidity, uid uint32, err error)
	// Close ends the user's session with the storage.
	Close() error
}

// FolderInfo describes one mailbox for LIST.
type FolderInfo struct {
	Name        string
	SpecialUse  string // `\Sent`, ... or ""
	HasChildren bool
	NoSelect    bool
	Subscribed  bool
	// NonExistent: a subscribed name without a mailbox (RFC 5258 §3.4),
	// listed by LSUB and LIST (SUBSCRIBED) only.
	NonExistent bool
}

// StatusInfo is what STATUS reports.
type StatusInfo struct {
	Messages, Unseen, Deleted, Recent uint32
	UIDNext, UIDValidity              uint32
	Size                              int64
	// HighestModSeq is the mailbox's HIGHESTMODSEQ (RFC 7162 §3.1.6).
	HighestModSeq uint64
	MailboxID     string // RFC 8474 §4.3 (objectid.go)
}

// MessageInfo is what the engine knows of a message without reading it.
type MessageInfo struct {
	UID          uint32
	Flags        []string
	Size         int64 // RFC822.SIZE, with CRLF line endings; from Stat and Open
	InternalDate time.Time
	// ModSeq is the message's MODSEQ (RFC 7162 §3.1.1) as of its Flags:
	// both come from one snapshot.
	ModSeq uint64
}

// UIDRange is the closed range of UIDs Lo to Hi.
type UIDRange struct{ Lo, Hi uint32 }

// Update is what changed in a mailbox since the session last took
// updates, made by others (other sessions, deliveries, other programs).
type Update struct {
	Expunged []uint32      // ascending
	New      []MessageInfo // UID order
	Flags    []MessageInfo // UID order, latest flags
	// Void: UIDVALIDITY changed; every UID the session knows is gone.
	Void bool
	// Gone: the mailbox was deleted or renamed (by anyone); the session
	// cannot go on with it.
	Gone bool
	// HighestModSeq is the highest HIGHESTMODSEQ of the changes
	// published so far, the session's own included: once it has told
	// the client this update and its own changes, the client knows every
	// change at or below it.
	HighestModSeq uint64
}

// Mailbox is a session's handle on its selected mailbox.
type Mailbox interface {
	ObjectIDs // RFC 8474 (objectid.go)
	UIDValidity() uint32
	UIDNext() uint32
	// Messages are every message now, in UID order, with their flags.
	Messages() []MessageInfo
	// Deleted are the UIDs of the messages with \Deleted now, ascending:
	// what EXPUNGE and CLOSE remove.
	Deleted() []uint32
	// UIDs are every message's UID now, ascending, and the sequence
	// number of the first message without \Seen (0: none): what SELECT
	// needs, without the flags of every message.
	UIDs() (uids []uint32, firstUnseen uint32)
	// PermanentFlags lists the keywords defined; the engine adds the
	// system flags and `\*`.
	Keywords() []string
	// Recent hands out \Recent (RFC 3501 §2.3.2): the messages with
	// UIDs from first up to, not including, upTo are recent for the
	// session (none when first >= upTo). With claim the session takes
	// them, and no other session sees them recent; without (EXAMINE) it
	// only looks.
	Recent(upTo uint32, claim bool) (first uint32)
	// Sync looks for changes now; they arrive through Take.
	Sync(ctx context.Context) error
	// Notify is signalled when Take has something.
	Notify() <-chan struct{}
	Take() Update
	// Store changes flags and returns the messages afterwards.
	Store(ctx context.Context, uids []uint32, op flagop.Op, flags []string) ([]MessageInfo, error)
	// StoreUnchangedSince is Store for the messages whose MODSEQ is at
	// most since (RFC 7162 §3.1.3); the test and the change of each
	// message are one step, against every other change. modified are
	// the UIDs that failed it, ascending; msgs are the others.
	StoreUnchangedSince(ctx context.Context, uids []uint32, op flagop.Op, flags []string, since uint64) (msgs []MessageInfo, modified []uint32, err error)
	// HighestModSeq is the mailbox's HIGHESTMODSEQ (RFC 7162 §3.1.2.1):
	// every change at or below it is in what Messages and UIDs return
	// afterwards. Read it before them.
	HighestModSeq() uint64
	// ExpungedSince returns the UIDs expunged with a MODSEQ above
	// modseq, ascending and disjoint: every one of them, and maybe UIDs
	// expunged earlier or never given (RFC 7162 §3.2.5.1 allows that),
	// never a UID the mailbox holds.
	ExpungedSince(modseq uint64) []UIDRange
	// ChangedSince returns the messages whose MODSEQ is above modseq
	// now, in UID order: what CHANGEDSINCE and SELECT (QRESYNC) report,
	// without the flags of every message (Messages) when few changed.
	ChangedSince(modseq uint64) []MessageInfo
	// Expunge removes messages and returns the UIDs removed.
	Expunge(ctx context.Context, uids []uint32) ([]uint32, error)
	// Copy copies messages into another mailbox: COPYUID data. It
	// copies every one or none: when one is gone meanwhile, it leaves
	// no copy behind and returns ErrNoSuchMessageErr (RFC 2180 §4.4.1).
	Copy(ctx context.Context, uids []uint32, dest string) (destValidity uint32, src, dst []uint32, err error)
	// Stat returns a message's size and internal date without reading it.
	Stat(ctx context.Context, uid uint32) (MessageInfo, error)
	// Structure returns a message's parsed structure (ENVELOPE and
	// BODYSTRUCTURE) and info, from a cache when the backend has one.
	Structure(ctx context.Context, uid uint32) (*message.Structure, MessageInfo, error)
	// Open returns a message's bytes (with CRLF line endings) and info:
	// for SEARCH, which reads whole messages. FETCH streams (OpenBody).
	Open(ctx context.Context, uid uint32) ([]byte, MessageInfo, error)
	// OpenBody opens a message's file for FETCH to stream sections from
	// (message.CRLFReader does the CRLF conversion and the slicing). With
	// structure, Body.Structure is set: from a cache, or parsed, which
	// reads the whole file once (the memory ReadSizer tells for a
	// Structure). Without, Body.Size comes from a cache or from one
	// counting pass over the file, with a fixed buffer. The caller
	// closes Body.File.
	OpenBody(ctx context.Context, uid uint32, structure bool) (Body, MessageInfo, error)
	Close() error
}

// MessageFile is a message's file open for reading, its bytes as stored
// (line endings as the file has them).
type MessageFile interface {
	io.ReaderAt
	io.Closer
}

// Body is a message opened by OpenBody.
type Body struct {
	File MessageFile
	// Size is the file's size after message.ToCRLF: RFC822.SIZE, the
	// length of BODY[]. The file may change underneath (another program
	// rewrote it): a read then ends early with message.ErrShortFile.
	Size int64
	// Structure, when asked for, with offsets into File
	// (message.ParseFile).
	Structure *message.Structure
}

// ReadSizer is implemented by a Mailbox that can tell, without reading
// a message, how many bytes of memory Open holds for it (the file and
// its CRLF copy), or, with structure, Structure and OpenBody with
// structure (0 when the structure is cached and the file is not read):
// what the engine takes from the response memory budget (budget.go)
// before reading. Without it the engine takes twice Stat's size.
type ReadSizer interface {
	ReadSize(ctx context.Context, uid uint32, structure bool) (int64, error)
}

// Mover is implemented by a Mailbox that moves messages itself (RFC
// 6851 MOVE): each message is in exactly one of the two mailboxes at
// every moment, and an error means that none was moved. expunged are the
// source UIDs it removed, for the engine to announce after the COPYUID
// response. The engine moves through a Mailbox without it by Copy, then
// Expunge of the originals.
type Mover interface {
	Move(ctx context.Context, uids []uint32, dest string) (destValidity uint32, src, dst, expunged []uint32, err error)
}
