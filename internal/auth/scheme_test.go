package auth

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// testOptions are the cheapest costs each scheme allows, so that tests
// hash quickly; the format is the same as with the defaults.
var testOptions = HashOptions{
	BcryptCost:   4,
	SHA512Rounds: 1000,
	Argon2:       Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1},
}

func TestHashVerifyRoundTrip(t *testing.T) {
	passwords := []string{"x", "correct horse battery staple", "pässwörd ünïcode", "sp ace\ttab", strings.Repeat("7", 72)}
	for _, scheme := range []string{SchemeBlfCrypt, SchemeSHA512Crypt, SchemeArgon2ID, SchemePlain, "blf-crypt", "Argon2id"} {
		for _, pw := range passwords {
			if scheme == SchemePlain && strings.ContainsRune(pw, '\t') {
				continue // PLAIN refuses control characters, tested below
			}
			stored, err := HashWith(scheme, pw, testOptions)
			if err != nil {
				t.Fatalf("HashWith(%s, %q): %v", scheme, pw, err)
			}
			got, _ := SplitScheme(stored)
			if got != strings.ToUpper(scheme) {
				t.Errorf("HashWith(%s) = %q: scheme %q", scheme, stored, got)
			}
			if ok, err := Verify(stored, pw); !ok || err != nil {
				t.Errorf("Verify(%q, %q) = %v, %v; want true", stored, pw, ok, err)
			}
			for _, wrong := range []string{pw + "x", pw[:len(pw)-1], strings.ToUpper(pw), ""} {
				if wrong == pw || strings.HasPrefix(stored, "{BLF-CRYPT}") && len(pw) >= 72 && strings.HasPrefix(wrong, pw) {
					// bcrypt reads 72 bytes, as crypt_blowfish does.
					continue
				}
				if ok, err := Verify(stored, wrong); ok || err != nil {
					t.Errorf("Verify(%q, %q) = %v, %v; want false, nil", stored, wrong, ok, err)
				}
			}
		}
	}
}

func TestHashFormat(t *testing.T) {
	tests := []struct {
		scheme string
		opt    HashOptions
		prefix string
		length int // of the whole stored string
	}{
		{SchemeBlfCrypt, testOptions, "{BLF-CRYPT}$2y$04$", 11 + 60},
		{SchemeSHA512Crypt, HashOptions{SHA512Rounds: DefaultSHA512Rounds}, "{SHA512-CRYPT}$6$", 14 + 3 + 16 + 1 + 86},
		{SchemeSHA512Crypt, HashOptions{SHA512Rounds: 1000}, "{SHA512-CRYPT}$6$rounds=1000$", 14 + 3 + 12 + 16 + 1 + 86},
		{SchemeArgon2ID, testOptions, "{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$", 10 + 28 + 22 + 1 + 43},
		{SchemePlain, testOptions, "{PLAIN}", 7 + 6},
	}
	for _, tt := range tests {
		got, err := HashWith(tt.scheme, "secret", tt.opt)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got, tt.prefix) || len(got) != tt.length {
			t.Errorf("HashWith(%s) = %q (%d bytes), want prefix %q and %d bytes", tt.scheme, got, len(got), tt.prefix, tt.length)
		}
		again, _ := HashWith(tt.scheme, "secret", tt.opt)
		if tt.scheme != SchemePlain && again == got {
			t.Errorf("HashWith(%s) twice gave the same salt: %q", tt.scheme, got)
		}
	}
}

// TestHashDefaults checks the costs used when none are given, with the
// cheap schemes only (a default BLF-CRYPT or ARGON2ID hash costs ~0.2 s).
func TestHashDefaults(t *testing.T) {
	got, err := Hash(SchemeSHA512Crypt, "secret")
	if err != nil || strings.Contains(got, "rounds=") {
		t.Errorf("Hash(SHA512-CRYPT) = %q, %v; want the default rounds, not written", got, err)
	}
	if DefaultBcryptCost != 12 || DefaultScheme != SchemeBlfCrypt {
		t.Errorf("DefaultBcryptCost, DefaultScheme = %d, %s", DefaultBcryptCost, DefaultScheme)
	}
	if DefaultArgon2Params != (Argon2Params{Time: 3, MemoryKiB: 65536, Threads: 1}) {
		t.Errorf("DefaultArgon2Params = %+v, want Dovecot's m=65536,t=3,p=1", DefaultArgon2Params)
	}
}

func TestHashRefuses(t *testing.T) {
	tests := []struct {
		name, scheme, password string
		opt                    HashOptions
		want                   error
	}{
		{"empty", SchemeBlfCrypt, "", testOptions, ErrBadPassword},
		{"too long", SchemeSHA512Crypt, strings.Repeat("x", MaxPasswordLen+1), testOptions, ErrBadPassword},
		{"bcrypt over 72", SchemeBlfCrypt, strings.Repeat("x", 73), testOptions, ErrBadPassword},
		{"plain colon", SchemePlain, "a:b", testOptions, ErrBadPassword},
		{"plain newline", SchemePlain, "a\nb", testOptions, ErrBadPassword},
		{"plain NUL", SchemePlain, "a\x00b", testOptions, ErrBadPassword},
		{"plain not UTF-8", SchemePlain, "a\xffb", testOptions, ErrBadPassword},
		{"verify-only scheme", SchemeMD5Crypt, "secret", testOptions, ErrUnknownScheme},
		{"unknown scheme", "ROT13", "secret", testOptions, ErrUnknownScheme},
		{"bcrypt cost", SchemeBlfCrypt, "secret", HashOptions{BcryptCost: 3}, nil},
		{"sha rounds", SchemeSHA512Crypt, "secret", HashOptions{SHA512Rounds: 999}, nil},
		{"argon2 memory", SchemeArgon2ID, "secret", HashOptions{Argon2: Argon2Params{Time: 1, MemoryKiB: 4, Threads: 1}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HashWith(tt.scheme, tt.password, tt.opt)
			if err == nil {
				t.Fatalf("HashWith = %q, want an error", got)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if tt.want == ErrUnknownScheme && !strings.Contains(err.Error(), strings.ToUpper(tt.scheme)) {
				t.Errorf("err = %v, does not name the scheme", err)
			}
		})
	}
}

// TestVerifyKnownVectors checks hashes computed by other implementations:
// the SHA-crypt specification's examples (also what openssl passwd -5/-6
// prints), crypt_blowfish's test vector, and hashes that Dovecot's
// doveadm pw made (more, ARGON2ID and ARGON2I among them, in
// testdata/dovecot.passwd, see TestLoadDovecotFile).
func TestVerifyKnownVectors(t *testing.T) {
	tests := []struct {
		stored, password string
	}{
		{"{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", "Hello world!"},
		{"{SHA512-CRYPT}$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.", "Hello world!"},
		{"{SHA256-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", "Hello world!"},
		{"{BLF-CRYPT}$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
		{"{BLF-CRYPT}$2y$05$w4YhcXHZO5bZNKk0VX83yOjgLlws5N2VMC9tB9VLtw/kTSuat6uli", "correct horse battery staple"},
		{"{MD5-CRYPT}$1$UKivfc0m$GhOvI5yEzKz3DI538NNKI1", "correct horse battery staple"},
		{"{CRYPT}$2y$05$.q.F9TXbkq.ZxGk6V8nPhOWeErKTdijU0Ee/duJgsD721dfza09M6", "correct horse battery staple"},
		{"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", "Hello world!"},
		{"{CRYPT}$1$UKivfc0m$GhOvI5yEzKz3DI538NNKI1", "correct horse battery staple"},
		{"{CLEARTEXT}Hello world!", "Hello world!"},
	}
	for _, tt := range tests {
		if ok, err := Verify(tt.stored, tt.password); !ok || err != nil {
			t.Errorf("Verify(%q, %q) = %v, %v; want true", tt.stored, tt.password, ok, err)
		}
		if ok, err := Verify(tt.stored, tt.password+" "); ok || err != nil {
			t.Errorf("Verify(%q, wrong) = %v, %v; want false, nil", tt.stored, ok, err)
		}
	}
}

// TestVerifyBcryptLong: crypt_blowfish, and so Dovecot, ignore the bytes
// of a password after the 72nd; so must we, or such users are locked out.
func TestVerifyBcryptLong(t *testing.T) {
	long := strings.Repeat("x", 72)
	stored, err := HashWith(SchemeBlfCrypt, long, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Verify(stored, long+"ignored"); !ok || err != nil {
		t.Errorf("Verify(bcrypt of 72 bytes, 79 bytes) = %v, %v; want true", ok, err)
	}
}

// TestVerifyArgon2Names: the ARGON2 scheme (the name of Dovecot's first
// libsodium scheme) takes either variant; ARGON2ID and ARGON2I only their
// own (see TestVerifyErrors).
func TestVerifyArgon2Names(t *testing.T) {
	stored, err := HashWith(SchemeArgon2ID, "pw", testOptions)
	if err != nil {
		t.Fatal(err)
	}
	_, phc := SplitScheme(stored)
	for _, s := range []string{"{ARGON2}" + phc, "{argon2id}" + phc} {
		if ok, err := Verify(s, "pw"); !ok || err != nil {
			t.Errorf("Verify(%q) = %v, %v", s, ok, err)
		}
	}
	if ok, err := Verify("{ARGON2I}"+phc, "pw"); ok || err == nil {
		t.Errorf("ARGON2I took an argon2id hash: %v, %v", ok, err)
	}
}

func TestVerifyErrors(t *testing.T) {
	tests := []struct {
		stored string
		want   error
		names  string // the error must contain this
	}{
		{"{SSHA512}abcd", ErrUnknownScheme, "SSHA512"},
		{"{ssha}abcd", ErrUnknownScheme, "SSHA"},
		{"{PLAIN-MD5}0d2bf3c712402f428d48fed691850bfc", ErrUnknownScheme, "PLAIN-MD5"},
		{"{SHA512-CRYPT.B64}abc", ErrUnknownScheme, "SHA512-CRYPT.B64"},
		{"{CRYPT}$y$j9T$abc$def", ErrUnknownScheme, "$y$"},
		{"abJnggxhB/yWI", ErrUnknownScheme, "DES"},
		{"{}abc", ErrUnknownScheme, `""`},
		{"{PLAIN}", ErrNoPassword, ""},
		{"", ErrNoPassword, ""},
		{"{BLF-CRYPT}$2y$05$short", ErrMalformedHash, "BLF-CRYPT"},
		{"{BLF-CRYPT}$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", ErrMalformedHash, ""},
		{"{BLF-CRYPT}$2y$99$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", ErrMalformedHash, ""},
		{"{BLF-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", ErrMalformedHash, ""},
		{"{SHA512-CRYPT}$6$saltstring$svn8UoSVap", ErrMalformedHash, "$6$"},
		{"{SHA512-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", ErrMalformedHash, ""},
		{"{SHA512-CRYPT}$6$rounds=x$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", ErrMalformedHash, ""},
		{"{ARGON2ID}$argon2i$v=19$m=32768,t=4,p=1$P7RUIIOaQuclJiN9sVcBvg$M3ayAv16Uuv+s5mvzbSpSDeE8S12DRcYjxRe+0aEogo", ErrMalformedHash, "variant"},
		{"{ARGON2ID}$argon2id$v=16$m=64,t=1,p=1$P7RUIIOaQuclJiN9sVcBvg$M3ayAv16Uuv+s5mvzbSpSDeE8S12DRcYjxRe+0aEogo", ErrMalformedHash, "version"},
		{"{ARGON2ID}$argon2id$m=64,t=1,p=1$P7RUIIOaQuclJiN9sVcBvg$M3ayAv16Uuv+s5mvzbSpSDeE8S12DRcYjxRe+0aEogo", ErrMalformedHash, ""},
		{"{ARGON2ID}$argon2id$v=19$t=1,m=64,p=1$P7RUIIOaQuclJiN9sVcBvg$M3ayAv16Uuv+s5mvzbSpSDeE8S12DRcYjxRe+0aEogo", ErrMalformedHash, "m=M"},
		{"{ARGON2ID}$argon2id$v=19$m=4194304,t=1,p=1$P7RUIIOaQuclJiN9sVcBvg$M3ayAv16Uuv+s5mvzbSpSDeE8S12DRcYjxRe+0aEogo", ErrMalformedHash, "range"},
		{"{ARGON2ID}$argon2id$v=19$m=64,t=0,p=1$P7RUIIOaQuclJiN9sVcBvg$M3ayAv16Uuv+s5mvzbSpSDeE8S12DRcYjxRe+0aEogo", ErrMalformedHash, "range"},
		{"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$P7RUIIOaQuclJiN9sVcBvg==$M3ayAv16Uuv+s5mvzbSpSDeE8S12DRcYjxRe+0aEogo", ErrMalformedHash, "salt"},
		{"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$P7RUIIOaQuclJiN9sVcBvg$M3ayAv16", ErrMalformedHash, "hash"},
		{"{ARGON2ID}$argon2id$v=19$m=64,t=1,p=1$P7RUIIOaQuclJiN9sVcBvg", ErrMalformedHash, ""},
	}
	for _, tt := range tests {
		ok, err := Verify(tt.stored, "Hello world!")
		if ok || !errors.Is(err, tt.want) || !strings.Contains(fmt2(err), tt.names) {
			t.Errorf("Verify(%q) = %v, %v; want false, %v naming %q", tt.stored, ok, err, tt.want, tt.names)
		}
	}
}

func fmt2(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestVerifyLocked(t *testing.T) {
	for _, stored := range []string{"!", "*", "!$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1", "{CRYPT}*LK*"} {
		if ok, err := Verify(stored, "Hello world!"); ok || err != nil {
			t.Errorf("Verify(%q) = %v, %v; want false, nil (locked)", stored, ok, err)
		}
	}
}

func TestSplitScheme(t *testing.T) {
	tests := []struct{ stored, scheme, hash string }{
		{"{BLF-CRYPT}$2y$x", "BLF-CRYPT", "$2y$x"},
		{"{plain}pw", "PLAIN", "pw"},
		{"{PLAIN}{x}", "PLAIN", "{x}"},
		{"$6$abc", "CRYPT", "$6$abc"},
		{"{unterminated", "CRYPT", "{unterminated"},
		{"{}x", "", "x"}, // Dovecot too: an empty, unknown scheme
		{"", "CRYPT", ""},
	}
	for _, tt := range tests {
		s, h := SplitScheme(tt.stored)
		if s != tt.scheme || h != tt.hash {
			t.Errorf("SplitScheme(%q) = %q, %q; want %q, %q", tt.stored, s, h, tt.scheme, tt.hash)
		}
	}
	if !IsPlaintext("{Clear}x") || IsPlaintext("{BLF-CRYPT}x") || IsPlaintext("plain") {
		t.Error("IsPlaintext is wrong")
	}
}

// TestDovecotVerifiesOurHashes gives hashes made here to Dovecot's
// doveadm pw -t. It is skipped where Dovecot is not installed
// (apt-get install dovecot-core).
func TestDovecotVerifiesOurHashes(t *testing.T) {
	doveadm, err := exec.LookPath("doveadm")
	if err != nil {
		t.Skip("doveadm not installed")
	}
	const pw = "pässwörd ünïcode: $x"
	for _, scheme := range []string{SchemeBlfCrypt, SchemeSHA512Crypt, SchemeArgon2ID} {
		stored, err := HashWith(scheme, pw, HashOptions{BcryptCost: 4, SHA512Rounds: 1000, Argon2: Argon2Params{Time: 3, MemoryKiB: 64, Threads: 1}})
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(doveadm, "pw", "-t", stored, "-p", pw).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "(verified)") {
			t.Errorf("doveadm pw -t %s: %v\n%s", stored, err, out)
		}
		out, err = exec.Command(doveadm, "pw", "-t", stored, "-p", pw+"x").CombinedOutput()
		if err == nil || strings.Contains(string(out), "(verified)") {
			t.Errorf("doveadm pw -t %s with a wrong password: verified\n%s", stored, out)
		}
	}
}
