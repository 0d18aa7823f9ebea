package uidlist

import "hash/maphash"

// A lean Reader keeps, of the file it read, only what it needs to read
// what is appended next (the header, the last UID, where it stopped)
// and a set of the hashes of every base name read: 8 bytes a record in
// a table at most three quarters full, instead of the records, the map
// of base names and the file's bytes (about 300 bytes a record for
// Dovecot's names). Its Files are partial (File.Partial): the records of
// its last read. MayHold answers, exactly when it says no, whether the
// file holds a record of a base name; a caller that needs the record of
// a yes reads the whole file (Parse).

// NewLeanReader returns a lean Reader of dir/dovecot-uidlist: Refresh
// returns partial Files, and the records it read are let go by Settle.
// It reads nothing yet.
func NewLeanReader(dir string) *Reader {
	r := NewReader(dir)
	r.lean = true
	return r
}

// MayHold reports whether the file as last read may hold a record of
// base: false only when no record of the whole file has that base name.
// A Reader that is not lean answers exactly.
func (r *Reader) MayHold(base string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.p == nil {
		return false
	}
	if !r.lean {
		_, ok := r.p.bases[base]
		return ok
	}
	return r.p.seen.has(hashBase(base))
}

// Settle lets go of the records of the last read (a lean Reader's
// memory), and returns the File that Refresh returns from now on while
// the file is unchanged: the same header, no records. A Reader that is
// not lean, or has read nothing, returns what it holds.
func (r *Reader) Settle() *File {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.lean || r.cur == nil || (len(r.cur.Records) == 0 && r.p.recs == nil) {
		return r.cur
	}
	c := *r.cur
	c.Records = nil
	r.cur = &c
	r.p.recs, r.p.bases, r.p.extPool = nil, nil, nil
	return r.cur
}

// hashSeed keys the hashes of base names for this process.
var hashSeed = maphash.MakeSeed()

// hashBase is the key of base in a hashSet: never 0 (an empty slot).
func hashBase(base string) uint64 {
	return maphash.String(hashSeed, base) | 1
}

// hashSet is an open-addressing set of non-zero hashes, linear probing,
// at most three quarters full.
type hashSet struct {
	slots []uint64 // len a power of two, or 0
	n     int
}

func (s *hashSet) add(h uint64) {
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return
		case 0:
			s.slots[i] = h
			s.n++
			return
		}
	}
}

func (s *hashSet) has(h uint64) bool {
	if len(s.slots) == 0 {
		return false
	}
	mask := uint64(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, max(64, 2*len(old)))
	s.n = 0
	for _, h := range old {
		if h != 0 {
			s.add(h)
		}
	}
}
