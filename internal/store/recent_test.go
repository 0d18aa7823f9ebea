package store

import (
	"path/filepath"
	"testing"

	"github.com/cistern-mail/cistern/maildir"
)

// TestRecentMark: without a mark in the index, the messages from the
// lowest UID in new/ up are recent; a claim hands each UID out once, and
// the mark outlives the Mailbox in the index, for its UIDVALIDITY only.
func TestRecentMark(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "S") // 1
	f.put(maildir.Cur, "")  // 2
	f.put(maildir.New, "")  // 3
	f.put(maildir.Cur, "")  // 4
	ix, err := OpenIndex(filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	mb := f.open(Options{Index: ix})
	sync1(t, mb)
	if got := mb.FirstRecent(); got != 3 {
		t.Errorf("FirstRecent = %d, want 3 (the lowest UID in new/)", got)
	}
	if got := mb.ClaimRecent(5); got != 3 {
		t.Errorf("first claim: %d, want 3", got)
	}
	if got := mb.ClaimRecent(5); got != 5 {
		t.Errorf("second claim: %d, want 5 (nothing left)", got)
	}
	f.put(maildir.New, "") // 5
	sync1(t, mb)
	if got := mb.ClaimRecent(6); got != 5 {
		t.Errorf("claim of the new message: %d, want 5", got)
	}
	mb.Close()

	// A new Mailbox (the registry evicted the old one) keeps the mark.
	mb2 := f.open(Options{Index: ix})
	sync1(t, mb2)
	if got := mb2.FirstRecent(); got != 6 {
		t.Errorf("FirstRecent after reopening = %d, want 6", got)
	}
	mb2.Close()

	// A mark of another UIDVALIDITY is not this one's.
	ix.SetRecentMark(f.dir, mb2.UIDValidity()+1, 2)
	mb3 := f.open(Options{Index: ix})
	sync1(t, mb3)
	if got := mb3.FirstRecent(); got != 3 {
		t.Errorf("FirstRecent with a mark of another UIDVALIDITY = %d, want 3", got)
	}
	mb3.Close()

	// Without an index, the Maildir's rule.
	mb4 := f.open(Options{})
	sync1(t, mb4)
	if got := mb4.FirstRecent(); got != 3 {
		t.Errorf("FirstRecent without an index = %d, want 3", got)
	}
	mb4.Close()
}
