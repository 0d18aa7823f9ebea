package auth

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest user name, in bytes. Dovecot has no limit of
// its own; 255 is RFC 4616's authcid length and keeps a name usable as a
// path component.
const MaxNameLen = 255

// maxFileSize bounds a passwd-file read into memory. A million users fit.
const maxFileSize = 256 << 20

// User is one line of a passwd-file. Every field is the text of the file;
// empty fields are empty strings.
type User struct {
	Name     string
	Password string // "{SCHEME}hash", or a crypt(3) string (scheme CRYPT)
	UID, GID string // numeric ids or names, as Dovecot's userdb takes them
	Gecos    string // unused by Dovecot and Cistern
	Home     string
	Shell    string // unused by Dovecot and Cistern
	// Extra are the extra fields, "key=value" or "key", in file order and
	// verbatim (e.g. "userdb_quota_rule=*:storage=1G").
	Extra []string
}

func (u *User) clone() *User {
	c := *u
	c.Extra = slices.Clone(u.Extra)
	return &c
}

// File is a passwd-file as read by LoadFile: the users it defines, in
// file order. A File is immutable and safe for concurrent use.
type File struct {
	users map[string]*User // immutable
	names []string         // immutable; file order
}

// Lookup returns a copy of the user called name (case-sensitive, as
// Dovecot by default).
func (f *File) Lookup(name string) (*User, bool) {
	u, ok := f.users[name]
	if !ok {
		return nil, false
	}
	return u.clone(), true
}

// Names returns the user names in file order.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Len is the number of users.
func (f *File) Len() int { return len(f.names) }

// ValidName reports whether name can be a Cistern user: not empty, at
// most MaxNameLen bytes of UTF-8, no ':' (the field separator), no '/' and
// no leading '.' (the name becomes a path component in mail_location), no
// leading '#' (the line would be a comment) and no control characters.
// The error wraps ErrBadName.
func ValidName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrBadName, name, why) }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxNameLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxNameLen))
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	case name[0] == '.':
		return bad("starts with '.'")
	case name[0] == '#':
		return bad("starts with '#'")
	case strings.ContainsRune(name, ':'):
		return bad("contains ':'")
	case strings.ContainsRune(name, '/'):
		return bad("contains '/'")
	case strings.ContainsFunc(name, unicode.IsControl):
		return bad("contains a control character")
	}
	return nil
}

// LoadFile reads the passwd-file at path. Lines that cannot be a user are
// skipped and reported as Problems (a duplicate user too: the first line
// wins, as in Dovecot); only a file that cannot be read is an error.
func LoadFile(path string) (*File, []Problem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, &FileError{Op: "load", Path: path, Err: err}
	}
	defer f.Close()
	data, err := readAll(f)
	if err != nil {
		return nil, nil, &FileError{Op: "load", Path: path, Err: err}
	}
	file, _, problems := parse(data)
	return file, problems, nil
}

func readAll(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err == nil && len(data) > maxFileSize {
		err = fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return data, err
}

// line is one line of a passwd-file, kept byte for byte for rewrites.
type line struct {
	raw    []byte // the line with its '\n' (absent on a last line without one)
	name   string // the user name, when the line has a valid one
	active bool   // this line defines name (false for a later duplicate)
}

// parse splits data into lines and reads the users. Every byte of data is
// in exactly one line's raw, in order.
func parse(data []byte) (*File, []line, []Problem) {
	file := &File{users: make(map[string]*User)}
	var (
		lines    []line
		problems []Problem
	)
	for n := 1; len(data) > 0; n++ {
		end := bytes.IndexByte(data, '\n') + 1
		if end == 0 {
			end = len(data)
		}
		l := line{raw: data[:end:end]}
		data = data[end:]
		lines = append(lines, l)

		text := strings.TrimSuffix(strings.TrimSuffix(string(l.raw), "\n"), "\r")
		if strings.TrimSpace(text) == "" || text[0] == '#' {
			continue
		}
		u, reason := parseUser(text)
		if u == nil {
			problems = append(problems, Problem{Line: n, Reason: reason})
			continue
		}
		lines[len(lines)-1].name = u.Name
		if _, dup := file.users[u.Name]; dup {
			problems = append(problems, Problem{Line: n, User: u.Name, Reason: "duplicate user, ignored (the first line wins)"})
			continue
		}
		lines[len(lines)-1].active = true
		file.users[u.Name] = u
		file.names = append(file.names, u.Name)
	}
	return file, lines, problems
}

// parseUser reads "user:password:uid:gid:gecos:home:shell:extra" the way
// Dovecot's passwd-file does: fields are split at every ':', and whatever
// follows the shell field is the extra fields, joined back with ':' and
// split at spaces. Dovecot's older layout, an empty eighth field followed
// by a mail location, is read as the extra field userdb_mail=<location>.
func parseUser(text string) (*User, string) {
	f := strings.Split(text, ":")
	if err := ValidName(f[0]); err != nil {
		return nil, strings.TrimPrefix(err.Error(), "auth: ")
	}
	field := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	u := &User{Name: f[0], Password: field(1), UID: field(2), GID: field(3),
		Gecos: field(4), Home: field(5), Shell: field(6)}
	if len(f) > 7 {
		if f[7] == "" {
			if rest := strings.Join(f[8:], ":"); rest != "" {
				u.Extra = []string{"userdb_mail=" + rest}
			}
		} else {
			u.Extra = strings.FieldsFunc(strings.Join(f[7:], ":"), func(r rune) bool { return r == ' ' })
		}
	}
	return u, ""
}
