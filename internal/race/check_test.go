package race

import (
	"slices"
	"testing"
)

func TestCheckerVerdicts(t *testing.T) {
	bases := []string{"1.M1P1Q1.h", "1.M1P1Q2.h", "1.M1P1Q3.h"}
	tests := []struct {
		name        string
		scan        []string
		want        Verdict
		wantMissing []string
	}{
		{"complete", []string{"1.M1P1Q1.h:2,S", "1.M1P1Q2.h:2,", "1.M1P1Q3.h:2,FS"}, Verdict{}, nil},
		{"complete, other order", []string{"1.M1P1Q3.h:2,T", "1.M1P1Q1.h:2,D", "1.M1P1Q2.h:2,R"}, Verdict{}, nil},
		{"one missing", []string{"1.M1P1Q1.h:2,S", "1.M1P1Q3.h:2,"}, Verdict{Missing: 1}, []string{"1.M1P1Q2.h"}},
		{"empty", nil, Verdict{Missing: 3}, bases},
		{"doubled under two flag sets", []string{"1.M1P1Q1.h:2,S", "1.M1P1Q2.h:2,", "1.M1P1Q2.h:2,S", "1.M1P1Q3.h:2,"}, Verdict{Doubled: 1}, nil},
		{"tripled", []string{"1.M1P1Q1.h:2,", "1.M1P1Q1.h:2,S", "1.M1P1Q1.h:2,RS", "1.M1P1Q2.h:2,", "1.M1P1Q3.h:2,"}, Verdict{Doubled: 2}, nil},
		{"missing and doubled", []string{"1.M1P1Q1.h:2,", "1.M1P1Q1.h:2,S", "1.M1P1Q3.h:2,"}, Verdict{Missing: 1, Doubled: 1}, []string{"1.M1P1Q2.h"}},
		{"unknown entry", []string{"1.M1P1Q1.h:2,", "1.M1P1Q2.h:2,", "1.M1P1Q3.h:2,", "2.M1P1Q9.h:2,"}, Verdict{Unknown: 1}, nil},
		{"no info part", []string{"1.M1P1Q1.h", "1.M1P1Q2.h", "1.M1P1Q3.h"}, Verdict{}, nil},
	}
	// One Checker for all cases, in order: each scan must be judged
	// alone, whatever the scans before it saw.
	c := NewChecker(bases)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Check(tt.scan)
			if got != tt.want {
				t.Errorf("Check(%q) = %+v, want %+v", tt.scan, got, tt.want)
			}
			if got.Wrong() != (tt.want != Verdict{}) {
				t.Errorf("Wrong() = %t for %+v", got.Wrong(), got)
			}
			if m := c.MissingBases(10); !slices.Equal(m, tt.wantMissing) {
				t.Errorf("MissingBases = %q, want %q", m, tt.wantMissing)
			}
		})
	}
}

func TestCheckerEpochWrap(t *testing.T) {
	c := NewChecker([]string{"a", "b"})
	c.Check([]string{"a:2,"})
	c.epoch = ^uint32(0) // the next scan wraps the epoch to 0
	if v := c.Check([]string{"b:2,S"}); v != (Verdict{Missing: 1}) {
		t.Errorf("after wrap: %+v, want one missing", v)
	}
	if v := c.Check([]string{"a:2,", "b:2,"}); v != (Verdict{}) {
		t.Errorf("after wrap, complete scan: %+v", v)
	}
}

func TestCheckerCloneIsIndependent(t *testing.T) {
	a := NewChecker([]string{"x", "y"})
	b := a.Clone()
	a.Check([]string{"x:2,"})
	if v := b.Check([]string{"y:2,"}); v != (Verdict{Missing: 1}) {
		t.Errorf("clone: %+v, want one missing", v)
	}
	if m := a.MissingBases(5); !slices.Equal(m, []string{"y"}) {
		t.Errorf("original lost its scan: missing %q", m)
	}
}
