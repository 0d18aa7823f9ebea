package imaptorture

import (
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
