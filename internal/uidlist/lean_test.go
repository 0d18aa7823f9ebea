package uidlist

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestLeanReader: a lean Reader's Files hold the records of its last
// read only, Len counts the whole file's, MayHold says no exactly for
// base names no record has, Settle lets the records go and is what an
// unchanged file answers, and an append or a rewrite is read as a full
// Reader reads it.
func TestLeanReader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	var b strings.Builder
	b.WriteString("3 V7 N1 G0123456789abcdef0123456789abcdef\n")
	for i := 1; i <= 500; i++ {
		fmt.Fprintf(&b, "%d W%d :m%d.host\n", i, i, i)
	}
	writeFile(t, path, b.String())

	r := NewLeanReader(dir)
	defer r.Close()
	f, _ := mustRefresh(t, r)
	if !f.Partial() || len(f.Records) != 500 || f.Len() != 500 || f.Header.NextUID != 501 {
		t.Fatalf("full read: partial %v, %d records, Len %d, next UID %d", f.Partial(), len(f.Records), f.Len(), f.Header.NextUID)
	}
	for i := 1; i <= 500; i++ {
		if !r.MayHold(fmt.Sprintf("m%d.host", i)) {
			t.Fatalf("MayHold(m%d.host) = false for a record of the file", i)
		}
	}
	for i := 501; i <= 1500; i++ {
		// 1000 absent names: a false yes has odds of about 2^-50 here.
		if r.MayHold(fmt.Sprintf("m%d.host", i)) {
			t.Fatalf("MayHold(m%d.host) = true, no record has it", i)
		}
	}
	s := r.Settle()
	if len(s.Records) != 0 || s.Len() != 500 || s.Header.GUID != f.Header.GUID || s.Header.NextUID != f.Header.NextUID {
		t.Fatalf("settled: %d records, Len %d, header %+v", len(s.Records), s.Len(), s.Header)
	}
	if g, _ := mustRefresh(t, r); g != s {
		t.Fatal("an unchanged file is not answered with the settled File")
	}
	if len(f.Records) != 500 || f.Records[499].Name != "m500.host" {
		t.Fatal("Settle changed a File handed out before")
	}

	appendFile(t, path, "501 :m501.host\n502 :m502.host\n503 :m1.host\n")
	g, problems := mustRefresh(t, r)
	if len(problems) != 0 {
		t.Fatalf("problems %v", problems)
	}
	if len(g.Records) != 3 || g.Records[0].UID != 501 || g.Records[2].Name != "m1.host" || g.Len() != 503 || g.Header.NextUID != 504 {
		t.Fatalf("append: records %+v, Len %d, next UID %d", g.Records, g.Len(), g.Header.NextUID)
	}
	if !r.MayHold("m502.host") || !r.MayHold("m3.host") {
		t.Fatal("MayHold forgot a record")
	}
	// An appended UID at or below the last one read before is out of
	// order, as for a full Reader.
	appendFile(t, path, "400 :late.host\n")
	if h, problems := mustRefresh(t, r); len(problems) != 1 || len(h.Records) != 0 || r.MayHold("late.host") {
		t.Fatalf("out-of-order append: problems %v, records %+v", problems, h.Records)
	}

	replaceFile(t, path, "3 V7 N900 G0123456789abcdef0123456789abcdef\n800 :x.host\n")
	h, _ := mustRefresh(t, r)
	if len(h.Records) != 1 || h.Len() != 1 || h.Header.NextUID != 900 || r.MayHold("m502.host") || !r.MayHold("x.host") {
		t.Fatalf("rewrite: records %+v, Len %d, next UID %d", h.Records, h.Len(), h.Header.NextUID)
	}
}

// TestFullReaderMayHold: a Reader that is not lean answers MayHold
// exactly and Settle changes nothing.
func TestFullReaderMayHold(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, FileName), "3 V7 N1\n1 :a\n2 :b\n")
	r := NewReader(dir)
	defer r.Close()
	f, _ := mustRefresh(t, r)
	if f.Partial() || f.Len() != 2 || !r.MayHold("a") || r.MayHold("c") {
		t.Fatalf("partial %v, Len %d", f.Partial(), f.Len())
	}
	if r.Settle() != f || len(f.Records) != 2 {
		t.Fatal("Settle changed a full Reader's File")
	}
}

// TestHashSetGrows: the set keeps every hash through its growths.
func TestHashSetGrows(t *testing.T) {
	var s hashSet
	for i := uint64(1); i <= 10000; i++ {
		s.add(i*0x9e3779b97f4a7c15 | 1)
	}
	for i := uint64(1); i <= 10000; i++ {
		if !s.has(i*0x9e3779b97f4a7c15 | 1) {
			t.Fatalf("lost hash %d", i)
		}
	}
	if s.n != 10000 || s.n*4 > len(s.slots)*3 {
		t.Fatalf("%d hashes in %d slots", s.n, len(s.slots))
	}
}

// TestLeanReaderLetsGo: once settled, a lean Reader keeps far less than
// the file's bytes (the header, the set of hashes): no record, and no
// string of the header shares the file's bytes.
func TestLeanReaderLetsGo(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("3 V7 N1 G0123456789abcdef0123456789abcdef Xextra\n")
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&b, "%d W%d :1700000000.M%dP%d.host.example.org,S=%d,W=%d\n", i, i, i, i, i, i)
	}
	size := b.Len()
	writeFile(t, filepath.Join(dir, FileName), b.String())
	b.Reset()

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	r := NewLeanReader(dir)
	defer r.Close()
	if f, _ := mustRefresh(t, r); len(f.Records) != 20000 {
		t.Fatalf("%d records read", len(f.Records))
	}
	s := r.Settle()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	kept := int64(ms.HeapAlloc) - int64(before)
	if kept > int64(size)/2 {
		t.Fatalf("a settled lean Reader of a %d-byte file keeps %d bytes", size, kept)
	}
	if s.Header.GUID != "0123456789abcdef0123456789abcdef" || len(s.Header.Extra) != 1 || s.Header.Extra[0] != "Xextra" {
		t.Fatalf("header %+v", s.Header)
	}
	runtime.KeepAlive(r)
}
