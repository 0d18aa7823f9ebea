package imaptorture

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxCopyUIDs bounds the UIDs one COPYUID may name: the sessions copy a
// few messages at a time, so more is a broken server, and is ignored.
const maxCopyUIDs = 10_000

// appendUID reads an APPENDUID response code (RFC 4315 §3): the
// UIDVALIDITY of the target mailbox and the UID of the new message.
func appendUID(resp *Response) (validity, uid uint32, ok bool) {
	if resp == nil || resp.Code != "APPENDUID" || len(resp.CodeArgs) != 2 {
		return 0, 0, false
	}
	v, err1 := strconv.ParseUint(resp.CodeArgs[0], 10, 32)
	u, err2 := strconv.ParseUint(resp.CodeArgs[1], 10, 32)
	if err1 != nil || err2 != nil || u == 0 {
		return 0, 0, false
	}
	return uint32(v), uint32(u), true
}

// copyUID reads a COPYUID response code (RFC 4315 §3): the UIDVALIDITY
// of the target mailbox and the source and target UIDs, pairwise.
func copyUID(resp *Response) (validity uint32, src, dst []uint32, ok bool) {
	if resp == nil || resp.Code != "COPYUID" || len(resp.CodeArgs) != 3 {
		return 0, nil, nil, false
	}
	v, err := strconv.ParseUint(resp.CodeArgs[0], 10, 32)
	if err != nil {
		return 0, nil, nil, false
	}
	src, ok1 := parseUIDSet(resp.CodeArgs[1])
	dst, ok2 := parseUIDSet(resp.CodeArgs[2])
	if !ok1 || !ok2 || len(src) != len(dst) {
		return 0, nil, nil, false
	}
	return uint32(v), src, dst, true
}

// parseUIDSet expands a uid-set ("4,7:9", RFC 4315 §4) in order; a range
// given high to low ("9:7") is expanded ascending. It refuses "*", zero
// and sets of more than maxCopyUIDs UIDs.
func parseUIDSet(s string) ([]uint32, bool) {
	var out []uint32
	for part := range strings.SplitSeq(s, ",") {
		a, b, isRange := strings.Cut(part, ":")
		lo, err := strconv.ParseUint(a, 10, 32)
		if err != nil || lo == 0 {
			return nil, false
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(b, 10, 32); err != nil || hi == 0 {
				return nil, false
			}
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if hi-lo >= maxCopyUIDs || len(out)+int(hi-lo+1) > maxCopyUIDs {
			return nil, false
		}
		for u := lo; u <= hi; u++ {
			out = append(out, uint32(u))
		}
	}
	return out, len(out) > 0
}

// uidRange is the UIDs lo to hi, both included.
type uidRange struct{ lo, hi uint32 }

// maxRanges bounds the ranges of one uid-set read as ranges.
const maxRanges = 100_000

// parseUIDRanges reads a uid-set ("4,7:9", RFC 9051 §9) as ranges, low
// first, without expanding them: a VANISHED (EARLIER) may name UIDs
// that never existed (RFC 7162 §3.2.10). It refuses "*" and zero.
func parseUIDRanges(s string) ([]uidRange, error) {
	var out []uidRange
	for part := range strings.SplitSeq(s, ",") {
		if len(out) == maxRanges {
			return nil, errors.New("too many ranges")
		}
		a, b, isRange := strings.Cut(part, ":")
		lo, err := strconv.ParseUint(a, 10, 32)
		if err != nil || lo == 0 {
			return nil, fmt.Errorf("UID %q", a)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(b, 10, 32); err != nil || hi == 0 {
				return nil, fmt.Errorf("UID %q", b)
			}
		}
		out = append(out, uidRange{uint32(min(lo, hi)), uint32(max(lo, hi))})
	}
	return out, nil
}

// inRanges reports whether uid is in one of rs.
func inRanges(rs []uidRange, uid uint32) bool {
	for _, r := range rs {
		if uid >= r.lo && uid <= r.hi {
			return true
		}
	}
	return false
}

// compactSet writes ascending UIDs as a uid-set, a run of consecutive
// UIDs as one range.
func compactSet(uids []uint32) string {
	var b strings.Builder
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(uids[i]), 10))
		if j > i {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(uids[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}
