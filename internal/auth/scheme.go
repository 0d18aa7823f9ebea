package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/GehirnInc/crypt"
	"github.com/GehirnInc/crypt/common"
	"github.com/GehirnInc/crypt/md5_crypt"
	"github.com/GehirnInc/crypt/sha256_crypt"
	"github.com/GehirnInc/crypt/sha512_crypt"
	"golang.org/x/crypto/bcrypt"
)

// Scheme names, as Dovecot spells them between braces. Names are matched
// without regard to case, as Dovecot does.
const (
	SchemeBlfCrypt    = "BLF-CRYPT"    // bcrypt, $2y$; written and verified
	SchemeSHA512Crypt = "SHA512-CRYPT" // SHA-512 crypt, $6$; written and verified
	SchemeArgon2ID    = "ARGON2ID"     // Argon2id PHC string; written and verified
	SchemePlain       = "PLAIN"        // clear text; written and verified, with warnings
	SchemeArgon2I     = "ARGON2I"      // verified only
	SchemeSHA256Crypt = "SHA256-CRYPT" // verified only
	SchemeMD5Crypt    = "MD5-CRYPT"    // verified only
	SchemeCrypt       = "CRYPT"        // crypt(3) by hash prefix; verified only

	// DefaultScheme is what new passwords are hashed with, and what an
	// Authenticator's dummy hash uses. Dovecot recommends it too.
	DefaultScheme = SchemeBlfCrypt
)

// Hashing costs. The defaults are Dovecot's own where Dovecot has one, so
// that hashes written here cost the same to check as hashes written by
// doveadm pw.
const (
	// DefaultBcryptCost is the BLF-CRYPT cost (log2 of the rounds).
	// Dovecot's doveadm pw uses 5, which is far too cheap today; 12 takes
	// about 0.2 s on a 2020s server core, an acceptable price per login.
	DefaultBcryptCost = 12

	// DefaultSHA512Rounds is the SHA512-CRYPT rounds count when none is
	// written in the hash (the crypt spec's default, and Dovecot's).
	DefaultSHA512Rounds = 5000

	// MaxPasswordLen bounds a password an Authenticator will check and
	// Hash will store. SHA-crypt costs grow with the password length
	// times the rounds, so a megabyte password would be a cheap way to
	// burn a core; RFC 4616 only requires servers to take 255 octets.
	MaxPasswordLen = 1024

	// bcryptMaxPasswordLen is where bcrypt stops reading the password; a
	// longer password would be stored truncated, so Hash refuses it.
	bcryptMaxPasswordLen = 72
)

// HashOptions sets the costs Hash uses. The zero value means the
// defaults; tests use low costs.
type HashOptions struct {
	BcryptCost   int          // 0: DefaultBcryptCost; bcrypt allows 4..31
	SHA512Rounds int          // 0: DefaultSHA512Rounds; 1000..999999999
	Argon2       Argon2Params // zero: DefaultArgon2Params
}

// SplitScheme splits a stored password into its scheme (upper case) and
// the rest. A password without a leading "{SCHEME}" is CRYPT, Dovecot's
// default_pass_scheme.
func SplitScheme(stored string) (scheme, hash string) {
	if strings.HasPrefix(stored, "{") {
		if end := strings.IndexByte(stored, '}'); end > 0 {
			return strings.ToUpper(stored[1:end]), stored[end+1:]
		}
	}
	return SchemeCrypt, stored
}

// IsPlaintext reports whether a stored password is kept in clear text
// (PLAIN, CLEAR or CLEARTEXT), which deserves a warning in the log.
func IsPlaintext(stored string) bool {
	scheme, _ := SplitScheme(stored)
	return isPlainScheme(scheme)
}

func isPlainScheme(scheme string) bool {
	return scheme == SchemePlain || scheme == "CLEAR" || scheme == "CLEARTEXT"
}

// Verify reports whether password matches the stored password
// "{SCHEME}hash". A mismatch is (false, nil); an error means the stored
// password cannot be checked at all: ErrUnknownScheme (the text names the
// scheme), ErrMalformedHash or ErrNoPassword. Comparisons of the computed
// hash are constant time; the time spent is that of the scheme, whatever
// the password.
//
// Verified: BLF-CRYPT ($2a$, $2b$, $2y$), SHA512-CRYPT, SHA256-CRYPT,
// MD5-CRYPT, ARGON2ID, ARGON2I (and ARGON2, Dovecot's older name for
// either), PLAIN/CLEAR/CLEARTEXT, and CRYPT (or no scheme), which is
// crypt(3) recognised by its prefix among those above. A CRYPT hash
// starting with '!' or '*' is a locked account, as in /etc/shadow: it
// never matches.
func Verify(stored, password string) (bool, error) {
	scheme, hash := SplitScheme(stored)
	if hash == "" {
		return false, ErrNoPassword
	}
	switch {
	case scheme == SchemeBlfCrypt:
		return verifyBcrypt(hash, password)
	case scheme == SchemeSHA512Crypt:
		return verifyCrypt(sha512_crypt.New(), sha512_crypt.MagicPrefix, 86, hash, password)
	case scheme == SchemeSHA256Crypt:
		return verifyCrypt(sha256_crypt.New(), sha256_crypt.MagicPrefix, 43, hash, password)
	case scheme == SchemeMD5Crypt:
		return verifyCrypt(md5_crypt.New(), md5_crypt.MagicPrefix, 22, hash, password)
	case scheme == SchemeArgon2ID, scheme == SchemeArgon2I, scheme == "ARGON2":
		return verifyArgon2(scheme, hash, password)
	case isPlainScheme(scheme):
		a, b := sha256.Sum256([]byte(hash)), sha256.Sum256([]byte(password))
		return subtle.ConstantTimeCompare(a[:], b[:]) == 1, nil
	case scheme == SchemeCrypt:
		return verifyLibcCrypt(hash, password)
	}
	return false, fmt.Errorf("%w %q", ErrUnknownScheme, scheme)
}

// verifyLibcCrypt checks a crypt(3) string by its prefix, as glibc's
// crypt() would pick the algorithm.
func verifyLibcCrypt(hash, password string) (bool, error) {
	switch {
	case hash[0] == '!' || hash[0] == '*':
		return false, nil
	case isBcryptPrefix(hash):
		return verifyBcrypt(hash, password)
	case strings.HasPrefix(hash, sha512_crypt.MagicPrefix):
		return verifyCrypt(sha512_crypt.New(), sha512_crypt.MagicPrefix, 86, hash, password)
	case strings.HasPrefix(hash, sha256_crypt.MagicPrefix):
		return verifyCrypt(sha256_crypt.New(), sha256_crypt.MagicPrefix, 43, hash, password)
	case strings.HasPrefix(hash, md5_crypt.MagicPrefix):
		return verifyCrypt(md5_crypt.New(), md5_crypt.MagicPrefix, 22, hash, password)
	}
	id := "DES"
	if hash[0] == '$' {
		id, _, _ = strings.Cut(hash[1:], "$")
		id = "$" + id + "$"
	}
	return false, fmt.Errorf("%w %q: crypt(3) algorithm %s is not supported", ErrUnknownScheme, SchemeCrypt, id)
}

// isBcryptPrefix accepts the bcrypt variants that mean the same
// computation. $2x$ (crypt_blowfish's emulation of its old sign-extension
// bug) does not, so it is refused rather than checked wrongly.
func isBcryptPrefix(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}

func verifyBcrypt(hash, password string) (bool, error) {
	if !isBcryptPrefix(hash) || len(hash) != 60 {
		return false, fmt.Errorf("%w: %s hash must be 60 bytes starting $2a$, $2b$ or $2y$", ErrMalformedHash, SchemeBlfCrypt)
	}
	// bcrypt reads at most 72 bytes of the password, as crypt_blowfish
	// (Dovecot's implementation) does, so long passwords agree too.
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	}
	return false, fmt.Errorf("%w: %s: %v", ErrMalformedHash, SchemeBlfCrypt, err)
}

// verifyCrypt checks a SHA-crypt or MD5-crypt string whose final field
// must be sumLen characters of the crypt alphabet.
func verifyCrypt(c crypt.Crypter, prefix string, sumLen int, hash, password string) (bool, error) {
	i := strings.LastIndexByte(hash, '$')
	if !strings.HasPrefix(hash, prefix) || i < len(prefix) || !isCryptB64(hash[i+1:], sumLen) {
		return false, fmt.Errorf("%w: %s hash is not %s<salt>$<%d characters>", ErrMalformedHash, prefix, prefix, sumLen)
	}
	err := c.Verify(hash, []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, crypt.ErrKeyMismatch):
		return false, nil
	}
	return false, fmt.Errorf("%w: %s: %v", ErrMalformedHash, prefix, err)
}

func isCryptB64(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '.' || c == '/' || '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// Hash hashes password with scheme and the default costs, and returns the
// stored form "{SCHEME}hash". See HashWith.
func Hash(scheme, password string) (string, error) {
	return HashWith(scheme, password, HashOptions{})
}

// CanHash returns nil when Hash writes scheme, else an error wrapping
// ErrUnknownScheme that names it.
func CanHash(scheme string) error {
	switch strings.ToUpper(scheme) {
	case SchemeBlfCrypt, SchemeSHA512Crypt, SchemeArgon2ID, SchemePlain:
		return nil
	}
	return fmt.Errorf("%w %q (can write %s, %s, %s, %s)", ErrUnknownScheme, strings.ToUpper(scheme),
		SchemeBlfCrypt, SchemeSHA512Crypt, SchemeArgon2ID, SchemePlain)
}

// HashWith hashes password with scheme and the costs in opt. Schemes
// written: BLF-CRYPT (as $2y$, the variant Dovecot writes), SHA512-CRYPT
// (16-character salt), ARGON2ID (libsodium's encoding, see the package
// doc) and PLAIN. Salts come from crypto/rand.
//
// A password that is empty or longer than MaxPasswordLen is refused
// (ErrBadPassword), so is a BLF-CRYPT password longer than 72 bytes
// (bcrypt would silently ignore the rest), and a PLAIN password with a
// byte the passwd-file cannot hold (':' or a control character).
func HashWith(scheme, password string, opt HashOptions) (string, error) {
	scheme = strings.ToUpper(scheme)
	if password == "" {
		return "", fmt.Errorf("%w: empty", ErrBadPassword)
	}
	if len(password) > MaxPasswordLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrBadPassword, MaxPasswordLen)
	}
	switch scheme {
	case SchemeBlfCrypt:
		if len(password) > bcryptMaxPasswordLen {
			return "", fmt.Errorf("%w: %s uses only the first %d bytes of a password", ErrBadPassword, SchemeBlfCrypt, bcryptMaxPasswordLen)
		}
		cost := opt.BcryptCost
		if cost == 0 {
			cost = DefaultBcryptCost
		}
		if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
			return "", fmt.Errorf("auth: %s cost %d is outside %d..%d", SchemeBlfCrypt, cost, bcrypt.MinCost, bcrypt.MaxCost)
		}
		h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
		if err != nil {
			return "", fmt.Errorf("auth: %s: %w", SchemeBlfCrypt, err)
		}
		// Go writes $2a$; the computation is the same as $2y$ (Go has
		// no sign-extension bug), and $2y$ is what Dovecot writes.
		return "{" + SchemeBlfCrypt + "}$2y$" + string(h[4:]), nil

	case SchemeSHA512Crypt:
		rounds := opt.SHA512Rounds
		if rounds == 0 {
			rounds = DefaultSHA512Rounds
		}
		if rounds < sha512_crypt.RoundsMin || rounds > sha512_crypt.RoundsMax {
			return "", fmt.Errorf("auth: %s rounds %d is outside %d..%d", SchemeSHA512Crypt, rounds, sha512_crypt.RoundsMin, sha512_crypt.RoundsMax)
		}
		salt := common.Salt{
			MagicPrefix:   []byte(sha512_crypt.MagicPrefix),
			SaltLenMin:    sha512_crypt.SaltLenMin,
			SaltLenMax:    sha512_crypt.SaltLenMax,
			RoundsDefault: sha512_crypt.RoundsDefault,
			RoundsMin:     sha512_crypt.RoundsMin,
			RoundsMax:     sha512_crypt.RoundsMax,
		}
		h, err := sha512_crypt.New().Generate([]byte(password), salt.GenerateWRounds(sha512_crypt.SaltLenMax, rounds))
		if err != nil {
			return "", fmt.Errorf("auth: %s: %w", SchemeSHA512Crypt, err)
		}
		return "{" + SchemeSHA512Crypt + "}" + h, nil

	case SchemeArgon2ID:
		h, err := hashArgon2ID(password, opt.Argon2)
		if err != nil {
			return "", err
		}
		return "{" + SchemeArgon2ID + "}" + h, nil

	case SchemePlain:
		if !utf8.ValidString(password) {
			return "", fmt.Errorf("%w: not UTF-8", ErrBadPassword)
		}
		for _, r := range password {
			if r == ':' || r < 0x20 || r == 0x7f {
				return "", fmt.Errorf("%w: %s cannot hold ':' or control characters in a passwd-file", ErrBadPassword, SchemePlain)
			}
		}
		return "{" + SchemePlain + "}" + password, nil
	}
	return "", CanHash(scheme)
}
