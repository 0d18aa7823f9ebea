package uidlist

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func lockDir(t *testing.T, dir string) *Lock {
	t.Helper()
	l, err := AcquireLock(context.Background(), dir, LockOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Release() })
	return l
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func parseDir(t *testing.T, dir string) *File {
	t.Helper()
	f, problems, err := Parse(FileName, []byte(readFile(t, filepath.Join(dir, FileName))))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	return f
}

func TestAppendNeedsAFile(t *testing.T) {
	dir := t.TempDir()
	l := lockDir(t, dir)
	// No file: its UIDVALIDITY is not Append's to invent.
	if err := Append(l, dir, []Record{{UID: 1, Name: "a.M1"}}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Append without a file = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !os.IsNotExist(err) {
		t.Fatalf("Append made a file: %v", err)
	}
	if err := Rewrite(l, dir, &File{Header: Header{Version: 3, UIDValidity: 77, NextUID: 1, GUID: NewGUID()}}); err != nil {
		t.Fatal(err)
	}
	if err := Append(l, dir, []Record{{UID: 1, Name: "a.M1"}, {UID: 2, Name: "b.M2:2,S", Ext: []string{"S10", "W12"}}}); err != nil {
		t.Fatal(err)
	}
	f := parseDir(t, dir)
	if f.Header.Version != 3 || f.Header.NextUID != 3 || !isHexGUID(f.Header.GUID) || f.Header.UIDValidity != 77 {
		t.Fatalf("header: %+v", f.Header)
	}
	hdrLine := strings.SplitN(readFile(t, filepath.Join(dir, FileName)), "\n", 2)[0]

	if err := Append(l, dir, []Record{{UID: 5, Name: "c.M5"}}); err != nil {
		t.Fatal(err)
	}
	content := readFile(t, filepath.Join(dir, FileName))
	want := hdrLine + "\n1 :a.M1\n2 S10 W12 :b.M2:2,S\n5 :c.M5\n"
	if content != want {
		t.Fatalf("file:\n%s\nwant\n%s", content, want)
	}
	// The header is not rewritten on append (as in Dovecot); readers
	// compute the next UID.
	if f := parseDir(t, dir); f.Header.NextUID != 6 || !reflect.DeepEqual(uids(f), []uint32{1, 2, 5}) {
		t.Fatalf("after append: %+v %v", f.Header, uids(f))
	}
	if _, err := os.Stat(filepath.Join(dir, TempName)); !os.IsNotExist(err) {
		t.Errorf("temp file left: %v", err)
	}
}

func TestAppendRejects(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, FileName), "3 V7 N10 G00000000000000000000000000000001\n3 :a.M3\n")
	l := lockDir(t, dir)
	tests := []struct {
		name string
		recs []Record
		want error
	}{
		{"below last", []Record{{UID: 2, Name: "x"}}, ErrUIDOrder},
		{"below next uid", []Record{{UID: 9, Name: "x"}}, ErrUIDOrder},
		{"not ascending", []Record{{UID: 12, Name: "x"}, {UID: 11, Name: "y"}}, ErrUIDOrder},
		{"base already has a UID", []Record{{UID: 10, Name: "a.M3:2,S"}}, ErrDuplicateName},
		{"twice in the batch", []Record{{UID: 10, Name: "x"}, {UID: 11, Name: "x:2,S"}}, ErrDuplicateName},
		{"bad name", []Record{{UID: 10, Name: "x\ny"}}, ErrBadRecord},
		{"bad ext", []Record{{UID: 10, Name: "x", Ext: []string{"s1"}}}, ErrBadRecord},
	}
	before := readFile(t, filepath.Join(dir, FileName))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Append(l, dir, tt.recs); !errors.Is(err, tt.want) {
				t.Errorf("Append = %v, want %v", err, tt.want)
			}
		})
	}
	if after := readFile(t, filepath.Join(dir, FileName)); after != before {
		t.Errorf("rejected appends changed the file:\n%s", after)
	}
	if err := Append(l, dir, []Record{{UID: 10, Name: "x"}}); err != nil {
		t.Errorf("valid append: %v", err)
	}
	other := t.TempDir()
	if err := Append(l, other, []Record{{UID: 11, Name: "y"}}); !errors.Is(err, ErrWrongLock) {
		t.Errorf("Append with another dir's lock = %v, want ErrWrongLock", err)
	}
	if err := Append(nil, dir, []Record{{UID: 11, Name: "y"}}); !errors.Is(err, ErrWrongLock) {
		t.Errorf("Append without lock = %v, want ErrWrongLock", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := Append(l, dir, []Record{{UID: 11, Name: "y"}}); !errors.Is(err, ErrWrongLock) {
		t.Errorf("Append after Release = %v, want ErrWrongLock", err)
	}
}

func TestAppendAfterPartialLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, "3 V7 N2 G00000000000000000000000000000001\n1 :a\n2 :b.M2P3.ho")
	l := lockDir(t, dir)
	if err := Append(l, dir, []Record{{UID: 3, Name: "c"}}); err != nil {
		t.Fatal(err)
	}
	f, problems, err := Parse(path, []byte(readFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	// The torn line stays damage (it is terminated, not glued to ours):
	// here it happens to be a whole record, which is kept.
	if got := uids(f); !reflect.DeepEqual(got, []uint32{1, 2, 3}) || len(problems) != 0 {
		t.Fatalf("after append over a torn line: %v, %v\n%s", got, problems, readFile(t, path))
	}
	if f.Records[2].Name != "c" {
		t.Errorf("our record was glued: %+v", f.Records[2])
	}
}

func TestAppendConvertsOldVersion(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, FileName), string(readTestdata(t, "dovecot-v1.uidlist")))
	l := lockDir(t, dir)
	if err := Append(l, dir, []Record{{UID: 6, Name: "new.M6"}}); err != nil {
		t.Fatal(err)
	}
	f := parseDir(t, dir)
	if f.Header.Version != 3 || f.Header.UIDValidity != 1199999999 || f.Header.NextUID != 7 || f.Header.GUID == "" {
		t.Fatalf("converted header: %+v", f.Header)
	}
	if got := uids(f); !reflect.DeepEqual(got, []uint32{1, 2, 5, 6}) {
		t.Fatalf("converted records: %v", got)
	}
	if f.Records[0].Name != "1199999999.M1P100.oldhost:2,S" {
		t.Errorf("name not kept: %q", f.Records[0].Name)
	}
}

func TestRewrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, "3 V7 N100 G00000000000000000000000000000001\n1 :a\n50 :b\n")
	// A leftover temp file of a crashed writer.
	writeFile(t, filepath.Join(dir, TempName), "junk")
	l := lockDir(t, dir)
	in := &File{Header: Header{Version: 1, UIDValidity: 7, NextUID: 3, Extra: []string{"Pfmt"}},
		Records: []Record{{UID: 1, Name: "a"}, {UID: 2, Name: "c:2,S", Ext: []string{"S5"}}}}
	inCopy := *in
	if err := Rewrite(l, dir, in); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*in, inCopy) {
		t.Error("Rewrite modified its argument")
	}
	f := parseDir(t, dir)
	// Version 3, a GUID, and the next UID of the old file kept: UID 50..99
	// may have been seen by clients.
	if f.Header.Version != 3 || f.Header.NextUID != 100 || !isHexGUID(f.Header.GUID) || !reflect.DeepEqual(f.Header.Extra, []string{"Pfmt"}) {
		t.Errorf("header: %+v", f.Header)
	}
	if !reflect.DeepEqual(f.Records, in.Records) {
		t.Errorf("records: %+v", f.Records)
	}
	if _, err := os.Stat(filepath.Join(dir, TempName)); !os.IsNotExist(err) {
		t.Errorf("temp file left: %v", err)
	}
	// A new UIDVALIDITY does not inherit the old next UID.
	in2 := &File{Header: Header{UIDValidity: 8, NextUID: 1}, Records: []Record{{UID: 4, Name: "d"}}}
	if err := Rewrite(l, dir, in2); err != nil {
		t.Fatal(err)
	}
	if f := parseDir(t, dir); f.Header.UIDValidity != 8 || f.Header.NextUID != 5 {
		t.Errorf("new UIDVALIDITY header: %+v", f.Header)
	}
	// Invalid input writes nothing.
	before := readFile(t, path)
	bad := &File{Header: Header{UIDValidity: 8, NextUID: 9}, Records: []Record{{UID: 2, Name: "x"}, {UID: 1, Name: "y"}}}
	if err := Rewrite(l, dir, bad); !errors.Is(err, ErrUIDOrder) {
		t.Errorf("Rewrite of unordered records = %v", err)
	}
	if readFile(t, path) != before {
		t.Error("failed Rewrite changed the file")
	}
}

func TestRewriteKeepsMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	writeFile(t, path, "3 V7 N2\n1 :a\n")
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	l := lockDir(t, dir)
	if err := Rewrite(l, dir, &File{Header: Header{UIDValidity: 7, NextUID: 2}}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after Rewrite %v, want 0640", fi.Mode().Perm())
	}
}

// TestRewriteSeenByReader: a Reader notices our rewrite (new inode) and
// our appends.
func TestRewriteSeenByReader(t *testing.T) {
	dir := t.TempDir()
	l := lockDir(t, dir)
	r := NewReader(dir)
	if err := Rewrite(l, dir, &File{Header: Header{UIDValidity: 9, NextUID: 1}, Records: []Record{{UID: 1, Name: "a"}}}); err != nil {
		t.Fatal(err)
	}
	if f, _ := mustRefresh(t, r); !reflect.DeepEqual(uids(f), []uint32{1}) {
		t.Fatalf("after rewrite: %v", uids(f))
	}
	if err := Append(l, dir, []Record{{UID: 2, Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	if f, _ := mustRefresh(t, r); !reflect.DeepEqual(uids(f), []uint32{1, 2}) {
		t.Fatalf("after append: %v", uids(f))
	}
	if err := Rewrite(l, dir, &File{Header: Header{UIDValidity: 9, NextUID: 3}, Records: []Record{{UID: 2, Name: "b"}}}); err != nil {
		t.Fatal(err)
	}
	if f, _ := mustRefresh(t, r); !reflect.DeepEqual(uids(f), []uint32{2}) || f.Header.NextUID != 3 {
		t.Fatalf("after second rewrite: %v %+v", uids(f), f.Header)
	}
}

func TestKeepCopy(t *testing.T) {
	dir := t.TempDir()
	if _, err := KeepCopy(dir); !errors.Is(err, ErrNotExist) {
		t.Fatalf("KeepCopy without a file = %v, want ErrNotExist", err)
	}
	content := string(readTestdata(t, "garbage.uidlist"))
	writeFile(t, filepath.Join(dir, FileName), content)
	p1, err := KeepCopy(dir)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := KeepCopy(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p1 == p2 {
		t.Fatalf("two copies share the name %s", p1)
	}
	for _, p := range []string{p1, p2} {
		if !strings.HasPrefix(filepath.Base(p), FileName+".damaged.") || filepath.Dir(p) != dir {
			t.Errorf("copy name %s", p)
		}
		if got := readFile(t, p); got != content {
			t.Errorf("copy %s differs", p)
		}
	}
	// A rewrite afterwards leaves the copies alone.
	l := lockDir(t, dir)
	if err := Rewrite(l, dir, &File{Header: Header{UIDValidity: 3, NextUID: 1}}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, p1); got != content {
		t.Error("copy changed by Rewrite")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}
