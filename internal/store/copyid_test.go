package store

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// copyOne copies UID uid of src into dst and returns the copy.
func copyOne(t *testing.T, src *Mailbox, uid uint32, dst *Mailbox) Message {
	t.Helper()
	_, from, to, err := src.Copy(ctx, []uint32{uid}, dst, nil)
	if err != nil || len(to) != 1 || from[0] != uid {
		t.Fatalf("COPY of UID %d: %v -> %v, %v", uid, from, to, err)
	}
	msg, ok := dst.LookupUID(to[0])
	if !ok {
		t.Fatalf("the copy's UID %d is not in the target", to[0])
	}
	return msg
}

// recordsOf is the base names dst's uidlist has records of.
func recordsOf(t *testing.T, dir string) map[string]uint32 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, uidlist.FileName))
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := uidlist.Parse(dir, data)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]uint32)
	for _, r := range f.Records {
		out[r.Base()] = r.UID
	}
	return out
}

// TestCopyKeepsBaseName: a copy enters the target under its message's
// base name (its identity, RFC 8474 EMAILID), hard-linked, with its
// flags; a second copy of that message into the same mailbox, and a copy
// within one mailbox, get a fresh one (one base name is one message).
func TestCopyKeepsBaseName(t *testing.T) {
	f := newFixture(t)
	a := f.put(maildir.Cur, "S")
	b := f.put(maildir.New, "")
	src := f.open(Options{})
	sync1(t, src)
	dst, dstDir := newDest(t)
	sync1(t, dst)

	_, from, to, err := src.Copy(ctx, []uint32{1, 2}, dst, nil)
	if err != nil || len(to) != 2 {
		t.Fatalf("COPY: %v -> %v, %v", from, to, err)
	}
	for i, want := range []string{a, b} {
		c, _ := dst.LookupUID(to[i])
		if c.Base != want {
			t.Errorf("copy of UID %d: base %q, want %q", from[i], c.Base, want)
		}
		if c.Sub != maildir.Cur {
			t.Errorf("copy of UID %d is in %s/", from[i], c.Sub)
		}
		o, _ := src.LookupUID(from[i])
		fa, err1 := os.Stat(src.Path(o))
		fb, err2 := os.Stat(dst.Path(c))
		if err1 != nil || err2 != nil || !os.SameFile(fa, fb) {
			t.Errorf("copy of UID %d is no hard link of it: %v %v", from[i], err1, err2)
		}
	}
	if c, _ := dst.LookupUID(to[0]); c.Flags.String() != "S" {
		t.Errorf("copy of UID 1 has flags %q", c.Flags.String())
	}
	recs := recordsOf(t, dstDir)
	if recs[a] != to[0] || recs[b] != to[1] {
		t.Errorf("the target's uidlist records %v; want %s=%d %s=%d", recs, a, to[0], b, to[1])
	}

	// Again into the same target: the name is the first copy's.
	again := copyOne(t, src, 1, dst)
	if again.Base == a || again.UID == to[0] {
		t.Errorf("second copy into one mailbox: %+v, the first is %s UID %d", again, a, to[0])
	}
	if s, w := maildir.SizeFields(again.Base); s < 0 || w < 0 {
		t.Errorf("the fresh name %q lacks its sizes", again.Base)
	}
	// Within one mailbox.
	self := copyOne(t, src, 2, src)
	if self.Base == b || self.UID <= 2 {
		t.Errorf("copy within the source: %+v", self)
	}
	// And no copy of both can come in one COPY under one name.
	_, _, twice, err := src.Copy(ctx, []uint32{1, 1}, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range twice {
		if c, _ := dst.LookupUID(u); c.Base == a {
			t.Errorf("UID %d took a base name the target has: %+v", u, c)
		}
	}
	checkBoth(t, src, dst)
	// A fresh Mailbox of each directory agrees.
	for _, dir := range []string{f.dir, dstDir} {
		mb, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		sync1(t, mb)
		checkBoth(t, mb)
		mb.Close()
	}
}

// TestCopyTargetHoldsBaseName: a copy takes a fresh base name when the
// target's uidlist has a record of that base name whose message left, or
// its state an entry of it. (A file of that name no sync has seen is a
// duplicate the sync sorts out: TestCopyBaseNameRace.)
func TestCopyTargetHoldsBaseName(t *testing.T) {
	tests := []struct {
		name string
		// prepare makes the target hold base (the file src holds is
		// srcFile) and returns the path of a file that must stay, or "".
		prepare func(t *testing.T, src, dst *Mailbox, base, srcFile string) string
	}{
		{"uidlist record of a message gone", func(t *testing.T, src, dst *Mailbox, base, srcFile string) string {
			c := copyOne(t, src, 1, dst)
			if c.Base != base {
				t.Fatalf("first copy: %+v", c)
			}
			if err := os.Remove(dst.Path(c)); err != nil {
				t.Fatal(err)
			}
			sync1(t, dst)
			sync1(t, dst)
			if _, ok := dst.Lookup(base); ok {
				t.Fatal("the removed copy is still in the target's state")
			}
			if _, ok := recordsOf(t, dst.dir)[base]; !ok {
				t.Fatal("the uidlist record of the removed copy is gone: the case is not made")
			}
			return ""
		}},
		{"a stale entry in the state", func(t *testing.T, src, dst *Mailbox, base, srcFile string) string {
			// The target's copy is gone and another program dropped its
			// record (a compaction); no sync of the target saw either.
			c := copyOne(t, src, 1, dst)
			if err := os.Remove(dst.Path(c)); err != nil {
				t.Fatal(err)
			}
			lock, err := uidlist.AcquireLock(ctx, dst.dir, uidlist.LockOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer lock.Release()
			path := filepath.Join(dst.dir, uidlist.FileName)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			file, _, err := uidlist.Parse(path, data)
			if err != nil {
				t.Fatal(err)
			}
			file.Records = slices.DeleteFunc(slices.Clone(file.Records), func(r uidlist.Record) bool { return r.Base() == base })
			if err := uidlist.Rewrite(lock, dst.dir, file); err != nil {
				t.Fatal(err)
			}
			if _, ok := dst.Lookup(base); !ok {
				t.Fatal("the target's state lost the copy: the case is not made")
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			base := f.put(maildir.Cur, "S")
			src := f.open(Options{})
			sync1(t, src)
			dst, _ := newDest(t)
			sync1(t, dst)
			o, _ := src.LookupUID(1)
			keep := tc.prepare(t, src, dst, base, src.Path(o))
			var before []byte
			if keep != "" {
				before, _ = os.ReadFile(keep)
			}
			c := copyOne(t, src, 1, dst)
			if c.Base == base {
				t.Fatalf("the copy took the base name the target holds: %+v", c)
			}
			if got, _ := os.ReadFile(dst.Path(c)); string(got) != "Subject: 1\n\nbody\n" {
				t.Fatalf("the copy holds %q", got)
			}
			if keep != "" {
				if got, err := os.ReadFile(keep); err != nil || string(got) != string(before) {
					t.Fatalf("the target's own file: %q, %v", got, err)
				}
			}
			sync1(t, dst)
			sync1(t, dst)
			checkBoth(t, src, dst)
		})
	}
}

// TestCopyBaseNameRace: another program puts a file of the copy's base
// name into the target, with other flags and an older mtime (link(2) and
// rename(2) refuse only the same whole name), after the copy's check
// under the lock, before the copy is placed, or just after. The copy
// keeps its base name and its UID names its content; the next sync finds
// the duplicate and gives the other file a fresh base name, as a message
// of its own (liveDistinct keeps the file the state names, not the
// oldest).
func TestCopyBaseNameRace(t *testing.T) {
	hooks := map[string]*func(){
		"between the check and the placing": &testHookBasesClaimed,
		"after the placing":                 &testHookPublished,
	}
	for name, hook := range hooks {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			base := f.put(maildir.Cur, "S")
			src := f.open(Options{})
			sync1(t, src)
			dst, _ := newDest(t)
			sync1(t, dst)
			foreign := filepath.Join(dst.dir, maildir.Cur, base+":2,F")
			const foreignText = "Subject: delivered meanwhile\n\n"
			ran := 0
			*hook = func() {
				ran++
				if err := os.WriteFile(foreign, []byte(foreignText), 0o600); err != nil {
					t.Error(err)
				}
				old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
				if err := os.Chtimes(foreign, old, old); err != nil {
					t.Error(err)
				}
			}
			defer func() { *hook = nil }()
			c := copyOne(t, src, 1, dst)
			*hook = nil
			if ran != 1 {
				t.Fatalf("the hook ran %d times", ran)
			}
			if c.Base != base {
				t.Fatalf("the copy did not keep its base name %s: %+v", base, c)
			}
			// The first sync renames the other file, the second finds it.
			ch := sync1(t, dst)
			ch.New = append(ch.New, sync1(t, dst).New...)
			if len(ch.New) != 1 || ch.New[0].Base == base || !strings.HasSuffix(ch.New[0].Filename, ":2,F") {
				t.Fatalf("the file put meanwhile is not a message of its own under a fresh base name: %+v", ch.New)
			}
			if got, err := os.ReadFile(filepath.Join(dst.dir, maildir.Cur, ch.New[0].Filename)); err != nil || string(got) != foreignText {
				t.Fatalf("the file put meanwhile, renamed: %q, %v", got, err)
			}
			m, ok := dst.LookupUID(c.UID)
			if !ok || m.Base != base {
				t.Fatalf("the copy's UID %d: %+v (found %v), want base %s", c.UID, m, ok, base)
			}
			a, err := os.Stat(filepath.Join(src.dir, maildir.Cur, base+":2,S"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.Stat(filepath.Join(dst.dir, m.Sub, m.Filename))
			if err != nil || !os.SameFile(a, b) {
				t.Fatalf("the copy's UID %d names %s, not the link to its source (%v)", c.UID, m.Filename, err)
			}
			checkBoth(t, src, dst)
		})
	}
}
