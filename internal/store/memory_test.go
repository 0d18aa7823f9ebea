package store

import (
	"math"
	"testing"

	"github.com/cistern-mail/cistern/maildir"
)

// TestGenerationWrap: when the listing generation wraps, a mark left
// from long ago cannot pass for the new generation: a message gone since
// is still found absent and expunged.
func TestGenerationWrap(t *testing.T) {
	f := newFixture(t)
	gone := f.put(maildir.Cur, "S")
	f.put(maildir.Cur, "")
	mb := f.open(Options{})
	defer mb.Close()
	sync1(t, mb)
	mb.mu.Lock()
	mb.gen = math.MaxUint32
	mb.byBase[gone].seen = 1 // what the generation after the wrap will be
	mb.mu.Unlock()
	f.remove(gone)
	ch := sync1(t, mb)
	if !ch.NewProof.Proven() || !ch.CurProof.Proven() {
		t.Skipf("listings not proven on this filesystem (%v, %v): the expunge rule waits", ch.NewProof, ch.CurProof)
	}
	if len(ch.Expunged) != 1 || ch.Expunged[0].Base != gone {
		t.Fatalf("expunged %v, want only %s", ch.Expunged, gone)
	}
	if _, ok := mb.Lookup(gone); ok {
		t.Fatalf("%s is still in the state", gone)
	}
}

// TestUnchangedNeedsTheExactName: the sync that finds every name known
// does nothing, and one whose names differ from the state's only by a
// second file of a known base name (or by its directory) reconciles.
func TestUnchangedNeedsTheExactName(t *testing.T) {
	f := newFixture(t)
	a := f.put(maildir.New, "")
	b := f.put(maildir.Cur, "S")
	mb := f.open(Options{})
	defer mb.Close()
	sync1(t, mb)
	ch := sync1(t, mb)
	if !ch.Empty() {
		t.Fatalf("second sync of an unchanged mailbox reported changes: %+v", ch)
	}
	// a moves new/ -> cur/ with no flags: the same base name, in the
	// other directory; b gets a flag.
	f.rename(a, "")
	f.rename(b, "SR")
	ch = sync1(t, mb)
	if len(ch.Flags) != 1 || ch.Flags[0].Base != b {
		t.Fatalf("flag changes %v, want only %s", ch.Flags, b)
	}
	msg, ok := mb.Lookup(a)
	if !ok || msg.Sub != maildir.Cur || msg.Filename != a+":2," {
		t.Fatalf("%s is %+v, want it in cur/ as %s:2,", a, msg, a)
	}
}
