package uidlist

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func uids(f *File) []uint32 {
	var u []uint32
	for _, r := range f.Records {
		u = append(u, r.UID)
	}
	return u
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file         string
		wantErr      error
		version      int
		validity     uint32
		next         uint32
		guid         string
		uids         []uint32
		problems     int
		problemMatch string // substring of some Problem's Reason
	}{
		{file: "dovecot-v3.uidlist", version: 3, validity: 1700000000, next: 9,
			guid: "3085f01b7f11094c501100008c4a11c1", uids: []uint32{1, 2, 4, 7, 8}},
		{file: "dovecot-v1.uidlist", version: 1, validity: 1199999999, next: 6, uids: []uint32{1, 2, 5}},
		{file: "dovecot-v2.uidlist", version: 2, validity: 1188888888, next: 5, uids: []uint32{1, 3}},
		{file: "truncated.uidlist", version: 3, validity: 1700000000, next: 5,
			guid: "00000000000000000000000000000001", uids: []uint32{1, 2}, problems: 1, problemMatch: "not terminated"},
		{file: "garbage.uidlist", version: 3, validity: 1700000000, next: 6,
			guid: "00000000000000000000000000000001", uids: []uint32{1, 5}, problems: 8, problemMatch: "UID too high"},
		{file: "descending.uidlist", version: 3, validity: 1700000000, next: 20, uids: []uint32{1, 5, 6},
			problems: 3, problemMatch: "UIDs not ordered"},
		// N lower than the last UID is normal in v3 (appends leave N stale).
		{file: "low-next.uidlist", version: 3, validity: 1700000000, next: 4,
			guid: "00000000000000000000000000000001", uids: []uint32{1, 2, 3}},
		{file: "low-next-v1.uidlist", version: 1, validity: 1700000000, next: 4, uids: []uint32{1, 2, 3},
			problems: 2, problemMatch: "larger than header next_uid"},
		{file: "no-colon.uidlist", version: 3, validity: 1700000000, next: 10, uids: []uint32{2, 4},
			problems: 4, problemMatch: "no ':'"},
		{file: "duplicate.uidlist", version: 3, validity: 1700000000, next: 10, uids: []uint32{2, 3},
			problems: 1, problemMatch: "duplicate file entry"},
		{file: "crlf.uidlist", version: 3, validity: 1700000000, next: 5, uids: []uint32{1},
			problems: 1, problemMatch: "invalid mailbox GUID"},
		{file: "unknown-version.uidlist", wantErr: ErrBadVersion},
		{file: "empty.uidlist", wantErr: ErrBadHeader},
		{file: "zero-validity.uidlist", wantErr: ErrBadHeader},
		{file: "header-only-truncated.uidlist", wantErr: ErrBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, problems, err := Parse(tt.file, readTestdata(t, tt.file))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Path != tt.file || pe.Line != 1 {
					t.Fatalf("err = %#v, want *ParseError naming %s line 1", err, tt.file)
				}
				if !strings.Contains(err.Error(), tt.file+":1:") {
					t.Errorf("error text %q does not name file and line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := f.Header
			if h.Version != tt.version || h.UIDValidity != tt.validity || h.NextUID != tt.next || h.GUID != tt.guid {
				t.Errorf("header = %+v, want version %d validity %d next %d guid %q",
					h, tt.version, tt.validity, tt.next, tt.guid)
			}
			if got := uids(f); !reflect.DeepEqual(got, tt.uids) {
				t.Errorf("uids = %v, want %v", got, tt.uids)
			}
			if len(problems) != tt.problems {
				t.Errorf("%d problems, want %d: %v", len(problems), tt.problems, problems)
			}
			if tt.problemMatch != "" && !hasProblem(problems, tt.problemMatch) {
				t.Errorf("no problem matching %q in %v", tt.problemMatch, problems)
			}
			for _, p := range problems {
				if p.Path != tt.file || p.Line < 1 {
					t.Errorf("problem %v lacks path or line", p)
				}
			}
		})
	}
}

func hasProblem(problems []Problem, match string) bool {
	for _, p := range problems {
		if strings.Contains(p.Reason, match) {
			return true
		}
	}
	return false
}

func TestParseV3Details(t *testing.T) {
	f, _, err := Parse("v3", readTestdata(t, "dovecot-v3.uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"P%v.%u"}; !reflect.DeepEqual(f.Header.Extra, want) {
		t.Errorf("Extra = %q, want %q", f.Header.Extra, want)
	}
	want := []Record{
		{UID: 1, Name: "1700000001.M123P4567.mail.example.org,S=2262,W=2309"},
		{UID: 2, Name: "1700000002.M200P4567.mail.example.org", Ext: []string{"S1200", "W1234"}},
		{UID: 4, Name: "1700000004.M300P4568.mail.example.org:2,RS", Ext: []string{"G7f3e2a1b9c8d7e6f5a4b3c2d1e0f9a8b", "S512"}},
		{UID: 7, Name: "1700000007.M400P4569.mail.example.org:2,", Ext: []string{"S88", "W90", "O3", "P00000007"}},
		{UID: 8, Name: "1700000008.M500P4570.mail.example.org,S=10,W=12:2,FS"},
	}
	if !reflect.DeepEqual(f.Records, want) {
		t.Errorf("records:\n got %+v\nwant %+v", f.Records, want)
	}
	if b := f.Records[2].Base(); b != "1700000004.M300P4568.mail.example.org" {
		t.Errorf("Base = %q", b)
	}
	if r, ok := f.Lookup(7); !ok || r.UID != 7 {
		t.Errorf("Lookup(7) = %v, %v", r, ok)
	}
	if _, ok := f.Lookup(3); ok {
		t.Error("Lookup(3) found a record")
	}
	// A canonical v3 file marshals back byte for byte.
	if got, orig := f.Marshal(), readTestdata(t, "dovecot-v3.uidlist"); !bytes.Equal(got, orig) {
		t.Errorf("Marshal:\n%s\nwant\n%s", got, orig)
	}
}

func TestParseRecordLines(t *testing.T) {
	const hdr = "3 V1 N1\n"
	tests := []struct {
		line    string
		want    *Record // nil: skipped
		problem string  // substring of the Problem reason; "" = no problem
	}{
		{"1 :a", &Record{UID: 1, Name: "a"}, ""},
		{"1   S1   W2   :a b c", &Record{UID: 1, Name: "a b c", Ext: []string{"S1", "W2"}}, ""},
		{"1 : a", &Record{UID: 1, Name: " a"}, ""},
		{"1 S1:2 :a", &Record{UID: 1, Name: "a", Ext: []string{"S1:2"}}, ""},
		{"1 :a:2,S", &Record{UID: 1, Name: "a:2,S"}, ""},
		{"1 x1 :a", &Record{UID: 1, Name: "a"}, "invalid extension field"},
		{"1 :a\r", &Record{UID: 1, Name: "a"}, ""},
		{"1 :a\rb", &Record{UID: 1, Name: "a\rb"}, ""},
		{"1 :a\r\r", nil, "ends in CR"},
		{"1 S1\r :a", &Record{UID: 1, Name: "a"}, "invalid extension field"},
		{"1 a", nil, "no ':'"},
		{"1 S1", nil, "no ':'"},
		{"1 :", nil, "empty file name"},
		{"1 ::2,S", nil, "empty base name"},
		{"1 :a/b", nil, "contains '/'"},
		{"1 :a\x00b", nil, "NUL"},
		{"0 :a", nil, "UID 0"},
		{"4294967295 :a", nil, "too high"},
		{"4294967294 :a", &Record{UID: 4294967294, Name: "a"}, ""},
		{"18446744073709551617 :a", nil, "too high"},
		{"1:a", nil, "invalid data"},
		{"1", nil, "invalid data"},
		{"", nil, "invalid data"},
		{"a 1", nil, "invalid data"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.line), func(t *testing.T) {
			f, problems, err := Parse("x", []byte(hdr+tt.line+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == nil && len(f.Records) != 0:
				t.Errorf("records = %+v, want none", f.Records)
			case tt.want != nil && (len(f.Records) != 1 || !reflect.DeepEqual(f.Records[0], *tt.want)):
				t.Errorf("records = %+v, want %+v", f.Records, *tt.want)
			}
			if tt.problem == "" && len(problems) != 0 {
				t.Errorf("problems = %v, want none", problems)
			}
			if tt.problem != "" && (len(problems) != 1 || !strings.Contains(problems[0].Reason, tt.problem) || problems[0].Line != 2) {
				t.Errorf("problems = %v, want one at line 2 matching %q", problems, tt.problem)
			}
		})
	}
}

func TestParseHeaders(t *testing.T) {
	tests := []struct {
		hdr     string
		wantErr error
		want    Header
	}{
		{"3 V5 N6 Gabcdefabcdefabcdefabcdefabcdefab", nil, Header{Version: 3, UIDValidity: 5, NextUID: 6, GUID: "abcdefabcdefabcdefabcdefabcdefab"}},
		{"3 V5 N6 Gabcdefabcdefabcdefabcdefabcdefabcd", nil, Header{Version: 3, UIDValidity: 5, NextUID: 6}},
		{"3 N6 V5", nil, Header{Version: 3, UIDValidity: 5, NextUID: 6}},
		{"3  V5  N6  Zz  ", nil, Header{Version: 3, UIDValidity: 5, NextUID: 6, Extra: []string{"Zz"}}},
		{"3 V5 N6 GABCDEFABCDEFABCDEFABCDEFABCDEFAB", nil, Header{Version: 3, UIDValidity: 5, NextUID: 6, GUID: "abcdefabcdefabcdefabcdefabcdefab"}},
		{"3 V5 N6 \r0 P1", nil, Header{Version: 3, UIDValidity: 5, NextUID: 6, Extra: []string{"P1"}}}, // found by FuzzParse
		{"1 5 6", nil, Header{Version: 1, UIDValidity: 5, NextUID: 6}},
		{"2 5 6", nil, Header{Version: 2, UIDValidity: 5, NextUID: 6}},
		{"3 V5", ErrBadHeader, Header{}},
		{"3 N5", ErrBadHeader, Header{}},
		{"3 V5x N6", ErrBadHeader, Header{}},
		{"3 V4294967296 N6", ErrBadHeader, Header{}},
		{"3 V5 N0", ErrBadHeader, Header{}},
		{"1 5", ErrBadHeader, Header{}},
		{"1 0 6", ErrBadHeader, Header{}},
		{"3", ErrBadVersion, Header{}},
		{"13 V5 N6", ErrBadVersion, Header{}},
		{"0 V5 N6", ErrBadVersion, Header{}},
		{"V5 N6", ErrBadVersion, Header{}},
	}
	for _, tt := range tests {
		t.Run(tt.hdr, func(t *testing.T) {
			f, _, err := Parse("h", []byte(tt.hdr+"\n"))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f.Header, tt.want) {
				t.Errorf("header = %+v, want %+v", f.Header, tt.want)
			}
		})
	}
}

// TestParseTruncated cuts a file at every byte: the records read are always
// a prefix of the whole file's, and only a cut inside the header fails.
func TestParseTruncated(t *testing.T) {
	data := readTestdata(t, "dovecot-v3.uidlist")
	full, _, err := Parse("full", data)
	if err != nil {
		t.Fatal(err)
	}
	hdrLen := bytes.IndexByte(data, '\n') + 1
	for n := 0; n <= len(data); n++ {
		f, problems, err := Parse("cut", data[:n])
		if n < hdrLen {
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("cut at %d: err = %v, want ErrBadHeader", n, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("cut at %d: %v", n, err)
		}
		complete := bytes.Count(data[:n], []byte("\n")) - 1
		if !reflect.DeepEqual(f.Records, full.Records[:complete:complete]) && !(complete == 0 && len(f.Records) == 0) {
			t.Fatalf("cut at %d: records %+v, want first %d of the full file", n, f.Records, complete)
		}
		wantProblems := 0
		if n > 0 && data[n-1] != '\n' {
			wantProblems = 1
		}
		if len(problems) != wantProblems {
			t.Fatalf("cut at %d: problems %v, want %d", n, problems, wantProblems)
		}
	}
}

// roundTrip checks that f marshals to a file that parses back, cleanly, to
// the same content, as version 3.
func roundTrip(t testing.TB, f *File) {
	t.Helper()
	out := f.Marshal()
	g, problems, err := Parse("marshaled", out)
	if err != nil {
		t.Fatalf("reparse: %v\n%q", err, out)
	}
	if len(problems) != 0 {
		t.Fatalf("reparse problems: %v\n%q", problems, out)
	}
	want := f.Header
	want.Version = 3
	if !reflect.DeepEqual(g.Header, want) {
		t.Fatalf("header after round trip %+v, want %+v", g.Header, want)
	}
	if len(g.Records) != len(f.Records) {
		t.Fatalf("%d records after round trip, want %d", len(g.Records), len(f.Records))
	}
	for i := range f.Records {
		a, b := f.Records[i], g.Records[i]
		if a.UID != b.UID || a.Name != b.Name || len(a.Ext) != len(b.Ext) {
			t.Fatalf("record %d after round trip %+v, want %+v", i, b, a)
		}
		for j := range a.Ext {
			if a.Ext[j] != b.Ext[j] {
				t.Fatalf("record %d after round trip %+v, want %+v", i, b, a)
			}
		}
	}
	if again := g.Marshal(); !bytes.Equal(again, out) {
		t.Fatalf("Marshal not stable:\n%q\n%q", out, again)
	}
	if err := g.Validate(); err != nil {
		t.Fatalf("Validate of a parsed file: %v", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/*.uidlist")
	if err != nil {
		t.Fatal(err)
	}
	parsed := 0
	for _, name := range files {
		f, _, err := Parse(name, readTestdata(t, filepath.Base(name)))
		if err != nil {
			continue
		}
		parsed++
		t.Run(filepath.Base(name), func(t *testing.T) { roundTrip(t, f) })
	}
	for _, name := range []string{"courierimapuiddb", "courier-unsorted.courierimapuiddb"} {
		f, _, err := ParseCourier(name, readTestdata(t, name))
		if err != nil {
			t.Fatal(err)
		}
		parsed++
		t.Run(name, func(t *testing.T) { roundTrip(t, f) })
	}
	if parsed < 10 {
		t.Fatalf("only %d fixtures parsed", parsed)
	}
}

func TestParseCourier(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		wantErr  error
		validity uint32
		next     uint32
		recs     []Record
		problems []string // substrings, in order
	}{
		{name: "fixture", data: string(readTestdata(t, "courierimapuiddb")), validity: 1234567890, next: 12,
			recs: []Record{{UID: 3, Name: "1234567890.M1P1.courierhost"}, {UID: 7, Name: "1234567890.M7P1.courierhost"},
				{UID: 11, Name: "1234567899.M11P2.courierhost"}}},
		{name: "unsorted", data: string(readTestdata(t, "courier-unsorted.courierimapuiddb")), validity: 1234567890, next: 20,
			recs:     []Record{{UID: 3, Name: "1234567890.M3P1.c"}, {UID: 9, Name: "1234567890.M9P1.c"}},
			problems: []string{"invalid UID", "invalid data", "sorted", "repeated UID"}},
		{name: "next raised", data: "1 5 3\n3 a\n", validity: 5, next: 4, recs: []Record{{UID: 3, Name: "a"}},
			problems: []string{"larger than header next_uid"}},
		{name: "duplicate base", data: "1 5 9\n3 a:2,S\n4 a\n", validity: 5, next: 9, recs: []Record{{UID: 4, Name: "a"}},
			problems: []string{"duplicate file entry"}},
		{name: "truncated", data: "1 5 9\n3 a\n4 b", validity: 5, next: 9, recs: []Record{{UID: 3, Name: "a"}},
			problems: []string{"not terminated"}},
		{name: "name ending in CR", data: "1 5 9\n3 \r\r\n4 a\r\r\n5 b\r\n", validity: 5, next: 9,
			recs: []Record{{UID: 5, Name: "b"}}, problems: []string{"ends in CR", "ends in CR"}},
		{name: "version 2", data: "2 5 9\n", wantErr: ErrBadVersion},
		{name: "empty", data: "", wantErr: ErrBadHeader},
		{name: "short header", data: "1 5\n", wantErr: ErrBadHeader},
		{name: "zero validity", data: "1 0 5\n", wantErr: ErrBadHeader},
		{name: "unterminated header", data: "1 5 9", wantErr: ErrBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, problems, err := ParseCourier(tt.name, []byte(tt.data))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Header.Version != 1 || f.Header.UIDValidity != tt.validity || f.Header.NextUID != tt.next || f.Header.GUID != "" {
				t.Errorf("header = %+v", f.Header)
			}
			if !reflect.DeepEqual(f.Records, tt.recs) {
				t.Errorf("records = %+v, want %+v", f.Records, tt.recs)
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems = %v, want %q", problems, tt.problems)
			}
			for i, p := range problems {
				if !strings.Contains(p.Reason, tt.problems[i]) {
					t.Errorf("problem %d = %v, want %q", i, p, tt.problems[i])
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := func() *File {
		return &File{Header: Header{Version: 3, UIDValidity: 1, NextUID: 3},
			Records: []Record{{UID: 1, Name: "a"}, {UID: 2, Name: "b:2,S", Ext: []string{"S1"}}}}
	}
	tests := []struct {
		name   string
		change func(f *File)
		want   error
	}{
		{"ok", func(f *File) {}, nil},
		{"zero validity", func(f *File) { f.Header.UIDValidity = 0 }, ErrBadRecord},
		{"bad guid", func(f *File) { f.Header.GUID = "xyz" }, ErrBadRecord},
		{"uppercase guid", func(f *File) { f.Header.GUID = "ABCDEFABCDEFABCDEFABCDEFABCDEFAB" }, ErrBadRecord},
		{"extra with space", func(f *File) { f.Header.Extra = []string{"P a"} }, ErrBadRecord},
		{"extra shadows V", func(f *File) { f.Header.Extra = []string{"V1"} }, ErrBadRecord},
		{"uid 0", func(f *File) { f.Records[0].UID = 0 }, ErrBadRecord},
		{"descending", func(f *File) { f.Records[0].UID = 5 }, ErrUIDOrder},
		{"same base", func(f *File) { f.Records[1].Name = "a:2,S" }, ErrDuplicateName},
		{"newline in name", func(f *File) { f.Records[1].Name = "b\nc" }, ErrBadRecord},
		{"CR at end of name", func(f *File) { f.Records[1].Name = "b\r" }, ErrBadRecord},
		{"slash in name", func(f *File) { f.Records[1].Name = "cur/b" }, ErrBadRecord},
		{"lowercase ext", func(f *File) { f.Records[1].Ext = []string{"s1"} }, ErrBadRecord},
		{"ext with space", func(f *File) { f.Records[1].Ext = []string{"S1 2"} }, ErrBadRecord},
		{"empty ext", func(f *File) { f.Records[1].Ext = []string{""} }, ErrBadRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok()
			tt.change(f)
			err := f.Validate()
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Validate = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewUIDValidity(t *testing.T) {
	now := uint32(time.Now().Unix())
	tests := []struct {
		previous uint32
		min, max uint32
	}{
		{0, now, now + 2},
		{now - 1000, now, now + 2},
		{now + 1000, now + 1001, now + 1001},
		{4294967294, 4294967295, 4294967295},
		{4294967295, 1, 1},
	}
	for _, tt := range tests {
		if got := NewUIDValidity(tt.previous); got < tt.min || got > tt.max {
			t.Errorf("NewUIDValidity(%d) = %d, want %d..%d", tt.previous, got, tt.min, tt.max)
		}
	}
}

func TestNewGUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		g := NewGUID()
		if !isHexGUID(g) || strings.ToLower(g) != g {
			t.Fatalf("NewGUID = %q", g)
		}
		if seen[g] {
			t.Fatalf("NewGUID repeated %q", g)
		}
		seen[g] = true
	}
}

func TestProblemString(t *testing.T) {
	p := Problem{Path: "/m/dovecot-uidlist", Line: 7, Text: "x y", Reason: "bad"}
	if got, want := p.String(), `/m/dovecot-uidlist:7: bad: "x y"`; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	long := strings.Repeat("z", 1000)
	_, problems, _ := Parse("p", []byte("3 V1 N1\n"+long+"\n"))
	if len(problems) != 1 || len(problems[0].Text) > maxProblemText+3 {
		t.Errorf("long line problem not shortened: %d bytes", len(problems[0].Text))
	}
}

// bigFile returns a v3 file of n records shaped like Dovecot's.
func bigFile(n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "3 V1700000000 N%d G3085f01b7f11094c501100008c4a11c1\n", n+1)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d W%d :%d.M%dP%d.mail.example.org,S=%d\n", i, 2000+i%5000, 1700000000+i, i%1000000, 1000+i%30000, 1900+i%5000)
	}
	return b.Bytes()
}

func TestParseLarge(t *testing.T) {
	// Correctness at size only; BenchmarkParse100k measures the speed.
	f, problems, err := Parse("big", bigFile(100000))
	if err != nil || len(problems) != 0 || len(f.Records) != 100000 || f.Header.NextUID != 100001 {
		t.Fatalf("Parse: %v, %d problems, %d records", err, len(problems), len(f.Records))
	}
}

func BenchmarkParse100k(b *testing.B) {
	data := bigFile(100000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := Parse("big", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal100k(b *testing.B) {
	f, _, err := Parse("big", bigFile(100000))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		f.Marshal()
	}
}
