package maildir

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// crlfSize is the reference for W=: the size of s with every line ending
// as CRLF, computed by rewriting s.
func crlfSize(s string) int64 {
	return int64(len(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")))
}

// dirNames lists the names in dir, failing the test on error.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestDeliverContentAndSizes(t *testing.T) {
	// A CR at the end of one copy chunk and its LF at the start of the next
	// must count as one CRLF.
	straddle := strings.Repeat("x", copyBufSize-1) + "\r\n" + strings.Repeat("y\n", 100)
	tests := []struct {
		name  string
		msg   string
		vsize int64 // -1: use crlfSize
	}{
		{"empty", "", 0},
		{"lf", "a\nb\n", 6},
		{"crlf", "a\r\nb\r\n", 6},
		{"mixed", "Subject: x\r\nTo: y\n\nbody\r\nline\n", 33},
		{"no final newline", "a\nb", 4},
		{"no newline at all", "abc", 3},
		{"bare cr", "a\rb\r", 4},
		{"cr cr lf", "\r\r\n\n", 5},
		{"only lfs", "\n\n\n", 6},
		{"chunk straddle", straddle, -1},
	}
	for _, tc := range tests {
		for _, oneByte := range []bool{false, true} {
			name := tc.name
			if oneByte {
				name += "/one byte reads"
			}
			t.Run(name, func(t *testing.T) {
				if oneByte && len(tc.msg) > 1000 {
					t.Skip("slow")
				}
				want := tc.vsize
				if want < 0 {
					want = crlfSize(tc.msg)
				} else if got := crlfSize(tc.msg); got != want {
					t.Fatalf("test table: vsize %d, reference says %d", want, got)
				}
				dir := newMaildir(t)
				var r io.Reader = strings.NewReader(tc.msg)
				if oneByte {
					r = iotest.OneByteReader(r)
				}
				name, err := Deliver(dir, r, DeliverOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if strings.ContainsAny(name, ":/") {
					t.Errorf("name %q in new/ holds ':' or '/'", name)
				}
				data, err := os.ReadFile(filepath.Join(dir, New, name))
				if err != nil {
					t.Fatal(err)
				}
				if string(data) != tc.msg {
					t.Errorf("content differs: got %d bytes, want %d", len(data), len(tc.msg))
				}
				size, vsize := SizeFields(BaseName(name))
				if size != int64(len(data)) {
					t.Errorf("S=%d, file size %d", size, len(data))
				}
				if vsize != want {
					t.Errorf("W=%d, want %d", vsize, want)
				}
				if n := dirNames(t, filepath.Join(dir, Tmp)); len(n) != 0 {
					t.Errorf("tmp/ holds %v after delivery", n)
				}
				if n := dirNames(t, filepath.Join(dir, Cur)); len(n) != 0 {
					t.Errorf("cur/ holds %v", n)
				}
			})
		}
	}
}

func TestDeliverCur(t *testing.T) {
	dir := newMaildir(t)
	flags := Flags(0).With(FlagSeen).With(FlagFlagged).With('b')
	msg := "Subject: hi\n\nhello\n"
	name, err := Deliver(dir, strings.NewReader(msg), DeliverOptions{Cur: true, Flags: flags})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(name, ":2,FSb") {
		t.Errorf("name %q does not end with :2,FSb", name)
	}
	n, err := ParseName(name)
	if err != nil || n.Flags != flags {
		t.Errorf("ParseName(%q) = %+v, %v", name, n, err)
	}
	if s, w := SizeFields(n.Base); s != int64(len(msg)) || w != crlfSize(msg) {
		t.Errorf("sizes %d, %d", s, w)
	}
	if data, err := os.ReadFile(filepath.Join(dir, Cur, name)); err != nil || string(data) != msg {
		t.Errorf("cur/%s: %q, %v", name, data, err)
	}
	if n := dirNames(t, filepath.Join(dir, New)); len(n) != 0 {
		t.Errorf("new/ holds %v", n)
	}
	// Cur without flags gives ":2,".
	name, err = Deliver(dir, strings.NewReader(msg), DeliverOptions{Cur: true})
	if err != nil || !strings.HasSuffix(name, ":2,") {
		t.Errorf("Cur without flags: %q, %v", name, err)
	}
}

func TestDeliverOptions(t *testing.T) {
	dir := newMaildir(t)
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	g := &NameGen{Host: "testhost"}
	name, err := Deliver(dir, strings.NewReader("x\n"), DeliverOptions{Time: when, Gen: g, Perm: 0o640})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(name, "Q1.testhost,S=2,W=3") {
		t.Errorf("name %q was not made by the given generator", name)
	}
	fi, err := os.Stat(filepath.Join(dir, New, name))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(when) {
		t.Errorf("mtime %v, want %v", fi.ModTime(), when)
	}
	if want := os.FileMode(0o640) &^ currentUmask(t); fi.Mode().Perm() != want {
		t.Errorf("mode %v, want %v", fi.Mode().Perm(), want)
	}

	name, err = Deliver(dir, strings.NewReader("x\n"), DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err = os.Stat(filepath.Join(dir, New, name))
	if err != nil {
		t.Fatal(err)
	}
	if want := DefaultFilePerm &^ currentUmask(t); fi.Mode().Perm() != want {
		t.Errorf("default mode %v, want %v", fi.Mode().Perm(), want)
	}
	if time.Since(fi.ModTime()) > time.Minute {
		t.Errorf("default mtime %v is not now", fi.ModTime())
	}

	if _, err := Deliver(dir, strings.NewReader("x"), DeliverOptions{Flags: Flags(0).With(FlagSeen)}); err == nil {
		t.Error("flags without Cur accepted")
	}
}

var errBoom = errors.New("boom")

// failingReader returns n bytes of data and then errBoom.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errBoom
	}
	k := min(len(p), f.n, 1000)
	for i := range k {
		p[i] = 'a'
	}
	f.n -= k
	return k, nil
}

func TestDeliverFailingReader(t *testing.T) {
	for _, n := range []int{0, 1, 5000, copyBufSize + 7} {
		dir := newMaildir(t)
		_, err := Deliver(dir, &failingReader{n: n}, DeliverOptions{})
		if !errors.Is(err, errBoom) {
			t.Errorf("after %d bytes: err = %v, want errBoom", n, err)
		}
		for _, sub := range []string{New, Cur, Tmp} {
			if names := dirNames(t, filepath.Join(dir, sub)); len(names) != 0 {
				t.Errorf("after %d bytes: %s/ holds %v", n, sub, names)
			}
		}
	}
}

func TestDeliverNoMaildir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	if _, err := Deliver(dir, strings.NewReader("x"), DeliverOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want not exist", err)
	}
	// tmp/ present but new/ missing: the tmp file must not stay.
	dir = newMaildir(t)
	if err := os.Remove(filepath.Join(dir, New)); err != nil {
		t.Fatal(err)
	}
	if _, err := Deliver(dir, strings.NewReader("x"), DeliverOptions{}); err == nil {
		t.Error("delivery without new/ succeeded")
	}
	if names := dirNames(t, filepath.Join(dir, Tmp)); len(names) != 0 {
		t.Errorf("tmp/ holds %v after a failed rename", names)
	}
}

func TestCreateExclRetries(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1700000000, 0)
	// A twin generator makes the same first name: the file is taken.
	taken := (&NameGen{Host: "h"}).New(now)
	if err := os.WriteFile(filepath.Join(dir, taken), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, path, err := createExcl(dir, "", &NameGen{Host: "h"}, now, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if filepath.Base(path) == taken {
		t.Fatalf("createExcl reused the taken name %q", taken)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, taken)); string(data) != "old" {
		t.Errorf("taken file changed: %q", data)
	}
}

func TestLink(t *testing.T) {
	src := newMaildir(t)
	dst := filepath.Join(filepath.Dir(src), "other")
	if err := Create(dst, 0); err != nil {
		t.Fatal(err)
	}
	msg := "Subject: multi\n\nfor two\n"
	srcName, err := Deliver(src, strings.NewReader(msg), DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srcPath := filepath.Join(src, New, srcName)

	tests := []struct {
		name string
		opts DeliverOptions
		sub  string
	}{
		{"new", DeliverOptions{}, New},
		{"cur with flags", DeliverOptions{Cur: true, Flags: Flags(0).With(FlagSeen)}, Cur},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name, err := Link(srcPath, dst, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if BaseName(name) == BaseName(srcName) {
				t.Errorf("Link kept the source base name %q", name)
			}
			got := filepath.Join(dst, tc.sub, name)
			a, err := os.Stat(srcPath)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.Stat(got)
			if err != nil {
				t.Fatal(err)
			}
			if !os.SameFile(a, b) {
				t.Error("not a hard link of the source")
			}
			if s, w := SizeFields(BaseName(name)); s != int64(len(msg)) || w != crlfSize(msg) {
				t.Errorf("sizes in %q: %d, %d", name, s, w)
			}
			if tc.opts.Cur && !strings.HasSuffix(name, ":2,S") {
				t.Errorf("name %q lacks :2,S", name)
			}
			if names := dirNames(t, filepath.Join(dst, Tmp)); len(names) != 0 {
				t.Errorf("tmp/ holds %v", names)
			}
		})
	}

	// A source without size fields in its name is measured.
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, []byte("a\nb\r\nc"), 0o600); err != nil {
		t.Fatal(err)
	}
	name, err := Link(plain, dst, DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s, w := SizeFields(name); s != 6 || w != 7 {
		t.Errorf("measured sizes in %q: %d, %d, want 6, 7", name, s, w)
	}

	if _, err := Link(filepath.Join(src, New, "missing"), dst, DeliverOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing source: %v", err)
	}
}

func TestLinkCrossDevice(t *testing.T) {
	const other = "/dev/shm"
	dst := newMaildir(t)
	var a, b syscall.Stat_t
	if syscall.Stat(other, &a) != nil || syscall.Stat(dst, &b) != nil || a.Dev == b.Dev {
		t.Skip("no second filesystem at " + other)
	}
	dir, err := os.MkdirTemp(other, "maildir-test")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	src := filepath.Join(dir, "msg")
	if err := os.WriteFile(src, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Link(src, dst, DeliverOptions{})
	if !errors.Is(err, ErrCrossDevice) || !errors.Is(err, syscall.EXDEV) {
		t.Errorf("err = %v, want ErrCrossDevice wrapping EXDEV", err)
	}
	if names := dirNames(t, filepath.Join(dst, Tmp)); len(names) != 0 {
		t.Errorf("tmp/ holds %v", names)
	}
}

func BenchmarkDeliver4K(b *testing.B) {
	dir := newMaildir(b)
	msg := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"), 64)
	b.SetBytes(int64(len(msg)))
	r := bytes.NewReader(msg)
	for b.Loop() {
		r.Reset(msg)
		if _, err := Deliver(dir, r, DeliverOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStagePublishUnpublish: a staged message is a file in tmp/ only;
// Publish puts it in place, durably, and Unpublish takes it back out;
// Discard removes what was not published and leaves what was.
func TestStagePublishUnpublish(t *testing.T) {
	dir := newMaildir(t)
	seen := Flags(0).With(FlagSeen)
	msg := "Subject: staged\n\nbody\n"
	a, err := Stage(dir, strings.NewReader(msg), DeliverOptions{Cur: true, Flags: seen})
	if err != nil {
		t.Fatal(err)
	}
	src, err := Deliver(dir, strings.NewReader("Subject: source\n\n"), DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := StageLink(filepath.Join(dir, New, src), dir, DeliverOptions{Cur: true})
	if err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, filepath.Join(dir, Tmp)); len(names) != 2 {
		t.Fatalf("tmp/ holds %v, want the two staged files", names)
	}
	if names := dirNames(t, filepath.Join(dir, Cur)); len(names) != 0 || a.Filename() != "" {
		t.Fatalf("staged, yet cur/ holds %v (Filename %q)", names, a.Filename())
	}
	if s, w := SizeFields(a.Base()); s != int64(len(msg)) || w != crlfSize(msg) {
		t.Errorf("sizes in %q: %d, %d", a.Base(), s, w)
	}
	if err := Publish([]*Staged{a, b}); err != nil {
		t.Fatal(err)
	}
	if a.Filename() != a.Base()+":2,S" || b.Filename() != b.Base()+":2," {
		t.Fatalf("published as %q and %q", a.Filename(), b.Filename())
	}
	if got, err := os.ReadFile(filepath.Join(dir, Cur, a.Filename())); err != nil || string(got) != msg {
		t.Fatalf("published file holds %q, %v", got, err)
	}
	if names := dirNames(t, filepath.Join(dir, Tmp)); len(names) != 0 {
		t.Fatalf("tmp/ holds %v after Publish", names)
	}
	a.Discard() // published: a no-op
	if names := dirNames(t, filepath.Join(dir, Cur)); len(names) != 2 {
		t.Fatalf("cur/ holds %v after Discard of a published message", names)
	}
	if err := Unpublish([]*Staged{a, b}); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, filepath.Join(dir, Cur)); len(names) != 0 {
		t.Fatalf("cur/ holds %v after Unpublish", names)
	}
	if _, err := os.Stat(filepath.Join(dir, New, src)); err != nil {
		t.Fatalf("the link's source went with it: %v", err)
	}

	// Discard before Publish leaves nothing.
	c, err := Stage(dir, strings.NewReader(msg), DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Discard()
	c.Discard()
	if names := dirNames(t, filepath.Join(dir, Tmp)); len(names) != 0 {
		t.Fatalf("tmp/ holds %v after Discard", names)
	}
}

// TestPublishAllOrNone: when one of several messages cannot be
// published, none stays in new/ or cur/.
func TestPublishAllOrNone(t *testing.T) {
	dir := newMaildir(t)
	a, err := Stage(dir, strings.NewReader("Subject: a\n\n"), DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Stage(dir, strings.NewReader("Subject: b\n\n"), DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Stage(dir, strings.NewReader("Subject: c\n\n"), DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// b's file vanishes from tmp/ (as if a cleaner took it): its rename
	// fails after a's succeeded.
	if err := os.Remove(filepath.Join(dir, Tmp, b.Base()[:strings.Index(b.Base(), ",S=")])); err != nil {
		t.Fatal(err)
	}
	if err := Publish([]*Staged{a, b, c}); err == nil {
		t.Fatal("Publish succeeded without b")
	}
	if names := dirNames(t, filepath.Join(dir, New)); len(names) != 0 {
		t.Fatalf("new/ holds %v after a failed Publish", names)
	}
	if a.Filename() != "" {
		t.Errorf("a still claims to be published as %q", a.Filename())
	}
	for _, s := range []*Staged{a, b, c} {
		s.Discard()
	}
	if names := dirNames(t, filepath.Join(dir, Tmp)); len(names) != 0 {
		t.Fatalf("tmp/ holds %v after Discard", names)
	}
}

// TestPlaceThenSync: Place makes the message visible in cur/ before
// SyncPlaced; Unpublish takes a placed message back as well as a
// published one.
func TestPlaceThenSync(t *testing.T) {
	dir := newMaildir(t)
	s, err := Stage(dir, strings.NewReader("Subject: placed\n\n"), DeliverOptions{Cur: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := Place([]*Staged{s}); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, filepath.Join(dir, Cur)); len(names) != 1 || names[0] != s.Filename() {
		t.Fatalf("cur/ holds %v after Place, want %s", names, s.Filename())
	}
	if err := SyncPlaced([]*Staged{s}); err != nil {
		t.Fatal(err)
	}
	if err := Unpublish([]*Staged{s}); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, filepath.Join(dir, Cur)); len(names) != 0 {
		t.Fatalf("cur/ holds %v after Unpublish", names)
	}
}

// TestStageKeepsBase: a staged message asked to keep a base name is
// published under it, by StageLink and by Stage; Rebase before Place
// gives the tmp/ name instead, after Place it is refused; a file of
// the exact name in the target makes Place take a fresh one.
func TestStageKeepsBase(t *testing.T) {
	src := newMaildir(t)
	dst := filepath.Join(filepath.Dir(src), "other")
	if err := Create(dst, 0); err != nil {
		t.Fatal(err)
	}
	msg := "Subject: kept\n\nbody\n"
	srcName, err := Deliver(src, strings.NewReader(msg), DeliverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srcPath := filepath.Join(src, New, srcName)
	seen := Flags(0).With(FlagSeen)
	opts := DeliverOptions{Cur: true, Flags: seen, Base: srcName}
	stage := map[string]func() (*Staged, error){
		"StageLink": func() (*Staged, error) { return StageLink(srcPath, dst, opts) },
		"Stage":     func() (*Staged, error) { return Stage(dst, strings.NewReader(msg), opts) },
	}
	for _, how := range []string{"StageLink", "Stage"} {
		t.Run(how, func(t *testing.T) {
			defer os.Remove(filepath.Join(dst, Cur, srcName+":2,S"))
			s, err := stage[how]()
			if err != nil {
				t.Fatal(err)
			}
			if !s.KeepsBase() || s.Base() != srcName {
				t.Fatalf("staged: base %q, KeepsBase %v; want %q, true", s.Base(), s.KeepsBase(), srcName)
			}
			if err := Publish([]*Staged{s}); err != nil {
				t.Fatal(err)
			}
			if s.Filename() != srcName+":2,S" {
				t.Fatalf("published as %q, want %q", s.Filename(), srcName+":2,S")
			}
			if names := dirNames(t, filepath.Join(dst, Cur)); len(names) != 1 || names[0] != srcName+":2,S" {
				t.Fatalf("cur/ holds %v", names)
			}
		})
	}

	t.Run("Rebase before Place", func(t *testing.T) {
		s, err := StageLink(srcPath, dst, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Discard()
		if err := s.Rebase(); err != nil {
			t.Fatal(err)
		}
		if s.KeepsBase() || s.Base() == srcName {
			t.Fatalf("rebased: base %q, KeepsBase %v", s.Base(), s.KeepsBase())
		}
		if err := Publish([]*Staged{s}); err != nil {
			t.Fatal(err)
		}
		defer Unpublish([]*Staged{s})
		if BaseName(s.Filename()) != s.Base() || !strings.HasSuffix(s.Filename(), ":2,S") {
			t.Errorf("published as %q, base %q", s.Filename(), s.Base())
		}
	})

	t.Run("Rebase after Place", func(t *testing.T) {
		s, err := StageLink(srcPath, dst, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Discard()
		if err := Place([]*Staged{s}); err != nil {
			t.Fatal(err)
		}
		defer Unpublish([]*Staged{s})
		if err := s.Rebase(); err == nil {
			t.Fatalf("Rebase of a placed message: no error; it is %q, base %q", s.Filename(), s.Base())
		}
		if !s.KeepsBase() || s.Filename() != srcName+":2,S" {
			t.Fatalf("after a refused Rebase: name %q, KeepsBase %v", s.Filename(), s.KeepsBase())
		}
	})

	t.Run("name taken", func(t *testing.T) {
		taken := filepath.Join(dst, Cur, srcName+":2,S")
		if err := os.WriteFile(taken, []byte("someone else's\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(taken)
		s, err := StageLink(srcPath, dst, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Discard()
		if err := Publish([]*Staged{s}); err != nil {
			t.Fatal(err)
		}
		defer Unpublish([]*Staged{s})
		if s.KeepsBase() || s.Base() == srcName {
			t.Errorf("published over a taken name: %q", s.Filename())
		}
	})

	for _, bad := range []string{"a/b", "a:2,S", ".", "..", "a\x00b"} {
		if _, err := StageLink(srcPath, dst, DeliverOptions{Base: bad}); err == nil {
			t.Errorf("Base %q accepted", bad)
		}
	}
}
