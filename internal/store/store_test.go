package store

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

type fixture struct {
	t   *testing.T
	dir string
	n   int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Maildir")
	if err := maildir.Create(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, dir: dir}
}

// put writes a message file directly, as a foreign program would, and
// returns its base name.
func (f *fixture) put(sub, flags string) string {
	f.t.Helper()
	f.n++
	base := fmt.Sprintf("17000000%02d.M%dP99Q%d.test,S=20,W=21", f.n, f.n, f.n)
	name := base
	if sub == maildir.Cur {
		name = base + ":2," + flags
	}
	if err := os.WriteFile(filepath.Join(f.dir, sub, name), []byte(fmt.Sprintf("Subject: %d\n\nbody\n", f.n)), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return base
}

// find returns the sub and file name of base on disk.
func (f *fixture) find(base string) (string, string) {
	f.t.Helper()
	for _, sub := range []string{maildir.New, maildir.Cur} {
		names, err := readNames(filepath.Join(f.dir, sub))
		if err != nil {
			f.t.Fatal(err)
		}
		for _, n := range names {
			if maildir.BaseName(n) == base {
				return sub, n
			}
		}
	}
	f.t.Fatalf("%s not on disk", base)
	return "", ""
}

func (f *fixture) rename(base, flags string) {
	f.t.Helper()
	sub, name := f.find(base)
	if err := os.Rename(filepath.Join(f.dir, sub, name), filepath.Join(f.dir, maildir.Cur, base+":2,"+flags)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) remove(base string) {
	f.t.Helper()
	sub, name := f.find(base)
	if err := os.Remove(filepath.Join(f.dir, sub, name)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) open(opts Options) *Mailbox {
	f.t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(f.t)
	}
	mb, err := Open(f.dir, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return mb
}

// testLogger logs through t.Log, so that a failing test shows what the
// store said.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// sync syncs and checks every invariant after it.
func sync1(t *testing.T, mb *Mailbox) *Changes {
	t.Helper()
	ch, err := mb.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
	return ch
}

func uids(ms []Message) []uint32 {
	out := make([]uint32, len(ms))
	for i, m := range ms {
		out[i] = m.UID
	}
	return out
}

func bases(ms []Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Base
	}
	return out
}

func TestSyncAssignsUIDs(t *testing.T) {
	f := newFixture(t)
	var want []string
	for i := 0; i < 4; i++ {
		want = append(want, f.put(maildir.New, ""))
	}
	for i := 0; i < 3; i++ {
		want = append(want, f.put(maildir.Cur, "FS"))
	}
	mb := f.open(Options{})
	ch := sync1(t, mb)
	if !slices.Equal(uids(ch.New), []uint32{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("new UIDs %v", uids(ch.New))
	}
	if !slices.Equal(bases(ch.New), want) { // assigned in base-name order
		t.Fatalf("new bases %v, want %v", bases(ch.New), want)
	}
	if ch.Assigned != 7 || !ch.NewProof.Proven() || !ch.CurProof.Proven() {
		t.Fatalf("changes %+v", ch)
	}
	if ch.New[6].Flags.String() != "FS" || ch.New[0].Sub != maildir.New {
		t.Fatalf("messages %+v", ch.New)
	}
	if mb.UIDValidity() == 0 || mb.NextUID() != 8 {
		t.Fatalf("uidvalidity %d next %d", mb.UIDValidity(), mb.NextUID())
	}
	if err := mb.CheckFiles(); err != nil {
		t.Fatal(err)
	}
	// Nothing changed: nothing reported, and the cheap check skips the read.
	ch = sync1(t, mb)
	if !ch.Empty() || !ch.Skipped {
		t.Fatalf("second sync: %+v", ch)
	}
}

func TestSyncFlagsMovesAndExpunges(t *testing.T) {
	f := newFixture(t)
	a, b, c := f.put(maildir.New, ""), f.put(maildir.Cur, "S"), f.put(maildir.Cur, "")
	mb := f.open(Options{})
	sync1(t, mb)

	f.rename(a, "") // new/ -> cur/, no flags: a move, not a flag change
	f.rename(b, "RS")
	f.remove(c)
	ch := sync1(t, mb)
	if len(ch.Flags) != 1 || ch.Flags[0].Base != b || ch.Flags[0].Flags.String() != "RS" {
		t.Fatalf("flag changes %+v", ch.Flags)
	}
	if len(ch.Expunged) != 1 || ch.Expunged[0].Base != c || ch.Expunged[0].UID != 3 {
		t.Fatalf("expunged %+v", ch.Expunged)
	}
	if len(ch.New) != 0 || ch.Suspects != 0 {
		t.Fatalf("changes %+v", ch)
	}
	m, ok := mb.Lookup(a)
	if !ok || m.Sub != maildir.Cur || m.UID != 1 {
		t.Fatalf("moved message %+v", m)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Fatal(err)
	}
}

// TestExpungeRule: a message missing from listings that carry no proof is
// a suspect, never an expunge; when it is seen again it keeps its UID;
// when a proven listing lacks it, it is expunged.
func TestExpungeRule(t *testing.T) {
	f := newFixture(t)
	a, b := f.put(maildir.Cur, "S"), f.put(maildir.Cur, "")
	caps := maildir.Capabilities{FSType: "test"} // no proof at all
	mb := f.open(Options{Caps: &caps})
	sync1(t, mb)

	// Hide a, as a listing that skipped it would.
	sub, name := f.find(a)
	hidden := filepath.Join(f.dir, "hidden")
	if err := os.Rename(filepath.Join(f.dir, sub, name), hidden); err != nil {
		t.Fatal(err)
	}
	ch := sync1(t, mb)
	if len(ch.Expunged) != 0 || ch.Suspects != 1 {
		t.Fatalf("unproven listing: expunged %+v suspects %d", ch.Expunged, ch.Suspects)
	}
	if m, _ := mb.Lookup(a); !m.Suspect || m.UID != 1 {
		t.Fatalf("suspect %+v", m)
	}
	// Back again: no news, same UID.
	if err := os.Rename(hidden, filepath.Join(f.dir, sub, name)); err != nil {
		t.Fatal(err)
	}
	ch = sync1(t, mb)
	if !ch.Empty() || ch.Suspects != 0 {
		t.Fatalf("reappeared: %+v", ch)
	}
	if m, _ := mb.Lookup(a); m.Suspect || m.UID != 1 {
		t.Fatalf("after reappearing %+v", m)
	}

	// Really gone, but unproven: still waiting; proven: expunged.
	f.remove(b)
	for i := 0; i < 3; i++ {
		if ch = sync1(t, mb); len(ch.Expunged) != 0 || ch.Suspects != 1 {
			t.Fatalf("unproven sync %d: %+v", i, ch)
		}
	}
	caps.AtomicRead = true
	ch = sync1(t, mb)
	if len(ch.Expunged) != 1 || ch.Expunged[0].Base != b || ch.Suspects != 0 {
		t.Fatalf("proven sync: %+v", ch)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Fatal(err)
	}
}

// TestTwoMailboxesShareUIDs: two syncers (as two processes would) agree
// on every UID, whichever assigns it.
func TestTwoMailboxesShareUIDs(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 5; i++ {
		f.put(maildir.New, "")
	}
	a, b := f.open(Options{}), f.open(Options{})
	sync1(t, a)
	chB := sync1(t, b)
	if chB.Assigned != 0 || len(chB.New) != 5 {
		t.Fatalf("second mailbox assigned %d, saw %d new", chB.Assigned, len(chB.New))
	}
	x := f.put(maildir.Cur, "S")
	chB = sync1(t, b) // b assigns this time
	chA := sync1(t, a)
	if chB.Assigned != 1 || chA.Assigned != 0 || chA.New[0].UID != chB.New[0].UID || chA.New[0].Base != x {
		t.Fatalf("a %+v b %+v", chA.New, chB.New)
	}
	if !slices.Equal(sansModSeq(a.Messages()), sansModSeq(b.Messages())) {
		t.Fatalf("states differ:\n%+v\n%+v", a.Messages(), b.Messages())
	}
	// A third one opened later reads the same map from dovecot-uidlist.
	c := f.open(Options{})
	sync1(t, c)
	if !slices.Equal(sansModSeq(a.Messages()), sansModSeq(c.Messages())) {
		t.Fatalf("states differ:\n%+v\n%+v", a.Messages(), c.Messages())
	}
}

// TestConcurrentSyncers: several mailboxes sync concurrently while
// messages arrive; no base name gets two UIDs and no UID two base names.
func TestConcurrentSyncers(t *testing.T) {
	f := newFixture(t)
	const syncers, deliveries = 4, 200
	mbs := make([]*Mailbox, syncers)
	for i := range mbs {
		mbs[i] = f.open(Options{})
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, syncers)
	for _, mb := range mbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := mb.Sync(context.Background()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var gen maildir.NameGen
	for i := 0; i < deliveries; i++ {
		if _, err := maildir.Deliver(f.dir, strings.NewReader("Subject: x\n\nx\n"), maildir.DeliverOptions{Gen: &gen}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, mb := range mbs {
		sync1(t, mb)
		if err := mb.CheckFiles(); err != nil {
			t.Fatal(err)
		}
		if got := len(mb.Messages()); got != deliveries {
			t.Fatalf("%d messages, want %d", got, deliveries)
		}
		if !slices.Equal(sansModSeq(mb.Messages()), sansModSeq(mbs[0].Messages())) {
			t.Fatal("syncers disagree")
		}
	}
	if last := mbs[0].Messages()[deliveries-1].UID; last != deliveries {
		t.Fatalf("last UID %d: UIDs were wasted or duplicated", last)
	}
}

func TestAdoptsDovecotUIDList(t *testing.T) {
	f := newFixture(t)
	a, b, c := f.put(maildir.Cur, "S"), f.put(maildir.Cur, ""), f.put(maildir.New, "")
	list := fmt.Sprintf("3 V1234567 N40 G0123456789abcdef0123456789abcdef\n7 W21 :%s\n12 :%s:2,S\n", a, b)
	if err := os.WriteFile(filepath.Join(f.dir, uidlist.FileName), []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	mb := f.open(Options{})
	ch := sync1(t, mb)
	got := map[string]uint32{}
	for _, m := range ch.New {
		got[m.Base] = m.UID
	}
	if got[a] != 7 || got[b] != 12 || got[c] != 40 || mb.UIDValidity() != 1234567 {
		t.Fatalf("UIDs %v uidvalidity %d", got, mb.UIDValidity())
	}
	data, _ := os.ReadFile(filepath.Join(f.dir, uidlist.FileName))
	if !bytes.HasPrefix(data, []byte(list)) {
		t.Fatalf("existing records were rewritten:\n%s", data)
	}
}

func TestImportsCourierUIDs(t *testing.T) {
	f := newFixture(t)
	a, b := f.put(maildir.Cur, "S"), f.put(maildir.Cur, "")
	courier := fmt.Sprintf("1 987654 10\n3 %s:2,S\n8 %s\n", a, b)
	if err := os.WriteFile(filepath.Join(f.dir, uidlist.CourierFileName), []byte(courier), 0o600); err != nil {
		t.Fatal(err)
	}
	c := f.put(maildir.New, "")
	mb := f.open(Options{})
	ch := sync1(t, mb)
	got := map[string]uint32{}
	for _, m := range ch.New {
		got[m.Base] = m.UID
	}
	if got[a] != 3 || got[b] != 8 || got[c] != 10 || mb.UIDValidity() != 987654 {
		t.Fatalf("UIDs %v uidvalidity %d", got, mb.UIDValidity())
	}
}

// TestDamagedUIDList: damaged lines are skipped, every valid UID is kept
// and the next UID is never lowered.
func TestDamagedUIDList(t *testing.T) {
	f := newFixture(t)
	a, b, c := f.put(maildir.Cur, ""), f.put(maildir.Cur, ""), f.put(maildir.Cur, "")
	list := fmt.Sprintf("3 V55 N3 G0123456789abcdef0123456789abcdef\n5 :%s\n\x00garbage line\nnotanumber :x\n9 :%s\n", a, b)
	if err := os.WriteFile(filepath.Join(f.dir, uidlist.FileName), []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	mb := f.open(Options{})
	ch := sync1(t, mb)
	got := map[string]uint32{}
	for _, m := range ch.New {
		got[m.Base] = m.UID
	}
	if got[a] != 5 || got[b] != 9 || got[c] != 10 {
		t.Fatalf("UIDs %v", got)
	}
}

func TestUIDValidityChange(t *testing.T) {
	f := newFixture(t)
	a := f.put(maildir.Cur, "")
	mb := f.open(Options{})
	sync1(t, mb)
	old := mb.UIDValidity()
	list := fmt.Sprintf("3 V%d N2 G0123456789abcdef0123456789abcdef\n1 :%s\n", old+5, a)
	if err := os.WriteFile(filepath.Join(f.dir, uidlist.FileName+".new"), []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(f.dir, uidlist.FileName+".new"), filepath.Join(f.dir, uidlist.FileName)); err != nil {
		t.Fatal(err)
	}
	ch := sync1(t, mb)
	if !ch.UIDValidityChanged || len(ch.New) != 1 || len(ch.Expunged) != 1 || mb.UIDValidity() != old+5 {
		t.Fatalf("changes %+v", ch)
	}
}

// TestUIDListVanished: a deleted uidlist is rebuilt from the state with
// the same UIDVALIDITY, so no client loses its cache.
func TestUIDListVanished(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	f.put(maildir.New, "")
	mb := f.open(Options{})
	sync1(t, mb)
	before := mb.Messages()
	if err := os.Remove(filepath.Join(f.dir, uidlist.FileName)); err != nil {
		t.Fatal(err)
	}
	f.put(maildir.New, "")
	ch := sync1(t, mb)
	if len(ch.New) != 1 || ch.New[0].UID != 3 || ch.UIDValidityChanged {
		t.Fatalf("changes %+v", ch)
	}
	other := f.open(Options{})
	sync1(t, other)
	if !slices.Equal(sansModSeq(other.Messages()[:2]), sansModSeq(before)) || other.UIDValidity() != mb.UIDValidity() {
		t.Fatal("rebuilt uidlist gives other UIDs")
	}
}

func TestDuplicateBaseNames(t *testing.T) {
	f := newFixture(t)
	a := f.put(maildir.Cur, "S")
	mb := f.open(Options{})
	sync1(t, mb)
	_, name := f.find(a)
	orig := filepath.Join(f.dir, maildir.Cur, name)

	t.Run("hard link", func(t *testing.T) {
		link := filepath.Join(f.dir, maildir.Cur, a+":2,FS")
		if err := os.Link(orig, link); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(link)
		ch := sync1(t, mb)
		if len(ch.New) != 0 || len(ch.Expunged) != 0 {
			t.Fatalf("changes %+v", ch)
		}
		if _, err := os.Stat(link); err != nil {
			t.Fatal("a hard link of the same message was removed")
		}
	})
	t.Run("identical copy", func(t *testing.T) {
		data, _ := os.ReadFile(orig)
		cp := filepath.Join(f.dir, maildir.Cur, a+":2,RS")
		if err := os.WriteFile(cp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ch := sync1(t, mb)
		if len(ch.New) != 0 || len(ch.Expunged) != 0 {
			t.Fatalf("changes %+v", ch)
		}
		if _, err := os.Stat(cp); err == nil {
			t.Fatal("identical copy still there")
		}
		if _, err := os.Stat(orig); err != nil {
			t.Fatal("original removed")
		}
	})
	t.Run("different content", func(t *testing.T) {
		other := filepath.Join(f.dir, maildir.Cur, a+":2,")
		if err := os.WriteFile(other, []byte("Subject: another message\n\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ch := sync1(t, mb)
		ch2 := sync1(t, mb)
		news := append(ch.New, ch2.New...)
		if len(news) != 1 || news[0].Base == a {
			t.Fatalf("the different message is not a new message under a new name: %+v %+v", ch, ch2)
		}
		data, err := os.ReadFile(filepath.Join(f.dir, news[0].Sub, news[0].Filename))
		if err != nil || string(data) != "Subject: another message\n\n" {
			t.Fatalf("renamed message: %q %v", data, err)
		}
		if m, _ := mb.Lookup(a); m.UID != 1 {
			t.Fatalf("original %+v", m)
		}
		if err := mb.CheckFiles(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestForeignFilesIgnored(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "S")
	for _, name := range []string{".hidden", "dovecot.index"} {
		os.WriteFile(filepath.Join(f.dir, maildir.Cur, name), nil, 0o600)
	}
	os.Mkdir(filepath.Join(f.dir, maildir.Cur, "subdir"), 0o700)
	mb := f.open(Options{})
	ch := sync1(t, mb)
	// "dovecot.index" is a valid Maildir name shape; only dot-files and
	// directories are not messages.
	if got := bases(ch.New); len(got) != 2 {
		t.Fatalf("new %v", got)
	}
}

// A file whose base name no uidlist line can hold (a newline, a trailing
// CR) is not a message: taking it in would make every later uidlist write
// of the mailbox fail.
func TestUnstorableNamesIgnored(t *testing.T) {
	f := newFixture(t)
	good := f.put(maildir.Cur, "S")
	for _, name := range []string{"abc\n", "x\ny:2,S", "\r", "abc\r:2,S"} {
		if err := os.WriteFile(filepath.Join(f.dir, maildir.Cur, name), []byte("Subject: x\n\nb\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mb := f.open(Options{})
	ch := sync1(t, mb)
	if got := bases(ch.New); !slices.Equal(got, []string{good}) {
		t.Fatalf("new %q, want only %q", got, good)
	}
	later := f.put(maildir.New, "")
	ch = sync1(t, mb)
	if got := bases(ch.New); !slices.Equal(got, []string{later}) {
		t.Fatalf("second sync: new %q, want %q", got, later)
	}
	mb2 := f.open(Options{})
	if got := uids(sync1(t, mb2).New); !slices.Equal(got, []uint32{1, 2}) {
		t.Fatalf("after reopening: UIDs %v, want [1 2]", got)
	}
}

// TestCheckFindsCorruption: Check is able to fail.
func TestCheckFindsCorruption(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	f.put(maildir.Cur, "")
	cases := []struct {
		name   string
		break_ func(m *Mailbox)
		want   string
	}{
		{"uid order", func(m *Mailbox) { m.msgs[1].uid = m.msgs[0].uid }, "ascending"},
		{"next uid", func(m *Mailbox) { m.nextUID = 1 }, "below the next UID"},
		{"index", func(m *Mailbox) { delete(m.byBase, m.msgs[0].base()) }, "indexed"},
		{"flags", func(m *Mailbox) { m.msgs[0].flags = m.msgs[0].flags.With('F') }, "flags"},
		{"suspects", func(m *Mailbox) { m.suspects = 3 }, "suspects"},
		{"uidlist", func(m *Mailbox) { m.msgs[1].uid = 9; m.nextUID = 10 }, "in dovecot-uidlist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mb := f.open(Options{})
			sync1(t, mb)
			tc.break_(mb)
			err := mb.Check()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check() = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func damagedCopies(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, uidlist.FileName+".damaged.*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestUnreadableUIDList: a uidlist of an unknown version gives no UID; it
// is kept as a copy and replaced, with a new UIDVALIDITY.
func TestUnreadableUIDList(t *testing.T) {
	f := newFixture(t)
	a := f.put(maildir.Cur, "S")
	bad := fmt.Sprintf("9 V1 N5\n3 :%s\n", a)
	if err := os.WriteFile(filepath.Join(f.dir, uidlist.FileName), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	mb := f.open(Options{})
	ch := sync1(t, mb)
	if len(ch.New) != 1 || mb.UIDValidity() <= 1 {
		t.Fatalf("changes %+v uidvalidity %d", ch, mb.UIDValidity())
	}
	copies := damagedCopies(t, f.dir)
	if len(copies) != 1 {
		t.Fatalf("copies %v", copies)
	}
	if data, _ := os.ReadFile(copies[0]); string(data) != bad {
		t.Fatalf("copy holds %q", data)
	}
}

// TestCompactionKeepsDamagedCopy: rewriting a uidlist with skipped lines
// (here to drop the records of vanished messages) keeps a copy first, and
// keeps every live record and the next UID.
func TestCompactionKeepsDamagedCopy(t *testing.T) {
	f := newFixture(t)
	live := f.put(maildir.Cur, "S")
	var b strings.Builder
	b.WriteString("3 V77 N1000 G0123456789abcdef0123456789abcdef\n")
	for i := 1; i <= 400; i++ {
		fmt.Fprintf(&b, "%d :1600000000.M%dP1.gone\n", i, i)
	}
	b.WriteString("this line is damage\n")
	fmt.Fprintf(&b, "500 :%s\n", live)
	if err := os.WriteFile(filepath.Join(f.dir, uidlist.FileName), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	mb := f.open(Options{})
	ch := sync1(t, mb)
	if len(ch.New) != 1 || ch.New[0].UID != 500 {
		t.Fatalf("changes %+v", ch)
	}
	if len(damagedCopies(t, f.dir)) != 1 {
		t.Fatal("no copy kept before rewriting over damage")
	}
	data, err := os.ReadFile(filepath.Join(f.dir, uidlist.FileName))
	if err != nil {
		t.Fatal(err)
	}
	file, problems, err := uidlist.Parse("x", data)
	if err != nil || len(problems) != 0 {
		t.Fatalf("rewritten uidlist: %v %v", err, problems)
	}
	if len(file.Records) != 1 || file.Records[0].UID != 500 || file.Header.NextUID < 1000 || file.Header.UIDValidity != 77 {
		t.Fatalf("rewritten uidlist: %+v", file)
	}
	f.put(maildir.New, "")
	if ch := sync1(t, mb); len(ch.New) != 1 || ch.New[0].UID != 1000 {
		t.Fatalf("next UID lowered: %+v", ch.New)
	}
}

// TestUIDValidityChangeDuringSync: the uidlist is replaced with another
// UIDVALIDITY between a sync's listings and its assignment of new UIDs.
// Every message, old and new, must come out of that sync with a UID of
// the new uidlist, and none of the old UIDs may survive.
func TestUIDValidityChangeDuringSync(t *testing.T) {
	f := newFixture(t)
	a, b := f.put(maildir.Cur, "S"), f.put(maildir.Cur, "")
	mb := f.open(Options{})
	sync1(t, mb)
	old := mb.UIDValidity()
	c := f.put(maildir.New, "")
	replaced := fmt.Sprintf("3 V%d N50 G0123456789abcdef0123456789abcdef\n40 :%s\n41 :%s\n", old+9, a, b)
	testHookBeforeAssignLock = func() {
		testHookBeforeAssignLock = nil
		path := filepath.Join(f.dir, uidlist.FileName)
		if err := os.WriteFile(path+".new", []byte(replaced), 0o600); err != nil {
			t.Error(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { testHookBeforeAssignLock = nil })
	ch := sync1(t, mb)
	if !ch.UIDValidityChanged || mb.UIDValidity() != old+9 {
		t.Fatalf("changes %+v", ch)
	}
	got := map[string]uint32{}
	for _, m := range mb.Messages() {
		got[m.Base] = m.UID
	}
	if len(got) != 3 || got[a] != 40 || got[b] != 41 || got[c] != 50 {
		t.Fatalf("UIDs after the change: %v", got)
	}
	if len(ch.New) != 3 || len(ch.Flags) != 0 {
		t.Fatalf("new %+v flags %+v", ch.New, ch.Flags)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCleansStaleTmp(t *testing.T) {
	f := newFixture(t)
	stale := filepath.Join(f.dir, maildir.Tmp, "1600000000.M1P1.crashed")
	young := filepath.Join(f.dir, maildir.Tmp, "1600000000.M2P1.writing")
	for _, p := range []string{stale, young} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// ctime cannot be set back: move the clock 40 h ahead instead, and
	// keep one file young by giving it an mtime 39 h ahead.
	later := time.Now().Add(40 * time.Hour)
	if err := os.Chtimes(young, later, later.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.open(Options{Now: func() time.Time { return later }})
	if _, err := os.Stat(stale); err == nil {
		t.Fatal("a tmp/ file older than 36 h was kept")
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatal("a tmp/ file younger than 36 h was removed")
	}
}

// TestSyncDirectoryTouched: a directory whose mtime moved without its
// messages changing (a file came and went, a foreign file stays) is read,
// and nothing is reported; a real change after that still is.
func TestSyncDirectoryTouched(t *testing.T) {
	f := newFixture(t)
	a := f.put(maildir.Cur, "S")
	f.put(maildir.Cur, "")
	mb := f.open(Options{})
	sync1(t, mb)
	touch := filepath.Join(f.dir, maildir.Cur, ".probe")
	if err := os.WriteFile(touch, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ch := sync1(t, mb)
	if ch.Skipped || !ch.Empty() {
		t.Fatalf("touched directory: %+v", ch)
	}
	f.rename(a, "RS")
	ch = sync1(t, mb)
	if len(ch.Flags) != 1 || ch.Flags[0].Base != a {
		t.Fatalf("flag change after a touch: %+v", ch)
	}
	os.Remove(touch)
	f.remove(a)
	if ch = sync1(t, mb); len(ch.Expunged) != 1 {
		t.Fatalf("expunge: %+v", ch)
	}
}

// UIDs shares one snapshot until the mailbox changes; every kind of
// change (new message, flag change, expunge) shows in the next call.
func TestUIDsSnapshot(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "S")
	b := f.put(maildir.Cur, "S")
	mb := f.open(Options{})
	sync1(t, mb)
	u1, unseen := mb.UIDs()
	if !slices.Equal(u1, []uint32{1, 2}) || unseen != 0 || cap(u1) != len(u1) {
		t.Fatalf("UIDs = %v (cap %d), unseen %d", u1, cap(u1), unseen)
	}
	if u2, _ := mb.UIDs(); &u2[0] != &u1[0] {
		t.Error("an unchanged mailbox made a new snapshot")
	}

	f.rename(b, "") // b loses \Seen
	sync1(t, mb)
	if u, unseen := mb.UIDs(); !slices.Equal(u, []uint32{1, 2}) || unseen != 2 {
		t.Fatalf("after a flag change: %v, unseen %d", u, unseen)
	}
	f.put(maildir.New, "")
	sync1(t, mb)
	if u, unseen := mb.UIDs(); !slices.Equal(u, []uint32{1, 2, 3}) || unseen != 2 {
		t.Fatalf("after a delivery: %v, unseen %d", u, unseen)
	}
	f.remove(b)
	sync1(t, mb)
	if u, unseen := mb.UIDs(); !slices.Equal(u, []uint32{1, 3}) || unseen != 2 {
		t.Fatalf("after an expunge: %v, unseen %d", u, unseen)
	}
	if !slices.Equal(u1, []uint32{1, 2}) {
		t.Errorf("an earlier snapshot changed: %v", u1)
	}
}

// An empty mailbox gets its UIDVALIDITY (and its dovecot-uidlist) on the
// first sync, and keeps it when its first message comes.
func TestEmptyMailboxHasUIDValidity(t *testing.T) {
	f := newFixture(t)
	mb := f.open(Options{})
	sync1(t, mb)
	v := mb.UIDValidity()
	if v == 0 {
		t.Fatal("UIDVALIDITY 0 after the first sync of an empty mailbox")
	}
	if _, err := os.Stat(filepath.Join(f.dir, uidlist.FileName)); err != nil {
		t.Fatalf("no dovecot-uidlist: %v", err)
	}
	f.put(maildir.New, "")
	sync1(t, mb)
	if got := mb.UIDValidity(); got != v {
		t.Errorf("UIDVALIDITY %d after the first message, was %d", got, v)
	}
	if u, _ := mb.UIDs(); !slices.Equal(u, []uint32{1}) {
		t.Errorf("UIDs %v", u)
	}
	other := f.open(Options{})
	sync1(t, other)
	if other.UIDValidity() != v {
		t.Errorf("another opener sees UIDVALIDITY %d, want %d", other.UIDValidity(), v)
	}
}
