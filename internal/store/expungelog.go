package store

import (
	"slices"
	"sort"
)

// UIDRange is the UIDs Lo..Hi, both included.
type UIDRange struct{ Lo, Hi uint32 }

// maxExpungeRanges bounds the ranges an expungeLog keeps: past it, the
// older half (by modseq) is forgotten and the floor raised, so that a
// mailbox with millions of past expunges costs at most this many ranges
// (12 bytes each).
const maxExpungeRanges = 1 << 16

// expungeRange is UIDs lo..hi, expunged at modseqs up to modseq.
type expungeRange struct {
	lo, hi uint32
	modseq uint64
}

// expungeLog remembers the UIDs expunged since floor with their
// modseqs, as ranges in UID order. Its promise, for every modseq n at or
// above floor: the UIDs of the ranges whose modseq is above n hold every
// UID expunged with a modseq above n. Only UIDs that were expunged are
// in a range, so none is a live message's (a UID is never given twice).
// Adjacent ranges (hi+1 == lo) are merged, keeping the higher modseq:
// a query may then get UIDs expunged before its modseq too, which
// RFC 7162 allows (VANISHED (EARLIER) may over-report, never
// under-report). Below floor the log knows nothing (the caller answers
// with every UID no message holds). Guarded by the Mailbox's mu;
// changed by writers, which also hold wmu.
type expungeLog struct {
	floor  uint64
	ranges []expungeRange
}

// add records uids as expunged at modseq, which is above every modseq
// recorded before.
func (l *expungeLog) add(uids []uint32, modseq uint64) {
	uids = slices.Clone(uids)
	slices.Sort(uids)
	for _, u := range uids {
		l.addOne(u, modseq)
	}
	if len(l.ranges) > maxExpungeRanges {
		l.forgetOlder()
	}
}

// addOne records one UID.
func (l *expungeLog) addOne(u uint32, modseq uint64) {
	i := sort.Search(len(l.ranges), func(i int) bool { return l.ranges[i].hi >= u })
	if i < len(l.ranges) && l.ranges[i].lo <= u {
		l.ranges[i].modseq = max(l.ranges[i].modseq, modseq) // again: a UID expunged twice
		return
	}
	left := i > 0 && l.ranges[i-1].hi+1 == u
	right := i < len(l.ranges) && u+1 == l.ranges[i].lo
	switch {
	case left && right:
		l.ranges[i-1].hi = l.ranges[i].hi
		l.ranges[i-1].modseq = max(l.ranges[i-1].modseq, l.ranges[i].modseq, modseq)
		l.ranges = slices.Delete(l.ranges, i, i+1)
	case left:
		l.ranges[i-1].hi = u
		l.ranges[i-1].modseq = max(l.ranges[i-1].modseq, modseq)
	case right:
		l.ranges[i].lo = u
		l.ranges[i].modseq = max(l.ranges[i].modseq, modseq)
	default:
		l.ranges = slices.Insert(l.ranges, i, expungeRange{u, u, modseq})
	}
}

// forgetOlder drops the ranges with the older half of the modseqs and
// raises floor to the highest modseq dropped: for every n at or above
// the new floor, the ranges above n are all kept.
func (l *expungeLog) forgetOlder() {
	ms := make([]uint64, len(l.ranges))
	for i, r := range l.ranges {
		ms[i] = r.modseq
	}
	slices.Sort(ms)
	cut := ms[len(ms)/2]
	l.ranges = slices.DeleteFunc(l.ranges, func(r expungeRange) bool { return r.modseq <= cut })
	l.ranges = slices.Clip(l.ranges)
	l.floor = max(l.floor, cut)
}

// since returns the ranges whose modseq is above n, merging the ones
// that touch.
func (l *expungeLog) since(n uint64) []UIDRange {
	var out []UIDRange
	for _, r := range l.ranges {
		if r.modseq <= n {
			continue
		}
		if k := len(out); k > 0 && out[k-1].Hi+1 == r.lo {
			out[k-1].Hi = r.hi
			continue
		}
		out = append(out, UIDRange{r.lo, r.hi})
	}
	return out
}
