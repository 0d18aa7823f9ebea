package maildir

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNameGenUniqueConcurrent(t *testing.T) {
	const goroutines, perG = 10, 1000
	var g NameGen
	// One instant for every name: only the counter keeps them apart.
	now := time.Unix(1700000000, 5000)
	names := make([][]string, goroutines)
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perG {
				names[i] = append(names[i], g.New(now))
			}
		}()
	}
	wg.Wait()
	seen := make(map[string]bool, goroutines*perG)
	for _, ns := range names {
		for _, n := range ns {
			if seen[n] {
				t.Fatalf("name %q made twice", n)
			}
			seen[n] = true
		}
	}
	if len(seen) != goroutines*perG {
		t.Fatalf("got %d names, want %d", len(seen), goroutines*perG)
	}
}

func TestNameGenFormat(t *testing.T) {
	g := NameGen{Host: "mail.example.org"}
	now := time.Unix(1700000000, 123456789)
	pid := strconv.Itoa(os.Getpid())
	for i, want := range []string{
		"1700000000.M123456P" + pid + "Q1.mail.example.org",
		"1700000000.M123456P" + pid + "Q2.mail.example.org",
	} {
		if got := g.New(now); got != want {
			t.Errorf("name %d = %q, want %q", i, got, want)
		}
	}
	g2 := NameGen{Host: "a/b:c"}
	if got := g2.New(time.Unix(5, 0)); got != "5.M0P"+pid+`Q1.a\057b\072c` {
		t.Errorf("escaped host: got %q", got)
	}
}

func TestNameGenDefaults(t *testing.T) {
	var g NameGen
	before := time.Now().Unix()
	name := g.New(time.Time{})
	sec, err := strconv.ParseInt(name[:strings.IndexByte(name, '.')], 10, 64)
	if err != nil || sec < before || sec > time.Now().Unix() {
		t.Errorf("zero time: name %q does not start with the current second", name)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = defaultHost
	}
	if want := ".M"; !strings.Contains(name, want) {
		t.Errorf("name %q lacks %q", name, want)
	}
	if want := "P" + strconv.Itoa(os.Getpid()) + "Q1." + EscapeHost(host); !strings.HasSuffix(name, want) {
		t.Errorf("name %q does not end with %q", name, want)
	}
}

func TestEscapeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"mail.example.org", "mail.example.org"},
		{"a/b", `a\057b`},
		{"a:b", `a\072b`},
		{"//::", `\057\057\072\072`},
		{"a,b", "a,b"}, // Dovecot leaves ',' alone
		{`a\b`, `a\b`},
	}
	for _, tc := range tests {
		if got := EscapeHost(tc.in); got != tc.want {
			t.Errorf("EscapeHost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWithSizes(t *testing.T) {
	tests := []struct {
		size, vsize int64
		want        string
	}{
		{0, 0, "b,S=0,W=0"},
		{1234, 1260, "b,S=1234,W=1260"},
		{5, -1, "b,S=5"},
		{-1, 7, "b,W=7"},
		{-1, -1, "b"},
	}
	for _, tc := range tests {
		if got := WithSizes("b", tc.size, tc.vsize); got != tc.want {
			t.Errorf("WithSizes(b, %d, %d) = %q, want %q", tc.size, tc.vsize, got, tc.want)
		}
	}
}

func TestGeneratedNameParses(t *testing.T) {
	for _, host := range []string{"mail.example.org", "we/ird:host", "x"} {
		g := NameGen{Host: host}
		base := WithSizes(g.New(time.Unix(1700000000, 999999999)), 4096, 4200)
		if strings.ContainsAny(base, ":/") {
			t.Fatalf("base name %q holds ':' or '/'", base)
		}
		n, err := ParseName(base)
		if err != nil {
			t.Fatalf("ParseName(%q): %v", base, err)
		}
		if n.Base != base || n.HasInfo {
			t.Errorf("ParseName(%q) = %+v, want the whole name as base", base, n)
		}
		if s, w := SizeFields(n.Base); s != 4096 || w != 4200 {
			t.Errorf("SizeFields(%q) = %d, %d, want 4096, 4200", base, s, w)
		}
		flags := Flags(0).With(FlagSeen).With(FlagReplied).With('a')
		full := FilenameWithFlags(base, flags)
		n, err = ParseName(full)
		if err != nil || n.Base != base || n.Flags != flags || !n.Standard {
			t.Errorf("ParseName(%q) = %+v, %v", full, n, err)
		}
	}
}
