package imaptorture

import (
	"testing"
	"time"
)

// TestRecentModel: the rules of recent.go, one at a time, on a run with
// two sessions and no server.
func TestRecentModel(t *testing.T) {
	s := time.Second
	rec := newRecorder(time.Now())
	r := &run{rec: rec, led: newLedger(rec, "test")}
	a, b := &session{name: "imap-1", r: r}, &session{name: "imap-2", r: r}
	made := func(id, source string, uid uint32, at time.Duration) {
		r.led.created(id, source, at)
		r.led.acked(id, uid, 1, at, nil)
	}
	made("<seed>", "APPEND "+seedName, 1, 0)
	made("<a>", "LMTP", 2, 1*s)
	made("<b>", "LMTP", 3, 2*s)
	made("<c>", "foreign", 4, 3*s)
	made("<d>", "LMTP", 5, 9*s)
	count := func() int { return r.rec.counts[RecentWrong] }

	a.beginSelection()
	b.beginSelection()
	a.flagsAnnounced([]string{`\Seen`, "$Known"})
	a.checkFetchFlags(2, []string{`\Recent`, "$Known"}, 4*s, "* 2 FETCH")
	if n := r.rec.counts[UnannouncedKeyword]; n != 0 {
		t.Fatalf("announced keyword reported: %d", n)
	}
	a.checkFetchFlags(2, []string{`\Recent`, "$New"}, 4*s, "* 2 FETCH")
	if n := r.rec.counts[UnannouncedKeyword]; n != 1 {
		t.Errorf("a keyword no FLAGS listed: %d reports, want 1", n)
	}
	// Recent in two read-write selections.
	b.checkFetchFlags(2, []string{`\Recent`}, 5*s, "* 2 FETCH")
	if count() != 1 {
		t.Errorf("recent in two selections: %d reports, want 1", count())
	}
	// Losing and gaining it within one selection.
	a.checkFetchFlags(2, nil, 6*s, "* 2 FETCH")
	b.checkFetchFlags(3, nil, 6*s, "* 3 FETCH")
	b.checkFetchFlags(3, []string{`\Recent`}, 7*s, "* 3 FETCH")
	if count() != 3 {
		t.Errorf("\\Recent lost and gained within a selection: %d reports in all, want 3", count())
	}
	// A read-only selection shows what no one took, and takes nothing.
	b.readOnly = true
	b.beginSelection()
	b.checkFetchFlags(4, []string{`\Recent`}, 8*s, "* 4 FETCH")
	if got := r.recent.owner[4]; got != "" {
		t.Errorf("EXAMINE took UID 4 for %s", got)
	}
	if count() != 3 {
		t.Errorf("EXAMINE: %d reports, want 3", count())
	}
	// A read-write selection ends with an unidentified message between
	// UIDs 3 and 5: UID 4, made before, is excused; UID 5, made after
	// the end, is not, nor is UID 3, which only gained \Recent. UID 2 was
	// taken; the seeded UID 1 is never held to the rule.
	a.v.reset(3)
	a.v.uids[0], a.v.uids[2] = 3, 5
	r.rec.start = time.Now().Add(-8 * s)
	a.endSelection()
	a.sel.id = ""
	before := count()
	if note := r.checkRecentTaken(map[uint32]bool{1: true, 2: true, 3: true, 4: true, 5: true}, 10); note == "" {
		t.Error("no note for the excused message")
	}
	if got := count() - before; got != 2 {
		t.Errorf("at the end: %d reports, want 2 (UIDs 3 and 5, recent nowhere)", got)
	}
}
