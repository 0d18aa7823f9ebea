package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Registry hands out one shared Mailbox per Maildir directory, so that
// every session of a process sees one synced state and one stream of
// changes (DESIGN.md §6). A mailbox nobody uses stays open (and watched)
// for a while, up to maxIdle of them, so that the next SELECT finds its
// state in memory instead of rebuilding it from the files. Safe for
// concurrent use.
type Registry struct {
	opts    Options  // immutable
	watcher *Watcher // immutable; nil: no change notices

	mu    sync.Mutex // guards boxes
	boxes map[string]*regEntry
}

type regEntry struct {
	mb   *Mailbox
	refs int
	// dirf holds the directory open, so that its inode number cannot be
	// given to another directory while the entry lives: a directory at
	// the same path with another inode is a mailbox deleted and made
	// again, and the cached state is not its state.
	dirf  *os.File
	ino   uint64
	since time.Time // unused since, when refs == 0
}

// Idle mailboxes: how many stay open, and for how long.
const (
	maxIdle  = 64
	idleKeep = 15 * time.Minute
)

// NewRegistry returns a Registry that opens mailboxes with opts and,
// when w is not nil, watches each open mailbox with w.
func NewRegistry(opts Options, w *Watcher) *Registry {
	opts.background = &background{}
	r := &Registry{opts: opts, watcher: w, boxes: make(map[string]*regEntry)}
	opts.Metrics.watch(r)
	return r
}

// suspects sums the suspects waiting in the open mailboxes.
func (r *Registry) suspects() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, e := range r.boxes {
		n += e.mb.waiting.Load()
	}
	return n
}

func dirIno(dir string) uint64 {
	var st syscall.Stat_t
	if syscall.Stat(dir, &st) != nil {
		return 0
	}
	return st.Ino
}

// Open returns the shared Mailbox of dir and a release function to call
// when done with it.
func (r *Registry) Open(dir string) (*Mailbox, func(), error) {
	dir = filepath.Clean(dir)
	if !filepath.IsAbs(dir) {
		return nil, nil, fmt.Errorf("store: mailbox path %q is not absolute", dir)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evictLocked(time.Now())
	e, ok := r.boxes[dir]
	if ok && e.refs == 0 && dirIno(dir) != e.ino {
		// Deleted and made again: the cached state is of another mailbox.
		r.closeLocked(dir, e)
		ok = false
	}
	if !ok {
		mb, err := Open(dir, r.opts)
		if err != nil {
			return nil, nil, err
		}
		if r.watcher != nil {
			if err := r.watcher.Watch(mb); err != nil {
				mb.log.Warn("no change notices for this mailbox; polling only", "err", err)
			}
		}
		e = &regEntry{mb: mb}
		if e.dirf, err = os.Open(dir); err == nil {
			if fi, err := e.dirf.Stat(); err == nil {
				e.ino = fi.Sys().(*syscall.Stat_t).Ino
			}
		}
		r.boxes[dir] = e
	}
	e.refs++
	var once sync.Once
	release := func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			e.refs--
			if e.refs == 0 {
				e.since = time.Now()
				r.evictLocked(e.since)
			}
		})
	}
	return e.mb, release, nil
}

// evictLocked closes idle mailboxes past idleKeep, and the oldest idle
// ones beyond maxIdle. Held with r.mu.
func (r *Registry) evictLocked(now time.Time) {
	var idle []string
	for dir, e := range r.boxes {
		if e.refs > 0 {
			continue
		}
		if now.Sub(e.since) > idleKeep {
			r.closeLocked(dir, e)
			continue
		}
		idle = append(idle, dir)
	}
	for len(idle) > maxIdle {
		oldest := 0
		for i, d := range idle {
			if r.boxes[d].since.Before(r.boxes[idle[oldest]].since) {
				oldest = i
			}
		}
		r.closeLocked(idle[oldest], r.boxes[idle[oldest]])
		idle = append(idle[:oldest], idle[oldest+1:]...)
	}
}

func (r *Registry) closeLocked(dir string, e *regEntry) {
	delete(r.boxes, dir)
	if e.dirf != nil {
		e.dirf.Close()
	}
	if r.watcher != nil {
		r.watcher.Unwatch(e.mb)
	}
	e.mb.Close()
}

// Close closes every mailbox, in use or not, and waits for the
// background syncs (Kick) under way in the mailboxes the Registry opened:
// a sync cut short by the exit of the process would leave the mailbox
// lock behind. The Registry is not used afterwards.
func (r *Registry) Close() {
	r.mu.Lock()
	for dir, e := range r.boxes {
		r.closeLocked(dir, e)
	}
	r.mu.Unlock()
	r.opts.background.wait()
}

// Lookup returns the shared Mailbox of dir if it is open.
func (r *Registry) Lookup(dir string) (*Mailbox, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.boxes[filepath.Clean(dir)]
	if !ok {
		return nil, false
	}
	return e.mb, true
}
