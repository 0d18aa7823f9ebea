package uidlist

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrNotExist: the file does not exist. It is fs.ErrNotExist, so
	// errors.Is(err, os.ErrNotExist) holds too.
	ErrNotExist = fs.ErrNotExist

	// ErrBadHeader: the header line is missing, truncated or lacks a
	// usable UIDVALIDITY or next UID. Nothing in the file can be trusted
	// to keep client UIDs valid; keep a copy and rebuild.
	ErrBadHeader = errors.New("uidlist: bad header")

	// ErrBadVersion: the header names a version this package does not know.
	ErrBadVersion = errors.New("uidlist: unsupported version")

	// ErrLockTimeout: the lock stayed held by someone else for the whole
	// wait.
	ErrLockTimeout = errors.New("uidlist: timed out waiting for lock")

	// ErrLockLost: our lock file was removed or replaced by someone who
	// judged it stale. Nothing was written; whatever was decided under the
	// lock must be decided again under a new one.
	ErrLockLost = errors.New("uidlist: lock lost")

	// ErrWrongLock: the lock passed to a write does not belong to that
	// mailbox directory, or was already released.
	ErrWrongLock = errors.New("uidlist: not holding the lock of this directory")

	// ErrUIDOrder: records to write are not in strictly ascending UID order
	// above every UID already in the file and at or above its next UID.
	ErrUIDOrder = errors.New("uidlist: UIDs not ascending")

	// ErrDuplicateName: a record to write repeats a base name that already
	// has a UID.
	ErrDuplicateName = errors.New("uidlist: base name already has a UID")

	// ErrBadRecord: a record or header value cannot be written in the file
	// format (zero UID, empty or multi-line name, bad extension field ...).
	ErrBadRecord = errors.New("uidlist: record cannot be written")

	// ErrKeywordsFull: all 26 keyword letters are in use.
	ErrKeywordsFull = errors.New("uidlist: all 26 keyword letters in use")
)

// ParseError is a failure to use a file at all, with where it happened.
// Err is one of the sentinels (ErrBadHeader, ErrBadVersion).
type ParseError struct {
	Path   string
	Line   int // 1-based
	Reason string
	Err    error
}

func (e *ParseError) Error() string {
	return "uidlist: " + e.Path + ":" + strconv.Itoa(e.Line) + ": " + e.Reason
}

func (e *ParseError) Unwrap() error { return e.Err }

// Problem is one damaged or suspicious line, for logging. The line was
// skipped or repaired as Reason says; the rest of the file was used.
type Problem struct {
	Path   string
	Line   int    // 1-based
	Text   string // the line, shortened to maxProblemText bytes
	Reason string
}

// maxProblemText bounds the line text kept in a Problem: a damaged file may
// hold one enormous line, and Problems end up in logs.
const maxProblemText = 200

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %q", p.Path, p.Line, p.Reason, p.Text)
}

func problemText(line string) string {
	if len(line) > maxProblemText {
		return line[:maxProblemText] + "..."
	}
	return line
}
