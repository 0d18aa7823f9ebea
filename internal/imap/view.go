package imap

import (
	"fmt"
	"slices"
)

// View is one session's picture of its selected mailbox: which UID each
// message sequence number names (RFC 9051 §2.3.1.2). It changes only when
// the session tells the client: EXISTS grows it, EXPUNGE shrinks it. The
// shared mailbox moves on without it; the session catches up at the
// moments the protocol allows (never during FETCH, STORE or SEARCH by
// sequence number: RFC 9051 §7.5.1).
//
// A View is used by its session's goroutine only.
type View struct {
	uids []uint32 // uids[seq-1], strictly ascending
	// shared: uids is the caller's slice, which the view must not write
	// into; the first change copies it.
	shared bool
}

// NewView returns a view of the given UIDs, which must ascend. The view
// never writes into the slice (the mailbox shares one snapshot among
// every session that selects it); it copies it on its first change.
func NewView(uids []uint32) *View {
	v := &View{uids: uids, shared: true}
	v.check()
	return v
}

// own makes v.uids the view's own slice, with room for extra more UIDs.
func (v *View) own(extra int) {
	if v.shared {
		v.uids = append(make([]uint32, 0, len(v.uids)+extra), v.uids...)
		v.shared = false
	}
}

func (v *View) check() {
	for i := 1; i < len(v.uids); i++ {
		if v.uids[i] <= v.uids[i-1] {
			panic(fmt.Sprintf("imap: view UIDs not ascending at %d: %d after %d", i+1, v.uids[i], v.uids[i-1]))
		}
	}
}

// Len is the number of messages the client knows (the last EXISTS).
func (v *View) Len() uint32 { return uint32(len(v.uids)) }

// UID returns the UID of sequence number seq (1-based), 0 if none.
func (v *View) UID(seq uint32) uint32 {
	if seq == 0 || seq > uint32(len(v.uids)) {
		return 0
	}
	return v.uids[seq-1]
}

// Seq returns the sequence number of uid, 0 if the view lacks it.
func (v *View) Seq(uid uint32) uint32 {
	i, ok := slices.BinarySearch(v.uids, uid)
	if !ok {
		return 0
	}
	return uint32(i + 1)
}

// MaxUID is the highest UID in the view, 0 when empty.
func (v *View) MaxUID() uint32 {
	if len(v.uids) == 0 {
		return 0
	}
	return v.uids[len(v.uids)-1]
}

// UIDs returns the view's UIDs; the caller must not change them.
func (v *View) UIDs() []uint32 { return v.uids }

// Add appends UIDs above every UID in the view (new messages) and returns
// the new message count, for EXISTS. UIDs already known are ignored.
func (v *View) Add(uids []uint32) uint32 {
	for _, u := range uids {
		if u > v.MaxUID() {
			v.own(len(uids))
			v.uids = append(v.uids, u)
		}
	}
	return v.Len()
}

// Expunge removes the UIDs that the view has and returns, for each, the
// sequence number to announce in an EXPUNGE response, in the order they
// must be sent: each number is valid after the previous ones took effect.
// Highest first, so that no number depends on another.
func (v *View) Expunge(uids []uint32) []uint32 {
	var seqs []uint32
	gone := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		if s := v.Seq(u); s != 0 && !gone[u] {
			gone[u] = true
			seqs = append(seqs, s)
		}
	}
	if len(seqs) == 0 {
		return nil
	}
	slices.Sort(seqs)
	slices.Reverse(seqs)
	v.own(0)
	v.uids = slices.DeleteFunc(v.uids, func(u uint32) bool { return gone[u] })
	return seqs
}

// Range is a closed interval; Stop 0 stands for "*", the largest value.
type Range struct{ Start, Stop uint32 }

// SeqsToUIDs resolves a sequence set against the view: "*" is the last
// message. Numbers beyond the view are an error (BAD, as Dovecot's
// "Invalid messageset" for FETCH, STORE, COPY...; with no message every
// set is); the UIDs come back ascending, without duplicates.
func (v *View) SeqsToUIDs(set []Range) ([]uint32, error) {
	n := v.Len()
	for _, r := range set {
		a, b := star(r.Start, n), star(r.Stop, n)
		if a == 0 || b == 0 || a > n || b > n {
			return nil, fmt.Errorf("message sequence number %d out of range (%d messages)", max(a, b), n)
		}
	}
	return v.SeqsIn(set), nil
}

// SeqsIn resolves a sequence set against the view as a SEARCH key does:
// "*" is the last message ("905:*" with 900 messages is 900:905, RFC
// 9051 §9 seq-range), and numbers past the end name no message, so that
// the key matches the part of the set that exists (none in an empty
// view). The UIDs come back ascending, without duplicates.
func (v *View) SeqsIn(set []Range) []uint32 {
	n := v.Len()
	var out []uint32
	for _, r := range set {
		a, b := star(r.Start, n), star(r.Stop, n)
		if a > b {
			a, b = b, a
		}
		a, b = max(a, 1), min(b, n)
		if a > b {
			continue
		}
		out = append(out, v.uids[a-1:b]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// UIDsIn resolves a UID set against the view: "*" is the highest UID in
// the view (RFC 9051 §6.4.9: "1:*" with an empty view still names the
// last UID, so "n:*" always includes the highest UID). UIDs the view
// lacks are left out; the result ascends.
func (v *View) UIDsIn(set []Range) []uint32 {
	maxUID := v.MaxUID()
	var out []uint32
	for _, r := range set {
		a, b := star(r.Start, maxUID), star(r.Stop, maxUID)
		if a > b {
			a, b = b, a
		}
		lo, _ := slices.BinarySearch(v.uids, a)
		hi, found := slices.BinarySearch(v.uids, b)
		if found {
			hi++
		}
		out = append(out, v.uids[lo:hi]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func star(x, last uint32) uint32 {
	if x == 0 {
		return last
	}
	return x
}
