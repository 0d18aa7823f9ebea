package auth

import (
	"os"
	"syscall"
)

// fileStamp tells one version of a file from another without reading it:
// a rename brings a new inode, an in-place edit a new size or mtime/ctime.
type fileStamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

func stampOf(fi os.FileInfo) fileStamp {
	st := fi.Sys().(*syscall.Stat_t)
	return fileStamp{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
}

func owner(fi os.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
