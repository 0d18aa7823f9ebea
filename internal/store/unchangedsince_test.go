package store

import (
	"slices"
	"testing"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/maildir"
)

// TestSetFlagsUnchangedSince: a message whose modseq is above since is
// left alone and named in modified; the others change and get a new
// modseq; since 0 fails every message (RFC 7162 §3.1.3).
func TestSetFlagsUnchangedSince(t *testing.T) {
	f := newFixture(t)
	x := f.put(maildir.Cur, "")
	y := f.put(maildir.Cur, "")
	mb, a, b := twoSessions(t, f)
	before := mb.HighestModSeq()
	// b changes message 2: its modseq goes above before.
	if _, err := mb.SetFlags(ctx, []uint32{2}, flagop.Add, flagsOf("F"), b); err != nil {
		t.Fatal(err)
	}
	out, modified, err := mb.SetFlagsUnchangedSince(ctx, []uint32{1, 2}, flagop.Add, flagsOf("S"), before, a)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(modified, []uint32{2}) {
		t.Fatalf("modified %v, want [2]", modified)
	}
	if len(out) != 1 || out[0].UID != 1 || out[0].Flags.String() != "S" || out[0].ModSeq <= before {
		t.Fatalf("out %+v (before %d)", out, before)
	}
	if _, name := f.find(x); name != x+":2,S" {
		t.Fatalf("file %s", name)
	}
	if _, name := f.find(y); name != y+":2,F" {
		t.Fatalf("message 2 was changed although it failed the test: %s", name)
	}
	// since 0: every message fails, nothing changes.
	h := mb.HighestModSeq()
	out, modified, err = mb.SetFlagsUnchangedSince(ctx, []uint32{1, 2}, flagop.Add, flagsOf("D"), 0, a)
	if err != nil || len(out) != 0 || !slices.Equal(modified, []uint32{1, 2}) {
		t.Fatalf("since 0: out %+v modified %v err %v", out, modified, err)
	}
	if mb.HighestModSeq() != h {
		t.Fatalf("a STORE that changed nothing raised HIGHESTMODSEQ %d -> %d", h, mb.HighestModSeq())
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestSetFlagsUnchangedSinceForeignRename: another program changed the
// flags since the client's modseq; the change finds the file renamed,
// the sync that looks for it raises the message's modseq, and the test,
// made again, fails: the foreign flags stay, ours are not added.
func TestSetFlagsUnchangedSinceForeignRename(t *testing.T) {
	f := newFixture(t)
	x := f.put(maildir.Cur, "S")
	mb, a, _ := twoSessions(t, f)
	since := mb.HighestModSeq()
	f.rename(x, "RS")
	out, modified, err := mb.SetFlagsUnchangedSince(ctx, []uint32{1}, flagop.Add, flagsOf("F"), since, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 0 || !slices.Equal(modified, []uint32{1}) {
		t.Fatalf("out %+v modified %v, want the message modified", out, modified)
	}
	if _, name := f.find(x); name != x+":2,RS" {
		t.Fatalf("file %s, want the foreign flags alone", name)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
}
