package auth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"golang.org/x/sys/unix"
)

// Add appends u to the passwd-file at path, creating the file (mode 0600)
// when it does not exist. u.Password is the stored form ("{SCHEME}hash",
// see Hash). The line written is
//
//	name:password:uid:gid:gecos:home:shell[:extra extra ...]
//
// which Dovecot's passwd-file reads. It fails with ErrUserExists when the
// user is already there, ErrBadName or ErrBadField when u cannot be
// written. See the package doc for locking and durability.
func Add(path string, u User) error {
	l, err := formatUser(&u)
	if err != nil {
		return &FileError{Op: "add", Path: path, Err: err}
	}
	return modify("add", path, true, func(data []byte) ([]byte, error) {
		file, _, _ := parse(data)
		if _, ok := file.users[u.Name]; ok {
			return nil, fmt.Errorf("%w: %q", ErrUserExists, u.Name)
		}
		out := make([]byte, 0, len(data)+len(l)+2)
		out = append(out, data...)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		return append(append(out, l...), '\n'), nil
	})
}

// SetPassword replaces the password field of user name with stored
// ("{SCHEME}hash", see Hash) on the line that defines the user (the first
// one). Every other byte of the file is kept. It fails with ErrNoSuchUser.
func SetPassword(path, name, stored string) error {
	if err := checkField("password", stored); err != nil {
		return &FileError{Op: "passwd", Path: path, Err: err}
	}
	return modify("passwd", path, false, func(data []byte) ([]byte, error) {
		_, lines, _ := parse(data)
		var out bytes.Buffer
		found := false
		for _, l := range lines {
			if l.name != name || !l.active {
				out.Write(l.raw)
				continue
			}
			found = true
			body, term := splitTerminator(l.raw)
			f := strings.Split(body, ":")
			if len(f) == 1 {
				f = append(f, stored)
			} else {
				f[1] = stored
			}
			out.WriteString(strings.Join(f, ":"))
			out.WriteString(term)
		}
		if !found {
			return nil, fmt.Errorf("%w: %q", ErrNoSuchUser, name)
		}
		return out.Bytes(), nil
	})
}

// Delete removes user name from the passwd-file: the line that defines
// the user and any later duplicate lines of the same name (which would
// otherwise take its place). Every other byte of the file is kept. It
// fails with ErrNoSuchUser.
func Delete(path, name string) error {
	return modify("delete", path, false, func(data []byte) ([]byte, error) {
		file, lines, _ := parse(data)
		if _, ok := file.users[name]; !ok {
			return nil, fmt.Errorf("%w: %q", ErrNoSuchUser, name)
		}
		out := make([]byte, 0, len(data))
		for _, l := range lines {
			if l.name != name {
				out = append(out, l.raw...)
			}
		}
		return out, nil
	})
}

// splitTerminator splits a raw line into its text and its line end
// ("\n", "\r\n" or "" for a last line without one).
func splitTerminator(raw []byte) (body, term string) {
	s := string(raw)
	for _, t := range []string{"\r\n", "\n"} {
		if strings.HasSuffix(s, t) {
			return s[:len(s)-len(t)], t
		}
	}
	return s, ""
}

// formatUser is the passwd-file line of u, without its '\n'.
func formatUser(u *User) (string, error) {
	if err := ValidName(u.Name); err != nil {
		return "", err
	}
	for _, f := range []struct{ name, val string }{
		{"password", u.Password}, {"uid", u.UID}, {"gid", u.GID},
		{"gecos", u.Gecos}, {"home", u.Home}, {"shell", u.Shell},
	} {
		if err := checkField(f.name, f.val); err != nil {
			return "", err
		}
	}
	for _, e := range u.Extra {
		// An extra field is one space-separated token; a leading ':'
		// would turn the line into Dovecot's older layout.
		if e == "" || e[0] == ':' || strings.ContainsFunc(e, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return "", fmt.Errorf("%w: extra field %q", ErrBadField, e)
		}
	}
	l := strings.Join([]string{u.Name, u.Password, u.UID, u.GID, u.Gecos, u.Home, u.Shell}, ":")
	if len(u.Extra) > 0 {
		l += ":" + strings.Join(u.Extra, " ")
	}
	return l, nil
}

func checkField(name, val string) error {
	if strings.ContainsRune(val, ':') || strings.ContainsFunc(val, unicode.IsControl) {
		return fmt.Errorf("%w: %s %q holds ':' or a control character", ErrBadField, name, val)
	}
	return nil
}

// modify runs change on the contents of the passwd-file under its lock and
// replaces the file with the result. With create, a missing file is
// created empty (mode 0600) first; without, a missing file has no users.
func modify(op, path string, create bool, change func([]byte) ([]byte, error)) error {
	ferr := func(err error) error { return &FileError{Op: op, Path: path, Err: err} }
	// Replace the file a symlink points to, not the symlink.
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	f, err := lockFile(path, create)
	if errors.Is(err, os.ErrNotExist) && !create {
		_, err = change(nil)
		return ferr(err)
	}
	if err != nil {
		return ferr(err)
	}
	defer f.Close() // releases the lock
	data, err := readAll(f)
	if err != nil {
		return ferr(err)
	}
	out, err := change(data)
	if err != nil {
		return ferr(err)
	}
	fi, err := f.Stat()
	if err != nil {
		return ferr(err)
	}
	if err := replaceFile(path, out, fi); err != nil {
		return ferr(err)
	}
	return nil
}

// lockFile opens path and takes an exclusive flock(2) on it. Writers
// replace the file by rename, so a writer that waited for the lock may
// hold it on a file that is no longer at path: it then starts again on
// the new file. The lock is released when the returned file is closed
// (or the process dies; there are no stale locks).
func lockFile(path string, create bool) (*os.File, error) {
	flags := os.O_RDONLY
	if create {
		flags |= os.O_CREATE
	}
	for {
		f, err := os.OpenFile(path, flags, 0o600)
		if err != nil {
			return nil, err
		}
		if err := flock(f); err != nil {
			f.Close()
			return nil, err
		}
		same, err := stillAt(f, path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			f.Close()
			return nil, err
		}
		if same {
			return f, nil
		}
		f.Close()
	}
}

func flock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// stillAt reports whether the open file f is the file now at path.
func stillAt(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// rewriteMode is the mode of a rewritten passwd-file: 0600, with the
// group's read permission kept when the old file had it, so that a file
// shared with the group a server runs in (root:cistern, mode 0640) stays
// readable by that server. Others never keep theirs: the file holds
// password hashes.
func rewriteMode(old os.FileInfo) os.FileMode {
	return 0o600 | old.Mode().Perm()&0o040
}

// replaceFile writes data to path durably, replacing the file described
// by old (whose owner is kept when the process may set it). Steps, and
// what a crash after each leaves at path:
//
//  1. create ".<name>.tmp-*" in the same directory, mode 0600 (rewriteMode
//     once written): the old file (and a stray temporary file that nothing
//     reads);
//  2. write, fchown, fsync the temporary file: the old file;
//  3. rename it over path: the old or the new file, whole;
//  4. fsync the directory: the new file.
func replaceFile(path string, data []byte, old os.FileInfo) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if err != nil && !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(rewriteMode(old)); err != nil {
		return err
	}
	if uid, gid, ok := owner(old); ok && (uid != os.Geteuid() || gid != os.Getegid()) {
		// Best effort: only root may give a file away.
		if cerr := tmp.Chown(uid, gid); cerr != nil && !errors.Is(cerr, os.ErrPermission) {
			return cerr
		}
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	renamed = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}
