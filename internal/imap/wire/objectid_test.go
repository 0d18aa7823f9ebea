package wire

import (
	"strings"
	"testing"
)

func TestIsObjectID(t *testing.T) {
	for _, tt := range []struct {
		s  string
		ok bool
	}{
		{"F2212ea87-6097-4256-9d51-71338625", true},
		{"M6d99ac3275bb4e", true},
		{"a_b-C9", true},
		{"0123456789abcdef0123456789abcdef", true},
		{strings.Repeat("x", 255), true},
		{strings.Repeat("x", 256), false},
		{"", false},
		{"M1.2", false},
		{"M1,S=20", false},
		{"M 1", false},
		{"Mé", false},
	} {
		if got := IsObjectID(tt.s); got != tt.ok {
			t.Errorf("IsObjectID(%q) = %v, want %v", tt.s, got, tt.ok)
		}
	}
}
