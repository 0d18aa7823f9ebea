package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newTestAuthenticator returns an Authenticator on a copy of
// testdata/dovecot.passwd with two more users, and a counter of its dummy
// verifications.
func newTestAuthenticator(t *testing.T) (*Authenticator, string, *atomic.Int64) {
	t.Helper()
	path := copyFixture(t, "dovecot.passwd")
	for _, u := range []User{
		{Name: "ssha", Password: "{SSHA}OuCrqL2yWwQIu8a9uvyOQ5V/ZKfL7LJD"},
		{Name: "nopassword"},
	} {
		if err := Add(path, u); err != nil {
			t.Fatal(err)
		}
	}
	var dummies atomic.Int64
	a := &Authenticator{
		Path:          path,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Options:       testOptions,
		testHookDummy: func() { dummies.Add(1) },
	}
	return a, path, &dummies
}

// TestAuthenticate checks the answer to every kind of login, and that
// each failure that is not a wrong password verified the dummy hash, so
// that it took as long as a wrong password.
func TestAuthenticate(t *testing.T) {
	a, _, dummies := newTestAuthenticator(t)
	const pw = "correct horse battery staple"
	tests := []struct {
		name, user, password string
		ok                   bool
		dummy                bool
	}{
		{"blf", "blf", pw, true, false},
		{"sha512", "sha512", pw, true, false},
		{"argon2id", "argon2id", pw, true, false},
		{"plain", "plain", pw, true, false},
		{"unicode", "unicode-blf", "pässwörd ünïcode", true, false},
		{"wrong password", "blf", pw + "!", false, false},
		{"unknown user", "mallory", pw, false, true},
		{"user case differs", "BLF", pw, false, true},
		{"bad name", "../blf", pw, false, true},
		{"empty name", "", pw, false, true},
		{"empty password", "blf", "", false, true},
		{"password too long", "plain", strings.Repeat("x", MaxPasswordLen+1), false, true},
		{"unknown scheme", "ssha", pw, false, true},
		{"no password", "nopassword", "", false, true},
		{"no password given one", "nopassword", pw, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := dummies.Load()
			u, err := a.Authenticate(context.Background(), tt.user, tt.password)
			if tt.ok {
				if err != nil || u == nil || u.Name != tt.user {
					t.Fatalf("Authenticate = %+v, %v; want user %s", u, err, tt.user)
				}
			} else if u != nil || err != ErrBadCredentials {
				t.Fatalf("Authenticate = %+v, %v; want exactly ErrBadCredentials", u, err)
			}
			if got := dummies.Load() - before; got != map[bool]int64{true: 1, false: 0}[tt.dummy] {
				t.Errorf("%d dummy verifications, want dummy=%v", got, tt.dummy)
			}
		})
	}
	// The fixture's most common kind is bcrypt at cost 5 (blf, crypt,
	// unicode-blf); its first user is blf.
	st, err := a.current()
	if err != nil {
		t.Fatal(err)
	}
	if blf, _ := st.file.Lookup("blf"); st.dummy != blf.Password {
		t.Errorf("dummy %q, want blf's hash %q", st.dummy, blf.Password)
	}
}

// TestUnknownUserSameWork: an unknown user, a malformed name and a user
// whose hash cannot be checked cost one verification of a hash of the
// kind most users have, as a wrong password does, and get the same
// error. A file whose users' hashes cannot be verified falls back to a
// dummy made with Options.
func TestUnknownUserSameWork(t *testing.T) {
	a, path, _ := newTestAuthenticator(t)
	var verified []string
	a.testHookVerify = func(stored string) { verified = append(verified, stored) }
	const pw = "correct horse battery staple"
	ctx := context.Background()
	tests := []struct{ name, user, password string }{
		{"wrong password", "unicode-blf", pw},
		{"unknown user", "mallory", pw},
		{"bad name", "../blf", pw},
		{"empty password", "blf", ""},
		{"unknown scheme", "ssha", pw},
	}
	var errText string
	for _, tt := range tests {
		verified = nil
		_, err := a.Authenticate(ctx, tt.user, tt.password)
		if err != ErrBadCredentials {
			t.Fatalf("%s: %v, want ErrBadCredentials", tt.name, err)
		}
		if errText == "" {
			errText = err.Error()
		} else if err.Error() != errText {
			t.Errorf("%s: error %q differs from %q", tt.name, err.Error(), errText)
		}
		// The unknown scheme is verified (and fails at once), then the
		// dummy: the last verification is the one that costs.
		if len(verified) == 0 || len(verified) > 2 || (len(verified) == 2) != (tt.name == "unknown scheme") {
			t.Fatalf("%s: verified %q, want one hash (two for an unknown scheme)", tt.name, verified)
		}
		if got := hashKind(verified[len(verified)-1]); got != "BLF-CRYPT 05" {
			t.Errorf("%s: verified a hash of kind %q, want the file's most common, BLF-CRYPT 05", tt.name, got)
		}
	}

	// Only users whose hashes this package cannot verify: the fallback.
	if err := os.WriteFile(path, []byte("x:{SSHA}OuCrqL2yWwQIu8a9uvyOQ5V/ZKfL7LJD\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Hour)
	os.Chtimes(path, later, later)
	verified = nil
	if _, err := a.Authenticate(ctx, "mallory", pw); err != ErrBadCredentials {
		t.Fatal(err)
	}
	if len(verified) != 1 || !strings.HasPrefix(verified[0], "{BLF-CRYPT}$2y$04$") {
		t.Errorf("verified %q, want the fallback made with Options (bcrypt cost 4)", verified)
	}
}

func TestHashKind(t *testing.T) {
	file, _, problems := parse(mustRead(t, "testdata/dovecot.passwd"))
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	want := map[string]string{
		"blf":              "BLF-CRYPT 05",
		"crypt":            "BLF-CRYPT 05",
		"sha512":           "SHA512-CRYPT rounds=5000",
		"bare":             "SHA512-CRYPT rounds=5000",
		"unicode-sha512":   "SHA512-CRYPT rounds=10000",
		"sha256":           "SHA256-CRYPT rounds=5000",
		"md5":              "MD5-CRYPT",
		"argon2id":         "argon2id m=65536,t=3,p=1",
		"argon2i":          "argon2i m=32768,t=4,p=1",
		"plain":            "PLAIN",
		"unicode-argon2id": "argon2id m=65536,t=3,p=1",
	}
	for name, kind := range want {
		u, ok := file.Lookup(name)
		if !ok {
			t.Fatalf("fixture lacks %s", name)
		}
		if got := hashKind(u.Password); got != kind {
			t.Errorf("%s: hashKind = %q, want %q", name, got, kind)
		}
	}
	for _, stored := range []string{"", "{SSHA}abc", "{BLF-CRYPT}$2y$05$short", "{CRYPT}!locked", "{SHA512-CRYPT}", "{ARGON2ID}$argon2id$v=19"} {
		if got := hashKind(stored); got != "" {
			t.Errorf("hashKind(%q) = %q, want \"\"", stored, got)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestAuthenticatorReloads(t *testing.T) {
	a, path, _ := newTestAuthenticator(t)
	ctx := context.Background()
	login := func(user, pw string) error {
		_, err := a.Authenticate(ctx, user, pw)
		return err
	}
	if err := login("carol", "pw1"); err != ErrBadCredentials {
		t.Fatalf("carol before Add: %v", err)
	}
	if err := Add(path, User{Name: "carol", Password: "{PLAIN}pw1", Home: "/home/carol"}); err != nil {
		t.Fatal(err)
	}
	if err := login("carol", "pw1"); err != nil {
		t.Fatalf("carol after Add: %v", err)
	}
	if u, err := a.Lookup("carol"); err != nil || u.Home != "/home/carol" {
		t.Errorf("Lookup(carol) = %+v, %v", u, err)
	}
	stored, _ := HashWith(SchemeSHA512Crypt, "pw2", testOptions)
	if err := SetPassword(path, "carol", stored); err != nil {
		t.Fatal(err)
	}
	if login("carol", "pw1") != ErrBadCredentials || login("carol", "pw2") != nil {
		t.Fatal("SetPassword not seen")
	}

	// An in-place edit of the same size: only the timestamps tell.
	data, _ := os.ReadFile(path)
	data = []byte(strings.Replace(string(data), "{PLAIN}correct horse battery staple", "{PLAIN}correct horse battery stapLE", 1))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if login("plain", "correct horse battery stapLE") != nil {
		t.Fatal("in-place edit not seen")
	}

	if err := Delete(path, "carol"); err != nil {
		t.Fatal(err)
	}
	if login("carol", "pw2") != ErrBadCredentials {
		t.Fatal("Delete not seen")
	}
	if _, err := a.Lookup("carol"); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("Lookup(carol) after Delete: %v", err)
	}
}

func TestAuthenticatorUnavailable(t *testing.T) {
	a, path, dummies := newTestAuthenticator(t)
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "plain", "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"plain", "mallory"} {
		if _, err := a.Authenticate(ctx, user, "correct horse battery staple"); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s without the file: %v, want ErrUnavailable", user, err)
		}
	}
	if _, err := a.Lookup("plain"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Lookup without the file: %v", err)
	}
	if err := os.Rename(path+".away", path); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "plain", "correct horse battery staple"); err != nil {
		t.Errorf("after the file came back: %v", err)
	}
	if dummies.Load() != 0 {
		t.Errorf("%d dummy verifications", dummies.Load())
	}

	var zero Authenticator
	zero.Options = testOptions
	if _, err := zero.Authenticate(ctx, "plain", "x"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("zero Authenticator: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Authenticate(cancelled, "plain", "correct horse battery staple"); err != context.Canceled {
		t.Errorf("cancelled context: %v", err)
	}
}

// TestAuthenticateWhileWriting logs in from many goroutines while users
// are added: every login of an existing user succeeds, whichever version
// of the file it reads.
func TestAuthenticateWhileWriting(t *testing.T) {
	a, path, _ := newTestAuthenticator(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := a.Authenticate(ctx, "plain", "correct horse battery staple"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 20 {
		name := fmt.Sprintf("w%d", i)
		if err := Add(path, User{Name: name, Password: "{PLAIN}" + name}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, name, name); err != nil {
			t.Errorf("%s just added: %v", name, err)
		}
	}
	close(stop)
	wg.Wait()
}
