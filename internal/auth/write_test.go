package auth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func copyFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "passwd")
	// Readable by others, which every write takes away (rewriteMode).
	if err := os.WriteFile(path, data, 0o604); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o604); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

func readString(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// checkFile checks what every write leaves: mode 0600 and no temporary
// file beside it.
func checkFile(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("mode %v, want -rw-------", fi.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestWritesKeepOtherLines runs every write on a file full of comments,
// damaged lines, a CRLF line, a duplicate and no final newline, and
// checks that only the lines concerned change.
func TestWritesKeepOtherLines(t *testing.T) {
	path := copyFixture(t, "malformed.passwd")
	orig := readString(t, path)
	lines := strings.SplitAfter(orig, "\n") // 16 lines, the last without '\n'

	// Add: the missing final newline is supplied, nothing else moves.
	u := User{Name: "new", Password: "{PLAIN}pw", UID: "1000", GID: "100", Home: "/home/new",
		Extra: []string{"userdb_quota_rule=*:storage=1G", "nologin"}}
	if err := Add(path, u); err != nil {
		t.Fatal(err)
	}
	want := orig + "\nnew:{PLAIN}pw:1000:100::/home/new::userdb_quota_rule=*:storage=1G nologin\n"
	if got := readString(t, path); got != want {
		t.Fatalf("after Add:\n%q\nwant\n%q", got, want)
	}
	checkFile(t, path)
	f, _, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Lookup("new"); !reflect.DeepEqual(got, &u) {
		t.Errorf("read back %+v, want %+v", got, u)
	}

	// SetPassword: the CRLF line keeps its CRLF; the first "ok" line
	// changes, not its duplicate; a user without password field gets one.
	for _, c := range []struct{ name, stored string }{{"crlf", "{PLAIN}c"}, {"ok", "{PLAIN}o"}, {"onlyname", "{PLAIN}n"}} {
		if err := SetPassword(path, c.name, c.stored); err != nil {
			t.Fatal(err)
		}
	}
	lines[3] = "ok:{PLAIN}o:::::\n"
	lines[8] = "onlyname:{PLAIN}n\n"
	lines[9] = "crlf:{PLAIN}c\r\n"
	want = strings.Join(lines, "") + "\nnew:{PLAIN}pw:1000:100::/home/new::userdb_quota_rule=*:storage=1G nologin\n"
	if got := readString(t, path); got != want {
		t.Fatalf("after SetPassword:\n%q\nwant\n%q", got, want)
	}
	checkFile(t, path)

	// Delete: "ok" goes with its duplicate line; "last" (no newline).
	if err := Delete(path, "ok"); err != nil {
		t.Fatal(err)
	}
	if err := Delete(path, "new"); err != nil {
		t.Fatal(err)
	}
	want = strings.Join(append(append(lines[:3:3], lines[4:7]...), lines[8:]...), "") + "\n"
	if got := readString(t, path); got != want {
		t.Fatalf("after Delete:\n%q\nwant\n%q", got, want)
	}
	checkFile(t, path)
}

func TestWriteErrors(t *testing.T) {
	path := copyFixture(t, "dovecot.passwd")
	orig := readString(t, path)
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"add existing", func() error { return Add(path, User{Name: "blf", Password: "{PLAIN}x"}) }, ErrUserExists},
		{"add bad name", func() error { return Add(path, User{Name: "../x", Password: "{PLAIN}x"}) }, ErrBadName},
		{"add colon in home", func() error { return Add(path, User{Name: "x", Home: "/a:b"}) }, ErrBadField},
		{"add newline in password", func() error { return Add(path, User{Name: "x", Password: "{PLAIN}a\nb:1:1"}) }, ErrBadField},
		{"add space in extra", func() error { return Add(path, User{Name: "x", Extra: []string{"a=b c"}}) }, ErrBadField},
		{"add extra starting with colon", func() error { return Add(path, User{Name: "x", Extra: []string{":mail"}}) }, ErrBadField},
		{"add empty extra", func() error { return Add(path, User{Name: "x", Extra: []string{""}}) }, ErrBadField},
		{"passwd unknown", func() error { return SetPassword(path, "nobody", "{PLAIN}x") }, ErrNoSuchUser},
		{"passwd colon", func() error { return SetPassword(path, "blf", "{PLAIN}a:b") }, ErrBadField},
		{"delete unknown", func() error { return Delete(path, "nobody") }, ErrNoSuchUser},
		{"delete case", func() error { return Delete(path, "BLF") }, ErrNoSuchUser},
		{"passwd missing file", func() error { return SetPassword(path+".absent", "blf", "{PLAIN}x") }, ErrNoSuchUser},
		{"delete missing file", func() error { return Delete(path+".absent", "blf") }, ErrNoSuchUser},
	}
	for _, tt := range tests {
		err := tt.do()
		var fe *FileError
		if !errors.Is(err, tt.want) || !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want a FileError wrapping %v", tt.name, err, tt.want)
		}
	}
	if got := readString(t, path); got != orig {
		t.Errorf("a failed write changed the file")
	}
	if _, err := os.Stat(path + ".absent"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SetPassword or Delete created a missing file")
	}
}

// TestRewriteMode: a write keeps the group's read permission (a server
// may read the file through its group) and drops everything else.
func TestRewriteMode(t *testing.T) {
	for _, tc := range []struct{ before, after os.FileMode }{
		{0o600, 0o600},
		{0o640, 0o640},
		{0o644, 0o640},
		{0o660, 0o640},
		{0o666, 0o640},
		{0o604, 0o600},
		{0o400, 0o600},
	} {
		t.Run(tc.before.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "passwd")
			if err := os.WriteFile(path, []byte("a:{PLAIN}x\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.before); err != nil {
				t.Fatal(err)
			}
			if err := SetPassword(path, "a", "{PLAIN}y"); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != tc.after {
				t.Errorf("mode %v after a write, want %v", fi.Mode(), tc.after)
			}
		})
	}
}

func TestAddCreatesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	if err := Add(path, User{Name: "alice", Password: "{PLAIN}pw"}); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, path); got != "alice:{PLAIN}pw:::::\n" {
		t.Errorf("file = %q", got)
	}
	checkFile(t, path)
}

func TestWriteThroughSymlink(t *testing.T) {
	target := copyFixture(t, "dovecot.passwd")
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := Delete(link, "plain"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v %v", fi.Mode(), err)
	}
	if strings.Contains(readString(t, target), "\nplain:") {
		t.Error("the target was not changed")
	}
}

// TestConcurrentWrites runs Adds and SetPasswords from many goroutines at
// once: under the lock none is lost.
func TestConcurrentWrites(t *testing.T) {
	path := copyFixture(t, "dovecot.passwd")
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- Add(path, User{Name: fmt.Sprintf("user%02d", i), Password: fmt.Sprintf("{PLAIN}pw%d", i)})
		}()
		go func() {
			defer wg.Done()
			// Each round renames the file under the others' feet.
			errs <- SetPassword(path, "plain", fmt.Sprintf("{PLAIN}round%d", i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	f, problems, err := LoadFile(path)
	if err != nil || len(problems) != 0 {
		t.Fatal(err, problems)
	}
	if f.Len() != 12+n {
		t.Errorf("%d users, want %d", f.Len(), 12+n)
	}
	for i := range n {
		u, ok := f.Lookup(fmt.Sprintf("user%02d", i))
		if !ok || u.Password != fmt.Sprintf("{PLAIN}pw%d", i) {
			t.Errorf("user%02d lost: %+v", i, u)
		}
	}
	if u, _ := f.Lookup("plain"); !strings.HasPrefix(u.Password, "{PLAIN}round") {
		t.Errorf("plain = %q", u.Password)
	}
	checkFile(t, path)
}
