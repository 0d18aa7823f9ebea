package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/maildir"
)

// sansModSeq returns msgs with ModSeq cleared: two Mailbox instances (two
// processes) agree on UIDs and flags, and each stamps its own modseqs.
func sansModSeq(msgs []Message) []Message {
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		m.ModSeq = 0
		out[i] = m
	}
	return out
}

// frozenClock makes the time floor's clock stand still at c (a clock
// that does not help: only the mark can keep modseqs from going back),
// and makes waits for it no-ops.
func frozenClock(t *testing.T, c uint64) {
	clock, sleep := modseqClock, modseqSleep
	modseqClock = func() uint64 { return c }
	modseqSleep = func(time.Duration) {}
	t.Cleanup(func() { modseqClock, modseqSleep = clock, sleep })
}

// withoutMark and withoutFloor switch the mark or the floor off for the
// Mailboxes opened until the test ends.
func withoutMark(t *testing.T) {
	testModSeqNoMark = true
	t.Cleanup(func() { testModSeqNoMark = false })
}

func withoutFloor(t *testing.T) {
	testModSeqNoFloor = true
	t.Cleanup(func() { testModSeqNoFloor = false })
}

// maxModSeqOf is the highest of HighestModSeq and every message's ModSeq.
func maxModSeqOf(mb *Mailbox) uint64 {
	h := mb.HighestModSeq()
	for _, msg := range mb.Messages() {
		h = max(h, msg.ModSeq)
	}
	return h
}

// above checks that the mailbox's HIGHESTMODSEQ, every message's modseq
// and the next change's are above told.
func above(t *testing.T, mb *Mailbox, told uint64) error {
	t.Helper()
	if h := mb.HighestModSeq(); h <= told {
		return fmt.Errorf("HIGHESTMODSEQ %d, not above %d told before", h, told)
	}
	for _, msg := range mb.Messages() {
		if msg.ModSeq <= told {
			return fmt.Errorf("UID %d has modseq %d, not above %d told before", msg.UID, msg.ModSeq, told)
		}
	}
	return nextAbove(t, mb, told)
}

// nextAbove checks that the next change's modseq is above told.
func nextAbove(t *testing.T, mb *Mailbox, told uint64) error {
	t.Helper()
	out, err := mb.SetFlags(context.Background(), []uint32{mb.Messages()[0].UID}, flagop.Add, flagsOf("F"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].ModSeq <= told || mb.HighestModSeq() != out[0].ModSeq {
		return fmt.Errorf("a change after the reopen got modseq %+v, HIGHESTMODSEQ %d; told before %d", out, mb.HighestModSeq(), told)
	}
	return nil
}

// work makes a few changes of ours and returns the highest modseq told.
func work(t *testing.T, mb *Mailbox, n int) uint64 {
	t.Helper()
	ctx := context.Background()
	msgs := mb.Messages()
	for i := 0; i < n; i++ {
		uid := msgs[i%len(msgs)].UID
		op := flagop.Add
		if i%2 == 1 {
			op = flagop.Remove
		}
		if _, err := mb.SetFlags(ctx, []uint32{uid}, op, flagsOf("S"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
	return maxModSeqOf(mb)
}

// modseqScenarios are the ways modseqs could go back; each returns what
// went back, or nil. The clock may be frozen by the caller: then only the
// mark keeps them.
var modseqScenarios = []struct {
	name string
	run  func(t *testing.T) error
}{
	{"restart", func(t *testing.T) error {
		f, _, a := opened(t, 3, Options{})
		told := work(t, a, 10)
		a.Close()
		return reopenedAbove(t, f, Options{}, told)
	}},
	{"crash", func(t *testing.T) error {
		f, _, a := opened(t, 3, Options{})
		told := work(t, a, 5)
		// The process dies with a reserved block half used: the state in
		// memory is gone, the mark stays. Then it comes back without
		// having closed anything.
		a.lockWriter()
		a.ms = modseqCounter{disabled: a.ms.disabled, floorOff: a.ms.floorOff}
		a.unlockWriter()
		if err := nextAbove(t, a, told); err != nil {
			return fmt.Errorf("after the counter was dropped: %w", err)
		}
		told = maxModSeqOf(a)
		return reopenedAbove(t, f, Options{}, told) // a was never closed
	}},
	{"index deleted", func(t *testing.T) error { return indexScenario(t, os.Remove) }},
	{"index corrupt", func(t *testing.T) error {
		return indexScenario(t, func(path string) error { return os.WriteFile(path, []byte("not a bbolt file at all"), 0o600) })
	}},
	{"foreign changes between two opens", func(t *testing.T) error {
		f, bs, a := opened(t, 4, Options{})
		told := work(t, a, 6)
		uidOf := map[string]uint32{}
		for _, msg := range a.Messages() {
			uidOf[msg.Base] = msg.UID
		}
		a.Close()
		// Dovecot (or any program) serves the tree meanwhile: a flag
		// change, a delivery, an expunge.
		f.rename(bs[0], "FS")
		f.put(maildir.New, "")
		f.remove(bs[1])
		b := f.open(Options{})
		defer b.Close()
		sync1(t, b)
		if got := b.ExpungedSince(told); !inRanges(got, uidOf[bs[1]]) {
			return fmt.Errorf("ExpungedSince(%d) = %v lacks UID %d, deleted meanwhile", told, got, uidOf[bs[1]])
		}
		return above(t, b, told)
	}},
	{"restore from backup", func(t *testing.T) error {
		f, _, a := opened(t, 3, Options{})
		work(t, a, 3)
		backup := filepath.Join(t.TempDir(), "backup")
		copyTree(t, f.dir, backup)
		// More changes after the backup, from a block reserved since (as
		// after modseqBlock changes); then the mail and the mark go back
		// in time.
		a.lockWriter()
		a.ms.limit = a.ms.next
		a.unlockWriter()
		told := work(t, a, 5)
		a.Close()
		if err := os.RemoveAll(f.dir); err != nil {
			t.Fatal(err)
		}
		copyTree(t, backup, f.dir)
		return reopenedAbove(t, f, Options{}, told)
	}},
}

// indexScenario: an index with the mailbox's cache, then lost by damage,
// then a reopen.
func indexScenario(t *testing.T, damage func(path string) error) error {
	path := filepath.Join(t.TempDir(), "index.db")
	ix, err := OpenIndex(path, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	f, _, a := opened(t, 3, Options{Index: ix})
	told := work(t, a, 5)
	a.Close()
	ix.Close()
	if err := damage(path); err != nil {
		t.Fatal(err)
	}
	ix, err = OpenIndex(path, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	return reopenedAbove(t, f, Options{Index: ix}, told)
}

// opened makes a Maildir with n messages in new/ and opens and syncs
// it: the start of each scenario.
func opened(t *testing.T, n int, opts Options) (*fixture, []string, *Mailbox) {
	t.Helper()
	f := newFixture(t)
	bases := make([]string, n)
	for i := range bases {
		bases[i] = f.put(maildir.New, "")
	}
	mb := f.open(opts)
	sync1(t, mb)
	return f, bases, mb
}

// reopenedAbove opens the fixture's Maildir again, syncs it, and checks
// that every modseq is above told (above).
func reopenedAbove(t *testing.T, f *fixture, opts Options, told uint64) error {
	t.Helper()
	mb := f.open(opts)
	defer mb.Close()
	sync1(t, mb)
	return above(t, mb, told)
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v: %s", from, to, err, out)
	}
}

func inRanges(rs []UIDRange, uid uint32) bool {
	return slices.ContainsFunc(rs, func(r UIDRange) bool { return r.Lo <= uid && uid <= r.Hi })
}

// TestModSeqsNeverGoBack: restart, crash, index deleted or corrupt,
// foreign changes between two runs, restore from backup; each with the
// real clock, and each but the restore with a clock that stands still
// (the mark alone).
func TestModSeqsNeverGoBack(t *testing.T) {
	for _, sc := range modseqScenarios {
		t.Run(sc.name, func(t *testing.T) {
			if err := sc.run(t); err != nil {
				t.Fatal(err)
			}
		})
		if sc.name == "restore from backup" {
			continue // the mark went back: the floor is what holds
		}
		t.Run(sc.name+", clock stands still", func(t *testing.T) {
			frozenClock(t, uint64(time.Now().UnixMicro()))
			if err := sc.run(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestModSeqTestsCanFail shows that each scenario catches what it is
// about: without the mark (and a clock standing still) every one but the
// restore fails, and without the floor the restore fails.
func TestModSeqTestsCanFail(t *testing.T) {
	for _, sc := range modseqScenarios {
		t.Run(sc.name, func(t *testing.T) {
			if sc.name == "restore from backup" {
				withoutFloor(t)
			} else {
				withoutMark(t)
				frozenClock(t, uint64(time.Now().UnixMicro()))
			}
			err := sc.run(t)
			if err == nil {
				t.Fatal("modseqs did not go back without the mark (or the floor): the scenario tests nothing")
			}
			t.Logf("without it, as expected: %v", err)
		})
	}
}

// TestModSeqClockBack: the clock goes back an hour between two runs; the
// mark keeps modseqs going up, and that is logged.
func TestModSeqClockBack(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.New, "")
	now := uint64(time.Now().UnixMicro())
	frozenClock(t, now)
	a := f.open(Options{})
	sync1(t, a)
	told := work(t, a, 3)
	a.Close()
	modseqClock = func() uint64 { return now - uint64(time.Hour/time.Microsecond) }
	b := f.open(Options{})
	defer b.Close()
	sync1(t, b)
	if err := above(t, b, told); err != nil {
		t.Fatal(err)
	}
	if !b.ms.clockLogged {
		t.Fatal("a clock an hour behind the counter was not logged")
	}
}

// TestModSeqEveryChange: every source of a change raises HIGHESTMODSEQ
// and stamps the message with it, strictly above the one before, and
// the subscribers hear the new modseqs.
func TestModSeqEveryChange(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	b1 := f.put(maildir.New, "")
	b2 := f.put(maildir.New, "")
	mb := f.open(Options{})
	defer mb.Close()
	sync1(t, mb)
	sub := mb.Subscribe()
	defer sub.Close()
	last := mb.HighestModSeq()
	if last == 0 {
		t.Fatal("no HIGHESTMODSEQ after the first sync")
	}
	for _, msg := range mb.Messages() {
		if msg.ModSeq != last {
			t.Fatalf("first sync: UID %d modseq %d, want the starting value %d", msg.UID, msg.ModSeq, last)
		}
	}
	step := func(what string, uid uint32) {
		t.Helper()
		h := mb.HighestModSeq()
		if h <= last {
			t.Fatalf("%s: HIGHESTMODSEQ %d, not above %d", what, h, last)
		}
		if uid != 0 {
			msg, ok := mb.LookupUID(uid)
			if !ok || msg.ModSeq != h {
				t.Fatalf("%s: UID %d modseq %d, HIGHESTMODSEQ %d", what, uid, msg.ModSeq, h)
			}
		}
		p := sub.Take()
		if p.HighestModSeq != h {
			t.Fatalf("%s: subscriber heard HIGHESTMODSEQ %d, want %d", what, p.HighestModSeq, h)
		}
		for _, msg := range append(p.New, p.Flags...) {
			if msg.ModSeq != h {
				t.Fatalf("%s: subscriber heard UID %d at modseq %d, want %d", what, msg.UID, msg.ModSeq, h)
			}
		}
		last = h
	}
	// STORE.
	first := last
	if _, err := mb.SetFlags(ctx, []uint32{1}, flagop.Add, flagsOf("F"), nil); err != nil {
		t.Fatal(err)
	}
	step("STORE", 1)
	// A foreign rename found by a sync.
	afterStore := last
	f.rename(b2, "S")
	sync1(t, mb)
	step("foreign rename", 2)
	// ChangedSince lists exactly the messages changed since.
	changed := func(since uint64) []uint32 {
		var out []uint32
		for _, m := range mb.ChangedSince(since) {
			out = append(out, m.UID)
		}
		return out
	}
	if got := changed(first); !slices.Equal(got, []uint32{1, 2}) {
		t.Fatalf("ChangedSince(%d) = UIDs %v, want [1 2]", first, got)
	}
	if got := changed(afterStore); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("ChangedSince(%d) = UIDs %v, want [2]", afterStore, got)
	}
	if got := changed(last); len(got) != 0 {
		t.Fatalf("ChangedSince(HIGHESTMODSEQ) = UIDs %v, want none", got)
	}
	// A delivery found by a sync.
	f.put(maildir.New, "")
	sync1(t, mb)
	step("delivery", 3)
	// APPEND.
	app, err := mb.Append(ctx, strings.NewReader("Subject: x\r\n\r\nx\r\n"), 0, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	step("APPEND", app.UID)
	// EXPUNGE of ours, then one found by a sync.
	before := mb.HighestModSeq()
	if _, err := mb.Expunge(ctx, []uint32{3}, nil); err != nil {
		t.Fatal(err)
	}
	step("EXPUNGE", 0)
	f.remove(b1)
	sync1(t, mb)
	step("foreign expunge", 0)
	if got := mb.ExpungedSince(before); !inRanges(got, 1) || !inRanges(got, 3) || inRanges(got, 2) || inRanges(got, app.UID) {
		t.Fatalf("ExpungedSince(%d) = %v, want 1 and 3, not 2 or %d", before, got, app.UID)
	}
	if got := mb.ExpungedSince(mb.HighestModSeq()); len(got) != 0 {
		t.Fatalf("ExpungedSince(HIGHESTMODSEQ) = %v, want none", got)
	}
	// A sync that finds nothing raises nothing.
	h := mb.HighestModSeq()
	sync1(t, mb)
	if mb.HighestModSeq() != h {
		t.Fatalf("a sync that found nothing raised HIGHESTMODSEQ %d -> %d", h, mb.HighestModSeq())
	}
}

// TestModSeqTwoServers: two Mailboxes on one directory (two servers on
// one tree) changing the same messages at once never hand out one modseq
// twice. Without the mark (and a clock standing still) they do.
func TestModSeqTwoServers(t *testing.T) {
	t.Run("mark", func(t *testing.T) {
		if dup := twoServers(t); dup != 0 {
			t.Fatalf("modseq %d handed out by both servers", dup)
		}
	})
	t.Run("without the mark", func(t *testing.T) {
		withoutMark(t)
		frozenClock(t, uint64(time.Now().UnixMicro()))
		if dup := twoServers(t); dup == 0 {
			t.Fatal("no modseq handed out twice without the mark: the test tests nothing")
		}
	})
}

// twoServers runs the two servers and returns a modseq both handed out
// (0: none).
func twoServers(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	f := newFixture(t)
	for range 8 {
		f.put(maildir.New, "")
	}
	var mbs [2]*Mailbox
	for i := range mbs {
		mbs[i] = f.open(Options{})
		defer mbs[i].Close()
		sync1(t, mbs[i])
	}
	var hmu sync.Mutex
	given := map[uint64]*Mailbox{}
	var dup uint64
	testHookModSeq = func(m *Mailbox, v uint64) {
		hmu.Lock()
		defer hmu.Unlock()
		if o, ok := given[v]; ok && o != m && dup == 0 {
			dup = v
		}
		given[v] = m
	}
	defer func() { testHookModSeq = nil }()
	// Each server starts again with a fresh block from the same mark.
	for _, mb := range mbs {
		mb.lockWriter()
		mb.ms.next, mb.ms.limit = 0, 0
		mb.unlockWriter()
	}
	var wg sync.WaitGroup
	for i, mb := range mbs {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for range 150 {
				uid := uint32(rng.IntN(8) + 1)
				op := []flagop.Op{flagop.Add, flagop.Remove}[rng.IntN(2)]
				_, err := mb.SetFlags(ctx, []uint32{uid}, op, flagsOf("F"), nil)
				if err != nil && !errors.Is(err, ErrNoSuchMessage) {
					t.Error(err)
					return
				}
				if rng.IntN(10) == 0 {
					if _, err := mb.Sync(ctx); err != nil {
						t.Error(err)
						return
					}
				}
				if rng.IntN(50) == 0 {
					// A new block, as after many changes.
					mb.lockWriter()
					mb.ms.limit = mb.ms.next
					mb.unlockWriter()
				}
			}
		}()
	}
	wg.Wait()
	return dup
}

// TestExpungedSinceExact: through a mailbox, ExpungedSince of every modseq
// told holds every UID expunged since, and no UID of a message that is
// there; expunges that do not touch are reported exactly.
func TestExpungedSinceExact(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for range 60 {
		f.put(maildir.New, "")
	}
	mb := f.open(Options{})
	defer mb.Close()
	sync1(t, mb)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	type event struct {
		modseq uint64
		uids   []uint32
	}
	var told []uint64
	var events []event
	for range 6 {
		told = append(told, mb.HighestModSeq())
		live := uids(mb.Messages())
		// Every other UID at most: no two expunged in one step touch.
		var pick []uint32
		for i := rng.IntN(2); i < len(live); i += 2 + rng.IntN(6) {
			pick = append(pick, live[i])
		}
		if len(pick) == 0 {
			break
		}
		if _, err := mb.Expunge(ctx, pick, nil); err != nil {
			t.Fatal(err)
		}
		events = append(events, event{mb.HighestModSeq(), pick})
		if _, err := mb.SetFlags(ctx, []uint32{uids(mb.Messages())[0]}, flagop.Add, flagsOf("S"), nil); err != nil {
			t.Fatal(err)
		}
	}
	live := map[uint32]bool{}
	for _, u := range uids(mb.Messages()) {
		live[u] = true
	}
	for _, n := range told {
		got := mb.ExpungedSince(n)
		want := map[uint32]bool{}
		for _, e := range events {
			if e.modseq > n {
				for _, u := range e.uids {
					want[u] = true
				}
			}
		}
		for u := range want {
			if !inRanges(got, u) {
				t.Fatalf("ExpungedSince(%d) = %v lacks UID %d", n, got, u)
			}
		}
		for _, r := range got {
			for u := r.Lo; u <= r.Hi; u++ {
				if live[u] {
					t.Fatalf("ExpungedSince(%d) = %v holds UID %d, which is there", n, got, u)
				}
			}
		}
	}
	// Before the first sync's modseq: everything that is not there.
	if got := mb.ExpungedSince(told[0] - 1); len(got) == 0 || inRanges(got, uids(mb.Messages())[0]) {
		t.Fatalf("ExpungedSince before the state's first modseq = %v", got)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestExpungeLogBound: a million expunges cost a bounded number of
// ranges: one when they touch, at most maxExpungeRanges when none does;
// what is kept still answers every modseq at or above the floor with
// every UID expunged since.
func TestExpungeLogBound(t *testing.T) {
	var l expungeLog
	l.floor = 1
	for u := uint32(1); u <= 1_000_000; u++ {
		l.add([]uint32{u}, uint64(u)+1)
	}
	if len(l.ranges) != 1 || l.ranges[0] != (expungeRange{1, 1_000_000, 1_000_001}) {
		t.Fatalf("a million touching expunges: %d ranges, first %+v", len(l.ranges), l.ranges[0])
	}
	var s expungeLog
	s.floor = 1
	const n = 1_000_000
	for i := uint32(0); i < n; i++ {
		u := 2*i + 1 // every other UID: none touches
		s.add([]uint32{u}, uint64(i)+2)
		if len(s.ranges) > maxExpungeRanges {
			t.Fatalf("%d ranges after %d expunges, bound %d", len(s.ranges), i+1, maxExpungeRanges)
		}
	}
	if s.floor <= 1 || cap(s.ranges) > 2*maxExpungeRanges {
		t.Fatalf("floor %d, capacity %d", s.floor, cap(s.ranges))
	}
	for _, q := range []uint64{s.floor, s.floor + 1, n - 10, n + 1} {
		got := s.since(q)
		for i := uint32(0); i < n; i++ {
			if uint64(i)+2 > q && !inRanges(got, 2*i+1) {
				t.Fatalf("since(%d) lacks UID %d", q, 2*i+1)
			}
		}
		for _, r := range got {
			if r.Lo%2 == 0 || r.Hi%2 == 0 {
				t.Fatalf("since(%d) holds an even UID, never expunged: %+v", q, r)
			}
		}
	}
}

// TestModSeqMark: the mark's format, a damaged mark read as none, and
// the file that a Maildir gets.
func TestModSeqMark(t *testing.T) {
	for _, c := range []struct {
		in string
		h  uint64
		ok bool
	}{{"1 42\n", 42, true}, {"1 42", 0, false}, {"", 0, false}, {"2 42\n", 0, false}, {"1 x\n", 0, false}, {"1 9223372036854775808\n", 0, false}} {
		if h, ok := parseMark([]byte(c.in)); h != c.h || ok != c.ok {
			t.Errorf("parseMark(%q) = %d %v, want %d %v", c.in, h, ok, c.h, c.ok)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ModSeqFileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	lo, hi, err := reserveMark(dir, 100, 10)
	if err != nil || lo != 100 || hi != 110 {
		t.Fatalf("a damaged mark: %d %d %v", lo, hi, err)
	}
	if lo, hi, err = reserveMark(dir, 5, 10); err != nil || lo != 110 || hi != 120 {
		t.Fatalf("next: %d %d %v", lo, hi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ModSeqFileName)); string(b) != "1 120\n" {
		t.Fatalf("mark %q", b)
	}
}

// TestTakeGivesTheNewerVersion: a change already in the state but not yet
// published (its writer let go of mu to take a modseq) may have been read
// by the subscriber's owner (a FETCH); Take then gives that version, not
// the older pending one, so that the owner never tells a client flags and
// a MODSEQ older than it told before.
func TestTakeGivesTheNewerVersion(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.put(maildir.New, "")
	mb := f.open(Options{})
	defer mb.Close()
	sync1(t, mb)
	sub := mb.Subscribe()
	defer sub.Close()
	if _, err := mb.SetFlags(ctx, []uint32{1}, flagop.Add, flagsOf("F"), nil); err != nil {
		t.Fatal(err)
	}
	published, _ := mb.LookupUID(1)
	// The next change, as its writer leaves it while it takes a modseq:
	// in the state, not published.
	mb.mu.Lock()
	e := mb.byUID(1)
	e.flags, e.modseq = flagsOf("FS"), published.ModSeq+1
	mb.mu.Unlock()
	p := sub.Take()
	if len(p.Flags) != 1 || p.Flags[0].ModSeq != published.ModSeq+1 || p.Flags[0].Flags != flagsOf("FS") {
		t.Fatalf("Take gave %+v, want UID 1 at modseq %d with flags FS (the state's version)", p.Flags, published.ModSeq+1)
	}
}
