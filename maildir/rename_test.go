package maildir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// put writes a file with content into dir/sub.
func put(t testing.TB, dir, sub, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, sub, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// contentOf returns the content of dir/sub/name, or "<missing>".
func contentOf(t testing.TB, dir, sub, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, sub, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func flagsOf(s string) Flags {
	f, err := ParseFlags(s)
	if err != nil {
		panic(err)
	}
	return f
}

func TestSetFlags(t *testing.T) {
	tests := []struct {
		name     string
		sub      string
		file     string
		flags    string
		want     string
		noRename bool
	}{
		{"add flag", Cur, "1.M1P1.h,S=5:2,S", "RS", "1.M1P1.h,S=5:2,RS", false},
		{"remove all", Cur, "1.M1P1.h:2,FS", "", "1.M1P1.h:2,", false},
		{"no info yet", Cur, "1.M1P1.h", "S", "1.M1P1.h:2,S", false},
		{"keywords", Cur, "1.M1P1.h:2,S", "Sab", "1.M1P1.h:2,Sab", false},
		{"keeps text after flags", Cur, "1.M1P1.h:2,S,extra", "RS", "1.M1P1.h:2,RS,extra", false},
		{"no-op", Cur, "1.M1P1.h:2,RS", "SR", "1.M1P1.h:2,RS", true},
		{"new to cur", New, "1.M1P1.h,S=5", "S", "1.M1P1.h,S=5:2,S", false},
		{"new to cur, same name", New, "1.M1P1.h:2,S", "S", "1.M1P1.h:2,S", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := newMaildir(t)
			put(t, dir, tc.sub, tc.file, "body")
			got, err := SetFlags(dir, tc.sub, tc.file, flagsOf(tc.flags))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("SetFlags = %q, want %q", got, tc.want)
			}
			if c := contentOf(t, dir, Cur, tc.want); c != "body" {
				t.Errorf("cur/%s: %q", tc.want, c)
			}
			if !tc.noRename {
				if c := contentOf(t, dir, tc.sub, tc.file); c != "<missing>" {
					t.Errorf("%s/%s still there", tc.sub, tc.file)
				}
			}
			if n := len(dirNames(t, filepath.Join(dir, Cur))) + len(dirNames(t, filepath.Join(dir, New))); n != 1 {
				t.Errorf("%d files in new/ and cur/, want 1", n)
			}
		})
	}
}

func TestSetFlagsErrors(t *testing.T) {
	dir := newMaildir(t)
	if _, err := SetFlags(dir, Cur, "gone:2,S", flagsOf("RS")); !errors.Is(err, ErrMoved) {
		t.Errorf("missing source: %v, want ErrMoved", err)
	}
	if _, err := SetFlags(dir, New, "gone", flagsOf("S")); !errors.Is(err, ErrMoved) {
		t.Errorf("missing source in new/: %v, want ErrMoved", err)
	}

	// The target name exists (another program made it, or a duplicate):
	// it must stay untouched, and so must the source.
	put(t, dir, Cur, "x:2,S", "source")
	put(t, dir, Cur, "x:2,RS", "target")
	_, err := SetFlags(dir, Cur, "x:2,S", flagsOf("RS"))
	if !errors.Is(err, ErrExists) || !errors.Is(err, fs.ErrExist) {
		t.Errorf("existing target: %v, want ErrExists", err)
	}
	if c := contentOf(t, dir, Cur, "x:2,RS"); c != "target" {
		t.Errorf("target changed to %q", c)
	}
	if c := contentOf(t, dir, Cur, "x:2,S"); c != "source" {
		t.Errorf("source changed to %q", c)
	}

	for _, bad := range []struct{ sub, file string }{
		{Tmp, "x:2,S"},
		{"", "x:2,S"},
		{Cur, ""},
		{Cur, ".hidden"},
		{Cur, "a/b"},
	} {
		if _, err := SetFlags(dir, bad.sub, bad.file, 0); err == nil || errors.Is(err, ErrMoved) {
			t.Errorf("SetFlags(%q, %q) = %v, want a usage error", bad.sub, bad.file, err)
		}
	}
}

func TestMoveToCur(t *testing.T) {
	tests := []struct{ file, want string }{
		{"1.M1P1.h,S=3,W=4", "1.M1P1.h,S=3,W=4:2,"},
		{"1.M1P1.h:2,FS", "1.M1P1.h:2,FS"},
		{"1.M1P1.h:1,odd", "1.M1P1.h:1,odd"},
	}
	for _, tc := range tests {
		dir := newMaildir(t)
		put(t, dir, New, tc.file, "m")
		got, err := MoveToCur(dir, tc.file)
		if err != nil || got != tc.want {
			t.Errorf("MoveToCur(%q) = %q, %v, want %q", tc.file, got, err, tc.want)
			continue
		}
		if c := contentOf(t, dir, Cur, got); c != "m" {
			t.Errorf("cur/%s: %q", got, c)
		}
		if n := dirNames(t, filepath.Join(dir, New)); len(n) != 0 {
			t.Errorf("new/ holds %v", n)
		}
	}

	dir := newMaildir(t)
	if _, err := MoveToCur(dir, "gone"); !errors.Is(err, ErrMoved) {
		t.Errorf("missing: %v, want ErrMoved", err)
	}
	put(t, dir, New, "dup", "new one")
	put(t, dir, Cur, "dup:2,", "cur one")
	if _, err := MoveToCur(dir, "dup"); !errors.Is(err, ErrExists) {
		t.Errorf("existing target: %v, want ErrExists", err)
	}
	if c := contentOf(t, dir, Cur, "dup:2,"); c != "cur one" {
		t.Errorf("target changed to %q", c)
	}
}

func TestRemove(t *testing.T) {
	dir := newMaildir(t)
	put(t, dir, Cur, "x:2,S", "m")
	put(t, dir, New, "y", "m")
	if err := Remove(dir, Cur, "x:2,S"); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir, New, "y"); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{New, Cur} {
		if n := dirNames(t, filepath.Join(dir, sub)); len(n) != 0 {
			t.Errorf("%s/ holds %v", sub, n)
		}
	}
	if err := Remove(dir, Cur, "x:2,S"); !errors.Is(err, ErrMoved) {
		t.Errorf("second remove: %v, want ErrMoved", err)
	}
	if err := Remove(dir, "other", "x"); err == nil {
		t.Error("remove from a bad subdirectory succeeded")
	}
	if err := Remove(dir, Cur, "../new"); err == nil || errors.Is(err, ErrMoved) {
		t.Errorf("remove of a path: %v", err)
	}
}

// TestLinkRename covers the fallback used where RENAME_NOREPLACE is
// missing.
func TestLinkRename(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	for _, p := range []string{a, c} {
		if err := os.WriteFile(p, []byte(filepath.Base(p)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := linkRename(a, b); err != nil {
		t.Fatal(err)
	}
	if err := linkRename(b, c); !errors.Is(err, fs.ErrExist) {
		t.Errorf("onto an existing file: %v, want EEXIST", err)
	}
	names := dirNames(t, dir)
	if !slices.Equal(names, []string{"b", "c"}) {
		t.Errorf("files %v, want [b c]", names)
	}
	if data, _ := os.ReadFile(c); string(data) != "c" {
		t.Errorf("c changed to %q", data)
	}
	if err := linkRename(a, b); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing source: %v, want ENOENT", err)
	}
}

func TestRenameDirNoReplace(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"a", "b", "b/inner"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := renameDirNoReplace(filepath.Join(dir, "a"), filepath.Join(dir, "b")); !errors.Is(err, fs.ErrExist) {
		t.Errorf("onto an existing dir: %v, want EEXIST", err)
	}
	if err := renameDirNoReplace(filepath.Join(dir, "a"), filepath.Join(dir, "c")); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"b", "c"}) {
		t.Errorf("dirs %v, want [b c]", names)
	}
}
