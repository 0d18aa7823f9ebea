package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
//
// One process (the daemon) opens it; bbolt's file lock keeps a second one
// out. Writes are batched by bbolt (Batch), so many sessions filling the
// cache cost few fsyncs.
type Index struct {
	db *bolt.DB // immutable
}

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
func OpenIndex(path string) (*Index, error) {
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
	return &Index{db: db}, nil
}

// Close closes the index.
func (ix *Index) Close() error { return ix.db.Close() }

// Get returns the entry of base in the mailbox at dir, if cached.
func (ix *Index) Get(dir, base string) (IndexEntry, bool) {
	var e IndexEntry
	found := false
	ix.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(dir))
		if b == nil {
			return nil
		}
		v := b.Get([]byte(base))
		if len(v) < 25 || v[0] != indexVersion {
			return nil
		}
		e.FileSize = int64(binary.BigEndian.Uint64(v[1:]))
		e.CRLFSize = int64(binary.BigEndian.Uint64(v[9:]))
		e.MTime = time.Unix(0, int64(binary.BigEndian.Uint64(v[17:])))
		e.Structure = append([]byte(nil), v[25:]...)
		found = true
		return nil
	})
	return e, found
}

// Put caches the entry of base in the mailbox at dir.
func (ix *Index) Put(dir, base string, e IndexEntry) error {
	v := make([]byte, 25, 25+len(e.Structure))
	v[0] = indexVersion
	binary.BigEndian.PutUint64(v[1:], uint64(e.FileSize))
	binary.BigEndian.PutUint64(v[9:], uint64(e.CRLFSize))
	binary.BigEndian.PutUint64(v[17:], uint64(e.MTime.UnixNano()))
	v = append(v, e.Structure...)
	return ix.db.Batch(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(dir))
		if err != nil {
			return err
		}
		return b.Put([]byte(base), v)
	})
}

// Forget drops the entries of bases (expunged messages) in the mailbox at
// dir.
func (ix *Index) Forget(dir string, bases []string) error {
	if len(bases) == 0 {
		return nil
	}
	return ix.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(dir))
		if b == nil {
			return nil
		}
		for _, base := range bases {
			if err := b.Delete([]byte(base)); err != nil {
				return err
			}
		}
		return nil
	})
}
