package uidlist

import (
	"reflect"
	"testing"
)

// FuzzFeedAppended: the Reader parses a growing file in pieces (what it
// read, then what was appended since, from the first byte it did not
// consume). Cut anywhere, the pieces give the same File, Problems and
// consumed length as the whole read at once.
func FuzzFeedAppended(f *testing.F) {
	addSeeds(f, "*.uidlist")
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := newParser("fuzz")
		n := whole.feed(string(data), false)
		for cut := 0; cut <= len(data); cut += 1 + len(data)/16 {
			p := newParser("fuzz")
			first := p.feed(string(data[:cut]), false)
			if p.err != nil || !p.haveHdr {
				// The Reader reads the whole file again until its header
				// is complete.
				continue
			}
			got := first + p.feed(string(data[first:]), false)
			if got != n || !reflect.DeepEqual(p.err, whole.err) {
				t.Fatalf("cut at %d: consumed %d, error %v; whole: %d, %v", cut, got, p.err, n, whole.err)
			}
			if !reflect.DeepEqual(p.problems, whole.problems) {
				t.Fatalf("cut at %d: problems %v, whole %v", cut, p.problems, whole.problems)
			}
			if a, b := p.file(), whole.file(); !reflect.DeepEqual(a.Header, b.Header) || !sameRecords(a.Records, b.Records) {
				t.Fatalf("cut at %d: %+v, whole %+v", cut, a, b)
			}
		}
	})
}

func sameRecords(a, b []Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].UID != b[i].UID || a[i].Name != b[i].Name || !reflect.DeepEqual(a[i].Ext, b[i].Ext) {
			return false
		}
	}
	return true
}
