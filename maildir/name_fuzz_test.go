package maildir

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzFilenameWithFlags: for every base name ParseName accepts and every
// set of flag letters, FilenameWithFlags writes a name that ParseName
// reads back as that base and those flags; the flags survive String and
// ParseFlags; and the S= and W= fields of a base are what SizeFields
// reads, whatever else the base holds and whatever its flags.
func FuzzFilenameWithFlags(f *testing.F) {
	for _, b := range []string{"1700000000.M1P2.host", "1700000000.M1P2.host,S=1234,W=1260", "a", "x,S=", "x,S=-1", "x,W=9,S=8,S=7",
		"1234.5678_1.mail.example.org", "é", "a b"} {
		f.Add(b, uint64(0), int64(10), int64(12))
		f.Add(b, uint64(1<<18|1<<5|1<<26|1<<51), int64(0), int64(1<<40))
	}
	f.Fuzz(func(t *testing.T, base string, bits uint64, size, vsize int64) {
		n, err := ParseName(base)
		if err != nil || n.HasInfo {
			return
		}
		flags := Flags(bits) & (1<<52 - 1)
		if again, err := ParseFlags(flags.String()); err != nil || again != flags {
			t.Fatalf("ParseFlags(%q) = %v, %v; want %v", flags.String(), again, err, flags)
		}
		name := FilenameWithFlags(base, flags)
		got, err := ParseName(name)
		if err != nil || got.Base != base || got.Flags != flags || !got.Standard || got.Info != "" || got.Filename() != name {
			t.Fatalf("FilenameWithFlags(%q, %q) = %q, read back as %+v, %v", base, flags.String(), name, got, err)
		}
		if got != n.WithFlags(flags) {
			t.Fatalf("ParseName(%q) = %+v, WithFlags gives %+v", name, got, n.WithFlags(flags))
		}
		s, w := SizeFields(base)
		if s < -1 || w < -1 {
			t.Fatalf("SizeFields(%q) = %d, %d", base, s, w)
		}
		if size < 0 || vsize < 0 {
			return
		}
		sized := base + ",S=" + strconv.FormatInt(size, 10) + ",W=" + strconv.FormatInt(vsize, 10)
		if s, w := SizeFields(BaseName(FilenameWithFlags(sized, flags))); s != size || w != vsize {
			t.Fatalf("SizeFields(%q) = %d, %d; want %d, %d", sized, s, w, size, vsize)
		}
	})
}

// FuzzReadSubscriptions reads any subscriptions file, Courier's or
// Dovecot's version 2: never an empty name, never a line break inside
// one, and what WriteSubscriptions accepts of them reads back the same.
func FuzzReadSubscriptions(f *testing.F) {
	for _, name := range []string{"subscriptions-courier", "subscriptions-dovecot-v2"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("V\t2\n\nA\x01tB\tC\x01nD\x01\x01r\r\n\n\nx\x01"))
	f.Add([]byte("INBOX\r\nLists.Go\n\n"))
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(root, SubscriptionsFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		names, err := ReadSubscriptions(root)
		if err != nil {
			t.Fatalf("ReadSubscriptions: %v", err)
		}
		writable := true
		for _, n := range names {
			if n == "" {
				t.Fatalf("empty name in %q", names)
			}
			if !strings.HasPrefix(string(data), subsV2Header) && strings.ContainsAny(n, "\n") {
				t.Fatalf("name %q holds a line break", n)
			}
			writable = writable && !strings.ContainsAny(n, "\r\n\x00")
		}
		if !writable {
			if WriteSubscriptions(root, names) == nil {
				t.Fatalf("WriteSubscriptions accepted %q", names)
			}
			return
		}
		if err := WriteSubscriptions(root, names); err != nil {
			t.Fatalf("WriteSubscriptions(%q): %v", names, err)
		}
		again, err := ReadSubscriptions(root)
		if err != nil || !slices.Equal(again, names) {
			t.Fatalf("subscriptions %q written and read back as %q, %v", names, again, err)
		}
	})
}
