package message

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readSpan reads converted octets [skip, skip+n) of sp from file through
// a buffer of bufSize.
func readSpan(file []byte, sp Span, skip, n int64, bufSize int) ([]byte, error) {
	r := NewCRLFReader(bytes.NewReader(file), sp, skip, n, make([]byte, bufSize))
	return io.ReadAll(r)
}

// checkCRLFReader compares every read of file's whole span with ToCRLF.
func checkCRLFReader(t *testing.T, file []byte, skip, n int64, bufSize int) {
	t.Helper()
	want := ToCRLF(file)
	skip = min(skip, int64(len(want)))
	n = min(n, int64(len(want))-skip)
	got, err := readSpan(file, Span{File: 0, Size: int64(len(want))}, skip, n, bufSize)
	if err != nil || !bytes.Equal(got, want[skip:skip+n]) {
		t.Fatalf("file %q, skip %d, n %d, buffer %d: got %q, %v; want %q", file, skip, n, bufSize, got, err, want[skip:skip+n])
	}
	if size, crlf, err := CountCRLF(bytes.NewReader(file), make([]byte, bufSize)); err != nil || size != int64(len(file)) || crlf != int64(len(want)) {
		t.Fatalf("CountCRLF(%q) = %d, %d, %v; want %d, %d", file, size, crlf, err, len(file), len(want))
	}
}

// TestCRLFReaderRandom compares CRLFReader with ToCRLF on random input
// made of the octets that matter (CR, LF, NUL) and others, read through
// buffers down to two octets, from random offsets.
func TestCRLFReaderRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, seed>>1))
	alphabet := []byte("\r\n\r\na\x00 -")
	for i := 0; i < 3000; i++ {
		file := make([]byte, r.IntN(200))
		for j := range file {
			file[j] = alphabet[r.IntN(len(alphabet))]
		}
		size := int64(len(ToCRLF(file)))
		skip := r.Int64N(size + 2)
		n := r.Int64N(size + 2)
		checkCRLFReader(t, file, skip, n, 2+r.IntN(10))
		checkCRLFReader(t, file, 0, size, 2+r.IntN(300))
	}
}

// TestCRLFReaderBoundaries reads at every start inside a file whose LFs
// are bare, CRLF, after a lone CR and at the edges: each start, among
// them the middle of a CR LF pair the conversion made, gives ToCRLF's
// octets from there.
func TestCRLFReaderBoundaries(t *testing.T) {
	for _, file := range []string{"", "\n", "\r", "\r\n", "\n\n", "\r\r\n", "a\rb\nc\r\nd\n", "\nx\r", "ab\n\r\n\r\r\n\n"} {
		want := ToCRLF([]byte(file))
		for skip := int64(0); skip <= int64(len(want))+1; skip++ {
			for n := int64(0); skip+n <= int64(len(want))+1; n++ {
				for _, buf := range []int{2, 3, 64} {
					checkCRLFReader(t, []byte(file), skip, n, buf)
				}
			}
		}
	}
}

// TestCRLFReaderShortFile: a file shorter than the span (changed
// underneath) fails with ErrShortFile instead of giving fewer octets.
func TestCRLFReaderShortFile(t *testing.T) {
	for _, sp := range []Span{{File: 0, Size: 10}, {File: 2, Size: 5}, {File: 20, Size: 1}} {
		got, err := readSpan([]byte("ab\ncd"), sp, 0, sp.Size, 4)
		if !errors.Is(err, ErrShortFile) {
			t.Errorf("span %+v: got %q, %v; want ErrShortFile", sp, got, err)
		}
	}
}

// variants are a message with its line endings as they are, all bare LF,
// all CRLF, mixed line by line, and with lone CRs added.
func variants(raw []byte) map[string][]byte {
	lf := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	crlf := bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n"))
	var mixed []byte
	for i, l := range bytes.SplitAfter(lf, []byte("\n")) {
		if i%2 == 1 && bytes.HasSuffix(l, []byte("\n")) {
			l = append(l[:len(l)-1:len(l)-1], '\r', '\n')
		}
		mixed = append(mixed, l...)
	}
	loneCR := bytes.ReplaceAll(lf, []byte(" "), []byte("\r "))
	return map[string][]byte{"as is": raw, "bare LF": lf, "CRLF": crlf, "mixed": mixed, "lone CR": loneCR}
}

// allPaths lists every part path of up to depth steps, numbers 0 to 4
// (0 and too large ones name no part).
func allPaths(depth int) [][]int {
	out := [][]int{nil}
	prev := [][]int{nil}
	for d := 0; d < depth; d++ {
		var next [][]int
		for _, p := range prev {
			for n := 0; n <= 4; n++ {
				next = append(next, append(append([]int{}, p...), n))
			}
		}
		out = append(out, next...)
		prev = next
	}
	return out
}

var streamSpecs = []Section{
	{Specifier: SpecAll}, {Specifier: SpecHeader}, {Specifier: SpecText}, {Specifier: SpecMIME},
	{Specifier: SpecHeaderFields, Fields: []string{"From", "subject", "Content-Type", "X-None"}},
	{Specifier: SpecHeaderNot, Fields: []string{"Received", "content-transfer-encoding"}},
}

// checkStreamed compares every section, BINARY section and partial
// streamed from file with what the in-memory code gives for
// Parse(ToCRLF(file)), with the Structure as ParseFile makes it and as
// the index gives it back.
func checkStreamed(t *testing.T, name string, file []byte, depth int) {
	t.Helper()
	old := Parse(ToCRLF(file))
	st, err := UnmarshalStructure(ParseFile(file).Structure().Marshal())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if st.Size != int64(len(old.Raw())) {
		t.Fatalf("%s: Size %d, want %d", name, st.Size, len(old.Raw()))
	}
	for _, path := range allPaths(depth) {
		for _, spec := range streamSpecs {
			sec := spec
			sec.Path = path
			want, wantOK := old.Section(sec)
			sp, ok := st.Span(sec)
			if ok != wantOK {
				t.Fatalf("%s %v: Span ok %v, Section ok %v", name, sec, ok, wantOK)
			}
			if !ok {
				continue
			}
			var got []byte
			if sec.Specifier == SpecHeaderFields || sec.Specifier == SpecHeaderNot {
				h, err := readSpan(file, sp, 0, sp.Size, 7)
				if err != nil {
					t.Fatalf("%s %v: %v", name, sec, err)
				}
				got = HeaderFields(h, sec.Fields, sec.Specifier == SpecHeaderNot)
			} else {
				if sp.Size != int64(len(want)) {
					t.Fatalf("%s %v: span size %d, want %d", name, sec, sp.Size, len(want))
				}
				for _, off := range []int64{0, 1, sp.Size / 2, sp.Size - 1, sp.Size, sp.Size + 3} {
					off = max(off, 0)
					for _, n := range []int64{0, 1, 2, 3, sp.Size} {
						lo := min(off, sp.Size)
						hi := min(lo+n, sp.Size)
						part, err := readSpan(file, sp, lo, hi-lo, 5)
						if err != nil || !bytes.Equal(part, want[lo:hi]) {
							t.Fatalf("%s %v <%d.%d>: got %q, %v; want %q", name, sec, off, n, part, err, want[lo:hi])
						}
					}
				}
				got, err = readSpan(file, sp, 0, sp.Size, 4096)
				if err != nil {
					t.Fatalf("%s %v: %v", name, sec, err)
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s %v: streamed %q, in memory %q", name, sec, got, want)
			}
		}
		want, wantErr := old.Binary(path)
		sp, enc, err := st.BinarySpan(path)
		if !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
			t.Fatalf("%s BINARY%v: error %v, want %v", name, path, err, wantErr)
		}
		if st.UnknownCTE(path) != old.UnknownCTE(path) {
			t.Fatalf("%s BINARY%v: UnknownCTE differs", name, path)
		}
		if err != nil {
			continue
		}
		var r io.Reader = NewCRLFReader(bytes.NewReader(file), sp, 0, sp.Size, make([]byte, 6))
		switch enc {
		case "base64":
			r = NewBase64Reader(r, make([]byte, 5))
		case "quoted-printable":
			body, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := DecodeCTE(enc, body)
			r = bytes.NewReader(d)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s BINARY%v: streamed %q, %v; in memory %q", name, path, got, err, want)
		}
	}
}

// TestStreamedSections: every section of every testdata message, in
// every line-ending variant, streamed from the file equals the section
// of the converted message in memory.
func TestStreamedSections(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	extra := map[string]string{
		"inline":        "From: a\nSubject: x\n\nbody\n",
		"no header end": "From: a\nSubject: x",
		"base64 and qp": "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: base64\n\nAAEC\nAwQ=\n--b\n" +
			"Content-Transfer-Encoding: quoted-printable\n\nx=3D1 =\n  \ny\t \n--b\nContent-Type: message/rfc822\n\nFrom: c\n\ninner\n--b--\n",
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		extra[filepath.Base(f)] = string(raw)
	}
	for name, raw := range extra {
		for v, file := range variants([]byte(raw)) {
			checkStreamed(t, name+", "+v, file, 3)
		}
	}
}

func FuzzCRLFReader(f *testing.F) {
	f.Add([]byte("a\r\nb\nc\rd\n"), int64(3), int64(4), uint8(2))
	f.Add([]byte("\n\n\r\r\n"), int64(1), int64(9), uint8(3))
	f.Fuzz(func(t *testing.T, file []byte, skip, n int64, buf uint8) {
		if skip < 0 || n < 0 {
			return
		}
		checkCRLFReader(t, file, skip, n, 2+int(buf))
	})
}

// FuzzStreamedSections checks every section of a fuzzed message, as
// TestStreamedSections does for the testdata.
func FuzzStreamedSections(f *testing.F) {
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\n\n--b\r\nX: y\n\nz\r\n--b--\n"))
	f.Add([]byte("Subject: a\r\r\n\nb\rc\n"))
	f.Fuzz(func(t *testing.T, file []byte) {
		if len(file) > 4096 || strings.Count(string(file), "--") > 40 {
			return
		}
		checkStreamed(t, "fuzz", file, 2)
	})
}
