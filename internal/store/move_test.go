package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// movePair is a source and a target Maildir for Move, each with its own
// fixture (the target's names numbered from 100, so that no base name
// is in both by chance).
type movePair struct {
	a, b     *fixture
	src, dst *Mailbox
}

func newMovePair(t *testing.T) *movePair {
	t.Helper()
	p := &movePair{a: newFixture(t), b: newFixture(t)}
	p.b.n = 100
	return p
}

// open opens and syncs both mailboxes, and checks both when the test
// ends (Check, and CheckFiles: nothing else changes them then).
func (p *movePair) open(t *testing.T, opts Options) {
	t.Helper()
	p.src, p.dst = p.a.open(opts), p.b.open(opts)
	sync1(t, p.src)
	sync1(t, p.dst)
	t.Cleanup(func() { checkBoth(t, p.src, p.dst) })
}

func checkBoth(t *testing.T, mbs ...*Mailbox) {
	t.Helper()
	for _, mb := range mbs {
		if err := mb.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
		if err := mb.CheckFiles(); err != nil {
			t.Errorf("CheckFiles: %v", err)
		}
	}
}

// inode returns the inode number of the file of base in the fixture.
func (f *fixture) inode(base string) uint64 {
	f.t.Helper()
	sub, name := f.find(base)
	fi, err := os.Stat(filepath.Join(f.dir, sub, name))
	if err != nil {
		f.t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// files lists the message file names of new/ and cur/ as "sub/name".
func (f *fixture) files() []string {
	f.t.Helper()
	var out []string
	for _, sub := range []string{maildir.New, maildir.Cur} {
		names, err := readNames(filepath.Join(f.dir, sub))
		if err != nil {
			f.t.Fatal(err)
		}
		for _, n := range names {
			out = append(out, sub+"/"+n)
		}
	}
	slices.Sort(out)
	return out
}

func writeKeywords(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, uidlist.KeywordsFileName), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMove: each message is renamed (the same inode) into the target's
// cur/ under its base name, with its keywords given the target's letters;
// the source's other session hears of the expunges, the target's of the
// new messages, the mover of neither; a sync afterwards finds nothing.
func TestMove(t *testing.T) {
	p := newMovePair(t)
	writeKeywords(t, p.a.dir, "0 $Work\n1 Urgent\n")
	writeKeywords(t, p.b.dir, "0 Other\n1 Urgent\n")
	x := p.a.put(maildir.Cur, "Sa") // $Work
	y := p.a.put(maildir.New, "")
	z := p.a.put(maildir.Cur, "Fbz") // Urgent, and a letter without a name
	w := p.a.put(maildir.Cur, "R")
	p.b.put(maildir.Cur, "S")
	p.open(t, Options{})
	mover, other, target := p.src.Subscribe(), p.src.Subscribe(), p.dst.Subscribe()
	defer mover.Close()
	defer other.Close()
	defer target.Close()
	inodes := map[string]uint64{x: p.a.inode(x), y: p.a.inode(y), z: p.a.inode(z)}

	validity, from, to, err := p.src.Move(ctx, []uint32{3, 1, 2, 99}, p.dst, mover)
	if err != nil {
		t.Fatal(err)
	}
	if validity != p.dst.UIDValidity() || !slices.Equal(from, []uint32{1, 2, 3}) || !slices.Equal(to, []uint32{2, 3, 4}) {
		t.Fatalf("COPYUID %d %v -> %v, want %d [1 2 3] -> [2 3 4]", validity, from, to, p.dst.UIDValidity())
	}
	wantNames := map[string]string{x: x + ":2,Sc", y: y + ":2,", z: z + ":2,Fb"}
	for base, want := range wantNames {
		sub, name := p.b.find(base)
		if sub != maildir.Cur || name != want {
			t.Errorf("%s is %s/%s in the target, want cur/%s", base, sub, name, want)
		}
		if ino := p.b.inode(base); ino != inodes[base] {
			t.Errorf("%s: inode %d in the target, %d in the source: not a rename", base, ino, inodes[base])
		}
	}
	if got := p.a.files(); !slices.Equal(got, []string{"cur/" + w + ":2,R"}) {
		t.Errorf("source holds %v", got)
	}
	k, _, err := uidlist.ReadKeywords(p.b.dir)
	if err != nil || k.Names[2] != "$Work" {
		t.Errorf("target keywords %v (%v): $Work not added as c", k, err)
	}
	if pd := mover.Take(); !pd.Empty() {
		t.Errorf("the mover's own session was told %+v", pd)
	}
	if pd := other.Take(); !slices.Equal(pd.Expunged, []uint32{1, 2, 3}) || len(pd.New) != 0 {
		t.Errorf("the source's other session was told %+v", pd)
	}
	if pd := target.Take(); !slices.Equal(uids(pd.New), []uint32{2, 3, 4}) || len(pd.Expunged) != 0 {
		t.Errorf("the target's session was told %+v", pd)
	}
	if got := uids(p.src.Messages()); !slices.Equal(got, []uint32{4}) {
		t.Errorf("source state %v", got)
	}
	for _, mb := range []*Mailbox{p.src, p.dst} {
		if ch := sync1(t, mb); !ch.Empty() {
			t.Errorf("a sync after the move found %+v", ch)
		}
	}
	// Nothing left to move: no pairs, no error.
	if _, from, _, err := p.src.Move(ctx, []uint32{1, 2}, p.dst, mover); err != nil || from != nil {
		t.Errorf("moving moved messages again: %v, %v", from, err)
	}
}

// TestMoveForeignRename: another program renames one source file (new/
// to cur/ with a flag) and removes another while Move waits for the
// target's lock. The renamed one moves with the flags it has now; the
// removed one is not moved, and stays in the source's state until a
// proven sync expunges it.
func TestMoveForeignRename(t *testing.T) {
	p := newMovePair(t)
	x := p.a.put(maildir.New, "")
	y := p.a.put(maildir.Cur, "S")
	z := p.a.put(maildir.Cur, "")
	p.open(t, Options{})
	other := p.src.Subscribe()
	defer other.Close()
	testHookMoveBeforeRenames = func() {
		p.a.rename(x, "F")
		p.a.remove(y)
	}
	t.Cleanup(func() { testHookMoveBeforeRenames = nil })

	_, from, to, err := p.src.Move(ctx, []uint32{1, 2, 3}, p.dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(from, []uint32{1, 3}) || !slices.Equal(to, []uint32{1, 2}) {
		t.Fatalf("COPYUID %v -> %v, want [1 3] -> [1 2]", from, to)
	}
	if _, name := p.b.find(x); name != x+":2,F" {
		t.Errorf("renamed message moved as %s, want its new flags", name)
	}
	p.b.find(z)
	msg, ok := p.dst.LookupUID(1)
	if !ok || msg.Flags.String() != "F" {
		t.Errorf("target state for UID 1: %+v", msg)
	}
	if got := uids(p.src.Messages()); !slices.Equal(got, []uint32{2}) {
		t.Errorf("source state %v: the removed message is left to the sync", got)
	}
	if pd := other.Take(); !slices.Equal(pd.Expunged, []uint32{1, 3}) {
		t.Errorf("the other session was told %+v", pd)
	}
	ch := sync1(t, p.src)
	if !slices.Equal(uids(ch.Expunged), []uint32{2}) {
		t.Errorf("the sync expunged %v, want the removed message", uids(ch.Expunged))
	}
}

// TestMoveAppendFails: the target's uidlist cannot take the new UIDs (a
// program that ignores the lock appended a record meanwhile): every
// moved file goes back to where it was, under its name, nothing changes
// in either state, no session hears anything, and the error is returned.
func TestMoveAppendFails(t *testing.T) {
	p := newMovePair(t)
	p.a.put(maildir.New, "")
	p.a.put(maildir.Cur, "S")
	p.a.put(maildir.Cur, "F")
	p.open(t, Options{})
	before := p.a.files()
	mover, other, target := p.src.Subscribe(), p.src.Subscribe(), p.dst.Subscribe()
	defer mover.Close()
	defer other.Close()
	defer target.Close()
	testHookMoveBeforeAppend = func() {
		if got := p.a.files(); len(got) != 0 {
			t.Errorf("before the append the source still holds %v", got)
		}
		f, err := os.OpenFile(filepath.Join(p.b.dir, uidlist.FileName), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "50 :1700009999.M1P1Q1.foreign\n")
		f.Close()
	}
	t.Cleanup(func() { testHookMoveBeforeAppend = nil })
	// Message 2 is renamed by a foreign program first: it moves from
	// where it was found, and back there.
	second := p.src.Messages()[1].Base
	testHookMoveBeforeRenames = func() { p.a.rename(second, "ST") }
	t.Cleanup(func() { testHookMoveBeforeRenames = nil })
	before = slices.DeleteFunc(before, func(s string) bool { return strings.Contains(s, second) })
	before = append(before, "cur/"+second+":2,ST")
	slices.Sort(before)

	_, from, _, err := p.src.Move(ctx, []uint32{1, 2, 3}, p.dst, mover)
	if !errors.Is(err, uidlist.ErrUIDOrder) || from != nil {
		t.Fatalf("Move: %v, %v; want the append's ErrUIDOrder and no pairs", from, err)
	}
	if got := p.a.files(); !slices.Equal(got, before) {
		t.Errorf("source holds %v, want %v", got, before)
	}
	if got := p.b.files(); len(got) != 0 {
		t.Errorf("target holds %v", got)
	}
	if got := uids(p.src.Messages()); !slices.Equal(got, []uint32{1, 2, 3}) {
		t.Errorf("source state %v", got)
	}
	if n := len(p.dst.Messages()); n != 0 {
		t.Errorf("target state holds %d messages", n)
	}
	for name, s := range map[string]*Subscription{"mover": mover, "other": other, "target": target} {
		if pd := s.Take(); !pd.Empty() {
			t.Errorf("%s was told %+v", name, pd)
		}
	}
	sync1(t, p.src) // the foreign flag change
	if ch := sync1(t, p.dst); !ch.Empty() {
		t.Errorf("a sync of the target found %+v", ch)
	}
}

// TestMoveBackAndForth: a message moved out of a mailbox and back finds
// its base name still in that mailbox's uidlist (records go only with
// compaction): it comes back under a fresh base name, with the same size
// fields, and a new UID, never its old one.
func TestMoveBackAndForth(t *testing.T) {
	p := newMovePair(t)
	x := p.a.put(maildir.Cur, "S")
	p.a.put(maildir.Cur, "")
	p.open(t, Options{})
	if _, _, to, err := p.src.Move(ctx, []uint32{1}, p.dst, nil); err != nil || !slices.Equal(to, []uint32{1}) {
		t.Fatalf("move there: %v, %v", to, err)
	}
	_, from, to, err := p.dst.Move(ctx, []uint32{1}, p.src, nil)
	if err != nil || !slices.Equal(from, []uint32{1}) || !slices.Equal(to, []uint32{3}) {
		t.Fatalf("move back: %v -> %v, %v; want [1] -> [3]", from, to, err)
	}
	msg, _ := p.src.LookupUID(3)
	if msg.Base == x || !strings.HasSuffix(msg.Base, ",S=20,W=21") || msg.Flags.String() != "S" {
		t.Errorf("moved back as %+v, want a fresh base name with ,S=20,W=21 and flags S", msg)
	}
	if _, ok := p.src.Lookup(x); ok {
		t.Errorf("the old base name %s is back", x)
	}
	// And there again: the target's uidlist holds x too.
	if _, _, to, err := p.src.Move(ctx, []uint32{3}, p.dst, nil); err != nil || !slices.Equal(to, []uint32{2}) {
		t.Fatalf("move there again: %v, %v", to, err)
	}
}

// TestMoveWithinMailbox: MOVE into the selected mailbox itself (RFC 6851
// allows it) gives the messages fresh names and new UIDs, and expunges
// the old ones.
func TestMoveWithinMailbox(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "S")
	f.put(maildir.New, "")
	mb, a, b := twoSessions(t, f)
	_, from, to, err := mb.Move(ctx, []uint32{1, 2}, mb, a)
	if err != nil || !slices.Equal(from, []uint32{1, 2}) || !slices.Equal(to, []uint32{3, 4}) {
		t.Fatalf("move: %v -> %v, %v", from, to, err)
	}
	if got := uids(mb.Messages()); !slices.Equal(got, []uint32{3, 4}) {
		t.Errorf("state %v", got)
	}
	if pd := b.Take(); !slices.Equal(pd.Expunged, []uint32{1, 2}) || !slices.Equal(uids(pd.New), []uint32{3, 4}) {
		t.Errorf("the other session was told %+v", pd)
	}
	if pd := a.Take(); len(pd.Expunged) != 0 || !slices.Equal(uids(pd.New), []uint32{3, 4}) {
		t.Errorf("the mover was told %+v, want the new messages only", pd)
	}
	checkBoth(t, mb)
	if ch := sync1(t, mb); !ch.Empty() {
		t.Errorf("a sync after the move found %+v", ch)
	}
}

// TestMoveSyncWaits: a sync of the source that starts while the files
// are being renamed waits for the source's writer lock, and then has
// nothing to report: the expunges are told once, by the Move.
func TestMoveSyncWaits(t *testing.T) {
	p := newMovePair(t)
	p.a.put(maildir.Cur, "")
	p.a.put(maildir.Cur, "")
	p.open(t, Options{})
	other := p.src.Subscribe()
	defer other.Close()
	type result struct {
		ch  *Changes
		err error
	}
	synced := make(chan result, 1)
	testHookMoveBeforeAppend = func() {
		started := make(chan struct{})
		go func() {
			close(started)
			ch, err := p.src.Sync(ctx)
			synced <- result{ch, err}
		}()
		// Give the sync the time to reach the writer lock while the files
		// are out of the source: the outcome must not depend on it.
		<-started
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { testHookMoveBeforeAppend = nil })
	if _, from, _, err := p.src.Move(ctx, []uint32{1, 2}, p.dst, nil); err != nil || len(from) != 2 {
		t.Fatalf("move: %v, %v", from, err)
	}
	var r result
	select {
	case r = <-synced:
	case <-time.After(30 * time.Second):
		t.Fatal("the concurrent sync did not end")
	}
	if r.err != nil || len(r.ch.Expunged) != 0 {
		t.Errorf("the concurrent sync: %+v, %v; want no expunge", r.ch, r.err)
	}
	if pd := other.Take(); !slices.Equal(pd.Expunged, []uint32{1, 2}) {
		t.Errorf("the other session was told %+v", pd)
	}
}

// TestMoveBothWays: Moves in both directions at once, one message each,
// over and over, end (no deadlock between the two writer locks and the
// two dotlocks) with every message in exactly one mailbox, once.
func TestMoveBothWays(t *testing.T) {
	p := newMovePair(t)
	const each = 15
	for range each {
		p.a.put(maildir.Cur, "")
		p.b.put(maildir.Cur, "")
	}
	p.open(t, Options{})
	mover := func(from, to *Mailbox, done chan<- error) {
		for range 2 * each {
			msgs := from.Messages()
			if len(msgs) == 0 {
				continue
			}
			if _, _, _, err := from.Move(ctx, []uint32{msgs[0].UID}, to, nil); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}
	done := make(chan error, 2)
	go mover(p.src, p.dst, done)
	go mover(p.dst, p.src, done)
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("moves in both directions did not end: deadlock?")
		}
	}
	sync1(t, p.src)
	sync1(t, p.dst)
	subjects := make(map[string]int)
	for _, f := range []*fixture{p.a, p.b} {
		for _, name := range f.files() {
			data, err := os.ReadFile(filepath.Join(f.dir, name))
			if err != nil {
				t.Fatal(err)
			}
			subjects[strings.SplitN(string(data), "\n", 2)[0]]++
		}
	}
	if len(subjects) != 2*each {
		t.Errorf("%d distinct messages, want %d", len(subjects), 2*each)
	}
	for s, n := range subjects {
		if n != 1 {
			t.Errorf("%q is there %d times", s, n)
		}
	}
	if n := len(p.src.Messages()) + len(p.dst.Messages()); n != 2*each {
		t.Errorf("the states hold %d messages, want %d", n, 2*each)
	}
}

// TestMoveIndexFollows: a message's cached entry follows it into the
// target under its name there, and leaves the source.
func TestMoveIndexFollows(t *testing.T) {
	ix, err := OpenIndex(filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	p := newMovePair(t)
	x := p.a.put(maildir.Cur, "S")
	y := p.a.put(maildir.Cur, "")
	p.open(t, Options{Index: ix})
	msg, _ := p.src.Lookup(x)
	p.src.Cache(msg, IndexEntry{FileSize: 20, CRLFSize: 21, Structure: []byte("blob")})
	// y has no entry, but its name in the target has one, left by
	// nothing we know of: it must not be served for y.
	ix.Put(p.b.dir, y, IndexEntry{FileSize: 20, Structure: []byte("stale")})
	if _, _, _, err := p.src.Move(ctx, []uint32{1, 2}, p.dst, nil); err != nil {
		t.Fatal(err)
	}
	moved, _ := p.dst.Lookup(x)
	if e, ok := p.dst.Cached(moved); !ok || string(e.Structure) != "blob" {
		t.Errorf("target cache for x %+v, %v; want the source's entry", e, ok)
	}
	if _, ok := ix.Get(p.a.dir, x); ok {
		t.Error("the source's entry is kept")
	}
	other, _ := p.dst.Lookup(y)
	if e, ok := p.dst.Cached(other); ok {
		t.Errorf("target cache for y %+v: stale", e)
	}
}

// TestMoveAcrossFilesystems: a target on another filesystem cannot be
// renamed into: Move says so with ErrMoveNeedsCopy and changes nothing.
// It mounts a tmpfs, which needs root.
func TestMoveAcrossFilesystems(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs as the other filesystem")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	f := newFixture(t)
	f.put(maildir.Cur, "S")
	src := f.open(Options{})
	sync1(t, src)
	other := src.Subscribe()
	defer other.Close()
	dstDir := filepath.Join(mnt, "Other")
	if err := maildir.Create(dstDir, 0o700); err != nil {
		t.Fatal(err)
	}
	dst, err := Open(dstDir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	sync1(t, dst)
	before := f.files()
	_, from, _, err := src.Move(ctx, []uint32{1}, dst, nil)
	if !errors.Is(err, ErrMoveNeedsCopy) || from != nil {
		t.Fatalf("Move across filesystems: %v, %v; want ErrMoveNeedsCopy", from, err)
	}
	if got := f.files(); !slices.Equal(got, before) {
		t.Errorf("source holds %v, want %v", got, before)
	}
	if pd := other.Take(); !pd.Empty() {
		t.Errorf("the other session was told %+v", pd)
	}
	checkBoth(t, src, dst)
}

// TestAccountMove: a Move between counted folders needs no room and
// changes no usage; into Trash it frees; out of Trash it must fit, and a
// refusal moves nothing.
func TestAccountMove(t *testing.T) {
	a, mb := quotaAccount(t, QuotaLimit{Bytes: 1000, Messages: 5}, true)
	m1, err := appendN(t, a, mb["INBOX"], 600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := appendN(t, a, mb["Work"], 400); err != nil {
		t.Fatal(err)
	}
	if _, err := appendN(t, a, mb["Trash"], 5000); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, a); u != (QuotaUsage{1000, 2}) {
		t.Fatalf("usage %+v", u)
	}
	// At the limit, between counted folders.
	_, _, to, err := a.Move(ctx, mb["INBOX"], []uint32{m1.UID}, mb["Work"], nil)
	if err != nil || len(to) != 1 {
		t.Fatalf("move at the limit: %v, %v", to, err)
	}
	if u := usage(t, a); u != (QuotaUsage{1000, 2}) {
		t.Fatalf("usage after a move between counted folders %+v", u)
	}
	// Into Trash.
	if _, _, _, err := a.Move(ctx, mb["Work"], to, mb["Trash"], nil); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, a); u != (QuotaUsage{400, 1}) {
		t.Fatalf("usage after a move into Trash %+v", u)
	}
	// Out of Trash: the 5000 bytes do not fit, and stay.
	trash := mb["Trash"].Messages()
	big := trash[0]
	if _, _, _, err := a.Move(ctx, mb["Trash"], []uint32{big.UID}, mb["INBOX"], nil); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("move out of Trash past the limit: %v", err)
	}
	if _, ok := mb["Trash"].LookupUID(big.UID); !ok || len(mb["INBOX"].Messages()) != 0 {
		t.Fatal("a refused move moved something")
	}
	// The 600 do.
	if _, _, _, err := a.Move(ctx, mb["Trash"], []uint32{trash[1].UID}, mb["INBOX"], nil); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, a); u != (QuotaUsage{1000, 2}) {
		t.Fatalf("usage after a move out of Trash %+v", u)
	}
	for _, m := range mb {
		if err := m.CheckFiles(); err != nil {
			t.Error(err)
		}
	}
}

// TestMoveOverStaleEntry: the target's state still holds a message that
// a foreign program moved out, and whose record another program dropped
// from the target's uidlist (a compaction, as Dovecot's after it saw the
// file go). Moved back under the same base name, the message gets the
// new UID the uidlist gives it, and the stale entry is reported gone.
func TestMoveOverStaleEntry(t *testing.T) {
	p := newMovePair(t)
	x := p.b.put(maildir.Cur, "S")
	p.b.put(maildir.Cur, "")
	p.open(t, Options{})
	watch := p.dst.Subscribe()
	defer watch.Close()
	// The foreign move out of the target, into the source.
	sub, name := p.b.find(x)
	if err := os.Rename(filepath.Join(p.b.dir, sub, name), filepath.Join(p.a.dir, maildir.Cur, name)); err != nil {
		t.Fatal(err)
	}
	// The other program's compaction.
	lock, err := uidlist.AcquireLock(ctx, p.b.dir, uidlist.LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(p.b.dir, uidlist.FileName))
	if err != nil {
		t.Fatal(err)
	}
	file, _, err := uidlist.Parse(filepath.Join(p.b.dir, uidlist.FileName), data)
	if err != nil {
		t.Fatal(err)
	}
	file.Records = slices.DeleteFunc(slices.Clone(file.Records), func(r uidlist.Record) bool { return r.Base() == x })
	err = uidlist.Rewrite(lock, p.b.dir, file)
	lock.Release()
	if err != nil {
		t.Fatal(err)
	}
	sync1(t, p.src)
	moving, _ := p.src.Lookup(x)
	_, _, to, err := p.src.Move(ctx, []uint32{moving.UID}, p.dst, nil)
	if err != nil || !slices.Equal(to, []uint32{3}) {
		t.Fatalf("move back: %v, %v; want UID 3", to, err)
	}
	if msg, ok := p.dst.Lookup(x); !ok || msg.UID != 3 {
		t.Errorf("target state: %+v, want %s under UID 3", msg, x)
	}
	if pd := watch.Take(); !slices.Equal(pd.Expunged, []uint32{1}) || !slices.Equal(uids(pd.New), []uint32{3}) {
		t.Errorf("the target's session was told %+v, want UID 1 gone and UID 3 new", pd)
	}
}
