package imap

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The response memory budget: a FETCH or SEARCH that reads a whole
// message (or a section of it) into memory takes the bytes it will hold
// from the Server's budget before reading, and gives them back when it
// no longer holds them: SEARCH (Open) and a FETCH that parses a message
// not in the index (OpenBody with the structure) when the message's
// response has been written or the parse is over, a FETCH of
// HEADER.FIELDS or BINARY of a quoted-printable part when that item is
// written. A FETCH body streamed from the file (fetch.go) holds one
// buffer of fetchBufferSize, below smallResponse: it takes nothing. So N sessions together
// hold at most Server.ResponseMemory of message data (ten parallel FETCH
// BODY[] of a 60 MB message took 1.12 GB without it), and one user at
// most its share (ResponseMemoryPerUser), so that a user with 50 sessions
// fetching big bodies and not reading them cannot starve everybody else.
//
// A request larger than the user's share takes the whole share (and one
// larger than the budget the whole budget): it waits until the user
// holds nothing. Waiting has no deadline of its own: it ends when the
// connection closes or the server shuts down. A FETCH that has already set
// \Seen therefore waits rather than answering NO (a NO means nothing was
// done). Requests below smallResponse take nothing.
//
// Grants are first come, first served, except that a request its user's
// share holds back does not hold back other users' requests.
const (
	// DefaultResponseMemory is Server.ResponseMemory's default: four of
	// the largest message APPENDLIMIT allows (64 MiB) parsed or searched
	// at once, each counted at twice its size (see readCost).
	DefaultResponseMemory = 512 << 20
	// smallResponse: a message or section smaller than this is read
	// without the budget; a session holds at most one at a time.
	smallResponse = 64 << 10
	// peerPollInterval is how often a waiting session looks whether its
	// client has gone away.
	peerPollInterval = 100 * time.Millisecond
)

// errClientGone ends a session whose client went away while it waited
// for the budget.
var errClientGone = errors.New("client gone while waiting for response memory")

// readCost is what reading message uid into memory costs the budget:
// for Open (structure false) or for a Structure that may need the file.
func (c *conn) readCost(uid uint32, structure bool) (int64, error) {
	if rs, ok := c.sel.mb.(ReadSizer); ok {
		return rs.ReadSize(c.ctx, uid, structure)
	}
	info, err := c.sel.mb.Stat(c.ctx, uid)
	return 2 * info.Size, err
}

// memBudget is the Server's response memory budget. The zero value is not
// usable: see newMemBudget.
type memBudget struct {
	total, perUser int64 // immutable

	mu      sync.Mutex // guards the fields below
	used    int64
	users   map[string]int64 // bytes held per user; no zero entries
	waiting []*memWaiter     // in arrival order
}

type memWaiter struct {
	user    string
	n       int64
	ready   chan struct{} // closed when granted
	granted bool
}

func newMemBudget(total, perUser int64) *memBudget {
	if total <= 0 {
		total = DefaultResponseMemory
	}
	if perUser <= 0 {
		perUser = total / 4
	}
	return &memBudget{total: total, perUser: min(perUser, total), users: map[string]int64{}}
}

// clamp is what a request of n bytes takes: at most the user's share.
func (b *memBudget) clamp(n int64) int64 { return min(n, b.perUser) }

// fitsLocked tells whether w fits now: byUser false means its user's
// share holds it back, global false that the budget does.
func (b *memBudget) fitsLocked(w *memWaiter) (byUser, global bool) {
	return b.users[w.user]+w.n <= b.perUser, b.used+w.n <= b.total
}

// grantLocked grants waiting requests in order, skipping those their
// user's share holds back, stopping at the first the budget holds back.
func (b *memBudget) grantLocked() {
	keep := b.waiting[:0]
	stopped := false
	for _, w := range b.waiting {
		if !stopped {
			byUser, global := b.fitsLocked(w)
			switch {
			case !byUser:
			case !global:
				stopped = true
			default:
				b.used += w.n
				b.users[w.user] += w.n
				w.granted = true
				close(w.ready)
				continue
			}
		}
		keep = append(keep, w)
	}
	clear(b.waiting[len(keep):])
	b.waiting = keep
}

// acquire takes n bytes (clamped) for user, waiting until they are free
// or ctx ends. release gives them back; it is nil with an error.
func (b *memBudget) acquire(ctx context.Context, user string, n int64) (release func(), err error) {
	w := &memWaiter{user: user, n: b.clamp(n), ready: make(chan struct{})}
	b.mu.Lock()
	b.waiting = append(b.waiting, w)
	b.grantLocked()
	b.mu.Unlock()
	select {
	case <-w.ready:
	case <-ctx.Done():
		b.mu.Lock()
		if !w.granted {
			for i, x := range b.waiting {
				if x == w {
					b.waiting = append(b.waiting[:i], b.waiting[i+1:]...)
					break
				}
			}
			b.grantLocked() // w may have held others back
			b.mu.Unlock()
			return nil, ctx.Err()
		}
		b.mu.Unlock()
	}
	var once sync.Once
	return func() { once.Do(func() { b.release(w) }) }, nil
}

// tryAcquire takes n bytes (clamped) for user when they are free now
// and nobody waits; false otherwise.
func (b *memBudget) tryAcquire(user string, n int64) (release func(), ok bool) {
	w := &memWaiter{user: user, n: b.clamp(n), ready: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if byUser, global := b.fitsLocked(w); len(b.waiting) > 0 || !byUser || !global {
		return nil, false
	}
	b.used += w.n
	b.users[w.user] += w.n
	w.granted = true
	var once sync.Once
	return func() { once.Do(func() { b.release(w) }) }, true
}

func (b *memBudget) release(w *memWaiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= w.n
	if b.users[w.user] -= w.n; b.users[w.user] == 0 {
		delete(b.users, w.user)
	}
	b.grantLocked()
}

// inUse returns the bytes held now.
func (b *memBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// budget returns the Server's response memory budget, made at first use.
func (s *Server) budget() *memBudget {
	s.budgetOnce.Do(func() { s.mem = newMemBudget(s.ResponseMemory, s.ResponseMemoryPerUser) })
	return s.mem
}

// reserve takes n bytes of the response memory budget for the session's
// user before a message is read, waiting as long as the client stays
// connected. The returned release is never nil after a nil error; for a
// small n it does nothing.
func (c *conn) reserve(n int64) (release func(), err error) {
	if n < smallResponse {
		return func() {}, nil
	}
	b := c.srv.budget()
	if release, ok := b.tryAcquire(c.user.Username(), n); ok {
		return release, nil
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(peerPollInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if c.stopping.Load() || peerClosed(c.raw) {
					cancel()
					return
				}
			}
		}
	}()
	release, err = b.acquire(ctx, c.user.Username(), n)
	if err != nil {
		return nil, errWrap(errClientGone)
	}
	return release, nil
}

// peerClosed reports whether the client has closed or reset the
// connection, without reading from it (the session may not read: the
// next command waits in the buffer).
func peerClosed(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		n, err := unix.Poll(fds, 0)
		closed = err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
	})
	return closed
}
