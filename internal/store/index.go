package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Index is the daemon's rebuildable cache (DESIGN.md §5): per message,
// what costs a read of its file — its size with CRLF line endings, its
// internal date, and an opaque structure blob (ENVELOPE and BODYSTRUCTURE,
// encoded by the caller). It lives under the data directory, never in a
// Maildir, and is keyed by mailbox directory and base name, so it holds
// no UIDs and never needs to agree with dovecot-uidlist.
//
// Losing it loses nothing: every value is recomputed from the message
// file on a miss. A value is only used while the file's size (from its
// S= field or a stat) is what it was when cached; a rewritten file is a
// miss.
//
//	bucket (mailbox directory) -> key (base name) -> value:
//	  version byte (1) | file size u64 | crlf size u64 | mtime unix nano i64 | structure blob
//	bucket "\x00recent" -> key (mailbox directory) -> value:
//	  UIDVALIDITY u32 | first unclaimed UID u32 (the \Recent mark, recent.go)
//
// The \Recent mark is the one value that is no cache: losing it makes
// some messages recent again (recent.go says which), never loses mail.
//
// One process (the daemon) opens it; bbolt's file lock keeps a second one
// out. Writes are queued and committed together by a background flusher,
// so filling the cache costs few fsyncs; Get sees queued writes.
type Index struct {
	db  *bolt.DB     // immutable
	log *slog.Logger // immutable
	// failed counts the batches whose commit failed (Failures).
	failed atomic.Int64

	// Writes wait in pending and go to disk together, in one
	// transaction, by the flusher: a FETCH filling the cache for 100,000
	// messages is a few commits, not 100,000.
	mu      sync.Mutex // guards pending, flushing and closed
	pending map[indexKey][]byte
	// flushing is the batch being committed (nil: none); Get reads it
	// until the commit is done, so a write never seems to vanish.
	flushing map[indexKey][]byte
	closed   bool
	// testFlushing, when set (before the first write), runs while a
	// batch is out of pending but not yet committed.
	testFlushing func()
	kick         chan struct{} // capacity 1: pending has entries
	done         chan struct{} // the flusher ended
}

type indexKey struct{ dir, base string }

// Flush policy: pending writes are committed after indexFlushDelay, or
// at once when indexFlushMax are waiting. A crash loses at most the
// pending writes of a cache.
const (
	indexFlushDelay = 200 * time.Millisecond
	indexFlushMax   = 4096
)

// IndexEntry is the cached data of one message.
type IndexEntry struct {
	FileSize  int64 // bytes on disk
	CRLFSize  int64 // RFC822.SIZE
	MTime     time.Time
	Structure []byte
}

const indexVersion = 1

// indexOpenTimeout bounds the wait for another process's lock on the
// index file; the daemon is the only writer.
const indexOpenTimeout = 2 * time.Second

// OpenIndex opens (creating) the index at path. A file that cannot be
// read as an index is moved aside and a new one started: it is a cache.
// Commits that fail are logged to log (nil: discarded).
func OpenIndex(path string, log *slog.Logger) (*Index, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: indexOpenTimeout})
	if err != nil && !errors.Is(err, bolt.ErrTimeout) {
		aside := fmt.Sprintf("%s.broken.%d", path, time.Now().Unix())
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("store: index %s: %w", path, err)
		}
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: indexOpenTimeout})
	}
	if err != nil {
		return nil, fmt.Errorf("store: index %s: %w", path, err)
	}
	return newIndex(db, log), nil
}

// newIndex starts the flusher of an open database.
func newIndex(db *bolt.DB, log *slog.Logger) *Index {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ix := &Index{db: db, log: log, pending: make(map[indexKey][]byte), kick: make(chan struct{}, 1), done: make(chan struct{})}
	go ix.flusher()
	return ix
}

// Failures is the number of batches of writes whose commit failed.
func (ix *Index) Failures() int64 { return ix.failed.Load() }

// Close writes what is pending and closes the index.
func (ix *Index) Close() error {
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return nil
	}
	ix.closed = true
	close(ix.kick) // under mu: queue never sends on a closed channel
	ix.mu.Unlock()
	<-ix.done
	return ix.db.Close()
}

func (ix *Index) flusher() {
	defer close(ix.done)
	for range ix.kick {
		t := time.NewTimer(indexFlushDelay)
		select {
		case <-t.C:
		case _, ok := <-ix.kick:
			t.Stop()
			if !ok {
				ix.flush()
				return
			}
		}
		ix.flush()
	}
	ix.flush()
}

// flush commits the pending writes in one transaction. A batch whose
// commit fails (a full disk, an I/O error) is dropped and logged: its
// cache entries are computed again on the next miss, and a \Recent mark
// in it is lost as a lost index loses it (recent.go).
func (ix *Index) flush() {
	ix.mu.Lock()
	batch := ix.pending
	ix.pending = make(map[indexKey][]byte)
	if len(batch) > 0 {
		ix.flushing = batch
	}
	ix.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	defer func() {
		ix.mu.Lock()
		ix.flushing = nil
		ix.mu.Unlock()
	}()
	if ix.testFlushing != nil {
		ix.testFlushing()
	}
	err := ix.db.Update(func(tx *bolt.Tx) error {
		for k, v := range batch {
			b, err := tx.CreateBucketIfNotExists([]byte(k.dir))
			if err != nil {
				return err
			}
			if v == nil {
				err = b.Delete([]byte(k.base))
			} else {
				err = b.Put([]byte(k.base), v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		ix.failed.Add(1)
		ix.log.Warn("index: writes lost: the commit failed", "path", ix.db.Path(), "writes", len(batch), "err", err)
	}
}

// queue adds writes (nil values delete) and wakes the flusher.
func (ix *Index) queue(dir string, bases []string, values [][]byte) {
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return
	}
	for i, b := range bases {
		ix.pending[indexKey{dir, b}] = values[i]
	}
	// The kicks never block (capacity 1, or dropped), so they may be sent
	// under mu, which keeps Close from closing the channel meanwhile.
	select {
	case ix.kick <- struct{}{}:
	default:
	}
	if len(ix.pending) >= indexFlushMax {
		select {
		case ix.kick <- struct{}{}: // a second kick ends the delay
		default:
		}
	}
	ix.mu.Unlock()
}

// Get returns the entry of base in the mailbox at dir, if cached.
func (ix *Index) Get(dir, base string) (IndexEntry, bool) {
	var e IndexEntry
	found := false
	ix.read(dir, base, func(v []byte) { e, found = decodeEntry(v) })
	return e, found
}

// read calls decode with the value of key in bucket: the queued one if a
// write is waiting, else the stored one (nil when there is none), which
// is only valid during the call.
func (ix *Index) read(bucket, key string, decode func(v []byte)) {
	ix.mu.Lock()
	k := indexKey{bucket, key}
	v, pending := ix.pending[k]
	if !pending {
		v, pending = ix.flushing[k]
	}
	ix.mu.Unlock()
	if pending {
		decode(v)
		return
	}
	ix.db.View(func(tx *bolt.Tx) error {
		var v []byte
		if b := tx.Bucket([]byte(bucket)); b != nil {
			v = b.Get([]byte(key))
		}
		decode(v)
		return nil
	})
}

// recentBucket holds the \Recent mark of each mailbox (recent.go), keyed
// by mailbox directory: UIDVALIDITY u32 | first unclaimed UID u32. Its
// name is no directory (those are absolute paths), so the readers of the
// message entries (ReadIndex, the fsck) never take it for a mailbox.
const recentBucket = "\x00recent"

// RecentMark returns the \Recent mark stored for the mailbox at dir.
func (ix *Index) RecentMark(dir string) (validity, first uint32, ok bool) {
	ix.read(recentBucket, dir, func(v []byte) {
		if len(v) == 8 {
			validity, first, ok = binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:]), true
		}
	})
	return validity, first, ok
}

// SetRecentMark stores the \Recent mark of the mailbox at dir, with the
// other queued writes.
func (ix *Index) SetRecentMark(dir string, validity, first uint32) {
	v := binary.BigEndian.AppendUint32(make([]byte, 0, 8), validity)
	ix.queue(recentBucket, []string{dir}, [][]byte{binary.BigEndian.AppendUint32(v, first)})
}

// decodeEntry reads a value; the structure is copied out of bbolt's
// memory, which is only valid inside the transaction.
func decodeEntry(v []byte) (IndexEntry, bool) {
	if len(v) < 25 || v[0] != indexVersion {
		return IndexEntry{}, false
	}
	return IndexEntry{
		FileSize:  int64(binary.BigEndian.Uint64(v[1:])),
		CRLFSize:  int64(binary.BigEndian.Uint64(v[9:])),
		MTime:     time.Unix(0, int64(binary.BigEndian.Uint64(v[17:]))),
		Structure: append([]byte(nil), v[25:]...),
	}, true
}

// Put caches the entry of base in the mailbox at dir. The write is
// queued; a commit that fails is the flusher's to log.
func (ix *Index) Put(dir, base string, e IndexEntry) {
	ix.queue(dir, []string{base}, [][]byte{encodeEntry(e)})
}

// encodeEntry is the stored form of e, which decodeEntry reads.
func encodeEntry(e IndexEntry) []byte {
	v := make([]byte, 25, 25+len(e.Structure))
	v[0] = indexVersion
	binary.BigEndian.PutUint64(v[1:], uint64(e.FileSize))
	binary.BigEndian.PutUint64(v[9:], uint64(e.CRLFSize))
	binary.BigEndian.PutUint64(v[17:], uint64(e.MTime.UnixNano()))
	return append(v, e.Structure...)
}

// Forget drops the entries of bases (expunged messages) in the mailbox at
// dir, queued as Put's writes are.
func (ix *Index) Forget(dir string, bases []string) {
	ix.queue(dir, bases, make([][]byte, len(bases)))
}
