package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/testfault"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// fault is one way the mailbox lock or the uidlist cannot be had; make
// puts it in place and returns the function that ends it.
type fault struct {
	name string
	make func(t *testing.T, dir string) (end func())
}

// lockFaults are the holders a change waits for and a sync passes by:
// another process (live, or a lock left empty or garbled), and a lock
// this process holds outside the Mailbox (as cistern deliver's or
// doveadm's would be).
func lockFaults() []fault {
	var fs []fault
	for _, k := range testfault.LockKinds {
		fs = append(fs, fault{"lock " + k.String(), func(t *testing.T, dir string) func() {
			return testfault.HoldLock(t, dir, k)
		}})
	}
	return append(fs, fault{"lock held in-process", func(t *testing.T, dir string) func() {
		l, err := uidlist.AcquireLock(context.Background(), dir, uidlist.LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		end := func() { once.Do(func() { l.Release() }) }
		t.Cleanup(end)
		return end
	}})
}

// unwritableUIDList: dovecot-uidlist refuses writes (EPERM, EACCES).
var unwritableUIDList = fault{"dovecot-uidlist unwritable", func(t *testing.T, dir string) func() {
	return testfault.Unwritable(t, filepath.Join(dir, uidlist.FileName))
}}

// diskNames lists the names in new/, cur/ and tmp/ of dir.
func diskNames(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := make(map[string][]string)
	for _, sub := range []string{maildir.New, maildir.Cur, maildir.Tmp} {
		names, err := readNames(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		out[sub] = names
	}
	return out
}

func sameNames(a, b map[string][]string) bool {
	for _, sub := range []string{maildir.New, maildir.Cur, maildir.Tmp} {
		if !slices.Equal(a[sub], b[sub]) {
			return false
		}
	}
	return true
}

// TestSyncPassesAnUnavailableLock: a sync does not wait for a mailbox
// lock that it cannot have, nor fail for a uidlist it cannot write: it
// shows what it can prove, leaves the new file without a UID (and out of
// the state), keeps doing so at every sync while the fault lasts, and
// numbers the file at the first sync after it.
//
// The lock timeout is a minute and each sync gets ten seconds: a sync
// that waited for the lock would fail here by its context's deadline,
// without any timing being asserted.
func TestSyncPassesAnUnavailableLock(t *testing.T) {
	for _, fl := range append(lockFaults(), unwritableUIDList) {
		t.Run(fl.name, func(t *testing.T) {
			f := newFixture(t)
			f.put(maildir.Cur, "S")
			mb := f.open(Options{Lock: uidlist.LockOptions{Timeout: time.Minute}})
			sync1(t, mb)
			end := fl.make(t, f.dir)
			fresh := f.put(maildir.New, "")
			for i := range 2 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ch, err := mb.Sync(ctx)
				cancel()
				if err != nil {
					t.Fatalf("sync %d during the fault: %v", i, err)
				}
				if ch.Unassigned != 1 || len(ch.New) != 0 || !slices.Equal(uids(mb.Messages()), []uint32{1}) {
					t.Fatalf("sync %d during the fault: %+v, UIDs %v; want the new file left unassigned", i, ch, uids(mb.Messages()))
				}
				if err := mb.Check(); err != nil {
					t.Fatal(err)
				}
			}
			end()
			ch := sync1(t, mb)
			if len(ch.New) != 1 || ch.New[0].UID != 2 || ch.New[0].Base != fresh || ch.Unassigned != 0 {
				t.Fatalf("sync after the fault: %+v, want %s as UID 2", ch, fresh)
			}
			if err := mb.CheckFiles(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFirstSyncWaitsBrieflyForTheCreator: a mailbox with neither a
// uidlist nor a UIDVALIDITY cannot be shown until one is written: its
// first sync waits for the lock (creatorLockWait, here less: the lock
// timeout) and then fails with ErrLocked, writing nothing.
func TestFirstSyncWaitsBrieflyForTheCreator(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	mb := f.open(Options{Lock: uidlist.LockOptions{Timeout: 200 * time.Millisecond}})
	end := testfault.HoldLock(t, f.dir, testfault.LockLive)
	if _, err := mb.Sync(context.Background()); !errors.Is(err, ErrLocked) {
		t.Fatalf("first sync with the lock held: %v, want ErrLocked", err)
	}
	if _, err := os.Lstat(filepath.Join(f.dir, uidlist.FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a uidlist was written without the lock: %v", err)
	}
	end()
	if ch := sync1(t, mb); len(ch.New) != 1 || mb.UIDValidity() == 0 {
		t.Fatalf("after the release: %+v", ch)
	}
}

// TestChangesRefusedWithoutTheLock: APPEND, COPY, STORE and EXPUNGE wait
// up to the lock timeout and then fail with ErrLocked, having changed
// nothing: no file in new/, cur/ or tmp/, no name changed, the state as
// it was. With the lock back, each works.
func TestChangesRefusedWithoutTheLock(t *testing.T) {
	for _, fl := range lockFaults() {
		t.Run(fl.name, func(t *testing.T) {
			f := newFixture(t)
			f.put(maildir.Cur, "")
			f.put(maildir.Cur, "S")
			mb := f.open(Options{Lock: uidlist.LockOptions{Timeout: 200 * time.Millisecond}})
			sync1(t, mb)
			before := diskNames(t, f.dir)
			end := fl.make(t, f.dir)
			ops := []struct {
				name string
				do   func() error
			}{
				{"append", func() error {
					_, err := mb.Append(ctx, strings.NewReader("Subject: x\r\n\r\n"), 0, time.Time{}, nil)
					return err
				}},
				{"copy", func() error { _, _, _, err := mb.Copy(ctx, []uint32{1, 2}, mb, nil); return err }},
				{"store", func() error { _, err := mb.SetFlags(ctx, []uint32{1}, flagop.Add, flagsOf("F"), nil); return err }},
				{"expunge", func() error { _, err := mb.Expunge(ctx, []uint32{2}, nil); return err }},
			}
			for _, op := range ops {
				if err := op.do(); !errors.Is(err, ErrLocked) {
					t.Errorf("%s with the lock held: %v, want ErrLocked", op.name, err)
				}
				if after := diskNames(t, f.dir); !sameNames(before, after) {
					t.Fatalf("%s refused, yet the files changed: %v -> %v", op.name, before, after)
				}
				if got := uids(mb.Messages()); !slices.Equal(got, []uint32{1, 2}) {
					t.Fatalf("%s refused, yet the state has %v", op.name, got)
				}
				if err := mb.Check(); err != nil {
					t.Fatal(err)
				}
			}
			// A change of no message needs no lock (CLOSE with nothing
			// to expunge).
			if _, err := mb.Expunge(ctx, []uint32{42}, nil); err != nil {
				t.Errorf("expunging no message with the lock held: %v", err)
			}
			if _, err := mb.SetFlags(ctx, nil, flagop.Add, flagsOf("F"), nil); err != nil {
				t.Errorf("flagging no message with the lock held: %v", err)
			}
			end()
			for _, op := range ops {
				if err := op.do(); err != nil {
					t.Fatalf("%s after the release: %v", op.name, err)
				}
			}
			// append 3, copies 4 and 5, UID 2 expunged.
			if got := uids(mb.Messages()); !slices.Equal(got, []uint32{1, 3, 4, 5}) {
				t.Fatalf("after the release: UIDs %v", got)
			}
			if err := mb.CheckFiles(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAppendUIDListUnwritable: APPEND and COPY into a mailbox whose
// uidlist cannot be written fail and leave no file behind: the files
// they put into cur/ are taken back. The UIDs they did not get are given
// to the next messages.
func TestAppendUIDListUnwritable(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	mb := f.open(Options{})
	sync1(t, mb)
	before := diskNames(t, f.dir)
	restore := unwritableUIDList.make(t, f.dir)
	if _, err := mb.Append(ctx, strings.NewReader("Subject: x\r\n\r\n"), 0, time.Time{}, nil); err == nil {
		t.Fatal("APPEND succeeded without a uidlist to record it in")
	}
	if _, _, _, err := mb.Copy(ctx, []uint32{1}, mb, nil); err == nil {
		t.Fatal("COPY succeeded without a uidlist to record it in")
	}
	if after := diskNames(t, f.dir); !sameNames(before, after) {
		t.Fatalf("refused, yet the files changed: %v -> %v", before, after)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
	restore()
	msg, err := mb.Append(ctx, strings.NewReader("Subject: x\r\n\r\n"), 0, time.Time{}, nil)
	if err != nil || msg.UID != 2 {
		t.Fatalf("APPEND after the fault: %+v, %v", msg, err)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Fatal(err)
	}
}

// TestSyncDuringOurChangeLeavesNewsForIt: a sync that finds a new file
// while a change of this process waits for the lock (held by another
// process) does not wait behind it: it leaves the file to the change,
// which numbers it under its lock before it returns, so that a steady
// stream of changes cannot starve the news.
func TestSyncDuringOurChangeLeavesNewsForIt(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	mb := f.open(Options{Lock: uidlist.LockOptions{Timeout: time.Minute}})
	sync1(t, mb)
	sub := mb.Subscribe()
	defer sub.Close()
	end := testfault.HoldLock(t, f.dir, testfault.LockEmpty)
	appended := make(chan error, 1)
	go func() {
		_, err := mb.Append(ctx, strings.NewReader("Subject: waits\r\n\r\n"), 0, time.Time{}, nil)
		appended <- err
	}()
	// The APPEND holds its turn while it waits for the lock; a sync
	// from now on is told so at once.
	for len(mb.changeTurn) == 0 {
		time.Sleep(time.Millisecond)
	}
	fresh := f.put(maildir.New, "")
	ctx10, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := mb.Sync(ctx10)
	if err != nil || ch.Unassigned != 1 {
		t.Fatalf("sync during the APPEND's wait: %+v, %v; want the file left for later", ch, err)
	}
	end()
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	if msg, ok := mb.Lookup(fresh); !ok || msg.UID != 3 {
		t.Fatalf("after the APPEND: %s is %+v (%v), want UID 3, after the APPEND's 2", fresh, msg, ok)
	}
	p := waitPending(t, sub, func(p Pending) bool {
		return slices.ContainsFunc(p.New, func(m Message) bool { return m.Base == fresh })
	})
	if len(p.New) != 2 {
		t.Fatalf("subscriber got %+v, want the APPEND's message and %s", p, fresh)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestNewsWaitingIsRetried: when a sync left a file without a UID and
// someone watches the mailbox, a sync follows by itself, and the
// subscriber hears of the file soon after the lock is free.
func TestNewsWaitingIsRetried(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	mb := f.open(Options{})
	sync1(t, mb)
	sub := mb.Subscribe()
	defer sub.Close()
	end := testfault.HoldLock(t, f.dir, testfault.LockGarbage)
	fresh := f.put(maildir.New, "")
	if ch := sync1(t, mb); ch.Unassigned != 1 {
		t.Fatalf("sync with the lock held: %+v", ch)
	}
	end()
	p := waitPending(t, sub, func(p Pending) bool { return len(p.New) > 0 })
	if len(p.New) != 1 || p.New[0].Base != fresh || p.New[0].UID != 2 {
		t.Fatalf("subscriber got %+v, want %s as UID 2", p, fresh)
	}
	mb.Close() // stops the retries
}

// TestChangesAndSyncsTogether: appends, copies, flag changes, expunges
// and syncs of one Mailbox at once, with foreign deliveries, end (a
// wrong lock order would deadlock until the test's deadline), and every
// message acknowledged is there with its UID.
func TestChangesAndSyncsTogether(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	mb := f.open(Options{Lock: uidlist.LockOptions{Timeout: 20 * time.Second}})
	sync1(t, mb)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	var mu sync.Mutex
	var acked []uint32
	const rounds = 20
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				var err error
				switch (w + i) % 3 {
				case 0:
					var msg Message
					msg, err = mb.Append(ctx, strings.NewReader("Subject: a\r\n\r\n"), 0, time.Time{}, nil)
					if err == nil {
						mu.Lock()
						acked = append(acked, msg.UID)
						mu.Unlock()
					}
				case 1:
					var to []uint32
					_, _, to, err = mb.Copy(ctx, []uint32{1}, mb, nil)
					mu.Lock()
					acked = append(acked, to...)
					mu.Unlock()
				case 2:
					_, err = mb.SetFlags(ctx, []uint32{1}, flagop.Add, flagsOf("F"), nil)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range rounds {
			f.put(maildir.New, "") // only this goroutine uses f
			if _, err := mb.Sync(ctx); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ch := sync1(t, mb)
	if ch.Unassigned != 0 {
		t.Fatalf("left unassigned at the end: %+v", ch)
	}
	for _, uid := range acked {
		if _, ok := mb.LookupUID(uid); !ok {
			t.Fatalf("acknowledged UID %d is not in the mailbox", uid)
		}
	}
	if err := mb.CheckFiles(); err != nil {
		t.Fatal(err)
	}
}

// TestAppendTakenBackWhenNotDurable: when cur/ cannot be fsynced after
// the UIDs were recorded, APPEND and COPY fail and leave no file and no
// message in the state; the UIDs recorded are never given again.
func TestAppendTakenBackWhenNotDurable(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	mb, sub, _ := twoSessions(t, f)
	before := diskNames(t, f.dir)
	errIO := errors.New("fsync: input/output error")
	testHookSyncPlaced = func() error { return errIO }
	t.Cleanup(func() { testHookSyncPlaced = nil })
	if _, err := mb.Append(ctx, strings.NewReader("Subject: x\r\n\r\n"), 0, time.Time{}, nil); !errors.Is(err, errIO) {
		t.Fatalf("APPEND: %v, want the fsync's error", err)
	}
	if _, _, _, err := mb.Copy(ctx, []uint32{1}, mb, nil); !errors.Is(err, errIO) {
		t.Fatalf("COPY: %v, want the fsync's error", err)
	}
	if after := diskNames(t, f.dir); !sameNames(before, after) {
		t.Fatalf("refused, yet the files changed: %v -> %v", before, after)
	}
	if got := uids(mb.Messages()); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("refused, yet the state has %v", got)
	}
	if p := sub.Take(); !p.Empty() {
		t.Fatalf("a subscriber heard of refused messages: %+v", p)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
	testHookSyncPlaced = nil
	msg, err := mb.Append(ctx, strings.NewReader("Subject: x\r\n\r\n"), 0, time.Time{}, nil)
	if err != nil || msg.UID != 4 {
		t.Fatalf("APPEND after: %+v, %v; want UID 4 (2 and 3 were recorded, then taken back)", msg, err)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Fatal(err)
	}
}

// TestLeftNewsKickedWhenTheChangeIsGone: a sync that leaves its news to
// a change of ours that has just let go of its turn (too late to see the
// note) kicks the sync that numbers the news itself.
func TestLeftNewsKickedWhenTheChangeIsGone(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	mb := f.open(Options{})
	sync1(t, mb)
	sub := mb.Subscribe()
	defer sub.Close()
	fresh := f.put(maildir.New, "")
	mb.lockWriter()
	mb.leaveNewsLocked(map[string][]sighting{fresh: {{maildir.New, fresh}}})
	mb.unlockWriter()
	p := waitPending(t, sub, func(p Pending) bool { return len(p.New) > 0 })
	if len(p.New) != 1 || p.New[0].Base != fresh {
		t.Fatalf("subscriber got %+v, want %s", p, fresh)
	}
}
