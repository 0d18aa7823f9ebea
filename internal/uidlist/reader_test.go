package uidlist

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"
)

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t testing.TB, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes content to a new inode and renames it over path, as
// Dovecot's rewrite does.
func replaceFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".test-tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func mustRefresh(t testing.TB, r *Reader) (*File, []Problem) {
	t.Helper()
	f, problems, err := r.Refresh()
	if err != nil {
		t.Fatal(err)
	}
	return f, problems
}

func TestReaderMissing(t *testing.T) {
	dir := t.TempDir()
	r := NewReader(dir)
	f, problems, err := r.Refresh()
	if f != nil || problems != nil || !errors.Is(err, ErrNotExist) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Refresh of missing file = %v, %v, %v", f, problems, err)
	}
	writeFile(t, filepath.Join(dir, FileName), "3 V1 N2\n1 :a\n")
	f, _ = mustRefresh(t, r)
	if !reflect.DeepEqual(uids(f), []uint32{1}) {
		t.Fatalf("after create: %v", uids(f))
	}
	if err := os.Remove(filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	if f, _, err := r.Refresh(); f != nil || !errors.Is(err, ErrNotExist) {
		t.Fatalf("after remove: %v, %v", f, err)
	}
}

func TestReaderUnchangedIsShared(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, FileName), string(readTestdata(t, "dovecot-v3.uidlist")))
	r := NewReader(dir)
	f1, _ := mustRefresh(t, r)
	f2, problems := mustRefresh(t, r)
	if f1 != f2 {
		t.Error("unchanged file gave a new *File")
	}
	if problems != nil {
		t.Errorf("unchanged file reported problems again: %v", problems)
	}
	if cap(f1.Records) != len(f1.Records) {
		t.Error("snapshot Records not capped: an append by a caller would write into shared memory")
	}
}

func TestReaderAppend(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, "3 V7 N2 G00000000000000000000000000000001\n1 :a\n")
	r := NewReader(dir)
	f1, _ := mustRefresh(t, r)

	appendFile(t, path, "2 S5 :b\n3 :c\n")
	f2, problems := mustRefresh(t, r)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if got := uids(f2); !reflect.DeepEqual(got, []uint32{1, 2, 3}) {
		t.Fatalf("after append: %v", got)
	}
	if f2.Header.NextUID != 4 || f2.Header.UIDValidity != 7 {
		t.Errorf("header after append: %+v", f2.Header)
	}
	if got := uids(f1); !reflect.DeepEqual(got, []uint32{1}) {
		t.Errorf("earlier snapshot changed: %v", got)
	}
	// Only the new bytes were parsed: the first record's name is still the
	// bytes read the first time.
	if unsafe.StringData(f1.Records[0].Name) != unsafe.StringData(f2.Records[0].Name) {
		t.Error("append reparsed the whole file")
	}

	// Damage in appended lines is reported with file line numbers.
	appendFile(t, path, "2 :old\n4 :d\n")
	f3, problems := mustRefresh(t, r)
	if got := uids(f3); !reflect.DeepEqual(got, []uint32{1, 2, 3, 4}) {
		t.Fatalf("after damaged append: %v", got)
	}
	if len(problems) != 1 || problems[0].Line != 5 || !strings.Contains(problems[0].Reason, "not ordered") {
		t.Errorf("problems = %v, want one at line 5", problems)
	}

	// A later line repeating a base name replaces the record, without
	// touching earlier snapshots.
	appendFile(t, path, "5 :a:2,S\n")
	f4, problems := mustRefresh(t, r)
	if got := uids(f4); !reflect.DeepEqual(got, []uint32{2, 3, 4, 5}) || len(problems) != 1 {
		t.Fatalf("after duplicate: %v, %v", got, problems)
	}
	if got := uids(f3); !reflect.DeepEqual(got, []uint32{1, 2, 3, 4}) {
		t.Errorf("earlier snapshot changed by duplicate removal: %v", got)
	}
}

func TestReaderPartialLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, "3 V7 N2\n1 :a\n2 :b")
	r := NewReader(dir)
	f, problems := mustRefresh(t, r)
	if got := uids(f); !reflect.DeepEqual(got, []uint32{1}) || len(problems) != 0 {
		t.Fatalf("with partial line: %v, %v", got, problems)
	}
	if f.Header.NextUID != 2 {
		t.Errorf("NextUID counted the partial line: %d", f.Header.NextUID)
	}
	// Unchanged: still one stat, still not consumed.
	if f2, _ := mustRefresh(t, r); f2 != f {
		t.Error("unchanged file with a partial line was reread")
	}
	appendFile(t, path, ".M2\n3 :c")
	f, problems = mustRefresh(t, r)
	if len(problems) != 0 || len(f.Records) != 2 || f.Records[1].Name != "b.M2" {
		t.Fatalf("after completing the line: %+v, %v", f.Records, problems)
	}
	appendFile(t, path, "\n")
	f, _ = mustRefresh(t, r)
	if got := uids(f); !reflect.DeepEqual(got, []uint32{1, 2, 3}) {
		t.Fatalf("after the last newline: %v", got)
	}
}

func TestReaderRewrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, "3 V7 N9\n1 :a\n2 :b\n")
	r := NewReader(dir)
	f1, _ := mustRefresh(t, r)
	// Same size, same content length: only the inode tells.
	replaceFile(t, path, "3 V7 N9\n1 :x\n2 :y\n")
	f2, _ := mustRefresh(t, r)
	if f2 == f1 || f2.Records[0].Name != "x" || f2.Records[1].Name != "y" {
		t.Fatalf("rewrite not noticed: %+v", f2.Records)
	}
	// A shorter file on a new inode (expunges compressed away).
	replaceFile(t, path, "3 V7 N9\n2 :y\n")
	f3, _ := mustRefresh(t, r)
	if got := uids(f3); !reflect.DeepEqual(got, []uint32{2}) {
		t.Fatalf("after shrinking rewrite: %v", got)
	}
	// Truncated in place (no one should, but then the file is reread).
	writeFile(t, path, "3 V8 N3\n")
	f4, _ := mustRefresh(t, r)
	if len(f4.Records) != 0 || f4.Header.UIDValidity != 8 {
		t.Fatalf("after truncation: %+v", f4)
	}
}

func TestReaderNextUIDLowered(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, "3 V7 N50\n1 :a\n")
	r := NewReader(dir)
	mustRefresh(t, r)
	replaceFile(t, path, "3 V7 N10\n1 :a\n")
	f, problems := mustRefresh(t, r)
	if f.Header.NextUID != 50 || len(problems) != 1 || !strings.Contains(problems[0].Reason, "lowered") {
		t.Fatalf("lowered next UID: %+v, %v", f.Header, problems)
	}
	appendFile(t, path, "2 :b\n")
	f, problems = mustRefresh(t, r)
	if f.Header.NextUID != 50 || len(problems) != 0 {
		t.Fatalf("after append: %+v, %v (reported twice?)", f.Header, problems)
	}
	// A new UIDVALIDITY starts over.
	replaceFile(t, path, "3 V8 N2\n1 :a\n")
	if f, problems = mustRefresh(t, r); f.Header.NextUID != 2 || len(problems) != 0 {
		t.Fatalf("new UIDVALIDITY: %+v, %v", f.Header, problems)
	}
}

func TestReaderBadHeader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	tests := []struct{ content, reason string }{
		{"", "empty"},
		{"3 V7 N", "not terminated"},
		{"9 V1 N1\n", "unsupported"},
	}
	r := NewReader(dir)
	for _, tt := range tests {
		replaceFile(t, path, tt.content)
		f, _, err := r.Refresh()
		if f != nil || err == nil || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%q: %v, %v", tt.content, f, err)
		}
	}
	replaceFile(t, path, "3 V7 N2\n1 :a\n")
	if f, _ := mustRefresh(t, r); len(f.Records) != 1 {
		t.Errorf("after repair: %+v", f)
	}
}

func TestReaderConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, "3 V7 N2\n")
	r := NewReader(dir)
	const writes = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= writes; i++ {
			appendFile(t, path, itoa(i)+" :m"+itoa(i)+"\n")
		}
	}()
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := 0
			for prev < writes {
				f, problems, err := r.Refresh()
				if err != nil {
					t.Error(err)
					return
				}
				if len(problems) != 0 {
					t.Errorf("problems: %v", problems)
					return
				}
				if len(f.Records) < prev {
					t.Errorf("records went from %d to %d", prev, len(f.Records))
					return
				}
				for i, rec := range f.Records {
					if rec.UID != uint32(i+1) {
						t.Errorf("record %d has UID %d", i, rec.UID)
						return
					}
				}
				prev = len(f.Records)
			}
		}()
	}
	wg.Wait()
}

func itoa(i int) string { return strconv.Itoa(i) }

func BenchmarkReaderUnchanged100k(b *testing.B) {
	dir := b.TempDir()
	writeFile(b, filepath.Join(dir, FileName), string(bigFile(100000)))
	r := NewReader(dir)
	mustRefresh(b, r)
	for b.Loop() {
		mustRefresh(b, r)
	}
}

// TestReaderRewriteReusingInode: rewrites free the old inode, and the
// filesystem may give its number to the next rewrite's file; a Reader
// must never take such a file for an append of the one it read.
func TestReaderRewriteReusingInode(t *testing.T) {
	dir := t.TempDir()
	r := NewReader(dir)
	defer r.Close()
	for gen := 1; gen <= 60; gen++ {
		f := &File{Header: Header{Version: 3, UIDValidity: 42, NextUID: uint32(gen + 1), GUID: NewGUID()}}
		for i := 1; i <= gen; i++ {
			f.Records = append(f.Records, Record{UID: uint32(i), Name: fmt.Sprintf("gen%d.msg%d", gen, i)})
		}
		// Two rewrites between reads, each a temp file renamed over the
		// old one, as Dovecot and we rewrite. ext4 hands a freed inode
		// number out again once the journal committed its freeing, so
		// the second rewrite often gets the inode the Reader last read.
		for step := 0; step < 2; step++ {
			tmp := filepath.Join(dir, "rewrite.tmp")
			if err := os.WriteFile(tmp, f.Marshal(), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(dir, FileName)); err != nil {
				t.Fatal(err)
			}
			syscall.Sync()
		}
		got, _, err := r.Refresh()
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Records) != gen {
			t.Fatalf("generation %d: %d records", gen, len(got.Records))
		}
		for i, rec := range got.Records {
			if want := fmt.Sprintf("gen%d.msg%d", gen, i+1); rec.Name != want {
				t.Fatalf("generation %d: record %d is %q, want %q (a rewrite read as an append)", gen, i, rec.Name, want)
			}
		}
	}
}

// TestReadHeader: the header alone, as Parse reads it, from offset 0
// whatever the file's position; a header without its newline is an
// ErrBadHeader.
func TestReadHeader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	long := strings.Repeat("X", 3000) // past the first read
	data := "3 V1234 N57 G0123456789abcdef0123456789abcdef X" + long + "\n1 :a\n56 :b\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(10, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := Parse(path, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if h.UIDValidity != 1234 || h.NextUID != 57 || h.GUID != want.Header.GUID || len(h.Extra) != 1 || h.Extra[0] != "X"+long {
		t.Fatalf("header %+v, want %+v", h, want.Header)
	}
	if err := os.WriteFile(path, []byte("3 V1234 N57"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := ReadHeader(g); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("ReadHeader of a header without newline: %v, want ErrBadHeader", err)
	}
}
