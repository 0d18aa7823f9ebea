package store

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/maildir"
	bolt "go.etcd.io/bbolt"
)

func TestIndexCacheAndForget(t *testing.T) {
	ix, err := OpenIndex(filepath.Join(t.TempDir(), "data", "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	f := newFixture(t)
	a := f.put(maildir.Cur, "S")
	mb := f.open(Options{Index: ix})
	sync1(t, mb)
	msg, _ := mb.Lookup(a)
	if _, ok := mb.Cached(msg); ok {
		t.Fatal("cached before anything was stored")
	}
	size, _ := maildir.SizeFields(msg.Base)
	when := time.Unix(1700000000, 5)
	mb.Cache(msg, IndexEntry{FileSize: size, CRLFSize: size + 2, MTime: when, Structure: []byte("blob")})
	e, ok := mb.Cached(msg)
	if !ok || e.CRLFSize != size+2 || !e.MTime.Equal(when) || string(e.Structure) != "blob" {
		t.Fatalf("cached %+v %v", e, ok)
	}
	// A different size on record is a miss.
	mb.Cache(msg, IndexEntry{FileSize: size + 1})
	if _, ok := mb.Cached(msg); ok {
		t.Fatal("stale entry used")
	}
	mb.Cache(msg, IndexEntry{FileSize: size, Structure: []byte("x")})
	f.remove(a)
	sync1(t, mb)
	if _, ok := ix.Get(f.dir, a); ok {
		t.Fatal("entry of an expunged message kept")
	}
}

func TestIndexBrokenFileIsReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	if err := os.WriteFile(path, []byte("not a bolt file at all, just garbage bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	ix, err := OpenIndex(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ix.Put("/m", "b", IndexEntry{FileSize: 1})
	if m, _ := filepath.Glob(path + ".broken.*"); len(m) != 1 {
		t.Fatalf("broken file not kept aside: %v", m)
	}
}

// TestIndexWritesPersist: queued writes are seen at once and are on disk
// after Close; a Forget queued after a Put wins.
func TestIndexWritesPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix, err := OpenIndex(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5000; i++ {
		ix.Put("/m", "m"+itoa(i), IndexEntry{FileSize: int64(i)})
	}
	ix.Put("/m", "gone", IndexEntry{FileSize: 7})
	if e, ok := ix.Get("/m", "gone"); !ok || e.FileSize != 7 {
		t.Fatalf("queued write not seen: %+v %v", e, ok)
	}
	ix.Forget("/m", []string{"gone"})
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix, err = OpenIndex(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if _, ok := ix.Get("/m", "gone"); ok {
		t.Fatal("forgotten entry came back")
	}
	if e, ok := ix.Get("/m", "m"+itoa(4999)); !ok || e.FileSize != 4999 {
		t.Fatalf("entry lost across Close: %+v %v", e, ok)
	}
}

func itoa(i int) string { return fmt.Sprint(i) }

// A write stays visible to Get while the flusher commits it: between the
// batch leaving the queue and its commit, Get must not fall back to the
// old value on disk (or to nothing).
func TestIndexGetDuringFlush(t *testing.T) {
	ix, err := OpenIndex(filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ix.Put("d", "kept", IndexEntry{FileSize: 1, Structure: []byte("old")})
	ix.flush()
	var mu sync.Mutex
	var seen []string
	ix.testFlushing = func() {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range []string{"kept", "fresh"} {
			e, ok := ix.Get("d", b)
			seen = append(seen, fmt.Sprintf("%s=%s/%v", b, e.Structure, ok))
		}
	}
	ix.queue("d", []string{"kept", "fresh"}, [][]byte{
		encodeEntry(IndexEntry{FileSize: 2, Structure: []byte("new")}),
		encodeEntry(IndexEntry{FileSize: 3, Structure: []byte("fresh")}),
	})
	if err := ix.Close(); err != nil { // flushes, and waits for the flusher
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "[kept=new/true fresh=fresh/true]"; fmt.Sprint(seen) != want {
		t.Errorf("Get during the commit saw %v, want %s", seen, want)
	}
}

// TestIndexCommitFailure: a batch whose commit fails is counted and
// logged, not dropped in silence.
func TestIndexCommitFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix, err := OpenIndex(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	// A read-only database refuses every write transaction.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	// Read after Close, which waits for the flusher: no lock needed.
	var logged strings.Builder
	ix = newIndex(db, slog.New(slog.NewTextHandler(&logged, nil)))
	ix.Put("/m", "a", IndexEntry{FileSize: 1})
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if n := ix.Failures(); n != 1 {
		t.Errorf("Failures = %d, want 1", n)
	}
	if !strings.Contains(logged.String(), "commit failed") || !strings.Contains(logged.String(), "writes=1") {
		t.Errorf("log: %q", logged.String())
	}
}
