package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/cistern-mail/cistern/internal/throttle"
)

// Defaults and bounds of the connection limits ([imap], [lmtp]) and of
// the [throttle] section, with their reasons.
const (
	// DefaultMaxConnections bounds IMAP connections in all: each costs
	// two goroutines and about 40 KiB of buffers, so 2000 stay under
	// 100 MiB, and under the usual 4096 open files with room for mail.
	DefaultMaxConnections = 2000
	// DefaultMaxConnectionsPerIP: a household or an office behind one
	// NAT address runs a few clients of a few connections each
	// (Thunderbird opens 5 per account); a scanner opens hundreds.
	DefaultMaxConnectionsPerIP = 20
	// DefaultMaxConnectionsPerUser: a user's devices times their
	// clients' connections, with room; Dovecot's default is 10 per
	// user and address.
	DefaultMaxConnectionsPerUser = 50
	// unauthShareOfTotal and unauthShareOfAddr make the defaults of
	// imap.max_unauthenticated(_per_ip): connections not logged in may
	// take a quarter of all the slots, and half of an address's, so
	// that logged-in sessions always find room (package imap's
	// prelogin.go, whose zero values mean the same).
	unauthShareOfTotal = 4
	unauthShareOfAddr  = 2
	// MaxConnectionLimit bounds every connection limit.
	MaxConnectionLimit = 1_000_000

	// DefaultMaxNesting bounds parenthesis and search NOT/OR nesting in
	// a command (the wire decoder's DefaultMaxDepth): real clients nest
	// a few levels, and each level is a recursion in the decoder.
	DefaultMaxNesting = 32
	MinMaxNesting     = 8 // FETCH BODY[HEADER.FIELDS (...)] inside a list needs a few
	MaxMaxNesting     = 1000
	// DefaultMaxLiteralsPerCommand bounds the literals in one command
	// (each may need a continuation round trip and a buffer).
	DefaultMaxLiteralsPerCommand = 1000
	MaxMaxLiteralsPerCommand     = 100_000

	// DefaultResponseMemory bounds the bytes of messages that all IMAP
	// sessions hold in memory for FETCH and SEARCH together (imap's
	// DefaultResponseMemory): four of the largest messages the default
	// max_literal lets in, each counted at twice its size (file and CRLF
	// copy). A user's sessions hold a quarter of it, so a user with many
	// sessions fetching big bodies cannot take it all.
	DefaultResponseMemory = 512 << 20
	MinResponseMemory     = 1 << 20
	MaxResponseMemory     = 1 << 40
	MinResponseMemoryUser = 64 << 10

	// DefaultLMTPMaxConnections is Dovecot's default process limit for
	// its LMTP service; an MTA opens 20 per destination by default
	// (Postfix's default_destination_concurrency_limit).
	DefaultLMTPMaxConnections      = 100
	DefaultLMTPMaxConnectionsPerIP = 50
)

// Throttle is the [throttle] section: how failed logins slow down, then
// refuse, their client (package throttle). Zero fields mean the
// defaults.
type Throttle struct {
	Delay              time.Duration `toml:"delay"`                 // 0: 250ms
	MaxDelay           time.Duration `toml:"max_delay"`             // 0: 15s
	Window             time.Duration `toml:"window"`                // 0: 10m
	MaxFailuresPerIP   int           `toml:"max_failures_per_ip"`   // 0: 20
	MaxFailuresPerUser int           `toml:"max_failures_per_user"` // 0: 50
	Penalty            time.Duration `toml:"penalty"`               // 0: 15m
	MaxTracked         int           `toml:"max_tracked"`           // 0: 65536
	ExemptNetworks     []string      `toml:"exempt_networks"`       // CIDR prefixes or addresses
}

// Defaults of [throttle] (package throttle's, whose comments give the
// reasons) and the bounds Validate enforces.
const (
	DefaultThrottleDelay    = throttle.DefaultBaseDelay
	DefaultThrottleMaxDelay = throttle.DefaultMaxDelay
	// MaxThrottleMaxDelay: clients give up on a command after 30 to 60
	// seconds and reconnect, which costs the server more.
	MaxThrottleMaxDelay       = time.Minute
	DefaultThrottleWindow     = throttle.DefaultWindow
	DefaultMaxFailuresPerIP   = throttle.DefaultMaxAddrFailures
	DefaultMaxFailuresPerUser = throttle.DefaultMaxUserFailures
	DefaultThrottlePenalty    = throttle.DefaultPenalty
	DefaultThrottleMaxTracked = throttle.DefaultMaxKeys
	MinThrottleMaxTracked     = 1000
	MaxThrottleMaxTracked     = 10_000_000
	MaxThrottleFailures       = 100_000
)

// Exempt returns exempt_networks as prefixes; an address is its own
// single-address prefix. Validate reports an entry that does not parse.
func (t *Throttle) Exempt() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range t.ExemptNetworks {
		p, err := parseNetwork(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a network such as 192.0.2.0/24 or 2001:db8::/32", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not a network such as 192.0.2.0/24 or an address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// limitsWithDefaults fills in the zero fields of the connection limits
// and of [throttle].
func (d *Config) limitsWithDefaults() {
	def := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	defDur := func(n *time.Duration, v time.Duration) {
		if *n == 0 {
			*n = v
		}
	}
	def(&d.IMAP.MaxConnections, DefaultMaxConnections)
	def(&d.IMAP.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP)
	def(&d.IMAP.MaxConnectionsPerUser, DefaultMaxConnectionsPerUser)
	d.unauthenticatedDefaults()
	def(&d.IMAP.MaxNesting, DefaultMaxNesting)
	def(&d.IMAP.MaxLiteralsPerCommand, DefaultMaxLiteralsPerCommand)
	if d.IMAP.ResponseMemory == 0 {
		d.IMAP.ResponseMemory = DefaultResponseMemory
	}
	if d.IMAP.ResponseMemoryPerUser == 0 {
		d.IMAP.ResponseMemoryPerUser = d.IMAP.ResponseMemory / 4
	}
	def(&d.LMTP.MaxConnections, DefaultLMTPMaxConnections)
	def(&d.LMTP.MaxConnectionsPerIP, DefaultLMTPMaxConnectionsPerIP)
	t := &d.Throttle
	defDur(&t.Delay, DefaultThrottleDelay)
	defDur(&t.MaxDelay, DefaultThrottleMaxDelay)
	defDur(&t.Window, DefaultThrottleWindow)
	def(&t.MaxFailuresPerIP, DefaultMaxFailuresPerIP)
	def(&t.MaxFailuresPerUser, DefaultMaxFailuresPerUser)
	defDur(&t.Penalty, DefaultThrottlePenalty)
	def(&t.MaxTracked, DefaultThrottleMaxTracked)
	t.ExemptNetworks = slices.Clone(t.ExemptNetworks)
}

// unauthenticatedDefaults fills in imap.max_unauthenticated(_per_ip)
// from the connection limits, which must be filled in already.
func (d *Config) unauthenticatedDefaults() {
	if d.IMAP.MaxUnauthenticated == 0 {
		d.IMAP.MaxUnauthenticated = max(1, d.IMAP.MaxConnections/unauthShareOfTotal)
	}
	if d.IMAP.MaxUnauthenticatedPerIP == 0 {
		d.IMAP.MaxUnauthenticatedPerIP = max(1, d.IMAP.MaxConnectionsPerIP/unauthShareOfAddr)
	}
}

// validateIMAPLimits checks the connection and syntax limits of [imap]
// in d, which has its defaults filled in.
func (d *Config) validateIMAPLimits(bad func(key, format string, args ...any)) {
	between := func(key string, n, lo, hi int) {
		if n < lo || n > hi {
			bad(key, "%d is outside %d..%d", n, lo, hi)
		}
	}
	between("imap.max_connections", d.IMAP.MaxConnections, 1, MaxConnectionLimit)
	between("imap.max_connections_per_ip", d.IMAP.MaxConnectionsPerIP, 1, MaxConnectionLimit)
	between("imap.max_connections_per_user", d.IMAP.MaxConnectionsPerUser, 1, MaxConnectionLimit)
	// Within the limits they are a part of, when those are right.
	if n := d.IMAP.MaxConnections; n >= 1 && n <= MaxConnectionLimit {
		between("imap.max_unauthenticated", d.IMAP.MaxUnauthenticated, 1, n)
	}
	if n := d.IMAP.MaxConnectionsPerIP; n >= 1 && n <= MaxConnectionLimit {
		between("imap.max_unauthenticated_per_ip", d.IMAP.MaxUnauthenticatedPerIP, 1, n)
	}
	between("imap.max_nesting", d.IMAP.MaxNesting, MinMaxNesting, MaxMaxNesting)
	between("imap.max_literals_per_command", d.IMAP.MaxLiteralsPerCommand, 1, MaxMaxLiteralsPerCommand)
	if n := d.IMAP.ResponseMemory; n < MinResponseMemory || n > MaxResponseMemory {
		bad("imap.response_memory", "%d is outside %d..%d", n, int64(MinResponseMemory), int64(MaxResponseMemory))
	} else if u := d.IMAP.ResponseMemoryPerUser; u < MinResponseMemoryUser || u > n {
		bad("imap.response_memory_per_user", "%d is outside %d..%d (imap.response_memory)", u, int64(MinResponseMemoryUser), n)
	}
}

// validateLMTPLimits checks the connection limits of [lmtp].
func (d *Config) validateLMTPLimits(bad func(key, format string, args ...any)) {
	if n := d.LMTP.MaxConnections; n < 1 || n > MaxConnectionLimit {
		bad("lmtp.max_connections", "%d is outside 1..%d", n, MaxConnectionLimit)
	}
	if n := d.LMTP.MaxConnectionsPerIP; n < 1 || n > MaxConnectionLimit {
		bad("lmtp.max_connections_per_ip", "%d is outside 1..%d", n, MaxConnectionLimit)
	}
}

// validateThrottle checks [throttle].
func (d *Config) validateThrottle(bad func(key, format string, args ...any)) {
	t := &d.Throttle
	if t.Delay < time.Millisecond || t.Delay > t.MaxDelay {
		bad("throttle.delay", "%v is outside 1ms..throttle.max_delay (%v)", t.Delay, t.MaxDelay)
	}
	if t.MaxDelay < time.Millisecond || t.MaxDelay > MaxThrottleMaxDelay {
		bad("throttle.max_delay", "%v is outside 1ms..%v", t.MaxDelay, MaxThrottleMaxDelay)
	}
	if t.Window < time.Minute || t.Window > 24*time.Hour {
		bad("throttle.window", "%v is outside 1m..24h", t.Window)
	}
	if t.MaxFailuresPerIP < 1 || t.MaxFailuresPerIP > MaxThrottleFailures {
		bad("throttle.max_failures_per_ip", "%d is outside 1..%d", t.MaxFailuresPerIP, MaxThrottleFailures)
	}
	if t.MaxFailuresPerUser < 1 || t.MaxFailuresPerUser > MaxThrottleFailures {
		bad("throttle.max_failures_per_user", "%d is outside 1..%d", t.MaxFailuresPerUser, MaxThrottleFailures)
	}
	if t.Penalty < time.Minute || t.Penalty > 24*time.Hour {
		bad("throttle.penalty", "%v is outside 1m..24h", t.Penalty)
	}
	if t.MaxTracked < MinThrottleMaxTracked || t.MaxTracked > MaxThrottleMaxTracked {
		bad("throttle.max_tracked", "%d is outside %d..%d", t.MaxTracked, MinThrottleMaxTracked, MaxThrottleMaxTracked)
	}
	for _, s := range t.ExemptNetworks {
		if _, err := parseNetwork(s); err != nil {
			bad("throttle.exempt_networks", "%v", err)
			break
		}
	}
}

// throttleDurationKeys are the [throttle] keys that take a duration
// string; toml would read an integer as nanoseconds.
var throttleDurationKeys = []string{"delay", "max_delay", "window", "penalty"}

// integerDurations reports the [throttle] durations written as integers.
func integerDurations(md toml.MetaData) Errors {
	var errs Errors
	for _, k := range throttleDurationKeys {
		if md.Type("throttle", k) == "Integer" {
			errs = append(errs, &KeyError{Key: "throttle." + k, Problem: `must be a duration string such as "15s"`})
		}
	}
	return errs
}
