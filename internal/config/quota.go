package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/store"
)

// Quota is the [quota] section: the limit of every user whose passwd-file
// line sets none of its own (see UserQuota). Zero means no limit.
type Quota struct {
	Storage  Size  `toml:"storage"`  // bytes: 1073741824 or "1G"
	Messages int64 `toml:"messages"` // messages
	// MaxFolders bounds the folders of every account (INBOX not
	// counted): CREATE or RENAME past it answers NO [LIMIT]. 0:
	// store.DefaultMaxFolders.
	MaxFolders int `toml:"max_folders"`
}

// Size is a number of bytes, written in TOML as an integer or as a string
// with a unit (see ParseSize).
type Size int64

// UnmarshalTOML implements toml.Unmarshaler.
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("size %d is negative", v)
		}
		*s = Size(v)
		return nil
	case string:
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		*s = Size(n)
		return nil
	}
	return fmt.Errorf("size must be an integer (bytes) or a string such as \"1G\", got %T", v)
}

// sizeUnits are the units of ParseSize and of quota rules, as Dovecot
// reads them: powers of 1024, case-insensitive, an optional B after the
// letter ("10MB").
var sizeUnits = map[byte]int64{'b': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40}

// ParseSize reads a size in bytes: digits, then optionally a unit B, k,
// M, G or T (1k = 1024 bytes, as Dovecot counts). "0" is zero.
func ParseSize(s string) (int64, error) {
	n, rel, percent, err := parseQuotaValue(s, 1)
	if err == nil && (rel != 0 || percent) {
		err = errors.New("a sign or % is not allowed here")
	}
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	return n, nil
}

// parseQuotaValue reads the value of a quota limit: an optional sign
// ('+' or '-': relative to the default), digits, then a unit (see
// sizeUnits; unitless values are multiplied by def) or '%' (a percentage
// of the default). rel is +1 or -1 for a signed value, 0 otherwise.
func parseQuotaValue(s string, def int64) (n int64, rel int, percent bool, err error) {
	v := s
	if v != "" && (v[0] == '+' || v[0] == '-') {
		rel = 1
		if v[0] == '-' {
			rel = -1
		}
		v = v[1:]
	}
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, 0, false, errors.New("want a number")
	}
	n, err = strconv.ParseInt(v[:i], 10, 64)
	if err != nil {
		return 0, 0, false, errors.New("number too large")
	}
	unit := strings.ToLower(v[i:])
	if unit == "%" {
		if rel != 0 {
			return 0, 0, false, errors.New("a percentage cannot have a sign")
		}
		return n, 0, true, nil
	}
	mult := def
	if unit != "" {
		letter := unit
		if len(unit) == 2 && unit[0] != 'b' && unit[1] == 'b' {
			letter = unit[:1] // "10MB" is "10M"
		}
		if len(letter) != 1 || sizeUnits[letter[0]] == 0 {
			return 0, 0, false, fmt.Errorf("unknown unit %q (want B, k, M, G, T or %%)", v[i:])
		}
		mult = sizeUnits[letter[0]]
	}
	if n > math.MaxInt64/mult {
		return 0, 0, false, errors.New("number too large")
	}
	return n * mult, rel, false, nil
}

// QuotaRuleError is a quota rule in a user's extra fields that cannot be
// read.
type QuotaRuleError struct {
	User    string
	Field   string // the extra field as written, e.g. "userdb_quota_rule=*:storage=1X"
	Problem string
}

func (e *QuotaRuleError) Error() string {
	return fmt.Sprintf("config: user %q: extra field %q: %s", e.User, e.Field, e.Problem)
}

// UserQuota returns the quota of user u: [quota], overridden by the quota
// rules among u's extra fields. Those are Dovecot's userdb fields, so
// that one passwd-file serves both servers:
//
//	quota_rule=*:storage=1G             (also userdb_quota_rule=, and
//	quota_rule2=*:messages=10000         quota_rule2, quota_rule3, ...)
//	quota_rule=*:bytes=1048576:messages=500
//
//	limit     | unit without a suffix | meaning
//	----------+-----------------------+-----------------------------
//	storage   | kilobytes (1024)      | bytes the account may hold
//	bytes     | bytes                 | the same, in other units
//	messages  | messages              | messages the account may hold
//
// A value takes a suffix B, k, M, G or T (powers of 1024), or % (a
// percentage of the [quota] value); a leading + or - adds to or takes
// from the [quota] value (relative to no limit is no limit; a result of
// 0 or less is an error, as 0 would mean no limit). 0 is no limit. Each limit a rule sets replaces
// that of [quota]; a later rule replaces an earlier one. Rules for the
// default ("*", or Dovecot's "?") apply; rules for one mailbox (e.g.
// "Trash:storage=+100M") are Dovecot's per-mailbox limits, which a
// Maildir++ quota does not have: they are skipped. A rule that cannot be
// read is a *QuotaRuleError naming the user and the field.
func (c *Config) UserQuota(u *auth.User) (store.QuotaLimit, error) {
	def := store.QuotaLimit{Bytes: int64(c.Quota.Storage), Messages: c.Quota.Messages}
	q := def
	for _, field := range u.Extra {
		key, value, _ := strings.Cut(field, "=")
		if !isQuotaRuleKey(strings.TrimPrefix(key, "userdb_")) {
			continue
		}
		if err := applyQuotaRule(&q, def, value); err != nil {
			return store.QuotaLimit{}, &QuotaRuleError{User: u.Name, Field: field, Problem: err.Error()}
		}
	}
	return q, nil
}

// isQuotaRuleKey reports whether key is quota_rule, quota_rule2, ...
func isQuotaRuleKey(key string) bool {
	n, ok := strings.CutPrefix(key, "quota_rule")
	if !ok {
		return false
	}
	if n == "" {
		return true
	}
	i, err := strconv.Atoi(n)
	return err == nil && i >= 2 && strconv.Itoa(i) == n
}

// applyQuotaRule applies one rule, "<mailbox>:<limit>=<value>[:...]", to
// q; def is the [quota] limit, for relative values.
func applyQuotaRule(q *store.QuotaLimit, def store.QuotaLimit, rule string) error {
	mailbox, limits, ok := strings.Cut(rule, ":")
	if !ok || mailbox == "" {
		return errors.New(`want "<mailbox>:<limit>=<value>", e.g. "*:storage=1G"`)
	}
	if mailbox != "*" && mailbox != "?" {
		return nil
	}
	next := *q
	for _, l := range strings.Split(limits, ":") {
		name, value, ok := strings.Cut(l, "=")
		if !ok {
			return fmt.Errorf("%q: want <limit>=<value>", l)
		}
		var dst *int64
		var base, unit int64
		switch name {
		case "storage":
			dst, base, unit = &next.Bytes, def.Bytes, 1024
		case "bytes":
			dst, base, unit = &next.Bytes, def.Bytes, 1
		case "messages":
			dst, base, unit = &next.Messages, def.Messages, 1
		default:
			return fmt.Errorf("%q: unknown limit (want storage, bytes or messages)", name)
		}
		n, rel, percent, err := parseQuotaValue(value, unit)
		if err != nil {
			return fmt.Errorf("%s=%s: %v", name, value, err)
		}
		// Relative to no limit is no limit. Otherwise a relative value
		// must leave a limit: 0 would mean none.
		switch {
		case base == 0 && (percent || rel != 0):
			n = 0
		case percent:
			if n > math.MaxInt64/base {
				return fmt.Errorf("%s=%s: number too large", name, value)
			}
			if n = base * n / 100; n == 0 {
				return fmt.Errorf("%s=%s: leaves no room of the default %d", name, value, base)
			}
		case rel > 0:
			if n > math.MaxInt64-base {
				return fmt.Errorf("%s=%s: number too large", name, value)
			}
			n = base + n
		case rel < 0:
			if n >= base {
				return fmt.Errorf("%s=%s: leaves no room of the default %d", name, value, base)
			}
			n = base - n
		}
		*dst = n
	}
	*q = next
	return nil
}
