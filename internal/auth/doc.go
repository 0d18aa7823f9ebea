// Package auth owns Cistern's users: the passwd-file that lists them, the
// password schemes their passwords are stored in, the check of a login
// (Authenticator) and the decoding of SASL PLAIN (ParsePlain). The file
// and the schemes are Dovecot's, so one file serves both servers and an
// installation can move between them with its passwords.
//
// # The passwd-file
//
// A text file, one user per '\n'-terminated line (a '\r' before the '\n'
// is ignored), in the layout of /etc/passwd with Dovecot's additions:
//
//	user:password:uid:gid:gecos:home:shell:extra_fields
//
//	field        | meaning
//	-------------+-----------------------------------------------------------
//	user         | the login name, case-sensitive; see ValidName
//	password     | "{SCHEME}hash"; without "{SCHEME}", crypt(3) (CRYPT)
//	uid, gid     | Dovecot's userdb ids (numbers or names); kept, not used here
//	gecos, shell | unused, kept
//	home         | the user's home directory (%h in mail_location)
//	extra_fields | space-separated "key=value" (or "key") tokens, e.g.
//	             | userdb_quota_rule=*:storage=1G; everything after the
//	             | seventh ':' belongs to it, so values may hold ':'
//
// Trailing fields may be left out. Empty lines, lines of only blanks and
// lines starting with '#' are ignored. A line whose user name fails
// ValidName, and a second line for a user already defined, is skipped and
// reported as a Problem with its line number; the first line of a user
// wins, as in Dovecot. Dovecot's older layout, an empty eighth field
// followed by a mail location, reads as the extra field
// "userdb_mail=<location>". Dovecot's libpam-pwdfile suffixes
// ("hash[13]", "hash[34]") are not recognised.
//
// Cistern writes lines that Dovecot reads:
//
//	name:{SCHEME}hash:uid:gid:gecos:home:shell[:extra extra ...]
//
// # Password schemes
//
//	scheme                | stored as                                     | here
//	----------------------+-----------------------------------------------+---------------
//	BLF-CRYPT             | bcrypt $2y$NN$<22 salt><31 hash> ($2a$, $2b$) | write, verify
//	SHA512-CRYPT          | $6$[rounds=N$]<salt ≤16>$<86>                 | write, verify
//	ARGON2ID              | $argon2id$v=19$m=KiB,t=T,p=P$<salt>$<hash>    | write, verify
//	PLAIN (CLEAR, ...)    | the password itself                           | write, verify; warned
//	ARGON2I (ARGON2)      | $argon2i$v=19$...                             | verify
//	SHA256-CRYPT          | $5$[rounds=N$]<salt>$<43>                     | verify
//	MD5-CRYPT             | $1$<salt>$<22>                                | verify
//	CRYPT (or no scheme)  | crypt(3): one of the $2?$, $6$, $5$, $1$ above| verify
//
// Scheme names are matched without regard to case. ARGON2ID strings are
// libsodium's crypto_pwhash_str format, which Dovecot stores as is: the
// PHC string with the salt and hash in standard base64 without '='
// padding; Dovecot writes a 16-byte salt, a 32-byte hash and, by default,
// m=65536,t=3,p=1 (DefaultArgon2Params). Any other scheme is an error that
// names it (ErrUnknownScheme); a login against it fails.
//
// # Concurrency and durability
//
// Readers (LoadFile, Authenticator) never lock: writers replace the file
// by rename, so a reader sees the old file or the new one, whole.
// Writers (Add, SetPassword, Delete) serialise on an exclusive flock(2) of
// the passwd-file itself, re-taken when the file was replaced while they
// waited; there is no lock file and no stale lock. Dovecot never writes
// the file; another program that edits it in place without flock may
// lose a change made here at the same moment, or have its own lost.
//
// Each write reads the file under the lock, changes only the lines it
// must (every other byte, comments and unknown lines included, is kept),
// writes a temporary file in the same directory with mode 0600 (0640
// when the old file was readable by its group, which a server may run
// in; never readable by others) and the old file's owner when permitted,
// fsyncs it, renames it over the file and fsyncs the directory. A crash
// leaves the old file or the new one.
package auth
