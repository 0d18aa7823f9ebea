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
	if scheme, _ := SplitScheme(a.dummy); scheme != DefaultScheme || !strings.HasPrefix(a.dummy, "{BLF-CRYPT}$2y$04$") {
		t.Errorf("dummy hash %q: want %s made with Options", a.dummy, DefaultScheme)
	}
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
