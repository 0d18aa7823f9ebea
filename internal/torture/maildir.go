// Package torture runs adversarial tests of Cistern's guarantees
// (DESIGN.md §2) and checks what every participant was told against the
// ground truth.
//
// # torture maildir
//
// One Maildir, no global lock. Foreign writers that never take Cistern's
// lock run as goroutines of the parent process:
//
//	writer     does
//	renamer    random flag changes in cur/, and new/ → cur/ moves
//	deliverer  tmp/ → new/ deliveries (fsynced), logged after the rename
//	deleter    unlinks, logged before the unlink (the intent)
//
// Syncers are separate processes (the cistern binary, "torture
// maildir-syncer"), each with its own store.Mailbox syncing in a loop.
// Every participant appends its events to one shared log opened with
// O_APPEND, one write(2) per batch, so the order of lines in the file is
// the order in which the events happened:
//
//	line               written
//	N <base>           by a deliverer, after its message is in new/
//	D <base>           by a deleter, before it unlinks the message
//	U <id> <uid> <base> by syncer id, when its state gains a message
//	X <id> <uid> <base> by syncer id, when it reports an expunge
//
// When the time is up the writers stop, each syncer syncs until a sync is
// proven with no suspects left and prints its final state as JSON, and
// the checker reads the log and the Maildir:
//
//	violation        when
//	phantom expunge  an X line with no D line for that base before it, or
//	                 for a base whose file still exists at the end
//	uid change       one syncer saw one base with two UIDs
//	duplicate uid    two syncers gave one base different UIDs
//	reused uid       one UID was given to two bases
//	lost message     a message on disk at the end missing from a syncer's
//	                 final state
//	flag mismatch    a syncer's final flags differ from the file name's
//	stale message    a syncer's final state holds a message whose file is
//	                 gone
package torture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

// MaildirConfig configures a torture maildir run.
type MaildirConfig struct {
	// Dir is the Maildir to create; it must be absent or empty.
	Dir        string
	Messages   int
	Duration   time.Duration
	Renamers   int
	Deliverers int
	Deleters   int
	Syncers    int
	// SyncerCommand is the command line that starts one syncer process;
	// the run appends the syncer flags (--dir, --log, --id ...).
	SyncerCommand []string
	// UnsafeTrustReaddir runs the syncers with the expunge rule off
	// (plain readdir, trusted): the checker must then see phantom
	// expunges. Never a way to run Cistern.
	UnsafeTrustReaddir bool
	// NoAtomicRead makes the syncers prove listings by stable timestamps
	// only, as on btrfs, even where one getdents64 call is atomic.
	NoAtomicRead bool
	// Stderr receives the syncers' logs when non-nil.
	Stderr io.Writer
}

// Rates of the foreign writers that are not free-running, so that a run
// of any length keeps a mailbox of about the size it started with.
const (
	deliveriesPerSecond = 100 // per deliverer
	deletionsPerSecond  = 100 // per deleter
	moveShare           = 10  // one renamer step in this many is a new/ → cur/ move
	exampleLimit        = 20  // violations described in the result
	finalSyncTimeout    = 2 * time.Minute
)

// MaildirResult is what a run saw; the counters of violations must all
// be zero.
type MaildirResult struct {
	FS              string   `json:"fs"`
	Messages        int      `json:"messages"`
	Seconds         float64  `json:"seconds"`
	PhantomExpunges int      `json:"phantom_expunges"`
	UIDChanges      int      `json:"uid_changes"`
	DuplicateUIDs   int      `json:"duplicate_uids"`
	ReusedUIDs      int      `json:"reused_uids"`
	LostMessages    int      `json:"lost_messages"`
	FlagMismatches  int      `json:"flag_mismatches"`
	StaleMessages   int      `json:"stale_messages"`
	Renames         int64    `json:"renames"`
	Moves           int64    `json:"moves"`
	Deliveries      int64    `json:"deliveries"`
	Deletions       int64    `json:"deletions"`
	Syncs           int64    `json:"syncs"`
	ProvenSyncs     int64    `json:"proven_syncs"`
	SkippedSyncs    int64    `json:"skipped_syncs"`
	Expunges        int64    `json:"expunges"`
	MaxSuspects     int      `json:"max_suspects"`
	FinalMessages   int      `json:"final_messages"`
	ExpungeRule     bool     `json:"expunge_rule"`
	AtomicRead      bool     `json:"atomic_read"`
	Examples        []string `json:"examples,omitempty"`
}

// Violations is the number of broken guarantees.
func (r *MaildirResult) Violations() int {
	return r.PhantomExpunges + r.UIDChanges + r.DuplicateUIDs + r.ReusedUIDs + r.LostMessages + r.FlagMismatches + r.StaleMessages
}

func (r *MaildirResult) example(format string, args ...any) {
	if len(r.Examples) < exampleLimit {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// eventLog is the shared O_APPEND log.
type eventLog struct {
	f *os.File
}

func openEventLog(path string) (*eventLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &eventLog{f: f}, nil
}

// write appends b with one write(2), which O_APPEND makes atomic and
// ordered with every other append to the file.
func (l *eventLog) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := l.f.Write(b)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	return err
}

func (l *eventLog) Close() error { return l.f.Close() }

// RunMaildir runs the test and checks the outcome. An error means the run
// could not be made; violations are counted in the result.
func RunMaildir(ctx context.Context, cfg MaildirConfig) (*MaildirResult, error) {
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	if err := prepareDir(cfg.Dir, cfg.Messages); err != nil {
		return nil, err
	}
	caps, err := maildir.Detect(filepath.Join(cfg.Dir, maildir.Cur), filepath.Join(cfg.Dir, maildir.Tmp))
	if err != nil {
		return nil, err
	}
	work := filepath.Join(cfg.Dir, "cistern-torture")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, err
	}
	logPath := filepath.Join(work, "events.log")
	elog, err := openEventLog(logPath)
	if err != nil {
		return nil, err
	}
	defer elog.Close()

	res := &MaildirResult{FS: caps.String(), Messages: cfg.Messages, ExpungeRule: !cfg.UnsafeTrustReaddir, AtomicRead: caps.AtomicRead && !cfg.NoAtomicRead}
	syncers, err := startSyncers(ctx, cfg, logPath)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, s := range syncers {
			s.kill()
		}
	}()

	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	var counters struct{ renames, moves, deliveries, deletions atomic.Int64 }
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Renamers+cfg.Deliverers+cfg.Deleters)
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && wctx.Err() == nil {
				errc <- err
				cancel()
			}
		}()
	}
	for i := 0; i < cfg.Renamers; i++ {
		seed := uint64(i + 1)
		run(func() error { return renamer(wctx, cfg.Dir, seed, &counters.renames, &counters.moves) })
	}
	for i := 0; i < cfg.Deliverers; i++ {
		run(func() error { return deliverer(wctx, cfg.Dir, elog, &counters.deliveries) })
	}
	for i := 0; i < cfg.Deleters; i++ {
		seed := uint64(1000 + i)
		run(func() error { return deleter(wctx, cfg.Dir, elog, seed, &counters.deletions) })
	}
	<-wctx.Done()
	wg.Wait()
	cancel()
	res.Seconds = time.Since(start).Seconds()
	close(errc)
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("torture: foreign writer: %w", err)
	}
	res.Renames, res.Moves = counters.renames.Load(), counters.moves.Load()
	res.Deliveries, res.Deletions = counters.deliveries.Load(), counters.deletions.Load()

	finals := make([]*SyncerFinal, len(syncers))
	for i, s := range syncers {
		f, err := s.finish()
		if err != nil {
			return nil, fmt.Errorf("torture: syncer %d: %w", i, err)
		}
		finals[i] = f
		res.Syncs += f.Syncs
		res.ProvenSyncs += f.Proven
		res.SkippedSyncs += f.Skipped
		res.Expunges += f.Expunges
		res.MaxSuspects = max(res.MaxSuspects, f.MaxSuspects)
	}
	if err := check(cfg.Dir, logPath, finals, res); err != nil {
		return nil, err
	}
	return res, nil
}

func validate(cfg *MaildirConfig) error {
	switch {
	case cfg.Dir == "":
		return errors.New("torture: no directory")
	case cfg.Messages < 0 || cfg.Messages > 1_000_000:
		return errors.New("torture: messages must be 0..1000000")
	case cfg.Duration <= 0 || cfg.Duration > 24*time.Hour:
		return errors.New("torture: duration must be positive and at most 24h")
	case cfg.Syncers < 1 || cfg.Syncers > 64:
		return errors.New("torture: syncers must be 1..64")
	case cfg.Renamers < 0 || cfg.Deliverers < 0 || cfg.Deleters < 0 || cfg.Renamers+cfg.Deliverers+cfg.Deleters > 256:
		return errors.New("torture: writers must be 0..256 in all")
	case len(cfg.SyncerCommand) == 0:
		return errors.New("torture: no syncer command")
	}
	return nil
}

// prepareDir makes the Maildir with n messages in cur/, seen.
func prepareDir(dir string, n int) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("torture: %s is not empty", dir)
	}
	if err := maildir.Create(dir, 0o700); err != nil {
		return err
	}
	var gen maildir.NameGen
	now := time.Now()
	for i := 0; i < n; i++ {
		body := messageBody(i)
		base := maildir.WithSizes(gen.New(now), int64(len(body)), int64(len(body)))
		name := maildir.FilenameWithFlags(base, maildir.Flags(0).With(maildir.FlagSeen))
		if err := os.WriteFile(filepath.Join(dir, maildir.Cur, name), body, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func messageBody(i int) []byte {
	return []byte(fmt.Sprintf("From: torture@example.org\r\nSubject: message %d\r\nMessage-ID: <%d.%d@torture.example.org>\r\n\r\nbody %d\r\n", i, i, time.Now().UnixNano(), i))
}

// names lists a directory with plain readdir, as foreign programs do.
func names(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ns, err := d.Readdirnames(-1)
	return ns, err
}

var flagLetters = []byte{'D', 'F', 'R', 'S', 'T'}

// renamer changes flags of random files in cur/ and moves files from new/
// to cur/, as mail clients and programs like mutt do, without any lock.
func renamer(ctx context.Context, dir string, seed uint64, renames, moves *atomic.Int64) error {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	cur, nw := filepath.Join(dir, maildir.Cur), filepath.Join(dir, maildir.New)
	var list []string
	for step := 0; ctx.Err() == nil; step++ {
		if step%moveShare == 0 {
			ns, err := names(nw)
			if err != nil {
				return err
			}
			for _, n := range ns {
				if n[0] == '.' {
					continue
				}
				err := os.Rename(filepath.Join(nw, n), filepath.Join(cur, maildir.BaseName(n)+":2,"))
				if err == nil {
					moves.Add(1)
					break
				}
			}
			continue
		}
		if step%200 == 1 || len(list) == 0 {
			ns, err := names(cur)
			if err != nil {
				return err
			}
			list = ns
			if len(list) == 0 {
				time.Sleep(time.Millisecond)
				continue
			}
		}
		k := rng.IntN(len(list))
		n, err := maildir.ParseName(list[k])
		if err != nil {
			continue
		}
		flags := n.Flags ^ maildir.Flags(0).With(flagLetters[rng.IntN(len(flagLetters))])
		to := n.WithFlags(flags).Filename()
		if err := os.Rename(filepath.Join(cur, list[k]), filepath.Join(cur, to)); err == nil {
			renames.Add(1)
			list[k] = to
		}
	}
	return nil
}

// deliverer writes messages tmp/ → new/ durably and logs each after it
// is in new/.
func deliverer(ctx context.Context, dir string, elog *eventLog, count *atomic.Int64) error {
	tick := time.NewTicker(time.Second / deliveriesPerSecond)
	defer tick.Stop()
	var gen maildir.NameGen
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		name, err := maildir.Deliver(dir, bytes.NewReader(messageBody(i)), maildir.DeliverOptions{Gen: &gen})
		if err != nil {
			return err
		}
		if err := elog.write([]byte("N " + maildir.BaseName(name) + "\n")); err != nil {
			return err
		}
		count.Add(1)
	}
}

// deleter unlinks random messages, logging the intent first. A message
// renamed under its feet is looked for again, so that a logged intent
// ends in a deletion whenever the file can still be found.
func deleter(ctx context.Context, dir string, elog *eventLog, seed uint64, count *atomic.Int64) error {
	rng := rand.New(rand.NewPCG(seed, 0xde1))
	tick := time.NewTicker(time.Second / deletionsPerSecond)
	defer tick.Stop()
	var list []string
	var sub string
	for step := 0; ; step++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if step%50 == 0 || len(list) == 0 {
			sub = maildir.Cur
			if rng.IntN(4) == 0 {
				sub = maildir.New
			}
			ns, err := names(filepath.Join(dir, sub))
			if err != nil {
				return err
			}
			list = slices.DeleteFunc(ns, func(n string) bool { return n[0] == '.' })
			if len(list) == 0 {
				continue
			}
		}
		k := rng.IntN(len(list))
		name := list[k]
		list[k] = list[len(list)-1]
		list = list[:len(list)-1]
		base := maildir.BaseName(name)
		if err := elog.write([]byte("D " + base + "\n")); err != nil {
			return err
		}
		if os.Remove(filepath.Join(dir, sub, name)) == nil || removeBase(dir, base) {
			count.Add(1)
		}
	}
}

// removeBase unlinks the file with base name base wherever it is now.
func removeBase(dir, base string) bool {
	for try := 0; try < 50; try++ {
		for _, sub := range []string{maildir.New, maildir.Cur} {
			ns, err := names(filepath.Join(dir, sub))
			if err != nil {
				continue
			}
			for _, n := range ns {
				if maildir.BaseName(n) == base && os.Remove(filepath.Join(dir, sub, n)) == nil {
					return true
				}
			}
		}
	}
	return false
}

// syncerProc is one running syncer process.
type syncerProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bytes.Buffer
	stderr *tailBuffer
	done   chan error
}

// tailBuffer keeps the last bytes written to it: a syncer's last words.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 4 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

func startSyncers(ctx context.Context, cfg MaildirConfig, logPath string) ([]*syncerProc, error) {
	var out []*syncerProc
	for i := 0; i < cfg.Syncers; i++ {
		args := append(slices.Clone(cfg.SyncerCommand[1:]), "--dir", cfg.Dir, "--log", logPath, "--id", strconv.Itoa(i))
		if cfg.UnsafeTrustReaddir {
			args = append(args, "--unsafe-trust-readdir")
		}
		if cfg.NoAtomicRead {
			args = append(args, "--no-atomic-read")
		}
		cmd := exec.Command(cfg.SyncerCommand[0], args...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return out, err
		}
		s := &syncerProc{cmd: cmd, stdin: stdin, stdout: new(bytes.Buffer), stderr: new(tailBuffer), done: make(chan error, 1)}
		cmd.Stdout = s.stdout
		cmd.Stderr = s.stderr
		if cfg.Stderr != nil {
			cmd.Stderr = io.MultiWriter(s.stderr, cfg.Stderr)
		}
		if err := cmd.Start(); err != nil {
			return out, fmt.Errorf("torture: starting syncer: %w", err)
		}
		go func() { s.done <- cmd.Wait() }()
		out = append(out, s)
	}
	return out, nil
}

// finish tells the syncer to end (closing its stdin) and reads its final
// state.
func (s *syncerProc) finish() (*SyncerFinal, error) {
	s.stdin.Close()
	select {
	case err := <-s.done:
		if err != nil {
			return nil, fmt.Errorf("exited: %w: %s", err, s.stderr)
		}
	case <-time.After(finalSyncTimeout + 30*time.Second):
		s.kill()
		return nil, errors.New("did not finish")
	}
	var f SyncerFinal
	if err := json.Unmarshal(s.stdout.Bytes(), &f); err != nil {
		return nil, fmt.Errorf("reading final state: %w", err)
	}
	return &f, nil
}

func (s *syncerProc) kill() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
	}
}

// check reads the event log and the final states against the Maildir.
func check(dir, logPath string, finals []*SyncerFinal, res *MaildirResult) error {
	// The Maildir is quiet now: a plain read is exact.
	onDisk := make(map[string]string) // base -> flags
	for _, sub := range []string{maildir.New, maildir.Cur} {
		ns, err := names(filepath.Join(dir, sub))
		if err != nil {
			return err
		}
		for _, n := range ns {
			p, err := maildir.ParseName(n)
			if err != nil {
				continue
			}
			onDisk[p.Base] = p.Flags.String()
		}
	}
	res.FinalMessages = len(onDisk)

	f, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	intent := make(map[string]bool)
	perSyncer := make(map[string]map[string]uint32) // syncer -> base -> uid
	global := make(map[string]uint32)               // base -> first uid
	owner := make(map[uint32]string)                // uid -> base
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		fs := strings.Fields(sc.Text())
		switch {
		case len(fs) == 2 && fs[0] == "D":
			intent[fs[1]] = true
		case len(fs) == 2 && fs[0] == "N":
		case len(fs) == 4 && (fs[0] == "U" || fs[0] == "X"):
			id, base := fs[1], fs[3]
			u, err := strconv.ParseUint(fs[2], 10, 32)
			if err != nil {
				return fmt.Errorf("torture: event log line %d: %q", line, sc.Text())
			}
			uid := uint32(u)
			if fs[0] == "X" {
				if !intent[base] {
					res.PhantomExpunges++
					res.example("phantom expunge: syncer %s expunged UID %d (%s) that nobody had deleted", id, uid, base)
				} else if _, still := onDisk[base]; still {
					res.PhantomExpunges++
					res.example("phantom expunge: syncer %s expunged UID %d (%s), still on disk", id, uid, base)
				}
				continue
			}
			m := perSyncer[id]
			if m == nil {
				m = make(map[string]uint32)
				perSyncer[id] = m
			}
			if old, ok := m[base]; ok && old != uid {
				res.UIDChanges++
				res.example("uid change: syncer %s saw %s as UID %d, then %d", id, base, old, uid)
			}
			m[base] = uid
			if g, ok := global[base]; !ok {
				global[base] = uid
			} else if g != uid {
				res.DuplicateUIDs++
				res.example("duplicate uid: %s is UID %d and UID %d", base, g, uid)
			}
			if b, ok := owner[uid]; !ok {
				owner[uid] = base
			} else if b != base {
				res.ReusedUIDs++
				res.example("reused uid: UID %d is %s and %s", uid, b, base)
			}
		default:
			return fmt.Errorf("torture: event log line %d: %q", line, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}

	for _, fin := range finals {
		have := make(map[string]bool, len(fin.Messages))
		for _, m := range fin.Messages {
			have[m.Base] = true
			flags, ok := onDisk[m.Base]
			switch {
			case !ok:
				res.StaleMessages++
				res.example("stale: syncer %d still has UID %d (%s), whose file is gone", fin.ID, m.UID, m.Base)
			case flags != m.Flags:
				res.FlagMismatches++
				res.example("flags: syncer %d has UID %d as %q, the file says %q", fin.ID, m.UID, m.Flags, flags)
			}
			if g, ok := global[m.Base]; ok && g != m.UID {
				res.DuplicateUIDs++
				res.example("duplicate uid: syncer %d ends with %s as UID %d, first seen as %d", fin.ID, m.Base, m.UID, g)
			}
		}
		for base := range onDisk {
			if !have[base] {
				res.LostMessages++
				res.example("lost: %s is on disk but not in syncer %d's final state", base, fin.ID)
			}
		}
	}
	return nil
}
