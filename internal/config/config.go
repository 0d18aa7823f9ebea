// Package config owns Cistern's configuration file: its keys, their
// defaults, their validation, and the expansion of mail_location into a
// user's Maildir path. It reads TOML (github.com/BurntSushi/toml); a key
// it does not know is an error naming the key, never ignored, so a typo
// cannot silently leave a default in force.
//
// # Keys
//
//	key                           | default                | rule
//	------------------------------+------------------------+-------------------------------------------
//	data_dir                      | /var/lib/cistern       | absolute path; index and state
//	mail_location                 | /var/mail/%u/Maildir   | template, see MailDir; absolute after expansion
//	passwd_file                   | /etc/cistern/passwd    | absolute path; see package auth
//	imap.listen                   | ["127.0.0.1:143"]      | host:port list; [] for none
//	imap.listen_tls               | []                     | host:port list, implicit TLS; needs tls.*
//	imap.idle_timeout             | "30m"                  | duration string, >= 30m (RFC 9051 §5.4)
//	imap.max_line                 | 65536                  | bytes, 8192..16 MiB (RFC 7162 §4)
//	imap.max_literal              | 67108864               | bytes, 1..4 GiB-1; also APPENDLIMIT (RFC 7889)
//	imap.max_commands_before_auth | 20                     | 1..1000
//	lmtp.listen                   | []                     | host:port list
//	tls.cert, tls.key             | ""                     | absolute paths, both or neither
//	log.level                     | "info"                 | debug, info, warn, error
//	log.format                    | "text"                 | text, json
//
// No address may appear twice across imap.listen, imap.listen_tls and
// lmtp.listen. testdata/cistern.example.toml shows every key.
//
// # Zero values
//
// The zero Config is usable and means every default: Validate accepts
// it, MailDir uses DefaultMailLocation, and WithDefaults returns the
// values in force. A zero field means its default, except that an empty,
// non-nil imap.listen means "no plain IMAP listener" (nil means the
// default). Load returns a Config with every default filled in.
//
// A Config is a plain value: not safe for concurrent writes, safe to
// read from any number of goroutines.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is where the cistern command looks for its configuration
// when no --config is given.
const DefaultPath = "/etc/cistern/cistern.toml"

// Defaults, and the limits Validate enforces, with their reasons.
const (
	DefaultDataDir      = "/var/lib/cistern"
	DefaultMailLocation = "/var/mail/%u/Maildir"
	DefaultPasswdFile   = "/etc/cistern/passwd"
	DefaultIMAPListen   = "127.0.0.1:143"

	// DefaultIdleTimeout is also the least allowed: RFC 9051 §5.4 says an
	// autologout timer after authentication MUST be at least 30 minutes.
	DefaultIdleTimeout = 30 * time.Minute
	MinIdleTimeout     = 30 * time.Minute

	// DefaultMaxLine bounds one command line outside literals. RFC 7162
	// §4 asks servers to accept lines of at least 8192 octets; long
	// UID sets from clients that do not use ranges need more.
	DefaultMaxLine = 64 << 10
	MinMaxLine     = 8192
	MaxMaxLine     = 16 << 20

	// DefaultMaxLiteral bounds one literal, hence one APPENDed message,
	// and is announced as APPENDLIMIT (RFC 7889). Above 4 GiB-1 clients
	// with 32-bit sizes break.
	DefaultMaxLiteral = 64 << 20
	MaxMaxLiteral     = 1<<32 - 1

	// DefaultMaxCommandsBeforeAuth closes a connection that keeps
	// talking without logging in (a scanner, or a client in a loop).
	DefaultMaxCommandsBeforeAuth = 20
	MaxMaxCommandsBeforeAuth     = 1000

	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"
)

// Config is the configuration file. Field comments give the TOML key.
type Config struct {
	DataDir      string `toml:"data_dir"`      // data_dir
	MailLocation string `toml:"mail_location"` // mail_location; see MailDir
	PasswdFile   string `toml:"passwd_file"`   // passwd_file
	IMAP         IMAP   `toml:"imap"`          // [imap]
	LMTP         LMTP   `toml:"lmtp"`          // [lmtp]
	TLS          TLS    `toml:"tls"`           // [tls]
	Log          Log    `toml:"log"`           // [log]
}

// IMAP is the [imap] section.
type IMAP struct {
	Listen                []string      `toml:"listen"`                   // nil: DefaultIMAPListen; empty: none
	ListenTLS             []string      `toml:"listen_tls"`               // implicit TLS (RFC 8314)
	IdleTimeout           time.Duration `toml:"idle_timeout"`             // 0: DefaultIdleTimeout
	MaxLine               int           `toml:"max_line"`                 // 0: DefaultMaxLine
	MaxLiteral            int64         `toml:"max_literal"`              // 0: DefaultMaxLiteral
	MaxCommandsBeforeAuth int           `toml:"max_commands_before_auth"` // 0: DefaultMaxCommandsBeforeAuth
}

// LMTP is the [lmtp] section.
type LMTP struct {
	Listen []string `toml:"listen"` // none by default
}

// TLS is the [tls] section: one certificate chain and its key, PEM.
type TLS struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// Log is the [log] section.
type Log struct {
	Level  string `toml:"level"`  // "": DefaultLogLevel
	Format string `toml:"format"` // "": DefaultLogFormat
}

// Default returns the configuration in force when the file sets nothing.
func Default() *Config {
	c := (&Config{}).WithDefaults()
	return &c
}

// WithDefaults returns a copy of c with every zero field set to its
// default. Slices are copied.
func (c *Config) WithDefaults() Config {
	d := *c
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&d.DataDir, DefaultDataDir)
	def(&d.MailLocation, DefaultMailLocation)
	def(&d.PasswdFile, DefaultPasswdFile)
	def(&d.Log.Level, DefaultLogLevel)
	def(&d.Log.Format, DefaultLogFormat)
	if d.IMAP.Listen == nil {
		d.IMAP.Listen = []string{DefaultIMAPListen}
	} else {
		d.IMAP.Listen = slices.Clone(d.IMAP.Listen)
	}
	d.IMAP.ListenTLS = slices.Clone(d.IMAP.ListenTLS)
	d.LMTP.Listen = slices.Clone(d.LMTP.Listen)
	if d.IMAP.IdleTimeout == 0 {
		d.IMAP.IdleTimeout = DefaultIdleTimeout
	}
	if d.IMAP.MaxLine == 0 {
		d.IMAP.MaxLine = DefaultMaxLine
	}
	if d.IMAP.MaxLiteral == 0 {
		d.IMAP.MaxLiteral = DefaultMaxLiteral
	}
	if d.IMAP.MaxCommandsBeforeAuth == 0 {
		d.IMAP.MaxCommandsBeforeAuth = DefaultMaxCommandsBeforeAuth
	}
	return d
}

// KeyError is one problem with one key.
type KeyError struct {
	Key     string // dotted TOML key, e.g. "imap.idle_timeout"
	Problem string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Problem }

// Errors is every problem found in a configuration, one per key, in the
// order of the key table. errors.As finds each *KeyError in it.
type Errors []*KeyError

func (e Errors) Error() string {
	s := make([]string, len(e))
	for i, k := range e {
		s[i] = k.Error()
	}
	return strings.Join(s, "; ")
}

func (e Errors) Unwrap() []error {
	errs := make([]error, len(e))
	for i, k := range e {
		errs[i] = k
	}
	return errs
}

// Load reads the TOML file at path over the defaults and validates the
// result. Errors name the file; a syntax error its line, an unknown key
// or a bad value the key (as Errors).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c := Default()
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var errs Errors
	for _, k := range md.Undecoded() {
		errs = append(errs, &KeyError{Key: k.String(), Problem: "unknown key"})
	}
	// toml takes an integer as nanoseconds; "30" would be 30ns.
	if md.Type("imap", "idle_timeout") == "Integer" {
		errs = append(errs, &KeyError{Key: "imap.idle_timeout", Problem: `must be a duration string such as "30m"`})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config %s: %w", path, errs)
	}
	// An empty list and no list mean the same for these.
	if len(c.IMAP.ListenTLS) == 0 {
		c.IMAP.ListenTLS = nil
	}
	if len(c.LMTP.Listen) == 0 {
		c.LMTP.Listen = nil
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Validate checks every key of c (zero fields as their defaults) and
// returns Errors, or nil.
func (c *Config) Validate() error {
	d := c.WithDefaults()
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Problem: fmt.Sprintf(format, args...)})
	}
	absolute := func(key, path string) {
		if !filepath.IsAbs(path) {
			bad(key, "must be an absolute path, got %q", path)
		}
	}
	absolute("data_dir", d.DataDir)
	if err := checkTemplate(d.MailLocation); err != nil {
		bad("mail_location", "%v", err)
	}
	absolute("passwd_file", d.PasswdFile)

	seen := map[string]string{}
	for _, l := range []struct {
		key   string
		addrs []string
	}{{"imap.listen", d.IMAP.Listen}, {"imap.listen_tls", d.IMAP.ListenTLS}, {"lmtp.listen", d.LMTP.Listen}} {
		for _, a := range l.addrs {
			if err := checkAddr(a); err != nil {
				bad(l.key, "%q: %v", a, err)
			} else if other, dup := seen[a]; dup {
				bad(l.key, "%q is also in %s", a, other)
			} else {
				seen[a] = l.key
			}
		}
	}
	if d.IMAP.IdleTimeout < MinIdleTimeout {
		bad("imap.idle_timeout", "%v is shorter than %v (RFC 9051 §5.4)", d.IMAP.IdleTimeout, MinIdleTimeout)
	}
	if d.IMAP.MaxLine < MinMaxLine || d.IMAP.MaxLine > MaxMaxLine {
		bad("imap.max_line", "%d is outside %d..%d", d.IMAP.MaxLine, MinMaxLine, MaxMaxLine)
	}
	if d.IMAP.MaxLiteral < 1 || d.IMAP.MaxLiteral > MaxMaxLiteral {
		bad("imap.max_literal", "%d is outside 1..%d", d.IMAP.MaxLiteral, int64(MaxMaxLiteral))
	}
	if d.IMAP.MaxCommandsBeforeAuth < 1 || d.IMAP.MaxCommandsBeforeAuth > MaxMaxCommandsBeforeAuth {
		bad("imap.max_commands_before_auth", "%d is outside 1..%d", d.IMAP.MaxCommandsBeforeAuth, MaxMaxCommandsBeforeAuth)
	}

	switch {
	case d.TLS.Cert == "" && d.TLS.Key != "":
		bad("tls.cert", "required with tls.key")
	case d.TLS.Cert != "" && d.TLS.Key == "":
		bad("tls.key", "required with tls.cert")
	case d.TLS.Cert == "" && len(d.IMAP.ListenTLS) > 0:
		bad("tls.cert", "required by imap.listen_tls")
	}
	if d.TLS.Cert != "" {
		absolute("tls.cert", d.TLS.Cert)
	}
	if d.TLS.Key != "" {
		absolute("tls.key", d.TLS.Key)
	}

	if !slices.Contains([]string{"debug", "info", "warn", "error"}, d.Log.Level) {
		bad("log.level", "%q is not one of debug, info, warn, error", d.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, d.Log.Format) {
		bad("log.format", "%q is not one of text, json", d.Log.Format)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func checkAddr(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return errors.New("want host:port")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port != strconv.FormatUint(n, 10) {
		return errors.New("port must be a number 0..65535")
	}
	return nil
}
