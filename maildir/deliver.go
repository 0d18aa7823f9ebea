package maildir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrCrossDevice is returned (wrapped) by Link when the source file and
// the target Maildir are on different filesystems, so no hard link is
// possible; the caller copies the message instead (Deliver).
var ErrCrossDevice = errors.New("maildir: source and target are on different filesystems")

// DefaultFilePerm is the mode of a delivered file when
// DeliverOptions.Perm is 0.
const DefaultFilePerm os.FileMode = 0o600

// maxNameTries bounds the retries with a fresh name when a name is taken.
// Names from one NameGen never repeat, so a clash means another process
// made the same name; more than a few in a row means something is broken.
const maxNameTries = 16

// copyBufSize is the size of the buffer a delivery copies through.
const copyBufSize = 64 << 10

// DeliverOptions are the choices of a delivery. The zero value delivers
// into new/ with mode 0600, mtime now, and names from a shared generator.
type DeliverOptions struct {
	// Flags are the message's flags; they need Cur.
	Flags Flags
	// Cur delivers into cur/ with ":2,<flags>" (an IMAP APPEND) instead
	// of into new/ (a new message).
	Cur bool
	// Time is the file's mtime, the message's internal date for IMAP. The
	// zero value means now. Link ignores it (the file is shared).
	Time time.Time
	// Gen makes the unique name; nil means a package-wide generator.
	Gen *NameGen
	// Perm is the file mode (the umask applies); 0 means DefaultFilePerm.
	// Link ignores it.
	Perm os.FileMode
	// Base is the base name to publish under: a copy of a message that
	// keeps its identity (its base name, DESIGN.md §3) in another
	// Maildir. Empty means a fresh unique one. The caller makes sure the
	// target holds no message of that base name (a file of that exact
	// name makes Place take a fresh one, but one with other flags does
	// not), or calls Staged.Rebase.
	Base string
}

var defaultGen NameGen

func (o *DeliverOptions) gen() *NameGen {
	if o.Gen != nil {
		return o.Gen
	}
	return &defaultGen
}

// target returns the subdirectory and file name a message with base name
// base is delivered as.
func (o *DeliverOptions) target(base string) (sub, filename string) {
	if o.Cur {
		return Cur, FilenameWithFlags(base, o.Flags)
	}
	return New, base
}

func (o *DeliverOptions) check() error {
	if o.Flags != 0 && !o.Cur {
		return errors.New("maildir: deliver: flags need DeliverOptions.Cur (files in new/ carry no flags)")
	}
	if o.Base != "" && (o.Base == "." || o.Base == ".." || strings.ContainsAny(o.Base, "/:\x00")) {
		return fmt.Errorf("maildir: deliver: %q is no base name", o.Base)
	}
	return nil
}

// staged returns the Staged of a file written or linked to tmpPath: its
// base name is opts.Base, else the tmp/ name with the size fields.
func (o *DeliverOptions) staged(dir, tmpPath string, size, vsize int64, gen *NameGen, now time.Time) *Staged {
	base := o.Base
	if base == "" {
		base = WithSizes(filepath.Base(tmpPath), size, vsize)
	}
	return &Staged{dir: dir, tmpPath: tmpPath, base: base, size: size, vsize: vsize, opts: *o, gen: gen, now: now}
}

// Deliver writes the message read from r into the Maildir dir, durably,
// and returns its file name (in new/, or in cur/ with opts.Cur). It
// follows the Maildir protocol, step by step, with what a crash (of the
// process or of the machine) at each step leaves behind:
//
//  1. Create tmp/<unique> with O_CREAT|O_EXCL (a taken name is retried
//     with a fresh one) and copy r into it, counting its size and its
//     size with CRLF line endings. Crash: a partial file in tmp/, which
//     no reader takes for a message; CleanTmp removes it after 36 hours.
//  2. Set the mtime (opts.Time), fsync the file and close it. Crash: as
//     in step 1, with a complete file in tmp/.
//  3. Rename it to new/<unique>,S=<size>,W=<vsize> (or
//     cur/<unique>,S=<size>,W=<vsize>:2,<flags>), never replacing a file.
//     Crash before this step's directory fsync: the message may be
//     visible to readers, but a power failure may undo the rename; the
//     delivery was not acknowledged (Deliver had not returned), so the
//     sender retries. A crash of the process alone leaves it in place.
//  4. Fsync the target directory. From here the message is durable, and
//     only now does Deliver return success: the caller may acknowledge.
//
// On any error the tmp/ file is removed, and so is the delivered file
// when the final fsync fails (the message was not acknowledged, and
// leaving it would duplicate the sender's retry). The error is returned
// wrapped, with the operation and path in it.
//
// Deliver is Stage (steps 1 and 2) and Publish (steps 3 and 4) in one
// call; a caller that must do something between the two (take a lock)
// calls them itself.
func Deliver(dir string, r io.Reader, opts DeliverOptions) (filename string, err error) {
	s, err := Stage(dir, r, opts)
	if err != nil {
		return "", err
	}
	if err := Publish([]*Staged{s}); err != nil {
		s.Discard()
		return "", fmt.Errorf("maildir: deliver to %s: %w", dir, err)
	}
	return s.Filename(), nil
}

// Staged is a message written whole into a Maildir's tmp/ and fsynced,
// not yet in new/ or cur/: no reader takes it for a message. Publish
// puts it in place; Discard removes it when it is not to be delivered.
// A Staged is used by one goroutine at a time.
type Staged struct {
	dir         string
	tmpPath     string // "" once published or discarded
	base        string // the base name it is published under, sizes included
	size, vsize int64
	opts        DeliverOptions
	gen         *NameGen
	now         time.Time
	sub, name   string // where Publish put it; "" before
}

// Stage writes the message read from r into the Maildir dir's tmp/,
// durably: steps 1 and 2 of Deliver, with their crash outcomes (a file
// in tmp/, which CleanTmp removes after 36 hours). On error nothing is
// left behind.
func Stage(dir string, r io.Reader, opts DeliverOptions) (s *Staged, err error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	perm := opts.Perm
	if perm == 0 {
		perm = DefaultFilePerm
	}
	now := time.Now()
	gen := opts.gen()

	f, tmpPath, err := createTmp(dir, gen, now, perm)
	if err != nil {
		return nil, fmt.Errorf("maildir: deliver to %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			f.Close() // harmless when already closed
			os.Remove(tmpPath)
			err = fmt.Errorf("maildir: deliver to %s: %w", dir, err)
		}
	}()

	cw := crlfCounter{w: f}
	buf := make([]byte, copyBufSize)
	if _, err = io.CopyBuffer(&cw, onlyReader{r}, buf); err != nil {
		return nil, err
	}
	if !opts.Time.IsZero() {
		// Before the fsync, so that the time is durable with the data.
		if err = os.Chtimes(tmpPath, now, opts.Time); err != nil {
			return nil, err
		}
	}
	if err = f.Sync(); err != nil {
		return nil, err
	}
	if err = f.Close(); err != nil {
		return nil, err
	}
	return opts.staged(dir, tmpPath, cw.size, cw.vsize, gen, now), nil
}

// Dir returns the Maildir the message is staged in.
func (s *Staged) Dir() string { return s.dir }

// Base returns the message's base name: the one it is published under,
// unless another file takes that name first (Publish then makes a fresh
// one, and Base says which).
func (s *Staged) Base() string { return s.base }

// Filename returns the message's file name in new/ or cur/ once Publish
// put it there, else "".
func (s *Staged) Filename() string { return s.name }

// KeepsBase reports whether the message is to be published, or was
// placed, under the base name its options asked for (DeliverOptions.Base).
func (s *Staged) KeepsBase() bool { return s.opts.Base != "" && s.base == s.opts.Base }

// Rebase gives the message, not yet placed, a fresh unique base name
// (its tmp/ name, with the same size fields) instead of the one its
// options asked it to keep: the name Place will use.
func (s *Staged) Rebase() error {
	switch {
	case s.name != "":
		return fmt.Errorf("maildir: rebase %s: already placed as %s", s.base, s.name)
	case s.tmpPath == "":
		return fmt.Errorf("maildir: rebase %s: already discarded", s.base)
	}
	s.base = WithSizes(filepath.Base(s.tmpPath), s.size, s.vsize)
	return nil
}

// Discard removes the staged file from tmp/ unless it was published (then
// it does nothing: the message is delivered, and only Unpublish takes it
// back). It is safe to call more than once.
func (s *Staged) Discard() {
	if s.tmpPath != "" {
		os.Remove(s.tmpPath)
		s.tmpPath = ""
	}
}

// Publish puts staged messages into new/ or cur/ of their Maildirs:
// steps 3 and 4 of Deliver, with their crash outcomes. It is Place, then
// SyncPlaced: from its return on every message is durable.
//
// All or none: on error no message stays in new/ or cur/ (Unpublish),
// and those not renamed stay in tmp/ for the caller to Discard. A crash
// between a rename and the fsync leaves published messages that no
// caller acknowledged (as Deliver's step 3).
func Publish(staged []*Staged) error {
	if err := Place(staged); err != nil {
		return err
	}
	if err := SyncPlaced(staged); err != nil {
		Unpublish(staged)
		return err
	}
	return nil
}

// Place is step 3 of Deliver for every staged message: each is renamed
// in turn into new/ or cur/ (a taken name is retried with a fresh base
// name), visible to readers but not yet durable: SyncPlaced makes it so,
// and only then may the caller acknowledge. A caller that must do
// something in between (record the messages, under a lock) does it
// before SyncPlaced; with ext4's journal, a file fsynced in between
// carries the renames with it, and SyncPlaced costs little.
//
// All or none: on error the messages already renamed are unlinked again
// (Unpublish), and the rest stay in tmp/ for the caller to Discard.
func Place(staged []*Staged) error {
	for i, s := range staged {
		if s.tmpPath == "" {
			Unpublish(staged[:i])
			return fmt.Errorf("maildir: publish %s: already published or discarded", s.base)
		}
		if err := s.rename(); err != nil {
			Unpublish(staged[:i])
			return err
		}
	}
	return nil
}

// SyncPlaced is step 4 of Deliver for messages Place put in place: every
// directory they are in is fsynced, once. On error their durability is
// unknown, and nothing was undone: the caller takes them back
// (Unpublish) or answers as if they were lost.
func SyncPlaced(staged []*Staged) error {
	for dir := range targetDirs(staged) {
		if err := SyncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// rename is Place's step for one message.
func (s *Staged) rename() error {
	var err error
	base := s.base
	for range maxNameTries {
		sub, name := s.opts.target(base)
		err = renameNoReplace(s.tmpPath, filepath.Join(s.dir, sub, name))
		if errors.Is(err, unix.EEXIST) {
			base = WithSizes(s.gen.New(s.now), s.size, s.vsize)
			continue
		}
		if err != nil {
			return err
		}
		s.base, s.sub, s.name, s.tmpPath = base, sub, name, ""
		return nil
	}
	return fmt.Errorf("%w: %w", ErrExists, err)
}

// targetDirs is the set of directories the published messages of staged
// are in.
func targetDirs(staged []*Staged) map[string]bool {
	dirs := make(map[string]bool)
	for _, s := range staged {
		if s.name != "" {
			dirs[filepath.Join(s.dir, s.sub)] = true
		}
	}
	return dirs
}

// Unpublish takes back messages that Place or Publish put in place and
// that the caller then could not accept (it answers the client no): each is
// unlinked from new/ or cur/, and each directory fsynced, so that the
// refused message is gone for good. Messages not published are left
// alone. A message that another program renamed or removed since is not
// found under its name: the error then wraps ErrMoved (what was renamed
// stays where it went). Crash before the fsync: a power failure may bring
// a message back, as one delivered but never acknowledged.
func Unpublish(staged []*Staged) error {
	var errs []error
	dirs := targetDirs(staged)
	for _, s := range staged {
		if s.name == "" {
			continue
		}
		if err := Remove(s.dir, s.sub, s.name); err != nil {
			errs = append(errs, err)
		}
		s.sub, s.name = "", ""
	}
	for dir := range dirs {
		if err := SyncDir(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SyncPlacedAt is SyncPlaced for messages staged in the Maildir whose
// directory is open as dir: new/ and cur/ are opened from dir, not by
// path, so that a Maildir another program renamed after Place is still
// the one made durable.
func SyncPlacedAt(dir *os.File, staged []*Staged) error {
	for sub := range placedSubs(staged) {
		fd, err := OpenSubdirAt(int(dir.Fd()), sub)
		if err != nil {
			return err
		}
		err = retryEINTR(func() error { return unix.Fsync(fd) })
		unix.Close(fd)
		if err != nil {
			return &os.PathError{Op: "fsync", Path: filepath.Join(dir.Name(), sub), Err: err}
		}
	}
	return nil
}

// UnpublishAt is Unpublish for messages staged in the Maildir whose
// directory is open as dir: each is unlinked from new/ or cur/ opened
// from dir, so that a Maildir another program renamed after Place still
// loses the messages it was refused, and nothing is unlinked from a
// directory that took its name meanwhile.
func UnpublishAt(dir *os.File, staged []*Staged) error {
	var errs []error
	for sub, names := range placedSubs(staged) {
		fd, err := OpenSubdirAt(int(dir.Fd()), sub)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, name := range names {
			err := retryEINTR(func() error { return unix.Unlinkat(fd, name, 0) })
			if err != nil {
				perr := &os.PathError{Op: "unlink", Path: filepath.Join(dir.Name(), sub, name), Err: err}
				if err == unix.ENOENT {
					errs = append(errs, fmt.Errorf("%w: %w", ErrMoved, perr))
				} else {
					errs = append(errs, perr)
				}
			}
		}
		if err := retryEINTR(func() error { return unix.Fsync(fd) }); err != nil {
			errs = append(errs, &os.PathError{Op: "fsync", Path: filepath.Join(dir.Name(), sub), Err: err})
		}
		unix.Close(fd)
	}
	for _, s := range staged {
		s.sub, s.name = "", ""
	}
	return errors.Join(errs...)
}

// placedSubs is the file names of the published messages of staged, by
// the subdirectory (new/ or cur/) they are in.
func placedSubs(staged []*Staged) map[string][]string {
	subs := make(map[string][]string)
	for _, s := range staged {
		if s.name != "" {
			subs[s.sub] = append(subs[s.sub], s.name)
		}
	}
	return subs
}

// createTmp creates a fresh file in dir/tmp with O_EXCL.
func createTmp(dir string, gen *NameGen, now time.Time, perm os.FileMode) (*os.File, string, error) {
	return createExcl(filepath.Join(dir, Tmp), "", gen, now, perm)
}

// createExcl creates a file dir/<prefix><unique> with O_EXCL, retrying
// with a fresh name while the name is taken.
func createExcl(dir, prefix string, gen *NameGen, now time.Time, perm os.FileMode) (*os.File, string, error) {
	var err error
	for range maxNameTries {
		path := filepath.Join(dir, prefix+gen.New(now))
		var f *os.File
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err == nil {
			return f, path, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, "", err
		}
	}
	return nil, "", err
}

// Link delivers the message file srcPath, already durable elsewhere (in
// another Maildir, for a message with several recipients), into the
// Maildir dir as a hard link under a new unique name, and returns that
// name. The steps and their crash outcomes are Deliver's, with the copy
// replaced by link(2) into tmp/: a crash leaves at most an extra link in
// tmp/ (removed by CleanTmp), or a published but not yet durable name.
//
// The size fields come from srcPath's name when it has them and its S=
// matches the file, else from reading the file. opts.Time and opts.Perm
// are ignored: the two names share one inode. When srcPath is on another
// filesystem, the error wraps ErrCrossDevice and the caller should copy
// with Deliver.
//
// Link is StageLink and Publish in one call.
func Link(srcPath, dir string, opts DeliverOptions) (filename string, err error) {
	s, err := StageLink(srcPath, dir, opts)
	if err != nil {
		return "", err
	}
	if err := Publish([]*Staged{s}); err != nil {
		s.Discard()
		return "", fmt.Errorf("maildir: link into %s: %w", dir, err)
	}
	return s.Filename(), nil
}

// StageLink is Stage for a message that is already a durable file
// (srcPath): a hard link to it is made in dir's tmp/, which is as durable
// as its directory entry (Publish fsyncs the target directory). Crash: an
// extra link in tmp/, which CleanTmp removes. Errors are Link's.
func StageLink(srcPath, dir string, opts DeliverOptions) (*Staged, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	// Lstat: link(2) would link a symbolic link itself, and what it
	// points at is no message of ours (nofollow.go).
	fi, err := os.Lstat(srcPath)
	if err != nil {
		return nil, fmt.Errorf("maildir: link into %s: %w", dir, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("maildir: link into %s: %s: %w", dir, srcPath, ErrNotRegular)
	}
	size, vsize := SizeFields(BaseName(filepath.Base(srcPath)))
	if size != fi.Size() || vsize < 0 {
		if size, vsize, err = measureFile(srcPath); err != nil {
			return nil, fmt.Errorf("maildir: link into %s: %w", dir, err)
		}
	}

	now := time.Now()
	gen := opts.gen()
	var tmpPath string
	for range maxNameTries {
		tmpPath = filepath.Join(dir, Tmp, gen.New(now))
		err = retryEINTR(func() error { return unix.Link(srcPath, tmpPath) })
		if err != unix.EEXIST {
			break
		}
	}
	if err != nil {
		lerr := &os.LinkError{Op: "link", Old: srcPath, New: tmpPath, Err: err}
		if err == unix.EXDEV {
			return nil, fmt.Errorf("maildir: link into %s: %w: %w", dir, ErrCrossDevice, lerr)
		}
		return nil, fmt.Errorf("maildir: link into %s: %w", dir, lerr)
	}
	return opts.staged(dir, tmpPath, size, vsize, gen, now), nil
}

// measureFile returns the size and the CRLF size of the file at path.
func measureFile(path string) (size, vsize int64, err error) {
	f, err := OpenRegular(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	cw := crlfCounter{w: io.Discard}
	if _, err := io.CopyBuffer(&cw, onlyReader{f}, make([]byte, copyBufSize)); err != nil {
		return 0, 0, err
	}
	return cw.size, cw.vsize, nil
}

// crlfCounter passes writes through to w, counting the bytes (size) and
// the bytes as if every bare LF were CRLF (vsize, Dovecot's W= and IMAP's
// RFC822.SIZE). A lone CR counts as one byte; a missing final line ending
// adds nothing.
type crlfCounter struct {
	w         io.Writer
	size      int64
	vsize     int64
	lastWasCR bool
}

func (c *crlfCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	prevCR := c.lastWasCR
	for _, b := range p[:n] {
		if b == '\n' && !prevCR {
			c.vsize++
		}
		prevCR = b == '\r'
	}
	if n > 0 {
		c.lastWasCR = prevCR
	}
	c.size += int64(n)
	c.vsize += int64(n)
	return n, err
}

// onlyReader hides a reader's WriterTo, so that io.CopyBuffer goes
// through crlfCounter.Write with the given buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
