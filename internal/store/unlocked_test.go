package store

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// TestWriterIOWithoutMu pins doc.go's Locking section: a writer's
// renames and unlinks (STORE, EXPUNGE), its comparison of duplicate
// files and its compaction of the uidlist run without mu, so that
// readers (FETCH, SEARCH, a SELECT's snapshot) do not wait for them.
// The hook tries mu at each such place: held there, the test fails.
func TestWriterIOWithoutMu(t *testing.T) {
	cases := []struct {
		name string
		what string
		run  func(t *testing.T, f *fixture, mb *Mailbox)
	}{
		{"STORE", "change", func(t *testing.T, f *fixture, mb *Mailbox) {
			if _, err := mb.SetFlags(ctx, []uint32{1, 2}, flagop.Add, flagsOf("F"), nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"EXPUNGE", "change", func(t *testing.T, f *fixture, mb *Mailbox) {
			if gone, err := mb.Expunge(ctx, []uint32{1}, nil); err != nil || len(gone) != 1 {
				t.Fatalf("expunged %v, %v", gone, err)
			}
		}},
		{"duplicate base name", "duplicates", func(t *testing.T, f *fixture, mb *Mailbox) {
			_, name := f.find(mb.Messages()[0].Base)
			base := maildir.BaseName(name)
			other := filepath.Join(f.dir, maildir.Cur, base+":2,T")
			if err := os.WriteFile(other, []byte("Subject: another\n\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			sync1(t, mb)
			sync1(t, mb) // numbers the file renamed by the first
		}},
		{"compaction", "compact", func(t *testing.T, f *fixture, mb *Mailbox) {
			var b strings.Builder
			fmt.Fprintf(&b, "3 V%d N1000 G0123456789abcdef0123456789abcdef\n", mb.UIDValidity())
			for i := 1; i <= 400; i++ {
				fmt.Fprintf(&b, "%d :1600000000.M%dP1.gone\n", i+100, i)
			}
			for _, msg := range mb.Messages() {
				fmt.Fprintf(&b, "%d :%s\n", msg.UID, msg.Base)
			}
			path := filepath.Join(f.dir, uidlist.FileName)
			if err := os.WriteFile(path+".new", []byte(b.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
			f.put(maildir.New, "") // so that the sync reads the directories
			sync1(t, mb)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.put(maildir.Cur, "S")
			f.put(maildir.New, "")
			mb := f.open(Options{})
			t.Cleanup(func() { mb.Close() })
			sync1(t, mb)
			var free, held int
			testHookWriterIO = func(m *Mailbox, what string) {
				if m != mb || what != c.what {
					return
				}
				if mb.mu.TryLock() {
					mb.mu.Unlock()
					free++
				} else {
					held++
				}
			}
			t.Cleanup(func() { testHookWriterIO = nil })
			c.run(t, f, mb)
			testHookWriterIO = nil
			if free == 0 || held != 0 {
				t.Fatalf("%s: I/O without mu %d times, under mu %d times", c.what, free, held)
			}
			if err := mb.Check(); err != nil {
				t.Fatal(err)
			}
			if err := mb.CheckFiles(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// storesBeside runs beside on its own goroutine, with a random source of
// seed, while STOREs with random flags (of letters) change random
// messages among UIDs 1..messages, stores times; beside ends when it
// returns or done is set (after the last STORE). Any error fails t.
func storesBeside(t *testing.T, mb *Mailbox, seed uint64, messages, stores int, letters []string, beside func(r *rand.Rand, done *atomic.Bool) error) {
	t.Helper()
	var done atomic.Bool
	errc := make(chan error, 1)
	go func() { errc <- beside(rand.New(rand.NewPCG(seed, 1)), &done) }()
	r := rand.New(rand.NewPCG(seed, 2))
	ops := []flagop.Op{flagop.Add, flagop.Remove, flagop.Replace}
	var storeErr error
	for i := 0; i < stores && storeErr == nil; i++ {
		var uids []uint32
		for uid := uint32(1); uid <= uint32(messages); uid++ {
			if r.IntN(3) == 0 {
				uids = append(uids, uid)
			}
		}
		_, storeErr = mb.SetFlags(ctx, uids, ops[r.IntN(len(ops))], flagsOf(letters[r.IntN(len(letters))]), nil)
	}
	done.Store(true)
	if err := <-errc; err != nil {
		t.Error(err)
	}
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	if err := mb.Check(); err != nil {
		t.Fatal(err)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenMessageDuringStore: STORE renames files without mu and updates
// the state afterwards, so a reader may look a file up under the name it
// had just before the rename. It must still find it (OpenMessage looks
// again through a sync): a FETCH that runs beside STOREs never gets a
// missing-file error, and reads the right message.
func TestOpenMessageDuringStore(t *testing.T) {
	const messages, stores, maxReads = 40, 150, 200000
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	f := newFixture(t)
	for i := 0; i < messages; i++ {
		if i%2 == 0 {
			f.put(maildir.New, "")
		} else {
			f.put(maildir.Cur, "S")
		}
	}
	mb := f.open(Options{})
	t.Cleanup(func() { mb.Close() })
	if ch := sync1(t, mb); len(ch.New) != messages {
		t.Fatalf("%d messages", len(ch.New))
	}

	var reads, retried int
	storesBeside(t, mb, seed, messages, stores, []string{"S", "F", "D", "R", "a", "b"}, func(r *rand.Rand, done *atomic.Bool) error {
		for i := 0; i < maxReads && !done.Load(); i++ {
			uid := uint32(1 + r.IntN(messages))
			before, _ := mb.LookupUID(uid)
			file, msg, err := mb.OpenMessage(ctx, uid)
			if err != nil {
				return fmt.Errorf("OpenMessage(%d): %w", uid, err)
			}
			data, err := io.ReadAll(file)
			file.Close()
			if err != nil {
				return err
			}
			// The fixture numbers its files from 1, in base-name order:
			// UID n is the file whose subject is n.
			if want := fmt.Sprintf("Subject: %d\n", uid); !strings.HasPrefix(string(data), want) {
				return fmt.Errorf("OpenMessage(%d) read %q", uid, data)
			}
			if msg.Filename != before.Filename {
				retried++
			}
			reads++
		}
		return nil
	})
	t.Logf("%d reads beside %d STOREs; %d found their file under another name than the state had a moment before", reads, stores, retried)
	if reads == 0 {
		t.Fatal("the reader read nothing")
	}
}

// TestCopyDuringStore: a COPY beside STOREs that rename its messages'
// files copies every message it names: a file renamed under it is found
// again (stageFresh), never taken for an expunge.
func TestCopyDuringStore(t *testing.T) {
	const messages, stores, maxCopies = 30, 120, 400
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	f := newFixture(t)
	for i := 0; i < messages; i++ {
		f.put(maildir.Cur, "S")
	}
	mb := f.open(Options{})
	t.Cleanup(func() { mb.Close() })
	if ch := sync1(t, mb); len(ch.New) != messages {
		t.Fatalf("%d messages", len(ch.New))
	}
	dst, _ := newDest(t)

	var copies, copied int
	storesBeside(t, mb, seed, messages, stores, []string{"S", "F", "D", "R"}, func(r *rand.Rand, done *atomic.Bool) error {
		for i := 0; i < maxCopies && !done.Load(); i++ {
			uids := []uint32{uint32(1 + r.IntN(messages)), uint32(1 + r.IntN(messages))}
			slices.Sort(uids)
			uids = slices.Compact(uids)
			_, from, to, err := mb.Copy(ctx, uids, dst, nil)
			if err != nil {
				return fmt.Errorf("Copy(%v): %w", uids, err)
			}
			if !slices.Equal(from, uids) || len(to) != len(uids) {
				return fmt.Errorf("Copy(%v) copied %v -> %v", uids, from, to)
			}
			copies++
			copied += len(to)
		}
		return nil
	})
	t.Logf("%d COPYs of %d messages beside %d STOREs", copies, copied, stores)
	if copies == 0 {
		t.Fatal("no COPY ran")
	}
	sync1(t, dst)
	if n := len(dst.Messages()); n != copied {
		t.Errorf("the destination holds %d messages, %d were copied", n, copied)
	}
	if err := dst.Check(); err != nil {
		t.Fatal(err)
	}
	if err := dst.CheckFiles(); err != nil {
		t.Fatal(err)
	}
}
