package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// warmFixture is a Maildir served with an index, closed and opened
// again as a daemon restart does.
type warmFixture struct {
	*fixture
	ixPath string
	ix     *Index
}

func newWarmFixture(t *testing.T) *warmFixture {
	f := &warmFixture{fixture: newFixture(t), ixPath: filepath.Join(t.TempDir(), "index.db")}
	f.openIndex()
	t.Cleanup(func() { f.ix.Close() })
	return f
}

func (f *warmFixture) openIndex() {
	f.t.Helper()
	ix, err := OpenIndex(f.ixPath, testLogger(f.t))
	if err != nil {
		f.t.Fatal(err)
	}
	f.ix = ix
}

// stop stores mb's state (as the Registry does when it closes it), or
// not (crash), closes it and the index.
func (f *warmFixture) stop(mb *Mailbox, store bool) {
	f.t.Helper()
	if store {
		mb.persist()
	}
	mb.Close()
	if err := f.ix.Close(); err != nil {
		f.t.Fatal(err)
	}
}

// start opens the index and the mailbox again.
func (f *warmFixture) start() *Mailbox {
	f.t.Helper()
	f.openIndex()
	return f.open(Options{Index: f.ix})
}

// told is what a client could have been told by mb: its HIGHESTMODSEQ
// and every message's modseq.
func told(mb *Mailbox) (uint64, map[uint32]uint64) {
	ms := map[uint32]uint64{}
	for _, msg := range mb.Messages() {
		ms[msg.UID] = msg.ModSeq
	}
	return mb.HighestModSeq(), ms
}

// sameMessages fails unless a and b hold the same messages (UID, base
// name, place, flags), modseqs aside.
func sameMessages(t *testing.T, a, b []Message) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d messages, want %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.UID != y.UID || x.Base != y.Base || x.Sub != y.Sub || x.Filename != y.Filename || x.Flags != y.Flags || x.Suspect != y.Suspect {
			t.Fatalf("message %d is %+v, want %+v", i, x, y)
		}
	}
}

// running makes a Maildir of four messages, syncs it with an index,
// changes one message's flags and expunges another, so that the state
// has modseqs of several changes and an expunge log.
func running(t *testing.T) (*warmFixture, *Mailbox, []string) {
	f := newWarmFixture(t)
	bases := []string{f.put(maildir.Cur, "S"), f.put(maildir.New, ""), f.put(maildir.Cur, ""), f.put(maildir.Cur, "F")}
	mb := f.open(Options{Index: f.ix})
	sync1(t, mb)
	f.rename(bases[0], "RS")
	sync1(t, mb)
	f.remove(bases[3])
	if ch := sync1(t, mb); len(ch.Expunged) != 1 {
		t.Skipf("listings not proven on this filesystem (%v, %v): no expunge to remember", ch.NewProof, ch.CurProof)
	}
	if !mb.stampsValid {
		t.Skip("no valid directory stamps on this filesystem: no warm start can be proven")
	}
	return f, mb, bases
}

// TestWarmStartServesStoredState: after a restart the first sync serves
// the stored state without reading new/ or cur/ (the cheap check
// skips), with the same UIDs, flags, modseqs, HIGHESTMODSEQ and
// expunges; a change afterwards gets a modseq above all of them.
func TestWarmStartServesStoredState(t *testing.T) {
	f, mb, bases := running(t)
	before := mb.Messages()
	highest, _ := told(mb)
	vanished := mb.ExpungedSince(highest - 1)
	f.stop(mb, true)

	mb = f.start()
	defer mb.Close()
	if mb.warmUID == nil {
		t.Fatal("the stored state was not served")
	}
	ch := sync1(t, mb)
	if !ch.Skipped {
		t.Fatalf("first sync after a warm start read the files: %+v", ch)
	}
	after := mb.Messages()
	sameMessages(t, after, before)
	for i := range after {
		if after[i].ModSeq != before[i].ModSeq {
			t.Fatalf("UID %d: modseq %d, was %d", after[i].UID, after[i].ModSeq, before[i].ModSeq)
		}
	}
	if got := mb.HighestModSeq(); got != highest {
		t.Fatalf("HIGHESTMODSEQ %d, was %d", got, highest)
	}
	if got := mb.ExpungedSince(highest - 1); len(got) != len(vanished) || (len(got) > 0 && got[0] != vanished[0]) {
		t.Fatalf("ExpungedSince = %v, was %v", got, vanished)
	}
	f.rename(bases[2], "D")
	ch = sync1(t, mb)
	if len(ch.Flags) != 1 || ch.Flags[0].ModSeq <= highest || ch.HighestModSeq <= highest {
		t.Fatalf("a change after the warm start: %+v (HIGHESTMODSEQ was %d)", ch, highest)
	}
}

// TestWarmStartIndexesLazily: a warm start serves SELECT (a skipped
// sync), Lookup and a STORE by UID without building the index by base
// name; the first sync that finds a change builds it, and the state
// holds every invariant throughout.
func TestWarmStartIndexesLazily(t *testing.T) {
	f, mb, bases := running(t)
	f.stop(mb, true)

	mb = f.start()
	defer mb.Close()
	if mb.warmUID == nil {
		t.Fatal("the stored state was not served")
	}
	if ch := sync1(t, mb); !ch.Skipped {
		t.Fatalf("first sync after a warm start read the files: %+v", ch)
	}
	msg, ok := mb.Lookup(bases[1])
	if !ok || msg.Base != bases[1] {
		t.Fatalf("Lookup(%s) = %+v, %v", bases[1], msg, ok)
	}
	if _, ok := mb.Lookup("no-such-base"); ok {
		t.Fatal("Lookup found a base name the mailbox does not hold")
	}
	if _, err := mb.SetFlags(context.Background(), []uint32{msg.UID}, flagop.Add, maildir.Flags(0).With(maildir.FlagFlagged), nil); err != nil {
		t.Fatal(err)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
	mb.mu.Lock()
	built := mb.byBase != nil
	mb.mu.Unlock()
	if built {
		t.Fatal("the index by base name was built for a mailbox that only a STORE by UID changed")
	}
	f.rename(bases[2], "D")
	ch := sync1(t, mb)
	if len(ch.Flags) != 1 || ch.Flags[0].Base != bases[2] {
		t.Fatalf("flag changes %+v, want only %s", ch.Flags, bases[2])
	}
	mb.mu.Lock()
	n, want := len(mb.byBase), len(mb.msgs)
	mb.mu.Unlock()
	if n != want {
		t.Fatalf("%d base names indexed for %d messages", n, want)
	}
}

// TestWarmStartGUIDFromHeader: a warm-started mailbox answers GUID (a
// SELECT's MAILBOXID) from the header of the uidlist it was served
// with, the GUID it had before the restart, without a sync reading the
// uidlist; the first sync past the cheap check takes over.
func TestWarmStartGUIDFromHeader(t *testing.T) {
	f, mb, bases := running(t)
	ctx := context.Background()
	guid, err := mb.GUID(ctx)
	if err != nil || guid == "" {
		t.Fatalf("GUID = %q, %v", guid, err)
	}
	f.stop(mb, true)

	mb = f.start()
	defer mb.Close()
	if mb.warmUID == nil {
		t.Fatal("the stored state was not served")
	}
	sync1(t, mb)
	got, err := mb.GUID(ctx)
	if err != nil || got != guid {
		t.Fatalf("GUID after a warm start = %q, %v; want %q", got, err, guid)
	}
	mb.wmu.Lock()
	fromHeader, parsed := mb.warmGUID, mb.lastFile != nil
	mb.wmu.Unlock()
	if fromHeader != guid || parsed {
		t.Fatalf("GUID was not read from the header alone (kept %q, uidlist parsed %v)", fromHeader, parsed)
	}
	f.rename(bases[2], "D")
	sync1(t, mb)
	if got, err := mb.GUID(ctx); err != nil || got != guid {
		t.Fatalf("GUID after a sync = %q, %v; want %q", got, err, guid)
	}
}

// TestBasesKeepsFirstOfTwins: a state that gives one base name two
// UIDs (no Mailbox stores one, but a checksum cannot tell) is indexed
// with the first, and Check reports the other.
func TestBasesKeepsFirstOfTwins(t *testing.T) {
	f := newFixture(t)
	mb := f.open(Options{})
	defer mb.Close()
	a := &entry{uid: 1, baseLen: 1, sub: maildir.Cur, filename: "x:2,", modseq: 1}
	b := &entry{uid: 2, baseLen: 1, sub: maildir.Cur, filename: "x:2,S", modseq: 1}
	mb.lockWriter()
	mb.msgs, mb.byBase, mb.nextUID, mb.uidvalidity = []*entry{a, b}, nil, 3, 1
	idx := mb.bases()
	mb.unlockWriter()
	if len(idx) != 1 || idx["x"] != a {
		t.Fatalf("index %v, want only x -> UID 1", idx)
	}
	mb.mu.Lock()
	mb.byBase = nil
	mb.mu.Unlock()
	if err := mb.Check(); err == nil || !strings.Contains(err.Error(), "indexed") {
		t.Fatalf("Check = %v, want the twin reported", err)
	}
}

// TestWarmStartRefused: every change made while the daemon was down,
// and every stored state that is not intact, makes the next start read
// the files: the state is a cold sync's, and no modseq goes back.
func TestWarmStartRefused(t *testing.T) {
	cases := []struct {
		name   string
		change func(f *warmFixture, bases []string)
		// stored: the change is made to the stored value (the index is
		// open), not to the files.
		stored bool
	}{
		{"foreign rename", func(f *warmFixture, b []string) { f.rename(b[2], "S") }, false},
		{"delivery", func(f *warmFixture, b []string) { f.put(maildir.New, "") }, false},
		{"delete", func(f *warmFixture, b []string) { f.remove(b[0]) }, false},
		// A tool that puts a directory's mtime back after changing it (a
		// restore that keeps mtimes, touch -d) cannot put its ctime back.
		{"delete, cur/'s mtime put back", func(f *warmFixture, b []string) {
			cur := filepath.Join(f.dir, maildir.Cur)
			fi, err := os.Stat(cur)
			if err != nil {
				f.t.Fatal(err)
			}
			f.remove(b[0])
			if err := os.Chtimes(cur, fi.ModTime(), fi.ModTime()); err != nil {
				f.t.Fatal(err)
			}
		}, false},
		{"uidlist rewritten", func(f *warmFixture, b []string) {
			path := filepath.Join(f.dir, uidlist.FileName)
			data, err := os.ReadFile(path)
			if err != nil {
				f.t.Fatal(err)
			}
			if err := os.WriteFile(path+".new", data, 0o600); err != nil {
				f.t.Fatal(err)
			}
			if err := os.Rename(path+".new", path); err != nil {
				f.t.Fatal(err)
			}
		}, false},
		{"cur replaced", func(f *warmFixture, b []string) {
			cur := filepath.Join(f.dir, maildir.Cur)
			if err := os.Rename(cur, cur+".old"); err != nil {
				f.t.Fatal(err)
			}
			if err := os.Mkdir(cur, 0o700); err != nil {
				f.t.Fatal(err)
			}
			names, err := readNames(cur + ".old")
			if err != nil {
				f.t.Fatal(err)
			}
			for _, n := range names {
				if err := os.Rename(filepath.Join(cur+".old", n), filepath.Join(cur, n)); err != nil {
					f.t.Fatal(err)
				}
			}
			os.Remove(cur + ".old")
		}, false},
		{"keywords changed", func(f *warmFixture, b []string) {
			if err := os.WriteFile(filepath.Join(f.dir, uidlist.KeywordsFileName), []byte("0 $Junk\n"), 0o600); err != nil {
				f.t.Fatal(err)
			}
		}, false},
		{"modseq mark lowered", func(f *warmFixture, b []string) {
			if err := os.WriteFile(filepath.Join(f.dir, ModSeqFileName), []byte(formatMark(1)), 0o600); err != nil {
				f.t.Fatal(err)
			}
		}, false},
		{"corrupt", func(f *warmFixture, b []string) { f.editState(func(v []byte) []byte { v[len(v)/2] ^= 1; return v }) }, true},
		{"version", func(f *warmFixture, b []string) { f.editState(func(v []byte) []byte { v[3]++; return v }) }, true},
		{"truncated", func(f *warmFixture, b []string) { f.editState(func(v []byte) []byte { return v[:len(v)-5] }) }, true},
		{"another Maildir's", func(f *warmFixture, b []string) {
			other := newFixture(f.t)
			other.put(maildir.Cur, "")
			o := other.open(Options{Index: f.ix})
			sync1(f.t, o)
			o.persist()
			o.Close()
			var v []byte
			f.ix.flush()
			f.ix.read(stateBucket, other.dir, func(x []byte) { v = bytes.Clone(x) })
			if v == nil {
				f.t.Fatal("the other Maildir's state was not stored")
			}
			f.editState(func([]byte) []byte { return v })
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, mb, bases := running(t)
			highest, _ := told(mb)
			if tc.stored {
				mb.persist()
				mb.Close()
				tc.change(f, bases)
				if err := f.ix.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				f.stop(mb, true)
				tc.change(f, bases)
			}
			mb = f.start()
			defer mb.Close()
			if mb.warmUID != nil {
				t.Fatal("a stored state that is not current was served")
			}
			ch := sync1(t, mb)
			if ch.Skipped {
				t.Fatal("the first sync skipped the files")
			}
			cold := f.open(Options{})
			defer cold.Close()
			sync1(t, cold)
			sameMessages(t, mb.Messages(), cold.Messages())
			if mb.HighestModSeq() <= highest {
				t.Fatalf("HIGHESTMODSEQ %d, a client was told %d", mb.HighestModSeq(), highest)
			}
			for _, msg := range mb.Messages() {
				if msg.ModSeq <= highest {
					t.Fatalf("UID %d has modseq %d, not above the %d told before", msg.UID, msg.ModSeq, highest)
				}
			}
			// The refused state is gone from the index.
			f.ix.flush()
			f.ix.read(stateBucket, f.dir, func(v []byte) {
				if v != nil && tc.stored {
					t.Error("the refused state is still stored")
				}
			})
		})
	}
}

// editState replaces the stored state of the fixture's Maildir.
func (f *warmFixture) editState(edit func([]byte) []byte) {
	f.t.Helper()
	f.ix.flush()
	var v []byte
	f.ix.read(stateBucket, f.dir, func(x []byte) { v = bytes.Clone(x) })
	if v == nil {
		f.t.Fatal("no stored state")
	}
	f.ix.queue(stateBucket, []string{f.dir}, [][]byte{edit(v)})
}

// TestWarmStartCrashBeforeStore: changes made after the state was
// stored, then a crash before it is stored again: the next start reads
// the files, and its modseqs are above the ones told after the store.
func TestWarmStartCrashBeforeStore(t *testing.T) {
	f, mb, bases := running(t)
	mb.persist()
	if _, err := mb.SetFlags(context.Background(), []uint32{mb.Messages()[1].UID}, 0, maildir.Flags(0).With('F'), nil); err != nil {
		t.Fatal(err)
	}
	f.rename(bases[2], "T")
	sync1(t, mb)
	highest, _ := told(mb)
	f.stop(mb, false)

	mb = f.start()
	defer mb.Close()
	if mb.warmUID != nil {
		t.Fatal("the state stored before the changes was served")
	}
	sync1(t, mb)
	if mb.HighestModSeq() <= highest {
		t.Fatalf("HIGHESTMODSEQ %d after the crash, a client was told %d", mb.HighestModSeq(), highest)
	}
	if msg, _ := mb.Lookup(bases[2]); !msg.Flags.Has('T') {
		t.Fatalf("%s lost its flag: %+v", bases[2], msg)
	}
}

// TestWarmStartRegistry: a Registry stores the state of its mailboxes
// when it closes, after a last sync that takes in a STORE made since
// the sync before; the next Registry serves it.
func TestWarmStartRegistry(t *testing.T) {
	f, mb, _ := running(t)
	mb.Close()
	r := NewRegistry(Options{Index: f.ix, Logger: testLogger(t)}, nil)
	mb, release, err := r.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	sync1(t, mb)
	if _, err := mb.SetFlags(context.Background(), []uint32{mb.Messages()[0].UID}, 0, maildir.Flags(0).With('F'), nil); err != nil {
		t.Fatal(err)
	}
	want := mb.Messages()
	highest := mb.HighestModSeq()
	release()
	r.Close()
	if err := f.ix.Close(); err != nil {
		t.Fatal(err)
	}
	mb = f.start()
	defer mb.Close()
	if mb.warmUID == nil {
		t.Fatal("the state the Registry stored was not served")
	}
	if ch := sync1(t, mb); !ch.Skipped {
		t.Fatal("the first sync read the files")
	}
	sameMessages(t, mb.Messages(), want)
	if mb.HighestModSeq() != highest {
		t.Fatalf("HIGHESTMODSEQ %d, want %d", mb.HighestModSeq(), highest)
	}
}

// TestDecodeStateTruncated: every strict prefix of a stored state, and
// every single flipped bit of a small one, is refused.
func TestDecodeStateTruncated(t *testing.T) {
	f, mb, _ := running(t)
	defer mb.Close()
	mb.persist()
	var v []byte
	f.ix.flush()
	f.ix.read(stateBucket, f.dir, func(x []byte) { v = bytes.Clone(x) })
	if _, _, err := decodeState(v); err != nil {
		t.Fatalf("the stored state does not decode: %v", err)
	}
	for n := range len(v) {
		if _, _, err := decodeState(v[:n]); !errors.Is(err, errBadState) {
			t.Fatalf("a prefix of %d of %d bytes decoded (err %v)", n, len(v), err)
		}
	}
	for i := range len(v) * 8 {
		w := bytes.Clone(v)
		w[i/8] ^= 1 << (i % 8)
		if _, _, err := decodeState(w); !errors.Is(err, errBadState) {
			t.Fatalf("bit %d flipped decoded (err %v)", i, err)
		}
	}
}

// TestKeywordsStampSeesMtimePutBack: dovecot-keywords rewritten in place
// with the same size and its mtime put back is another version: its
// ctime moved.
func TestKeywordsStampSeesMtimePutBack(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, uidlist.KeywordsFileName)
	if err := os.WriteFile(path, []byte("0 $Junk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	before := keywordsStamp(dir)
	time.Sleep(10 * time.Millisecond) // a ctime tick on coarse clocks
	if err := os.WriteFile(path, []byte("0 $Spam\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	after := keywordsStamp(dir)
	if after.ino != before.ino || after.size != before.size || after.mtime != before.mtime {
		t.Fatalf("the case is not made: %+v, then %+v", before, after)
	}
	if after == before {
		t.Fatalf("stamp %+v unchanged after the file was rewritten and its mtime put back", after)
	}
}

// TestCheapCheckSeesMtimePutBack: a running daemon's cheap check too:
// a message deleted by another program that set cur/'s mtime back is
// found by the next sync (the directory's ctime moved).
func TestCheapCheckSeesMtimePutBack(t *testing.T) {
	f := newFixture(t)
	base := f.put(maildir.Cur, "S")
	f.put(maildir.Cur, "")
	mb := f.open(Options{})
	defer mb.Close()
	sync1(t, mb)
	sync1(t, mb) // stamps taken when no longer too recent
	cur := filepath.Join(f.dir, maildir.Cur)
	fi, err := os.Stat(cur)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a ctime tick on coarse clocks
	f.remove(base)
	if err := os.Chtimes(cur, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	ch := sync1(t, mb)
	if ch.Skipped {
		t.Fatal("the sync skipped the listings: the delete went unseen")
	}
	if _, ok := mb.Lookup(base); ok {
		t.Fatalf("%s is still a message after another program deleted it", base)
	}
}
