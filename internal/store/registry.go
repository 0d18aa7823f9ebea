package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cistern-mail/cistern/maildir"
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
	// detached: the path now leads to another directory (the mailbox was
	// deleted or renamed, identity.go), and boxes holds a new entry for
	// it or none; this one is closed when its last user lets go.
	detached bool
	since    time.Time // unused since, when refs == 0
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
	if ok {
		if id, err := statDirID(dir); err != nil || id != e.mb.id || e.mb.Gone() {
			// Deleted, or renamed, and perhaps made again: the state is
			// of another directory. Its users learn it at their next
			// sync; nobody else gets it.
			e.mb.gone.Store(true)
			r.detachLocked(dir, e)
			ok = false
		}
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
		r.boxes[dir] = e
	}
	e.refs++
	var once sync.Once
	release := func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			e.refs--
			if e.refs == 0 && e.detached {
				r.closeEntryLocked(e)
				return
			}
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
	r.closeEntryLocked(e)
}

func (r *Registry) closeEntryLocked(e *regEntry) {
	if r.watcher != nil {
		r.watcher.Unwatch(e.mb)
	}
	// The state goes to the index for the next warm start, as the
	// last sync left it (a state the files no longer match is refused
	// then, and the files are read).
	e.mb.persist()
	e.mb.Close()
}

// detachLocked takes e out of boxes: closed now when nobody uses it,
// else when its last user lets go.
func (r *Registry) detachLocked(dir string, e *regEntry) {
	delete(r.boxes, dir)
	e.detached = true
	if e.refs == 0 {
		r.closeEntryLocked(e)
	}
}

// Close closes every mailbox, in use or not, after the background syncs
// (Kick) under way in the mailboxes the Registry opened: a sync cut short
// by the exit of the process would leave the mailbox lock behind, and
// one that ran after the close would open the mailbox's files again and
// keep them open. No new one starts once Close began. The Registry is
// not used afterwards.
func (r *Registry) Close() {
	r.opts.background.wait()
	r.mu.Lock()
	for dir, e := range r.boxes {
		if r.opts.Index != nil && !e.mb.Gone() {
			// A last sync, so that the state stored for the next start
			// has the stamps of the files as they are now (a STORE
			// since the last sync moved cur/'s mtime).
			if _, err := e.mb.Sync(context.Background()); err != nil {
				e.mb.log.Warn("the last sync before closing failed; the next start reads the files", "err", err)
			}
		}
		r.closeLocked(dir, e)
	}
	r.mu.Unlock()
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

// Vanished tells the Registry that this process deleted (children
// false) or renamed (children true: its Maildir++ children went with it)
// the mailbox directory dir: its Mailbox, and its children's, are gone
// (identity.go), their sessions hear of it now, and the next Open of
// the path opens what is there then.
func (r *Registry) Vanished(dir string, children bool) {
	if r == nil {
		return
	}
	dir = filepath.Clean(dir)
	var gone []*Mailbox
	r.mu.Lock()
	for d, e := range r.boxes {
		if d == dir || (children && strings.HasPrefix(d, dir+string(maildir.FolderSep))) {
			gone = append(gone, e.mb)
			e.mb.markGone()
			r.detachLocked(d, e)
		}
	}
	r.mu.Unlock()
	for _, mb := range gone {
		mb.vanished()
	}
}
