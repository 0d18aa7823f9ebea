package imap

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// N sessions of several users acquiring and releasing at random: the
// bytes held never exceed the budget, a user's never its share, and
// every request is granted in the end.
func TestMemBudgetBounds(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	const total, share = 1000, 300
	b := newMemBudget(total, share)
	var held atomic.Int64
	var mu sync.Mutex
	perUser := map[string]int64{}
	var wg sync.WaitGroup
	var violations atomic.Int64
	for s := 0; s < 40; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(s)))
			user := fmt.Sprintf("u%d", s%5)
			for i := 0; i < 200; i++ {
				n := int64(r.IntN(2 * share)) // some beyond the share
				release, ok := b.tryAcquire(user, n)
				if !ok {
					var err error
					if release, err = b.acquire(context.Background(), user, n); err != nil {
						t.Error(err)
						return
					}
				}
				c := b.clamp(n)
				if held.Add(c) > total {
					violations.Add(1)
				}
				mu.Lock()
				perUser[user] += c
				if perUser[user] > share {
					violations.Add(1)
				}
				mu.Unlock()
				if r.IntN(4) == 0 {
					time.Sleep(time.Microsecond)
				}
				mu.Lock()
				perUser[user] -= c
				mu.Unlock()
				held.Add(-c)
				release()
				release() // a second call does nothing
			}
		}()
	}
	wg.Wait()
	if v := violations.Load(); v != 0 {
		t.Errorf("%d times the budget or a share was exceeded", v)
	}
	if u := b.inUse(); u != 0 || len(b.waiting) != 0 || len(b.users) != 0 {
		t.Errorf("after all releases: in use %d, %d waiting, %d users", u, len(b.waiting), len(b.users))
	}
}

// A user at its share waits, and does not hold back another user who
// came after it; a request larger than the share takes the whole share.
func TestMemBudgetUserShare(t *testing.T) {
	b := newMemBudget(1000, 400)
	ctx := context.Background()
	relA, err := b.acquire(ctx, "alice", 5000) // takes the whole share
	if err != nil {
		t.Fatal(err)
	}
	if u := b.inUse(); u != 400 {
		t.Fatalf("in use %d after a request beyond the share, want 400", u)
	}
	aliceGot := make(chan func(), 1)
	go func() {
		r, err := b.acquire(ctx, "alice", 100)
		if err != nil {
			t.Error(err)
		}
		aliceGot <- r
	}()
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiting) == 1 })
	relB, err := acquireWithin(b, "bob", 400)
	if err != nil {
		t.Fatalf("bob waited behind alice's share: %v", err)
	}
	select {
	case <-aliceGot:
		t.Fatal("alice got more than her share")
	case <-time.After(50 * time.Millisecond):
	}
	relA()
	relAlice2 := <-aliceGot
	relAlice2()
	relB()
	if u := b.inUse(); u != 0 {
		t.Errorf("in use %d, want 0", u)
	}
}

// A request the budget holds back holds back the requests after it (no
// starvation of big ones by a stream of small ones), but one whose
// connection ends leaves the queue and lets them through.
func TestMemBudgetCancel(t *testing.T) {
	b := newMemBudget(1000, 1000)
	ctx := context.Background()
	rel, err := b.acquire(ctx, "a", 900)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	big := make(chan error, 1)
	go func() {
		_, err := b.acquire(cctx, "b", 500)
		big <- err
	}()
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiting) == 1 })
	if r, ok := b.tryAcquire("c", 50); ok {
		r()
		t.Fatal("tryAcquire overtook a waiting request")
	}
	small := make(chan func(), 1)
	go func() {
		r, err := b.acquire(ctx, "c", 50)
		if err != nil {
			t.Error(err)
		}
		small <- r
	}()
	select {
	case <-small:
		t.Fatal("a small request overtook a big one held back by the budget")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-big; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
	r := <-small // let through by the cancel
	r()
	rel()
	if u := b.inUse(); u != 0 || len(b.waiting) != 0 {
		t.Errorf("in use %d, %d waiting", u, len(b.waiting))
	}
}

func acquireWithin(b *memBudget, user string, n int64) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return b.acquire(ctx, user, n)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
