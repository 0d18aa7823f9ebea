package wire

import (
	"math"
	"testing"
)

func TestParseSeqSet(t *testing.T) {
	tests := []struct {
		in   string
		want string // String() of the parsed set; "" for an error
	}{
		{"1", "1"},
		{"1:3", "1:3"},
		{"3:1", "1:3"},
		{"*", "*"},
		{"*:4", "4:*"},
		{"4:*", "4:*"},
		{"*:*", "*"},
		{"1,3:5,*", "1,3:5,*"},
		{"4294967295", "4294967295"},
		{"2,4:7,9,12:*", "2,4:7,9,12:*"},
		{"$", "$"},
		{"", ""},
		{"0", ""},
		{"01", ""},
		{"1:0", ""},
		{"4294967296", ""},
		{"1,", ""},
		{",1", ""},
		{"1::2", ""},
		{"1:2:3", ""},
		{"$,1", ""},
		{"1:$", ""},
		{"a", ""},
	}
	for _, tt := range tests {
		s, err := ParseSeqSet(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseSeqSet(%q) = %v, want error", tt.in, s)
			}
			continue
		}
		if err != nil || s.String() != tt.want {
			t.Errorf("ParseSeqSet(%q) = %q, %v; want %q", tt.in, s.String(), err, tt.want)
		}
	}
}

func TestSeqSetResolve(t *testing.T) {
	tests := []struct {
		in   string
		max  uint32
		want string
	}{
		{"1:*", 10, "1:10"},
		{"*", 10, "10"},
		{"12:*", 10, "10:12"}, // RFC 9051 §6.4.8
		{"5,1:3,4", 10, "1:5"},
		{"7,3,5", 10, "3,5,7"},
		{"1:5,3:8,20", 100, "1:8,20"},
		{"1:*", 0, ""},
		{"5:*", 0, ""},
		{"3,5:*", 0, "3"},
		{"4294967295,1:*", 4294967295, "1:4294967295"},
		{"4294967294:4294967295,1", 4, "1,4294967294:4294967295"},
		{"$", 10, "$"},
	}
	for _, tt := range tests {
		s, err := ParseSeqSet(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Resolve(tt.max).String(); got != tt.want {
			t.Errorf("Resolve(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestSeqSetContains(t *testing.T) {
	s, _ := ParseSeqSet("2,4:6,9:*")
	tests := []struct {
		n, max uint32
		want   bool
	}{
		{1, 20, false}, {2, 20, true}, {3, 20, false}, {5, 20, true},
		{8, 20, false}, {9, 20, true}, {20, 20, true}, {21, 20, false},
		{8, 8, true}, // 9:* with max 8 is 8:9
		{0, 20, false},
		{9, 0, false}, // "*" in an empty mailbox
	}
	for _, tt := range tests {
		if got := s.Contains(tt.n, tt.max); got != tt.want {
			t.Errorf("Contains(%d, %d) = %v", tt.n, tt.max, got)
		}
	}
	if SavedSeqSet().Contains(1, 1) {
		t.Error("saved set contains 1")
	}
	if s.IsSaved() || !SavedSeqSet().IsSaved() {
		t.Error("IsSaved wrong")
	}
	if !s.HasStar() || SavedSeqSet().HasStar() {
		t.Error("HasStar wrong")
	}
	full := SeqSet{{1, math.MaxUint32}}
	if !full.Contains(math.MaxUint32, 5) {
		t.Error("max uint32 not contained")
	}
}
