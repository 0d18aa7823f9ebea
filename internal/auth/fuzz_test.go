package auth

import (
	"os"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, name := range []string{"dovecot.passwd", "malformed.passwd"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a:b:c:d:e:f:g::h:i\r\n\n:x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, lines, _ := parse(data)
		var joined []byte
		active := 0
		for _, l := range lines {
			joined = append(joined, l.raw...)
			if l.active {
				active++
			}
		}
		if string(joined) != string(data) {
			t.Fatalf("lines do not join back to the input")
		}
		if active != file.Len() {
			t.Fatalf("%d active lines, %d users", active, file.Len())
		}
		for _, name := range file.Names() {
			if err := ValidName(name); err != nil {
				t.Fatalf("user %q: %v", name, err)
			}
			u, ok := file.Lookup(name)
			if !ok || u.Name != name {
				t.Fatalf("Lookup(%q) = %+v, %v", name, u, ok)
			}
			// A user that can be written reads back the same.
			if strings.HasPrefix(strings.Join(u.Extra, " "), "userdb_mail=") {
				continue // Dovecot's older layout is read, never written
			}
			line, err := formatUser(u)
			if err != nil {
				continue
			}
			again, _, _ := parse([]byte(line + "\n"))
			if got, ok := again.Lookup(name); !ok || got.Password != u.Password || got.Home != u.Home || len(got.Extra) != len(u.Extra) {
				t.Fatalf("%+v written as %q reads back as %+v", u, line, got)
			}
		}
	})
}

func FuzzParsePlain(f *testing.F) {
	f.Add([]byte("\x00tim\x00tanstaaftanstaaf"))
	f.Add([]byte("a\x00a\x00b"))
	f.Add([]byte("a\x00b\x00c"))
	f.Fuzz(func(t *testing.T, b []byte) {
		authz, user, pass, err := ParsePlain(b)
		if err != nil {
			return
		}
		if authz+"\x00"+user+"\x00"+pass != string(b) || user == "" || pass == "" || authz != "" && authz != user {
			t.Fatalf("ParsePlain(%q) = %q, %q, %q", b, authz, user, pass)
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add("{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$P7RUIIOaQuclJiN9sVcBvg$M3ayAv16Uuv+s5mvzbSpSDeE8S12DRcYjxRe+0aEogo", "x")
	f.Add("{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", "Hello world!")
	f.Add("{BLF-CRYPT}$2a$04$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U")
	f.Add("{PLAIN}x", "x")
	f.Add("$1$UKivfc0m$GhOvI5yEzKz3DI538NNKI1", "x")
	f.Fuzz(func(t *testing.T, stored, password string) {
		// Costs come from the hash; keep them small enough to fuzz.
		if strings.Contains(stored, "rounds=") || strings.Contains(stored, "m=") && !strings.Contains(stored, "m=64,") {
			return
		}
		if i := strings.Index(stored, "$2"); i >= 0 && len(stored) > i+6 && stored[i+4:i+6] != "04" {
			return
		}
		ok, err := Verify(stored, password)
		if ok && err != nil {
			t.Fatalf("Verify = true, %v", err)
		}
	})
}
