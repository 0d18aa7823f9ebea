package fsck

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// testTimeout bounds every check and repair of these tests.
const testTimeout = 30 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newRoot makes an empty root Maildir.
func newRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := maildir.Create(root, 0o700); err != nil {
		t.Fatal(err)
	}
	return root
}

// newFolder makes the folder name (one level) under root.
func newFolder(t *testing.T, root, name string) string {
	t.Helper()
	if err := maildir.CreateFolder(root, []string{name}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "."+name)
}

// put writes the message file dir/sub/name with a body naming it.
func put(t *testing.T, dir, sub, name string) {
	t.Helper()
	putBody(t, dir, sub, name, "Subject: "+maildir.BaseName(name)+"\n\nbody\n")
}

func putBody(t *testing.T, dir, sub, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, sub, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func check(t *testing.T, opts Options) *Report {
	t.Helper()
	rep, err := Check(testContext(t), opts)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, f := range rep.Findings {
		t.Logf("finding: %s", f)
	}
	for _, n := range rep.Notes {
		t.Logf("note: %s", n)
	}
	return rep
}

func repair(t *testing.T, opts Options, rep *Report) []Action {
	t.Helper()
	actions, err := Repair(testContext(t), opts, rep)
	if err != nil {
		t.Fatalf("Repair: %v", err)
	}
	for _, a := range actions {
		t.Logf("repair: %s", a)
	}
	return actions
}

func kinds(rep *Report) []Kind {
	var out []Kind
	for _, f := range rep.Findings {
		if !slices.Contains(out, f.Kind) {
			out = append(out, f.Kind)
		}
	}
	slices.Sort(out)
	return out
}

func sortedKinds(ks ...Kind) []Kind {
	out := slices.Clone(ks)
	slices.Sort(out)
	return out
}

// plantedUIDs reads the UIDs a planted uidlist gives each base name, from
// its raw lines: "<uid> ... :<name>" (version 3) or "<uid> <name>"
// (version 1). Every line counts, whatever readers make of it.
func plantedUIDs(text string) map[string][]uint32 {
	lines := strings.Split(text, "\n")
	v1 := strings.HasPrefix(lines[0], "1 ")
	out := map[string][]uint32{}
	for _, line := range lines[1:] {
		uidText, rest, ok := strings.Cut(line, " ")
		uid, err := strconv.ParseUint(uidText, 10, 32)
		if !ok || err != nil {
			continue
		}
		name := rest
		if !v1 {
			if _, name, ok = strings.Cut(rest, ":"); !ok {
				continue
			}
		}
		base := maildir.BaseName(name)
		out[base] = append(out[base], uint32(uid))
	}
	return out
}

// uniqueUIDs keeps the base names with exactly one UID that no other
// line holds: the messages whose UID no repair may change.
func uniqueUIDs(planted map[string][]uint32) map[string]uint32 {
	count := map[uint32]int{}
	for _, uids := range planted {
		for _, u := range uids {
			count[u]++
		}
	}
	out := map[string]uint32{}
	for base, uids := range planted {
		if len(uids) == 1 && count[uids[0]] == 1 {
			out[base] = uids[0]
		}
	}
	return out
}

// uidMap returns base name -> UID as readers see dir's uidlist.
func uidMap(t *testing.T, dir string) (map[string]uint32, *uidlist.File) {
	t.Helper()
	path := filepath.Join(dir, uidlist.FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, problems, err := uidlist.Parse(path, data)
	if err != nil {
		t.Fatalf("%s after repair: %v\n%s", path, err, data)
	}
	if len(problems) > 0 {
		t.Errorf("%s after repair has problems %v:\n%s", path, problems, data)
	}
	m := map[string]uint32{}
	for _, r := range f.Records {
		m[r.Base()] = r.UID
	}
	return m, f
}

// filesOf returns base names of the message files of dir.
func filesOf(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, sub := range []string{maildir.New, maildir.Cur} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out[maildir.BaseName(e.Name())] = true
		}
	}
	return out
}

// TestKinds plants each kind of damage, checks that Check finds it (and
// nothing else), that Repair fixes what it can without changing the UID
// of any message that had a unique one, and that a second Check finds
// only what cannot be repaired.
func TestKinds(t *testing.T) {
	const (
		a = "1700000001.M1P1Q1.test"
		b = "1700000002.M2P1Q2.test"
		c = "1700000003.M3P1Q3.test"
	)
	tests := []struct {
		name    string
		uidlist string // "" for none
		files   []string
		setup   func(t *testing.T, dir string)
		want    []Kind
		left    []Kind // after repair
		check   func(t *testing.T, dir string, uids map[string]uint32, f *uidlist.File)
	}{
		{
			name:    "clean",
			uidlist: "3 V100 N3\n1 :" + a + "\n2 :" + b + "\n",
			files:   []string{"cur/" + a + ":2,S", "new/" + b},
		},
		{
			name:    "stale record",
			uidlist: "3 V100 N4\n1 :" + a + "\n2 :" + b + "\n3 :" + c + "\n",
			files:   []string{"cur/" + a + ":2,S", "new/" + b},
			want:    []Kind{StaleRecord},
			check: func(t *testing.T, dir string, uids map[string]uint32, f *uidlist.File) {
				if _, ok := uids[c]; ok || f.Header.NextUID < 4 {
					t.Errorf("after repair: %v, next UID %d; want no record of %s and next UID >= 4", uids, f.Header.NextUID, c)
				}
			},
		},
		{
			name:    "missing UID",
			uidlist: "3 V100 N2\n1 :" + a + "\n",
			files:   []string{"cur/" + a + ":2,S", "new/" + b},
			want:    []Kind{MissingUID},
			check: func(t *testing.T, dir string, uids map[string]uint32, f *uidlist.File) {
				if uids[b] < 2 {
					t.Errorf("%s got UID %d, want one >= 2", b, uids[b])
				}
			},
		},
		{
			name:  "no uidlist at all",
			files: []string{"cur/" + a + ":2,S"},
			want:  []Kind{MissingUID},
		},
		{
			name:    "duplicate UID",
			uidlist: "3 V100 N3\n1 :" + a + "\n2 :" + b + "\n2 :" + c + "\n",
			files:   []string{"cur/" + a + ":2,S", "new/" + b, "new/" + c},
			want:    []Kind{DuplicateUID, MissingUID},
			check: func(t *testing.T, dir string, uids map[string]uint32, f *uidlist.File) {
				if uids[c] <= 2 {
					t.Errorf("%s got UID %d, want a new one above 2", c, uids[c])
				}
			},
		},
		{
			name:    "UIDs not ascending",
			uidlist: "3 V100 N6\n1 :" + a + "\n5 :" + b + "\n3 :" + c + "\n",
			files:   []string{"cur/" + a + ":2,S", "new/" + b, "cur/" + c + ":2,"},
			want:    []Kind{UIDOrder, MissingUID},
			check: func(t *testing.T, dir string, uids map[string]uint32, f *uidlist.File) {
				if uids[c] != 3 {
					t.Errorf("%s has UID %d, want its own 3", c, uids[c])
				}
			},
		},
		{
			name:    "next UID of a version 1 header",
			uidlist: "1 100 2\n1 " + a + ":2,S\n5 " + b + "\n",
			files:   []string{"cur/" + a + ":2,S", "new/" + b},
			want:    []Kind{NextUID},
			check: func(t *testing.T, dir string, uids map[string]uint32, f *uidlist.File) {
				if f.Header.NextUID < 6 || f.Header.UIDValidity != 100 {
					t.Errorf("header %+v, want UIDVALIDITY 100 and next UID >= 6", f.Header)
				}
			},
		},
		{
			name:    "UID of a damaged line above the next UID",
			uidlist: "3 V100 N2\n1 :" + a + "\n900 no-colon-" + b + "\n",
			files:   []string{"cur/" + a + ":2,S"},
			want:    []Kind{DamagedLine, NextUID},
			check: func(t *testing.T, dir string, uids map[string]uint32, f *uidlist.File) {
				if f.Header.NextUID <= 900 {
					t.Errorf("next UID %d, want above 900", f.Header.NextUID)
				}
			},
		},
		{
			name:    "damaged line",
			uidlist: "3 V100 N3\n1 :" + a + "\n2 " + b + "\n",
			files:   []string{"cur/" + a + ":2,S", "new/" + b},
			want:    []Kind{DamagedLine, MissingUID},
		},
		{
			name:    "truncated last line",
			uidlist: "3 V100 N3\n1 :" + a + "\n2 :" + b,
			files:   []string{"cur/" + a + ":2,S"},
			want:    []Kind{DamagedLine},
		},
		{
			name:    "one base name with two UIDs",
			uidlist: "3 V100 N9\n1 :" + a + "\n4 :" + b + "\n7 :" + a + "\n",
			files:   []string{"cur/" + a + ":2,S", "new/" + b},
			want:    []Kind{DuplicateRecord},
			check: func(t *testing.T, dir string, uids map[string]uint32, f *uidlist.File) {
				if uids[a] != 7 {
					t.Errorf("%s has UID %d, want 7, the one every reader gives it", a, uids[a])
				}
			},
		},
		{
			name:    "header with a broken next UID",
			uidlist: "3 V100 Nxyz G0123456789abcdef0123456789abcdef\n1 :" + a + "\n",
			files:   []string{"cur/" + a + ":2,S", "new/" + b},
			want:    []Kind{Header, MissingUID},
			check: func(t *testing.T, dir string, uids map[string]uint32, f *uidlist.File) {
				if f.Header.UIDValidity != 100 || f.Header.GUID != "0123456789abcdef0123456789abcdef" || uids[b] < 2 {
					t.Errorf("header %+v, UIDs %v; want UIDVALIDITY and GUID kept, %s numbered", f.Header, uids, b)
				}
			},
		},
		{
			name:    "header without UIDVALIDITY",
			uidlist: "3 N5\n1 :" + a + "\n",
			files:   []string{"cur/" + a + ":2,S", "new/" + b},
			want:    []Kind{Header},
			left:    []Kind{Header},
			check: func(t *testing.T, dir string, _ map[string]uint32, _ *uidlist.File) {
				data, err := os.ReadFile(filepath.Join(dir, uidlist.FileName))
				if err != nil || string(data) != "3 N5\n1 :"+a+"\n" {
					t.Errorf("unusable uidlist changed to %q (%v)", data, err)
				}
			},
		},
		{
			name:    "duplicate base names",
			uidlist: "3 V100 N2\n1 :" + a + "\n",
			setup: func(t *testing.T, dir string) {
				putBody(t, dir, "cur", a+":2,S", "Subject: one\n\nfirst\n")
				putBody(t, dir, "new", a, "Subject: two\n\nsecond, longer\n")
			},
			want: []Kind{DuplicateName},
			check: func(t *testing.T, dir string, uids map[string]uint32, f *uidlist.File) {
				if len(uids) != 2 || len(filesOf(t, dir)) != 2 {
					t.Errorf("UIDs %v, files %v: want the second file under a new name with its own UID", uids, filesOf(t, dir))
				}
				body, err := os.ReadFile(filepath.Join(dir, "cur", a+":2,S"))
				if err != nil || !strings.Contains(string(body), "first") {
					t.Errorf("cur/%s:2,S: %q, %v; want the file in cur/ to keep the base name", a, body, err)
				}
			},
		},
		{
			name:    "identical copies under one base name",
			uidlist: "3 V100 N2\n1 :" + a + "\n",
			setup: func(t *testing.T, dir string) {
				putBody(t, dir, "cur", a+":2,S", "Subject: same\n\nsame\n")
				putBody(t, dir, "cur", a+":2,RS", "Subject: same\n\nsame\n")
			},
			want: []Kind{DuplicateName},
			check: func(t *testing.T, dir string, uids map[string]uint32, f *uidlist.File) {
				entries, _ := os.ReadDir(filepath.Join(dir, "cur"))
				if len(entries) != 1 || len(uids) != 1 {
					t.Errorf("cur/ holds %d files, UIDs %v; want the extra copy removed", len(entries), uids)
				}
			},
		},
		{
			name:    "two links of one file are one message",
			uidlist: "3 V100 N2\n1 :" + a + "\n",
			setup: func(t *testing.T, dir string) {
				put(t, dir, "new", a)
				if err := os.Link(filepath.Join(dir, "new", a), filepath.Join(dir, "cur", a+":2,S")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:    "keyword letter without a name",
			uidlist: "3 V100 N3\n1 :" + a + "\n2 :" + b + "\n",
			setup: func(t *testing.T, dir string) {
				put(t, dir, "cur", a+":2,Sab")
				put(t, dir, "cur", b+":2,b")
				writeFile(t, filepath.Join(dir, uidlist.KeywordsFileName), "0 Work\n")
			},
			want: []Kind{UnnamedKeyword},
			left: []Kind{UnnamedKeyword},
		},
		{
			name:    "keywords with names",
			uidlist: "3 V100 N2\n1 :" + a + "\n",
			setup: func(t *testing.T, dir string) {
				put(t, dir, "cur", a+":2,Sab")
				writeFile(t, filepath.Join(dir, uidlist.KeywordsFileName), "0 Work\n1 $Label2\n")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newRoot(t)
			for _, f := range tt.files {
				sub, name, _ := strings.Cut(f, "/")
				put(t, dir, sub, name)
			}
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			if tt.uidlist != "" {
				writeFile(t, filepath.Join(dir, uidlist.FileName), tt.uidlist)
			}
			opts := Options{Root: dir}
			rep := check(t, opts)
			if got, want := kinds(rep), sortedKinds(tt.want...); !slices.Equal(got, want) {
				t.Fatalf("found %v, want %v", got, want)
			}
			if rep.Clean() != (len(tt.want) == 0) {
				t.Errorf("Clean() = %v with findings %v", rep.Clean(), rep.Findings)
			}
			for _, f := range rep.Findings {
				if f.Mailbox != "INBOX" || f.Dir != dir || f.Detail == "" {
					t.Errorf("finding %+v: want mailbox INBOX, dir %s and a detail", f, dir)
				}
			}
			if rep.Clean() {
				return
			}

			repair(t, opts, rep)
			after := check(t, opts)
			if got, want := kinds(after), sortedKinds(tt.left...); !slices.Equal(got, want) {
				t.Errorf("after repair: found %v, want %v", got, want)
			}
			if slices.Contains(tt.left, Header) {
				if tt.check != nil {
					tt.check(t, dir, nil, nil)
				}
				return
			}
			uids, f := uidMap(t, dir)
			if tt.uidlist != "" && f.Header.UIDValidity != 100 {
				t.Errorf("UIDVALIDITY %d after repair, want 100", f.Header.UIDValidity)
			}
			files := filesOf(t, dir)
			for base, uid := range uniqueUIDs(plantedUIDs(tt.uidlist)) {
				if files[base] && uids[base] != uid {
					t.Errorf("%s had the unique UID %d; after repair it has %d", base, uid, uids[base])
				}
			}
			for base := range files {
				if uids[base] == 0 {
					t.Errorf("%s has no UID after repair", base)
				}
			}
			if tt.check != nil {
				tt.check(t, dir, uids, f)
			}
		})
	}
}

// Check writes nothing, whatever it finds.
func TestCheckWritesNothing(t *testing.T) {
	dir := newRoot(t)
	put(t, dir, "cur", "1700000001.M1P1Q1.test:2,Sa")
	put(t, dir, "new", "1700000002.M2P1Q2.test")
	writeFile(t, filepath.Join(dir, uidlist.FileName), "3 V100 N9\n1 :gone\n5 :1700000001.M1P1Q1.test\n3 :x\n")
	writeFile(t, filepath.Join(dir, "tmp", "stale"), "x")
	writeFile(t, filepath.Join(dir, store.QuotaFile), "1000S\n1 1\n")
	before := testfs.Snapshot(t, dir)
	rep := check(t, Options{Root: dir, Now: func() time.Time { return time.Now().Add(48 * time.Hour) }})
	if rep.Clean() {
		t.Fatal("nothing found in a damaged Maildir")
	}
	if after := testfs.Snapshot(t, dir); !maps.Equal(before, after) {
		t.Errorf("Check changed the tree:\n%s", testfs.Diff(before, after))
	}
}

// A tmp/ file is stale after 36 hours, by CleanTmp's rule.
func TestStaleTmp(t *testing.T) {
	dir := newRoot(t)
	writeFile(t, filepath.Join(dir, "tmp", "1700000001.M1P1Q1.test"), "half a message")
	opts := Options{Root: dir}
	if rep := check(t, opts); !rep.Clean() {
		t.Fatalf("a fresh tmp/ file reported: %v", rep.Findings)
	}
	opts.Now = func() time.Time { return time.Now().Add(maildir.StaleTmpAge + time.Hour) }
	rep := check(t, opts)
	if got := kinds(rep); !slices.Equal(got, []Kind{StaleTmp}) {
		t.Fatalf("found %v, want [stale-tmp]", got)
	}
	repair(t, opts, rep)
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("tmp/ still holds %d entries", len(entries))
	}
	if rep := check(t, opts); !rep.Clean() {
		t.Errorf("after repair: %v", rep.Findings)
	}
}

// maildirsize that disagrees with a recount, or whose limit is not the
// user's, is reported and recalculated.
func TestQuota(t *testing.T) {
	dir := newRoot(t)
	putBody(t, dir, "cur", "1700000001.M1P1Q1.test,S=100,W=104:2,S", strings.Repeat("x", 100))
	sent := newFolder(t, dir, "Sent")
	putBody(t, sent, "cur", "1700000002.M2P1Q2.test,S=50,W=52:2,S", strings.Repeat("y", 50))
	writeFile(t, filepath.Join(dir, uidlist.FileName), "3 V1 N2\n1 :1700000001.M1P1Q1.test,S=100,W=104\n")
	writeFile(t, filepath.Join(sent, uidlist.FileName), "3 V2 N2\n1 :1700000002.M2P1Q2.test,S=50,W=52\n")
	writeFile(t, filepath.Join(dir, store.QuotaFile), "1000S\n100 1\n")
	opts := Options{Root: dir}
	rep := check(t, opts)
	if got := kinds(rep); !slices.Equal(got, []Kind{Quota}) {
		t.Fatalf("found %v, want [quota]", got)
	}
	repair(t, opts, rep)
	if rep := check(t, opts); !rep.Clean() {
		t.Fatalf("after repair: %v", rep.Findings)
	}
	limit, used, err := store.RecordedQuota(dir)
	if err != nil || used != (store.QuotaUsage{Bytes: 150, Messages: 2}) || limit != (store.QuotaLimit{Bytes: 1000}) {
		t.Fatalf("maildirsize after repair: %+v %+v %v", limit, used, err)
	}

	// The user's limit is another: the file is reported, and rewritten
	// with the user's.
	q := store.QuotaLimit{Bytes: 2000, Messages: 10}
	opts.Quota = &q
	rep = check(t, opts)
	if got := kinds(rep); !slices.Equal(got, []Kind{Quota}) || !strings.Contains(rep.Findings[0].Detail, "2000S,10C") {
		t.Fatalf("found %v, want one quota finding naming the user's limit", rep.Findings)
	}
	repair(t, opts, rep)
	if limit, _, err := store.RecordedQuota(dir); err != nil || limit != q {
		t.Fatalf("limit after repair %+v (%v), want %+v", limit, err, q)
	}

	// A file that is not in the format.
	writeFile(t, filepath.Join(dir, store.QuotaFile), "garbage\nx y z\n")
	rep = check(t, opts)
	if got := kinds(rep); !slices.Equal(got, []Kind{Quota}) {
		t.Fatalf("found %v, want [quota]", got)
	}
	repair(t, opts, rep)
	if rep := check(t, opts); !rep.Clean() {
		t.Fatalf("after repair: %v", rep.Findings)
	}
}

// Index entries of messages and mailboxes that are gone, and of files
// whose size changed, are reported and dropped; a busy index is a note.
func TestIndex(t *testing.T) {
	dir := newRoot(t)
	const (
		kept    = "1700000001.M1P1Q1.test,S=29,W=31"
		resized = "1700000002.M2P1Q2.test"
		gone    = "1700000003.M3P1Q3.test"
	)
	putBody(t, dir, "cur", kept+":2,S", "Subject: kept\n\nthe body here\n")
	putBody(t, dir, "new", resized, "Subject: resized\n\nbody\n")
	writeFile(t, filepath.Join(dir, uidlist.FileName), "3 V100 N3\n1 :"+kept+"\n2 :"+resized+"\n")
	indexPath := filepath.Join(t.TempDir(), "data", "index.db")
	ix, err := store.OpenIndex(indexPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	put := func(d, base string, size int64) {
		ix.Put(d, base, store.IndexEntry{FileSize: size, CRLFSize: size + 2, MTime: time.Now()})
	}
	put(dir, kept, 29)
	put(dir, resized, 3)
	put(dir, gone, 10)
	put(filepath.Join(dir, ".Deleted"), gone, 10)
	put("/elsewhere/Maildir", gone, 10) // another user's: not this check's
	opts := Options{Root: dir, IndexPath: indexPath}

	rep := check(t, opts) // the index is open (as the daemon holds it): a note, not a finding
	if !rep.Clean() || !slices.ContainsFunc(rep.Notes, func(n Note) bool { return strings.Contains(n.Text, "in use") }) {
		t.Fatalf("with the index open elsewhere: findings %v, notes %v", rep.Findings, rep.Notes)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	rep = check(t, opts)
	if got := kinds(rep); !slices.Equal(got, sortedKinds(IndexStale, IndexSize)) || len(rep.Findings) != 3 {
		t.Fatalf("found %v, want index-stale twice and index-size", rep.Findings)
	}
	repair(t, opts, rep)
	if rep := check(t, opts); !rep.Clean() {
		t.Fatalf("after repair: %v", rep.Findings)
	}
	left, err := store.ReadIndex(indexPath, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || len(left[dir]) != 1 || len(left["/elsewhere/Maildir"]) != 1 {
		t.Errorf("index after repair: %v; want %s's kept entry and the other user's", left, dir)
	}
}

// Findings name the folder they are in; folders are repaired too.
func TestFolders(t *testing.T) {
	dir := newRoot(t)
	sub := newFolder(t, dir, "Archive")
	put(t, sub, "cur", "1700000001.M1P1Q1.test:2,S")
	writeFile(t, filepath.Join(sub, uidlist.FileName), "3 V7 N9\n1 :gone\n8 :1700000001.M1P1Q1.test\n")
	opts := Options{Root: dir}
	rep := check(t, opts)
	if len(rep.Findings) != 1 || rep.Findings[0].Mailbox != "Archive" || rep.Findings[0].Kind != StaleRecord || rep.Findings[0].UID != 1 {
		t.Fatalf("findings %v, want one stale record of UID 1 in Archive", rep.Findings)
	}
	if !slices.Equal(rep.Mailboxes, []string{"INBOX", "Archive"}) || rep.Messages != 1 {
		t.Errorf("mailboxes %v, messages %d", rep.Mailboxes, rep.Messages)
	}
	repair(t, opts, rep)
	if rep := check(t, opts); !rep.Clean() {
		t.Fatalf("after repair: %v", rep.Findings)
	}
	if uids, f := uidMap(t, sub); uids["1700000001.M1P1Q1.test"] != 8 || f.Header.NextUID != 9 {
		t.Errorf("UIDs %v, next %d", uids, f.Header.NextUID)
	}
}

// TestFolderIMAPName: findings and the report name a folder by its IMAP
// name, as a client shows it, not by its modified UTF-7 directory.
func TestFolderIMAPName(t *testing.T) {
	dir := newRoot(t)
	sub := newFolder(t, dir, "Entw&APw-rfe")
	put(t, sub, "cur", "1700000001.M1P1Q1.test:2,S")
	writeFile(t, filepath.Join(sub, uidlist.FileName), "3 V7 N9\n1 :gone\n8 :1700000001.M1P1Q1.test\n")
	rep := check(t, Options{Root: dir})
	if len(rep.Findings) != 1 || rep.Findings[0].Mailbox != "Entwürfe" || rep.Findings[0].Dir != sub {
		t.Fatalf("findings %v, want one in Entwürfe (%s)", rep.Findings, sub)
	}
	if !slices.Equal(rep.Mailboxes, []string{"INBOX", "Entwürfe"}) {
		t.Errorf("mailboxes %v", rep.Mailboxes)
	}
}

// TestUnreadableFolder: a folder this user may not read is a note, not
// the end of the check, and its cached index entries are not stale. As
// root the test runs as nobody.
func TestUnreadableFolder(t *testing.T) {
	if !testfs.Unprivileged(t) {
		return
	}
	dir := newRoot(t)
	put(t, dir, "new", "1700000001.M1P1Q1.test")
	closed := newFolder(t, dir, "Closed")
	put(t, closed, "new", "1700000002.M2P1Q1.test")
	ix := filepath.Join(t.TempDir(), "index.db")
	idx, err := store.OpenIndex(ix, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx.Put(closed, "1700000002.M2P1Q1.test", store.IndexEntry{FileSize: 1})
	if err := idx.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(closed, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(closed, 0o700) })
	rep := check(t, Options{Root: dir, IndexPath: ix})
	if !slices.Equal(rep.Mailboxes, []string{"INBOX"}) || rep.Messages != 1 {
		t.Errorf("mailboxes %v, messages %d; want INBOX's one", rep.Mailboxes, rep.Messages)
	}
	if !slices.ContainsFunc(rep.Notes, func(n Note) bool { return n.Mailbox == "Closed" && strings.Contains(n.Text, "cannot be read") }) {
		t.Errorf("no note about Closed: %v", rep.Notes)
	}
	for _, f := range rep.Findings {
		if f.Mailbox == "Closed" || f.Kind == IndexStale {
			t.Errorf("finding %v: the folder was not read, nothing is known of it", f)
		}
	}
}

// Without a proof of completeness, a record without a file is not
// reported (nor dropped): the file may have been missed.
func TestUnprovenListing(t *testing.T) {
	dir := newRoot(t)
	put(t, dir, "cur", "1700000001.M1P1Q1.test:2,S")
	writeFile(t, filepath.Join(dir, uidlist.FileName), "3 V7 N3\n1 :1700000001.M1P1Q1.test\n2 :gone\n")
	caps := maildir.Capabilities{FSType: "test"}
	opts := Options{Root: dir, Caps: &caps}
	rep := check(t, opts)
	if !rep.Clean() {
		t.Fatalf("findings on an unproven listing: %v", rep.Findings)
	}
	if !slices.ContainsFunc(rep.Notes, func(n Note) bool { return strings.Contains(n.Text, "proven") && n.Mailbox == "INBOX" }) {
		t.Errorf("no note about the unproven listing: %v", rep.Notes)
	}
	opts.Caps = nil
	if rep := check(t, opts); !slices.Equal(kinds(rep), []Kind{StaleRecord}) {
		t.Errorf("with proofs: found %v, want [stale-record]", rep.Findings)
	}
}

// A finding that a live writer caused and finished meanwhile is not
// reported: a file that got its UID, an append that was under way.
func TestSecondReading(t *testing.T) {
	const base = "1700000001.M1P1Q1.test"
	tests := []struct {
		name    string
		uidlist string
		finish  string // the uidlist once the writer is done
	}{
		{"UID assigned meanwhile", "3 V7 N1\n", "3 V7 N1\n1 :" + base + "\n"},
		{"append under way", "3 V7 N1\n1 :" + base[:10], "3 V7 N1\n1 :" + base + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newRoot(t)
			put(t, dir, "new", base)
			path := filepath.Join(dir, uidlist.FileName)
			writeFile(t, path, tt.uidlist)
			calls := 0
			testHookBeforeSecondReading = func(string) {
				calls++
				writeFile(t, path, tt.finish)
			}
			defer func() { testHookBeforeSecondReading = nil }()
			rep := check(t, Options{Root: dir})
			if !rep.Clean() || calls == 0 {
				t.Errorf("findings %v after %d second readings; want none after one", rep.Findings, calls)
			}
		})
	}
}

// A salvageable header keeps the mailbox's UIDVALIDITY through repair,
// even when the whole file is a header without its newline.
func TestSalvageHeader(t *testing.T) {
	tests := []struct {
		line string
		want string
		ok   bool
	}{
		{"3 V5 Nx Gabc P1", "3 V5 N1 Gabc P1", true},
		{"3 V5", "3 V5 N1", true},
		{"3 V0 N5", "", false},
		{"3 N5", "", false},
		{"1 77 x", "1 77 1", true},
		{"2 77 9", "2 77 9", true},
		{"1 x 9", "", false},
		{"4 V5 N5", "", false},
		{"", "", false},
		{"3V5", "", false},
	}
	for _, tt := range tests {
		got, ok := salvageHeader(tt.line)
		if got != tt.want || ok != tt.ok {
			t.Errorf("salvageHeader(%q) = %q, %v; want %q, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}

	dir := newRoot(t)
	writeFile(t, filepath.Join(dir, uidlist.FileName), "3 V42 N9")
	put(t, dir, "new", "1700000001.M1P1Q1.test")
	opts := Options{Root: dir}
	rep := check(t, opts)
	if got := kinds(rep); !slices.Equal(got, sortedKinds(Header, MissingUID)) {
		t.Fatalf("found %v", got)
	}
	repair(t, opts, rep)
	if rep := check(t, opts); !rep.Clean() {
		t.Fatalf("after repair: %v", rep.Findings)
	}
	uids, f := uidMap(t, dir)
	if f.Header.UIDValidity != 42 || uids["1700000001.M1P1Q1.test"] < 9 {
		t.Errorf("after repair: %+v %v; want UIDVALIDITY 42 and the message at UID 9 or above", f.Header, uids)
	}
	copies, _ := filepath.Glob(filepath.Join(dir, uidlist.FileName+".damaged.*"))
	if len(copies) != 1 {
		t.Errorf("copies of the damaged file: %v, want one", copies)
	}
}

func TestCheckErrors(t *testing.T) {
	if _, err := Check(testContext(t), Options{}); err == nil {
		t.Error("Check without a root: no error")
	}
	if _, err := Check(testContext(t), Options{Root: t.TempDir()}); err == nil {
		t.Error("Check of a directory that is not a Maildir: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Check(ctx, Options{Root: newRoot(t)}); !errors.Is(err, context.Canceled) {
		t.Errorf("Check with a cancelled context: %v", err)
	}
}

// Progress is told about every mailbox, then the end.
func TestProgress(t *testing.T) {
	dir := newRoot(t)
	newFolder(t, dir, "A")
	newFolder(t, dir, "B")
	var calls []string
	check(t, Options{Root: dir, Progress: func(done, total int, name string) {
		calls = append(calls, fmt.Sprintf("%d/%d %s", done, total, name))
	}})
	want := []string{"0/3 INBOX", "1/3 A", "2/3 B", "3/3 "}
	if !slices.Equal(calls, want) {
		t.Errorf("progress %q, want %q", calls, want)
	}
}

// FuzzRebuild: analysing any uidlist never panics, and the file a repair
// would write is valid, keeps the UIDVALIDITY, gives every message the
// UID its readers give it, never lowers the next UID, and parses back
// unchanged.
func FuzzRebuild(f *testing.F) {
	for _, seed := range []string{
		"3 V100 N4\n1 :a\n2 :b\n3 :c\n",
		"3 V100 N6\n1 :a\n5 :b\n3 :c\n3 :d\n7 :a\n",
		"3 V100 Nxyz G0123456789abcdef0123456789abcdef\n1 S20 W22 :a\n900 junk\n",
		"1 100 2\n1 a:2,S\n5 b\n",
		"2 100 9\n1 F :a\n2 :b\n",
		"3 V1 N1",
		"3 V5 N9\n4 :a\n2 :b\n2 :c\n8 :b\n1 :e",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a := analyzeUIDList("fuzz", data)
		if a.file == nil {
			return
		}
		nf, _ := a.rebuild(nil)
		if err := nf.Validate(); err != nil {
			t.Fatalf("rebuilt file does not validate: %v\n%q", err, data)
		}
		if nf.Header.UIDValidity != a.file.Header.UIDValidity || nf.Header.NextUID < a.file.Header.NextUID {
			t.Fatalf("header %+v rebuilt as %+v", a.file.Header, nf.Header)
		}
		if last := nf.LastUID(); last != 0 && nf.Header.NextUID <= last {
			t.Fatalf("next UID %d not above UID %d", nf.Header.NextUID, last)
		}
		uids := map[string]uint32{}
		for _, r := range nf.Records {
			uids[r.Base()] = r.UID
		}
		for _, r := range a.file.Records {
			if uids[r.Base()] != r.UID {
				t.Fatalf("%s: UID %d rebuilt as %d\n%q", r.Base(), r.UID, uids[r.Base()], data)
			}
		}
		back, problems, err := uidlist.Parse("back", nf.Marshal())
		if err != nil || len(problems) > 0 || len(back.Records) != len(nf.Records) {
			t.Fatalf("rebuilt file parses as %v, %v, %d records", err, problems, len(back.Records))
		}
	})
}
