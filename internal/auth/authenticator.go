package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// Authenticator checks user names and passwords against a passwd-file,
// re-reading the file when it changes. It is safe for concurrent use; the
// zero value has no file and answers ErrUnavailable.
//
// Every call stats the file (one system call); when the file's inode,
// size, mtime or ctime differ from the version in memory, one caller
// re-reads it while the others wait for that read, and calls that find
// the file unchanged take no lock. A file that cannot be stat'ed or read
// makes every call fail with ErrUnavailable (nobody logs in on stale
// data: the file may have been removed on purpose).
//
// An unknown user, a malformed name, an over-long or empty password and a
// user whose stored password cannot be checked all cost one verification
// of a dummy hash of DefaultScheme, made with Options, before the answer
// ErrBadCredentials: a client cannot tell them from a wrong password by
// the answer, and only by timing when its users' hashes cost differently
// from Options.
type Authenticator struct {
	Path    string       // the passwd-file
	Logger  *slog.Logger // nil: slog.Default()
	Options HashOptions  // costs of the dummy hash; zero: the defaults

	reload sync.Mutex                // serialises re-reads; readers never take it
	snap   atomic.Pointer[authState] // the file last read

	dummyOnce sync.Once
	dummy     string // immutable after dummyOnce

	testHookDummy func() // called after every dummy verification
}

// authState is one version of the passwd-file.
type authState struct {
	stamp fileStamp
	file  *File
}

// NewAuthenticator returns an Authenticator for the passwd-file at path.
func NewAuthenticator(path string, logger *slog.Logger) *Authenticator {
	return &Authenticator{Path: path, Logger: logger}
}

func (a *Authenticator) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

// Authenticate returns the user when password is theirs. Errors:
// ErrBadCredentials (for every reason a user may not log in, see the type
// doc), ErrUnavailable (wrapped, the file cannot be read) or ctx.Err().
func (a *Authenticator) Authenticate(ctx context.Context, name, password string) (*User, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.dummyOnce.Do(a.makeDummy)
	file, err := a.current()
	if err != nil {
		return nil, err
	}
	if password == "" || len(password) > MaxPasswordLen || ValidName(name) != nil {
		a.verifyDummy(password)
		return nil, ErrBadCredentials
	}
	u, ok := file.Lookup(name)
	if !ok {
		a.verifyDummy(password)
		return nil, ErrBadCredentials
	}
	match, err := Verify(u.Password, password)
	if err != nil {
		scheme, _ := SplitScheme(u.Password)
		a.logger().Error("passwd-file: cannot check password", "path", a.Path, "user", name, "scheme", scheme, "err", err)
		a.verifyDummy(password)
		return nil, ErrBadCredentials
	}
	if !match {
		return nil, ErrBadCredentials
	}
	return u, nil
}

// Lookup returns the user called name without checking a password (for
// delivery). Errors: ErrNoSuchUser, or ErrUnavailable (wrapped).
func (a *Authenticator) Lookup(name string) (*User, error) {
	file, err := a.current()
	if err != nil {
		return nil, err
	}
	u, ok := file.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchUser, name)
	}
	return u, nil
}

// current returns the passwd-file as it is on disk now.
func (a *Authenticator) current() (*File, error) {
	fi, err := os.Stat(a.Path)
	if err != nil {
		return nil, a.unavailable(err)
	}
	if s := a.snap.Load(); s != nil && s.stamp == stampOf(fi) {
		return s.file, nil
	}

	a.reload.Lock()
	defer a.reload.Unlock()
	f, err := os.Open(a.Path)
	if err != nil {
		return nil, a.unavailable(err)
	}
	defer f.Close()
	// The stamp is taken before the read: a change during the read makes
	// the next call's stamp differ, and that call reads again.
	fi, err = f.Stat()
	if err != nil {
		return nil, a.unavailable(err)
	}
	stamp := stampOf(fi)
	if s := a.snap.Load(); s != nil && s.stamp == stamp {
		return s.file, nil // another caller read this version meanwhile
	}
	data, err := readAll(f)
	if err != nil {
		return nil, a.unavailable(err)
	}
	file, _, problems := parse(data)
	log := a.logger()
	for _, p := range problems {
		log.Warn("passwd-file: line skipped", "path", a.Path, "line", p.Line, "user", p.User, "reason", p.Reason)
	}
	for _, name := range file.names {
		if IsPlaintext(file.users[name].Password) {
			log.Warn("passwd-file: password stored in clear text; set a hashed one with 'cistern user passwd'", "path", a.Path, "user", name)
		}
	}
	log.Debug("passwd-file: loaded", "path", a.Path, "users", file.Len())
	a.snap.Store(&authState{stamp: stamp, file: file})
	return file, nil
}

func (a *Authenticator) unavailable(err error) error {
	a.logger().Error("passwd-file: cannot read", "path", a.Path, "err", err)
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (a *Authenticator) makeDummy() {
	secret := make([]byte, 16)
	rand.Read(secret)
	h, err := HashWith(DefaultScheme, hex.EncodeToString(secret), a.Options)
	if err != nil {
		// Only bad Options get here; fall back to the default costs.
		a.logger().Error("auth: dummy hash with the configured costs failed", "err", err)
		h, _ = Hash(DefaultScheme, hex.EncodeToString(secret))
	}
	a.dummy = h
}

// verifyDummy spends the time of one verification, for answers that must
// not come sooner than a wrong password's.
func (a *Authenticator) verifyDummy(password string) {
	if len(password) > MaxPasswordLen {
		password = password[:MaxPasswordLen]
	}
	if _, err := Verify(a.dummy, password); err != nil && !errors.Is(err, ErrNoPassword) {
		a.logger().Error("auth: dummy verification failed", "err", err)
	}
	if a.testHookDummy != nil {
		a.testHookDummy()
	}
}
