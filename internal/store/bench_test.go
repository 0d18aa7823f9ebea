package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// The speed goal of DESIGN.md §3 syncs: on a 100,000-message cur/ with
// warm caches, a sync that finds nothing changed within 2× one raw
// getdents pass over cur/. The benchmarks below measure the cheap check
// (nothing read), the full read when the cheap check cannot skip, and, for
// scale, the first sync that assigns every UID. bench/listing.sh runs them
// next to the maildir package's raw-pass benchmark.

// benchMessages is the size of the cur/ the goal is stated for.
const benchMessages = 100_000

// rawPass is one raw getdents pass over dir with buf, every name copied
// out as a string, as in the maildir package's BenchmarkRawGetdents100k.
// It returns the number of entries other than "." and "..".
func rawPass(dir string, buf []byte, names []string) ([]string, int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return names, 0, err
	}
	defer unix.Close(fd)
	names = names[:0]
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return names, 0, err
		}
		if n == 0 {
			return names, len(names), nil
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
			if string(name) != "." && string(name) != ".." {
				names = append(names, string(name))
			}
		}
	}
}

// syncedMailbox opens dir and syncs it once, checking that the sync saw
// every message and was proven.
func syncedMailbox(b *testing.B, dir string) *Mailbox {
	b.Helper()
	m, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ch, err := m.Sync(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if len(ch.New) != benchMessages {
		b.Fatalf("first sync found %d messages, want %d", len(ch.New), benchMessages)
	}
	if !ch.NewProof.Proven() || !ch.CurProof.Proven() {
		b.Fatalf("first sync not proven (new %v, cur %v)", ch.NewProof, ch.CurProof)
	}
	return m
}

// BenchmarkSyncNoChange100k is a sync of an unchanged mailbox: the cheap
// check (two stats) skips the read.
func BenchmarkSyncNoChange100k(b *testing.B) {
	m := syncedMailbox(b, testfs.BenchMaildir(b, "store", benchMessages))
	ctx := context.Background()
	for b.Loop() {
		ch, err := m.Sync(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if !ch.Skipped {
			b.Fatal("sync of an unchanged mailbox was not skipped")
		}
	}
}

// BenchmarkSyncNoChangeFullRead100k is a sync that finds nothing changed
// but cannot know it beforehand: before each sync (outside the timer) a
// dot-file is made and removed in cur/, which moves the directory's mtime
// and defeats the cheap check, so new/ and cur/ are listed and reconciled
// with the state. Outside the timer each iteration also makes one raw
// getdents pass over cur/, so that the sync/raw ratio compares runs made
// under the same machine load.
func BenchmarkSyncNoChangeFullRead100k(b *testing.B) {
	dir := testfs.BenchMaildir(b, "store", benchMessages)
	m := syncedMailbox(b, dir)
	ctx := context.Background()
	cur := filepath.Join(dir, maildir.Cur)
	touch := filepath.Join(cur, ".bench-touch")
	buf := make([]byte, 1<<20)
	names := make([]string, 0, benchMessages)
	raw := func() {
		var n int
		var err error
		names, n, err = rawPass(cur, buf, names)
		if err != nil {
			b.Fatal(err)
		}
		if n != benchMessages {
			b.Fatalf("raw pass saw %d entries, want %d", n, benchMessages)
		}
	}
	raw() // warm
	var rawT measured
	var syncCPU time.Duration
	for b.Loop() {
		b.StopTimer()
		if err := os.WriteFile(touch, nil, 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.Remove(touch); err != nil {
			b.Fatal(err)
		}
		rawT.add(b, raw)
		b.StartTimer()

		cpu := cpuTime(b)
		ch, err := m.Sync(ctx)
		syncCPU += cpuTime(b) - cpu
		if err != nil {
			b.Fatal(err)
		}
		if ch.Skipped {
			b.Fatal("sync skipped although cur/ changed")
		}
		if !ch.Empty() || ch.Suspects != 0 || ch.Assigned != 0 {
			b.Fatalf("sync of unchanged content reported changes: %d new, %d flags, %d expunged, %d suspects",
				len(ch.New), len(ch.Flags), len(ch.Expunged), ch.Suspects)
		}
		if !ch.NewProof.Proven() || !ch.CurProof.Proven() {
			b.Fatalf("sync not proven (new %v, cur %v)", ch.NewProof, ch.CurProof)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(rawT.wall.Nanoseconds())/n, "raw-ns/op")
	b.ReportMetric(float64(b.Elapsed())/float64(rawT.wall), "sync/raw")
	b.ReportMetric(float64(syncCPU.Nanoseconds())/n, "cpu-ns/op")
	b.ReportMetric(float64(rawT.cpu.Nanoseconds())/n, "raw-cpu-ns/op")
	b.ReportMetric(float64(syncCPU)/float64(rawT.cpu), "sync/raw-cpu")
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

// measured sums the wall and CPU time of calls.
type measured struct{ wall, cpu time.Duration }

func (m *measured) add(b *testing.B, f func()) {
	cpu, start := cpuTime(b), time.Now()
	f()
	m.wall += time.Since(start)
	m.cpu += cpuTime(b) - cpu
}

// BenchmarkFirstSync100k is Open and the first Sync of a mailbox without
// a dovecot-uidlist: every message is listed, given a UID, and the
// uidlist is written (with its fsyncs).
func BenchmarkFirstSync100k(b *testing.B) {
	dir := testfs.BenchMaildir(b, "store", benchMessages)
	uidlistPath := filepath.Join(dir, uidlist.FileName)
	syncedMailbox(b, dir) // warm the caches
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		if err := os.Remove(uidlistPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			b.Fatal(err)
		}
		b.StartTimer()

		m, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		ch, err := m.Sync(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if ch.Assigned != benchMessages {
			b.Fatalf("first sync assigned %d UIDs, want %d", ch.Assigned, benchMessages)
		}
	}
}

// BenchmarkReopen100k is Open and the first Sync of a mailbox that has its
// dovecot-uidlist: what a daemon does on the first SELECT after a restart.
func BenchmarkReopen100k(b *testing.B) {
	dir := testfs.BenchMaildir(b, "store", benchMessages)
	syncedMailbox(b, dir) // writes the uidlist, warms the caches
	ctx := context.Background()
	for b.Loop() {
		m, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		ch, err := m.Sync(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(ch.New) != benchMessages || ch.Assigned != 0 {
			b.Fatalf("reopen found %d messages and assigned %d UIDs, want %d and 0", len(ch.New), ch.Assigned, benchMessages)
		}
	}
}

// BenchmarkWarmReopen100k is Open and the first Sync of a mailbox whose
// synced state the index holds (warm.go): what a daemon does on the
// first SELECT after a restart once it has stored the state. The index
// is open (its pages in the page cache, as after a restart with a warm
// cache); every iteration must be served warm, without a listing.
func BenchmarkWarmReopen100k(b *testing.B) {
	dir := testfs.BenchMaildir(b, "store", benchMessages)
	ix, err := OpenIndex(filepath.Join(b.TempDir(), "index.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	m, err := Open(dir, Options{Index: ix})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := m.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	m.persist()
	m.Close()
	ix.flush()
	for b.Loop() {
		m, err := Open(dir, Options{Index: ix})
		if err != nil {
			b.Fatal(err)
		}
		ch, err := m.Sync(ctx)
		if err != nil {
			b.Fatal(err)
		}
		// What a SELECT reads next: the UID snapshot.
		if uids, _ := m.UIDs(); !ch.Skipped || len(uids) != benchMessages {
			b.Fatalf("warm reopen: skipped %v, %d messages, want a skipped sync of %d", ch.Skipped, len(uids), benchMessages)
		}
		m.Close()
	}
}
