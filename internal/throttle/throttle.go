// Package throttle keeps strangers out of Cistern's servers. It slows
// down, then refuses, clients whose logins fail (Throttle), and counts
// open connections against limits (Gauge). It never speaks a protocol:
// servers ask it for decisions and answer their clients themselves.
//
// # Failed logins
//
// A Throttle counts failed logins under three keys:
//
//	key        | what                                  | refused from (default)
//	-----------+---------------------------------------+------------------------
//	address    | the client's IPv4 address, or the /64 | MaxAddrFailures (20)
//	           | of its IPv6 address (AddrKey)         |
//	user name  | the name as the client sent it        | MaxUserFailures (50)
//	pair       | address and user name together        | never
//
// A key's failures are forgotten once it has gone Window (10 minutes)
// without one. After each failure the client waits, before it is told
// NO, BaseDelay doubled for every other failure its address or user name
// has, up to MaxDelay: 250 ms, 500 ms, 1 s, 2 s, 4 s, 8 s, then 15 s.
// A successful login is never slowed.
//
// The failure that brings an address to MaxAddrFailures, or a user name
// to MaxUserFailures, makes that key refused for Penalty (15 minutes):
// its logins are answered, after MaxDelay, without the password even
// being checked (a refused attempt does not prolong the penalty). The
// address limit stops one client guessing many passwords; the user-name
// limit stops many addresses (a botnet) guessing one user's password,
// which no address limit can.
//
// A user-name limit lets anybody lock a user out. So a successful login
// makes its pair trusted for TrustFor (7 days): a trusted pair is not
// refused, nor slowed, for the failures of its user name (only for its
// address's), and the user keeps logging in from where they logged in
// before while strangers guess their name. A successful login also
// forgives the failures of its own pair: they are taken off the counts
// of its address and of its user name (typing mistakes of the user
// themselves), while the failures of other pairs stay. An attacker who
// owns one account therefore cannot wash away, by logging in to it, the
// failures it collected guessing others.
//
// A successful login also makes its address known for TrustFor
// (Known): servers close connections from unknown addresses first when
// connections that have not logged in must make room. Being known
// changes nothing in the address's own failure count.
//
// Addresses in Exempt are neither slowed nor refused (a webmail or proxy
// on the same host, which must throttle its own users). Nothing is
// exempt by default: loopback is not, because a local proxy forwards
// strangers.
//
// # Memory
//
// At most MaxKeys keys are tracked (each about 150 bytes); past that
// the key least recently failed, refused or trusted is forgotten. An
// attacker spraying names from many addresses can thus make the Throttle
// forget old keys, never grow without bound.
//
// # Concurrency
//
// A Throttle and a Gauge are safe for concurrent use. Throttle.mu guards
// the keys; no lock is held while a client waits.
package throttle

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cistern-mail/cistern/internal/logctx"
	"github.com/cistern-mail/cistern/internal/metrics"
)

// The default Policy, with its reasons.
const (
	// DefaultBaseDelay is the wait after a first failure: enough to make
	// guessing slow, short enough that a user's typing mistake is not
	// felt.
	DefaultBaseDelay = 250 * time.Millisecond
	// DefaultMaxDelay is the longest wait: under the 30 to 60 s after
	// which clients give up on a command.
	DefaultMaxDelay = 15 * time.Second
	// DefaultWindow is how long a key must go without a failure before
	// its failures are forgotten.
	DefaultWindow = 10 * time.Minute
	// DefaultMaxAddrFailures: a person who forgot a password does not
	// fail 20 times in 10 minutes; a program guessing does.
	DefaultMaxAddrFailures = 20
	// DefaultMaxUserFailures is higher than the address limit: a user's
	// name is failed by their own devices too (a phone with an old
	// password keeps trying), and refusing a name hurts its owner.
	DefaultMaxUserFailures = 50
	// DefaultPenalty is how long a key is refused once over its limit.
	DefaultPenalty = 15 * time.Minute
	// DefaultTrustFor is how long a successful login keeps its pair
	// trusted: a week covers a user who reads mail on weekdays only.
	DefaultTrustFor = 7 * 24 * time.Hour
	// DefaultMaxKeys bounds the memory: 65536 keys are about 10 MB.
	DefaultMaxKeys = 1 << 16

	// maxNameKey: longer user names are tracked by their SHA-256, so a
	// key never costs more than this; no valid user name is longer
	// (auth.MaxNameLen is 255).
	maxNameKey = 256
)

// Policy is a Throttle's numbers. Zero fields mean their defaults.
type Policy struct {
	BaseDelay       time.Duration  // 0: DefaultBaseDelay
	MaxDelay        time.Duration  // 0: DefaultMaxDelay
	Window          time.Duration  // 0: DefaultWindow
	MaxAddrFailures int            // 0: DefaultMaxAddrFailures
	MaxUserFailures int            // 0: DefaultMaxUserFailures
	Penalty         time.Duration  // 0: DefaultPenalty
	TrustFor        time.Duration  // 0: DefaultTrustFor
	MaxKeys         int            // 0: DefaultMaxKeys; at least 3
	Exempt          []netip.Prefix // never slowed nor refused
}

func (p Policy) withDefaults() Policy {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&p.BaseDelay, DefaultBaseDelay)
	def(&p.MaxDelay, DefaultMaxDelay)
	def(&p.Window, DefaultWindow)
	def(&p.Penalty, DefaultPenalty)
	def(&p.TrustFor, DefaultTrustFor)
	if p.MaxAddrFailures <= 0 {
		p.MaxAddrFailures = DefaultMaxAddrFailures
	}
	if p.MaxUserFailures <= 0 {
		p.MaxUserFailures = DefaultMaxUserFailures
	}
	switch {
	case p.MaxKeys <= 0:
		p.MaxKeys = DefaultMaxKeys
	case p.MaxKeys < 3:
		p.MaxKeys = 3 // the keys of one login
	}
	return p
}

// ErrRefused is Check's answer to a client over a limit: refuse the
// login without checking the password.
var ErrRefused = errors.New("throttle: too many failed logins")

// Throttle slows down and refuses clients whose logins fail (see the
// package doc). Set the fields before first use. The zero value works
// with the default Policy; a nil *Throttle throttles nothing.
type Throttle struct {
	Policy Policy
	// Logger receives a line for each failed or refused login; nil: no
	// log. A logger carried by the ctx of Check or Fail (package logctx)
	// writes that call's lines instead: it names the client's session
	// and address, so the lines leave the address out.
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Sleep waits d or until ctx is done; nil: a timer. Every wait a
	// client is made to do goes through it.
	Sleep func(ctx context.Context, d time.Duration)

	// Counters, for metrics.
	Failures atomic.Int64 // failed logins recorded
	Refused  atomic.Int64 // logins refused without a password check
	Blocks   atomic.Int64 // times a key went over its limit

	once   sync.Once
	policy Policy // immutable after once

	mu   sync.Mutex               // guards keys and lru
	keys map[string]*list.Element // of *entry
	lru  list.List                // of *entry, most recently used first
}

// entry is one tracked key.
type entry struct {
	key          string
	failures     int       // since the key last went Window without one
	last         time.Time // the latest failure
	blockedUntil time.Time // refused before this
	trustedUntil time.Time // a login succeeded: a pair is trusted, an address known, before this
}

func (t *Throttle) init() {
	t.once.Do(func() {
		t.policy = t.Policy.withDefaults()
		t.keys = make(map[string]*list.Element)
	})
}

func (t *Throttle) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Throttle) wait(ctx context.Context, d time.Duration) {
	if t.Sleep != nil {
		t.Sleep(ctx, d)
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// log writes a line about a login from addr (see Logger).
func (t *Throttle) log(ctx context.Context, level slog.Level, msg string, addr net.Addr, args ...any) {
	if t.Logger == nil {
		return
	}
	l := logctx.From(ctx)
	if l == nil {
		l = t.Logger
		args = append([]any{"remote", addrString(addr)}, args...)
	}
	l.Log(ctx, level, msg, args...)
}

// keysOf returns the keys of a login by user from addr, and whether addr
// is exempt.
func (t *Throttle) keysOf(addr net.Addr, user string) (a, u, pair string, exempt bool) {
	ip, _ := addrIP(addr)
	for _, p := range t.policy.Exempt {
		if ip.IsValid() && p.Contains(ip) {
			exempt = true
		}
	}
	ak := AddrKey(addr)
	uk := user
	if len(uk) > maxNameKey {
		sum := sha256.Sum256([]byte(user))
		uk = "sha256:" + hex.EncodeToString(sum[:])
	}
	// An address key holds no space, so the pair key is unambiguous.
	return "a " + ak, "u " + uk, "p " + ak + " " + uk, exempt
}

// getLocked returns the entry of key, or nil; it does not make it the most
// recently used.
func (t *Throttle) getLocked(key string) *entry {
	if el, ok := t.keys[key]; ok {
		return el.Value.(*entry)
	}
	return nil
}

// touchLocked returns the entry of key, made the most recently used,
// creating it (and forgetting the least recently used key when there are
// too many) when create is set.
func (t *Throttle) touchLocked(key string, create bool) *entry {
	if el, ok := t.keys[key]; ok {
		t.lru.MoveToFront(el)
		return el.Value.(*entry)
	}
	if !create {
		return nil
	}
	for len(t.keys) >= t.policy.MaxKeys {
		old := t.lru.Back()
		t.lru.Remove(old)
		delete(t.keys, old.Value.(*entry).key)
	}
	e := &entry{key: key}
	t.keys[key] = t.lru.PushFront(e)
	return e
}

// countLocked returns e's failures at now (0 when e is nil or its
// failures are forgotten).
func (t *Throttle) countLocked(e *entry, now time.Time) int {
	if e == nil || now.Sub(e.last) >= t.policy.Window {
		return 0
	}
	return e.failures
}

func trusted(pair *entry, now time.Time) bool {
	return pair != nil && now.Before(pair.trustedUntil)
}

// Check is called before a login's password is checked. It returns nil,
// or ErrRefused after making the client wait MaxDelay (or until ctx is
// done): the address, or the user name of an untrusted pair, is over its
// limit, and the password must not be checked.
func (t *Throttle) Check(ctx context.Context, addr net.Addr, user string) error {
	if t == nil {
		return nil
	}
	t.init()
	ak, uk, pk, exempt := t.keysOf(addr, user)
	if exempt {
		return nil
	}
	now := t.now()
	t.mu.Lock()
	reason := ""
	a, u, p := t.getLocked(ak), t.getLocked(uk), t.getLocked(pk)
	switch {
	case a != nil && now.Before(a.blockedUntil):
		reason = "address"
		t.touchLocked(ak, false)
	case u != nil && now.Before(u.blockedUntil) && !trusted(p, now):
		reason = "user name"
		t.touchLocked(uk, false)
	}
	t.mu.Unlock()
	if reason == "" {
		return nil
	}
	t.Refused.Add(1)
	t.log(ctx, slog.LevelInfo, "login refused: too many failed logins", addr, "user", logName(user), "over", reason)
	t.wait(ctx, t.policy.MaxDelay)
	return ErrRefused
}

// Fail records a failed login and makes the client wait the delay it
// earned (or until ctx is done), before the caller answers it.
func (t *Throttle) Fail(ctx context.Context, addr net.Addr, user string) {
	if t == nil {
		return
	}
	t.init()
	t.Failures.Add(1)
	ak, uk, pk, exempt := t.keysOf(addr, user)
	if exempt {
		t.log(ctx, slog.LevelInfo, "login failed", addr, "user", logName(user), "exempt", true)
		return
	}
	now := t.now()
	t.mu.Lock()
	keys := [3]struct {
		key, what string
		limit     int // 0: never refused
	}{{ak, "address", t.policy.MaxAddrFailures}, {uk, "user name", t.policy.MaxUserFailures}, {pk, "", 0}}
	var counts [3]int
	var blocked []string
	for i, k := range keys {
		e := t.touchLocked(k.key, true)
		e.failures = t.countLocked(e, now) + 1
		e.last = now
		counts[i] = e.failures
		if k.limit > 0 && e.failures >= k.limit && !now.Before(e.blockedUntil) {
			e.blockedUntil = now.Add(t.policy.Penalty)
			blocked = append(blocked, k.what)
		}
	}
	n := counts[0]
	if !trusted(t.getLocked(pk), now) {
		n = max(n, counts[1])
	}
	t.mu.Unlock()

	delay := t.delay(n)
	t.log(ctx, slog.LevelInfo, "login failed", addr, "user", logName(user),
		"address_failures", counts[0], "user_failures", counts[1], "delay", delay)
	for _, what := range blocked {
		t.Blocks.Add(1)
		t.log(ctx, slog.LevelWarn, "login throttle: too many failed logins; refusing logins", addr, "user", logName(user),
			"over", what, "for", t.policy.Penalty)
	}
	t.wait(ctx, delay)
}

// delay is the wait after a failure that makes n recent ones.
func (t *Throttle) delay(n int) time.Duration {
	d := t.policy.BaseDelay
	for i := 1; i < n && d < t.policy.MaxDelay; i++ {
		d *= 2
	}
	return min(d, t.policy.MaxDelay)
}

// Succeed records a successful login: the pair is trusted, and its own
// failures are taken off the counts of its address and user name.
func (t *Throttle) Succeed(addr net.Addr, user string) {
	if t == nil {
		return
	}
	t.init()
	ak, uk, pk, exempt := t.keysOf(addr, user)
	if exempt {
		return
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.touchLocked(pk, true)
	if own := t.countLocked(p, now); own > 0 {
		for _, k := range []string{ak, uk} {
			if e := t.getLocked(k); e != nil {
				e.failures = max(0, e.failures-own)
			}
		}
	}
	p.failures = 0
	p.trustedUntil = now.Add(t.policy.TrustFor)
	// The address is known (Known); only its pairs are trusted.
	t.touchLocked(ak, true).trustedUntil = p.trustedUntil
}

// Known reports whether somebody logged in successfully from addr (its
// AddrKey) within TrustFor, or addr is exempt: servers prefer such
// clients when they must close connections that have not logged in
// yet. A nil Throttle knows nobody.
func (t *Throttle) Known(addr net.Addr) bool {
	if t == nil {
		return false
	}
	t.init()
	ak, _, _, exempt := t.keysOf(addr, "")
	if exempt {
		return true
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.getLocked(ak)
	return a != nil && now.Before(a.trustedUntil)
}

// RegisterMetrics reports t's counters in r (nothing for a nil t):
//
//	cistern_auth_failures_total   Failures: failed logins
//	cistern_auth_throttled_total  Refused: logins refused without a password check
//	cistern_auth_blocks_total     Blocks: an address or user name went over its limit
func (t *Throttle) RegisterMetrics(r *metrics.Registry) {
	if t == nil {
		return
	}
	count := func(v *atomic.Int64) func() float64 { return func() float64 { return float64(v.Load()) } }
	r.CounterFunc("cistern_auth_failures_total", "Failed logins (wrong password, unknown user, malformed request).", count(&t.Failures))
	r.CounterFunc("cistern_auth_throttled_total", "Logins refused by the throttle without a password check.", count(&t.Refused))
	r.CounterFunc("cistern_auth_blocks_total", "Times an address or a user name went over its failure limit and was refused for the penalty.", count(&t.Blocks))
	r.GaugeFunc("cistern_auth_tracked", "Addresses, user names and pairs the throttle remembers now.", func() float64 { return float64(t.Tracked()) })
}

// Tracked returns the number of keys tracked now.
func (t *Throttle) Tracked() int {
	if t == nil {
		return 0
	}
	t.init()
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}

// logName bounds a user name in the log.
func logName(user string) string {
	if len(user) > maxNameKey {
		return user[:maxNameKey] + "..."
	}
	return user
}

func addrString(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	return addr.String()
}
