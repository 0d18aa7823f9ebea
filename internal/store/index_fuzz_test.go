package store

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// FuzzIndexEntry: any value found in the index (a foreign or damaged
// file, an older version) is a miss or an entry, never a panic; an
// entry is read only from a version 1 value, Put writes it back byte for
// byte, and Get returns it unchanged.
func FuzzIndexEntry(f *testing.F) {
	v := make([]byte, 25)
	v[0] = indexVersion
	binary.BigEndian.PutUint64(v[1:], 1234)
	binary.BigEndian.PutUint64(v[9:], 1260)
	binary.BigEndian.PutUint64(v[17:], uint64(time.Date(2024, 3, 1, 12, 0, 0, 5, time.UTC).UnixNano()))
	f.Add(v)
	f.Add(append(bytes.Clone(v), "structure blob"...))
	f.Add(v[:24])
	f.Add([]byte{2})
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	f.Fuzz(func(t *testing.T, v []byte) {
		e, ok := decodeEntry(v)
		if ok != (len(v) >= 25 && v[0] == indexVersion) {
			t.Fatalf("decodeEntry(%x): %v", v, ok)
		}
		if !ok {
			return
		}
		if !bytes.Equal(e.Structure, v[25:]) || len(v) > 25 && &e.Structure[0] == &v[25] {
			t.Fatalf("decodeEntry(%x): structure %x is not a copy of the value's", v, e.Structure)
		}
		// An index without its database and flusher: Put encodes into
		// pending, where Get finds and decodes it.
		ix := &Index{pending: make(map[indexKey][]byte), kick: make(chan struct{}, 1)}
		ix.Put("dir", "base", e)
		if stored := ix.pending[indexKey{"dir", "base"}]; !bytes.Equal(stored, v) {
			t.Fatalf("decodeEntry(%x) stored back as %x", v, stored)
		}
		got, ok := ix.Get("dir", "base")
		if !ok || got.FileSize != e.FileSize || got.CRLFSize != e.CRLFSize || !got.MTime.Equal(e.MTime) || !bytes.Equal(got.Structure, e.Structure) {
			t.Fatalf("Put %+v, Get %+v, %v", e, got, ok)
		}
	})
}
