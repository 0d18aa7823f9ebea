package maildir

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestParseNameFixtures reads names that real programs write.
func TestParseNameFixtures(t *testing.T) {
	f, err := os.Open("testdata/names.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Split(line, "\t")
		if len(fs) != 5 {
			t.Fatalf("bad fixture line %q", line)
		}
		n++
		name, err := ParseName(fs[0])
		if err != nil {
			t.Errorf("%s: %v", fs[0], err)
			continue
		}
		if name.Base != fs[1] || BaseName(fs[0]) != fs[1] {
			t.Errorf("%s: base %q, want %q", fs[0], name.Base, fs[1])
		}
		if name.Flags.String() != fs[2] {
			t.Errorf("%s: flags %q, want %q", fs[0], name.Flags, fs[2])
		}
		size, vsize := SizeFields(name.Base)
		if strconv.FormatInt(size, 10) != fs[3] || strconv.FormatInt(vsize, 10) != fs[4] {
			t.Errorf("%s: sizes %d %d, want %s %s", fs[0], size, vsize, fs[3], fs[4])
		}
		if again, err := ParseName(name.Filename()); err != nil || again != name {
			t.Errorf("%s: written back as %q, which reads as %+v", fs[0], name.Filename(), again)
		}
	}
	if n < 8 {
		t.Fatalf("only %d fixtures read", n)
	}
}

func TestParseNameErrors(t *testing.T) {
	for _, bad := range []string{"", ".hidden", ".", "..", "a/b", "nul\x00", ":2,S"} {
		if _, err := ParseName(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("ParseName(%q) = %v, want ErrBadName", bad, err)
		}
	}
}

func TestFlags(t *testing.T) {
	f, err := ParseFlags("TSRa")
	if err != nil {
		t.Fatal(err)
	}
	if f.String() != "RSTa" || !f.Has('S') || f.Has('F') || f.Len() != 4 {
		t.Fatalf("flags %q", f)
	}
	if f.Keywords().String() != "a" || f.System().String() != "RST" {
		t.Fatalf("split %q %q", f.Keywords(), f.System())
	}
	if f.Without('S').With('F').String() != "FRTa" {
		t.Fatalf("with/without %q", f.Without('S').With('F'))
	}
	if _, err := ParseFlags("S1"); err == nil {
		t.Fatal("digit accepted as a flag")
	}
	n, _ := ParseName("b:1,x")
	if got := n.WithFlags(f).Filename(); got != "b:2,RSTa" {
		t.Fatalf("WithFlags on experimental info: %q", got)
	}
	if FilenameWithFlags("b", 0) != "b:2," {
		t.Fatal("empty flags")
	}
}

// FuzzParseName: whatever ParseName accepts it writes back byte for byte
// when the flags were in canonical order, and its base name never holds
// the info separator.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"1700000000.M1P2.h,S=1,W=2:2,FRS", "a:2,", "a", "a:1,x", "a:2,S,rest", "a:2,SR", "a:2,S:x", ":", "a:2,\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("error %v is not ErrBadName", err)
			}
			return
		}
		if strings.Contains(n.Base, ":") || n.Base == "" || n.Base != BaseName(s) {
			t.Fatalf("base %q of %q", n.Base, s)
		}
		again, err := ParseName(n.Filename())
		if err != nil || again != n {
			t.Fatalf("%q -> %q -> %+v (%v), want %+v", s, n.Filename(), again, err, n)
		}
		if n.Standard {
			info := s[len(n.Base)+3:]
			letters := info[:len(info)-len(n.Info)]
			if canon := n.Flags.String(); letters == canon && n.Filename() != s {
				t.Fatalf("%q written back as %q", s, n.Filename())
			}
		} else if n.Filename() != s {
			t.Fatalf("%q written back as %q", s, n.Filename())
		}
		SizeFields(n.Base)
	})
}
