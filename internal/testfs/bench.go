package testfs

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchDirEnv names an environment variable: when set, BenchMaildir makes
// each Maildir once in that directory and later benchmarks and later runs
// reuse it (bench/listing.sh sets it and removes the directory at the
// end). Unset, every call makes its own under b.TempDir().
const BenchDirEnv = "CISTERN_BENCH_DIR"

// benchDoneMarker, in a reusable benchmark Maildir's root, says that all
// of its files were made.
const benchDoneMarker = ".bench-complete"

// benchFlags cycle over the files so that info parts vary in length as
// they do in a real mailbox; each is in the sorted order of a Maildir
// info.
var benchFlags = [...]string{"S", "", "RS", "FS", "S", "ST", "DS", "S"}

// BenchFilename returns the i-th cur/ file name of a benchmark Maildir,
// shaped like Dovecot's: <sec>.M<usec>P<pid>Q<n>.<host>,S=<n>,W=<n>:2,<flags>
// (about 70 bytes). Names of distinct i are distinct.
func BenchFilename(i int) string {
	b := make([]byte, 0, 80)
	b = strconv.AppendInt(b, 1700000000+int64(i/7), 10)
	b = append(b, ".M"...)
	b = strconv.AppendInt(b, int64(i*7919%1000000), 10)
	b = append(b, 'P')
	b = strconv.AppendInt(b, int64(10000+i%50000), 10)
	b = append(b, 'Q')
	b = strconv.AppendInt(b, int64(i+1), 10)
	b = append(b, ".mail.example.org,S="...)
	size := int64(2000 + i*37%90000)
	b = strconv.AppendInt(b, size, 10)
	b = append(b, ",W="...)
	b = strconv.AppendInt(b, size+size/40, 10)
	b = append(b, ":2,"...)
	b = append(b, benchFlags[i%len(benchFlags)]...)
	return string(b)
}

// BenchMaildir returns a Maildir (cur/, new/, tmp/) whose cur/ holds n
// empty files named BenchFilename(0) to BenchFilename(n-1). It favours
// speed over durability: files are made by mknod (one system call each)
// from one writer per CPU, and nothing is fsynced. name tells a caller's
// reusable Maildirs (BenchDirEnv) apart from another's: one that a
// benchmark changes (a dovecot-uidlist written) gets its own.
func BenchMaildir(b *testing.B, name string, n int) string {
	b.Helper()
	var dir string
	if root := os.Getenv(BenchDirEnv); root != "" {
		dir = filepath.Join(root, name+"-"+strconv.Itoa(n))
		if _, err := os.Stat(filepath.Join(dir, benchDoneMarker)); err == nil {
			return dir
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	} else {
		dir = filepath.Join(b.TempDir(), "Maildir")
	}
	start := time.Now()
	if err := MakeBenchMaildir(dir, n); err != nil {
		b.Fatal(err)
	}
	b.Logf("made %d files in %v", n, time.Since(start).Round(time.Millisecond))
	if err := os.WriteFile(filepath.Join(dir, benchDoneMarker), nil, 0o600); err != nil {
		b.Fatal(err)
	}
	return dir
}

// MakeBenchMaildir makes a Maildir at dir (its cur/, new/ and tmp/) with
// n empty files in cur/ named BenchFilename(0) to BenchFilename(n-1), in
// parallel: mknod(2) only, nothing fsynced (scratch data).
func MakeBenchMaildir(dir string, n int) error {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	return fillBenchDir(filepath.Join(dir, "cur"), n)
}

func fillBenchDir(dir string, n int) error {
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				path := filepath.Join(dir, BenchFilename(i))
				if err := unix.Mknod(path, unix.S_IFREG|0o600, 0); err != nil {
					errs[w] = &os.PathError{Op: "mknod", Path: path, Err: err}
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
