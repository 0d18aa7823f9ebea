package maildir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Filesystem magic numbers (statfs f_type) that decide which proofs a
// listing can carry.
const (
	magicExt4  = 0xEF53 // ext2, ext3 and ext4 share it
	magicXFS   = 0x58465342
	magicTmpfs = 0x01021994
	magicBtrfs = 0x9123683E
	magicNFS   = 0x6969
	magicFUSE  = 0x65735546
	magicCIFS  = 0xFF534D42
	magicSMB2  = 0xFE534D42
	magicOvl   = 0x794C7630
)

var fsNames = map[int64]string{
	magicExt4:  "ext4",
	magicXFS:   "xfs",
	magicTmpfs: "tmpfs",
	magicBtrfs: "btrfs",
	magicNFS:   "nfs",
	magicFUSE:  "fuse",
	magicCIFS:  "cifs",
	magicSMB2:  "smb2",
	magicOvl:   "overlay",
}

// probeRounds is how many stat/change/stat rounds the timestamp probe
// makes. One equal pair is enough to disprove fine timestamps; 64 rounds
// cost well under a millisecond on a local disk.
const probeRounds = 64

// Capabilities says which proofs of completeness a filesystem supports.
type Capabilities struct {
	// FSType is a readable name of the filesystem ("ext4", "tmpfs", ...,
	// or "0x<magic>" when unknown).
	FSType string
	// Magic is statfs's f_type.
	Magic int64
	// AtomicRead: one getdents64 call holds the directory lock for the
	// whole call and rename needs it exclusively (ext4, xfs, tmpfs), so a
	// directory read in one call is a snapshot.
	AtomicRead bool
	// FineTimestamps: the probe saw a stat followed by a change always
	// move the directory mtime (multigrain timestamps), on a local
	// filesystem whose timestamps we trust.
	FineTimestamps bool
}

// StableTimestamps reports whether the stable-timestamp proof can be had.
func (c Capabilities) StableTimestamps() bool { return c.FineTimestamps }

// CanProve reports whether any lockless proof of completeness can be had.
func (c Capabilities) CanProve() bool { return c.AtomicRead || c.FineTimestamps }

func (c Capabilities) String() string {
	return fmt.Sprintf("fs=%s atomic-read=%t fine-timestamps=%t", c.FSType, c.AtomicRead, c.FineTimestamps)
}

// localTimestampFS are filesystems whose timestamps are set by this
// kernel. A network or FUSE filesystem reports what its server says, and
// the probe passing once proves nothing about later changes by other
// clients of that server.
func localTimestampFS(magic int64) bool {
	switch magic {
	case magicExt4, magicXFS, magicTmpfs, magicBtrfs:
		return true
	}
	return false
}

var capsCache sync.Map // uint64 (st_dev) -> Capabilities

// Detect reports the proofs available for the filesystem holding dir. It
// probes timestamp granularity by creating and removing a dot-file in
// probeDir (a directory on the same filesystem that others do not scan,
// such as a Maildir's tmp/; "" means dir itself). Results are cached per
// device: call DetectFresh to probe again.
func Detect(dir, probeDir string) (Capabilities, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return Capabilities{}, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	if c, ok := capsCache.Load(st.Dev); ok {
		return c.(Capabilities), nil
	}
	c, err := DetectFresh(dir, probeDir)
	if err != nil {
		return c, err
	}
	capsCache.Store(st.Dev, c)
	return c, nil
}

// DetectFresh is Detect without the cache.
func DetectFresh(dir, probeDir string) (Capabilities, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		return Capabilities{}, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	magic := int64(sfs.Type)
	c := Capabilities{Magic: magic, FSType: fsNames[magic]}
	if c.FSType == "" {
		c.FSType = "0x" + strconv.FormatInt(magic, 16)
	}
	switch magic {
	case magicExt4, magicXFS, magicTmpfs:
		c.AtomicRead = true
	}
	if localTimestampFS(magic) {
		if probeDir == "" {
			probeDir = dir
		}
		fine, err := probeTimestamps(probeDir)
		if err != nil {
			return c, err
		}
		c.FineTimestamps = fine
	}
	return c, nil
}

var probeSeq atomic.Uint64

// probeTimestamps checks that, in dir, a stat followed by a change always
// gives the directory a new mtime. Filesystems with coarse timestamps
// (1-second ext4 with 128-byte inodes) or kernels without multigrain
// timestamps fail within a few rounds.
func probeTimestamps(dir string) (bool, error) {
	fd, err := openAt(unix.AT_FDCWD, dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return false, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	name := filepath.Join(dir, ".cistern-probe."+strconv.Itoa(os.Getpid())+"."+strconv.FormatUint(probeSeq.Add(1), 10))
	var before, after unix.Stat_t
	for i := 0; i < probeRounds; i++ {
		if err := fstat(fd, &before); err != nil {
			return false, &os.PathError{Op: "fstat", Path: dir, Err: err}
		}
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return false, err
		}
		f.Close()
		if err := os.Remove(name); err != nil {
			return false, err
		}
		if err := fstat(fd, &after); err != nil {
			return false, &os.PathError{Op: "fstat", Path: dir, Err: err}
		}
		if before.Mtim == after.Mtim {
			return false, nil
		}
	}
	return true, nil
}

// openDir opens the directory path for reading; a symbolic link as its
// last component is not followed (List reads new/ and cur/, never
// through a link).
func openDir(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.EINTR) {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
	}
}

func fstat(fd int, st *unix.Stat_t) error {
	for {
		err := unix.Fstat(fd, st)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
