package imaptorture

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

// Paces of the foreign writers other than the renamer.
const (
	foreignDeliveriesPerSecond = 10
	foreignDeletionsPerSecond  = 10
	// foreignMoveShare: one renamer step in this many moves a message
	// from new/ to cur/.
	foreignMoveShare = 10
	// headerPeekBytes is how much of a file is read to find its
	// Message-ID.
	headerPeekBytes = 16 << 10
)

// foreignWriters act on the Maildir as mutt and procmail do, without
// any lock: flag renames in cur/, new/ → cur/ moves, deliveries through
// tmp/, deletions. Before a removal they record it in the ledger (by
// Message-ID, read from the file), after a delivery they record it.
type foreignWriters struct {
	r    *run
	dir  string
	seed uint64
	// uid and gid own the Maildir; files we deliver are given to them
	// when we run as root (Dovecot's mail user must read them).
	uid, gid int
	chown    bool

	mu  sync.Mutex        // guards ids
	ids map[string]string // base name → Message-ID
}

func newForeignWriters(r *run, seed uint64) *foreignWriters {
	f := &foreignWriters{r: r, dir: r.cfg.Maildir, seed: seed, ids: make(map[string]string)}
	if fi, err := os.Stat(f.dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && st.Uid != 0 {
			f.uid, f.gid, f.chown = int(st.Uid), int(st.Gid), true
		}
	}
	return f
}

func (f *foreignWriters) run() {
	var wg sync.WaitGroup
	for _, w := range []struct {
		name string
		run  func() error
	}{{"foreign renamer", f.renamer}, {"foreign deliverer", f.deliverer}, {"foreign deleter", f.deleter}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(); err != nil {
				f.r.rec.failure(w.name, err)
			}
		}()
	}
	wg.Wait()
}

// idOf returns the Message-ID of the message with base name base, whose
// file is path now; "" when it cannot be read.
func (f *foreignWriters) idOf(base, path string) string {
	f.mu.Lock()
	id, ok := f.ids[base]
	f.mu.Unlock()
	if ok {
		return id
	}
	id = fileMessageID(path)
	if id != "" {
		f.mu.Lock()
		f.ids[base] = id
		f.mu.Unlock()
	}
	return id
}

// fileMessageID reads the Message-ID of the message file at path.
func fileMessageID(path string) string {
	fh, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer fh.Close()
	b := make([]byte, headerPeekBytes)
	n, _ := io.ReadFull(fh, b)
	return headerMessageID(b[:n])
}

// list reads the names in sub (new or cur), skipping hidden files.
func (f *foreignWriters) list(sub string) ([]string, error) {
	d, err := os.Open(filepath.Join(f.dir, sub))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	out := names[:0]
	for _, n := range names {
		if !strings.HasPrefix(n, ".") {
			out = append(out, n)
		}
	}
	return out, err
}

// paced calls step at rate per second until the run stops.
func (f *foreignWriters) paced(rate int, step func(i int) error) error {
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	for i := 0; !f.r.stopping(); i++ {
		<-tick.C
		if err := step(i); err != nil {
			return err
		}
	}
	return nil
}

// renamer toggles flags of random messages in cur/ and now and then
// moves one from new/ to cur/. Before it adds T (\Deleted) it records
// the mark.
func (f *foreignWriters) renamer() error {
	rng := rand.New(rand.NewPCG(f.seed, 1))
	var list []string
	cur, nw := filepath.Join(f.dir, "cur"), filepath.Join(f.dir, "new")
	return f.paced(f.r.cfg.RenamesPerSecond, func(i int) error {
		if i%foreignMoveShare == 0 {
			names, err := f.list("new")
			if err != nil {
				return err
			}
			if len(names) == 0 {
				return nil
			}
			n := names[rng.IntN(len(names))]
			start := time.Now()
			err = os.Rename(filepath.Join(nw, n), filepath.Join(cur, maildir.BaseName(n)+":2,"))
			f.r.rec.op("foreign move", start, time.Since(start), fsOutcome(err))
			return ignoreGone(err)
		}
		if i%50 == 1 || len(list) == 0 {
			names, err := f.list("cur")
			if err != nil {
				return err
			}
			list = names
			if len(list) == 0 {
				return nil
			}
		}
		k := rng.IntN(len(list))
		name, err := maildir.ParseName(list[k])
		if err != nil {
			return nil
		}
		letter := "DFRST"[rng.IntN(5)]
		flags := name.Flags.With(letter)
		id := f.idOf(name.Base, filepath.Join(cur, list[k]))
		if name.Flags.Has(letter) {
			flags = name.Flags.Without(letter)
		} else if letter == 'T' {
			if id == "" {
				return nil
			}
			f.r.led.foreignMarkDeleted(id, f.r.rec.since(time.Now()))
		}
		f.r.led.foreignFlagRename(id, f.r.rec.since(time.Now()))
		to := name.WithFlags(flags).Filename()
		start := time.Now()
		err = os.Rename(filepath.Join(cur, list[k]), filepath.Join(cur, to))
		f.r.rec.op("foreign rename", start, time.Since(start), fsOutcome(err))
		if err == nil {
			list[k] = to
		}
		return ignoreGone(err)
	})
}

// deliverer delivers new messages through tmp/ into new/, durably, and
// records each once it is in new/.
func (f *foreignWriters) deliverer() error {
	rng := rand.New(rand.NewPCG(f.seed, 2))
	var gen maildir.NameGen
	return f.paced(foreignDeliveriesPerSecond, func(int) error {
		if f.r.size.Load() > int64(2*f.r.cfg.Messages) {
			return nil
		}
		id := f.r.led.newMessageID()
		msg := newMessage(id, "foreign", rng)
		start := time.Now()
		f.r.led.created(id, "foreign", f.r.rec.since(start))
		f.r.led.wrote(id, msg, true)
		file := msg
		if rng.IntN(2) == 0 {
			file = bareLF(msg)
		}
		name, err := maildir.Deliver(f.dir, bytes.NewReader(file), maildir.DeliverOptions{Gen: &gen, Perm: 0o644})
		f.r.rec.op("foreign delivery", start, time.Since(start), fsOutcome(err))
		if err != nil {
			return err
		}
		if f.chown {
			if err := os.Chown(filepath.Join(f.dir, "new", name), f.uid, f.gid); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		f.mu.Lock()
		f.ids[maildir.BaseName(name)] = id
		f.mu.Unlock()
		f.r.led.acked(id, 0, 0, f.r.rec.since(time.Now()), nil)
		f.r.counts.foreignDelivered.Add(1)
		return nil
	})
}

// deleter unlinks random messages, recording each (by Message-ID)
// before the unlink; a file renamed under its feet is looked for again
// by its base name.
func (f *foreignWriters) deleter() error {
	rng := rand.New(rand.NewPCG(f.seed, 3))
	return f.paced(foreignDeletionsPerSecond, func(int) error {
		if f.r.size.Load() < int64(f.r.cfg.Messages/2) {
			return nil
		}
		sub := "cur"
		if rng.IntN(4) == 0 {
			sub = "new"
		}
		names, err := f.list(sub)
		if err != nil || len(names) == 0 {
			return err
		}
		n := names[rng.IntN(len(names))]
		base := maildir.BaseName(n)
		id := f.idOf(base, filepath.Join(f.dir, sub, n))
		if id == "" {
			return nil
		}
		start := time.Now()
		f.r.led.foreignDeleted(id, f.r.rec.since(start))
		err = os.Remove(filepath.Join(f.dir, sub, n))
		if errors.Is(err, fs.ErrNotExist) {
			err = f.removeBase(base)
		}
		f.r.rec.op("foreign deletion", start, time.Since(start), fsOutcome(err))
		if err == nil {
			f.r.counts.foreignDeleted.Add(1)
		}
		return ignoreGone(err)
	})
}

// removeBase unlinks the file with base name base wherever it is now.
func (f *foreignWriters) removeBase(base string) error {
	for try := 0; try < 20; try++ {
		for _, sub := range []string{"new", "cur"} {
			names, err := f.list(sub)
			if err != nil {
				return err
			}
			for _, n := range names {
				if maildir.BaseName(n) == base {
					if err := os.Remove(filepath.Join(f.dir, sub, n)); err == nil {
						return nil
					}
				}
			}
		}
	}
	return fs.ErrNotExist
}

// fsOutcome is how a foreign writer's file operation ended: a file or
// directory that another actor removed, or a name another actor took
// first (a folder made again before ours came back), is a refusal.
func fsOutcome(err error) outcome {
	switch {
	case err == nil:
		return outOK
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrExist):
		return outNo
	}
	return outFailed
}

// ignoreGone: a file that another writer renamed or removed first is
// part of the game, not an error.
func ignoreGone(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// diskMessage is one message file at the end of a run.
type diskMessage struct {
	id    string
	base  string
	flags maildir.Flags
}

// readMaildir reads the messages in new/ and cur/ of a quiet Maildir.
func readMaildir(dir string) []diskMessage {
	var out []diskMessage
	for _, sub := range []string{"new", "cur"} {
		d, err := os.Open(filepath.Join(dir, sub))
		if err != nil {
			continue
		}
		names, _ := d.Readdirnames(-1)
		d.Close()
		for _, n := range names {
			if strings.HasPrefix(n, ".") {
				continue
			}
			p, err := maildir.ParseName(n)
			if err != nil {
				continue
			}
			out = append(out, diskMessage{id: fileMessageID(filepath.Join(dir, sub, n)), base: p.Base, flags: p.Flags})
		}
	}
	return out
}

// diskKeywords reads dovecot-keywords (DESIGN.md §5): letter index →
// keyword name, lower case.
func diskKeywords(dir string) map[int]string {
	b, err := os.ReadFile(filepath.Join(dir, "dovecot-keywords"))
	if err != nil {
		return nil
	}
	out := make(map[int]string)
	for _, line := range strings.Split(string(b), "\n") {
		num, name, ok := strings.Cut(strings.TrimSpace(line), " ")
		i, err := strconv.Atoi(num)
		if ok && err == nil && i >= 0 && i < 26 && name != "" {
			out[i] = strings.ToLower(name)
		}
	}
	return out
}

// systemLetters maps Maildir flag letters to IMAP system flags.
var systemLetters = map[byte]string{'D': `\draft`, 'F': `\flagged`, 'R': `\answered`, 'S': `\seen`, 'T': `\deleted`}

// diskFlags renders a file's flags as canonFlags does; complete is false
// when a keyword letter has no name in keywords.
func diskFlags(flags maildir.Flags, keywords map[int]string) (string, bool) {
	var list []string
	complete := true
	for _, c := range flags.String() {
		switch {
		case c >= 'A' && c <= 'Z':
			if f, ok := systemLetters[byte(c)]; ok {
				list = append(list, f)
			}
		case c >= 'a' && c <= 'z':
			if k, ok := keywords[int(c-'a')]; ok {
				list = append(list, k)
			} else {
				complete = false
			}
		}
	}
	return canonFlags(list), complete
}

// systemOnly keeps the system flags of a canonFlags string.
func systemOnly(flags string) string {
	var out []string
	for _, f := range strings.Fields(flags) {
		if strings.HasPrefix(f, `\`) {
			out = append(out, f)
		}
	}
	return strings.Join(out, " ")
}
