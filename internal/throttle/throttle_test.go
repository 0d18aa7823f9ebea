package throttle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is a Throttle's clock and sleeper: waits are recorded, and take
// no time unless advance is set.
type fake struct {
	mu      sync.Mutex
	now     time.Time
	waits   []time.Duration
	advance bool // a wait moves the clock
}

func (f *fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fake) Sleep(ctx context.Context, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, d)
	if f.advance {
		f.now = f.now.Add(d)
	}
}

func (f *fake) add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// take returns the waits since the last take.
func (f *fake) take() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.waits
	f.waits = nil
	return w
}

func newThrottle(p Policy) (*Throttle, *fake) {
	f := &fake{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	return &Throttle{Policy: p, Now: f.Now, Sleep: f.Sleep}, f
}

func tcp(s string) net.Addr {
	ap := netip.MustParseAddrPort(s)
	return net.TCPAddrFromAddrPort(ap)
}

const ms = time.Millisecond

var ctx = context.Background()

// fail records failures and returns the waits they caused.
func fail(th *Throttle, f *fake, addr net.Addr, user string, n int) []time.Duration {
	for range n {
		th.Fail(ctx, addr, user)
	}
	return f.take()
}

func TestDelaysGrow(t *testing.T) {
	th, f := newThrottle(Policy{})
	a := tcp("192.0.2.1:4000")
	got := fail(th, f, a, "alice", 9)
	want := []time.Duration{250 * ms, 500 * ms, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second, 15 * time.Second}
	if !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	// Another port of the same address is the same client.
	if got := fail(th, f, tcp("192.0.2.1:4001"), "bob", 1); !slices.Equal(got, []time.Duration{15 * time.Second}) {
		t.Errorf("same address, new port: waits %v, want 15s", got)
	}
	if th.Failures.Load() != 10 {
		t.Errorf("Failures = %d, want 10", th.Failures.Load())
	}
	// Success is not slowed, and Check passes under the limit.
	if err := th.Check(ctx, a, "alice"); err != nil {
		t.Fatalf("Check under the limit: %v", err)
	}
	th.Succeed(a, "alice")
	if w := f.take(); len(w) != 0 {
		t.Errorf("Check and Succeed waited %v", w)
	}
}

func TestWindowForgets(t *testing.T) {
	th, f := newThrottle(Policy{})
	a := tcp("192.0.2.1:4000")
	fail(th, f, a, "alice", 3)
	f.add(DefaultWindow - time.Second)
	if got := fail(th, f, a, "alice", 1); !slices.Equal(got, []time.Duration{2 * time.Second}) {
		t.Errorf("within the window: waits %v, want 2s", got)
	}
	f.add(DefaultWindow)
	if got := fail(th, f, a, "alice", 1); !slices.Equal(got, []time.Duration{250 * ms}) {
		t.Errorf("after a quiet window: waits %v, want 250ms", got)
	}
}

func TestAddressRefused(t *testing.T) {
	th, f := newThrottle(Policy{})
	a := tcp("192.0.2.1:4000")
	// Many user names, so that only the address reaches its limit.
	for i := range DefaultMaxAddrFailures - 1 {
		th.Fail(ctx, a, fmt.Sprintf("user%d", i))
	}
	if err := th.Check(ctx, a, "alice"); err != nil {
		t.Fatalf("Check after %d failures: %v", DefaultMaxAddrFailures-1, err)
	}
	th.Fail(ctx, a, "last")
	f.take()
	for _, user := range []string{"alice", "user1", "nobody"} {
		if err := th.Check(ctx, a, user); !errors.Is(err, ErrRefused) {
			t.Fatalf("Check(%s) at the limit: %v, want ErrRefused", user, err)
		}
	}
	if w := f.take(); !slices.Equal(w, []time.Duration{DefaultMaxDelay, DefaultMaxDelay, DefaultMaxDelay}) {
		t.Errorf("refusals waited %v, want the max delay each", w)
	}
	if th.Refused.Load() != 3 || th.Blocks.Load() != 1 {
		t.Errorf("Refused, Blocks = %d, %d; want 3, 1", th.Refused.Load(), th.Blocks.Load())
	}
	// Other addresses are not refused.
	if err := th.Check(ctx, tcp("192.0.2.2:4000"), "alice"); err != nil {
		t.Errorf("another address: %v", err)
	}
	// Refusals do not prolong the penalty.
	f.add(DefaultPenalty - time.Second)
	if err := th.Check(ctx, a, "alice"); !errors.Is(err, ErrRefused) {
		t.Errorf("just before the penalty's end: %v", err)
	}
	f.add(time.Second)
	if err := th.Check(ctx, a, "alice"); err != nil {
		t.Errorf("after the penalty: %v", err)
	}
}

// TestUserRefusedTrustedPairs: many addresses guessing one user's
// password get the user name refused, except from where the user has
// logged in before.
func TestUserRefusedTrustedPairs(t *testing.T) {
	th, f := newThrottle(Policy{})
	home := tcp("198.51.100.7:5000")
	if err := th.Check(ctx, home, "alice"); err != nil {
		t.Fatal(err)
	}
	th.Succeed(home, "alice")
	for i := range DefaultMaxUserFailures {
		bot := tcp(fmt.Sprintf("203.0.113.%d:6000", i+1))
		if err := th.Check(ctx, bot, "alice"); err != nil {
			t.Fatalf("bot %d refused early: %v", i, err)
		}
		th.Fail(ctx, bot, "alice")
	}
	waits := f.take()
	if got, want := waits[len(waits)-1], DefaultMaxDelay; got != want {
		t.Errorf("the 50th failure on one name waited %v, want %v (delays follow the name)", got, want)
	}
	if err := th.Check(ctx, tcp("203.0.113.200:6000"), "alice"); !errors.Is(err, ErrRefused) {
		t.Errorf("a new address for a refused name: %v, want ErrRefused", err)
	}
	if err := th.Check(ctx, tcp("203.0.113.200:6000"), "bob"); err != nil {
		t.Errorf("another name from a new address: %v", err)
	}
	f.take()
	// The user's own address is trusted: not refused, and its typing
	// mistakes cost what its own failures earn.
	if err := th.Check(ctx, home, "alice"); err != nil {
		t.Errorf("trusted pair refused: %v", err)
	}
	if got := fail(th, f, home, "alice", 2); !slices.Equal(got, []time.Duration{250 * ms, 500 * ms}) {
		t.Errorf("trusted pair's failures waited %v, want 250ms, 500ms", got)
	}
	// Trust ends.
	f.add(DefaultTrustFor)
	for i := range DefaultMaxUserFailures {
		th.Fail(ctx, tcp(fmt.Sprintf("203.0.113.%d:6000", i+1)), "alice")
	}
	if err := th.Check(ctx, home, "alice"); !errors.Is(err, ErrRefused) {
		t.Errorf("pair trusted past TrustFor: %v", err)
	}
}

// TestSuccessForgivesOwnFailures: a login forgives the failures of its
// own pair, not those against other names from the same address.
func TestSuccessForgivesOwnFailures(t *testing.T) {
	th, f := newThrottle(Policy{})
	a := tcp("192.0.2.1:4000")
	fail(th, f, a, "alice", 3)
	fail(th, f, a, "bob", 2)
	th.Succeed(a, "alice")
	// 2 of bob's remain; one more makes 3: 1s.
	if got := fail(th, f, a, "carol", 1); !slices.Equal(got, []time.Duration{time.Second}) {
		t.Errorf("after forgiving alice's 3: waits %v, want 1s", got)
	}
	// An attacker who owns an account cannot wash away the failures
	// it collected guessing others.
	th, f = newThrottle(Policy{})
	for i := range DefaultMaxAddrFailures - 1 {
		th.Fail(ctx, a, fmt.Sprintf("victim%d", i))
		th.Succeed(a, "mallory")
	}
	th.Fail(ctx, a, "victim")
	if err := th.Check(ctx, a, "mallory"); !errors.Is(err, ErrRefused) {
		t.Errorf("own logins washed the address's failures: %v", err)
	}
}

func TestExempt(t *testing.T) {
	th, f := newThrottle(Policy{Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}})
	for _, addr := range []string{"127.0.0.1:1000", "[::ffff:127.0.0.1]:1000", "[2001:db8:5::1]:1000"} {
		a := tcp(addr)
		if got := fail(th, f, a, "alice", DefaultMaxAddrFailures+5); len(got) != 0 {
			t.Errorf("%s: exempt address waited %v", addr, got)
		}
		if err := th.Check(ctx, a, "alice"); err != nil {
			t.Errorf("%s: exempt address refused: %v", addr, err)
		}
	}
	// Loopback is not exempt unless listed.
	th, f = newThrottle(Policy{})
	if got := fail(th, f, tcp("127.0.0.1:1000"), "alice", 1); len(got) != 1 {
		t.Errorf("loopback, not listed: waits %v, want one", got)
	}
}

func TestMemoryBounded(t *testing.T) {
	th, f := newThrottle(Policy{MaxKeys: 300})
	for i := range 1000 {
		th.Fail(ctx, tcp(fmt.Sprintf("10.0.%d.%d:1", i/256, i%256)), fmt.Sprintf("u%d", i))
		if n := th.Tracked(); n > 300 {
			t.Fatalf("%d keys tracked, MaxKeys 300", n)
		}
	}
	f.take()
	// The most recent keys are kept: the last address is still counted.
	last := tcp(fmt.Sprintf("10.0.%d.%d:1", 999/256, 999%256))
	if got := fail(th, f, last, "x", 1); !slices.Equal(got, []time.Duration{500 * ms}) {
		t.Errorf("the latest address lost its failure: waits %v", got)
	}
	// Long names take a bounded key, and distinct long names stay apart.
	th, f = newThrottle(Policy{})
	long := strings.Repeat("n", 100000)
	fail(th, f, tcp("192.0.2.1:1"), long+"1", 1)
	if got := fail(th, f, tcp("192.0.2.2:1"), long+"2", 1); !slices.Equal(got, []time.Duration{250 * ms}) {
		t.Errorf("two long names counted as one: waits %v", got)
	}
	th.mu.Lock()
	for k := range th.keys {
		if len(k) > maxNameKey+100 {
			t.Errorf("key of %d bytes", len(k))
		}
	}
	th.mu.Unlock()
}

func TestCheckTracksNothing(t *testing.T) {
	th, _ := newThrottle(Policy{})
	for i := range 100 {
		th.Check(ctx, tcp(fmt.Sprintf("10.0.0.%d:1", i)), fmt.Sprintf("u%d", i))
	}
	if n := th.Tracked(); n != 0 {
		t.Errorf("Check alone tracked %d keys", n)
	}
}

func TestNilThrottle(t *testing.T) {
	var th *Throttle
	a := tcp("192.0.2.1:1")
	if err := th.Check(ctx, a, "x"); err != nil {
		t.Error(err)
	}
	th.Fail(ctx, a, "x")
	th.Succeed(a, "x")
	if th.Tracked() != 0 {
		t.Error("nil Throttle tracks keys")
	}
}

// TestWaitEndsWithContext: the real sleeper returns when the context is
// done (a server shutting down does not wait for throttled clients).
func TestWaitEndsWithContext(t *testing.T) {
	th := &Throttle{Policy: Policy{BaseDelay: time.Hour, MaxDelay: time.Hour}}
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() {
		th.Fail(cctx, tcp("192.0.2.1:1"), "x")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Fail waited its hour despite a cancelled context")
	}
}

// TestConcurrent runs logins from many goroutines (for -race) and checks
// that every failure was counted.
func TestConcurrent(t *testing.T) {
	th, _ := newThrottle(Policy{MaxKeys: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				a := tcp(fmt.Sprintf("10.0.%d.%d:1", g, i%20))
				user := fmt.Sprintf("u%d", i%7)
				if th.Check(ctx, a, user) == nil {
					if i%5 == 0 {
						th.Succeed(a, user)
					} else {
						th.Fail(ctx, a, user)
					}
				}
			}
		})
	}
	wg.Wait()
	if n := th.Tracked(); n > 50 {
		t.Errorf("%d keys tracked, MaxKeys 50", n)
	}
	if th.Failures.Load()+th.Refused.Load() == 0 {
		t.Error("nothing counted")
	}
}

func TestAddrKey(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
		want string
	}{
		{"ipv4", tcp("192.0.2.1:143"), "192.0.2.1"},
		{"ipv4 mapped", tcp("[::ffff:192.0.2.1]:143"), "192.0.2.1"},
		{"ipv6", tcp("[2001:db8:1:2:3:4:5:6]:143"), "2001:db8:1:2::/64"},
		{"ipv6 same /64", tcp("[2001:db8:1:2:ffff::1]:143"), "2001:db8:1:2::/64"},
		{"ipv6 other /64", tcp("[2001:db8:1:3::1]:143"), "2001:db8:1:3::/64"},
		{"ipv6 zone", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: "eth0"}, "fe80::/64"},
		{"loopback", tcp("127.0.0.1:1"), "127.0.0.1"},
		{"unix", &net.UnixAddr{Name: "@", Net: "unix"}, "unix"},
		{"nil", nil, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AddrKey(tt.addr); got != tt.want {
				t.Errorf("AddrKey = %q, want %q", got, tt.want)
			}
		})
	}
	if HasIP(&net.UnixAddr{Name: "x", Net: "unix"}) || !HasIP(tcp("[::1]:1")) {
		t.Error("HasIP wrong")
	}
}

func TestGauge(t *testing.T) {
	var g Gauge
	for i := range 3 {
		if !g.Acquire("a", 3) {
			t.Fatalf("Acquire %d refused under the limit", i)
		}
	}
	if g.Acquire("a", 3) {
		t.Fatal("Acquire over the limit")
	}
	if !g.Acquire("b", 3) || !g.Acquire("a", 0) {
		t.Fatal("another key, or no limit, refused")
	}
	g.Release("a")
	g.Release("a")
	if !g.Acquire("a", 3) || g.Count("a") != 3 {
		t.Fatalf("after releases: count %d", g.Count("a"))
	}
	for range 3 {
		g.Release("a")
	}
	g.Release("b")
	if len(g.n) != 0 {
		t.Errorf("keys at zero kept: %v", g.n)
	}
	defer func() {
		if recover() == nil {
			t.Error("Release without Acquire did not panic")
		}
	}()
	g.Release("a")
}

// TestKnown: an address is known once somebody logged in from it, for
// TrustFor; failures do not make it known; exempt addresses always are.
func TestKnown(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	th := &Throttle{
		Policy: Policy{TrustFor: time.Hour, Exempt: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
		Now:    func() time.Time { return now },
		Sleep:  func(context.Context, time.Duration) {},
	}
	home := &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 1}
	stranger := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 9), Port: 1}
	if th.Known(home) {
		t.Fatal("known before any login")
	}
	th.Fail(context.Background(), stranger, "alice")
	th.Succeed(home, "alice")
	if !th.Known(&net.TCPAddr{IP: home.IP, Port: 2}) {
		t.Error("not known after a login")
	}
	if th.Known(stranger) {
		t.Error("a failure made the address known")
	}
	if !th.Known(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1)}) {
		t.Error("an exempt address is not known")
	}
	now = now.Add(time.Hour)
	if th.Known(home) {
		t.Error("still known after TrustFor")
	}
	var none *Throttle
	if none.Known(home) {
		t.Error("a nil Throttle knows an address")
	}
}
