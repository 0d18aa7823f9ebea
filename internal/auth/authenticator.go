package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
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
// of a dummy hash before the answer ErrBadCredentials, as a wrong
// password costs one verification of the user's hash: a client cannot
// tell them apart by the answer, nor by the work done. The dummy is the
// stored password of a user of the file whose kind (scheme and cost
// parameters, see hashKind) is the most common in the file, so that it
// costs what most users' hashes cost (its result is ignored); a file
// without a password this package verifies falls back to a hash of
// DefaultScheme made with Options. Only users whose hashes cost
// differently from most can still be told from unknown ones by timing.
type Authenticator struct {
	Path    string       // the passwd-file
	Logger  *slog.Logger // nil: slog.Default()
	Options HashOptions  // costs of the dummy hash; zero: the defaults

	reload sync.Mutex                // serialises re-reads; readers never take it
	snap   atomic.Pointer[authState] // the file last read

	dummyOnce sync.Once
	dummy     string // immutable after dummyOnce

	testHookDummy  func()              // called after every dummy verification
	testHookVerify func(stored string) // called before every verification
}

// authState is one version of the passwd-file.
type authState struct {
	stamp fileStamp
	file  *File
	dummy string // dummyOf(file)
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
	st, err := a.current()
	if err != nil {
		return nil, err
	}
	if password == "" || len(password) > MaxPasswordLen || ValidName(name) != nil {
		a.verifyDummy(st, password)
		return nil, ErrBadCredentials
	}
	u, ok := st.file.Lookup(name)
	if !ok {
		a.verifyDummy(st, password)
		return nil, ErrBadCredentials
	}
	if a.testHookVerify != nil {
		a.testHookVerify(u.Password)
	}
	match, err := Verify(u.Password, password)
	if err != nil {
		scheme, _ := SplitScheme(u.Password)
		a.logger().Error("passwd-file: cannot check password", "path", a.Path, "user", name, "scheme", scheme, "err", err)
		a.verifyDummy(st, password)
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
	st, err := a.current()
	if err != nil {
		return nil, err
	}
	u, ok := st.file.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchUser, name)
	}
	return u, nil
}

// current returns the passwd-file as it is on disk now.
func (a *Authenticator) current() (*authState, error) {
	fi, err := os.Stat(a.Path)
	if err != nil {
		return nil, a.unavailable(err)
	}
	if s := a.snap.Load(); s != nil && s.stamp == stampOf(fi) {
		return s, nil
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
		return s, nil // another caller read this version meanwhile
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
	st := &authState{stamp: stamp, file: file, dummy: dummyOf(file)}
	log.Debug("passwd-file: loaded", "path", a.Path, "users", file.Len(), "dummy_kind", hashKind(st.dummy))
	a.snap.Store(st)
	return st, nil
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
// not come sooner than a wrong password's: st's dummy, or the fallback
// when st has none or its dummy turns out malformed.
func (a *Authenticator) verifyDummy(st *authState, password string) {
	if len(password) > MaxPasswordLen {
		password = password[:MaxPasswordLen]
	}
	dummy := st.dummy
	if dummy == "" {
		a.dummyOnce.Do(a.makeDummy)
		dummy = a.dummy
	}
	if a.testHookVerify != nil {
		a.testHookVerify(dummy)
	}
	if _, err := Verify(dummy, password); err != nil {
		a.logger().Error("auth: dummy verification failed", "err", err)
		if dummy != a.dummy {
			a.dummyOnce.Do(a.makeDummy)
			Verify(a.dummy, password)
		}
	}
	if a.testHookDummy != nil {
		a.testHookDummy()
	}
}

// dummyOf returns the stored password of the first user of file whose
// hash kind is the most common among file's users, or "" when no user
// has a password of a kind this package verifies.
func dummyOf(file *File) string {
	count := map[string]int{}
	first := map[string]string{}
	best := ""
	for _, name := range file.names {
		stored := file.users[name].Password
		kind := hashKind(stored)
		if kind == "" {
			continue
		}
		count[kind]++
		if _, ok := first[kind]; !ok {
			first[kind] = stored
		}
		if best == "" || count[kind] > count[best] {
			best = kind
		}
	}
	return first[best]
}

// hashKind names what verifying a stored password costs: its scheme and
// cost parameters ("BLF-CRYPT 12", "SHA512-CRYPT rounds=5000",
// "ARGON2ID m=65536,t=3,p=1", "PLAIN"); "" for a password this package
// cannot verify. Hashes of one kind cost the same to verify, whatever
// their salt and the password tried.
func hashKind(stored string) string {
	scheme, hash := SplitScheme(stored)
	if hash == "" {
		return ""
	}
	if scheme == SchemeCrypt {
		switch {
		case isBcryptPrefix(hash):
			scheme = SchemeBlfCrypt
		case strings.HasPrefix(hash, "$6$"):
			scheme = SchemeSHA512Crypt
		case strings.HasPrefix(hash, "$5$"):
			scheme = SchemeSHA256Crypt
		case strings.HasPrefix(hash, "$1$"):
			scheme = SchemeMD5Crypt
		default:
			return ""
		}
	}
	fields := strings.Split(hash, "$") // "", id, params..., salt, sum
	switch {
	case scheme == SchemeBlfCrypt:
		if !isBcryptPrefix(hash) || len(hash) != 60 {
			return ""
		}
		return scheme + " " + hash[4:6]
	case scheme == SchemeSHA512Crypt, scheme == SchemeSHA256Crypt:
		if len(fields) < 4 {
			return ""
		}
		rounds := "rounds=5000" // the crypt spec's default
		if strings.HasPrefix(fields[2], "rounds=") {
			rounds = fields[2]
		}
		return scheme + " " + rounds
	case scheme == SchemeMD5Crypt:
		return scheme
	case scheme == SchemeArgon2ID, scheme == SchemeArgon2I, scheme == "ARGON2":
		if len(fields) != 6 {
			return ""
		}
		return fields[1] + " " + fields[3]
	case isPlainScheme(scheme):
		return SchemePlain
	}
	return ""
}
