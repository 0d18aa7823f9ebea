package fsck

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cistern-mail/cistern/internal/mailboxname"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// Kind names one kind of finding (see the package documentation).
type Kind string

// The kinds of findings.
const (
	Header          Kind = "header"
	DamagedLine     Kind = "damaged-line"
	DuplicateUID    Kind = "duplicate-uid"
	UIDOrder        Kind = "uid-order"
	DuplicateRecord Kind = "duplicate-record"
	NextUID         Kind = "next-uid"
	StaleRecord     Kind = "stale-record"
	MissingUID      Kind = "missing-uid"
	DuplicateName   Kind = "duplicate-name"
	UnnamedKeyword  Kind = "unnamed-keyword"
	StaleTmp        Kind = "stale-tmp"
	Quota           Kind = "quota"
	IndexStale      Kind = "index-stale"
	IndexSize       Kind = "index-size"
	Symlink         Kind = "symlink"
)

// uidlistKinds are the findings a rewrite of dovecot-uidlist repairs.
var uidlistKinds = []Kind{Header, DamagedLine, DuplicateUID, UIDOrder, DuplicateRecord, NextUID, StaleRecord}

// Finding is one violated invariant.
type Finding struct {
	// Mailbox is the mailbox's IMAP name: "INBOX" for the root, else
	// its folder's name ("Sent", "Archive.2024", "Entwürfe").
	Mailbox string
	// Dir is the mailbox directory (for index findings of a mailbox that
	// is gone: the directory the index names).
	Dir    string
	Kind   Kind
	Detail string
	// Base is the base name of the message concerned, if one is.
	Base string
	// UID is the UID concerned, if one is.
	UID uint32
	// Path is the file concerned, relative to the root, if one is (a
	// symbolic link).
	Path string
}

func (f Finding) String() string {
	return f.Mailbox + ": " + string(f.Kind) + ": " + f.Detail
}

// Note is information that is not a finding: the proofs the filesystem
// allows, a part that could not be checked and why.
type Note struct {
	Mailbox string // "" for the whole tree
	Text    string
}

func (n Note) String() string {
	if n.Mailbox == "" {
		return n.Text
	}
	return n.Mailbox + ": " + n.Text
}

// Report is the result of a Check.
type Report struct {
	Root string
	// Caps are the proofs listings can have on the root's filesystem.
	Caps      maildir.Capabilities
	Mailboxes []string // checked, INBOX first
	Messages  int      // message files (distinct base names) found
	Findings  []Finding
	Notes     []Note
}

// Clean reports whether nothing was found.
func (r *Report) Clean() bool { return len(r.Findings) == 0 }

// Counts returns the number of findings of each kind, in the order of
// the package documentation's table.
func (r *Report) Counts() []KindCount {
	n := make(map[Kind]int)
	for _, f := range r.Findings {
		n[f.Kind]++
	}
	var out []KindCount
	for _, k := range allKinds {
		if n[k] > 0 {
			out = append(out, KindCount{k, n[k]})
		}
	}
	return out
}

// KindCount is a number of findings of one kind.
type KindCount struct {
	Kind  Kind
	Count int
}

var allKinds = []Kind{Header, DamagedLine, DuplicateUID, UIDOrder, DuplicateRecord, NextUID, StaleRecord,
	MissingUID, DuplicateName, UnnamedKeyword, StaleTmp, Quota, IndexStale, IndexSize, Symlink}

// Options say what to check and how. Root is required.
type Options struct {
	// Root is the user's root Maildir (INBOX); its Maildir++ folders are
	// checked with it.
	Root string
	// IndexPath is the daemon's index (<data_dir>/index.db); "" skips the
	// index.
	IndexPath string
	// Quota is the user's limit, compared with maildirsize's; nil when
	// unknown (the file's own limit is taken). maildirsize is checked
	// when it exists or when Quota limits something.
	Quota *store.QuotaLimit
	// Now is the clock for the age of tmp/ files (nil: time.Now).
	Now func() time.Time
	// Caps, when set, replace filesystem detection (tests).
	Caps *maildir.Capabilities
	// Lock tunes the mailbox lock that Repair takes.
	Lock uidlist.LockOptions
	// Logger receives what the store says while Repair syncs (nil:
	// discarded).
	Logger *slog.Logger
	// Progress, when set, is called before each mailbox with the number
	// done so far, the total and the mailbox's name, and once at the end
	// with done == total.
	Progress func(done, total int, mailbox string)
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) progress(done, total int, name string) {
	if o.Progress != nil {
		o.Progress(done, total, name)
	}
}

// mailbox is one Maildir of the tree.
type mailbox struct {
	name string
	dir  string
}

// loc is where a message file was seen.
type loc struct{ sub, name string }

// listing is new/ and cur/ of one mailbox, read as one.
type listing struct {
	files  map[string][]loc // base name -> sightings
	links  []loc            // symbolic links: no messages
	proven bool
}

// mailboxes returns the root (INBOX) and every folder under it.
func mailboxes(root string) ([]mailbox, error) {
	mbs, err := mailboxname.List(root, nil)
	if err != nil {
		return nil, err
	}
	out := make([]mailbox, len(mbs))
	for i, mb := range mbs {
		out[i] = mailbox{mb.Name, mb.Dir}
	}
	return out, nil
}

// cleanRoot returns Root absolute and clean, as the daemon names it in
// the index, and checks that it is a Maildir.
func cleanRoot(root string) (string, error) {
	if root == "" {
		return "", errors.New("fsck: no Maildir given")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	if err := maildir.CheckMaildir(abs); err != nil {
		return "", fmt.Errorf("fsck: %s is not a Maildir (tmp/, new/ and cur/ directories, none a symbolic link): %w", abs, err)
	}
	return abs, nil
}

// testHookBeforeSecondReading, set by tests, runs before a finding that
// a live writer may have caused is checked again: the moment that writer
// finishes.
var testHookBeforeSecondReading func(dir string)

// checker holds the state of one Check.
type checker struct {
	opts  Options
	root  string
	caps  maildir.Capabilities
	rep   *Report
	scans map[string]*listing // mailbox directory -> its listing
	names map[string]string   // mailbox directory -> name
}

// Check verifies every invariant of the Maildir tree at opts.Root and
// returns what it found. It writes nothing and takes no lock. An error
// means the tree could not be read at all (a mailbox that vanishes
// meanwhile is a note, not an error).
func Check(ctx context.Context, opts Options) (*Report, error) {
	root, err := cleanRoot(opts.Root)
	if err != nil {
		return nil, err
	}
	c := &checker{opts: opts, root: root, scans: map[string]*listing{}, names: map[string]string{}}
	if opts.Caps != nil {
		c.caps = *opts.Caps
	} else if c.caps, err = maildir.Detect(root, filepath.Join(root, maildir.Tmp)); err != nil {
		return nil, err
	}
	c.rep = &Report{Root: root, Caps: c.caps}
	c.rep.Notes = append(c.rep.Notes, Note{Text: proofNote(c.caps)})
	if err := c.findLinks(); err != nil {
		return nil, err
	}
	mbs, err := mailboxes(root)
	if err != nil {
		return nil, err
	}
	for i, mb := range mbs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c.opts.progress(i, len(mbs), mb.name)
		err := c.checkMailbox(mb)
		if mb.dir != root && errors.Is(err, fs.ErrNotExist) {
			c.note(mb.name, "removed while it was checked")
			continue
		}
		if mb.dir != root && errors.Is(err, fs.ErrPermission) {
			// Listed (it exists), but this user may not read it; the
			// rest of the tree is still worth checking.
			c.note(mb.name, "cannot be read by this user: not checked")
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fsck: %s: %w", mb.dir, err)
		}
		c.rep.Mailboxes = append(c.rep.Mailboxes, mb.name)
		c.names[mb.dir] = mb.name
	}
	if err := c.checkQuota(); err != nil {
		return nil, err
	}
	if err := c.checkIndex(); err != nil {
		return nil, err
	}
	c.opts.progress(len(mbs), len(mbs), "")
	return c.rep, nil
}

// proofNote says which proofs of completeness listings can have.
func proofNote(c maildir.Capabilities) string {
	var proofs []string
	if c.AtomicRead {
		proofs = append(proofs, maildir.ProofAtomic.String())
	}
	if c.StableTimestamps() {
		proofs = append(proofs, maildir.ProofStableTimestamp.String())
	}
	if len(proofs) == 0 {
		return fmt.Sprintf("filesystem %s: listings cannot be proven complete (proof none): records without a file are not reported", c.FSType)
	}
	return fmt.Sprintf("filesystem %s: listings can be proven complete (proofs: %s)", c.FSType, strings.Join(proofs, ", "))
}

func (c *checker) add(mb mailbox, p problem) {
	c.rep.Findings = append(c.rep.Findings, Finding{Mailbox: mb.name, Dir: mb.dir, Kind: p.kind, Detail: p.detail, Base: p.base, UID: p.uid, Path: p.path})
}

func (c *checker) note(mailbox, text string) {
	c.rep.Notes = append(c.rep.Notes, Note{Mailbox: mailbox, Text: text})
}

// list reads new/, then cur/ (a message moving between them is seen
// twice, never zero times), and with again new/ once more (a message
// moved back from cur/ to new/ between the two reads).
func list(dir string, caps *maildir.Capabilities, again bool) (*listing, error) {
	l := &listing{files: make(map[string][]loc), proven: true}
	subs := []string{maildir.New, maildir.Cur}
	if again {
		subs = append(subs, maildir.New)
	}
	for _, sub := range subs {
		ls, err := maildir.List(filepath.Join(dir, sub), maildir.ListOptions{Caps: caps})
		if err != nil {
			return nil, err
		}
		if !ls.Proof.Proven() {
			l.proven = false
		}
		for i, name := range ls.Names {
			if isLinkType(ls.Types[i]) && !slices.Contains(l.links, loc{sub, name}) {
				l.links = append(l.links, loc{sub, strings.Clone(name)})
			}
			if !store.IsMessage(name, ls.Types[i]) {
				continue
			}
			base := maildir.BaseName(name)
			if slices.Contains(l.files[base], loc{sub, name}) {
				continue
			}
			l.files[base] = append(l.files[base], loc{sub, strings.Clone(name)})
		}
	}
	return l, nil
}

func (l *listing) has(base string) bool {
	_, ok := l.files[base]
	return ok
}

// first returns the sighting of base to name in a finding, cur/ first.
func (l *listing) first(base string) loc {
	locs := l.files[base]
	best := locs[0]
	for _, x := range locs[1:] {
		if x.sub == maildir.Cur && best.sub != maildir.Cur {
			best = x
		}
	}
	return best
}

// compare returns the base names with a file but no record, and the
// records without a file (only when proven).
func compare(a *uidAnalysis, l *listing) (missing []string, stale []uidlist.Record) {
	recs := a.records()
	for base := range l.files {
		if _, ok := recs[base]; !ok {
			missing = append(missing, base)
		}
	}
	slices.Sort(missing)
	if a != nil && a.file != nil && l.proven {
		for _, r := range a.file.Records {
			if !l.has(r.Base()) {
				stale = append(stale, r)
			}
		}
	}
	return missing, stale
}

func (c *checker) checkMailbox(mb mailbox) error {
	path := filepath.Join(mb.dir, uidlist.FileName)
	ul, err := readUIDList(path)
	if err != nil {
		return err
	}
	l, err := list(mb.dir, &c.caps, false)
	if err != nil {
		return err
	}
	c.scans[mb.dir] = l
	c.rep.Messages += len(l.files)
	c.messageLinks(mb, l)

	if ul != nil && len(ul.problems) > 0 {
		// An append under way looks like a damaged last line: read again.
		if testHookBeforeSecondReading != nil {
			testHookBeforeSecondReading(mb.dir)
		}
		if ul, err = readUIDList(path); err != nil {
			return err
		}
		if ul != nil {
			for _, p := range ul.problems {
				c.add(mb, p)
			}
		}
	}
	if ul != nil && ul.file == nil {
		c.note(mb.name, "the files are not compared with dovecot-uidlist, whose header is unusable")
	} else {
		if err := c.compareFiles(mb, path, ul, l); err != nil {
			return err
		}
	}
	if ul == nil && len(l.files) > 0 {
		if _, err := os.Stat(filepath.Join(mb.dir, uidlist.CourierFileName)); err == nil {
			c.note(mb.name, "no dovecot-uidlist, but a courierimapuiddb: 'cistern migrate' adopts Courier's UIDs")
		}
	}
	if !l.proven {
		c.note(mb.name, "the listing of new/ and cur/ could not be proven complete: records without a file are not reported")
	}
	if err := c.checkDuplicates(mb, l); err != nil {
		return err
	}
	if err := c.checkKeywords(mb, l); err != nil {
		return err
	}
	return c.checkTmp(mb)
}

// compareFiles reports files without a record and records without a
// file, each only when a second reading of the uidlist and the
// directories confirms it.
func (c *checker) compareFiles(mb mailbox, path string, ul *uidAnalysis, l *listing) error {
	missing, stale := compare(ul, l)
	if len(missing) == 0 && len(stale) == 0 {
		return nil
	}
	if testHookBeforeSecondReading != nil {
		testHookBeforeSecondReading(mb.dir)
	}
	ul2, err := readUIDList(path)
	if err != nil {
		return err
	}
	l2, err := list(mb.dir, &c.caps, true)
	if err != nil {
		return err
	}
	missing2, stale2 := compare(ul2, l2)
	stillMissing := make(map[string]bool, len(missing2))
	for _, base := range missing2 {
		stillMissing[base] = true
	}
	type record struct {
		uid  uint32
		base string
	}
	stillStale := make(map[record]bool, len(stale2))
	for _, r := range stale2 {
		stillStale[record{r.UID, r.Base()}] = true
	}
	for _, base := range missing {
		if !stillMissing[base] {
			continue
		}
		where := l2.first(base)
		detail := where.sub + "/" + where.name + " has no UID in dovecot-uidlist"
		if ul2 == nil {
			detail = where.sub + "/" + where.name + " has no UID: there is no dovecot-uidlist"
		}
		c.add(mb, problem{kind: MissingUID, base: base, detail: detail})
	}
	for _, r := range stale {
		if !stillStale[record{r.UID, r.Base()}] {
			continue
		}
		c.add(mb, problem{kind: StaleRecord, uid: r.UID, base: r.Base(),
			detail: fmt.Sprintf("UID %d (%s): no file in new/ or cur/", r.UID, r.Base())})
	}
	return nil
}

// checkDuplicates reports base names held by two different files (not
// a rename seen twice, not two links of one file).
func (c *checker) checkDuplicates(mb mailbox, l *listing) error {
	var bases []string
	for base, locs := range l.files {
		if len(locs) > 1 {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	for _, base := range bases {
		distinct, err := distinctFiles(mb.dir, l.files[base])
		if err != nil {
			return err
		}
		if len(distinct) < 2 {
			continue
		}
		names := make([]string, len(distinct))
		for i, d := range distinct {
			names[i] = d.sub + "/" + d.name
		}
		c.add(mb, problem{kind: DuplicateName, base: base,
			detail: fmt.Sprintf("base name %s is held by %d different files: %s", base, len(distinct), strings.Join(names, ", "))})
	}
	return nil
}

// distinctFiles returns the sightings that still exist, one per inode.
func distinctFiles(dir string, locs []loc) ([]loc, error) {
	var out []loc
	var infos []os.FileInfo
	for _, x := range locs {
		fi, err := os.Lstat(filepath.Join(dir, x.sub, x.name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // renamed meanwhile: the same message seen twice
		}
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(infos, func(o os.FileInfo) bool { return os.SameFile(o, fi) }) {
			continue
		}
		out = append(out, x)
		infos = append(infos, fi)
	}
	return out, nil
}

// checkKeywords reports keyword letters in file names that
// dovecot-keywords does not name.
func (c *checker) checkKeywords(mb mailbox, l *listing) error {
	type use struct {
		count   int
		example string
	}
	var uses [uidlist.MaxKeywords]use
	for _, locs := range l.files {
		for _, x := range locs {
			n, err := maildir.ParseName(x.name)
			if err != nil {
				continue
			}
			kw := n.Flags.Keywords()
			for i := range uidlist.MaxKeywords {
				if kw.Has(byte('a' + i)) {
					u := &uses[i]
					u.count++
					if name := x.sub + "/" + x.name; u.example == "" || name < u.example {
						u.example = name
					}
				}
			}
		}
	}
	unnamed := func() ([]int, error) {
		k, _, err := uidlist.ReadKeywords(mb.dir)
		if err != nil {
			return nil, err
		}
		var out []int
		for i, u := range uses {
			if _, ok := k.Name(byte('a' + i)); u.count > 0 && !ok {
				out = append(out, i)
			}
		}
		return out, nil
	}
	first, err := unnamed()
	if err != nil || len(first) == 0 {
		return err
	}
	// A writer adds a name before it renames files to carry its letter;
	// a name added since the first reading is there now.
	again, err := unnamed()
	if err != nil {
		return err
	}
	for _, i := range again {
		u := uses[i]
		c.add(mb, problem{kind: UnnamedKeyword, detail: fmt.Sprintf("keyword letter %c on %d file(s) (%s) has no name in dovecot-keywords",
			'a'+i, u.count, u.example)})
	}
	return nil
}

// checkTmp reports files in tmp/ that maildir.CleanTmp would remove.
func (c *checker) checkTmp(mb mailbox) error {
	tmp := filepath.Join(mb.dir, maildir.Tmp)
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	cutoff := c.opts.now().Add(-maildir.StaleTmpAge)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := os.Lstat(filepath.Join(tmp, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !staleTmp(fi, cutoff) {
			continue
		}
		c.add(mb, problem{kind: StaleTmp, detail: fmt.Sprintf("tmp/%s: last changed %s, more than %v ago",
			e.Name(), fi.ModTime().UTC().Format(time.RFC3339), maildir.StaleTmpAge)})
	}
	return nil
}

// staleTmp is maildir.CleanTmp's rule: mtime and ctime before cutoff.
func staleTmp(fi os.FileInfo, cutoff time.Time) bool {
	if !fi.Mode().IsRegular() || !fi.ModTime().Before(cutoff) {
		return false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Sec, st.Ctim.Nsec).Before(cutoff)
	}
	return true
}

// checkQuota compares maildirsize with a recount, when the user has a
// quota or the file exists.
func (c *checker) checkQuota() error {
	inbox := mailbox{"INBOX", c.root}
	limited := c.opts.Quota != nil && !c.opts.Quota.Unlimited()
	limit, used, err := store.RecordedQuota(c.root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if limited {
			c.note(inbox.name, "no maildirsize: it is made when the quota is first checked")
		}
		return nil
	case errors.Is(err, store.ErrBadQuotaFile):
		c.add(inbox, problem{kind: Quota, detail: err.Error()})
		return nil
	case err != nil:
		return err
	}
	counted, err := store.RecalculateQuota(c.root, store.QuotaLimit{})
	if err != nil {
		return err
	}
	if counted != used {
		// Deliveries and expunges record their change after the fact:
		// look again before calling it drift.
		if limit, used, err = store.RecordedQuota(c.root); err != nil {
			return err
		}
		if counted, err = store.RecalculateQuota(c.root, store.QuotaLimit{}); err != nil {
			return err
		}
		if counted != used {
			c.add(inbox, problem{kind: Quota, detail: fmt.Sprintf("maildirsize records %d bytes in %d messages; the Maildir holds %d bytes in %d messages",
				used.Bytes, used.Messages, counted.Bytes, counted.Messages)})
		}
	}
	if limited && limit != *c.opts.Quota {
		c.add(inbox, problem{kind: Quota, detail: fmt.Sprintf("maildirsize has the limit %q; the user's quota is %q", limit.String(), c.opts.Quota.String())})
	}
	return nil
}

// checkIndex compares the daemon's index with the files: entries of
// messages or mailboxes that are gone, and entries whose size is not the
// file's.
func (c *checker) checkIndex() error {
	if c.opts.IndexPath == "" {
		return nil
	}
	inTree := func(dir string) bool {
		return dir == c.root || strings.HasPrefix(dir, c.root+string(filepath.Separator)+string(maildir.FolderSep))
	}
	entries, err := store.ReadIndex(c.opts.IndexPath, inTree)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.note("", "no index at "+c.opts.IndexPath+": nothing cached to check")
		return nil
	case errors.Is(err, store.ErrIndexBusy):
		c.note("", "the index "+c.opts.IndexPath+" is in use by another process (the daemon): not checked")
		return nil
	case err != nil:
		return err
	}
	dirs := make([]string, 0, len(entries))
	for dir := range entries {
		dirs = append(dirs, dir)
	}
	slices.Sort(dirs)
	for _, dir := range dirs {
		ents := entries[dir]
		l, ok := c.scans[dir]
		if !ok {
			if err := maildir.CheckMaildir(dir); err == nil || errors.Is(err, fs.ErrPermission) {
				continue // made after the check listed the folders, or not readable
			}
			name, ok := mailboxname.OfDir(c.root, dir)
			if !ok {
				name = dir
			}
			c.add(mailbox{name, dir}, problem{kind: IndexStale, detail: fmt.Sprintf("%d cached entries for %s, which is not a mailbox (any more)", len(ents), dir)})
			continue
		}
		mb := mailbox{c.names[dir], dir}
		bases := make([]string, 0, len(ents))
		for base := range ents {
			bases = append(bases, base)
		}
		slices.Sort(bases)
		for _, base := range bases {
			e := ents[base]
			if !l.has(base) {
				if l.proven {
					c.add(mb, problem{kind: IndexStale, base: base, detail: base + ": cached, but there is no such message"})
				}
				continue
			}
			size, err := fileSize(dir, l, base)
			if err != nil {
				return err
			}
			if size >= 0 && size != e.FileSize {
				c.add(mb, problem{kind: IndexSize, base: base, detail: fmt.Sprintf("%s: cached size %d, the file has %d bytes", base, e.FileSize, size)})
			}
		}
	}
	return nil
}

// fileSize is the size the index compares with: the S= field of the
// base name, else the file's size (-1 when the file vanished).
func fileSize(dir string, l *listing, base string) (int64, error) {
	if size, _ := maildir.SizeFields(base); size >= 0 {
		return size, nil
	}
	for _, x := range l.files[base] {
		fi, err := os.Stat(filepath.Join(dir, x.sub, x.name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	return -1, nil
}
