package fsck

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

	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// Action is one thing Repair did, or left undone and why.
type Action struct {
	Mailbox string // "" for the whole tree
	Text    string
}

func (a Action) String() string {
	if a.Mailbox == "" {
		return a.Text
	}
	return a.Mailbox + ": " + a.Text
}

// syncRounds is how many syncs Repair runs on a mailbox: the store gives
// the later of two different files with one base name a fresh name in
// one sync and numbers it in the next.
const syncRounds = 2

// Repair repairs what rep (a Check of the same opts) found, as the
// package documentation says, and returns what it did. No message's UID
// changes. Run Check again to see what is left.
func Repair(ctx context.Context, opts Options, rep *Report) ([]Action, error) {
	root, err := cleanRoot(opts.Root)
	if err != nil {
		return nil, err
	}
	r := &repairer{opts: opts, root: root}
	if r.log = opts.Logger; r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// Findings by mailbox, in the order the check met them.
	type group struct {
		mb    mailbox
		kinds map[Kind]bool
	}
	var groups []*group
	byDir := map[string]*group{}
	index := map[string][]string{}
	var goneMailboxes []string
	var links []Finding
	quota := false
	for _, f := range rep.Findings {
		switch f.Kind {
		case Symlink:
			links = append(links, f)
			continue
		case Quota:
			quota = true
			continue
		case IndexStale, IndexSize:
			if f.Base == "" {
				goneMailboxes = append(goneMailboxes, f.Dir)
			} else {
				index[f.Dir] = append(index[f.Dir], f.Base)
			}
			continue
		}
		g := byDir[f.Dir]
		if g == nil {
			g = &group{mb: mailbox{f.Mailbox, f.Dir}, kinds: map[Kind]bool{}}
			byDir[f.Dir] = g
			groups = append(groups, g)
		}
		g.kinds[f.Kind] = true
	}
	if err := r.moveLinksAside(links); err != nil {
		return r.actions, fmt.Errorf("fsck: moving symbolic links aside: %w", err)
	}
	for i, g := range groups {
		if err := ctx.Err(); err != nil {
			return r.actions, err
		}
		opts.progress(i, len(groups), g.mb.name)
		if err := r.repairMailbox(ctx, g.mb, g.kinds); err != nil {
			return r.actions, fmt.Errorf("fsck: repairing %s: %w", g.mb.dir, err)
		}
	}
	opts.progress(len(groups), len(groups), "")
	if quota {
		if err := r.repairQuota(); err != nil {
			return r.actions, err
		}
	}
	if len(index) > 0 || len(goneMailboxes) > 0 {
		if err := r.repairIndex(index, goneMailboxes); err != nil {
			return r.actions, err
		}
	}
	return r.actions, nil
}

type repairer struct {
	opts    Options
	root    string
	log     *slog.Logger
	actions []Action
}

func (r *repairer) did(mb, format string, args ...any) {
	r.actions = append(r.actions, Action{Mailbox: mb, Text: fmt.Sprintf(format, args...)})
}

func (r *repairer) repairMailbox(ctx context.Context, mb mailbox, kinds map[Kind]bool) error {
	if kinds[StaleTmp] {
		n, err := maildir.CleanTmp(mb.dir, r.opts.now())
		if err != nil {
			return err
		}
		r.did(mb.name, "removed %d stale file(s) from tmp/", n)
	}
	usable := true
	if slices.ContainsFunc(uidlistKinds, func(k Kind) bool { return kinds[k] }) {
		var err error
		if usable, err = r.rewriteUIDList(ctx, mb); err != nil {
			return err
		}
	}
	if usable && (kinds[MissingUID] || kinds[DuplicateName]) {
		if err := r.sync(ctx, mb); err != nil {
			return err
		}
	}
	if kinds[UnnamedKeyword] {
		r.did(mb.name, "left keyword letters without a name as they are: add each name to dovecot-keywords (\"<index> <name>\", index 0 for letter a)")
	}
	return nil
}

// rewriteUIDList rewrites dovecot-uidlist under the mailbox lock as
// uidAnalysis.rebuild says, with the records of files that proven
// listings, made under the lock, lack dropped. usable is false when the
// header is unusable and cannot be salvaged: nothing may then number
// files without giving the mailbox a new UIDVALIDITY.
func (r *repairer) rewriteUIDList(ctx context.Context, mb mailbox) (usable bool, err error) {
	lock, err := uidlist.AcquireLock(ctx, mb.dir, r.opts.Lock)
	if err != nil {
		return false, err
	}
	defer lock.Release()
	path := filepath.Join(mb.dir, uidlist.FileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	a := analyzeUIDList(path, data)
	if a.file == nil {
		r.did(mb.name, "left dovecot-uidlist as it is: its UIDVALIDITY cannot be read, and a new one would make every client download every message again")
		return false, nil
	}
	l, err := list(mb.dir, r.opts.Caps, true)
	if err != nil {
		return false, err
	}
	var present func(string) bool
	if l.proven {
		present = l.has
	}
	nf, st := a.rebuild(present)
	if len(a.problems) == 0 && st.dropped == 0 {
		return true, nil
	}
	if len(a.problems) > 0 {
		cp, err := uidlist.KeepCopy(mb.dir)
		if err != nil {
			return false, err
		}
		r.did(mb.name, "kept a copy of the damaged dovecot-uidlist as %s", filepath.Base(cp))
	}
	if err := uidlist.Rewrite(lock, mb.dir, nf); err != nil {
		return false, err
	}
	r.did(mb.name, "rewrote dovecot-uidlist: UIDVALIDITY %d, %d record(s), %d skipped line(s) restored with their UID, %d record(s) of files that are gone dropped, next UID %d",
		nf.Header.UIDValidity, len(nf.Records), st.restored, st.dropped, st.next)
	if !l.proven {
		r.did(mb.name, "kept the records without a file: the listing could not be proven complete")
	}
	return true, nil
}

// sync numbers the files without a UID and resolves duplicate base names
// with the store's own sync.
func (r *repairer) sync(ctx context.Context, mb mailbox) error {
	m, err := store.Open(mb.dir, store.Options{Logger: r.log, Lock: r.opts.Lock, Caps: r.opts.Caps, Now: r.opts.Now})
	if err != nil {
		return err
	}
	defer m.Close()
	assigned := 0
	for range syncRounds {
		ch, err := m.Sync(ctx)
		if err != nil {
			return err
		}
		assigned += ch.Assigned
	}
	r.did(mb.name, "synced with the store: %d UID(s) assigned, UIDVALIDITY %d", assigned, m.UIDValidity())
	return nil
}

// repairQuota rewrites maildirsize from a recount, with the user's limit
// when known, else the file's own.
func (r *repairer) repairQuota() error {
	var limit store.QuotaLimit
	if r.opts.Quota != nil && !r.opts.Quota.Unlimited() {
		limit = *r.opts.Quota
	} else if l, _, err := store.RecordedQuota(r.root); err == nil {
		limit = l
	}
	u, err := store.RewriteQuota(r.root, limit)
	if err != nil {
		return err
	}
	r.did("INBOX", "recalculated maildirsize: %d bytes in %d messages, limit %q", u.Bytes, u.Messages, limit.String())
	return nil
}

// repairIndex drops the index entries the check found wrong.
func (r *repairer) repairIndex(entries map[string][]string, gone []string) error {
	err := store.DropIndexEntries(r.opts.IndexPath, entries, gone)
	if errors.Is(err, store.ErrIndexBusy) {
		r.did("", "left the index as it is: another process (the daemon) holds it; repair it while the daemon is stopped (the daemon ignores an entry whose size is not the file's)")
		return nil
	}
	if err != nil {
		return err
	}
	n := 0
	for _, b := range entries {
		n += len(b)
	}
	r.did("", "dropped %d index entries and the entries of %d mailbox(es) that are gone", n, len(gone))
	return nil
}
