package maildir

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/internal/testfs"
)

// The speed goal of DESIGN.md §3 listings: on a 100,000-message cur/ with
// warm caches, a proven listing within 1.5× one raw getdents pass. The
// benchmarks below measure both sides on the same directory; bench/listing.sh
// runs them and prints the ratio.

// benchMessages is the size of the cur/ the listing goal is stated for.
const benchMessages = 100_000

// rawRead is one raw pass over a directory: open, getdents64 into buf
// until it returns 0, close. With names non-nil, every entry's name is
// copied out as a string (what a plain directory reader returns) and the
// names are returned; otherwise only the entries are counted. calls is the
// number of getdents64 calls made.
func rawRead(path string, buf []byte, names []string) (out []string, count, calls int, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, 0, err
	}
	defer unix.Close(fd)
	out = names[:0]
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, 0, calls, err
		}
		calls++
		if n == 0 {
			return out, count, calls, nil
		}
		for off := 0; off+19 <= n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			if reclen == 0 || off+reclen > n {
				break
			}
			name := buf[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			off += reclen
			if string(name) == "." || string(name) == ".." {
				continue
			}
			count++
			if names != nil {
				out = append(out, string(name))
			}
		}
	}
}

// cpuTime returns the user and system CPU time of the whole process (every
// thread, so the garbage collector's work counts). On a loaded machine
// wall time includes waiting for a CPU; CPU time does not.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportPerFile adds the ns/file metric; files is the entry count of one
// pass.
func reportPerFile(b *testing.B, files int) {
	if b.N > 0 && files > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(files), "ns/file")
	}
}

// benchRaw runs raw passes over cur/ with a buffer of bufSize bytes. A
// bufSize of 0 means one buffer large enough for the whole directory, so
// that one call reads it. withNames decides whether names are copied out.
func benchRaw(b *testing.B, bufSize int, withNames bool) {
	cur := filepath.Join(testfs.BenchMaildir(b, "maildir", benchMessages), Cur)
	if bufSize == 0 {
		// Room for every record at its largest, plus the end-of-directory
		// margin List itself keeps.
		bufSize = benchMessages*maxRecLen + maxRecLen
	}
	buf := make([]byte, bufSize)
	var names []string
	if withNames {
		names = make([]string, 0, benchMessages)
	}
	// Untimed pass: warms the dentry and page caches and the buffer.
	_, count, calls, err := rawRead(cur, buf, names)
	if err != nil {
		b.Fatal(err)
	}
	if count != benchMessages {
		b.Fatalf("raw pass saw %d files, want %d", count, benchMessages)
	}
	cpu := cpuTime(b)
	for b.Loop() {
		names, count, _, err = rawRead(cur, buf, names)
		if err != nil {
			b.Fatal(err)
		}
		if count != benchMessages {
			b.Fatalf("raw pass saw %d files, want %d", count, benchMessages)
		}
	}
	b.ReportMetric(float64((cpuTime(b)-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(calls), "calls/op")
	reportPerFile(b, benchMessages)
}

// BenchmarkRawGetdents100k is the goal's yardstick: one raw getdents pass
// over a 100,000-file cur/ with a 1 MiB buffer, each name copied out as a
// string.
func BenchmarkRawGetdents100k(b *testing.B) { benchRaw(b, 1<<20, true) }

// BenchmarkRawGetdentsOneCall100k is the same pass with a buffer that
// holds the whole directory, so that one call reads it (what a proven
// atomic listing does).
func BenchmarkRawGetdentsOneCall100k(b *testing.B) { benchRaw(b, 0, true) }

// BenchmarkRawGetdentsNoNames100k is the 1 MiB pass without copying the
// names: the system calls and the record walk alone, for reference.
func BenchmarkRawGetdentsNoNames100k(b *testing.B) { benchRaw(b, 1<<20, false) }

// BenchmarkList100k is a proven listing of the same cur/, with filesystem
// detection (cached per device, as in a server) and the default options.
func BenchmarkList100k(b *testing.B) {
	cur := filepath.Join(testfs.BenchMaildir(b, "maildir", benchMessages), Cur)
	list := func() *Listing {
		l, err := List(cur, ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if !l.Proof.Proven() {
			b.Fatalf("listing of a quiet directory not proven (caps %s, %d tries)", l.Caps, l.Tries)
		}
		if len(l.Names) != benchMessages {
			b.Fatalf("listing has %d names, want %d (proof %v, %d tries, caps %s)", len(l.Names), benchMessages, l.Proof, l.Tries, l.Caps)
		}
		return l
	}
	// Untimed pass: warms the caches, detects the filesystem and learns
	// the buffer size this directory needs.
	l := list()
	cpu := cpuTime(b)
	for b.Loop() {
		l = list()
	}
	b.ReportMetric(float64((cpuTime(b)-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(l.Tries), "tries/op")
	reportPerFile(b, benchMessages)
}

// BenchmarkListVsRaw100k alternates a raw pass (as in
// BenchmarkRawGetdents100k) and a proven listing over one cur/, timing
// each, and reports their ratio. Interleaving makes the ratio hold up on a
// machine whose load changes during the run, where two separate
// benchmarks would each see a different load.
func BenchmarkListVsRaw100k(b *testing.B) {
	cur := filepath.Join(testfs.BenchMaildir(b, "maildir", benchMessages), Cur)
	buf := make([]byte, 1<<20)
	names := make([]string, 0, benchMessages)
	raw := func() {
		var count int
		var err error
		names, count, _, err = rawRead(cur, buf, names)
		if err != nil {
			b.Fatal(err)
		}
		if count != benchMessages {
			b.Fatalf("raw pass saw %d files, want %d", count, benchMessages)
		}
	}
	list := func() {
		l, err := List(cur, ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if !l.Proof.Proven() || len(l.Names) != benchMessages {
			b.Fatalf("listing: %d names, proof %v", len(l.Names), l.Proof)
		}
	}
	raw()
	list()
	var rawT, listT measured
	i := 0
	for b.Loop() {
		// Alternate the order so that neither side always runs second.
		if i%2 == 0 {
			rawT.add(b, raw)
			listT.add(b, list)
		} else {
			listT.add(b, list)
			rawT.add(b, raw)
		}
		i++
	}
	n := float64(b.N)
	b.ReportMetric(float64(rawT.wall.Nanoseconds())/n, "raw-ns/op")
	b.ReportMetric(float64(listT.wall.Nanoseconds())/n, "list-ns/op")
	b.ReportMetric(float64(listT.wall)/float64(rawT.wall), "list/raw")
	b.ReportMetric(float64(rawT.cpu.Nanoseconds())/n, "raw-cpu-ns/op")
	b.ReportMetric(float64(listT.cpu.Nanoseconds())/n, "list-cpu-ns/op")
	b.ReportMetric(float64(listT.cpu)/float64(rawT.cpu), "list/raw-cpu")
}

// measured sums the wall and CPU time of calls.
type measured struct{ wall, cpu time.Duration }

func (m *measured) add(b *testing.B, f func()) {
	cpu, start := cpuTime(b), time.Now()
	f()
	m.wall += time.Since(start)
	m.cpu += cpuTime(b) - cpu
}
