package store

import (
	"fmt"
	"path/filepath"
	"sync"
)

// Registry hands out one shared Mailbox per Maildir directory, so that
// every session of a process sees one synced state and one stream of
// changes (DESIGN.md §6). Safe for concurrent use.
type Registry struct {
	opts    Options  // immutable
	watcher *Watcher // immutable; nil: no change notices

	mu    sync.Mutex // guards boxes
	boxes map[string]*regEntry
}

type regEntry struct {
	mb   *Mailbox
	refs int
}

// NewRegistry returns a Registry that opens mailboxes with opts and,
// when w is not nil, watches each open mailbox with w.
func NewRegistry(opts Options, w *Watcher) *Registry {
	return &Registry{opts: opts, watcher: w, boxes: make(map[string]*regEntry)}
}

// Open returns the shared Mailbox of dir and a release function to call
// when done with it; the Mailbox is closed when its last user releases
// it.
func (r *Registry) Open(dir string) (*Mailbox, func(), error) {
	dir = filepath.Clean(dir)
	if !filepath.IsAbs(dir) {
		return nil, nil, fmt.Errorf("store: mailbox path %q is not absolute", dir)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.boxes[dir]
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
				delete(r.boxes, dir)
				if r.watcher != nil {
					r.watcher.Unwatch(e.mb)
				}
				e.mb.Close()
			}
		})
	}
	return e.mb, release, nil
}

// Lookup returns the shared Mailbox of dir if some user has it open.
func (r *Registry) Lookup(dir string) (*Mailbox, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.boxes[filepath.Clean(dir)]
	if !ok {
		return nil, false
	}
	return e.mb, true
}
