package auth

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrBadCredentials: the user name or the password is wrong. An
	// Authenticator gives the same error, after the same work, for an
	// unknown user, a wrong password, a user without a usable password
	// and a malformed name, so that a client cannot tell them apart.
	ErrBadCredentials = errors.New("auth: bad credentials")

	// ErrUnavailable: the passwd-file cannot be read; nothing can be
	// decided until it can. It says nothing about the user.
	ErrUnavailable = errors.New("auth: user database unavailable")

	// ErrUnknownScheme: a stored password names a scheme this package
	// does not verify, or Hash was asked for a scheme it does not write.
	// The error text names the scheme.
	ErrUnknownScheme = errors.New("auth: unknown password scheme")

	// ErrMalformedHash: a stored password has a known scheme but cannot
	// be parsed (truncated hash, bad parameters, unsupported variant).
	ErrMalformedHash = errors.New("auth: malformed password hash")

	// ErrNoPassword: the stored password is empty; nobody can log in as
	// this user.
	ErrNoPassword = errors.New("auth: user has no password")

	// ErrBadPassword: a password given to Hash cannot be stored: empty,
	// longer than MaxPasswordLen, longer than the scheme allows, or (for
	// PLAIN) containing a byte that the passwd-file cannot hold.
	ErrBadPassword = errors.New("auth: password cannot be stored")

	// ErrBadName: a user name breaks the rules of ValidName.
	ErrBadName = errors.New("auth: invalid user name")

	// ErrUserExists: Add found the user already in the file.
	ErrUserExists = errors.New("auth: user already exists")

	// ErrNoSuchUser: SetPassword or Delete did not find the user.
	ErrNoSuchUser = errors.New("auth: no such user")

	// ErrBadField: a field given to Add cannot be written in the
	// passwd-file format (it holds ':', a line break or a NUL).
	ErrBadField = errors.New("auth: field cannot be written")

	// ErrMalformedPlain: a SASL PLAIN message does not have the shape of
	// RFC 4616 §2.
	ErrMalformedPlain = errors.New("auth: malformed SASL PLAIN message")

	// ErrAuthzRefused: a SASL PLAIN message asks to act as another user
	// (authzid neither empty nor equal to authcid); there are no master
	// users.
	ErrAuthzRefused = errors.New("auth: authorization identity refused")
)

// Problem is a line of a passwd-file that was skipped (or, for a
// duplicate user, ignored) when the file was read. Problems never stop a
// file from loading; they are for the operator's log.
type Problem struct {
	Line   int    // 1-based line number
	User   string // the user name on the line, when there is one
	Reason string
}

func (p Problem) String() string {
	if p.User != "" {
		return fmt.Sprintf("line %d: user %q: %s", p.Line, p.User, p.Reason)
	}
	return fmt.Sprintf("line %d: %s", p.Line, p.Reason)
}

// FileError is a failure to read or write a passwd-file.
type FileError struct {
	Op   string // "load", "add", "passwd", "delete"
	Path string
	Err  error
}

func (e *FileError) Error() string { return "auth: " + e.Op + " " + e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }
