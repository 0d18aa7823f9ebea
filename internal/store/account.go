package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// Account is one user's tree of mailboxes: the root Maildir is INBOX, its
// Maildir++ folders (.A.B) the others. A folder is named by its path of
// elements ([]string{"A", "B"}); the IMAP layer chooses how to write it.
//
// Special-use attributes (RFC 6154) live in the root, in the file
// cistern-special-use, one "<attribute> <folder name>" per line, the
// folder name as on disk without its leading dot.
type Account struct {
	root  string     // immutable
	reg   *Registry  // immutable
	quota QuotaLimit // immutable; see OpenAccountWithQuota
	// maxFolders overrides the Registry's Options.MaxFolders when > 0
	// (folderlimit.go); set before use.
	maxFolders int

	mu sync.Mutex // serializes folder operations (maildir's folder calls need it)
}

// SpecialUseFile holds the special-use attributes of an account's folders.
const SpecialUseFile = "cistern-special-use"

// DefaultFolders are made, with their special-use attributes, when an
// account is created.
var DefaultFolders = []struct{ Name, SpecialUse string }{
	{"Drafts", `\Drafts`},
	{"Sent", `\Sent`},
	{"Trash", `\Trash`},
	{"Junk", `\Junk`},
	{"Archive", `\Archive`},
}

// Folder describes one mailbox of an account.
type Folder struct {
	// Path is empty for INBOX.
	Path       []string
	SpecialUse string
	// HasChildren: some folder lies below this one.
	HasChildren bool
	// Selectable is false for a level of the hierarchy that has no
	// Maildir of its own (.A.B exists, .A does not).
	Selectable bool
}

// ErrNoSuchFolder: the folder does not exist.
var ErrNoSuchFolder = errors.New("store: no such folder")

// OpenAccount opens the account whose INBOX is the Maildir root,
// creating it, with the default folders, when it does not exist.
//
// A new account appears whole or not at all: it is made in a sibling
// directory and renamed into place, so that a crash halfway never leaves
// an account without its default folders (a root that exists is taken as
// it is). A root directory that exists but is no Maildir (made by an
// operator) is filled in place. A root this process may not look inside
// gives an error matching fs.ErrPermission: it is never taken for one
// to fill.
func OpenAccount(root string, reg *Registry) (*Account, error) {
	a := &Account{root: filepath.Clean(root), reg: reg}
	if err := maildir.CheckMaildir(a.root); err == nil {
		return a, nil
	} else if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("store: account %s cannot be used: %w", a.root, err)
	}
	if _, err := os.Lstat(a.root); err == nil {
		return a, populateAccount(a.root)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	parent := filepath.Dir(a.root)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(a.root)+".new-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // gone once renamed; a crash leaves it unused
	if err := populateAccount(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, a.root); err != nil {
		if maildir.IsMaildir(a.root) {
			return a, nil // another process made it meanwhile
		}
		return nil, err
	}
	if err := maildir.SyncDir(parent); err != nil {
		return nil, err
	}
	return a, nil
}

// populateAccount makes the Maildir root with the default folders, their
// special-use attributes and subscriptions.
func populateAccount(root string) error {
	if err := maildir.Create(root, 0o700); err != nil {
		return err
	}
	var lines bytes.Buffer
	for _, f := range DefaultFolders {
		if err := maildir.CreateFolder(root, []string{f.Name}); err != nil && !errors.Is(err, maildir.ErrFolderExists) {
			return err
		}
		fmt.Fprintf(&lines, "%s %s\n", f.SpecialUse, f.Name)
	}
	if err := maildir.WriteFile(root, SpecialUseFile, lines.Bytes()); err != nil {
		return err
	}
	names := make([]string, len(DefaultFolders))
	for i, f := range DefaultFolders {
		names[i] = f.Name
	}
	return maildir.WriteSubscriptions(root, append([]string{"INBOX"}, names...))
}

// Root returns the account's root Maildir.
func (a *Account) Root() string { return a.root }

func (a *Account) dir(path []string) (string, error) {
	if len(path) == 0 {
		return a.root, nil
	}
	return maildir.FolderDir(a.root, path)
}

// Folders lists INBOX and every folder, parents that exist only as a
// level of the hierarchy included (not selectable), in name order.
//
// A folder name that is a symbolic link (or a folder whose cur/, new/ or
// tmp/ is one) is no folder, nor is a directory whose name is no valid
// folder name (a control character): they are left out and logged.
func (a *Account) Folders() ([]Folder, error) {
	paths, err := maildir.ListFoldersSkipping(a.root, func(name string, why error) {
		if errors.Is(why, maildir.ErrSymlink) {
			a.logger().Warn("ignoring a folder that is a symbolic link, or holds one: it is not followed",
				"dir", filepath.Join(a.root, name), "err", why)
			return
		}
		a.logger().Warn("a directory whose name is no folder name is not listed", "root", a.root, "dir", name, "err", why)
	})
	if err != nil {
		return nil, err
	}
	special, err := a.specialUse()
	if err != nil {
		return nil, err
	}
	byName := map[string]*Folder{}
	var out []*Folder
	add := func(p []string, selectable bool) *Folder {
		key := strings.Join(p, "\x00")
		if f, ok := byName[key]; ok {
			f.Selectable = f.Selectable || selectable
			return f
		}
		f := &Folder{Path: slices.Clone(p), Selectable: selectable}
		if len(p) > 0 {
			f.SpecialUse = special[strings.Join(p, string(maildir.FolderSep))]
		}
		byName[key] = f
		out = append(out, f)
		return f
	}
	add(nil, true)
	for _, p := range paths {
		for i := 1; i < len(p); i++ {
			add(p[:i], false).HasChildren = true
		}
		add(p, true)
	}
	slices.SortFunc(out, func(x, y *Folder) int { return slices.Compare(x.Path, y.Path) })
	res := make([]Folder, len(out))
	for i, f := range out {
		res[i] = *f
	}
	return res, nil
}

// CreateFolder makes a folder, with a special-use attribute if not "".
func (a *Account) CreateFolder(path []string, specialUse string) error {
	if len(path) == 0 {
		return fmt.Errorf("%w: INBOX exists", maildir.ErrFolderExists)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if dir, err := a.dir(path); err == nil && maildir.CheckMaildir(dir) != nil {
		// Not there yet (or half made): one more folder.
		if err := a.roomForFolderLocked(); err != nil {
			return err
		}
	}
	if err := maildir.CreateFolder(a.root, path); err != nil {
		return err
	}
	if specialUse == "" {
		return nil
	}
	special, err := a.specialUse()
	if err != nil {
		return err
	}
	special[strings.Join(path, string(maildir.FolderSep))] = specialUse
	return a.writeSpecialUse(special)
}

// DeleteFolder removes a folder and its messages; its children stay.
// Once the folder is gone the delete is done: what follows (the quota
// record, forgetting its special-use attribute) is logged when it fails,
// never returned, for it may fail for want of the very disk space the
// delete frees. A special-use attribute left behind that way is given
// to a folder later created with that name.
func (a *Account) DeleteFolder(path []string) error {
	if len(path) == 0 {
		return errors.New("store: INBOX cannot be deleted")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var freed QuotaUsage
	if a.quotaCounts(path) {
		var err error
		if freed, err = a.folderUsage(path); err != nil {
			return err
		}
	}
	dir, err := a.dir(path)
	if err != nil {
		return err
	}
	locks, err := a.lockFolders([]string{dir})
	if err != nil {
		return err
	}
	err = maildir.DeleteFolder(a.root, path)
	if _, serr := os.Lstat(dir); serr == nil {
		a.releaseFolders(locks, dir, dir) // still there: not deleted
	} else {
		a.releaseFolders(locks, dir, "") // gone with its lock file
	}
	if err != nil {
		return err
	}
	a.reg.Vanished(dir, false)
	a.addQuota(-freed.Bytes, -freed.Messages)
	if err := a.dropSpecialUse(path, nil); err != nil {
		a.logger().Warn("the special-use attribute of a deleted folder is kept",
			"root", a.root, "folder", strings.Join(path, string(maildir.FolderSep)), "err", err)
	}
	return nil
}

// RenameFolder renames a folder and its children. Renaming INBOX moves
// its messages into the new folder and leaves INBOX empty (RFC 9051
// §6.3.6).
func (a *Account) RenameFolder(from, to []string) error {
	if len(to) == 0 {
		return fmt.Errorf("%w: INBOX exists", maildir.ErrFolderExists)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// Usage changes only when the rename moves messages into or out of
	// the folder the quota does not count.
	var moved QuotaUsage
	if a.quotaCounts(from) != a.quotaCounts(to) {
		var err error
		if moved, err = a.folderUsage(from); err != nil {
			return err
		}
		if a.quotaCounts(from) {
			moved = QuotaUsage{Bytes: -moved.Bytes, Messages: -moved.Messages}
		} else if err := CheckQuota(a.root, a.quota, moved.Bytes, moved.Messages); err != nil {
			return err // out of Trash needs room, as a move does
		}
	}
	if len(from) == 0 {
		// INBOX stays: its messages make one folder more.
		if err := a.roomForFolderLocked(); err != nil {
			return err
		}
		if err := a.renameInbox(to); err != nil {
			return err
		}
		a.addQuota(moved.Bytes, moved.Messages)
		return nil
	}
	fromDir, err := a.dir(from)
	if err != nil {
		return err
	}
	toDir, err := a.dir(to)
	if err != nil {
		return err
	}
	dirs, err := a.folderTree(from)
	if err != nil {
		return err
	}
	locks, err := a.lockFolders(dirs)
	if err != nil {
		return err
	}
	if err := maildir.RenameFolder(a.root, from, to); err != nil {
		a.releaseFolders(locks, fromDir, fromDir) // undone: where they were
		return err
	}
	a.releaseFolders(locks, fromDir, toDir)
	a.reg.Vanished(fromDir, true)
	a.addQuota(moved.Bytes, moved.Messages)
	return a.dropSpecialUse(from, to)
}

// folderTree lists the directories of the folder path and of its
// children (what a rename of it moves), those that exist.
func (a *Account) folderTree(path []string) ([]string, error) {
	all, err := maildir.ListFolders(a.root)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, p := range all {
		if len(p) >= len(path) && slices.Equal(p[:len(path)], path) {
			d, err := a.dir(p)
			if err != nil {
				return nil, err
			}
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

// lockFolders takes the mailbox lock of each of dirs that is a Maildir,
// in the order given, for a DELETE or RENAME that moves the directories:
// a change of one of those mailboxes (APPEND, COPY, MOVE into it,
// STORE, EXPUNGE) holds its lock from before its files enter the
// directory until their UIDs are recorded, so that the directory never
// moves in between (the files would go with it while the change fails:
// a NO that was done, or, for a MOVE, a message in neither folder). A
// lock that cannot be had lets go of the others: ErrLocked.
func (a *Account) lockFolders(dirs []string) ([]*uidlist.Lock, error) {
	var opts uidlist.LockOptions
	if a.reg != nil {
		opts = a.reg.opts.Lock
	}
	var locks []*uidlist.Lock
	for _, d := range dirs {
		if !maildir.IsMaildir(d) || maildir.IsLink(d) {
			continue // a link is no folder: nothing of ours to lock in it
		}
		l, err := uidlist.AcquireLock(context.Background(), d, opts)
		if err != nil {
			for _, l := range locks {
				l.Release()
			}
			return nil, lockError(d, err)
		}
		locks = append(locks, l)
	}
	return locks, nil
}

// releaseFolders lets go of the locks lockFolders took, after their
// directories under from were moved under to ("" : removed).
func (a *Account) releaseFolders(locks []*uidlist.Lock, from, to string) {
	for _, l := range locks {
		dir := ""
		if to != "" {
			dir = to + strings.TrimPrefix(l.Dir(), from)
		}
		if err := l.ReleaseMoved(dir); err != nil {
			a.logger().Warn("releasing the lock of a renamed or deleted folder", "dir", dir, "err", err)
		}
	}
}

// renameInboxRounds bounds the passes of renameInbox: each pass moves
// what its listings found; it ends when proven-complete listings of new/
// and cur/ find nothing left. Files renamed within INBOX by another
// program during a pass are found by the next one.
const renameInboxRounds = 8

// renameInbox moves every message of INBOX into a new folder, file by
// file (each one rename(2): a message is in exactly one of the two at
// every instant), under INBOX's lock so that no Dovecot-compatible
// writer changes INBOX meanwhile. INBOX keeps its UIDVALIDITY and its
// next UID: the moved messages are expunged from it, as its sessions
// hear at their next sync, and get UIDs in the new folder. Messages a
// pass could not prove it saw (a listing that could not be proven
// complete in the last pass) stay in INBOX; nothing is lost.
func (a *Account) renameInbox(to []string) error {
	if err := maildir.CreateFolder(a.root, to); err != nil {
		return err
	}
	dst, err := maildir.FolderDir(a.root, to)
	if err != nil {
		return err
	}
	var opts Options
	if a.reg != nil {
		opts = a.reg.opts
	}
	lock, err := uidlist.AcquireLock(context.Background(), a.root, opts.Lock)
	if err != nil {
		return lockError(a.root, err)
	}
	defer lock.Release()
	for round := 0; round < renameInboxRounds; round++ {
		moved, proven := 0, true
		for _, sub := range []string{maildir.New, maildir.Cur} {
			l, err := maildir.List(filepath.Join(a.root, sub), maildir.ListOptions{MaxTries: opts.MaxTries, Caps: opts.Caps})
			if err != nil {
				return err
			}
			proven = proven && l.Proof.Proven()
			for i, n := range l.Names {
				if !IsMessage(n, l.Types[i]) {
					continue
				}
				err := maildir.RenameNoReplace(filepath.Join(a.root, sub, n), filepath.Join(dst, sub, n))
				if errors.Is(err, os.ErrNotExist) {
					continue // renamed within INBOX meanwhile: the next pass
				}
				if err != nil {
					return err
				}
				moved++
			}
		}
		if moved == 0 && proven {
			break
		}
	}
	for _, d := range []string{filepath.Join(dst, maildir.New), filepath.Join(dst, maildir.Cur),
		filepath.Join(a.root, maildir.New), filepath.Join(a.root, maildir.Cur)} {
		if err := maildir.SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// OpenMailbox returns the shared Mailbox of a folder (INBOX for an empty
// path) and its release function. A folder that exists but that this
// process may not look inside (mode 000, another owner) gives an error
// matching fs.ErrPermission, never ErrNoSuchFolder: it is still there
// for everyone else.
func (a *Account) OpenMailbox(path []string) (*Mailbox, func(), error) {
	dir, err := a.dir(path)
	if err != nil {
		return nil, nil, err
	}
	check := maildir.CheckMaildir
	if len(path) > 0 {
		check = func(dir string) error { return maildir.CheckFolder(a.root, filepath.Base(dir)) }
	}
	if err := check(dir); errors.Is(err, fs.ErrPermission) {
		return nil, nil, fmt.Errorf("store: mailbox %s cannot be used: %w", dir, err)
	} else if err != nil {
		if errors.Is(err, maildir.ErrSymlink) {
			a.logger().Warn("refusing to open a folder that is a symbolic link, or holds one", "dir", dir, "err", err)
		}
		return nil, nil, ErrNoSuchFolder
	}
	return a.reg.Open(dir)
}

// logger is the Registry's logger, or one that discards without it.
func (a *Account) logger() *slog.Logger {
	if a.reg == nil || a.reg.opts.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.reg.opts.Logger
}

// Subscriptions returns the subscribed folder names, as written in the
// subscriptions file ("INBOX", or elements joined by '.').
func (a *Account) Subscriptions() ([]string, error) {
	return maildir.ReadSubscriptions(a.root)
}

// SetSubscribed adds or removes a folder name in the subscriptions file.
func (a *Account) SetSubscribed(name string, on bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	names, err := maildir.ReadSubscriptions(a.root)
	if err != nil {
		return err
	}
	i := slices.Index(names, name)
	switch {
	case on && i < 0:
		names = append(names, name)
	case !on && i >= 0:
		names = slices.Delete(names, i, i+1)
	default:
		return nil
	}
	return maildir.WriteSubscriptions(a.root, names)
}

// SpecialUse returns the special-use attribute (RFC 6154: \Sent,
// \Drafts, ...) of the folder path, "" when it has none.
func (a *Account) SpecialUse(path []string) (string, error) {
	if len(path) == 0 {
		return "", nil
	}
	special, err := a.specialUse()
	if err != nil {
		return "", err
	}
	return special[strings.Join(path, string(maildir.FolderSep))], nil
}

func (a *Account) specialUse() (map[string]string, error) {
	out := map[string]string{}
	data, err := os.ReadFile(filepath.Join(a.root, SpecialUseFile))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		attr, name, ok := strings.Cut(sc.Text(), " ")
		if ok && strings.HasPrefix(attr, `\`) && name != "" {
			out[name] = attr
		}
	}
	return out, nil
}

func (a *Account) writeSpecialUse(m map[string]string) error {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", m[n], n)
	}
	return maildir.WriteFile(a.root, SpecialUseFile, b.Bytes())
}

// dropSpecialUse forgets (to == nil) or moves the attributes of a folder
// and its children after a delete or a rename.
func (a *Account) dropSpecialUse(from, to []string) error {
	special, err := a.specialUse()
	if err != nil {
		return err
	}
	prefix := strings.Join(from, string(maildir.FolderSep))
	changed := false
	for name, attr := range special {
		if name != prefix && !strings.HasPrefix(name, prefix+string(maildir.FolderSep)) {
			continue
		}
		delete(special, name)
		changed = true
		if to != nil && (name == prefix || len(to) > 0) {
			special[strings.Join(to, string(maildir.FolderSep))+name[len(prefix):]] = attr
		}
		if to == nil && name != prefix {
			special[name] = attr // children stay where they are
		}
	}
	if !changed {
		return nil
	}
	return a.writeSpecialUse(special)
}
