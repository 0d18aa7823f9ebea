package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cistern-mail/cistern/maildir"
)

// Offline access for tools that inspect and repair a user's files while
// the daemon may be running (cistern check, cistern migrate): what
// maildirsize records, as it is, and the index read or pruned without
// the daemon's write queue. Nothing here recalculates, moves aside or
// creates a file it was only asked to read.

// ErrBadQuotaFile: maildirsize is not in the Maildir++ format.
var ErrBadQuotaFile = errors.New("store: maildirsize is not in the Maildir++ format")

// maxRecordedQuota bounds the read of a maildirsize that RecordedQuota
// inspects: a file this long is garbage, not a quota file.
const maxRecordedQuota = 1 << 20

// RecordedQuota returns the limit on the first line of root's maildirsize
// and the usage its other lines add up to, as they are, however long the
// file. A missing file gives an error wrapping os.ErrNotExist; a file
// that does not parse, one wrapping ErrBadQuotaFile.
func RecordedQuota(root string) (QuotaLimit, QuotaUsage, error) {
	fd, err := os.Open(filepath.Join(root, QuotaFile))
	if err != nil {
		return QuotaLimit{}, QuotaUsage{}, err
	}
	defer fd.Close()
	data, err := io.ReadAll(io.LimitReader(fd, maxRecordedQuota+1))
	if err != nil {
		return QuotaLimit{}, QuotaUsage{}, err
	}
	if len(data) > maxRecordedQuota {
		return QuotaLimit{}, QuotaUsage{}, fmt.Errorf("%w: longer than %d bytes", ErrBadQuotaFile, maxRecordedQuota)
	}
	f, err := parseQuotaFile(data)
	if err != nil {
		return QuotaLimit{}, QuotaUsage{}, fmt.Errorf("%w: %w", ErrBadQuotaFile, err)
	}
	return f.limit, f.usage, nil
}

// RewriteQuota counts the usage of the Maildir whose root is root and
// writes it into a new maildirsize with limit q, as RecalculateQuota does,
// and also when q is unlimited (RecalculateQuota then only counts): it
// repairs a maildirsize that exists whatever the limit.
func RewriteQuota(root string, q QuotaLimit) (QuotaUsage, error) {
	if !q.Unlimited() {
		return RecalculateQuota(root, q)
	}
	for try := 1; ; try++ {
		u, stamps, err := countQuota(root)
		if err != nil {
			return QuotaUsage{}, err
		}
		if err := maildir.WriteFile(root, QuotaFile, formatQuotaFile(q, u)); err != nil {
			return QuotaUsage{}, err
		}
		if (stamps != nil && unchanged(stamps)) || try == quotaRecalcTries {
			return u, nil
		}
	}
}

// ErrIndexBusy: another process (the daemon) has the index open for
// writing; bbolt's file lock keeps everyone else out meanwhile.
var ErrIndexBusy = errors.New("store: the index is open in another process")

// indexToolTimeout is how long a tool waits for the index's file lock.
// The daemon holds it for as long as it runs, so waiting longer only
// delays the answer.
const indexToolTimeout = 500 * time.Millisecond

// openIndexFile opens the bbolt file at path without creating it.
func openIndexFile(path string, readOnly bool) (*bolt.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: readOnly, Timeout: indexToolTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrIndexBusy, path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: index %s: %w", path, err)
	}
	return db, nil
}

// ReadIndex returns the entries of the index at path for every mailbox
// directory that keep accepts: directory -> base name -> entry, without
// the structure blobs. The file is opened read-only and shares its lock
// with other readers; it fails with ErrIndexBusy while the daemon holds
// it, and with an error wrapping os.ErrNotExist when there is no index.
// Values this version cannot decode are returned with a zero entry and
// FileSize -1.
func ReadIndex(path string, keep func(dir string) bool) (map[string]map[string]IndexEntry, error) {
	db, err := openIndexFile(path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	out := make(map[string]map[string]IndexEntry)
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			dir := string(name)
			if !keep(dir) {
				return nil
			}
			entries := make(map[string]IndexEntry)
			out[dir] = entries
			return b.ForEach(func(k, v []byte) error {
				entries[string(k)] = decodeSizes(v)
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading index %s: %w", path, err)
	}
	return out, nil
}

// decodeSizes is decodeEntry without the structure blob.
func decodeSizes(v []byte) IndexEntry {
	if len(v) < 25 || v[0] != indexVersion {
		return IndexEntry{FileSize: -1}
	}
	return IndexEntry{
		FileSize: int64(binary.BigEndian.Uint64(v[1:])),
		CRLFSize: int64(binary.BigEndian.Uint64(v[9:])),
		MTime:    time.Unix(0, int64(binary.BigEndian.Uint64(v[17:]))),
	}
}

// DropIndexEntries deletes from the index at path the entries of
// entries (mailbox directory -> base names) and every entry of the
// mailbox directories in mailboxes, in one transaction: all of them or,
// after an error, none. ErrIndexBusy while the daemon holds the index.
func DropIndexEntries(path string, entries map[string][]string, mailboxes []string) error {
	db, err := openIndexFile(path, false)
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for dir, bases := range entries {
			b := tx.Bucket([]byte(dir))
			if b == nil {
				continue
			}
			for _, base := range bases {
				if err := b.Delete([]byte(base)); err != nil {
					return err
				}
			}
		}
		for _, dir := range mailboxes {
			err := tx.DeleteBucket([]byte(dir))
			if err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: pruning index %s: %w", path, err)
	}
	return nil
}
