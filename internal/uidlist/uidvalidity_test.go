package uidlist

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func markers(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), UIDValidityFileName+".") {
			out = append(out, e.Name())
		}
	}
	return out
}

func hint(t *testing.T, root string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, UIDValidityFileName))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestNextUIDValidityFresh(t *testing.T) {
	root := t.TempDir()
	before := uint32(time.Now().Unix())
	v1, err := NextUIDValidity(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v1 < before {
		t.Errorf("first value %d is below the time %d", v1, before)
	}
	v2, err := NextUIDValidity(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v2 != v1+1 {
		t.Errorf("second value %d, want %d", v2, v1+1)
	}
	if got, want := markers(t, root), []string{fmt.Sprintf("dovecot-uidvalidity.%08x", v2)}; !equalStrings(got, want) {
		t.Errorf("markers %v, want %v", got, want)
	}
	if got, want := hint(t, root), fmt.Sprintf("%08x", v2); got != want {
		t.Errorf("hint %q, want %q", got, want)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNextUIDValidityFloor(t *testing.T) {
	root := t.TempDir()
	floor := uint32(time.Now().Unix()) + 100000
	v, err := NextUIDValidity(root, floor)
	if err != nil {
		t.Fatal(err)
	}
	if v != floor+1 {
		t.Errorf("value %d, want floor+1 = %d", v, floor+1)
	}
}

// Files as Dovecot leaves them: the hint and the marker agree, or the
// hint lags behind (two processes wrote it out of order), or it is
// broken, or there are two markers.
func TestNextUIDValidityDovecotFiles(t *testing.T) {
	const last = 0x6552a1b0
	tests := []struct {
		name    string
		hint    string // "" : no hint file
		markers []uint32
		want    uint32
		left    []uint32 // markers afterwards
	}{
		{"agree", "6552a1b0", []uint32{last}, last + 1, []uint32{last + 1}},
		{"hint lags by 3", "6552a1ad", []uint32{last}, last + 1, []uint32{last + 1}},
		{"hint lags by 100", "6552a14c", []uint32{last}, last + 1, []uint32{last + 1}},
		{"hint ahead", "6552a1c0", []uint32{last}, last + 1, []uint32{last + 1}},
		{"no hint", "", []uint32{last}, last + 1, []uint32{last + 1}},
		{"broken hint", "zz\n", []uint32{last}, last + 1, []uint32{last + 1}},
		{"zero hint", "00000000", []uint32{last}, last + 1, []uint32{last + 1}},
		// The hint leads to the higher marker; the lower one stays until
		// a rescan.
		{"two markers", "6552a1b0", []uint32{last - 5, last}, last + 1, []uint32{last - 5, last + 1}},
		{"two markers, rescan", "", []uint32{last - 5, last}, last + 1, []uint32{last + 1}},
		{"wraps past 0", "ffffffff", []uint32{0xffffffff}, 1, []uint32{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.hint != "" {
				if err := os.WriteFile(filepath.Join(root, UIDValidityFileName), []byte(tt.hint), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, m := range tt.markers {
				if err := os.WriteFile(filepath.Join(root, markerName(m)), nil, 0o444); err != nil {
					t.Fatal(err)
				}
			}
			v, err := NextUIDValidity(root, 0)
			if err != nil {
				t.Fatal(err)
			}
			if v != tt.want {
				t.Errorf("value %#x, want %#x", v, tt.want)
			}
			var want []string
			for _, m := range tt.left {
				want = append(want, markerName(m))
			}
			if got := markers(t, root); !equalStrings(got, want) {
				t.Errorf("markers %v, want %v", got, want)
			}
			if got := hint(t, root); got != fmt.Sprintf("%08x", tt.want) {
				t.Errorf("hint %q, want %08x", got, tt.want)
			}
		})
	}
}

// Many takers at once, starting with no files at all and with files:
// no value is ever handed out twice.
func TestNextUIDValidityConcurrent(t *testing.T) {
	for _, fresh := range []bool{true, false} {
		t.Run(fmt.Sprintf("fresh=%v", fresh), func(t *testing.T) {
			root := t.TempDir()
			if !fresh {
				if _, err := NextUIDValidity(root, 0); err != nil {
					t.Fatal(err)
				}
			}
			const workers, each = 8, 40
			var mu sync.Mutex
			var got []uint32
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; i++ {
						v, err := NextUIDValidity(root, 0)
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						got = append(got, v)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
			for i := 1; i < len(got); i++ {
				if got[i] == got[i-1] {
					t.Fatalf("value %d handed out twice", got[i])
				}
			}
			if len(got) != workers*each {
				t.Fatalf("%d values, want %d", len(got), workers*each)
			}
			// The next value is above every value handed out.
			v, err := NextUIDValidity(root, 0)
			if err != nil {
				t.Fatal(err)
			}
			if v <= got[len(got)-1] {
				t.Errorf("next value %d is not above %d", v, got[len(got)-1])
			}
		})
	}
}

// A floor above the allocator's value: the result is above the floor,
// and the allocator goes on from there.
func TestNextUIDValidityFloorAboveCounter(t *testing.T) {
	root := t.TempDir()
	v1, err := NextUIDValidity(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	floor := v1 + 1000
	v2, err := NextUIDValidity(root, floor)
	if err != nil {
		t.Fatal(err)
	}
	if v2 != floor+1 {
		t.Fatalf("value %d, want %d", v2, floor+1)
	}
	v3, err := NextUIDValidity(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v3 != floor+2 {
		t.Fatalf("value after the jump %d, want %d", v3, floor+2)
	}
	if got := markers(t, root); len(got) != 1 {
		t.Fatalf("markers %v, want one", got)
	}
}

// Starting afresh in an account whose mailboxes have values of their
// own (made by a server that kept no allocator, perhaps this very
// second): above all of them.
func TestNextUIDValidityAboveExistingMailboxes(t *testing.T) {
	root := t.TempDir()
	high := uint32(time.Now().Unix()) + 50000
	for dir, v := range map[string]uint32{"": high - 7, ".Sent": high, ".A.B": high - 1, "not-a-folder": high + 99} {
		d := filepath.Join(root, dir)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		hdr := fmt.Sprintf("3 V%d N1 G0123456789abcdef0123456789abcdef\n", v)
		if err := os.WriteFile(filepath.Join(d, FileName), []byte(hdr), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	v, err := NextUIDValidity(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v != high+1 {
		t.Fatalf("value %d, want %d (above .Sent's)", v, high+1)
	}
}

func TestNextUIDValidityNoRoot(t *testing.T) {
	if _, err := NextUIDValidity(filepath.Join(t.TempDir(), "missing"), 0); err == nil {
		t.Fatal("no error for a missing root")
	}
}
