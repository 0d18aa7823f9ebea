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
//	user                          | ""                     | user name or uid that 'cistern serve' started as root runs as; see Privileges
//	group                         | ""                     | group name or gid for user ("": user's primary group); needs user
//	imap.listen                   | ["127.0.0.1:143"]      | host:port list; [] for none
//	imap.listen_tls               | []                     | host:port list, implicit TLS; needs tls.*
//	imap.idle_timeout             | "30m"                  | duration string, >= 30m (RFC 9051 §5.4)
//	imap.max_line                 | 65536                  | bytes, 8192..16 MiB (RFC 7162 §4)
//	imap.max_literal              | 67108864               | bytes, 1..4 GiB-1; also APPENDLIMIT (RFC 7889)
//	imap.max_commands_before_auth | 20                     | 1..1000
//	imap.login_timeout            | "1m"                   | duration string, 1s..30m, from connect to a successful login, absolute
//	imap.max_connections          | 2000                   | 1..1000000 connections in all; more get BYE
//	imap.max_connections_per_ip   | 20                     | 1..1000000 per IPv4 address or IPv6 /64; more get BYE
//	imap.max_connections_per_user | 50                     | 1..1000000 sessions per user; LOGIN past it: NO [LIMIT]
//	imap.max_unauthenticated      | max_connections / 4    | 1..max_connections connections not logged in (yet)
//	imap.max_unauthenticated_per_ip | max_connections_per_ip / 2 | 1..max_connections_per_ip of them per address
//	imap.max_nesting              | 32                     | 8..1000 levels of parentheses and search NOT/OR
//	imap.max_literals_per_command | 1000                   | 1..100000
//	imap.response_memory          | 536870912              | bytes, 1 MiB..1 TiB: messages all sessions hold in memory for responses
//	imap.response_memory_per_user | response_memory / 4    | bytes, 64 KiB..response_memory: the same for one user's sessions
//	imap.allow_plaintext_auth     | false                  | passwords without TLS from non-loopback peers
//	lmtp.listen                   | []                     | host:port list
//	lmtp.socket                   | ""                     | absolute path of a unix socket; "" for none
//	lmtp.socket_mode              | "0660"                 | octal permissions of lmtp.socket, 0000..0777
//	lmtp.max_message_size         | 67108864               | bytes, 1..4 GiB-1; announced as SIZE (RFC 1870)
//	lmtp.max_recipients           | 100                    | 1..10000 per transaction
//	lmtp.data_timeout             | "5m"                   | duration string, 1s..1h; the wait for each read of a message
//	lmtp.min_data_rate            | 1024                   | 1..1073741824 bytes/s a message must average after its first 10 s
//	lmtp.transaction_timeout      | "1m"                   | duration string, 1s..1h; from connect, and from each delivered message, to the next one's DATA
//	lmtp.recipient_delimiter      | "+"                    | characters that start an address's folder part (user+folder)
//	lmtp.save_to_detail_mailbox   | false                  | user+folder files into folder (else INBOX); never \Sent, \Drafts, \Trash
//	lmtp.quota_full_tempfail      | false                  | a full mailbox is a temporary failure (452 4.2.2 / exit 75)
//	lmtp.max_connections          | 100                    | 1..1000000 connections in all; more get 421 4.7.0
//	lmtp.max_connections_per_ip   | 50                     | 1..1000000 per IPv4 address or IPv6 /64 (not the socket)
//	tls.cert, tls.key             | ""                     | absolute paths, both or neither
//	quota.storage                 | 0 (no limit)           | bytes: integer, or string with unit ("1G"); see UserQuota
//	quota.messages                | 0 (no limit)           | >= 0; per-user rules in the passwd-file override both
//	quota.max_folders             | 3000                   | 1..1000000 folders per account (INBOX not counted); CREATE past it: NO [LIMIT]
//	throttle.delay                | "250ms"                | 1ms..max_delay: the wait after a first failed login
//	throttle.max_delay            | "15s"                  | 1ms..1m: the wait doubles per recent failure up to this
//	throttle.window               | "10m"                  | 1m..24h: failures are forgotten after this long without one
//	throttle.max_failures_per_ip  | 20                     | 1..100000 failures of an address refuse its logins
//	throttle.max_failures_per_user| 50                     | 1..100000 failures on a name refuse it (not where it logged in before)
//	throttle.penalty              | "15m"                  | 1m..24h: how long a refusal lasts
//	throttle.max_tracked          | 65536                  | 1000..10000000 addresses, names and pairs remembered
//	throttle.exempt_networks      | []                     | CIDR prefixes or addresses never throttled
//	log.level                     | "info"                 | debug, info, warn, error
//	log.format                    | "text"                 | text, json
//	metrics.listen                | ""                     | host:port serving GET /metrics over plain HTTP; "" for none
//
// Connections that have not logged in are bounded twice: by
// imap.login_timeout, and by imap.max_unauthenticated and its per-address
// share. Past the budget, or past imap.max_connections(_per_ip), a new
// connection does not get BYE while one that has not logged in can make
// room: the server closes that one (its own address's first, a recently
// successful address's last; see package imap's prelogin.go). Logged-in
// sessions are never closed to make room; a connection gets BYE only
// when every slot it could take is held by them. LMTP's peer is an MTA:
// a connection that delivers nothing within lmtp.transaction_timeout,
// or sends a message slower than lmtp.min_data_rate, gets 421 4.4.2.
//
// No address may appear twice across imap.listen, imap.listen_tls,
// lmtp.listen and metrics.listen (port 0, a free port chosen at start,
// excepted). The metrics are package metrics' list, in Prometheus'
// text format; they hold no secrets, but say who is busy: keep the
// address on loopback or behind a firewall. The keys
// lmtp.max_message_size, lmtp.recipient_delimiter,
// lmtp.save_to_detail_mailbox and lmtp.quota_full_tempfail apply to
// 'cistern deliver' too.
// testdata/cistern.example.toml shows every key.
//
// With tls.cert and tls.key, imap.listen offers STARTTLS, imap.listen_tls
// serves implicit TLS (RFC 8314) and lmtp.listen offers STARTTLS; 'cistern
// serve' reads the files again on SIGHUP. A connection without TLS may
// send a password only from a loopback address or a unix socket, unless
// imap.allow_plaintext_auth.
//
// # Privileges
//
// Cistern never reads or writes mail as root. 'cistern serve' started as
// root opens its listeners (ports below 1024 included), reads the TLS
// key, makes data_dir when it is missing and gives the LMTP socket and
// a new data_dir to user and group, and then runs as user for good;
// started as root without user it refuses to start. Started as another
// user it runs as that user, and refuses a user it is not. 'cistern
// deliver' started as root runs as the recipient's uid and gid from the
// passwd-file, or as user when the line has none, and refuses to
// deliver otherwise.
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
	"encoding"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/cistern-mail/cistern/internal/store"
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

	// DefaultLoginTimeout is the time from connect to a successful
	// login: Dovecot closes unauthenticated connections after about a
	// minute of inactivity (3 minutes in all); a client logs in within
	// a few round trips. RFC 9051 §5.4's 30 minutes bind only logged-in
	// sessions, and are the most allowed here.
	DefaultLoginTimeout = time.Minute
	MinLoginTimeout     = time.Second
	MaxLoginTimeout     = 30 * time.Minute

	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"
)

// Defaults and limits of the [lmtp] section, with their reasons.
const (
	// DefaultLMTPSocketMode lets the socket's owner and group (the MTA's)
	// connect, and nobody else.
	DefaultLMTPSocketMode = "0660"

	// DefaultLMTPMaxMessageSize is imap.max_literal's default: a message
	// that can be delivered can also be APPENDed back. Above 4 GiB-1 the
	// SIZE parameter (RFC 1870) cannot express it.
	DefaultLMTPMaxMessageSize = 64 << 20
	MaxLMTPMaxMessageSize     = 1<<32 - 1

	// DefaultLMTPMaxRecipients is RFC 5321 §4.5.3.1.8's minimum; Postfix
	// sends at most 50 per transaction by default.
	DefaultLMTPMaxRecipients = 100
	MaxLMTPMaxRecipients     = 10000

	// DefaultLMTPDataTimeout is the wait for each read of a message: RFC
	// 5321 §4.5.3.2.5 gives a server 3 minutes for each data block, and
	// a local MTA never takes that long unless it is gone.
	DefaultLMTPDataTimeout = 5 * time.Minute
	MinLMTPDataTimeout     = time.Second
	MaxLMTPDataTimeout     = time.Hour

	// MaxMaxFolders bounds quota.max_folders.
	MaxMaxFolders = 1000000
	// DefaultRecipientDelimiter is Postfix's and Dovecot's usual choice.
	DefaultRecipientDelimiter = "+"

	// DefaultLMTPMinDataRate is the least average rate of a message
	// after its first 10 seconds: a local MTA sends megabytes a second,
	// and a peer that sends a byte every data_timeout must not hold a
	// connection for hours (Postfix's smtpd_min_data_rate is 500).
	DefaultLMTPMinDataRate = 1024
	MaxLMTPMinDataRate     = 1 << 30

	// DefaultLMTPTransactionTimeout bounds the time a connection spends
	// outside DATA without delivering a message: an MTA sends its
	// envelope at once and keeps an idle connection a few seconds
	// (Postfix's smtp_connection_cache_time_limit is 2 s).
	DefaultLMTPTransactionTimeout = time.Minute
	MinLMTPTransactionTimeout     = time.Second
	MaxLMTPTransactionTimeout     = time.Hour
)

// Config is the configuration file. Field comments give the TOML key.
type Config struct {
	DataDir      string   `toml:"data_dir"`      // data_dir
	MailLocation string   `toml:"mail_location"` // mail_location; see MailDir
	PasswdFile   string   `toml:"passwd_file"`   // passwd_file
	User         string   `toml:"user"`          // user; "": stay who we are (never root)
	Group        string   `toml:"group"`         // group; "": user's primary group
	IMAP         IMAP     `toml:"imap"`          // [imap]
	LMTP         LMTP     `toml:"lmtp"`          // [lmtp]
	Quota        Quota    `toml:"quota"`         // [quota]; see quota.go
	TLS          TLS      `toml:"tls"`           // [tls]
	Log          Log      `toml:"log"`           // [log]
	Metrics      Metrics  `toml:"metrics"`       // [metrics]
	Throttle     Throttle `toml:"throttle"`      // [throttle]; see limits.go
}

// IMAP is the [imap] section.
type IMAP struct {
	Listen                []string      `toml:"listen"`                   // nil: DefaultIMAPListen; empty: none
	ListenTLS             []string      `toml:"listen_tls"`               // implicit TLS (RFC 8314)
	IdleTimeout           time.Duration `toml:"idle_timeout"`             // 0: DefaultIdleTimeout
	MaxLine               int           `toml:"max_line"`                 // 0: DefaultMaxLine
	MaxLiteral            int64         `toml:"max_literal"`              // 0: DefaultMaxLiteral
	MaxCommandsBeforeAuth int           `toml:"max_commands_before_auth"` // 0: DefaultMaxCommandsBeforeAuth
	LoginTimeout          time.Duration `toml:"login_timeout"`            // 0: DefaultLoginTimeout
	AllowPlaintextAuth    bool          `toml:"allow_plaintext_auth"`     // LOGIN without TLS from non-loopback peers
	MaxConnections        int           `toml:"max_connections"`          // 0: DefaultMaxConnections
	MaxConnectionsPerIP   int           `toml:"max_connections_per_ip"`   // 0: DefaultMaxConnectionsPerIP
	MaxConnectionsPerUser int           `toml:"max_connections_per_user"` // 0: DefaultMaxConnectionsPerUser
	// 0: MaxConnections / unauthShareOfTotal, MaxConnectionsPerIP / unauthShareOfAddr (limits.go)
	MaxUnauthenticated      int   `toml:"max_unauthenticated"`
	MaxUnauthenticatedPerIP int   `toml:"max_unauthenticated_per_ip"`
	MaxNesting              int   `toml:"max_nesting"`              // 0: DefaultMaxNesting
	MaxLiteralsPerCommand   int   `toml:"max_literals_per_command"` // 0: DefaultMaxLiteralsPerCommand
	ResponseMemory          int64 `toml:"response_memory"`          // 0: DefaultResponseMemory
	ResponseMemoryPerUser   int64 `toml:"response_memory_per_user"` // 0: ResponseMemory / 4
}

// LMTP is the [lmtp] section. MaxMessageSize, RecipientDelimiter,
// SaveToDetailMailbox and QuotaFullTempfail apply to 'cistern deliver'
// too.
type LMTP struct {
	Listen              []string      `toml:"listen"`                 // none by default
	Socket              string        `toml:"socket"`                 // "": no unix socket
	SocketMode          string        `toml:"socket_mode"`            // "": DefaultLMTPSocketMode; octal
	MaxMessageSize      int64         `toml:"max_message_size"`       // 0: DefaultLMTPMaxMessageSize
	MaxRecipients       int           `toml:"max_recipients"`         // 0: DefaultLMTPMaxRecipients
	DataTimeout         time.Duration `toml:"data_timeout"`           // 0: DefaultLMTPDataTimeout
	RecipientDelimiter  string        `toml:"recipient_delimiter"`    // "": DefaultRecipientDelimiter
	SaveToDetailMailbox bool          `toml:"save_to_detail_mailbox"` // user+folder files into folder
	QuotaFullTempfail   bool          `toml:"quota_full_tempfail"`    // over quota: temporary, not permanent
	MaxConnections      int           `toml:"max_connections"`        // 0: DefaultLMTPMaxConnections
	MaxConnectionsPerIP int           `toml:"max_connections_per_ip"` // 0: DefaultLMTPMaxConnectionsPerIP
	MinDataRate         int64         `toml:"min_data_rate"`          // 0: DefaultLMTPMinDataRate; bytes/s
	TransactionTimeout  time.Duration `toml:"transaction_timeout"`    // 0: DefaultLMTPTransactionTimeout
}

// SocketPerm returns socket_mode as permission bits (the default when
// empty); Validate reports a mode that does not parse.
func (l *LMTP) SocketPerm() (os.FileMode, error) {
	mode := l.SocketMode
	if mode == "" {
		mode = DefaultLMTPSocketMode
	}
	n, err := strconv.ParseUint(mode, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("%q is not an octal mode 0000..0777", mode)
	}
	return os.FileMode(n), nil
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

// Metrics is the [metrics] section.
type Metrics struct {
	Listen string `toml:"listen"` // "": no metrics endpoint
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
	def(&d.LMTP.SocketMode, DefaultLMTPSocketMode)
	def(&d.LMTP.RecipientDelimiter, DefaultRecipientDelimiter)
	if d.LMTP.MaxMessageSize == 0 {
		d.LMTP.MaxMessageSize = DefaultLMTPMaxMessageSize
	}
	if d.LMTP.MaxRecipients == 0 {
		d.LMTP.MaxRecipients = DefaultLMTPMaxRecipients
	}
	if d.Quota.MaxFolders == 0 {
		d.Quota.MaxFolders = store.DefaultMaxFolders
	}
	if d.LMTP.DataTimeout == 0 {
		d.LMTP.DataTimeout = DefaultLMTPDataTimeout
	}
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
	if d.IMAP.LoginTimeout == 0 {
		d.IMAP.LoginTimeout = DefaultLoginTimeout
	}
	if d.LMTP.MinDataRate == 0 {
		d.LMTP.MinDataRate = DefaultLMTPMinDataRate
	}
	if d.LMTP.TransactionTimeout == 0 {
		d.LMTP.TransactionTimeout = DefaultLMTPTransactionTimeout
	}
	d.limitsWithDefaults()
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
	// Their defaults follow max_connections(_per_ip), which the file may
	// set: they are filled in after it is read.
	c.IMAP.MaxUnauthenticated, c.IMAP.MaxUnauthenticatedPerIP = 0, 0
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var errs Errors
	for _, k := range md.Undecoded() {
		errs = append(errs, &KeyError{Key: k.String(), Problem: "unknown key"})
	}
	// The TOML decoder matches keys to fields case-insensitively; the
	// configuration's keys are lower case, and "[IMAP]" is a mistake
	// that would pass unnoticed elsewhere.
	known := knownKeys()
	for _, k := range md.Keys() {
		if key := k.String(); !known[key] && known[strings.ToLower(key)] {
			errs = append(errs, &KeyError{Key: key, Problem: "unknown key (keys are lower case: " + strings.ToLower(key) + ")"})
		}
	}
	// toml takes an integer as nanoseconds; "30" would be 30ns.
	if md.Type("imap", "idle_timeout") == "Integer" {
		errs = append(errs, &KeyError{Key: "imap.idle_timeout", Problem: `must be a duration string such as "30m"`})
	}
	if md.Type("lmtp", "data_timeout") == "Integer" {
		errs = append(errs, &KeyError{Key: "lmtp.data_timeout", Problem: `must be a duration string such as "5m"`})
	}
	if md.Type("imap", "login_timeout") == "Integer" {
		errs = append(errs, &KeyError{Key: "imap.login_timeout", Problem: `must be a duration string such as "1m"`})
	}
	if md.Type("lmtp", "transaction_timeout") == "Integer" {
		errs = append(errs, &KeyError{Key: "lmtp.transaction_timeout", Problem: `must be a duration string such as "1m"`})
	}
	errs = append(errs, integerDurations(md)...)
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
	if len(c.Throttle.ExemptNetworks) == 0 {
		c.Throttle.ExemptNetworks = nil
	}
	c.unauthenticatedDefaults()
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
	if d.Group != "" && d.User == "" {
		bad("group", "needs user")
	}

	seen := map[string]string{}
	for _, l := range []struct {
		key   string
		addrs []string
	}{{"imap.listen", d.IMAP.Listen}, {"imap.listen_tls", d.IMAP.ListenTLS}, {"lmtp.listen", d.LMTP.Listen}, {"metrics.listen", d.metricsListen()}} {
		for _, a := range l.addrs {
			if err := checkAddr(a); err != nil {
				bad(l.key, "%q: %v", a, err)
			} else if strings.HasSuffix(a, ":0") {
				// Port 0: the system picks a free port for each.
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
	if d.IMAP.LoginTimeout < MinLoginTimeout || d.IMAP.LoginTimeout > MaxLoginTimeout {
		bad("imap.login_timeout", "%v is outside %v..%v", d.IMAP.LoginTimeout, MinLoginTimeout, MaxLoginTimeout)
	}
	d.validateIMAPLimits(bad)
	d.validateLMTP(bad)
	d.validateLMTPLimits(bad)

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

	if d.Quota.Storage < 0 {
		bad("quota.storage", "%d is negative", d.Quota.Storage)
	}
	if d.Quota.Messages < 0 {
		bad("quota.messages", "%d is negative", d.Quota.Messages)
	}
	if d.Quota.MaxFolders < 1 || d.Quota.MaxFolders > MaxMaxFolders {
		bad("quota.max_folders", "%d is outside 1..%d", d.Quota.MaxFolders, MaxMaxFolders)
	}
	d.validateThrottle(bad)

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

// metricsListen is metrics.listen as a list of addresses, for the
// checks of every listener.
func (d *Config) metricsListen() []string {
	if d.Metrics.Listen == "" {
		return nil
	}
	return []string{d.Metrics.Listen}
}

// validateLMTP checks the [lmtp] keys of d, which has its defaults
// filled in, in the order of the key table (lmtp.listen is checked with
// the other listeners).
func (d *Config) validateLMTP(bad func(key, format string, args ...any)) {
	l := &d.LMTP
	if l.Socket != "" && !filepath.IsAbs(l.Socket) {
		bad("lmtp.socket", "must be an absolute path, got %q", l.Socket)
	}
	if _, err := l.SocketPerm(); err != nil {
		bad("lmtp.socket_mode", "%v", err)
	}
	if l.MaxMessageSize < 1 || l.MaxMessageSize > MaxLMTPMaxMessageSize {
		bad("lmtp.max_message_size", "%d is outside 1..%d", l.MaxMessageSize, int64(MaxLMTPMaxMessageSize))
	}
	if l.MaxRecipients < 1 || l.MaxRecipients > MaxLMTPMaxRecipients {
		bad("lmtp.max_recipients", "%d is outside 1..%d", l.MaxRecipients, MaxLMTPMaxRecipients)
	}
	if l.DataTimeout < MinLMTPDataTimeout || l.DataTimeout > MaxLMTPDataTimeout {
		bad("lmtp.data_timeout", "%v is outside %v..%v", l.DataTimeout, MinLMTPDataTimeout, MaxLMTPDataTimeout)
	}
	if l.MinDataRate < 1 || l.MinDataRate > MaxLMTPMinDataRate {
		bad("lmtp.min_data_rate", "%d is outside 1..%d", l.MinDataRate, MaxLMTPMinDataRate)
	}
	if l.TransactionTimeout < MinLMTPTransactionTimeout || l.TransactionTimeout > MaxLMTPTransactionTimeout {
		bad("lmtp.transaction_timeout", "%v is outside %v..%v", l.TransactionTimeout, MinLMTPTransactionTimeout, MaxLMTPTransactionTimeout)
	}
	for _, c := range []byte(l.RecipientDelimiter) {
		// Characters an unquoted local part may hold (RFC 5322 atext),
		// other than letters and digits, which user names are made of.
		if !strings.ContainsRune("!#$%&'*+-/=?^_`{|}~.", rune(c)) {
			bad("lmtp.recipient_delimiter", "%q: %q cannot separate a user from a folder (use characters of !#$%%&'*+-/=?^_`{|}~.)", l.RecipientDelimiter, c)
			break
		}
	}
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

// knownKeys are the dotted keys of Config's TOML tags, tables included.
func knownKeys() map[string]bool {
	out := make(map[string]bool)
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			out[prefix+tag] = true
			if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshaler) {
				walk(f.Type, prefix+tag+".")
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return out
}

var textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
