package store

import (
	"runtime/debug"
	"sync/atomic"
	"time"
)

// releaseAfter is how many messages a sync must find new (a mailbox's
// first sync, a cold start) for the memory it left behind to be handed
// back to the operating system at once. (A warm start's load allocates
// only what stays: nothing to hand back.)
//
// The first sync of a 100,000-message mailbox allocates about 100 MB
// (the listings, the uidlist's bytes and parse, the list of new
// messages) of which about a fifth stays: the Go runtime would hold the
// rest, resident, until its scavenger returns it, minutes later. A
// forced collection and release (debug.FreeOSMemory) costs one full
// collection of the live heap, tens of milliseconds of CPU for such a
// mailbox, on a goroutine of its own, at most one at a time: small syncs
// never pay it. It runs releaseDelay after the sync, when what the
// caller made of its news (a SELECT's answer) is garbage too.
var releaseAfter = 20000

// releaseDelay is how long after a big sync the memory is handed back.
const releaseDelay = 2 * time.Second

// releasing: a release is under way; releases asked for meanwhile are
// one.
var releasing atomic.Bool

// testHookRelease, set by tests, replaces the release.
var testHookRelease func()

// releaseMemory hands the memory a big sync left behind back to the
// operating system when n (the messages it found new) is at least
// releaseAfter.
//
// Held: any.
func releaseMemory(n int) {
	if n < releaseAfter {
		return
	}
	if testHookRelease != nil {
		testHookRelease()
		return
	}
	if !releasing.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(releaseDelay, func() {
		defer releasing.Store(false)
		debug.FreeOSMemory()
	})
}
