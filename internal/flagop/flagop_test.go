package flagop

import "testing"

func TestString(t *testing.T) {
	for _, c := range []struct {
		op   Op
		want string
	}{{Replace, "FLAGS"}, {Add, "+FLAGS"}, {Remove, "-FLAGS"}, {Op(7), "flagop.Op(?)"}} {
		if got := c.op.String(); got != c.want {
			t.Errorf("%d: %q, want %q", int(c.op), got, c.want)
		}
	}
}
