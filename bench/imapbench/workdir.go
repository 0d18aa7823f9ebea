package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cistern-mail/cistern/internal/testproc"
)

// workDir is the layout of --dir (see the package doc).
type workDir struct {
	root           string
	cisternMaildir string
	cisternIndex   string // the bbolt file
	dovecotMaildir string
	dovecotRun     string
	generatedMark  string // "<messages> <bytes> <hits>": cisternMaildir is complete
	copiedMark     string // dovecotMaildir is a complete copy of it
}

// corpusInfo describes the generated INBOX.
type corpusInfo struct {
	Messages int   `json:"messages"`
	Bytes    int64 `json:"bytes"`
	// Hits is how many messages the generator planted searchWord in.
	Hits int `json:"planted_search_hits"`
}

// writers is how many goroutines write message files: the work is mostly
// waiting for the filesystem, so more than the CPUs.
func writers() int { return max(8, 4*runtime.NumCPU()) }

func newWorkDir(dir string) (*workDir, error) {
	root, err := testproc.OpenWorkDir(dir)
	if err != nil {
		return nil, err
	}
	return &workDir{
		root:           root,
		cisternMaildir: filepath.Join(root, "cistern", "Maildir"),
		cisternIndex:   filepath.Join(root, "cistern-index", "index.db"),
		dovecotMaildir: filepath.Join(root, "dovecot", "Maildir"),
		dovecotRun:     filepath.Join(root, "dovecot-run"),
		generatedMark:  filepath.Join(root, "generated"),
		copiedMark:     filepath.Join(root, "copied"),
	}, nil
}

// prepare makes (or reuses) the INBOX for Cistern and, when owner is not
// nil, its copy for Dovecot, owned by owner.
func (w *workDir) prepare(ctx context.Context, n int, owner *mailOwner, logf func(string, ...any)) (corpusInfo, error) {
	info, ok := w.readMark()
	if ok && info.Messages == n {
		logf("reusing the %d-message Maildir in %s", n, w.root)
	} else {
		// Whatever is there belongs to another size or an interrupted run.
		for _, p := range []string{w.generatedMark, w.copiedMark, filepath.Dir(w.cisternMaildir), filepath.Dir(w.cisternIndex), filepath.Dir(w.dovecotMaildir), w.dovecotRun} {
			if err := os.RemoveAll(p); err != nil {
				return info, err
			}
		}
		start := time.Now()
		logf("generating %d messages in %s (%d writers, no fsync)", n, w.cisternMaildir, writers())
		var err error
		if info, err = generateMaildir(ctx, w.cisternMaildir, n); err != nil {
			return info, err
		}
		logf("generated %d messages, %.1f MB, %d with %q, in %.1f s",
			info.Messages, float64(info.Bytes)/1e6, info.Hits, searchWord, time.Since(start).Seconds())
		mark := fmt.Sprintf("%d %d %d\n", info.Messages, info.Bytes, info.Hits)
		if err := os.WriteFile(w.generatedMark, []byte(mark), 0o644); err != nil {
			return info, err
		}
	}
	if owner == nil {
		return info, nil
	}
	if _, err := os.Stat(w.copiedMark); err == nil {
		return info, nil
	}
	for _, p := range []string{filepath.Dir(w.dovecotMaildir), w.dovecotRun} {
		if err := os.RemoveAll(p); err != nil {
			return info, err
		}
	}
	start := time.Now()
	logf("copying to %s for Dovecot, owned by %s", w.dovecotMaildir, owner.Name)
	copied, err := copyMaildir(ctx, w.cisternMaildir, w.dovecotMaildir, owner)
	if err != nil {
		return info, err
	}
	if copied != n {
		return info, fmt.Errorf("copied %d messages to %s, want %d", copied, w.dovecotMaildir, n)
	}
	logf("copied in %.1f s", time.Since(start).Seconds())
	return info, os.WriteFile(w.copiedMark, nil, 0o644)
}

func (w *workDir) readMark() (corpusInfo, bool) {
	var info corpusInfo
	b, err := os.ReadFile(w.generatedMark)
	if err != nil {
		return info, false
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return info, false
	}
	var errs [3]error
	info.Messages, errs[0] = strconv.Atoi(f[0])
	info.Bytes, errs[1] = strconv.ParseInt(f[1], 10, 64)
	info.Hits, errs[2] = strconv.Atoi(f[2])
	return info, errors.Join(errs[:]...) == nil
}

// makeMaildir makes dir with new/, cur/ and tmp/, owned by owner when it
// is not nil.
func makeMaildir(dir string, owner *mailOwner) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	for _, p := range []string{dir, filepath.Join(dir, "new"), filepath.Join(dir, "cur"), filepath.Join(dir, "tmp")} {
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		if owner != nil {
			if err := owner.Chown(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// forEach calls fn(i) for i in [0, n) on writers() goroutines and returns
// the first error; the others stop soon after it.
func forEach(ctx context.Context, n int, fn func(i int) error) error {
	var (
		next    atomic.Int64
		failed  atomic.Bool
		errOnce sync.Once
		first   error
		wg      sync.WaitGroup
	)
	for range writers() {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = fn(i)
				}
				if err != nil {
					errOnce.Do(func() { first = err })
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return first
}

// generateMaildir writes an n-message INBOX into a new Maildir at dir:
// every message straight into cur/ (no tmp/ step, no fsync: scratch data),
// its mtime (the INTERNALDATE of both servers) set to its Date.
func generateMaildir(ctx context.Context, dir string, n int) (corpusInfo, error) {
	if err := makeMaildir(dir, nil); err != nil {
		return corpusInfo{}, err
	}
	cur := filepath.Join(dir, "cur")
	var size, hits atomic.Int64
	err := forEach(ctx, n, func(i int) error {
		m := generate(i, n)
		p := filepath.Join(cur, m.name)
		if err := os.WriteFile(p, m.data, 0o600); err != nil {
			return err
		}
		if err := os.Chtimes(p, m.date, m.date); err != nil {
			return err
		}
		size.Add(int64(len(m.data)))
		if m.hit {
			hits.Add(1)
		}
		return nil
	})
	return corpusInfo{Messages: n, Bytes: size.Load(), Hits: int(hits.Load())}, err
}

// copyMaildir copies the messages of src's cur/ to a new Maildir at dst
// as cp -a would (same names, modes and mtimes), owned by owner, and
// returns how many it copied. Control files (a uidlist Cistern wrote) are
// not copied: Dovecot makes its own.
func copyMaildir(ctx context.Context, src, dst string, owner *mailOwner) (int, error) {
	if err := makeMaildir(dst, owner); err != nil {
		return 0, err
	}
	entries, err := os.ReadDir(filepath.Join(src, "cur"))
	if err != nil {
		return 0, err
	}
	err = forEach(ctx, len(entries), func(i int) error {
		return copyFile(filepath.Join(src, "cur", entries[i].Name()), filepath.Join(dst, "cur", entries[i].Name()), owner)
	})
	return len(entries), err
}

func copyFile(from, to string, owner *mailOwner) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	fi, err := os.Stat(from)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chtimes(to, fi.ModTime(), fi.ModTime()); err != nil {
		return err
	}
	return owner.Chown(to)
}
