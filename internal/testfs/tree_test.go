package testfs

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

func TestSnapshotDiff(t *testing.T) {
	root := t.TempDir()
	a, sub := filepath.Join(root, "a"), filepath.Join(root, "sub")
	if err := os.WriteFile(a, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	before := Snapshot(t, root)
	if want := (Tree{root: "dir", sub: "dir"}); before[root] != want[root] || before[sub] != want[sub] || len(before) != 3 {
		t.Fatalf("Snapshot: %v", before)
	}
	if again := Snapshot(t, root); !maps.Equal(before, again) || Diff(before, again) != "" {
		t.Fatalf("two snapshots of an unchanged tree differ: %s", Diff(before, again))
	}

	// Same content, another mtime: a change.
	if err := os.Chtimes(a, time.Unix(1, 0), time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(root, "b")
	if err := os.WriteFile(b, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	after := Snapshot(t, root)
	if maps.Equal(before, after) {
		t.Fatal("snapshots equal after a touch, a removal and a new file")
	}
	want := "~ " + a + "\n+ " + b + "\n- " + sub
	if got := Diff(before, after); got != want {
		t.Errorf("Diff:\n%s\nwant:\n%s", got, want)
	}
}

// BenchFilename gives distinct, well-formed Maildir names with the size
// fields and flags it promises.
func TestBenchFilename(t *testing.T) {
	const n = 20_000
	seen := make(map[string]int, n)
	for i := range n {
		name := BenchFilename(i)
		base := maildir.BaseName(name)
		if j, dup := seen[base]; dup {
			t.Fatalf("BenchFilename(%d) and (%d) share the base name %s", i, j, base)
		}
		seen[base] = i
		nm, err := maildir.ParseName(name)
		if err != nil {
			t.Fatalf("BenchFilename(%d) = %q: %v", i, name, err)
		}
		flags, err := maildir.ParseFlags(benchFlags[i%len(benchFlags)])
		if err != nil {
			t.Fatal(err)
		}
		if got := maildir.FilenameWithFlags(nm.Base, flags); got != name {
			t.Fatalf("BenchFilename(%d) = %q, its base with its flags is %q", i, name, got)
		}
		size, vsize := maildir.SizeFields(base)
		if want := int64(2000 + i*37%90000); size != want || vsize != want+want/40 {
			t.Fatalf("BenchFilename(%d) = %q: sizes %d, %d", i, name, size, vsize)
		}
	}
}

// BenchMaildir makes every file once and, under BenchDirEnv, reuses a
// complete Maildir instead of making it again.
func TestBenchMaildir(t *testing.T) {
	const n = 300
	t.Setenv(BenchDirEnv, t.TempDir())
	made := func() string {
		var dir string
		res := testing.Benchmark(func(b *testing.B) { dir = BenchMaildir(b, "test", n) })
		if res.N == 0 || dir == "" {
			t.Fatal("the benchmark failed")
		}
		return dir
	}
	first := made()
	// A file a reuse leaves alone and a new make removes.
	if err := os.WriteFile(filepath.Join(first, "kept"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if second := made(); second != first {
		t.Fatalf("BenchMaildir made %s, then %s", first, second)
	}
	if _, err := os.Stat(filepath.Join(first, "kept")); err != nil {
		t.Errorf("the reused Maildir was made again: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(first, "cur"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Fatalf("cur/ holds %d files, want %d", len(entries), n)
	}
	for _, e := range entries {
		if _, err := maildir.ParseName(e.Name()); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		}
	}
}
