package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

func TestRecordedQuota(t *testing.T) {
	root := t.TempDir()
	if _, _, err := RecordedQuota(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no maildirsize: %v, want ErrNotExist", err)
	}
	path := filepath.Join(root, QuotaFile)
	tests := []struct {
		data  string
		limit QuotaLimit
		usage QuotaUsage
		bad   bool
	}{
		{"1000S,5C\n300 3\n-100 -1\n", QuotaLimit{1000, 5}, QuotaUsage{200, 2}, false},
		{"\n7 1\n", QuotaLimit{}, QuotaUsage{7, 1}, false},
		// Past QuotaFileMax the daemon stops reading; the total is
		// still what the lines say.
		{"1000S\n" + strings.Repeat("1 1\n", 2000), QuotaLimit{Bytes: 1000}, QuotaUsage{2000, 2000}, false},
		{"1000S\nnot a number\n", QuotaLimit{}, QuotaUsage{}, true},
		{"", QuotaLimit{}, QuotaUsage{}, true},
		{strings.Repeat("x", maxRecordedQuota+1), QuotaLimit{}, QuotaUsage{}, true},
	}
	for _, tt := range tests {
		if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
			t.Fatal(err)
		}
		limit, usage, err := RecordedQuota(root)
		if tt.bad {
			if !errors.Is(err, ErrBadQuotaFile) {
				t.Errorf("%.40q: %v, want ErrBadQuotaFile", tt.data, err)
			}
			continue
		}
		if err != nil || limit != tt.limit || usage != tt.usage {
			t.Errorf("%.40q: %+v %+v %v; want %+v %+v", tt.data, limit, usage, err, tt.limit, tt.usage)
		}
	}
}

// RewriteQuota writes the file also without a limit, where
// RecalculateQuota only counts.
func TestRewriteQuota(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := maildir.Create(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, maildir.Cur, "1700000000.M1P1.test,S=42:2,S"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, QuotaFile), []byte("\n1 9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := RewriteQuota(root, QuotaLimit{})
	if err != nil || u != (QuotaUsage{42, 1}) {
		t.Fatalf("RewriteQuota: %+v, %v", u, err)
	}
	if data, _ := os.ReadFile(filepath.Join(root, QuotaFile)); string(data) != "\n42 1\n" {
		t.Errorf("maildirsize %q, want %q", data, "\n42 1\n")
	}
	if _, err := RewriteQuota(root, QuotaLimit{Messages: 3}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(root, QuotaFile)); string(data) != "3C\n42 1\n" {
		t.Errorf("maildirsize %q, want %q", data, "3C\n42 1\n")
	}
}

// ReadIndex creates nothing, shares the file with other readers, and
// is refused while the daemon holds it; DropIndexEntries removes
// entries and whole mailboxes.
func TestOfflineIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	all := func(string) bool { return true }
	if _, err := ReadIndex(path, all); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadIndex without an index: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadIndex created the index: %v", err)
	}
	ix, err := OpenIndex(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1700000000, 5)
	for _, k := range [][2]string{{"/a", "m1"}, {"/a", "m2"}, {"/b", "m3"}} {
		ix.Put(k[0], k[1], IndexEntry{FileSize: 10, CRLFSize: 12, MTime: mtime, Structure: []byte("s")})
	}
	if _, err := ReadIndex(path, all); !errors.Is(err, ErrIndexBusy) {
		t.Errorf("ReadIndex while the daemon holds it: %v, want ErrIndexBusy", err)
	}
	if err := DropIndexEntries(path, map[string][]string{"/a": {"m1"}}, nil); !errors.Is(err, ErrIndexBusy) {
		t.Errorf("DropIndexEntries while the daemon holds it: %v, want ErrIndexBusy", err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadIndex(path, func(dir string) bool { return dir == "/a" })
	if err != nil {
		t.Fatal(err)
	}
	e := got["/a"]["m1"]
	if len(got) != 1 || len(got["/a"]) != 2 || e.FileSize != 10 || e.CRLFSize != 12 || !e.MTime.Equal(mtime) || e.Structure != nil {
		t.Errorf("ReadIndex: %+v", got)
	}
	if err := DropIndexEntries(path, map[string][]string{"/a": {"m1", "nothing"}, "/none": {"x"}}, []string{"/b", "/none"}); err != nil {
		t.Fatal(err)
	}
	got, err = ReadIndex(path, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got["/a"]) != 1 || got["/a"]["m2"].FileSize != 10 {
		t.Errorf("after DropIndexEntries: %+v", got)
	}
}
