package maildir

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// Proof says why a Listing is known to be complete: every entry present in
// the directory for the whole read is in it, exactly once.
type Proof int

const (
	// ProofNone: the listing may miss entries or hold one twice. Use it to
	// find new messages, never to decide that one is gone.
	ProofNone Proof = iota
	// ProofAtomic: the directory was read by one getdents64 call with
	// room left in the buffer, on a filesystem whose directory read
	// excludes renames for the duration of the call.
	ProofAtomic
	// ProofStableTimestamp: the directory's mtime, to the nanosecond, was
	// the same before the open and after the read, on a filesystem with
	// fine-grained timestamps.
	ProofStableTimestamp
	// ProofLocked: the caller held the lock that every writer honours.
	ProofLocked
)

func (p Proof) String() string {
	switch p {
	case ProofNone:
		return "none"
	case ProofAtomic:
		return "atomic"
	case ProofStableTimestamp:
		return "stable-timestamp"
	case ProofLocked:
		return "locked"
	}
	return fmt.Sprintf("Proof(%d)", int(p))
}

// Proven reports whether the proof shows the listing complete.
func (p Proof) Proven() bool { return p != ProofNone }

// DefaultMaxTries is the read budget of the stable-timestamp proof. A
// directory that changes during every one of them is starving: the
// listing comes back unproven and the caller delays its conclusions.
const DefaultMaxTries = 8

// maxRecLen is the largest linux_dirent64 record: 19 header bytes, a
// 255-byte name and its NUL, rounded up to 8. A getdents64 call that
// returns with at least this much room left stopped at the end of the
// directory, not at the end of the buffer.
const maxRecLen = (19 + 255 + 1 + 7) &^ 7

// minBuf is the smallest read buffer; buffers grow by doubling.
const minBuf = 64 << 10

// maxBuf bounds the buffer: 1 GiB of directory entries is about ten
// million files.
const maxBuf = 1 << 30

// DirStamp identifies a directory and its content version: the same
// inode with the same mtime is the same content, on a filesystem with
// fine timestamps. The ctime is part of it: a program can set an mtime
// back after changing the directory (a restore that keeps mtimes,
// touch -d), never a ctime.
type DirStamp struct {
	Dev, Ino     uint64
	Mtime, Ctime unix.Timespec
}

// StatDir returns the DirStamp of path.
func StatDir(path string) (DirStamp, error) {
	var st unix.Stat_t
	for {
		err := unix.Stat(path, &st)
		if err == nil {
			return stampOf(&st), nil
		}
		if !errors.Is(err, unix.EINTR) {
			return DirStamp{}, &os.PathError{Op: "stat", Path: path, Err: err}
		}
	}
}

func stampOf(st *unix.Stat_t) DirStamp {
	return DirStamp{Dev: st.Dev, Ino: st.Ino, Mtime: st.Mtim, Ctime: st.Ctim}
}

// Listing is the result of reading one directory.
type Listing struct {
	Path string
	// Names are the entries, without "." and "..", in the filesystem's
	// order. They share one backing string: callers that keep a few of
	// them for long should strings.Clone them.
	Names []string
	// Types are the d_type values matching Names (unix.DT_REG, ...);
	// where the filesystem does not say, List asks lstat, and an entry
	// gone before it could is left DT_UNKNOWN. A symbolic link is
	// DT_LNK: never a message.
	Types []uint8
	Proof Proof
	// Tries is the number of reads made, 1 when the first read was proven
	// or when no proof could be had.
	Tries int
	// Stamp is the directory as stat'ed before the read that produced
	// Names. When StampValid, a later StatDir equal to Stamp means the
	// directory has not changed since (the cheap check of DESIGN §3).
	Stamp      DirStamp
	StampValid bool
	// Caps are the capabilities the listing was made with.
	Caps Capabilities
}

// ListOptions tunes List. The zero value detects the filesystem and uses
// the default budget.
type ListOptions struct {
	// MaxTries bounds the stable-timestamp reads; 0 means DefaultMaxTries.
	MaxTries int
	// Locked says the caller holds the mailbox lock and that every writer
	// of the directory honours it; a complete read then carries
	// ProofLocked. Only true when no foreign program writes the mailbox.
	Locked bool
	// Caps, when non-nil, are used instead of detecting.
	Caps *Capabilities
	// ProbeDir is where detection may create its probe file ("" = the
	// directory's sibling tmp/ when it exists, else the directory itself).
	ProbeDir string
}

var bufPool sync.Pool // *[]byte

// testHookAfterOpen, when set by a test, runs between the open and the
// read of every try: the moment a concurrent change defeats a proof.
var testHookAfterOpen func(path string)

// sizeHints remembers, per path, the buffer size the last read needed, so
// that a large directory is read in one call from the first try.
var sizeHints sync.Map // string -> int

// List reads the directory at path and proves it complete when it can
// (DESIGN.md §3). On a filesystem with atomic reads it reads the directory
// in one getdents64 call, growing the buffer and starting over while the
// directory does not fit. Elsewhere, with fine timestamps, it rereads until
// the mtime before the open equals the mtime after the read, at most
// MaxTries times. The listing says which proof it carries; ProofNone when
// none could be had. An error means the directory could not be read.
func List(path string, opts ListOptions) (*Listing, error) {
	var caps Capabilities
	if opts.Caps != nil {
		caps = *opts.Caps
	} else {
		probe := opts.ProbeDir
		if probe == "" {
			probe = siblingTmp(path)
		}
		c, err := Detect(path, probe)
		if err != nil {
			return nil, err
		}
		caps = c
	}
	maxTries := opts.MaxTries
	if maxTries <= 0 {
		maxTries = DefaultMaxTries
	}

	size := minBuf
	if h, ok := sizeHints.Load(path); ok {
		size = h.(int)
	}
	bp := getBuf(size)
	defer func() { bufPool.Put(bp) }()

	l := &Listing{Path: path, Caps: caps}
	for {
		l.Tries++
		var before DirStamp
		if caps.FineTimestamps {
			s, err := StatDir(path)
			if err != nil {
				return nil, err
			}
			before = s
		}
		fd, err := openDir(path)
		if err != nil {
			return nil, err
		}
		if testHookAfterOpen != nil {
			testHookAfterOpen(path)
		}
		n, single, err := readAll(fd, bp, caps.AtomicRead)
		if err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "getdents64", Path: path, Err: err}
		}
		if n < 0 {
			// The directory did not fit in one call: grow and start over.
			// Growing is not a try: it is bounded by the doubling.
			unix.Close(fd)
			l.Tries--
			if len(*bp) >= maxBuf {
				return nil, &os.PathError{Op: "getdents64", Path: path, Err: errors.New("directory larger than the read buffer limit")}
			}
			bufPool.Put(bp)
			bp = getBuf(2 * len(*bp))
			sizeHints.Store(path, len(*bp))
			continue
		}
		var after unix.Stat_t
		stable := false
		if caps.FineTimestamps {
			if err := fstat(fd, &after); err != nil {
				unix.Close(fd)
				return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
			}
			stable = before.Dev == after.Dev && before.Ino == after.Ino && before.Mtime == after.Mtim
		}

		switch {
		case opts.Locked:
			l.Proof = ProofLocked
		case caps.AtomicRead && single:
			l.Proof = ProofAtomic
		case stable:
			l.Proof = ProofStableTimestamp
		default:
			l.Proof = ProofNone
		}
		if l.Proof.Proven() || !caps.CanProve() || l.Tries >= maxTries {
			l.Stamp, l.StampValid = before, caps.FineTimestamps
			parseDirents((*bp)[:n], l)
			resolveUnknown(fd, l)
			unix.Close(fd)
			return l, nil
		}
		unix.Close(fd)
	}
}

// resolveUnknown gives the entries whose d_type the filesystem did not
// say (DT_UNKNOWN) the type an lstat finds, so that a symbolic link is
// known as one on every filesystem. An entry gone meanwhile stays
// DT_UNKNOWN: whoever opens it opens no link (OpenMessageAt).
func resolveUnknown(fd int, l *Listing) {
	for i, typ := range l.Types {
		if typ != unix.DT_UNKNOWN {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, l.Names[i], &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		l.Types[i] = modeType(st.Mode)
	}
}

// modeType is the d_type of a stat mode.
func modeType(mode uint32) uint8 {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return unix.DT_REG
	case unix.S_IFDIR:
		return unix.DT_DIR
	case unix.S_IFLNK:
		return unix.DT_LNK
	case unix.S_IFIFO:
		return unix.DT_FIFO
	case unix.S_IFSOCK:
		return unix.DT_SOCK
	case unix.S_IFCHR:
		return unix.DT_CHR
	case unix.S_IFBLK:
		return unix.DT_BLK
	}
	return unix.DT_UNKNOWN
}

func getBuf(size int) *[]byte {
	if v := bufPool.Get(); v != nil {
		bp := v.(*[]byte)
		if len(*bp) >= size {
			return bp
		}
	}
	b := make([]byte, size)
	return &b
}

func siblingTmp(path string) string {
	dir := path
	for len(dir) > 1 && dir[len(dir)-1] == '/' {
		dir = dir[:len(dir)-1]
	}
	i := len(dir) - 1
	for i >= 0 && dir[i] != '/' {
		i--
	}
	parent := "."
	if i > 0 {
		parent = dir[:i]
	} else if i == 0 {
		parent = "/"
	}
	tmp := parent + "/" + Tmp
	if fi, err := os.Stat(tmp); err == nil && fi.IsDir() {
		return tmp
	}
	return path
}

// readAll reads the directory into *bp until a getdents64 call returns
// nothing. With wantSingle it gives up (n < 0) as soon as the first call
// fills the buffer: the caller grows it and starts over, so that the whole
// directory comes in one call. single reports that exactly one call
// returned entries.
//
// The end of the directory is only ever a call that returns 0. A call that
// comes back with room left in the buffer has not necessarily reached it:
// filldir64 (fs/readdir.c) stops after the first entry whenever a signal
// is pending, and Go's runtime signals its threads to preempt goroutines.
// Signals are therefore blocked on this thread for the reads, which keeps
// the first call whole; the second call, returning 0, is what proves it.
func readAll(fd int, bp *[]byte, wantSingle bool) (n int, single bool, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, &old); err != nil {
		return 0, false, err
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)

	withData := 0
	for {
		buf := *bp
		if len(buf)-n < maxRecLen {
			if wantSingle && withData == 1 {
				return -1, false, nil
			}
			nb := make([]byte, 2*len(buf))
			copy(nb, buf[:n])
			*bp = nb
			buf = nb
		}
		m, err := getdents(fd, buf[n:])
		if err != nil {
			return 0, false, err
		}
		if m == 0 {
			return n, withData <= 1, nil
		}
		withData++
		n += m
	}
}

func getdents(fd int, buf []byte) (int, error) {
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return n, err
	}
}

// parseDirents fills l.Names and l.Types from linux_dirent64 records:
// d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name NUL-terminated.
// Names are substrings of one string that holds the whole buffer.
func parseDirents(b []byte, l *Listing) {
	count := 0
	for off := 0; off+19 <= len(b); {
		reclen := int(binary.NativeEndian.Uint16(b[off+16:]))
		if reclen == 0 {
			break
		}
		count++
		off += reclen
	}
	s := string(b)
	l.Names = make([]string, 0, count)
	l.Types = make([]uint8, 0, count)
	for off := 0; off+19 <= len(b); {
		reclen := int(binary.NativeEndian.Uint16(b[off+16:]))
		if reclen == 0 || off+reclen > len(b) {
			break
		}
		typ := b[off+18]
		nameStart := off + 19
		end := nameStart
		for end < off+reclen && b[end] != 0 {
			end++
		}
		name := s[nameStart:end]
		off += reclen
		if name == "." || name == ".." {
			continue
		}
		l.Names = append(l.Names, name)
		l.Types = append(l.Types, typ)
	}
}
