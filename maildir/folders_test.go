package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cistern-mail/cistern/internal/testfs"
)

func TestFolderNames(t *testing.T) {
	good := []struct {
		path []string
		name string
	}{
		{[]string{"A"}, ".A"},
		{[]string{"A", "B"}, ".A.B"},
		{[]string{"Sent Items"}, ".Sent Items"},
		{[]string{"&AOQ-rger", "Ünïcödé"}, ".&AOQ-rger.Ünïcödé"},
	}
	for _, tc := range good {
		name, err := FolderName(tc.path)
		if err != nil || name != tc.name {
			t.Errorf("FolderName(%q) = %q, %v, want %q", tc.path, name, err, tc.name)
		}
		path, err := ParseFolderName(tc.name)
		if err != nil || !slices.Equal(path, tc.path) {
			t.Errorf("ParseFolderName(%q) = %q, %v, want %q", tc.name, path, err, tc.path)
		}
		dir, err := FolderDir("/root", tc.path)
		if err != nil || dir != "/root/"+tc.name {
			t.Errorf("FolderDir(%q) = %q, %v", tc.path, dir, err)
		}
	}
	if dir, err := FolderDir("/root", nil); err != nil || dir != "/root" {
		t.Errorf("FolderDir(INBOX) = %q, %v, want the root", dir, err)
	}
}

func TestBadFolderNames(t *testing.T) {
	tests := []struct {
		name string
		elem string
	}{
		{"dot dot", ".."},
		{"dot", "."},
		{"slash", "a/b"},
		{"leading dot", ".x"},
		{"NUL", "a\x00"},
		{"empty", ""},
		{"control char", "a\x01b"},
		{"newline", "a\nb"},
		{"DEL", "a\x7f"},
		{"inner dot", "a.b"},
		{"trailing dot", "a."},
	}
	root := newMaildir(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range [][]string{{tc.elem}, {"ok", tc.elem}, {tc.elem, "ok"}} {
				if _, err := FolderName(path); !errors.Is(err, ErrBadFolderName) {
					t.Errorf("FolderName(%q) = %v, want ErrBadFolderName", path, err)
				}
				if _, err := FolderDir(root, path); !errors.Is(err, ErrBadFolderName) {
					t.Errorf("FolderDir(%q) = %v", path, err)
				}
				if err := CreateFolder(root, path); !errors.Is(err, ErrBadFolderName) {
					t.Errorf("CreateFolder(%q) = %v", path, err)
				}
				if err := DeleteFolder(root, path); !errors.Is(err, ErrBadFolderName) {
					t.Errorf("DeleteFolder(%q) = %v", path, err)
				}
				if err := RenameFolder(root, []string{"ok"}, path); !errors.Is(err, ErrBadFolderName) {
					t.Errorf("RenameFolder(ok, %q) = %v", path, err)
				}
			}
		})
	}
	for _, name := range []string{"", ".", "..", "x", "..x", ".a..b", ".a.", ".a/b"} {
		if _, err := ParseFolderName(name); !errors.Is(err, ErrBadFolderName) {
			t.Errorf("ParseFolderName(%q) = %v, want ErrBadFolderName", name, err)
		}
	}
	// Nothing may have been created by the failed calls.
	if names := dirNames(t, root); !slices.Equal(names, []string{Cur, New, Tmp}) {
		t.Errorf("root holds %v", names)
	}
}

func mustCreateFolders(t *testing.T, root string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := CreateFolder(root, strings.Split(p, "/")); err != nil {
			t.Fatalf("CreateFolder(%s): %v", p, err)
		}
	}
}

// listed returns ListFolders as "A/B" strings.
func listed(t *testing.T, root string) []string {
	t.Helper()
	paths, err := ListFolders(root)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, p := range paths {
		out = append(out, strings.Join(p, "/"))
	}
	return out
}

func TestCreateFolder(t *testing.T) {
	root := newMaildir(t)
	if err := os.Chmod(root, 0o750); err != nil {
		t.Fatal(err)
	}
	mustCreateFolders(t, root, "A", "A/B")
	dir := filepath.Join(root, ".A.B")
	if !IsMaildir(dir) {
		t.Fatal(".A.B is not a Maildir")
	}
	fi, err := os.Stat(filepath.Join(dir, MaildirFolderFile))
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != 0 {
		t.Errorf("maildirfolder: %v, %v", fi, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o750&^currentUmask(t) {
		t.Errorf("folder mode: %v, %v; want the root's", fi.Mode(), err)
	}
	if err := CreateFolder(root, []string{"A", "B"}); !errors.Is(err, ErrFolderExists) {
		t.Errorf("second create: %v, want ErrFolderExists", err)
	}
	if err := CreateFolder(root, nil); !errors.Is(err, ErrFolderExists) {
		t.Errorf("create INBOX: %v, want ErrFolderExists", err)
	}
	// A folder directory a crash left half made is completed.
	if err := os.Mkdir(filepath.Join(root, ".Half"), 0o700); err != nil {
		t.Fatal(err)
	}
	mustCreateFolders(t, root, "Half")
	if !IsMaildir(filepath.Join(root, ".Half")) {
		t.Error(".Half was not completed")
	}
}

func TestListFolders(t *testing.T) {
	root := newMaildir(t)
	if got := listed(t, root); len(got) != 0 {
		t.Fatalf("empty root lists %v", got)
	}
	mustCreateFolders(t, root, "b", "A/B", "A", "C/D", "A/B/C", "AB")
	// Noise that is not a folder.
	for _, d := range []string{".E", deletedPrefix + "x", "plain"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := Create(filepath.Join(root, ".bad..name"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	want := []string{"A", "A/B", "A/B/C", "AB", "C/D", "b"}
	if got := listed(t, root); !slices.Equal(got, want) {
		t.Errorf("ListFolders = %v, want %v", got, want)
	}
	if _, err := ListFolders(filepath.Join(root, "missing")); err == nil {
		t.Error("ListFolders of a missing root succeeded")
	}
}

func TestDeleteFolder(t *testing.T) {
	root := newMaildir(t)
	mustCreateFolders(t, root, "A", "A/B", "AB")
	dirA, _ := FolderDir(root, []string{"A"})
	if _, err := Deliver(dirA, strings.NewReader("doomed\n"), DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	// A deleted tree a crash left behind is removed too.
	left := filepath.Join(root, deletedPrefix+"left")
	if err := Create(left, 0); err != nil {
		t.Fatal(err)
	}

	if err := DeleteFolder(root, []string{"A"}); err != nil {
		t.Fatal(err)
	}
	if got, want := listed(t, root), []string{"A/B", "AB"}; !slices.Equal(got, want) {
		t.Errorf("after delete: %v, want %v", got, want)
	}
	for _, n := range dirNames(t, root) {
		if strings.HasPrefix(n, deletedPrefix) {
			t.Errorf("left behind: %s", n)
		}
	}
	if err := DeleteFolder(root, []string{"A"}); !errors.Is(err, ErrFolderNotFound) {
		t.Errorf("second delete: %v, want ErrFolderNotFound", err)
	}
	if err := DeleteFolder(root, nil); err == nil {
		t.Error("deleting INBOX succeeded")
	}
	if !IsMaildir(root) {
		t.Error("the root is no longer a Maildir")
	}
}

func TestRenameFolder(t *testing.T) {
	root := newMaildir(t)
	mustCreateFolders(t, root, "A", "A/B", "A/B/C", "AB", "Other")
	dirB, _ := FolderDir(root, []string{"A", "B"})
	name, err := Deliver(dirB, strings.NewReader("moving\n"), DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := RenameFolder(root, []string{"A"}, []string{"X", "Y"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"AB", "Other", "X/Y", "X/Y/B", "X/Y/B/C"}
	if got := listed(t, root); !slices.Equal(got, want) {
		t.Errorf("after rename: %v, want %v", got, want)
	}
	if c := contentOf(t, filepath.Join(root, ".X.Y.B"), New, name); c != "moving\n" {
		t.Errorf("message after rename: %q", c)
	}

	errTests := []struct {
		name     string
		from, to []string
		want     error
	}{
		{"target exists", []string{"X", "Y"}, []string{"Other"}, ErrFolderExists},
		{"same name", []string{"AB"}, []string{"AB"}, ErrFolderExists},
		{"missing", []string{"Nope"}, []string{"Z"}, ErrFolderNotFound},
		{"under itself", []string{"X"}, []string{"X", "Y", "Z"}, ErrBadFolderName},
		{"INBOX from", nil, []string{"Z"}, ErrBadFolderName},
		{"INBOX to", []string{"AB"}, nil, ErrBadFolderName},
	}
	for _, tc := range errTests {
		if err := RenameFolder(root, tc.from, tc.to); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := listed(t, root); !slices.Equal(got, want) {
		t.Errorf("failed renames changed the folders: %v, want %v", got, want)
	}
}

func TestRenameFolderChildConflict(t *testing.T) {
	root := newMaildir(t)
	// Z has no directory of its own, only a child Z/B; renaming A (with
	// child A/B) to Z would put A/B onto Z/B.
	mustCreateFolders(t, root, "A", "A/B", "Z/B")
	err := RenameFolder(root, []string{"A"}, []string{"Z"})
	if !errors.Is(err, ErrFolderExists) {
		t.Errorf("err = %v, want ErrFolderExists", err)
	}
	if got, want := listed(t, root), []string{"A", "A/B", "Z/B"}; !slices.Equal(got, want) {
		t.Errorf("folders %v, want %v", got, want)
	}
	// A level that exists only through its children can be renamed.
	if err := RenameFolder(root, []string{"Z"}, []string{"W"}); err != nil {
		t.Fatal(err)
	}
	if got, want := listed(t, root), []string{"A", "A/B", "W/B"}; !slices.Equal(got, want) {
		t.Errorf("folders %v, want %v", got, want)
	}
}

func TestSubscriptions(t *testing.T) {
	root := newMaildir(t)
	got, err := ReadSubscriptions(root)
	if err != nil || len(got) != 0 {
		t.Fatalf("no file: %q, %v, want empty", got, err)
	}
	lists := [][]string{
		{"INBOX", "A.B", "Ünïcödé", "Sent Items"},
		{"INBOX"},
		{},
	}
	for _, names := range lists {
		if err := WriteSubscriptions(root, names); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSubscriptions(root)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 || len(names) != 0 {
			if !reflect.DeepEqual(got, names) {
				t.Errorf("round trip: %q, want %q", got, names)
			}
		}
		data, err := os.ReadFile(filepath.Join(root, SubscriptionsFile))
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Join(names, "\n")
		if len(names) > 0 {
			want += "\n"
		}
		if string(data) != want {
			t.Errorf("file %q, want %q", data, want)
		}
		if n := dirNames(t, filepath.Join(root, Tmp)); len(n) != 0 {
			t.Errorf("tmp/ holds %v", n)
		}
	}
	for _, bad := range []string{"", "a\nb", "a\rb", "a\x00"} {
		if err := WriteSubscriptions(root, []string{"INBOX", bad}); !errors.Is(err, ErrBadFolderName) {
			t.Errorf("WriteSubscriptions(%q) = %v, want ErrBadFolderName", bad, err)
		}
	}
	// A root without tmp/ still works (the temporary file goes into root).
	plain := t.TempDir()
	if err := WriteSubscriptions(plain, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, plain); !slices.Equal(names, []string{SubscriptionsFile}) {
		t.Errorf("plain root holds %v", names)
	}
}

func TestReadSubscriptionsForeign(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"subscriptions-dovecot-v2", []string{"INBOX", "Archive.2024", "weird\tname", "Sent"}},
		{"subscriptions-courier", []string{"INBOX", "INBOX.Sent", "INBOX.Lists.go-nuts"}},
	}
	for _, tc := range tests {
		data, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, SubscriptionsFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSubscriptions(root)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, %v, want %q", tc.file, got, err, tc.want)
		}
	}
}

func TestTabUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a\x01tb", "a\tb"},
		{"\x011\x01r\x01n\x010", "\x01\r\n\x00"},
		{"end\x01", "end\x01"},
		{"\x01x", "x"},
	}
	for _, tc := range tests {
		if got := tabUnescape([]byte(tc.in)); got != tc.want {
			t.Errorf("tabUnescape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzFolderName(f *testing.F) {
	for _, s := range []string{".A", ".A.B", "..", ".a..b", "x", ".\x00", ".Ünï.x y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		path, err := ParseFolderName(name)
		if err != nil {
			if !errors.Is(err, ErrBadFolderName) {
				t.Fatalf("ParseFolderName(%q): error %v does not wrap ErrBadFolderName", name, err)
			}
			return
		}
		back, err := FolderName(path)
		if err != nil || back != name {
			t.Fatalf("FolderName(ParseFolderName(%q)) = %q, %v", name, back, err)
		}
		if strings.Contains(name, "/") || filepath.Base("/r/"+name) != name {
			t.Fatalf("valid folder name %q is not one path element", name)
		}
	})
}

// TestUnusableFolder: a folder this process may not look inside (mode
// 000) is listed, CheckMaildir says why it cannot be used, and creating
// it again says it exists. As root the test runs as nobody (testfs).
func TestUnusableFolder(t *testing.T) {
	if !testfs.Unprivileged(t) {
		return
	}
	root := newMaildir(t)
	mustCreateFolders(t, root, "Open", "Closed")
	closed := filepath.Join(root, ".Closed")
	if err := os.Chmod(closed, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(closed, 0o700) })

	if got, want := listed(t, root), []string{"Closed", "Open"}; !slices.Equal(got, want) {
		t.Errorf("ListFolders = %v, want %v", got, want)
	}
	if err := CheckMaildir(closed); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("CheckMaildir of a folder of mode 000: %v, want a permission error", err)
	}
	if IsMaildir(closed) {
		t.Error("IsMaildir of a folder of mode 000")
	}
	if err := CheckMaildir(filepath.Join(root, ".Open")); err != nil {
		t.Errorf("CheckMaildir of a folder: %v", err)
	}
	if err := CheckMaildir(filepath.Join(root, ".Missing")); !errors.Is(err, ErrNotMaildir) {
		t.Errorf("CheckMaildir of a missing folder: %v, want ErrNotMaildir", err)
	}
	if err := CreateFolder(root, []string{"Closed"}); !errors.Is(err, ErrFolderExists) {
		t.Errorf("CreateFolder of a folder of mode 000: %v, want ErrFolderExists", err)
	}
	if err := DeleteFolder(root, []string{"Closed"}); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("DeleteFolder of a folder of mode 000: %v, want a permission error", err)
	}
	if got, want := listed(t, root), []string{"Closed", "Open"}; !slices.Equal(got, want) {
		t.Errorf("after the refused delete, ListFolders = %v, want %v", got, want)
	}
}

func TestNoSpace(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("deliver: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.EDQUOT}), true},
		{syscall.EACCES, false},
		{errors.New("no space left on device"), false},
		{nil, false},
	} {
		if got := NoSpace(tt.err); got != tt.want {
			t.Errorf("NoSpace(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestListFoldersSkipsControlCharacters: a directory whose name holds a
// control character (C0, DEL, or C1 as UTF-8) is no folder: skipped by
// ListFolders, named by ListFoldersSkipping.
func TestListFoldersSkipsControlCharacters(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{".ok", ".c1\u0085x", ".c0\x01x", ".del\x7fx", ".ok.\u009f"} {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(root, n, sub), 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	var skipped []string
	got, err := ListFoldersSkipping(root, func(name string, why error) {
		if !errors.Is(why, ErrBadFolderName) {
			t.Errorf("%q skipped for %v", name, why)
		}
		skipped = append(skipped, name)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0]) != 1 || got[0][0] != "ok" {
		t.Errorf("folders: %q", got)
	}
	slices.Sort(skipped)
	if want := []string{".c0\x01x", ".c1\u0085x", ".del\x7fx", ".ok.\u009f"}; !slices.Equal(skipped, want) {
		t.Errorf("skipped: %q, want %q", skipped, want)
	}
	if err := CreateFolder(root, []string{"a\u0080"}); !errors.Is(err, ErrBadFolderName) {
		t.Errorf("CreateFolder with U+0080: %v", err)
	}
}
