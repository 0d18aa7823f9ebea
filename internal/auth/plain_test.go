package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePlain(t *testing.T) {
	tests := []struct {
		name              string
		in                string
		authz, user, pass string
		err               error
	}{
		{"no authzid", "\x00tim\x00tanstaaftanstaaf", "", "tim", "tanstaaftanstaaf", nil},
		{"authzid is authcid", "tim\x00tim\x00secret", "tim", "tim", "secret", nil},
		{"utf-8", "\x00jörg\x00pässwörd", "", "jörg", "pässwörd", nil},
		{"spaces kept", "\x00 a \x00 pw ", "", " a ", " pw ", nil},
		{"255-octet authcid", "\x00" + strings.Repeat("u", 255) + "\x00pw", "", strings.Repeat("u", 255), "pw", nil},
		{"other authzid", "Ursel\x00Kurt\x00xipj3plmq", "", "", "", ErrAuthzRefused},
		{"empty", "", "", "", "", ErrMalformedPlain},
		{"one NUL", "\x00tim", "", "", "", ErrMalformedPlain},
		{"three NULs", "\x00tim\x00pw\x00", "", "", "", ErrMalformedPlain},
		{"NUL in password", "\x00tim\x00p\x00w", "", "", "", ErrMalformedPlain},
		{"empty authcid", "\x00\x00pw", "", "", "", ErrMalformedPlain},
		{"empty passwd", "\x00tim\x00", "", "", "", ErrMalformedPlain},
		{"authcid too long", "\x00" + strings.Repeat("u", 256) + "\x00pw", "", "", "", ErrMalformedPlain},
		{"passwd too long", "\x00tim\x00" + strings.Repeat("p", MaxPasswordLen+1), "", "", "", ErrMalformedPlain},
		{"bad UTF-8 authcid", "\x00t\xffm\x00pw", "", "", "", ErrMalformedPlain},
		{"bad UTF-8 passwd", "\x00tim\x00p\xc3", "", "", "", ErrMalformedPlain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authz, user, pass, err := ParsePlain([]byte(tt.in))
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if authz != tt.authz || user != tt.user || pass != tt.pass {
				t.Errorf("= %q, %q, %q; want %q, %q, %q", authz, user, pass, tt.authz, tt.user, tt.pass)
			}
		})
	}
}
