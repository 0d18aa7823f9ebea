package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/maildir"
)

var ctx = context.Background()

func flagsOf(s string) maildir.Flags {
	f, err := maildir.ParseFlags(s)
	if err != nil {
		panic(err)
	}
	return f
}

// twoSessions opens one Mailbox with two subscribers, as two IMAP
// sessions of one daemon share it.
func twoSessions(t *testing.T, f *fixture) (*Mailbox, *Subscription, *Subscription) {
	t.Helper()
	mb := f.open(Options{})
	sync1(t, mb)
	a, b := mb.Subscribe(), mb.Subscribe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return mb, a, b
}

func TestSetFlagsTwoSessions(t *testing.T) {
	f := newFixture(t)
	x, y := f.put(maildir.New, ""), f.put(maildir.Cur, "S")
	mb, a, b := twoSessions(t, f)

	out, err := mb.SetFlags(ctx, []uint32{1, 2, 99}, flagop.Add, flagsOf("F"), a)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Flags.String() != "F" || out[1].Flags.String() != "FS" || out[0].Sub != maildir.Cur {
		t.Fatalf("result %+v", out)
	}
	if p := a.Take(); !p.Empty() {
		t.Fatalf("the session that stored hears of its own change: %+v", p)
	}
	select {
	case <-b.Notify():
	default:
		t.Fatal("the other session was not notified")
	}
	p := b.Take()
	if len(p.Flags) != 2 || p.Flags[0].UID != 1 || p.Flags[1].Flags.String() != "FS" {
		t.Fatalf("other session got %+v", p)
	}
	if _, name := f.find(x); name != x+":2,F" {
		t.Fatalf("file %s", name)
	}
	if _, name := f.find(y); name != y+":2,FS" {
		t.Fatalf("file %s", name)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Fatal(err)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
	// -FLAGS and FLAGS.
	if out, _ = mb.SetFlags(ctx, []uint32{2}, flagop.Remove, flagsOf("S"), a); out[0].Flags.String() != "F" {
		t.Fatalf("-FLAGS: %+v", out)
	}
	if out, _ = mb.SetFlags(ctx, []uint32{2}, flagop.Replace, flagsOf("Rab"), a); out[0].Flags.String() != "Rab" {
		t.Fatalf("FLAGS: %+v", out)
	}
	// A sync afterwards finds nothing new: our renames are the state.
	if ch := sync1(t, mb); !ch.Empty() {
		t.Fatalf("sync after own changes: %+v", ch)
	}
}

// TestOwnChangeRefreshesPending: a session holds another session's flag
// change, not yet taken, and changes the same message itself; what it
// takes is the latest flags, not the older ones it held (which, sent
// after its own STORE's answer, would leave its client on stale flags).
func TestOwnChangeRefreshesPending(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	f.put(maildir.Cur, "")
	mb, a, b := twoSessions(t, f)

	if _, err := mb.SetFlags(ctx, []uint32{1}, flagop.Add, flagsOf("S"), b); err != nil {
		t.Fatal(err)
	}
	out, err := mb.SetFlags(ctx, []uint32{1}, flagop.Add, flagsOf("D"), a)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Flags.String() != "DS" {
		t.Fatalf("own STORE result %+v", out)
	}
	p := a.Take()
	if len(p.Flags) != 1 || p.Flags[0].UID != 1 || p.Flags[0].Flags.String() != "DS" {
		t.Fatalf("pending after own change: %+v, want UID 1 with DS", p.Flags)
	}
	// Its own change to a message with nothing pending adds nothing.
	if _, err := mb.SetFlags(ctx, []uint32{2}, flagop.Add, flagsOf("F"), a); err != nil {
		t.Fatal(err)
	}
	if p := a.Take(); !p.Empty() {
		t.Fatalf("own change to a message with nothing pending: %+v", p)
	}
}

// TestSetFlagsAfterForeignRename: another program renamed the file
// since the last sync; the change still lands, and both its flag change
// and ours are kept.
func TestSetFlagsAfterForeignRename(t *testing.T) {
	f := newFixture(t)
	x := f.put(maildir.Cur, "S")
	mb, a, b := twoSessions(t, f)
	f.rename(x, "RS") // foreign: replied
	out, err := mb.SetFlags(ctx, []uint32{1}, flagop.Add, flagsOf("F"), a)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Flags.String() != "FRS" {
		t.Fatalf("result %+v", out)
	}
	if _, name := f.find(x); name != x+":2,FRS" {
		t.Fatalf("file %s", name)
	}
	// Both sessions heard of the foreign change (found by the retry's
	// sync); b also of ours. a holds the latest flags, with its own
	// change in them: the older "RS", taken after its STORE answered
	// "FRS", would be the last word its client heard.
	pa, pb := a.Take(), b.Take()
	if len(pa.Flags) != 1 || pa.Flags[0].Flags.String() != "FRS" {
		t.Fatalf("a got %+v", pa)
	}
	if len(pb.Flags) != 1 || pb.Flags[0].Flags.String() != "FRS" {
		t.Fatalf("b got %+v", pb)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestExpungeTwoSessions(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "T")
	y := f.put(maildir.Cur, "T")
	f.put(maildir.Cur, "")
	mb, a, b := twoSessions(t, f)
	f.rename(y, "ST") // foreign rename before our expunge
	gone, err := mb.Expunge(ctx, []uint32{1, 2}, a)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(uids(gone), []uint32{1, 2}) {
		t.Fatalf("expunged %v", uids(gone))
	}
	if p := b.Take(); !slices.Equal(p.Expunged, []uint32{1, 2}) {
		t.Fatalf("other session got %+v", p)
	}
	if p := a.Take(); len(p.Expunged) != 0 {
		t.Fatalf("the expunging session got its own expunges back: %+v", p)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Fatal(err)
	}
	if ch := sync1(t, mb); !ch.Empty() {
		t.Fatalf("sync after expunge: %+v", ch)
	}
}

// TestAppendRacedByForeignProgram: a foreign program deletes or renames
// the file APPEND just put into cur/ before it gets its UID. APPEND still
// answers with the UID (the message was appended); the next sync expunges
// the deleted one on proof, and follows the renamed one to its new name.
func TestAppendRacedByForeignProgram(t *testing.T) {
	for _, tc := range []struct {
		name   string
		act    func(t *testing.T, path string)
		expect func(t *testing.T, ch *Changes, msg Message)
	}{
		{"deleted", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Error(err)
			}
		}, func(t *testing.T, ch *Changes, msg Message) {
			if !slices.Equal(uids(ch.Expunged), []uint32{msg.UID}) {
				t.Fatalf("sync after the deletion expunged %v, want [%d]", uids(ch.Expunged), msg.UID)
			}
		}},
		{"renamed", func(t *testing.T, path string) {
			if err := os.Rename(path, path+"F"); err != nil {
				t.Error(err)
			}
		}, func(t *testing.T, ch *Changes, msg Message) {
			if len(ch.Expunged) != 0 || len(ch.New) != 0 || len(ch.Flags) != 1 || ch.Flags[0].UID != msg.UID || ch.Flags[0].Flags.String() != "FS" {
				t.Fatalf("sync after the rename: %+v", ch)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.put(maildir.Cur, "")
			mb, a, _ := twoSessions(t, f)
			testHookPublished = func() {
				testHookPublished = nil
				names, err := readNames(filepath.Join(f.dir, maildir.Cur))
				if err != nil {
					t.Error(err)
					return
				}
				for _, n := range names {
					if !strings.HasPrefix(n, "17000000") {
						tc.act(t, filepath.Join(f.dir, maildir.Cur, n))
					}
				}
			}
			t.Cleanup(func() { testHookPublished = nil })
			msg, err := mb.Append(ctx, strings.NewReader("Subject: raced\r\n\r\nbody\r\n"), flagsOf("S"), time.Time{}, a)
			if err != nil {
				t.Fatalf("APPEND raced by a foreign %s: %v", tc.name, err)
			}
			if msg.UID != 2 {
				t.Fatalf("appended %+v, want UID 2", msg)
			}
			if testHookPublished != nil {
				t.Fatal("the hook did not run")
			}
			tc.expect(t, sync1(t, mb), msg)
			// The UID is never given again.
			next, err := mb.Append(ctx, strings.NewReader("Subject: next\r\n\r\nbody\r\n"), 0, time.Time{}, a)
			if err != nil || next.UID != 3 {
				t.Fatalf("next APPEND: %+v, %v", next, err)
			}
		})
	}
}

func TestAppendAndOpen(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	mb, a, b := twoSessions(t, f)
	date := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	msg, err := mb.Append(ctx, strings.NewReader("Subject: hi\r\n\r\nbody\r\n"), flagsOf("S"), date, a)
	if err != nil {
		t.Fatal(err)
	}
	if msg.UID != 2 || msg.Flags.String() != "S" || msg.Sub != maildir.Cur {
		t.Fatalf("appended %+v", msg)
	}
	if p := b.Take(); len(p.New) != 1 || p.New[0].UID != 2 {
		t.Fatalf("other session got %+v", p)
	}
	file, got, err := mb.OpenMessage(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(file)
	fi, _ := file.Stat()
	file.Close()
	if string(data) != "Subject: hi\r\n\r\nbody\r\n" || !fi.ModTime().Equal(date) || got.UID != 2 {
		t.Fatalf("opened %q %v %+v", data, fi.ModTime(), got)
	}
	// Renamed by someone else: OpenMessage finds it anyway.
	f.rename(msg.Base, "FS")
	file, got, err = mb.OpenMessage(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	file.Close()
	if got.Flags.String() != "FS" {
		t.Fatalf("after a foreign rename: %+v", got)
	}
	// Deleted: ErrNoSuchMessage.
	f.remove(msg.Base)
	if _, _, err := mb.OpenMessage(ctx, 2); !errors.Is(err, ErrNoSuchMessage) {
		t.Fatalf("opening a deleted message: %v", err)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
}

// newDest makes and opens a second Maildir, the target of a COPY or
// MOVE; it is closed when the test ends.
func newDest(t *testing.T) (*Mailbox, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Dest")
	if err := maildir.Create(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mb, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mb.Close() })
	return mb, dir
}

func TestCopy(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "S")
	f.put(maildir.Cur, "F")
	f.put(maildir.New, "")
	src := f.open(Options{})
	sync1(t, src)
	dst, dstDir := newDest(t)
	sub := dst.Subscribe()
	defer sub.Close()
	// UID 42 is no message: none is copied, no UID is used, and nothing
	// is left in tmp/.
	if _, from, to, err := src.Copy(ctx, []uint32{1, 3, 42}, dst, nil); !errors.Is(err, ErrNoSuchMessage) {
		t.Fatalf("Copy of 1, 3 and 42: %v -> %v, %v; want ErrNoSuchMessage", from, to, err)
	}
	if n := len(dst.Messages()); n != 0 || dst.NextUID() > 1 {
		t.Fatalf("after the failed COPY the destination has %d messages, next UID %d", n, dst.NextUID())
	}
	if names, err := os.ReadDir(filepath.Join(dstDir, "tmp")); err != nil || len(names) != 0 {
		t.Fatalf("tmp/ after the failed COPY: %v, %v", names, err)
	}
	if p := sub.Take(); !p.Empty() {
		t.Fatalf("the failed COPY told the destination's subscriber %+v", p)
	}
	_, from, to, err := src.Copy(ctx, []uint32{1, 3}, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(from, []uint32{1, 3}) || !slices.Equal(to, []uint32{1, 2}) {
		t.Fatalf("COPYUID %v -> %v", from, to)
	}
	msgs := dst.Messages()
	if len(msgs) != 2 || msgs[0].Flags.String() != "S" || msgs[1].Flags.String() != "" {
		t.Fatalf("destination %+v", msgs)
	}
	if p := sub.Take(); len(p.New) != 2 {
		t.Fatalf("destination subscriber got %+v", p)
	}
	if err := dst.CheckFiles(); err != nil {
		t.Fatal(err)
	}
	if err := src.CheckFiles(); err != nil {
		t.Fatal(err)
	}
}

// TestCopyKeywords: a copy enters the target with the target's letters
// for its keywords (keywords are per mailbox), names the target lacked
// are added to its dovecot-keywords, and COPY returns with the copies
// complete: nothing is renamed after it.
func TestCopyKeywords(t *testing.T) {
	f := newFixture(t)
	src := f.open(Options{})
	sync1(t, src)
	// In the source, Work is a.
	kw, _, err := src.KeywordFlags(ctx, []string{"Work"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if kw.String() != "a" {
		t.Fatalf("source letters %q", kw.String())
	}
	f.put(maildir.Cur, "Sa")
	sync1(t, src)
	dst, _ := newDest(t)
	sync1(t, dst)
	// In the target, $Label1 is a; Work is not known yet.
	if _, _, err := dst.KeywordFlags(ctx, []string{"$Label1"}, true); err != nil {
		t.Fatal(err)
	}
	_, _, to, err := src.Copy(ctx, []uint32{1}, dst, nil)
	if err != nil || len(to) != 1 {
		t.Fatalf("COPY: %v %v", to, err)
	}
	msg, ok := dst.LookupUID(to[0])
	if !ok || msg.Flags.String() != "Sb" {
		t.Fatalf("the copy: %+v", msg)
	}
	k, err := dst.Keywords()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := k.Name('a'); n != "$Label1" {
		t.Errorf("target letter a is %q", n)
	}
	if n, _ := k.Name('b'); n != "Work" {
		t.Errorf("target letter b is %q", n)
	}
	// What the file says is what the state says: nobody renamed it.
	if err := dst.CheckFiles(); err != nil {
		t.Fatal(err)
	}
}

// TestSubscriptionCoalesces: a subscriber that waits gets one latest
// version per message, and nothing about messages gone meanwhile.
func TestSubscriptionCoalesces(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	mb, a, b := twoSessions(t, f)
	for i := 0; i < 5; i++ {
		if _, err := mb.SetFlags(ctx, []uint32{1}, flagop.Replace, flagsOf([]string{"S", "F", "R", "D", "FS"}[i]), a); err != nil {
			t.Fatal(err)
		}
	}
	n, err := mb.Append(ctx, strings.NewReader("x\n"), 0, time.Time{}, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.SetFlags(ctx, []uint32{n.UID}, flagop.Add, flagsOf("S"), a); err != nil {
		t.Fatal(err)
	}
	p := b.Take()
	if len(p.Flags) != 1 || p.Flags[0].Flags.String() != "FS" {
		t.Fatalf("flags %+v", p.Flags)
	}
	if len(p.New) != 1 || p.New[0].Flags.String() != "S" {
		t.Fatalf("new %+v", p.New)
	}
	if _, err := mb.Expunge(ctx, []uint32{n.UID}, a); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Append(ctx, strings.NewReader("y\n"), 0, time.Time{}, a); err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Expunge(ctx, []uint32{3}, a); err != nil {
		t.Fatal(err)
	}
	p = b.Take()
	if !slices.Equal(p.Expunged, []uint32{2, 3}) || len(p.New) != 0 || len(p.Flags) != 0 {
		t.Fatalf("pending %+v", p)
	}
}

func TestRegistryShares(t *testing.T) {
	f := newFixture(t)
	r := NewRegistry(Options{}, nil)
	m1, rel1, err := r.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	m2, rel2, err := r.Open(f.dir + "/")
	if err != nil {
		t.Fatal(err)
	}
	if m1 != m2 {
		t.Fatal("two Mailboxes for one directory")
	}
	rel1()
	rel1() // twice is harmless
	rel2()
	// Unused, it stays open for the next user.
	m3, rel3, err := r.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if m3 != m1 {
		t.Fatal("an idle mailbox was not kept")
	}
	rel3()
	// Deleted and made again: a new Mailbox.
	if err := os.RemoveAll(f.dir); err != nil {
		t.Fatal(err)
	}
	if err := maildir.Create(f.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m4, rel4, err := r.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rel4()
	if m4 == m1 {
		t.Fatal("the state of a deleted mailbox was reused")
	}
	if _, _, err := r.Open("relative/path"); err == nil {
		t.Fatal("relative path accepted")
	}
	r.Close()
	if _, ok := r.Lookup(f.dir); ok {
		t.Fatal("open after Close")
	}
}

// waitPending waits for s to be notified and returns what it took, or
// fails after a generous deadline (a missing notice, not a slow one).
func waitPending(t *testing.T, s *Subscription, what func(Pending) bool) Pending {
	t.Helper()
	deadline := time.After(10 * time.Second)
	var got Pending
	for {
		select {
		case <-s.Notify():
			p := s.Take()
			got.Expunged = append(got.Expunged, p.Expunged...)
			got.New = append(got.New, p.New...)
			got.Flags = append(got.Flags, p.Flags...)
			if what(got) {
				return got
			}
		case <-deadline:
			t.Fatalf("no notice; got %+v", got)
		}
	}
}

// TestWatcherNotices: files dropped into new/, renamed in cur/ and
// removed by other programs reach a subscriber without anyone calling
// Sync.
func TestWatcherNotices(t *testing.T) {
	f := newFixture(t)
	x := f.put(maildir.Cur, "")
	w, err := NewWatcher(testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := NewRegistry(Options{Logger: testLogger(t)}, w)
	mb, release, err := r.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	sync1(t, mb)
	s := mb.Subscribe()
	defer s.Close()

	y := f.put(maildir.New, "")
	p := waitPending(t, s, func(p Pending) bool { return len(p.New) == 1 })
	if p.New[0].Base != y {
		t.Fatalf("new %+v", p.New)
	}
	f.rename(x, "S")
	p = waitPending(t, s, func(p Pending) bool { return len(p.Flags) == 1 })
	if p.Flags[0].Base != x || p.Flags[0].Flags.String() != "S" {
		t.Fatalf("flags %+v", p.Flags)
	}
	f.remove(y)
	p = waitPending(t, s, func(p Pending) bool { return len(p.Expunged) == 1 })
	if p.Expunged[0] != 2 {
		t.Fatalf("expunged %+v", p.Expunged)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestFlagsReplaceKeepsUnknownLetters(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "PSX")
	mb := f.open(Options{})
	sync1(t, mb)
	out, err := mb.SetFlags(ctx, []uint32{1}, flagop.Replace, flagsOf("Fa"), nil)
	if err != nil || out[0].Flags.String() != "FPXa" {
		t.Fatalf("replace: %+v %v", out, err)
	}
}

// TestCopyUIDsFollowSourceOrder: COPYUID pairs the source set with the
// destination set in order (RFC 4315 §3), so the copies must get
// ascending UIDs in source order, however their new file names sort
// (Q9 sorts after Q10).
func TestCopyUIDsFollowSourceOrder(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 25; i++ {
		f.put(maildir.Cur, "")
	}
	src := f.open(Options{})
	sync1(t, src)
	dst, _ := newDest(t)
	var all []uint32
	for _, m := range src.Messages() {
		all = append(all, m.UID)
	}
	_, from, to, err := src.Copy(ctx, all, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(from, all) {
		t.Fatalf("source UIDs %v", from)
	}
	for i := 1; i < len(to); i++ {
		if to[i] <= to[i-1] {
			t.Fatalf("destination UIDs out of source order: %v", to)
		}
	}
	// And each copy is the message it claims to be.
	for i := range from {
		a, _ := src.LookupUID(from[i])
		b, _ := dst.LookupUID(to[i])
		da, _ := os.ReadFile(src.Path(a))
		db, _ := os.ReadFile(dst.Path(b))
		if string(da) != string(db) {
			t.Fatalf("UID %d -> %d: different content", from[i], to[i])
		}
	}
}

// TestAdoptStagedKeepsOrder: files this process delivered get UIDs in
// the order the caller gives, not in file-name order (the unique names'
// microseconds and counters are not zero-padded, so their order is not
// the order of delivery). The order given here is the reverse of the
// names' order.
func TestAdoptStagedKeepsOrder(t *testing.T) {
	f := newFixture(t)
	mb := f.open(Options{})
	sync1(t, mb)
	var staged []*maildir.Staged
	for i := range 3 {
		s, err := maildir.Stage(f.dir, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\n", i)), maildir.DeliverOptions{Cur: true})
		if err != nil {
			t.Fatal(err)
		}
		staged = append(staged, s)
	}
	slices.SortFunc(staged, func(a, b *maildir.Staged) int { return -strings.Compare(a.Base(), b.Base()) })
	msgs, err := mb.adoptStaged(ctx, staged, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if m.Filename != staged[i].Filename() || m.UID != uint32(i+1) {
			t.Fatalf("message %d: %+v, want %s with UID %d", i, m, staged[i].Filename(), i+1)
		}
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Fatal(err)
	}
}
