package uidlist

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadKeywords(t *testing.T) {
	dir := t.TempDir()
	k, problems, err := ReadKeywords(dir)
	if err != nil || problems != nil || *k != (Keywords{}) {
		t.Fatalf("missing file: %+v, %v, %v", k, problems, err)
	}
	writeFile(t, filepath.Join(dir, KeywordsFileName), string(readTestdata(t, "dovecot-keywords")))
	k, problems, err = ReadKeywords(dir)
	if err != nil || len(problems) != 0 {
		t.Fatalf("%v, %v", problems, err)
	}
	want := Keywords{}
	want.Names[0], want.Names[1], want.Names[3], want.Names[4] = "$Junk", "$NotJunk", "$Forwarded", "NonJunk"
	if *k != want {
		t.Errorf("keywords = %q", k.Names)
	}
	if got := string(k.Marshal()); got != string(readTestdata(t, "dovecot-keywords")) {
		t.Errorf("Marshal = %q", got)
	}
}

func TestParseKeywordsDamaged(t *testing.T) {
	k, problems := ParseKeywords("kw", readTestdata(t, "dovecot-keywords.damaged"))
	want := Keywords{}
	want.Names[0], want.Names[1], want.Names[3] = "Work", "Replaced", "work"
	if *k != want {
		t.Errorf("keywords = %q", k.Names)
	}
	reasons := []string{"no space", "out of range", "bad index", "empty name", "repeated", "also at letter a", "not terminated"}
	if len(problems) != len(reasons) {
		t.Fatalf("problems = %v", problems)
	}
	for i, p := range problems {
		if !strings.Contains(p.Reason, reasons[i]) {
			t.Errorf("problem %d = %v, want %q", i, p, reasons[i])
		}
	}
}

func TestKeywordsLetters(t *testing.T) {
	var k Keywords // zero value usable
	tests := []struct {
		op, name string
		want     byte
		wantErr  error
	}{
		{"add", "$Label1", 'a', nil},
		{"add", "Work", 'b', nil},
		{"add", "work", 'b', nil}, // case-insensitive, as Dovecot
		{"letter", "WORK", 'b', nil},
		{"add", "", 0, ErrBadRecord},
		{"add", "a\nb", 0, ErrBadRecord},
		{"letter", "nope", 0, nil},
	}
	for _, tt := range tests {
		var got byte
		var err error
		switch tt.op {
		case "add":
			got, err = k.Add(tt.name)
		case "letter":
			got, _ = k.Letter(tt.name)
		}
		if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("%s(%q) = %q, %v; want %q, %v", tt.op, tt.name, got, err, tt.want, tt.wantErr)
		}
	}
	if n, ok := k.Name('b'); !ok || n != "Work" {
		t.Errorf("Name('b') = %q, %v", n, ok)
	}
	for _, c := range []byte{'c', 'A', '{', '`'} {
		if n, ok := k.Name(c); ok {
			t.Errorf("Name(%q) = %q", c, n)
		}
	}
	for i := 2; i < MaxKeywords; i++ {
		if c, err := k.Add("kw" + string(rune('A'+i))); err != nil || c != byte('a'+i) {
			t.Fatalf("Add #%d = %q, %v", i, c, err)
		}
	}
	if _, err := k.Add("one-too-many"); !errors.Is(err, ErrKeywordsFull) {
		t.Errorf("Add when full = %v, want ErrKeywordsFull", err)
	}
	if c, err := k.Add("WORK"); err != nil || c != 'b' {
		t.Errorf("Add of an existing name when full = %q, %v", c, err)
	}
}

func TestWriteKeywords(t *testing.T) {
	dir := t.TempDir()
	l := lockDir(t, dir)
	var k Keywords
	if _, err := k.Add("$Important"); err != nil {
		t.Fatal(err)
	}
	// A leftover temporary file of a crashed writer.
	writeFile(t, filepath.Join(dir, keywordsTempName), "junk")
	path := filepath.Join(dir, KeywordsFileName)
	var mtimes []int64
	for i := range 3 {
		if i > 0 {
			if _, err := k.Add("kw" + string(rune('0'+i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := WriteKeywords(l, dir, &k); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		mtimes = append(mtimes, fi.ModTime().Unix())
	}
	// Three writes within about a second: the mtime still grew in whole
	// seconds each time, or Dovecot would not reread the file.
	if !(mtimes[0] < mtimes[1] && mtimes[1] < mtimes[2]) {
		t.Errorf("mtimes %v do not grow", mtimes)
	}
	got, problems, err := ReadKeywords(dir)
	if err != nil || len(problems) != 0 || *got != k {
		t.Fatalf("read back %q, %v, %v", got.Names, problems, err)
	}
	if _, err := os.Stat(filepath.Join(dir, keywordsTempName)); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	if err := WriteKeywords(nil, dir, &k); !errors.Is(err, ErrWrongLock) {
		t.Errorf("WriteKeywords without lock = %v", err)
	}
	k.Names[5] = "bad\nname"
	if err := WriteKeywords(l, dir, &k); !errors.Is(err, ErrBadRecord) {
		t.Errorf("WriteKeywords of a bad name = %v", err)
	}
	if time.Unix(mtimes[2], 0).After(time.Now().Add(10 * time.Second)) {
		t.Errorf("mtime pushed far into the future: %v", mtimes)
	}
}
