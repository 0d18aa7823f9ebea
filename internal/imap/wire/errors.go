package wire

import (
	"errors"
	"fmt"
)

// Response codes carried by *Error. RFC 9051 §7.1.
const (
	// CodeTooBig marks a command refused because it exceeds a limit:
	// line length, literal size, literal count or nesting depth.
	// RFC 9051 §7.1 (TOOBIG), RFC 7888 §4.
	CodeTooBig = "TOOBIG"
)

// Error is a syntax or limit error in a client command. The server answers
// it with a tagged BAD carrying Code (when not empty) and Msg, then calls
// Decoder.Discard. Msg is written for the client: it names what was
// expected, never internal state.
//
// Syntax errors have no Code: RFC 9051 §7.1 reserves PARSE for failures to
// parse a stored message, not a command.
type Error struct {
	Code string // resp-text-code atom such as CodeTooBig, or ""
	Msg  string
}

func (e *Error) Error() string {
	if e.Code != "" {
		return "[" + e.Code + "] " + e.Msg
	}
	return e.Msg
}

// ErrUnrecoverable is returned by Decoder.Discard when the decoder cannot
// find the start of the next command within its limits (a line or a
// non-synchronizing literal beyond every bound). The server answers
// "* BYE" and closes the connection.
var ErrUnrecoverable = errors.New("wire: cannot resynchronize with the client")

func syntaxErr(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...)}
}

func tooBig(format string, args ...any) *Error {
	return &Error{Code: CodeTooBig, Msg: fmt.Sprintf(format, args...)}
}

// IsProtocolError reports whether err is a client mistake (answer BAD and
// Discard) rather than a failure of the connection (close it).
func IsProtocolError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
