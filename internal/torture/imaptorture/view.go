package imaptorture

import (
	"slices"
	"strings"
)

// view is one session's model of its selected mailbox, built only from
// the responses that session received (RFC 9051 §2.3.1): sequence
// number n is uids[n-1], 0 while the session has not been told its UID.
// EXISTS grows it, EXPUNGE n removes n, SELECT starts it anew. flags
// holds the flags the session was last told for each known UID.
type view struct {
	uids  []uint32
	flags map[uint32]string
}

func (v *view) reset(n uint32) {
	v.uids = make([]uint32, n)
	v.flags = make(map[uint32]string)
}

func (v *view) len() uint32 { return uint32(len(v.uids)) }

// grow adds unknown messages up to n.
func (v *view) grow(n uint32) {
	for uint32(len(v.uids)) < n {
		v.uids = append(v.uids, 0)
	}
}

// remove removes sequence number seq and returns its UID (0 if unknown).
func (v *view) remove(seq uint32) uint32 {
	uid := v.uids[seq-1]
	v.uids = slices.Delete(v.uids, int(seq-1), int(seq))
	if uid != 0 {
		delete(v.flags, uid)
	}
	return uid
}

// seqOf returns the sequence number of uid, 0 if the view lacks it.
func (v *view) seqOf(uid uint32) uint32 {
	for i, u := range v.uids {
		if u == uid {
			return uint32(i + 1)
		}
	}
	return 0
}

// neighbours returns the nearest known UIDs below and above seq (0 when
// none): a UID learned for seq must lie strictly between them.
func (v *view) neighbours(seq uint32) (below, above uint32) {
	for i := int(seq) - 2; i >= 0; i-- {
		if v.uids[i] != 0 {
			below = v.uids[i]
			break
		}
	}
	for i := int(seq); i < len(v.uids); i++ {
		if v.uids[i] != 0 {
			above = v.uids[i]
			break
		}
	}
	return below, above
}

// unknownSlot returns the first sequence number whose UID is unknown
// and may be uid (between the known UIDs around it), 0 if none: uid is
// not known to the view.
func (v *view) unknownSlot(uid uint32) uint32 {
	if v.seqOf(uid) != 0 {
		return 0
	}
	for i, u := range v.uids {
		if u != 0 {
			continue
		}
		below, above := v.neighbours(uint32(i + 1))
		if below < uid && (above == 0 || uid < above) {
			return uint32(i + 1)
		}
	}
	return 0
}

// unknown returns the range of sequence numbers whose UIDs are unknown.
func (v *view) unknown() (lo, hi uint32, ok bool) {
	for i, u := range v.uids {
		if u == 0 {
			if !ok {
				lo, ok = uint32(i+1), true
			}
			hi = uint32(i + 1)
		}
	}
	return lo, hi, ok
}

// known returns the known UIDs, ascending by sequence number.
func (v *view) known() []uint32 {
	out := make([]uint32, 0, len(v.uids))
	for _, u := range v.uids {
		if u != 0 {
			out = append(out, u)
		}
	}
	return out
}

// snapshot returns UID → flags for every known message.
func (v *view) snapshot() map[uint32]string {
	out := make(map[uint32]string, len(v.uids))
	for _, u := range v.uids {
		if u != 0 {
			out[u] = v.flags[u]
		}
	}
	return out
}

// canonFlags is a flag list as a comparable string: lower case (flags
// and keywords match case-insensitively), sorted, without \Recent (which
// is per session, RFC 9051 §2.3.2).
func canonFlags(flags []string) string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		f = strings.ToLower(f)
		if f == `\recent` || slices.Contains(out, f) {
			continue
		}
		out = append(out, f)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
