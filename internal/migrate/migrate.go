package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/cistern-mail/cistern/internal/mailboxname"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// Options say what to migrate and how. Root is required.
type Options struct {
	// Root is the user's root Maildir (INBOX); its Maildir++ folders are
	// migrated with it.
	Root string
	// DryRun: say what would be done, change nothing.
	DryRun bool
	// Lock tunes the mailbox lock.
	Lock uidlist.LockOptions
	// Caps, when set, replace filesystem detection (tests).
	Caps *maildir.Capabilities
	// Logger receives what the store says while it numbers files (nil:
	// discarded).
	Logger *slog.Logger
	// Progress, when set, is called before each mailbox with the number
	// done so far, the total and the mailbox's name, and once at the end
	// with done == total.
	Progress func(done, total int, mailbox string)
}

// Step is one thing done (or, in a dry run, to be done) or found.
type Step struct {
	Mailbox string // the IMAP name: "INBOX", or the folder's name ("Sent", "Entwürfe")
	Text    string
	// Warning marks what the migration left unconverted: something the
	// operator should look at.
	Warning bool
}

func (s Step) String() string { return s.Mailbox + ": " + s.Text }

// Result is what Run did.
type Result struct {
	Steps []Step
	// Mailboxes is the number of mailboxes looked at; Converted, of
	// those that had something of Courier's converted (or, in a dry
	// run, would have).
	Mailboxes, Converted int
}

// Warnings returns the steps that are warnings.
func (r *Result) Warnings() []Step {
	var out []Step
	for _, s := range r.Steps {
		if s.Warning {
			out = append(out, s)
		}
	}
	return out
}

// renameTouchEvery: the lock is touched after this many renames, so that
// a long conversion is not taken over as stale (uidlist.DefaultStaleAfter).
const renameTouchEvery = 1000

// Run migrates the tree at opts.Root as the package documentation says.
// An error means the tree could not be read or written; what was done
// before it is in the Result.
func Run(ctx context.Context, opts Options) (*Result, error) {
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, err
	}
	if !maildir.IsMaildir(root) {
		return nil, fmt.Errorf("migrate: %s is not a Maildir (no tmp/, new/ and cur/)", root)
	}
	m := &migrator{opts: opts, root: root, res: &Result{}}
	if m.log = opts.Logger; m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	mbs, err := mailboxname.List(root, func(name string, why error) {
		m.log.Warn("migrate: not a folder: a symbolic link, or holding one; never followed", "dir", filepath.Join(root, name), "err", why)
	})
	if err != nil {
		return nil, err
	}
	if err := m.subscriptions(); err != nil {
		return m.res, err
	}
	for i, mb := range mbs {
		if err := ctx.Err(); err != nil {
			return m.res, err
		}
		if opts.Progress != nil {
			opts.Progress(i, len(mbs), mb.Name)
		}
		if err := m.mailbox(ctx, mb.Name, mb.Dir); err != nil {
			return m.res, fmt.Errorf("migrate: %s: %w", mb.Dir, err)
		}
		m.res.Mailboxes++
	}
	if opts.Progress != nil {
		opts.Progress(len(mbs), len(mbs), "")
	}
	return m.res, nil
}

type migrator struct {
	opts Options
	root string
	log  *slog.Logger
	res  *Result
	mb   string // the mailbox being migrated
}

func (m *migrator) step(format string, args ...any) {
	m.res.Steps = append(m.res.Steps, Step{Mailbox: m.mb, Text: fmt.Sprintf(format, args...)})
}

func (m *migrator) warn(format string, args ...any) {
	m.res.Steps = append(m.res.Steps, Step{Mailbox: m.mb, Text: fmt.Sprintf(format, args...), Warning: true})
}

// would prefixes what a dry run only plans.
func (m *migrator) would(text string) string {
	if m.opts.DryRun {
		return "would " + text
	}
	return text
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// subscriptions converts courierimapsubscribed into subscriptions, when
// there is no subscriptions file yet.
func (m *migrator) subscriptions() error {
	m.mb = "INBOX"
	data, err := readFile(filepath.Join(m.root, CourierSubscribed))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	names, skipped := ConvertSubscriptions(data)
	for _, s := range skipped {
		m.warn("subscription %q is not a folder of this Maildir: not converted", s)
	}
	have, err := exists(filepath.Join(m.root, maildir.SubscriptionsFile))
	if err != nil {
		return err
	}
	if have {
		m.step("subscriptions exists: kept as it is, courierimapsubscribed not converted")
		return nil
	}
	if !m.opts.DryRun {
		if err := maildir.WriteSubscriptions(m.root, names); err != nil {
			return err
		}
	}
	m.step("%s", m.would(fmt.Sprintf("write subscriptions from courierimapsubscribed: %d folder(s)", len(names))))
	return nil
}

// listing is the message files of one mailbox.
type listing struct {
	files  map[string][]loc // base name -> sightings
	proven bool
}

type loc struct{ sub, name string }

// list reads new/ and then cur/.
func (m *migrator) list(dir string) (*listing, error) {
	l := &listing{files: map[string][]loc{}, proven: true}
	for _, sub := range []string{maildir.New, maildir.Cur} {
		ls, err := maildir.List(filepath.Join(dir, sub), maildir.ListOptions{Caps: m.opts.Caps})
		if err != nil {
			return nil, err
		}
		l.proven = l.proven && ls.Proof.Proven()
		for i, name := range ls.Names {
			if ls.Types[i] == syscall.DT_LNK {
				// Not a message, never followed (maildir/nofollow.go).
				m.log.Warn("migrate: ignoring a symbolic link: it is not a message", "file", filepath.Join(dir, sub, name))
				continue
			}
			if t := ls.Types[i]; t != syscall.DT_UNKNOWN && t != syscall.DT_REG {
				continue
			}
			if _, err := maildir.ParseName(name); err != nil {
				continue
			}
			base := maildir.BaseName(name)
			if !slices.Contains(l.files[base], loc{sub, name}) {
				l.files[base] = append(l.files[base], loc{sub, strings.Clone(name)})
			}
		}
	}
	return l, nil
}

// rename is one file name to change.
type rename struct {
	base  string
	from  loc
	flags maildir.Flags
}

// plan is what one mailbox needs.
type plan struct {
	keywords *uidlist.Keywords // nil: dovecot-keywords is not written
	renames  []rename
	uids     *uidlist.File // nil: dovecot-uidlist is not written
}

func (m *migrator) mailbox(ctx context.Context, name, dir string) error {
	m.mb = name
	l, err := m.list(dir)
	if err != nil {
		return err
	}
	var p plan
	if err := m.planKeywords(dir, l, &p); err != nil {
		return err
	}
	if err := m.planUIDs(dir, l, &p); err != nil {
		return err
	}
	if p.keywords == nil && p.uids == nil {
		return nil
	}
	m.res.Converted++
	if m.opts.DryRun {
		return nil
	}
	if err := m.apply(ctx, dir, &p); err != nil {
		return err
	}
	if p.uids == nil {
		return nil
	}
	// Files Courier had not numbered get their UIDs the normal way,
	// above Courier's next UID.
	mb, err := store.Open(dir, store.Options{Logger: m.log, Lock: m.opts.Lock, Caps: m.opts.Caps})
	if err != nil {
		return err
	}
	defer mb.Close()
	ch, err := mb.Sync(ctx)
	if err != nil {
		return err
	}
	if ch.Assigned > 0 {
		m.step("gave UIDs to %d message(s) that Courier had not numbered", ch.Assigned)
	}
	return nil
}

// planKeywords plans the conversion of courierimapkeywords/, when there
// is no dovecot-keywords yet.
func (m *migrator) planKeywords(dir string, l *listing, p *plan) error {
	ck, problems, err := ReadCourierKeywords(dir)
	if err != nil {
		return err
	}
	for _, pr := range problems {
		m.warn("%s", pr.String())
	}
	if ck == nil || len(ck.Messages) == 0 {
		return nil
	}
	have, err := exists(filepath.Join(dir, uidlist.KeywordsFileName))
	if err != nil {
		return err
	}
	if have {
		k, _, err := uidlist.ReadKeywords(dir)
		if err != nil {
			return err
		}
		if len(unlettered(k, ck, l)) == 0 && len(keywordRenames(k, ck, l)) == 0 {
			m.step("keywords: Courier's are in dovecot-keywords and the file names already")
		} else {
			m.step("keywords: dovecot-keywords exists and differs from courierimapkeywords/: kept as it is (keywords set or cleared since the migration stay so)")
		}
		return nil
	}
	// Letters go to the names in use, in Courier's order: the same
	// Courier files give the same letters on every run.
	used := map[string]bool{}
	for base, names := range ck.Messages {
		if _, ok := l.files[base]; ok {
			for _, n := range names {
				used[strings.ToLower(n)] = true
			}
		}
	}
	k := &uidlist.Keywords{}
	for _, n := range ck.Names {
		if !used[strings.ToLower(n)] {
			continue
		}
		if _, err := k.Add(n); err != nil {
			m.warn("keyword %q cannot be stored (%v): its messages keep it only in courierimapkeywords/", n, err)
		}
	}
	if k.Marshal() == nil {
		return nil // no message that has keywords exists
	}
	p.keywords = k
	p.renames = keywordRenames(k, ck, l)
	names := 0
	for _, n := range k.Names {
		if n != "" {
			names++
		}
	}
	m.step("%s", m.would(fmt.Sprintf("convert courierimapkeywords/: %d keyword(s) into dovecot-keywords, letters added to %d file name(s)",
		names, len(p.renames))))
	return nil
}

// keywordRenames returns the renames that give every file of a message
// with Courier keywords the letters k has for them.
func keywordRenames(k *uidlist.Keywords, ck *CourierKeywords, l *listing) []rename {
	bases := make([]string, 0, len(ck.Messages))
	for base := range ck.Messages {
		bases = append(bases, base)
	}
	slices.Sort(bases)
	var out []rename
	for _, base := range bases {
		var add maildir.Flags
		for _, n := range ck.Messages[base] {
			if c, ok := k.Letter(n); ok {
				add = add.With(c)
			}
		}
		if add == 0 {
			continue
		}
		for _, x := range l.files[base] {
			n, err := maildir.ParseName(x.name)
			if err != nil {
				continue
			}
			if n.Flags|add != n.Flags || !n.Standard {
				out = append(out, rename{base: base, from: x, flags: n.Flags | add})
			}
		}
	}
	return out
}

// unlettered returns the keyword names of existing messages that k has
// no letter for.
func unlettered(k *uidlist.Keywords, ck *CourierKeywords, l *listing) []string {
	var out []string
	for base, names := range ck.Messages {
		if _, ok := l.files[base]; !ok {
			continue
		}
		for _, n := range names {
			if _, ok := k.Letter(n); !ok {
				out = appendName(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// planUIDs plans dovecot-uidlist from courierimapuiddb, when there is no
// dovecot-uidlist yet.
func (m *migrator) planUIDs(dir string, l *listing, p *plan) error {
	courierPath := filepath.Join(dir, uidlist.CourierFileName)
	data, err := readFile(courierPath)
	courier := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	ulPath := filepath.Join(dir, uidlist.FileName)
	ulData, err := readFile(ulPath)
	hasUIDList := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	switch {
	case !courier && hasUIDList:
		m.step("dovecot-uidlist: kept as it is")
		return nil
	case !courier:
		if len(l.files) > 0 {
			m.step("no UID map (neither courierimapuiddb nor dovecot-uidlist): the %d message(s) get UIDs and a new UIDVALIDITY when the mailbox is first opened", len(l.files))
		}
		return nil
	}
	cf, problems, err := uidlist.ParseCourier(courierPath, data)
	for _, pr := range problems {
		m.warn("%s", pr.String())
	}
	if err != nil {
		if !hasUIDList {
			m.warn("courierimapuiddb is unusable (%v): not converted; the messages get new UIDs and a new UIDVALIDITY when the mailbox is first opened", err)
		}
		return nil
	}
	if hasUIDList {
		m.compareUIDs(ulPath, ulData, cf)
		return nil
	}
	f := &uidlist.File{Header: uidlist.Header{Version: 3, UIDValidity: cf.Header.UIDValidity, NextUID: cf.Header.NextUID}}
	dropped := 0
	for _, r := range cf.Records {
		base := r.Base()
		if _, ok := l.files[base]; !ok && l.proven {
			dropped++
			continue
		}
		f.Records = append(f.Records, uidlist.Record{UID: r.UID, Name: base})
	}
	p.uids = f
	text := fmt.Sprintf("write dovecot-uidlist from courierimapuiddb: UIDVALIDITY %d, next UID %d, %d record(s)",
		f.Header.UIDValidity, f.Header.NextUID, len(f.Records))
	if dropped > 0 {
		text += fmt.Sprintf(" (%d of messages that are gone left out)", dropped)
	}
	m.step("%s", m.would(text))
	return nil
}

// compareUIDs reports whether an existing dovecot-uidlist carries
// Courier's UIDs (a migration done before, or the daemon's own import).
func (m *migrator) compareUIDs(path string, data []byte, cf *uidlist.File) {
	f, _, err := uidlist.Parse(path, data)
	if err != nil {
		m.warn("dovecot-uidlist is unusable (%v): courierimapuiddb not converted over it; see 'cistern check'", err)
		return
	}
	if f.Header.UIDValidity != cf.Header.UIDValidity {
		m.warn("dovecot-uidlist has UIDVALIDITY %d, courierimapuiddb %d: kept dovecot-uidlist (clients that knew Courier's UIDs download this mailbox again)",
			f.Header.UIDValidity, cf.Header.UIDValidity)
		return
	}
	uids := make(map[string]uint32, len(f.Records))
	for _, r := range f.Records {
		uids[r.Base()] = r.UID
	}
	differ := 0
	for _, r := range cf.Records {
		if u, ok := uids[r.Base()]; ok && u != r.UID {
			differ++
		}
	}
	if differ > 0 {
		m.warn("dovecot-uidlist gives %d message(s) other UIDs than courierimapuiddb: kept dovecot-uidlist's", differ)
		return
	}
	m.step("dovecot-uidlist already has Courier's UIDVALIDITY %d and UIDs", cf.Header.UIDValidity)
}

// apply carries out p under the mailbox lock, in the documented order.
func (m *migrator) apply(ctx context.Context, dir string, p *plan) error {
	lock, err := uidlist.AcquireLock(ctx, dir, m.opts.Lock)
	if err != nil {
		return err
	}
	defer lock.Release()
	for i, r := range p.renames {
		if i > 0 && i%renameTouchEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := lock.Touch(); err != nil {
				return err
			}
		}
		if err := m.rename(dir, r); err != nil {
			return err
		}
	}
	if p.keywords != nil {
		if err := uidlist.WriteKeywords(lock, dir, p.keywords); err != nil {
			return err
		}
	}
	if p.uids != nil {
		if err := uidlist.Rewrite(lock, dir, p.uids); err != nil {
			return err
		}
	}
	return nil
}

// rename gives one file its keyword letters. A file that another program
// renamed meanwhile is looked for again, once.
func (m *migrator) rename(dir string, r rename) error {
	_, err := maildir.SetFlags(dir, r.from.sub, r.from.name, r.flags)
	if !errors.Is(err, maildir.ErrMoved) {
		return err
	}
	l, err := m.list(dir)
	if err != nil {
		return err
	}
	for _, x := range l.files[r.base] {
		n, err := maildir.ParseName(x.name)
		if err != nil {
			continue
		}
		letters := r.flags.Keywords()
		if _, err := maildir.SetFlags(dir, x.sub, x.name, n.Flags|letters); err != nil && !errors.Is(err, maildir.ErrMoved) {
			return err
		}
		return nil
	}
	m.warn("%s vanished while its keywords were converted", r.base)
	return nil
}
