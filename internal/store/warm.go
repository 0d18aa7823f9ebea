package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// The warm start: the design and its proof are in doc.go, "Warm start".

// stateBucket holds the synced state of each mailbox (encodeState),
// keyed by mailbox directory. Like recentBucket, its name is no
// directory.
const stateBucket = "\x00state"

// stateMagic begins every stored state; its last byte is the format
// version. Any other value is no state.
const stateMagic = "CWS\x02"

// stateSaveInterval is the least time between two saves of a mailbox's
// state by its quiet syncs (a save of 100,000 messages writes about
// 10 MB to the index).
const stateSaveInterval = time.Minute

// Sizes of the encoded state's parts.
const (
	stateHeaderLen = len(stateMagic) + 16 + 2*48 + 40 + 32 + 8 + 8 + 2 + 8 + 4
	stateRangeLen  = 16
	stateRecordLen = 4 + 8 + 8 + 2 + 2 + 1
)

// uidlistStamp tells one version of dovecot-uidlist from another
// without reading it: the cheap check of a warm-started Mailbox, which
// has not parsed it.
type uidlistStamp struct {
	dev, ino           uint64
	size, mtime, ctime int64
}

func uidlistStampOf(st *unix.Stat_t) uidlistStamp {
	return uidlistStamp{uint64(st.Dev), st.Ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano()}
}

// statUIDList returns the stamp of the uidlist at the path.
func statUIDList(dir string) (uidlistStamp, error) {
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, uidlist.FileName), &st); err != nil {
		return uidlistStamp{}, err
	}
	return uidlistStampOf(&st), nil
}

// warmUIDList is the uidlist a warm-started Mailbox was loaded with:
// held open, so that its inode number is not given to another file
// while the stamp is compared with the path's.
type warmUIDList struct {
	f     *os.File
	stamp uidlistStamp
}

// unchanged reports whether the uidlist at the path is the one held.
func (w *warmUIDList) unchanged(dir string) bool {
	st, err := statUIDList(dir)
	return err == nil && st == w.stamp
}

// savedState is what a stored state says besides its messages.
type savedState struct {
	dir                uint64 // dev
	dirIno             uint64
	newStamp, curStamp maildir.DirStamp
	uidlist            uidlistStamp
	keywords           fileID
	uidvalidity        uint32
	nextUID            uint32
	highest            uint64
	newProof, curProof maildir.Proof
	exp                expungeLog
}

// encodeState returns the stored form of the state, with the stamps
// that prove it current. Little-endian throughout:
//
//	"CWS\x02"
//	dir dev u64 | dir inode u64
//	new/ stamp, cur/ stamp: dev u64 | inode u64 | mtime sec i64 | nsec i64 | ctime sec i64 | nsec i64
//	uidlist: dev u64 | inode u64 | size i64 | mtime ns i64 | ctime ns i64
//	dovecot-keywords: inode u64 | size i64 | mtime ns i64 | ctime ns i64 (zero: none)
//	UIDVALIDITY u32 | next UID u32 | HIGHESTMODSEQ u64
//	new/ proof u8 | cur/ proof u8
//	expunge log floor u64 | ranges u32, then per range lo u32 | hi u32 | modseq u64
//	messages u32, then per message (UID order):
//	  UID u32 | modseq u64 | flags u64 | name length u16 | base length u16 | in cur/ u8
//	names length u32 | every file name, one after the other
//	CRC-32C of everything before u32
//
// Held: wmu (the state stands still); mu or not.
func (m *Mailbox) encodeState(s *savedState) []byte {
	names := 0
	for _, e := range m.msgs {
		names += len(e.filename)
	}
	size := stateHeaderLen + len(s.exp.ranges)*stateRangeLen + 4 + len(m.msgs)*stateRecordLen + 4 + names + 4
	b := make([]byte, 0, size)
	le := binary.LittleEndian
	b = append(b, stateMagic...)
	b = le.AppendUint64(b, s.dir)
	b = le.AppendUint64(b, s.dirIno)
	for _, st := range []maildir.DirStamp{s.newStamp, s.curStamp} {
		for _, v := range []uint64{st.Dev, st.Ino, uint64(st.Mtime.Sec), uint64(st.Mtime.Nsec), uint64(st.Ctime.Sec), uint64(st.Ctime.Nsec)} {
			b = le.AppendUint64(b, v)
		}
	}
	u := s.uidlist
	for _, v := range []uint64{u.dev, u.ino, uint64(u.size), uint64(u.mtime), uint64(u.ctime), s.keywords.ino, uint64(s.keywords.size), uint64(s.keywords.mtime), uint64(s.keywords.ctime)} {
		b = le.AppendUint64(b, v)
	}
	b = le.AppendUint32(b, s.uidvalidity)
	b = le.AppendUint32(b, s.nextUID)
	b = le.AppendUint64(b, s.highest)
	b = append(b, byte(s.newProof), byte(s.curProof))
	b = le.AppendUint64(b, s.exp.floor)
	b = le.AppendUint32(b, uint32(len(s.exp.ranges)))
	for _, r := range s.exp.ranges {
		b = le.AppendUint32(b, r.lo)
		b = le.AppendUint32(b, r.hi)
		b = le.AppendUint64(b, r.modseq)
	}
	b = le.AppendUint32(b, uint32(len(m.msgs)))
	for _, e := range m.msgs {
		b = le.AppendUint32(b, e.uid)
		b = le.AppendUint64(b, e.modseq)
		b = le.AppendUint64(b, uint64(e.flags))
		b = le.AppendUint16(b, uint16(len(e.filename)))
		b = le.AppendUint16(b, uint16(len(e.base())))
		cur := byte(0)
		if e.sub == maildir.Cur {
			cur = 1
		}
		b = append(b, cur)
	}
	b = le.AppendUint32(b, uint32(names))
	for _, e := range m.msgs {
		b = append(b, e.filename...)
	}
	return le.AppendUint32(b, crc32.Checksum(b, crcTable))
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errBadState: a stored state that cannot be what encodeState wrote.
var errBadState = errors.New("not a state this version wrote")

// stateReader reads an encoded state front to back; a read past the
// end sets bad.
type stateReader struct {
	b   []byte
	bad bool
}

func (r *stateReader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return make([]byte, max(n, 0))
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *stateReader) u8() uint8   { return r.take(1)[0] }
func (r *stateReader) u16() uint16 { return binary.LittleEndian.Uint16(r.take(2)) }
func (r *stateReader) u32() uint32 { return binary.LittleEndian.Uint32(r.take(4)) }
func (r *stateReader) u64() uint64 { return binary.LittleEndian.Uint64(r.take(8)) }

// decodeState reads what encodeState wrote: the state's header and its
// messages, every name copied out of v into one string (v may be the
// index's memory, valid only during its transaction). Anything but a
// whole, intact value of this version is errBadState: a checksum
// mismatch, a truncation, names that do not add up, UIDs out of order
// or at or above the next UID, a modseq above HIGHESTMODSEQ, a base
// name that is no prefix of its file name up to the info part. (One
// base name twice, which no Mailbox stores, is found when the index by
// base name is built: bases.)
func decodeState(v []byte) (*savedState, []*entry, error) {
	if len(v) < stateHeaderLen+12 || string(v[:len(stateMagic)]) != stateMagic {
		return nil, nil, errBadState
	}
	body := v[:len(v)-4]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(v[len(v)-4:]) {
		return nil, nil, fmt.Errorf("%w: checksum mismatch", errBadState)
	}
	r := &stateReader{b: body[len(stateMagic):]}
	s := &savedState{}
	s.dir, s.dirIno = r.u64(), r.u64()
	for _, st := range []*maildir.DirStamp{&s.newStamp, &s.curStamp} {
		st.Dev, st.Ino = r.u64(), r.u64()
		st.Mtime.Sec, st.Mtime.Nsec = int64(r.u64()), int64(r.u64())
		st.Ctime.Sec, st.Ctime.Nsec = int64(r.u64()), int64(r.u64())
	}
	s.uidlist = uidlistStamp{r.u64(), r.u64(), int64(r.u64()), int64(r.u64()), int64(r.u64())}
	s.keywords = fileID{r.u64(), int64(r.u64()), int64(r.u64()), int64(r.u64())}
	s.uidvalidity, s.nextUID, s.highest = r.u32(), r.u32(), r.u64()
	s.newProof, s.curProof = maildir.Proof(r.u8()), maildir.Proof(r.u8())
	s.exp.floor = r.u64()
	nr := int(r.u32())
	if r.bad || nr > len(r.b)/stateRangeLen {
		return nil, nil, fmt.Errorf("%w: expunge ranges", errBadState)
	}
	s.exp.ranges = make([]expungeRange, nr)
	for i := range s.exp.ranges {
		x := &s.exp.ranges[i]
		x.lo, x.hi, x.modseq = r.u32(), r.u32(), r.u64()
		if x.lo > x.hi || x.modseq > s.highest || (i > 0 && x.lo <= s.exp.ranges[i-1].hi) {
			return nil, nil, fmt.Errorf("%w: expunge range %d", errBadState, i)
		}
	}
	n := int(r.u32())
	if r.bad || n > len(r.b)/stateRecordLen || s.uidvalidity == 0 || s.highest == 0 || s.exp.floor == 0 || s.exp.floor > s.highest {
		return nil, nil, fmt.Errorf("%w: header", errBadState)
	}
	recs := r.take(n * stateRecordLen)
	blob := r.take(int(r.u32()))
	if r.bad || len(r.b) != 0 {
		return nil, nil, fmt.Errorf("%w: length", errBadState)
	}
	names := string(blob)
	arr := make([]entry, n)
	msgs := make([]*entry, n)
	off := 0
	for i := range arr {
		rec := recs[i*stateRecordLen:]
		e := &arr[i]
		e.uid = binary.LittleEndian.Uint32(rec)
		e.modseq = binary.LittleEndian.Uint64(rec[4:])
		e.flags = maildir.Flags(binary.LittleEndian.Uint64(rec[12:]))
		nl, bl := int(binary.LittleEndian.Uint16(rec[20:])), int(binary.LittleEndian.Uint16(rec[22:]))
		switch rec[24] {
		case 0:
			e.sub = maildir.New
		case 1:
			e.sub = maildir.Cur
		default:
			return nil, nil, fmt.Errorf("%w: message %d: directory", errBadState, i)
		}
		if bl == 0 || bl > nl || off+nl > len(names) {
			return nil, nil, fmt.Errorf("%w: message %d: name", errBadState, i)
		}
		e.filename = names[off : off+nl]
		e.baseLen = uint8(bl)
		off += nl
		if bl > 255 || strings.IndexByte(e.base(), ':') >= 0 || (bl < nl && e.filename[bl] != ':') ||
			e.uid == 0 || e.uid >= s.nextUID || (i > 0 && e.uid <= arr[i-1].uid) ||
			e.modseq == 0 || e.modseq > s.highest {
			return nil, nil, fmt.Errorf("%w: message %d", errBadState, i)
		}
		msgs[i] = e
	}
	if off != len(names) {
		return nil, nil, fmt.Errorf("%w: names", errBadState)
	}
	return s, msgs, nil
}

// saveStateLocked writes the state to the index when it is one a warm
// start may serve (doc.go, Warm start) and differs from the last one
// saved or loaded: the last sync was proven with nothing left over
// (stampsValid: the cheap check's own condition), no change is under
// way, and the uidlist is the very version that sync ended with. The
// write is queued with the index's others.
//
// Held: wmu, mu; lets go of mu while it encodes and stats.
func (m *Mailbox) saveStateLocked() {
	ix := m.opts.Index
	if ix == nil || m.gone.Load() || !m.stampsValid || m.suspects != 0 || m.undone || m.ms.op != 0 ||
		m.uidvalidity == 0 || m.highest == 0 || m.exp.floor == 0 || m.opts.UnsafeTrustReaddir {
		return
	}
	if m.saved.highest == m.highest && m.saved.newStamp == m.newStamp && m.saved.curStamp == m.curStamp && m.saved.uidvalidity == m.uidvalidity {
		return
	}
	s := savedState{dir: m.id.dev, dirIno: m.id.ino, newStamp: m.newStamp, curStamp: m.curStamp,
		uidvalidity: m.uidvalidity, nextUID: m.nextUID, highest: m.highest,
		newProof: m.newProof, curProof: m.curProof, exp: m.exp}
	var v []byte
	ok := false
	m.unlocked(func() {
		// The state, read under wmu alone, stands still meanwhile.
		s.keywords = keywordsStamp(m.dir)
		var err error
		nst, errN := maildir.StatDir(filepath.Join(m.dir, maildir.New))
		cst, errC := maildir.StatDir(filepath.Join(m.dir, maildir.Cur))
		if errN != nil || errC != nil || nst != s.newStamp || cst != s.curStamp {
			return // changed since the listing: the next quiet sync saves
		}
		if m.lastFile != nil {
			// The stamp is of the version the last sync ended with when
			// the Reader answers with that version before and after it.
			f1, err1 := m.refreshUIDList()
			s.uidlist, err = statUIDList(m.dir)
			f2, err2 := m.refreshUIDList()
			ok = err == nil && err1 == nil && err2 == nil && f1 == m.lastFile && f2 == m.lastFile
		} else if m.warmUID != nil {
			s.uidlist = m.warmUID.stamp
			ok = m.warmUID.unchanged(m.dir)
		}
		if ok {
			v = m.encodeState(&s)
		}
	})
	if !ok {
		return
	}
	ix.queue(stateBucket, []string{m.dir}, [][]byte{v})
	m.saved = s
	m.savedAt = m.now()
}

// persist stores the state for a warm start when it may serve one
// (saveStateLocked); the Registry calls it before it closes the Mailbox.
//
// Held: none; takes wmu and mu.
func (m *Mailbox) persist() {
	m.lockWriter()
	defer m.unlockWriter()
	m.saveStateLocked()
}

// now is the Mailbox's clock.
//
// Held: any.
func (m *Mailbox) now() time.Time {
	if m.opts.Now != nil {
		return m.opts.Now()
	}
	return time.Now()
}

// loadState serves the state stored in the index when it is proven to
// be the state of these very files (doc.go, Warm start), and reports
// whether it did. A state that is not is dropped from the index, and
// the caller reads the files as on a cold start. It is called by Open,
// before the Mailbox is shared.
//
// Held: none; the Mailbox is not shared yet (Open).
func (m *Mailbox) loadState() bool {
	ix := m.opts.Index
	var s *savedState
	var msgs []*entry
	var err error
	found := false
	ix.read(stateBucket, m.dir, func(v []byte) {
		if v != nil {
			found = true
			s, msgs, err = decodeState(v)
		}
	})
	if !found {
		return false
	}
	why := ""
	var held *os.File
	if err != nil {
		why = err.Error()
	} else {
		held, why = m.provenCurrent(s)
	}
	if why != "" {
		m.log.Info("warm start: the stored state is not the mailbox's; reading the files", "reason", why)
		ix.queue(stateBucket, []string{m.dir}, [][]byte{nil})
		m.opts.Metrics.warmStart(warmRefused)
		return false
	}
	m.uidvalidity, m.nextUID, m.highest, m.exp = s.uidvalidity, s.nextUID, s.highest, s.exp
	// The index by base name is built when a writer needs it (bases).
	m.msgs, m.byBase = msgs, nil
	m.newStamp, m.curStamp, m.newProof, m.curProof = s.newStamp, s.curStamp, s.newProof, s.curProof
	m.stampsValid = true
	m.warmUID = &warmUIDList{f: held, stamp: s.uidlist}
	m.saved, m.savedAt = *s, m.now()
	m.opts.Metrics.warmStart(warmServed)
	return true
}

// provenCurrent checks a stored state against the files: the mailbox's
// directory, new/ and cur/ have the identities and mtimes it was taken
// with, dovecot-uidlist is that very version (held open from now on,
// returned) and dovecot-keywords too, and the modseq mark is above its
// HIGHESTMODSEQ. It returns why not ("" when it is current).
//
// Held: none; the Mailbox is not shared yet (Open).
func (m *Mailbox) provenCurrent(s *savedState) (*os.File, string) {
	if s.dir != m.id.dev || s.dirIno != m.id.ino {
		return nil, "another directory"
	}
	ns, err1 := maildir.StatDir(filepath.Join(m.dir, maildir.New))
	cs, err2 := maildir.StatDir(filepath.Join(m.dir, maildir.Cur))
	if err1 != nil || err2 != nil || ns != s.newStamp || cs != s.curStamp {
		return nil, "new/ or cur/ changed"
	}
	if keywordsStamp(m.dir) != s.keywords {
		return nil, "dovecot-keywords changed"
	}
	if !m.ms.disabled {
		b, err := os.ReadFile(filepath.Join(m.dir, ModSeqFileName))
		h, ok := parseMark(b)
		if err != nil || !ok || s.highest >= h {
			return nil, "the modseq mark is not above the stored HIGHESTMODSEQ"
		}
	}
	f, err := os.OpenFile(filepath.Join(m.dir, uidlist.FileName), os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "dovecot-uidlist cannot be opened"
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || uidlistStampOf(&st) != s.uidlist {
		f.Close()
		return nil, "dovecot-uidlist changed"
	}
	if now, err := statUIDList(m.dir); err != nil || now != s.uidlist {
		f.Close()
		return nil, "dovecot-uidlist changed"
	}
	return f, ""
}

// dropWarmUIDList lets go of the uidlist a warm start held: a sync
// has read it since (lastFile).
//
// Held: wmu; mu or not.
func (m *Mailbox) dropWarmUIDList() {
	if m.warmUID != nil {
		m.warmUID.f.Close()
		m.warmUID = nil
	}
}
