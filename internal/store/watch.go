package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/maildir"
)

// Watcher is the daemon's one inotify instance (DESIGN.md §3, change
// detection): a hint that a mailbox changed, never a source of truth.
// Each event on a watched new/ or cur/ asks that mailbox for a sync; a
// queue overflow asks every watched mailbox. Safe for concurrent use.
type Watcher struct {
	fd   int      // immutable: for inotify_add_watch and inotify_rm_watch
	file *os.File // immutable: the same descriptor, read through Go's poller
	log  *slog.Logger

	mu      sync.Mutex // guards wds and closed
	wds     map[int32]*Mailbox
	dirs    map[*Mailbox][]int32
	closed  bool
	stopped chan struct{}
}

// watchMask: every way a message appears, disappears or is renamed.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_ONLYDIR

// NewWatcher starts a Watcher.
func NewWatcher(log *slog.Logger) (*Watcher, error) {
	// Non-blocking, so that os.NewFile hands the descriptor to the
	// runtime's poller: Close then ends a pending Read, which a plain
	// close(2) of a descriptor blocked in read(2) does not.
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{fd: fd, file: os.NewFile(uintptr(fd), "inotify"), log: log, wds: make(map[int32]*Mailbox), dirs: make(map[*Mailbox][]int32), stopped: make(chan struct{})}
	go w.loop()
	return w, nil
}

// Watch makes changes to m's new/ and cur/ kick m (see Mailbox.Kick).
func (w *Watcher) Watch(m *Mailbox) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("store: watcher closed")
	}
	if _, ok := w.dirs[m]; ok {
		return nil
	}
	var wds []int32
	for _, sub := range []string{maildir.New, maildir.Cur} {
		wd, err := unix.InotifyAddWatch(w.fd, filepath.Join(m.dir, sub), watchMask)
		if err != nil {
			for _, wd := range wds {
				unix.InotifyRmWatch(w.fd, uint32(wd))
				delete(w.wds, wd)
			}
			return fmt.Errorf("store: watching %s: %w", filepath.Join(m.dir, sub), err)
		}
		wds = append(wds, int32(wd))
		w.wds[int32(wd)] = m
	}
	w.dirs[m] = wds
	return nil
}

// Unwatch stops watching m.
func (w *Watcher) Unwatch(m *Mailbox) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wd := range w.dirs[m] {
		unix.InotifyRmWatch(w.fd, uint32(wd))
		delete(w.wds, wd)
	}
	delete(w.dirs, m)
}

// Close stops the Watcher.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	err := w.file.Close() // ends the Read in loop
	<-w.stopped
	return err
}

func (w *Watcher) loop() {
	defer close(w.stopped)
	buf := make([]byte, 64<<10)
	for {
		n, err := w.file.Read(buf)
		if err != nil || n <= 0 {
			w.mu.Lock()
			closed := w.closed
			w.mu.Unlock()
			if !closed {
				w.log.Error("inotify read failed; changes are found by polling only", "err", err)
			}
			return
		}
		kick := make(map[*Mailbox]bool)
		w.mu.Lock()
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				for m := range w.dirs {
					kick[m] = true
				}
				continue
			}
			if m, ok := w.wds[ev.Wd]; ok {
				kick[m] = true
			}
		}
		w.mu.Unlock()
		for m := range kick {
			m.Kick()
		}
	}
}

// background counts goroutines that must end before a Close returns.
// An add that comes while wait waits, waits for it: a WaitGroup must not
// be added to from zero during a Wait.
type background struct {
	mu     sync.Mutex // held by wait; guards closed
	wg     sync.WaitGroup
	closed bool // wait was called: no background sync starts any more
}

// add counts a background sync about to start; false: the Registry is
// closing, and it must not start.
func (b *background) add() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	return true
}

func (b *background) done() {
	if b != nil {
		b.wg.Done()
	}
}

// wait refuses new background syncs and waits for those under way.
func (b *background) wait() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.wg.Wait()
}

// kickDelay gathers a burst of changes (a client moving many messages)
// into one sync; well under the 100 ms within which IDLE reports a change.
const kickDelay = 5 * time.Millisecond

// Kick asks for a sync soon, in the background; requests that arrive
// before it starts are one sync. What it finds goes to the subscribers.
//
// Takes: nothing; the sync it starts takes what Sync takes.
func (m *Mailbox) Kick() {
	if m.closed() || !m.kicked.CompareAndSwap(false, true) {
		return
	}
	if !m.opts.background.add() {
		m.kicked.Store(false)
		return
	}
	go func() {
		defer m.opts.background.done()
		time.Sleep(kickDelay)
		m.kicked.Store(false)
		if m.closed() {
			return // a sync now would open the files Close let go of
		}
		if !maildir.IsMaildir(m.dir) {
			return // deleted (a folder removed while open): nothing to sync
		}
		if _, err := m.Sync(context.Background()); err != nil {
			m.log.Warn("sync after a change notice failed", "err", err)
		}
	}()
}
