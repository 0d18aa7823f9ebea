package store

import (
	"testing"

	"github.com/cistern-mail/cistern/maildir"
)

// TestReleaseAfterBigSync: a sync that finds at least releaseAfter new
// messages hands the memory back (once), and a sync that finds fewer
// does not.
func TestReleaseAfterBigSync(t *testing.T) {
	released := 0
	testHookRelease = func() { released++ }
	old := releaseAfter
	releaseAfter = 3
	t.Cleanup(func() { testHookRelease, releaseAfter = nil, old })

	f := newFixture(t)
	for range 3 {
		f.put(maildir.Cur, "")
	}
	mb := f.open(Options{})
	defer mb.Close()
	if ch := sync1(t, mb); len(ch.New) != 3 {
		t.Fatalf("first sync found %d new messages, want 3", len(ch.New))
	}
	if released != 1 {
		t.Fatalf("released %d times after a sync of 3 new messages, want 1", released)
	}
	f.put(maildir.New, "")
	if ch := sync1(t, mb); len(ch.New) != 1 {
		t.Fatalf("second sync found %d new messages, want 1", len(ch.New))
	}
	sync1(t, mb)
	if released != 1 {
		t.Fatalf("released %d times, want still 1 after small syncs", released)
	}
}
