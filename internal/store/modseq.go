package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/maildir"
)

// Modification sequences (RFC 7162): the design and its proof are in
// doc.go, "Modification sequences".

// ModSeqFileName is the high-water mark of a mailbox's modseqs, in the
// Maildir directory itself: every modseq any process handed out for the
// mailbox is below the number it holds. It is no message (it is not in
// new/ or cur/), no Maildir++ folder (no leading dot) and no Dovecot
// file (no dovecot- prefix).
const ModSeqFileName = "cistern-modseq"

// modseqTmpName is where a reservation writes the next mark before it
// renames it into place; only the holder of the mark's flock writes it,
// so one fixed name is enough, and a crash leaves at most this one file
// behind, overwritten by the next reservation.
const modseqTmpName = ModSeqFileName + ".tmp"

// modseqBlock is how many modseqs one reservation sets aside: one
// durable write (two fsyncs) per modseqBlock changes.
const modseqBlock = 4096

// maxModSeq is RFC 7162's largest mod-sequence value (2^63-1).
const maxModSeq = 1<<63 - 1

// modseqMaxWait bounds how far ahead of the clock (in microseconds) the
// counter may be and still wait for the clock to catch up before handing
// out a modseq; further ahead, the clock went back (or the mark was
// written by a machine whose clock is ahead): the modseq is handed out
// at once, monotonic through the mark, and that is logged.
const modseqMaxWait = 4 * modseqBlock

// modseqClock is the time floor's clock, in microseconds since the Unix
// epoch; tests replace it.
var modseqClock = func() uint64 { return uint64(time.Now().UnixMicro()) }

// modseqSleep waits d; tests replace it.
var modseqSleep = time.Sleep

// testHookModSeqReserved, set by tests, runs after a reservation is on
// disk and before any of its modseqs is handed out; testHookModSeq runs
// for every modseq handed out.
var (
	testHookModSeqReserved func(m *Mailbox, lo, hi uint64)
	testHookModSeq         func(m *Mailbox, v uint64)
)

// testModSeqNoMark and testModSeqNoFloor, set by tests before a Mailbox
// is opened, switch off its mark or its time floor (modseqCounter), to
// show that the tests fail without either.
var testModSeqNoMark, testModSeqNoFloor bool

// modseqCounter hands out the modseqs of one Mailbox. Guarded by wmu.
type modseqCounter struct {
	// next is the next modseq to hand out; limit is the end of the block
	// reserved on disk (exclusive). next == limit: reserve first.
	next, limit uint64
	// op is the modseq of the changes the writer that holds wmu is making
	// and has not published yet (0: none taken): every message it changes
	// and every UID it expunges is stamped with it; publish ends it.
	op uint64
	// clockLogged, markLogged: the clock behind the counter, and a mark
	// that could not be read or written, were logged.
	clockLogged, markLogged bool
	// disabled (tests only): no mark is read or written; floorOff: no
	// time floor. Each shows that the tests fail without it.
	disabled, floorOff bool
}

// modSeqLocked returns the modseq of the change under way, taking the
// next one when the change has none yet. Taking one may reserve a block
// (a durable write of the mark) and may wait for the clock (at most
// modseqMaxWait microseconds); mu is let go for both.
//
// Held: wmu, mu; lets go of mu while it reserves or waits.
func (m *Mailbox) modSeqLocked() uint64 {
	if m.ms.op != 0 {
		return m.ms.op
	}
	if m.ms.next >= m.ms.limit {
		m.unlocked(m.reserveModSeqs)
	}
	v := m.ms.next
	if now := modseqClock(); v > now && !m.ms.floorOff {
		if v-now <= modseqMaxWait {
			// Ahead of the clock (a burst, or a restart within a block's
			// time): wait for it, so that every modseq is at most the
			// clock when it is handed out (the floor's premise).
			m.unlocked(func() { modseqSleep(time.Duration(v-now) * time.Microsecond) })
		} else if !m.ms.clockLogged {
			m.ms.clockLogged = true
			m.writerLog().Error("the clock is behind the modseq counter (it went back, or another machine's is ahead): modseqs stay monotonic through the mark, but a restore of the Maildir from a backup may repeat modseqs until the clock catches up",
				"counter", v, "clock_us", now, "behind", time.Duration(v-now)*time.Microsecond)
		}
	}
	m.ms.next = v + 1
	m.ms.op = v
	if testHookModSeq != nil {
		testHookModSeq(m, v)
	}
	if m.exp.floor == 0 {
		m.exp.floor = v
	}
	return v
}

// endModSeqLocked ends the change's modseq at its publication: what
// changes next gets a new one. It returns the mailbox's HIGHESTMODSEQ,
// raised to the change's modseq when ch changed anything (or it is the
// first sync: a mailbox has a HIGHESTMODSEQ from its first sync on).
//
// Held: wmu, mu; lets go of mu as modSeqLocked does.
func (m *Mailbox) endModSeqLocked(ch *Changes) uint64 {
	if len(ch.Expunged) > 0 {
		v := m.modSeqLocked()
		if ch.UIDValidityChanged {
			m.exp = expungeLog{floor: v}
		} else {
			uids := make([]uint32, len(ch.Expunged))
			for i, msg := range ch.Expunged {
				uids[i] = msg.UID
			}
			m.exp.add(uids, v)
		}
	}
	if m.highest == 0 && !ch.Gone && m.uidvalidity != 0 {
		m.modSeqLocked()
	}
	if m.ms.op != 0 && (!ch.Empty() || m.highest == 0) {
		m.highest = max(m.highest, m.ms.op)
		m.ms.op = 0
	}
	return m.highest
}

// reserveModSeqs reserves the next block of modseqs on disk
// (reserveMark) and makes it the counter's. A mark that cannot be
// written (a full disk, a read-only one) leaves the time floor alone to
// keep modseqs from going back: a block of one, so that the next change
// tries the mark again; logged once.
//
// Held: wmu; not mu.
func (m *Mailbox) reserveModSeqs() {
	floor := uint64(1)
	if !m.ms.floorOff {
		floor = max(floor, modseqClock())
	}
	floor = max(floor, m.ms.next)
	if m.ms.disabled {
		m.ms.next, m.ms.limit = floor, floor+modseqBlock
		return
	}
	lo, hi, err := reserveMark(m.dir, floor, modseqBlock)
	if err != nil {
		if !m.ms.markLogged {
			m.ms.markLogged = true
			m.writerLog().Error("the modseq mark cannot be written: modseqs rest on the clock alone until it can",
				"file", filepath.Join(m.dir, ModSeqFileName), "err", err)
		}
		m.ms.next, m.ms.limit = floor, floor+1
		return
	}
	if m.ms.markLogged {
		m.ms.markLogged = false
		m.writerLog().Info("the modseq mark is written again", "file", filepath.Join(m.dir, ModSeqFileName))
	}
	if testHookModSeqReserved != nil {
		testHookModSeqReserved(m, lo, hi)
	}
	m.ms.next, m.ms.limit = lo, hi
}

// reserveMark reserves block modseqs in the mark of the Maildir at dir,
// none below floor, and returns them as [lo, hi): the mark held H, and
// lo = max(H, floor), and the mark holds hi = lo+block, durably, before
// it returns.
//
// Two reservations, in this process or any other on any host that
// honours flock on the filesystem, never overlap: each holds an
// exclusive flock of the mark file that is at the path from before it
// reads the mark until it has renamed its successor into place (the
// proof: doc.go, Modification sequences). A process that dies holding
// it loses it with its file descriptors: no stale lock.
func reserveMark(dir string, floor, block uint64) (lo, hi uint64, err error) {
	path := filepath.Join(dir, ModSeqFileName)
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return 0, 0, err
		}
		if err := flock(f); err != nil {
			f.Close()
			return 0, 0, err
		}
		// The file locked must be the one at the path: a reservation
		// that held the lock meanwhile replaced it (its lock is then on
		// a file nobody reads again).
		var held, now unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &held); err != nil {
			f.Close()
			return 0, 0, err
		}
		if err := unix.Lstat(path, &now); err != nil || held.Dev != now.Dev || held.Ino != now.Ino {
			f.Close()
			if attempt > 1000 {
				return 0, 0, fmt.Errorf("store: %s replaced again and again while locking it", path)
			}
			continue
		}
		lo, hi, err = reserveLocked(dir, f, floor, block)
		f.Close() // lets go of the flock, after the rename
		return lo, hi, err
	}
}

// flock takes an exclusive flock of f, waiting for it; EINTR is retried.
func flock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			return err
		}
	}
}

// reserveLocked is reserveMark's work under the flock of f, the mark at
// the path: read it, write the next one to the temporary file, fsync,
// rename over the mark, fsync the directory (DESIGN.md §4).
func reserveLocked(dir string, f *os.File, floor, block uint64) (lo, hi uint64, err error) {
	buf := make([]byte, 64)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, err
	}
	h, _ := parseMark(buf[:n]) // unreadable: as if missing; the floor covers it
	lo = max(h, floor)
	if lo >= maxModSeq-block {
		return 0, 0, fmt.Errorf("store: %s: modseqs exhausted (%d)", filepath.Join(dir, ModSeqFileName), lo)
	}
	hi = lo + block
	tmp := filepath.Join(dir, modseqTmpName)
	t, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return 0, 0, err
	}
	_, err = t.WriteString(formatMark(hi))
	if err == nil {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, ModSeqFileName))
	}
	if err == nil {
		err = maildir.SyncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, 0, err
	}
	return lo, hi, nil
}

// formatMark is the mark's content: "1 <mark>\n" (format version 1).
func formatMark(h uint64) string { return "1 " + strconv.FormatUint(h, 10) + "\n" }

// parseMark reads a mark; ok is false for anything but formatMark's
// output (a torn or foreign file is as good as none).
func parseMark(b []byte) (uint64, bool) {
	s, found := strings.CutPrefix(string(b), "1 ")
	if !found {
		return 0, false
	}
	s, found = strings.CutSuffix(s, "\n")
	if !found {
		return 0, false
	}
	h, err := strconv.ParseUint(s, 10, 64)
	if err != nil || h > maxModSeq {
		return 0, false
	}
	return h, true
}

// HighestModSeq returns the mailbox's HIGHESTMODSEQ: every change
// published so far has a modseq at most this, and every later change
// will have a higher one, in this process and after any restart (doc.go,
// Modification sequences). 0 before the first sync. A reader that
// takes a snapshot reads it first, then the messages: a message may
// then have a higher modseq than the one read (a change not yet
// published), never a change at or below it that the snapshot lacks.
//
// Takes: mu.
func (m *Mailbox) HighestModSeq() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.highest
}

// ChangedSince returns the messages whose modseq is above modseq, in
// UID order: a reader that read HighestModSeq h before gets every change
// above h that was published (and maybe later ones).
//
// Takes: mu.
func (m *Mailbox) ChangedSince(modseq uint64) []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Message
	for _, e := range m.msgs {
		if e.modseq > modseq {
			out = append(out, e.message())
		}
	}
	return out
}

// ExpungedSince returns the UIDs expunged with a modseq above modseq,
// as ascending, disjoint ranges: every UID expunged since is in them
// (never an under-report); they may hold UIDs expunged earlier or never
// given (RFC 7162 §3.2.5.1 allows that), never a UID of a message the
// state holds. A modseq older than what the state remembers (before
// this Mailbox's first sync, or forgotten to bound memory) gets every
// UID below the next UID that no message holds.
//
// Takes: mu.
func (m *Mailbox) ExpungedSince(modseq uint64) []UIDRange {
	m.mu.Lock()
	defer m.mu.Unlock()
	if modseq < m.exp.floor || m.exp.floor == 0 {
		return m.notLiveLocked()
	}
	return m.exp.since(modseq)
}

// notLiveLocked returns every UID below the next UID that no message of
// the state holds, as ranges.
//
// Held: mu.
func (m *Mailbox) notLiveLocked() []UIDRange {
	var out []UIDRange
	next := uint32(1)
	for _, e := range m.msgs {
		if e.uid > next {
			out = append(out, UIDRange{next, e.uid - 1})
		}
		next = e.uid + 1
	}
	if m.nextUID > next {
		out = append(out, UIDRange{next, m.nextUID - 1})
	}
	return out
}
