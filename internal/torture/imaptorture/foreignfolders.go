package imaptorture

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/maildir"
)

const (
	// foreignAwayPause bounds how long the foreign folder actor leaves
	// Aux's directory renamed away.
	foreignAwayPause = 50 * time.Millisecond
	// removeTries bounds the attempts to remove a folder directory into
	// which the server keeps writing.
	removeTries = 3
)

// maildirRoot returns the Maildir++ root that holds the mailbox under
// test's directory dir: dir itself for INBOX, its parent for a folder
// whose directory is named ".NAME"; "" when neither.
func maildirRoot(mailbox, dir string) string {
	dir = filepath.Clean(dir)
	switch {
	case strings.EqualFold(mailbox, "INBOX"):
		return dir
	case filepath.Base(dir) == "."+mailbox:
		return filepath.Dir(dir)
	}
	return ""
}

// folderDir returns the directory of mailbox name under a Maildir++
// root whose hierarchy separator is '.' (Cistern's and Dovecot's
// default).
func folderDir(root, name string) (string, error) {
	return maildir.FolderDir(root, strings.Split(name, "."))
}

// foreignFolders changes folder directories in the Maildir root as
// another program would (a migration script, a user's rm -r), without
// any lock: it renames Aux's directory to a fresh name and back (and,
// when Aux was made again meanwhile, removes the old one), and removes a
// sibling folder's directory with everything in it and makes a fresh
// Maildir in its place. Each removal is recorded in the ledger before
// the directory is touched. The mailbox under test is never renamed or
// removed.
type foreignFolders struct {
	r    *run
	root string
	rng  *rand.Rand
	// uid and gid own the root; directories we make are given to them
	// when we run as root.
	uid, gid int
	chown    bool
	fresh    int
}

func newForeignFolders(r *run, root string, seed uint64) *foreignFolders {
	f := &foreignFolders{r: r, root: root, rng: rand.New(rand.NewPCG(seed, 4))}
	if fi, err := os.Stat(root); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && st.Uid != 0 {
			f.uid, f.gid, f.chown = int(st.Uid), int(st.Gid), true
		}
	}
	return f
}

// run changes a folder directory ForeignFolders times a second until
// the run stops.
func (f *foreignFolders) run() error {
	tick := time.NewTicker(time.Second / time.Duration(f.r.cfg.ForeignFolders))
	defer tick.Stop()
	for !f.r.stopping() {
		<-tick.C
		var err error
		if f.r.cfg.FolderLifecycle > 0 && f.rng.IntN(2) == 0 {
			err = f.replaceSibling()
		} else {
			err = f.auxAwayAndBack()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// auxAwayAndBack renames Aux's directory to a fresh name, waits a
// little, and renames it back; when Aux exists again by then, the old
// directory is removed.
func (f *foreignFolders) auxAwayAndBack() error {
	aux := f.r.cfg.Aux
	f.fresh++
	away := fmt.Sprintf("%s-away-%s-f%d", aux, f.r.led.runID, f.fresh)
	from, err := folderDir(f.root, aux)
	if err != nil {
		return err
	}
	to, err := folderDir(f.root, away)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("foreign rename of %s to %s", filepath.Base(from), filepath.Base(to))
	e := f.r.led.foreignRemoving(what, f.r.now(), aux)
	start := time.Now()
	err = renameNoReplace(from, to)
	f.r.rec.op("foreign folder rename", start, time.Since(start), fsOutcome(err))
	f.r.led.lifeDone(e, f.r.now())
	if errors.Is(err, fs.ErrNotExist) {
		return nil // Aux is gone: deleted or renamed by an IMAP actor
	}
	if err != nil {
		return err
	}
	f.r.counts.foreignRenames.Add(1)
	time.Sleep(time.Duration(f.rng.Int64N(int64(foreignAwayPause))))
	what = fmt.Sprintf("foreign rename of %s back to %s", filepath.Base(to), filepath.Base(from))
	e = f.r.led.foreignRemoving(what, f.r.now(), aux)
	start = time.Now()
	err = renameNoReplace(to, from)
	f.r.rec.op("foreign folder rename", start, time.Since(start), fsOutcome(err))
	done := f.r.now()
	f.r.led.lifeDone(e, done)
	if err == nil {
		f.r.counts.foreignRenames.Add(1)
		f.r.led.nameCreated(what, aux, e.sent, done)
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	return f.remove(to)
}

// replaceSibling removes a sibling folder's directory, as rm -r does,
// and makes a fresh Maildir folder in its place.
func (f *foreignFolders) replaceSibling() error {
	box := siblingNames(f.r.cfg.Aux)[f.rng.IntN(siblingFolders)]
	dir, err := folderDir(f.root, box)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil // deleted by the IMAP actor: nothing to remove
	}
	e := f.r.led.foreignRemoving("foreign rm -r of "+filepath.Base(dir), f.r.now(), box)
	err = f.remove(dir)
	f.r.led.lifeDone(e, f.r.now())
	if err != nil {
		return err
	}
	sent := f.r.now()
	err = maildir.CreateFolder(f.root, strings.Split(box, "."))
	if errors.Is(err, maildir.ErrFolderExists) || errors.Is(err, fs.ErrNotExist) {
		return nil // the server made it again first, or deleted it while we made it
	}
	if err != nil {
		return err
	}
	f.r.led.nameCreated("foreign mkdir of "+filepath.Base(dir), box, sent, f.r.now())
	if f.chown {
		return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return ignoreGone(err)
			}
			return ignoreGone(os.Lchown(path, f.uid, f.gid))
		})
	}
	return nil
}

// remove removes a folder directory with everything in it. A server
// that writes into it meanwhile can make that fail (a new file); after
// removeTries the directory is left as it is.
func (f *foreignFolders) remove(dir string) error {
	start := time.Now()
	var err error
	for range removeTries {
		if err = os.RemoveAll(dir); err == nil {
			break
		}
	}
	f.r.rec.op("foreign folder removal", start, time.Since(start), fsOutcome(err))
	if err == nil {
		f.r.counts.foreignRemovals.Add(1)
		return nil
	}
	if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// renameNoReplace renames a directory unless to exists (renameat2
// RENAME_NOREPLACE; where the filesystem lacks it, a check before a
// plain rename).
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		if _, serr := os.Lstat(to); serr == nil {
			err = unix.EEXIST
		} else {
			err = os.Rename(from, to)
		}
	}
	if errno, ok := err.(unix.Errno); ok {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: errno}
	}
	return err
}

// siblingNames are the sibling folders of aux that the folder actor
// creates and deletes.
func siblingNames(aux string) []string {
	out := make([]string, siblingFolders)
	for i := range out {
		out[i] = fmt.Sprintf("%s-life%d", aux, i+1)
	}
	return out
}
