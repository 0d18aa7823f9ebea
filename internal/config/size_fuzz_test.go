package config

import (
	"math/big"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseSize checks ParseSize against its documentation with
// arbitrary-precision arithmetic: digits, then optionally one of B, k,
// M, G, T in any case (powers of 1024) with an optional B after the
// letter; accepted exactly when the value fits in an int64, and then
// that value.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "1", "10k", "10K", "10MB", "1G", "8T", "7b", "1BB", "1kB", "1 G", "", "-1", "+1", "1%", "1Q",
		"9223372036854775807", "9223372036854775808", "8388607T", "8388608T", "007m", "1gb"} {
		f.Add(s)
	}
	units := map[string]int64{"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSize(s)
		i := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		unit := strings.ToLower(s[i:])
		if len(unit) == 2 && unit[0] != 'b' && unit[1] == 'b' {
			unit = unit[:1]
		}
		mult, unitOK := units[unit]
		want, fits := new(big.Int), false
		if i > 0 && unitOK {
			want.SetString(s[:i], 10)
			want.Mul(want, big.NewInt(mult))
			fits = want.IsInt64()
		}
		switch {
		case fits && (err != nil || got != want.Int64()):
			t.Fatalf("ParseSize(%q) = %d, %v; want %s", s, got, err, want)
		case !fits && err == nil:
			t.Fatalf("ParseSize(%q) = %d; want an error", s, got)
		case err != nil && !strings.Contains(err.Error(), strconv.Quote(s)):
			t.Fatalf("ParseSize(%q): error %q does not quote the value", s, err)
		}
	})
}
