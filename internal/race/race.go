// Package race measures the readdir race of DESIGN.md §1: how often a
// directory scan misses or doubles a message while a mail client renames
// files to change their flags, for a naive scan and for maildir.List.
//
// Run builds a scratch Maildir in an empty (or absent) directory:
//
//	path                          content
//	<dir>/cur/<base>:2,<flags>    Files small messages; <base> is a unique
//	                              name with Dovecot's ,S= and ,W= sizes
//	<dir>/new/, <dir>/tmp/        empty (tmp/ takes maildir.List's probe)
//
// The files are written straight into cur/ without fsync: they are scratch
// data, and a crash during a race loses nothing of value. Unless
// Config.Keep is set, Run removes every file it made, by name, when it is
// done (nothing else: a foreign file makes the removal of cur/ fail).
//
// Then, for Config.Duration, three kinds of goroutine run at once:
//
//   - Renamers (Config.Renamers of them) each own a share of the messages
//     and rename cur/<base>:2,<old> to cur/<base>:2,<new> with one of the
//     flags D F R S T toggled, as a mail client does for STORE. A renamer
//     is the only writer of its share, so it knows every current name
//     without reading the directory.
//   - The naive scanner reads cur/ as a mail server does: os.Open and
//     Readdirnames(-1), which calls getdents64 many times with an 8 KiB
//     buffer, like glibc's readdir.
//   - The cistern scanner calls maildir.List(cur/).
//
// Invariant checked: base names never change during the race, so every
// scan that is complete holds each base name exactly once (Checker). A
// missing base name is a phantom expunge for a server that trusted the
// scan. maildir.List may come back unproven (starved), and a wrong
// unproven listing breaks nothing; a proven listing that is wrong breaks
// the guarantee of DESIGN.md §2.1, and Result.BrokenProofs counts it.
//
// Concurrency: Run is safe to call concurrently for different
// directories. Each goroutine keeps its own counters and hands them over
// when it ends; nothing is shared during the race except the immutable
// truth.
package race

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

// Limits of a Config, so that a typo does not fill a disk or run for a
// day.
const (
	// MaxFiles bounds Config.Files: a million small files is about 4 GiB
	// of ext4 blocks and a 64 MiB directory.
	MaxFiles = 1_000_000
	// MaxDuration bounds Config.Duration.
	MaxDuration = time.Hour
	// MaxRenamers bounds Config.Renamers: more renamers than cores only
	// measure the scheduler.
	MaxRenamers = 256
	// maxExamples bounds Result.BrokenExamples and the base names listed
	// in each.
	maxExamples = 3
)

// ErrConfig is wrapped by the errors of Config.Validate.
var ErrConfig = errors.New("race: invalid configuration")

// ErrDirNotEmpty is returned by Run when Config.Dir holds anything: the
// race fills it with its own files and removes them afterwards, so it
// must not share it.
var ErrDirNotEmpty = errors.New("race: directory is not empty")

// Config describes one race. Dir, Files and Duration are required.
type Config struct {
	// Dir is the Maildir to create: absent or an empty directory.
	Dir string
	// Files is the number of messages in cur/, 1..MaxFiles.
	Files int
	// Duration is how long renamers and scanners run, up to MaxDuration.
	Duration time.Duration
	// Renamers is the number of renaming goroutines; 0 means 1. At most
	// min(Files, MaxRenamers).
	Renamers int
	// Keep leaves the Maildir in Dir after the run.
	Keep bool
	// Seed seeds the message sizes and the renamers' choices; 0 picks
	// one from the clock. Result.Seed is the one used.
	Seed uint64
}

// Validate checks the configuration against the limits.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: no directory", ErrConfig)
	case c.Files <= 0 || c.Files > MaxFiles:
		return fmt.Errorf("%w: files %d not in 1..%d", ErrConfig, c.Files, MaxFiles)
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return fmt.Errorf("%w: duration %v not in (0, %v]", ErrConfig, c.Duration, MaxDuration)
	case c.Renamers < 0 || c.Renamers > MaxRenamers:
		return fmt.Errorf("%w: renamers %d not in 1..%d", ErrConfig, c.Renamers, MaxRenamers)
	case c.Renamers > c.Files:
		return fmt.Errorf("%w: %d renamers for %d files", ErrConfig, c.Renamers, c.Files)
	}
	return nil
}

func (c Config) renamers() int {
	if c.Renamers == 0 {
		return 1
	}
	return c.Renamers
}

// Result is what a race measured. Counts of entries are summed over scans.
type Result struct {
	// FS is the filesystem and its proofs (maildir.Capabilities.String).
	FS       string  `json:"fs"`
	Files    int     `json:"files"`
	Seconds  float64 `json:"seconds"`         // the configured duration
	Elapsed  float64 `json:"elapsed_seconds"` // measured, from start to the last scan's end
	Renamers int     `json:"renamers"`
	Seed     uint64  `json:"seed"` // Config.Seed, or the one picked

	Renames        int64   `json:"renames"`
	RenamesPerSec  float64 `json:"renames_per_second"`
	NaiveScans     int64   `json:"naive_scans"`
	NaiveWrong     int64   `json:"naive_wrong_scans"`
	NaivePhantom   int64   `json:"naive_phantom_expunges"` // = NaiveMissing: a naive server trusts every scan
	NaiveMissing   int64   `json:"naive_missing_entries"`
	NaiveDoubled   int64   `json:"naive_doubled_entries"`
	NaiveUnknown   int64   `json:"naive_unknown_entries"`
	NaiveScansPerS float64 `json:"naive_scans_per_second"`

	CisternScans    int64            `json:"cistern_scans"`
	CisternWrong    int64            `json:"cistern_wrong_scans"`
	CisternPhantom  int64            `json:"cistern_phantom_expunges"` // missing entries of proven listings
	CisternMissing  int64            `json:"cistern_missing_entries"`  // of all listings, proven or not
	CisternDoubled  int64            `json:"cistern_doubled_entries"`
	CisternUnknown  int64            `json:"cistern_unknown_entries"`
	CisternUnproven int64            `json:"cistern_unproven_scans"`
	CisternProofs   map[string]int64 `json:"cistern_proofs"` // proof name -> proven listings
	CisternRetries  int64            `json:"cistern_retries"`
	// BrokenProofs counts proven listings that were wrong in any way:
	// each one is a broken guarantee.
	BrokenProofs     int64           `json:"cistern_broken_proofs"`
	BrokenExamples   []BrokenListing `json:"cistern_broken_examples,omitempty"`
	CisternScansPerS float64         `json:"cistern_scans_per_second"`
}

// BrokenListing describes a proven listing that was wrong.
type BrokenListing struct {
	Proof   string   `json:"proof"`
	Tries   int      `json:"tries"`
	Entries int      `json:"entries"`
	Verdict Verdict  `json:"verdict"`
	Missing []string `json:"missing,omitempty"` // the first few missing base names
}

// BrokenGuarantee reports whether a proven listing was wrong: a phantom
// expunge (or a doubled message) that Cistern would have believed.
func (r *Result) BrokenGuarantee() bool {
	return r.CisternPhantom > 0 || r.BrokenProofs > 0
}

// message is one file of the race as its renamer knows it.
type message struct {
	base  string
	flags maildir.Flags
}

func (m message) filename() string { return maildir.FilenameWithFlags(m.base, m.flags) }

// raceFlags are the letters a renamer toggles: the system flags a client
// changes with STORE.
var raceFlags = [...]byte{maildir.FlagDraft, maildir.FlagFlagged, maildir.FlagReplied, maildir.FlagSeen, maildir.FlagTrashed}

// Run builds the Maildir, races renamers against the two scanners for
// cfg.Duration, removes the Maildir (unless cfg.Keep) and returns the
// counts. When ctx is cancelled during the race, Run stops early and
// returns what it measured together with ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	createdDir, err := prepareDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cur := filepath.Join(cfg.Dir, maildir.Cur)
	msgs := make([]message, cfg.Files)
	res, raceErr := func() (*Result, error) {
		if err := maildir.Create(cfg.Dir, 0o700); err != nil {
			return nil, err
		}
		caps, err := maildir.Detect(cur, filepath.Join(cfg.Dir, maildir.Tmp))
		if err != nil {
			return nil, err
		}
		if cfg.Seed == 0 {
			cfg.Seed = uint64(time.Now().UnixNano()) | 1
		}
		if err := populate(ctx, cur, msgs, cfg.Seed); err != nil {
			return nil, err
		}
		res := &Result{FS: caps.String(), Files: cfg.Files, Seconds: cfg.Duration.Seconds(), Renamers: cfg.renamers(), Seed: cfg.Seed}
		return res, race(ctx, cfg, cur, msgs, res)
	}()
	if !cfg.Keep {
		if err := cleanup(cfg.Dir, createdDir, msgs); err != nil && raceErr == nil {
			raceErr = err
		}
	}
	return res, raceErr
}

// prepareDir makes sure dir exists and is empty; created reports that Run
// made it (and so removes it afterwards).
func prepareDir(dir string) (created bool, err error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, err
		}
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && len(names) == 0 && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("race: %s: %w", dir, err)
	}
	if len(names) > 0 {
		return false, fmt.Errorf("%w: %s holds %q; give an empty or absent directory", ErrDirNotEmpty, dir, names[0])
	}
	return false, nil
}

// populate names the messages and writes them into cur/ in parallel.
// The base names come from maildir.NameGen, so they are the names a
// delivery would make, with sizes.
func populate(ctx context.Context, cur string, msgs []message, seed uint64) error {
	var gen maildir.NameGen
	now := time.Now()
	bodies := make([][]byte, len(msgs))
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range msgs {
		body := []byte("From: race@cistern.invalid\nTo: race@cistern.invalid\nSubject: race message " +
			strconv.Itoa(i) + "\n\nA scratch message of cistern race.\n")
		lines := 0
		for _, b := range body {
			if b == '\n' {
				lines++
			}
		}
		bodies[i] = body
		msgs[i].base = maildir.WithSizes(gen.New(now), int64(len(body)), int64(len(body)+lines))
		for _, c := range raceFlags {
			if rng.IntN(2) == 0 {
				msgs[i].flags = msgs[i].flags.With(c)
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), 8)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k, i := 0, w; i < len(msgs); k, i = k+1, i+workers {
				if k%1024 == 0 && ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				if err := writeNew(filepath.Join(cur, msgs[i].filename()), bodies[i]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeNew writes a new file without fsync: race files are scratch data.
func writeNew(path string, body []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// cleanup removes the files of msgs (ignoring those never made), then the
// Maildir's directories, then dir itself when Run created it.
func cleanup(dir string, createdDir bool, msgs []message) error {
	cur := filepath.Join(dir, maildir.Cur)
	var errs []error
	for _, m := range msgs {
		if m.base == "" {
			continue
		}
		if err := os.Remove(filepath.Join(cur, m.filename())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			if len(errs) > 10 {
				break
			}
		}
	}
	for _, sub := range []string{maildir.Cur, maildir.New, maildir.Tmp} {
		if err := os.Remove(filepath.Join(dir, sub)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if createdDir {
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("race: cleaning up %s: %w", dir, errors.Join(errs...))
	}
	return nil
}

// scanStats are one scanner's counters.
type scanStats struct {
	scans, wrong, missing, doubled, unknown int64
	// cistern only
	phantom, unproven, retries, broken int64
	proofs                             map[string]int64
	examples                           []BrokenListing
}

func (s *scanStats) add(v Verdict) {
	s.scans++
	if v.Wrong() {
		s.wrong++
	}
	s.missing += int64(v.Missing)
	s.doubled += int64(v.Doubled)
	s.unknown += int64(v.Unknown)
}

// race runs the renamers and scanners until cfg.Duration passes or ctx
// is done, and fills res.
func race(ctx context.Context, cfg Config, cur string, msgs []message, res *Result) error {
	bases := make([]string, len(msgs))
	for i, m := range msgs {
		bases[i] = m.base
	}
	naiveCheck := NewChecker(bases)
	cisternCheck := naiveCheck.Clone()

	raceCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var stop atomic.Bool
	context.AfterFunc(raceCtx, func() { stop.Store(true) })

	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		stop.Store(true)
	}

	n := cfg.renamers()
	renames := make([]int64, n)
	for r := range n {
		wg.Go(func() {
			count, err := rename(&stop, cur, msgs, r, n, rand.New(rand.NewPCG(cfg.Seed, uint64(r)+2)))
			renames[r] = count
			if err != nil {
				fail(err)
			}
		})
	}
	var naive, cistern scanStats
	cistern.proofs = make(map[string]int64)
	var naiveEnd, cisternEnd time.Time
	start := time.Now()
	wg.Go(func() {
		defer func() { naiveEnd = time.Now() }()
		for !stop.Load() {
			names, err := readdirNaive(cur)
			if err != nil {
				fail(err)
				return
			}
			naive.add(naiveCheck.Check(names))
		}
	})
	wg.Go(func() {
		defer func() { cisternEnd = time.Now() }()
		for !stop.Load() {
			l, err := maildir.List(cur, maildir.ListOptions{})
			if err != nil {
				fail(err)
				return
			}
			v := cisternCheck.Check(l.Names)
			cistern.add(v)
			cistern.retries += int64(l.Tries - 1)
			if !l.Proof.Proven() {
				cistern.unproven++
				continue
			}
			cistern.proofs[l.Proof.String()]++
			cistern.phantom += int64(v.Missing)
			if v.Wrong() {
				cistern.broken++
				if len(cistern.examples) < maxExamples {
					cistern.examples = append(cistern.examples, BrokenListing{
						Proof: l.Proof.String(), Tries: l.Tries, Entries: len(l.Names),
						Verdict: v, Missing: cisternCheck.MissingBases(maxExamples),
					})
				}
			}
		}
	})
	wg.Wait()
	stopped := time.Now()

	for _, c := range renames {
		res.Renames += c
	}
	res.Elapsed = stopped.Sub(start).Seconds()
	res.RenamesPerSec = perSecond(res.Renames, res.Elapsed)
	res.NaiveScans, res.NaiveWrong = naive.scans, naive.wrong
	res.NaiveMissing, res.NaivePhantom = naive.missing, naive.missing
	res.NaiveDoubled, res.NaiveUnknown = naive.doubled, naive.unknown
	res.NaiveScansPerS = perSecond(naive.scans, naiveEnd.Sub(start).Seconds())
	res.CisternScans, res.CisternWrong = cistern.scans, cistern.wrong
	res.CisternPhantom, res.CisternMissing = cistern.phantom, cistern.missing
	res.CisternDoubled, res.CisternUnknown = cistern.doubled, cistern.unknown
	res.CisternUnproven, res.CisternProofs, res.CisternRetries = cistern.unproven, cistern.proofs, cistern.retries
	res.BrokenProofs, res.BrokenExamples = cistern.broken, cistern.examples
	res.CisternScansPerS = perSecond(cistern.scans, cisternEnd.Sub(start).Seconds())

	if firstErr != nil {
		return firstErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func perSecond(n int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(n) / secs
}

// rename is renamer r of n: it owns the messages whose index is r modulo
// n and toggles one random flag of a random one of them until stop. msgs
// entries it owns are updated to their current names.
func rename(stop *atomic.Bool, cur string, msgs []message, r, n int, rng *rand.Rand) (int64, error) {
	owned := (len(msgs) - r + n - 1) / n
	var count int64
	for !stop.Load() {
		m := &msgs[r+n*rng.IntN(owned)]
		from := filepath.Join(cur, m.filename())
		next := *m
		next.flags ^= flagBits[rng.IntN(len(flagBits))]
		if err := os.Rename(from, filepath.Join(cur, next.filename())); err != nil {
			// ENOENT here means another program renamed our file: the
			// race's directory is not ours alone.
			return count, err
		}
		*m = next
		count++
	}
	return count, nil
}

// flagBits are raceFlags as Flags values.
var flagBits = func() []maildir.Flags {
	var out []maildir.Flags
	for _, c := range raceFlags {
		out = append(out, maildir.Flags(0).With(c))
	}
	return out
}()

// readdirNaive lists dir as a mail server does: one open, then readdir
// until the end, trusting the result.
func readdirNaive(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
