package imaptorture

import (
	"testing"
	"time"
)

// TestLoginStarved: with connections held open that never log in, a
// server that then refuses new connections (as Cistern did before it
// had a budget for them) starves the torture's own logins, and the
// checker says so; an honest server is not accused.
func TestLoginStarved(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  lie
		want bool
	}{
		{"honest", honest, false},
		{"refuses new connections", lieStarveLogins, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := fakeRunWith(t, tc.lie, Config{Sessions: 3, Duration: 2500 * time.Millisecond, Messages: 20, Timeout: 5 * time.Second, Seed: 13, PreLogin: 20})
			if got := res.Violations[LoginStarved]; (got > 0) != tc.want {
				t.Errorf("%d login_starved violations, want them: %v", got, tc.want)
			}
			for _, k := range Kinds {
				if k != LoginStarved && res.Violations[k] != 0 {
					t.Errorf("%d violations of kind %s, want none", res.Violations[k], k.Title())
				}
			}
			if s := res.Op("pre-login connect"); s.OK < 20 {
				t.Errorf("pre-login connections: %+v, want 20 at least", s)
			}
			if s := res.Op("LOGIN probe"); s.Count == 0 {
				t.Error("no login probe")
			}
		})
	}
}
