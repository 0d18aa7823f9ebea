//go:build interop

package interop

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/maildir"
)

// Modseqs never go back, even when Dovecot serves the Maildir between two
// runs of Cistern: Cistern's HIGHESTMODSEQ after Dovecot changed flags,
// expunged and appended is above every modseq it handed out before; each
// message Dovecot touched carries a modseq above it; and the expunge is
// among the UIDs expunged since (what VANISHED (EARLIER) reports). The
// index (in its own data directory, which Dovecot never sees) is kept
// across the runs, as a daemon's is.
func TestModSeqsAcrossDovecot(t *testing.T) {
	dir := newMaildir(t)
	d := NewDovecot(t, dir)
	for i := range 6 {
		deliver(t, dir, messageID("m", i), i%2 == 1, 0)
	}
	indexPath := filepath.Join(t.TempDir(), "index.db")

	// Run 1 of Cistern: it syncs, flags one message, and notes what a
	// client would have been told.
	mb, ix := openStoreWithIndex(t, dir, indexPath)
	syncStore(t, mb)
	byID := cisternMessages(t, mb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := mb.SetFlags(ctx, []uint32{byID[messageID("m", 0)].UID}, flagop.Add, maildir.Flags(0).With(maildir.FlagSeen), nil); err != nil {
		t.Fatalf("SetFlags: %v", err)
	}
	syncStore(t, mb)
	told := mb.HighestModSeq()
	for _, m := range mb.Messages() {
		if m.ModSeq == 0 || m.ModSeq > told {
			t.Fatalf("run 1: UID %d has MODSEQ %d, HIGHESTMODSEQ %d", m.UID, m.ModSeq, told)
		}
	}
	before := cisternMessages(t, mb)
	closeStore(t, mb, ix)

	// Dovecot serves the tree: a flag change, an expunge, an append.
	d.Start()
	c := d.Client()
	sel := SelectInbox(t, c)
	flagged := sel.ByMessageID[messageID("m", 1)].UID
	gone := sel.ByMessageID[messageID("m", 2)].UID
	storeFlags(t, c, imap.StoreFlagsAdd, []imap.Flag{imap.FlagFlagged}, flagged)
	storeFlags(t, c, imap.StoreFlagsAdd, []imap.Flag{imap.FlagDeleted}, gone)
	if _, err := c.Expunge().Collect(); err != nil {
		t.Fatalf("EXPUNGE: %v", err)
	}
	appendMessage(t, c, messageID("m", 6), nil)
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	d.Stop()

	// Run 2 of Cistern, same index.
	mb, ix = openStoreWithIndex(t, dir, indexPath)
	syncStore(t, mb)
	after := cisternMessages(t, mb)
	if h := mb.HighestModSeq(); h <= told {
		t.Errorf("HIGHESTMODSEQ %d after Dovecot served the tree, not above %d, the highest told before", h, told)
	}
	for _, id := range []string{messageID("m", 1), messageID("m", 6)} {
		m, ok := after[id]
		switch {
		case !ok:
			t.Errorf("%s missing after Dovecot served the tree", id)
		case m.ModSeq <= told:
			t.Errorf("%s (UID %d), changed by Dovecot, has MODSEQ %d, not above %d", id, m.UID, m.ModSeq, told)
		}
	}
	if m := after[messageID("m", 1)]; !m.Flags.Has(maildir.FlagFlagged) {
		t.Errorf("%s: flags %q, Dovecot set \\Flagged", messageID("m", 1), m.Flags)
	}
	if _, ok := after[messageID("m", 2)]; ok {
		t.Errorf("%s still listed after Dovecot expunged it", messageID("m", 2))
	}
	if !inRanges(mb.ExpungedSince(told), gone) {
		t.Errorf("ExpungedSince(%d) = %v lacks UID %d, which Dovecot expunged", told, mb.ExpungedSince(told), gone)
	}
	for id, m := range after {
		if m.ModSeq > mb.HighestModSeq() {
			t.Errorf("%s: MODSEQ %d above HIGHESTMODSEQ %d", id, m.ModSeq, mb.HighestModSeq())
		}
		if b, ok := before[id]; ok && b.UID != m.UID {
			t.Errorf("%s: UID %d became %d", id, b.UID, m.UID)
		}
	}
	closeStore(t, mb, ix)

	// Dovecot once more: Cistern's mark file is no folder and no message
	// to it.
	d.Start()
	c = d.Client()
	sel = SelectInbox(t, c)
	if len(sel.Messages) != len(after) {
		t.Errorf("Dovecot lists %d messages, Cistern %d", len(sel.Messages), len(after))
	}
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	if len(boxes) != 1 || boxes[0].Mailbox != "INBOX" {
		names := make([]string, len(boxes))
		for i, b := range boxes {
			names[i] = b.Mailbox
		}
		t.Errorf("Dovecot lists mailboxes %v, want only INBOX", names)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
}

// openStoreWithIndex opens the Maildir with Cistern's store and the bbolt
// index at path, as the daemon does.
func openStoreWithIndex(t *testing.T, dir, path string) (*store.Mailbox, *store.Index) {
	t.Helper()
	ix, err := store.OpenIndex(path, nil)
	if err != nil {
		t.Fatalf("store.OpenIndex(%s): %v", path, err)
	}
	mb, err := store.Open(dir, store.Options{Index: ix})
	if err != nil {
		ix.Close()
		t.Fatalf("store.Open(%s): %v", dir, err)
	}
	return mb, ix
}

// closeStore closes what openStoreWithIndex opened.
func closeStore(t *testing.T, mb *store.Mailbox, ix *store.Index) {
	t.Helper()
	if err := mb.Close(); err != nil {
		t.Errorf("closing the store: %v", err)
	}
	if err := ix.Close(); err != nil {
		t.Errorf("closing the index: %v", err)
	}
}

// inRanges says whether uid is in one of the ranges.
func inRanges(ranges []store.UIDRange, uid uint32) bool {
	return slices.ContainsFunc(ranges, func(r store.UIDRange) bool { return r.Lo <= uid && uid <= r.Hi })
}
