package wire

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Star is the value of "*" in a SeqRange: the largest number in use
// (RFC 9051 §9, seq-number). It is 0 because nz-number never is.
const Star uint32 = 0

// SeqRange is seq-number or seq-range. A range as parsed has Start <= Stop,
// with Star, if present, always in Stop ("*:4" is stored as 4:*).
type SeqRange struct{ Start, Stop uint32 }

// SeqSet is a sequence-set of message sequence numbers or UIDs (RFC 9051
// §9). The ranges keep the client's order until Resolve.
type SeqSet []SeqRange

// savedRange marks the SEARCHRES "$" (RFC 5182 §2.1). Parsing never
// produces it otherwise, since it puts Star in Stop.
var savedRange = SeqRange{Start: Star, Stop: math.MaxUint32}

// SavedSeqSet returns the set "$": the result saved by the last
// SEARCH RETURN (SAVE) (RFC 5182).
func SavedSeqSet() SeqSet { return SeqSet{savedRange} }

// IsSaved reports whether s is "$". The server substitutes the saved
// result before using the set; Resolve and Contains do not know it.
func (s SeqSet) IsSaved() bool { return len(s) == 1 && s[0] == savedRange }

// HasStar reports whether s mentions "*" (so its meaning depends on the
// mailbox, RFC 9051 §6.4.8).
func (s SeqSet) HasStar() bool {
	if s.IsSaved() {
		return false
	}
	for _, r := range s {
		if r.Start == Star || r.Stop == Star {
			return true
		}
	}
	return false
}

// ParseSeqSet parses sequence-set = (seq-number / seq-range) ["," sequence-set]
// or the SEARCHRES "$" (RFC 5182 §2.1). Numbers are nz-number: 1 to
// 2^32-1 without leading zeros (RFC 9051 §9).
func ParseSeqSet(str string) (SeqSet, error) {
	if str == "$" {
		return SavedSeqSet(), nil
	}
	if str == "" {
		return nil, syntaxErr("expected sequence set")
	}
	s := make(SeqSet, 0, strings.Count(str, ",")+1)
	for part := range strings.SplitSeq(str, ",") {
		a, b, isRange := strings.Cut(part, ":")
		start, err := parseSeqNumber(a)
		if err != nil {
			return nil, err
		}
		stop := start
		if isRange {
			if stop, err = parseSeqNumber(b); err != nil {
				return nil, err
			}
		}
		switch {
		case start == Star:
			start, stop = stop, Star
		case stop != Star && start > stop:
			start, stop = stop, start
		}
		s = append(s, SeqRange{start, stop})
	}
	return s, nil
}

func parseSeqNumber(s string) (uint32, error) {
	if s == "*" {
		return Star, nil
	}
	if s == "" || s[0] == '0' {
		return 0, syntaxErr("invalid sequence number %q", s)
	}
	n, ok := parseUint([]byte(s), math.MaxUint32)
	if !ok {
		return 0, syntaxErr("invalid sequence number %q", s)
	}
	return uint32(n), nil
}

// SeqSet reads a sequence-set, or "$" (RFC 5182).
func (d *Decoder) SeqSet() (SeqSet, error) {
	d.inLine = true
	b, err := d.take(cSeq)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, syntaxErr("expected sequence set")
	}
	return ParseSeqSet(string(b))
}

// Resolve replaces "*" with max (the largest sequence number or UID in
// use) and returns the set sorted, with overlapping and adjacent ranges
// merged and Start <= Stop. RFC 9051 §6.4.8: "n:*" with n above max means
// max:n. With max 0 (an empty mailbox) "*" denotes no message and the
// ranges that mention it are dropped. A saved set ("$") is returned
// unchanged.
func (s SeqSet) Resolve(max uint32) SeqSet {
	if s.IsSaved() {
		return s
	}
	out := make(SeqSet, 0, len(s))
	for _, r := range s {
		a, b := r.Start, r.Stop
		if a == Star || b == Star {
			if max == 0 {
				continue
			}
			if a == Star {
				a = max
			}
			if b == Star {
				b = max
			}
		}
		if a > b {
			a, b = b, a
		}
		if a == 0 {
			continue // not produced by parsing
		}
		out = append(out, SeqRange{a, b})
	}
	slices.SortFunc(out, func(x, y SeqRange) int {
		switch {
		case x.Start < y.Start:
			return -1
		case x.Start > y.Start:
			return 1
		}
		return 0
	})
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 {
			last := &merged[n-1]
			if last.Stop == math.MaxUint32 || r.Start <= last.Stop+1 {
				last.Stop = maxU32(last.Stop, r.Stop)
				continue
			}
		}
		merged = append(merged, r)
	}
	return merged
}

func maxU32(a, b uint32) uint32 {
	if a > b {
		return a
	}
	return b
}

// Contains reports whether n is in s, with "*" meaning max, as in
// Resolve. A saved set contains nothing until substituted.
func (s SeqSet) Contains(n, max uint32) bool {
	if n == 0 || s.IsSaved() {
		return false
	}
	for _, r := range s {
		a, b := r.Start, r.Stop
		if a == Star || b == Star {
			if max == 0 {
				continue
			}
			if a == Star {
				a = max
			}
			if b == Star {
				b = max
			}
		}
		if a > b {
			a, b = b, a
		}
		if a <= n && n <= b {
			return true
		}
	}
	return false
}

// String formats s as a sequence-set ("1:3,7", "5:*", "$"). Call Resolve
// first for the canonical form of a response (APPENDUID, COPYUID, ESEARCH
// ALL; RFC 4315 §3, RFC 4731 §3.1).
func (s SeqSet) String() string {
	if s.IsSaved() {
		return "$"
	}
	var b []byte
	for i, r := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendSeqNumber(b, r.Start)
		if r.Start != r.Stop {
			b = append(b, ':')
			b = appendSeqNumber(b, r.Stop)
		}
	}
	return string(b)
}

func appendSeqNumber(b []byte, n uint32) []byte {
	if n == Star {
		return append(b, '*')
	}
	return strconv.AppendUint(b, uint64(n), 10)
}
