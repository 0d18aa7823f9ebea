package auth

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLoadDovecotFile reads a passwd-file whose every hash doveadm pw made
// and checks each user's password with Verify.
func TestLoadDovecotFile(t *testing.T) {
	f, problems, err := LoadFile("testdata/dovecot.passwd")
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Errorf("problems: %v", problems)
	}
	want := []string{"blf", "sha512", "argon2id", "argon2i", "sha256", "md5", "crypt", "plain", "bare",
		"unicode-blf", "unicode-argon2id", "unicode-sha512"}
	if got := f.Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Names() = %q, want %q", got, want)
	}
	for _, name := range want {
		u, ok := f.Lookup(name)
		if !ok {
			t.Fatalf("Lookup(%q) failed", name)
		}
		pw := "correct horse battery staple"
		if strings.HasPrefix(name, "unicode-") {
			pw = "pässwörd ünïcode"
		}
		if ok, err := Verify(u.Password, pw); !ok || err != nil {
			t.Errorf("%s: Verify(%q) = %v, %v", name, u.Password, ok, err)
		}
		if strings.Contains(u.Password, "$argon2") {
			continue // 64 MiB each: wrong passwords are tested on cheaper hashes
		}
		if ok, err := Verify(u.Password, pw+"!"); ok || err != nil {
			t.Errorf("%s: Verify(wrong password) = %v, %v", name, ok, err)
		}
	}

	blf, _ := f.Lookup("blf")
	wantBlf := &User{Name: "blf", Password: "{BLF-CRYPT}$2y$05$w4YhcXHZO5bZNKk0VX83yOjgLlws5N2VMC9tB9VLtw/kTSuat6uli",
		UID: "1000", GID: "1000", Home: "/home/blf",
		Extra: []string{"userdb_quota_rule=*:storage=1G", "allow_nets=127.0.0.1/8"}}
	if !reflect.DeepEqual(blf, wantBlf) {
		t.Errorf("blf = %+v\nwant %+v", blf, wantBlf)
	}
	sha, _ := f.Lookup("sha512")
	if sha.Gecos != "Sha Five-Twelve" || sha.Shell != "/bin/false" || sha.Home != "/home/sha512" || sha.Extra != nil {
		t.Errorf("sha512 = %+v", sha)
	}
	blf.Extra[0] = "changed"
	if again, _ := f.Lookup("blf"); again.Extra[0] != "userdb_quota_rule=*:storage=1G" {
		t.Error("Lookup returns the File's own User, not a copy")
	}
	if _, ok := f.Lookup("BLF"); ok {
		t.Error("Lookup is not case-sensitive")
	}
}

func TestLoadFileMalformed(t *testing.T) {
	f, problems, err := LoadFile("testdata/malformed.passwd")
	if err != nil {
		t.Fatal(err)
	}
	wantProblems := []struct {
		line    int
		user    string
		contain string
	}{
		{3, "", "empty"},
		{5, "", "starts with '.'"},
		{6, "", "contains '/'"},
		{7, "", "control character"},
		{8, "ok", "duplicate"},
		{14, "", "not UTF-8"},
		{15, "", "longer than 255"},
	}
	if len(problems) != len(wantProblems) {
		t.Fatalf("problems = %v, want %d", problems, len(wantProblems))
	}
	for i, w := range wantProblems {
		p := problems[i]
		if p.Line != w.line || p.User != w.user || !strings.Contains(p.Reason, w.contain) {
			t.Errorf("problem %d = %+v (%s), want line %d user %q reason containing %q", i, p, p, w.line, w.user, w.contain)
		}
	}
	wantUsers := map[string]*User{
		"ok":        {Name: "ok", Password: "{PLAIN}one"},
		"onlyname":  {Name: "onlyname"},
		"crlf":      {Name: "crlf", Password: "{PLAIN}two"},
		"oldformat": {Name: "oldformat", Password: "{PLAIN}x", UID: "1", GID: "1", Home: "/home/o", Shell: "/bin/sh", Extra: []string{"userdb_mail=maildir:~/Mail"}},
		"last":      {Name: "last", Password: "{PLAIN}three"},
	}
	if got := f.Names(); !reflect.DeepEqual(got, []string{"ok", "onlyname", "crlf", "oldformat", "last"}) {
		t.Errorf("Names() = %q", got)
	}
	for name, want := range wantUsers {
		got, ok := f.Lookup(name)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v", name, got, ok, want)
		}
	}
	if f.Len() != len(wantUsers) {
		t.Errorf("Len() = %d", f.Len())
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, _, err := LoadFile(filepath.Join(t.TempDir(), "absent"))
	var fe *FileError
	if !errors.Is(err, os.ErrNotExist) || !errors.As(err, &fe) || fe.Op != "load" {
		t.Errorf("err = %v, want a load FileError wrapping ErrNotExist", err)
	}
}

func TestParseKeepsEveryByte(t *testing.T) {
	for _, in := range []string{"", "\n", "a\n\n", "a:b\r\nc", "#x\n:y\nz:{PLAIN}w:1:2:3:4:5:k=v:w x\n"} {
		_, lines, _ := parse([]byte(in))
		var out strings.Builder
		for _, l := range lines {
			out.Write(l.raw)
		}
		if out.String() != in {
			t.Errorf("parse(%q) lines join to %q", in, out.String())
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"alice@example.org", true},
		{"Alice.Smith+tag", true},
		{"jörg", true},
		{"a b", true},
		{strings.Repeat("a", 255), true},
		{"", false},
		{strings.Repeat("a", 256), false},
		{"a:b", false},
		{"a/b", false},
		{"../x", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"#comment", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\tb", false},
		{"a\x7fb", false},
		{"a\u0085b", false}, // C1 control
		{"a\xffb", false},
	}
	for _, tt := range tests {
		err := ValidName(tt.name)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
