package imap

import (
	"slices"
	"testing"
)

func TestViewBasics(t *testing.T) {
	v := NewView([]uint32{3, 5, 9, 10})
	if v.Len() != 4 || v.UID(1) != 3 || v.UID(4) != 10 || v.UID(5) != 0 || v.UID(0) != 0 {
		t.Fatal("UID lookups")
	}
	if v.Seq(9) != 3 || v.Seq(4) != 0 || v.MaxUID() != 10 {
		t.Fatal("Seq lookups")
	}
	if n := v.Add([]uint32{10, 12, 11, 14}); n != 6 || !slices.Equal(v.UIDs(), []uint32{3, 5, 9, 10, 12, 14}) {
		t.Fatalf("Add: %d %v", n, v.UIDs())
	}
	// Expunging 5 and 12: announce 5 (seq 5) first, then 2.
	if seqs := v.Expunge([]uint32{5, 12, 99, 5}); !slices.Equal(seqs, []uint32{5, 2}) {
		t.Fatalf("expunge seqs %v", seqs)
	}
	if !slices.Equal(v.UIDs(), []uint32{3, 9, 10, 14}) {
		t.Fatalf("after expunge %v", v.UIDs())
	}
}

func TestViewSets(t *testing.T) {
	v := NewView([]uint32{3, 5, 9, 10, 20})
	cases := []struct {
		set  []Range
		want []uint32
		err  bool
	}{
		{[]Range{{1, 1}}, []uint32{3}, false},
		{[]Range{{2, 0}}, []uint32{5, 9, 10, 20}, false},
		{[]Range{{0, 4}}, []uint32{10, 20}, false}, // *:4 is 4:*
		{[]Range{{1, 2}, {2, 3}}, []uint32{3, 5, 9}, false},
		{[]Range{{6, 6}}, nil, true},
	}
	for _, c := range cases {
		got, err := v.SeqsToUIDs(c.set)
		if (err != nil) != c.err || !slices.Equal(got, c.want) {
			t.Errorf("SeqsToUIDs(%v) = %v, %v", c.set, got, err)
		}
	}
	ucases := []struct {
		set  []Range
		want []uint32
	}{
		{[]Range{{1, 0}}, []uint32{3, 5, 9, 10, 20}},
		{[]Range{{4, 9}}, []uint32{5, 9}},
		{[]Range{{21, 0}}, []uint32{20}}, // 21:* includes the highest UID
		{[]Range{{11, 19}}, nil},
		{[]Range{{9, 9}, {3, 5}}, []uint32{3, 5, 9}},
	}
	for _, c := range ucases {
		if got := v.UIDsIn(c.set); !slices.Equal(got, c.want) {
			t.Errorf("UIDsIn(%v) = %v, want %v", c.set, got, c.want)
		}
	}
	empty := NewView(nil)
	if got := empty.UIDsIn([]Range{{1, 0}}); len(got) != 0 {
		t.Errorf("empty view: %v", got)
	}
	if _, err := empty.SeqsToUIDs([]Range{{1, 0}}); err == nil {
		t.Error("1:* on an empty view is an error for sequence numbers")
	}
}

// TestViewSeqsIn: SEARCH's resolution of a sequence set: past the end
// is no error but no message, and "*" is the last message, so "905:*"
// with 900 messages is 900:905 (RFC 9051 §9).
func TestViewSeqsIn(t *testing.T) {
	uids := make([]uint32, 900)
	for i := range uids {
		uids[i] = uint32(i + 1000)
	}
	v := NewView(uids)
	empty := NewView(nil)
	cases := []struct {
		name    string
		v       *View
		set     []Range
		want    []uint32
		fetchOK bool // SeqsToUIDs (FETCH, STORE...) accepts the set
	}{
		{"905:*", v, []Range{{905, 0}}, []uint32{1899}, false},
		{"*:905", v, []Range{{0, 905}}, []uint32{1899}, false},
		{"*", v, []Range{{0, 0}}, []uint32{1899}, true},
		{"1000", v, []Range{{1000, 1000}}, nil, false},
		{"899:2000", v, []Range{{899, 2000}}, []uint32{1898, 1899}, false},
		{"1000,2,901:950", v, []Range{{1000, 1000}, {2, 2}, {901, 950}}, []uint32{1001}, false},
		{"1:2,2:3", v, []Range{{1, 2}, {2, 3}}, []uint32{1000, 1001, 1002}, true},
		{"empty 1:*", empty, []Range{{1, 0}}, nil, false},
		{"empty *", empty, []Range{{0, 0}}, nil, false},
		{"empty 1", empty, []Range{{1, 1}}, nil, false},
	}
	for _, c := range cases {
		if got := c.v.SeqsIn(c.set); !slices.Equal(got, c.want) {
			t.Errorf("SeqsIn(%s): %v, want %v", c.name, got, c.want)
		}
		if _, err := c.v.SeqsToUIDs(c.set); (err == nil) != c.fetchOK {
			t.Errorf("SeqsToUIDs(%s): %v", c.name, err)
		}
	}
}

func TestViewPanicsOnDisorder(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for UIDs out of order")
		}
	}()
	NewView([]uint32{5, 3})
}

// Sessions that select one mailbox share its snapshot of UIDs: no view
// may write into it, whatever its capacity.
func TestViewsShareSnapshot(t *testing.T) {
	snap := make([]uint32, 4, 16)
	copy(snap, []uint32{3, 5, 9, 10})
	a, b := NewView(snap), NewView(snap)
	a.Add([]uint32{11})
	b.Add([]uint32{12})
	a.Expunge([]uint32{3})
	if !slices.Equal(a.UIDs(), []uint32{5, 9, 10, 11}) {
		t.Errorf("a = %v", a.UIDs())
	}
	if !slices.Equal(b.UIDs(), []uint32{3, 5, 9, 10, 12}) {
		t.Errorf("b = %v", b.UIDs())
	}
	c := NewView(snap)
	c.Expunge([]uint32{9})
	if !slices.Equal(snap, []uint32{3, 5, 9, 10}) || !slices.Equal(snap[:5], []uint32{3, 5, 9, 10, 0}) {
		t.Errorf("the shared snapshot changed: %v", snap[:cap(snap)])
	}
	if !slices.Equal(c.UIDs(), []uint32{3, 5, 10}) {
		t.Errorf("c = %v", c.UIDs())
	}
}
