package auth

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// ParsePlain decodes the client's message of the SASL PLAIN mechanism
// (RFC 4616 §2), already base64-decoded:
//
//	message = [authzid] NUL authcid NUL passwd
//
// authcid and passwd must be non-empty, every part UTF-8 without NUL,
// authcid at most MaxNameLen bytes (RFC 4616 requires servers to take
// 255) and passwd at most MaxPasswordLen. There are no master users, so an
// authzid other than empty or authcid itself is refused with
// ErrAuthzRefused; other failures are ErrMalformedPlain.
func ParsePlain(b []byte) (authz, user, pass string, err error) {
	parts := bytes.Split(b, []byte{0})
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("%w: want 2 NUL separators, got %d", ErrMalformedPlain, len(parts)-1)
	}
	for i, p := range parts {
		if !utf8.Valid(p) {
			return "", "", "", fmt.Errorf("%w: %s is not UTF-8", ErrMalformedPlain, [...]string{"authzid", "authcid", "passwd"}[i])
		}
	}
	authz, user, pass = string(parts[0]), string(parts[1]), string(parts[2])
	switch {
	case user == "":
		return "", "", "", fmt.Errorf("%w: empty authcid", ErrMalformedPlain)
	case pass == "":
		return "", "", "", fmt.Errorf("%w: empty passwd", ErrMalformedPlain)
	case len(user) > MaxNameLen:
		return "", "", "", fmt.Errorf("%w: authcid longer than %d bytes", ErrMalformedPlain, MaxNameLen)
	case len(pass) > MaxPasswordLen:
		return "", "", "", fmt.Errorf("%w: passwd longer than %d bytes", ErrMalformedPlain, MaxPasswordLen)
	case authz != "" && authz != user:
		return "", "", "", fmt.Errorf("%w: %q may not act as %q", ErrAuthzRefused, user, authz)
	}
	return authz, user, pass, nil
}
