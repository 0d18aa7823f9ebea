package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the costs of an ARGON2ID hash.
type Argon2Params struct {
	Time      uint32 // passes over memory (t)
	MemoryKiB uint32 // memory in KiB (m)
	Threads   uint8  // lanes (p)
}

// DefaultArgon2Params are what Dovecot writes for ARGON2ID without
// rounds: libsodium's "interactive" limits (64 MiB) with the pass count
// raised to 3, so hashes written here and by doveadm pw cost the same.
var DefaultArgon2Params = Argon2Params{Time: 3, MemoryKiB: 64 * 1024, Threads: 1}

// Limits on the Argon2 parameters of a stored hash. A hash is only as
// trusted as the passwd-file, but a typo there must not make every login
// allocate gigabytes: libsodium's largest preset ("sensitive") is 1 GiB.
const (
	maxArgon2MemoryKiB = 1 << 20 // 1 GiB
	maxArgon2Time      = 1 << 10
	argon2SaltLen      = 16 // libsodium's crypto_pwhash_SALTBYTES
	argon2KeyLen       = 32 // libsodium's crypto_pwhash_STRBYTES hash part
	minArgon2KeyLen    = 16 // libsodium refuses shorter outputs
	minArgon2SaltLen   = 8  // RFC 9106 §3.1
)

// argon2B64 is the encoding of salts and hashes in a PHC string: the
// standard alphabet without padding (libsodium's
// sodium_base64_VARIANT_ORIGINAL_NO_PADDING).
var argon2B64 = base64.RawStdEncoding

func hashArgon2ID(password string, p Argon2Params) (string, error) {
	if p == (Argon2Params{}) {
		p = DefaultArgon2Params
	}
	if p.Time < 1 || p.Time > maxArgon2Time || p.Threads < 1 ||
		p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxArgon2MemoryKiB {
		return "", fmt.Errorf("auth: %s parameters m=%d,t=%d,p=%d out of range", SchemeArgon2ID, p.MemoryKiB, p.Time, p.Threads)
	}
	salt := make([]byte, argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: %s salt: %w", SchemeArgon2ID, err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, argon2KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.MemoryKiB, p.Time, p.Threads, argon2B64.EncodeToString(salt), argon2B64.EncodeToString(key)), nil
}

// verifyArgon2 checks a PHC string "$argon2id$v=19$m=M,t=T,p=P$salt$hash"
// (or $argon2i$). As libsodium's crypto_pwhash_str_verify, the variant
// comes from the string, so the ARGON2 scheme name takes either. Only
// version 19 (0x13) exists in golang.org/x/crypto/argon2.
func verifyArgon2(scheme, hash, password string) (bool, error) {
	bad := func(why string) (bool, error) {
		return false, fmt.Errorf("%w: %s: %s", ErrMalformedHash, scheme, why)
	}
	f := strings.Split(hash, "$")
	if len(f) != 6 || f[0] != "" {
		return bad("want $argon2id$v=19$m=M,t=T,p=P$<salt>$<hash>")
	}
	variant := f[1]
	switch {
	case variant == "argon2id" && (scheme == SchemeArgon2ID || scheme == "ARGON2"):
	case variant == "argon2i" && (scheme == SchemeArgon2I || scheme == "ARGON2"):
	default:
		return bad("variant " + strconv.Quote(variant) + " does not match the scheme")
	}
	if f[2] != "v=19" {
		return bad("version must be v=19")
	}
	var m, t, p uint64
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return bad("parameters must be m=M,t=T,p=P")
	}
	for i, dst := range []*uint64{&m, &t, &p} {
		name, val, ok := strings.Cut(params[i], "=")
		n, err := strconv.ParseUint(val, 10, 32)
		if !ok || name != "mtp"[i:i+1] || err != nil {
			return bad("parameters must be m=M,t=T,p=P")
		}
		*dst = n
	}
	if p < 1 || p > 255 || t < 1 || t > maxArgon2Time || m < 8*p || m > maxArgon2MemoryKiB {
		return bad(fmt.Sprintf("parameters m=%d,t=%d,p=%d out of range", m, t, p))
	}
	salt, err := argon2B64.DecodeString(f[4])
	if err != nil || len(salt) < minArgon2SaltLen {
		return bad("bad salt")
	}
	want, err := argon2B64.DecodeString(f[5])
	if err != nil || len(want) < minArgon2KeyLen {
		return bad("bad hash")
	}
	var got []byte
	if variant == "argon2id" {
		got = argon2.IDKey([]byte(password), salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
	} else {
		got = argon2.Key([]byte(password), salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
