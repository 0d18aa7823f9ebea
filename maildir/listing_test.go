package maildir

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// makeFiles creates n empty files named like Maildir messages in dir and
// returns their base names.
func makeFiles(t testing.TB, dir string, n int) []string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	bases := make([]string, n)
	for i := range bases {
		bases[i] = fmt.Sprintf("1700000000.M%06dP1234Q%d.testhost.example.org,S=1000,W=1020", i, i)
		f, err := os.Create(filepath.Join(dir, bases[i]+":2,S"))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return bases
}

// checkComplete fails unless names hold exactly the base names, once each.
func checkComplete(t *testing.T, names, bases []string) {
	t.Helper()
	got := make([]string, len(names))
	for i, n := range names {
		got[i] = BaseName(n)
	}
	slices.Sort(got)
	want := slices.Clone(bases)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("listing has %d names, want %d (first difference: %s)", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []string) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("%q vs %q", a[i], b[i])
		}
	}
	return "length"
}

func TestListProvenOnLocalFS(t *testing.T) {
	dirs := map[string]string{"tempdir": t.TempDir()}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "cistern-test")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			dirs["shm"] = d
		}
	}
	for name, root := range dirs {
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{0, 1, 100, 5000} { // 5000 needs buffer growth
				dir := filepath.Join(root, fmt.Sprint("cur", n))
				bases := makeFiles(t, dir, n)
				caps, err := DetectFresh(dir, "")
				if err != nil {
					t.Fatal(err)
				}
				l, err := List(dir, ListOptions{Caps: &caps})
				if err != nil {
					t.Fatal(err)
				}
				checkComplete(t, l.Names, bases)
				if len(l.Types) != len(l.Names) {
					t.Fatalf("%d types for %d names", len(l.Types), len(l.Names))
				}
				if caps.CanProve() && !l.Proof.Proven() {
					t.Fatalf("%s: quiet directory of %d files not proven (%v)", caps, n, l.Proof)
				}
				if caps.AtomicRead && l.Proof != ProofAtomic {
					t.Fatalf("%s: proof %v, want atomic", caps, l.Proof)
				}
				if l.Tries != 1 {
					t.Fatalf("quiet directory took %d tries", l.Tries)
				}
			}
		})
	}
}

func TestDetect(t *testing.T) {
	dir := t.TempDir()
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		t.Fatal(err)
	}
	c, err := DetectFresh(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", dir, c)
	if c.Magic != int64(sfs.Type) {
		t.Fatalf("magic %#x, statfs says %#x", c.Magic, sfs.Type)
	}
	switch int64(sfs.Type) {
	case magicExt4, magicXFS, magicTmpfs:
		if !c.AtomicRead {
			t.Fatalf("%s must support atomic reads", c.FSType)
		}
	default:
		if c.AtomicRead {
			t.Fatalf("%s must not claim atomic reads", c.FSType)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Fatalf("probe left files behind: %v %v", entries, err)
	}
	if kernelAtLeast(6, 13) && localTimestampFS(c.Magic) && !c.FineTimestamps {
		t.Logf("kernel has multigrain timestamps but the probe saw coarse ones on %s", c.FSType)
	}
}

func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var ma, mi int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi)
	return ma > major || ma == major && mi >= minor
}

func TestListNoProofAvailable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cur")
	bases := makeFiles(t, dir, 50)
	caps := Capabilities{FSType: "test"}
	l, err := List(dir, ListOptions{Caps: &caps})
	if err != nil {
		t.Fatal(err)
	}
	checkComplete(t, l.Names, bases)
	if l.Proof != ProofNone || l.Tries != 1 {
		t.Fatalf("proof %v after %d tries, want none after 1", l.Proof, l.Tries)
	}
	l, err = List(dir, ListOptions{Caps: &caps, Locked: true})
	if err != nil {
		t.Fatal(err)
	}
	if l.Proof != ProofLocked {
		t.Fatalf("proof %v, want locked", l.Proof)
	}
}

// setHook installs testHookAfterOpen for one test.
func setHook(t *testing.T, h func(string)) {
	testHookAfterOpen = h
	t.Cleanup(func() { testHookAfterOpen = nil })
}

func TestListStableTimestamp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cur")
	bases := makeFiles(t, dir, 300)
	real, err := DetectFresh(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !real.FineTimestamps {
		t.Skipf("%s has no fine timestamps on this kernel", real.FSType)
	}
	caps := Capabilities{FSType: "test", FineTimestamps: true}

	t.Run("quiet", func(t *testing.T) {
		l, err := List(dir, ListOptions{Caps: &caps})
		if err != nil {
			t.Fatal(err)
		}
		checkComplete(t, l.Names, bases)
		if l.Proof != ProofStableTimestamp || l.Tries != 1 || !l.StampValid {
			t.Fatalf("proof %v tries %d stamp %v", l.Proof, l.Tries, l.StampValid)
		}
		now, err := StatDir(dir)
		if err != nil || now != l.Stamp {
			t.Fatalf("stamp %v, directory now %v (%v)", l.Stamp, now, err)
		}
	})

	t.Run("changed once", func(t *testing.T) {
		calls := 0
		setHook(t, func(string) {
			calls++
			if calls == 1 {
				touch(t, dir, "x")
			}
		})
		l, err := List(dir, ListOptions{Caps: &caps})
		if err != nil {
			t.Fatal(err)
		}
		if l.Proof != ProofStableTimestamp || l.Tries != 2 {
			t.Fatalf("proof %v after %d tries, want stable-timestamp after 2", l.Proof, l.Tries)
		}
		checkComplete(t, l.Names, append(slices.Clone(bases), "x"))
		os.Remove(filepath.Join(dir, "x"))
	})

	t.Run("starving", func(t *testing.T) {
		calls := 0
		setHook(t, func(string) {
			calls++
			touch(t, dir, fmt.Sprint("y", calls))
		})
		l, err := List(dir, ListOptions{Caps: &caps, MaxTries: 5})
		if err != nil {
			t.Fatal(err)
		}
		if l.Proof != ProofNone || l.Tries != 5 || calls != 5 {
			t.Fatalf("proof %v after %d tries (%d reads), want none after 5", l.Proof, l.Tries, calls)
		}
	})
}

func touch(t *testing.T, dir, name string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestListUnderRenames is the property the package exists for: while
// another goroutine renames files as a mail client changes flags, every
// listing that claims a proof holds every base name exactly once. It fails
// too when no proven listing was made while renames ran, since the
// property was then never tested, and when an atomic-read listing comes
// back unproven.
func TestListUnderRenames(t *testing.T) {
	real, err := DetectFresh(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		caps Capabilities
	}{
		{"detected", real},
		{"stable-timestamp only", Capabilities{FSType: "test", FineTimestamps: real.FineTimestamps}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.caps.CanProve() {
				t.Skipf("no proof on %s", real.FSType)
			}
			dir := filepath.Join(t.TempDir(), "cur")
			bases := makeFiles(t, dir, 2000)
			const renames = 30000
			var done, stop atomic.Bool
			var renamed atomic.Int64 // renames completed
			var wg sync.WaitGroup
			defer func() { stop.Store(true); wg.Wait() }() // also when a check fails
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer done.Store(true)
				rng := rand.New(rand.NewPCG(1, 2))
				flags := make([]Flags, len(bases))
				for i := range flags {
					flags[i] = Flags(0).With('S')
				}
				for i := 0; i < renames && !stop.Load(); i++ {
					k := rng.IntN(len(bases))
					nf := flags[k] ^ Flags(0).With("DFRST"[rng.IntN(5)])
					from := filepath.Join(dir, FilenameWithFlags(bases[k], flags[k]))
					to := filepath.Join(dir, FilenameWithFlags(bases[k], nf))
					if err := os.Rename(from, to); err != nil {
						t.Error(err)
						return
					}
					flags[k] = nf
					renamed.Add(1)
				}
			}()
			var scans, proven, overlapped int
			for !done.Load() {
				before := renamed.Load()
				l, err := List(dir, ListOptions{Caps: &tc.caps, MaxTries: 3})
				if err != nil {
					t.Fatal(err)
				}
				during := renamed.Load() - before
				scans++
				if !l.Proof.Proven() {
					continue
				}
				proven++
				if during > 0 {
					overlapped++
				}
				checkComplete(t, l.Names, bases)
			}
			wg.Wait()
			t.Logf("%s: %d scans, %d proven, %d of them while renames ran", tc.caps, scans, proven, overlapped)
			// A stable-timestamp proof needs one of the three tries to fall
			// between two renames, which the scheduler decides: on two loaded
			// cores at least a third of the listings were proven while renames
			// ran. One is the bound that cannot flake.
			if overlapped == 0 {
				t.Fatalf("no proven listing while renames ran (%d scans, %d proven): the property went untested", scans, proven)
			}
			// An atomic read owes nothing to timing: List grows the buffer
			// until the directory fits one getdents64 call, with signals
			// blocked, and renames wait for the call. Every listing is proven.
			if tc.caps.AtomicRead && proven != scans {
				t.Fatalf("%s: %d of %d listings unproven under renames", tc.caps, scans-proven, scans)
			}
		})
	}
}

func TestParseDirents(t *testing.T) {
	var b []byte
	rec := func(name string, typ uint8) {
		reclen := (19 + len(name) + 1 + 7) &^ 7
		r := make([]byte, reclen)
		r[0] = 1
		r[16], r[17] = byte(reclen), byte(reclen>>8)
		r[18] = typ
		copy(r[19:], name)
		b = append(b, r...)
	}
	rec(".", unix.DT_DIR)
	rec("..", unix.DT_DIR)
	rec("a:2,S", unix.DT_REG)
	rec(strings.Repeat("x", 255), unix.DT_UNKNOWN)
	var l Listing
	parseDirents(b, &l)
	if !slices.Equal(l.Names, []string{"a:2,S", strings.Repeat("x", 255)}) {
		t.Fatalf("names %q", l.Names)
	}
	if !slices.Equal(l.Types, []uint8{unix.DT_REG, unix.DT_UNKNOWN}) {
		t.Fatalf("types %v", l.Types)
	}
	if maxRecLen != 280 {
		t.Fatalf("maxRecLen %d", maxRecLen)
	}
}

// TestListUnderSignals: getdents64 returns early, with room left in the
// buffer, when a signal is pending for the thread (filldir64 checks after
// the first entry), and Go's runtime signals threads to preempt. A short
// read must never pass for a whole directory. The test signals the
// listing's own thread without pause while it lists.
func TestListUnderSignals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cur")
	bases := makeFiles(t, dir, 3000)
	caps, err := DetectFresh(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !caps.AtomicRead {
		t.Skipf("%s has no atomic reads", caps.FSType)
	}
	const scans = 60
	tids := make(chan int, 1)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the signaller
		defer wg.Done()
		tid := <-tids
		for !stop.Load() {
			unix.Tgkill(os.Getpid(), tid, unix.SIGURG)
		}
	}()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer stop.Store(true)
		tids <- unix.Gettid()
		for i := 0; i < scans; i++ {
			l, err := List(dir, ListOptions{Caps: &caps})
			if err != nil {
				errc <- err
				return
			}
			if l.Proof.Proven() && len(l.Names) != len(bases) {
				errc <- fmt.Errorf("scan %d: proven (%v) listing of %d names, the directory has %d", i, l.Proof, len(l.Names), len(bases))
				return
			}
		}
		errc <- nil
	}()
	err = <-errc
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
}
