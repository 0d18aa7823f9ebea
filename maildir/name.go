package maildir

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Flags is a set of Maildir info flags: the upper-case letters A–Z (the
// system flags D F P R S T and any others a program uses) and the
// lower-case letters a–z (keywords, mapped to names by dovecot-keywords).
// The zero value is the empty set.
type Flags uint64

// System flags of the Maildir specification.
const (
	FlagDraft   byte = 'D'
	FlagFlagged byte = 'F'
	FlagPassed  byte = 'P'
	FlagReplied byte = 'R'
	FlagSeen    byte = 'S'
	FlagTrashed byte = 'T'
)

func flagBit(c byte) (Flags, bool) {
	switch {
	case c >= 'A' && c <= 'Z':
		return 1 << (c - 'A'), true
	case c >= 'a' && c <= 'z':
		return 1 << (26 + c - 'a'), true
	}
	return 0, false
}

// ValidFlag reports whether c can be a Maildir flag letter.
func ValidFlag(c byte) bool {
	_, ok := flagBit(c)
	return ok
}

// Has reports whether the set holds the letter c.
func (f Flags) Has(c byte) bool {
	b, ok := flagBit(c)
	return ok && f&b != 0
}

// With returns the set plus letter c; a byte that is not a flag letter is
// ignored.
func (f Flags) With(c byte) Flags {
	b, _ := flagBit(c)
	return f | b
}

// Without returns the set minus letter c.
func (f Flags) Without(c byte) Flags {
	b, _ := flagBit(c)
	return f &^ b
}

// Len is the number of letters in the set.
func (f Flags) Len() int { return bits.OnesCount64(uint64(f)) }

// Keywords returns only the keyword letters (a–z) of the set.
func (f Flags) Keywords() Flags { return f & (((1 << 26) - 1) << 26) }

// System returns only the upper-case letters of the set.
func (f Flags) System() Flags { return f & ((1 << 26) - 1) }

// String returns the letters in ASCII order, as the Maildir specification
// requires them in a file name.
func (f Flags) String() string {
	if f == 0 {
		return ""
	}
	var buf [52]byte
	n := 0
	for i := 0; i < 52; i++ {
		if f&(1<<i) == 0 {
			continue
		}
		if i < 26 {
			buf[n] = 'A' + byte(i)
		} else {
			buf[n] = 'a' + byte(i-26)
		}
		n++
	}
	return string(buf[:n])
}

// ParseFlags reads a run of flag letters in any order. Duplicates are
// allowed; any other byte is an error.
func ParseFlags(s string) (Flags, error) {
	var f Flags
	for i := 0; i < len(s); i++ {
		b, ok := flagBit(s[i])
		if !ok {
			return 0, fmt.Errorf("maildir: %q is not a flag letter", s[i])
		}
		f |= b
	}
	return f, nil
}

// ErrBadName is returned for a file name that cannot be a Maildir message:
// empty, starting with a dot, or holding '/' or NUL.
var ErrBadName = errors.New("maildir: not a Maildir file name")

// Name is a parsed Maildir file name:
//
//	<base>[:<info>]          info "2,<flags>[,<rest>]" is the standard form
//
// The base name is the identity of the message within its mailbox; the
// info part changes when flags change. Parsing keeps every byte: an info
// part that is not of the "2," form, or text after the flags, is kept and
// written back unchanged by Filename.
type Name struct {
	Base string
	// HasInfo reports whether the name has a ':' at all (files in new/
	// usually do not).
	HasInfo bool
	// Flags are the letters after ":2,"; zero when the info part is not of
	// that form.
	Flags Flags
	// Info is the raw text after ':' when it is not of the "2,<flags>"
	// form (for example ":1,experimental"), or the text after the flags
	// (starting with ',') when it is. Empty otherwise.
	Info string
	// Standard reports whether the info part is of the "2,<flags>" form.
	Standard bool
}

// ParseName splits a file name into its base name and info part. Names
// without ':' are valid (the base name is then the whole name).
func ParseName(filename string) (Name, error) {
	if filename == "" || filename[0] == '.' || strings.ContainsAny(filename, "/\x00") {
		return Name{}, fmt.Errorf("%w: %q", ErrBadName, filename)
	}
	i := strings.IndexByte(filename, ':')
	if i < 0 {
		return Name{Base: filename}, nil
	}
	if i == 0 {
		return Name{}, fmt.Errorf("%w: %q", ErrBadName, filename)
	}
	n := Name{Base: filename[:i], HasInfo: true}
	info := filename[i+1:]
	if !strings.HasPrefix(info, "2,") {
		n.Info = info
		return n, nil
	}
	letters := info[2:]
	j := 0
	for j < len(letters) {
		b, ok := flagBit(letters[j])
		if !ok {
			break
		}
		n.Flags |= b
		j++
	}
	if j < len(letters) && letters[j] != ',' {
		// Not flags after all: keep the info verbatim.
		return Name{Base: n.Base, HasInfo: true, Info: info}, nil
	}
	n.Standard = true
	n.Info = letters[j:]
	return n, nil
}

// BaseName returns the base name of a file name: everything up to the
// first ':'. It does not validate.
func BaseName(filename string) string {
	if i := strings.IndexByte(filename, ':'); i >= 0 {
		return filename[:i]
	}
	return filename
}

// Filename returns the file name for n: the base name with its info part.
func (n Name) Filename() string {
	if !n.HasInfo {
		return n.Base
	}
	if !n.Standard {
		return n.Base + ":" + n.Info
	}
	return n.Base + ":2," + n.Flags.String() + n.Info
}

// WithFlags returns the name with its flags replaced. A name without a
// standard info part gets one (":2,<flags>"); a non-standard info part is
// replaced, since a flag change is the program saying what the info means.
func (n Name) WithFlags(f Flags) Name {
	if !n.Standard {
		n.Info = ""
	}
	n.HasInfo, n.Standard, n.Flags = true, true, f
	return n
}

// FilenameWithFlags is ParseName(filename).WithFlags(f).Filename() for a
// base name and flags.
func FilenameWithFlags(base string, f Flags) string {
	return base + ":2," + f.String()
}

// SizeFields returns the ",S=<size>" and ",W=<virtual size>" fields of a
// base name, as Dovecot writes them (S is the file size, W the size with
// every line ending as CRLF). A missing or malformed field gives -1.
func SizeFields(base string) (size, vsize int64) {
	size, vsize = -1, -1
	for {
		i := strings.IndexByte(base, ',')
		if i < 0 {
			return
		}
		base = base[i+1:]
		field := base
		if j := strings.IndexByte(field, ','); j >= 0 {
			field = field[:j]
		}
		if len(field) < 3 || field[1] != '=' {
			continue
		}
		v, err := strconv.ParseInt(field[2:], 10, 64)
		if err != nil || v < 0 {
			continue
		}
		switch field[0] {
		case 'S':
			size = v
		case 'W':
			vsize = v
		}
	}
}
