package throttle

import "sync"

// Gauge counts things in use (connections, sessions) per key, each key
// up to a limit given at Acquire. The zero value is ready; keys at zero
// take no memory.
type Gauge struct {
	mu sync.Mutex     // guards n
	n  map[string]int // no zero values
}

// Acquire takes one for key and reports true, unless key has max
// already (then it takes nothing). max <= 0 means no limit.
func (g *Gauge) Acquire(key string, max int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if max > 0 && g.n[key] >= max {
		return false
	}
	if g.n == nil {
		g.n = make(map[string]int)
	}
	g.n[key]++
	return true
}

// Release gives back one that Acquire took for key. It panics when key
// has none: a release without its acquire breaks every count after it.
func (g *Gauge) Release(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch n := g.n[key]; n {
	case 0:
		panic("throttle: Gauge.Release of " + key + " without Acquire")
	case 1:
		delete(g.n, key)
	default:
		g.n[key] = n - 1
	}
}

// Count returns what key has now.
func (g *Gauge) Count(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n[key]
}
