package fsck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cistern-mail/cistern/maildir"
)

// LinksDir is the directory of the account's root into which Repair
// moves the symbolic links it finds inside the Maildir. Its name starts
// with no dot, so no Maildir++ reader takes it for a folder, and it is
// no Maildir: nothing in it is ever served.
const LinksDir = "cistern-links"

// findLinks reports every symbolic link that takes the place of a folder,
// or of a folder's new/, cur/ or tmp/ (maildir/nofollow.go: such a folder
// is no folder). It follows none of them. Links to message files are
// found by the listings (list); a root whose new/, cur/ or tmp/ is a
// link is no Maildir, and cleanRoot says so.
func (c *checker) findLinks() error {
	inbox := mailbox{"INBOX", c.root}
	entries, err := os.ReadDir(c.root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if len(n) < 2 || n[0] != maildir.FolderSep || n == ".." {
			continue
		}
		if _, err := maildir.ParseFolderName(n); err != nil {
			continue
		}
		mb := mailbox{n[1:], filepath.Join(c.root, n)}
		if e.Type()&fs.ModeSymlink != 0 {
			c.add(inbox, problem{kind: Symlink, detail: fmt.Sprintf("the folder %s is a symbolic link%s: not a folder, never followed", n, linkTarget(mb.dir)),
				path: n})
			continue
		}
		if !e.IsDir() {
			continue
		}
		for _, sub := range []string{maildir.New, maildir.Cur, maildir.Tmp} {
			c.linkFinding(mb, sub)
		}
	}
	return nil
}

// linkFinding reports mb's sub when it is a symbolic link.
func (c *checker) linkFinding(mb mailbox, sub string) {
	p := filepath.Join(mb.dir, sub)
	if !maildir.IsLink(p) {
		return
	}
	rel, _ := filepath.Rel(c.root, p)
	c.add(mb, problem{kind: Symlink, detail: fmt.Sprintf("%s/ is a symbolic link%s: the mailbox is not a Maildir, never followed", sub, linkTarget(p)),
		path: rel})
}

// messageLinks reports the symbolic links the listing of mb found in its
// new/ and cur/: no messages, never opened.
func (c *checker) messageLinks(mb mailbox, l *listing) {
	for _, x := range l.links {
		p := filepath.Join(mb.dir, x.sub, x.name)
		rel, _ := filepath.Rel(c.root, p)
		c.add(mb, problem{kind: Symlink, detail: fmt.Sprintf("%s/%s is a symbolic link%s: not a message, never opened", x.sub, x.name, linkTarget(p)),
			path: rel})
	}
}

// linkTarget is " to <target>" for the link at p, read without following.
func linkTarget(p string) string {
	t, err := os.Readlink(p)
	if err != nil {
		return ""
	}
	return " to " + strings.ToValidUTF8(t, "?")
}

// moveLinksAside moves each symbolic link named by a Symlink finding into
// LinksDir, by rename(2), which moves the link itself and never what it
// points at. A link gone meanwhile, or replaced by something that is no
// link, is left alone.
func (r *repairer) moveLinksAside(links []Finding) error {
	if len(links) == 0 {
		return nil
	}
	aside := filepath.Join(r.root, LinksDir)
	if err := os.Mkdir(aside, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if maildir.IsLink(aside) {
		return fmt.Errorf("fsck: %s is a symbolic link: no link is moved into it", aside)
	}
	stamp := r.opts.now().UTC().Format("20060102T150405")
	moved := 0
	for _, f := range links {
		from := filepath.Join(r.root, f.Path)
		if !maildir.IsLink(from) {
			continue
		}
		name := strings.ReplaceAll(f.Path, "/", "_") + "." + stamp
		to := filepath.Join(aside, name)
		var err error
		for i := 1; ; i++ {
			err = maildir.RenameNoReplace(from, to)
			if !errors.Is(err, fs.ErrExist) || i > 100 {
				break
			}
			to = filepath.Join(aside, fmt.Sprintf("%s.%d", name, i))
		}
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		r.did(f.Mailbox, "moved the symbolic link %s aside to %s", f.Path, to)
		moved++
	}
	if moved > 0 {
		syncParents(r.root, links)
	}
	return nil
}

// syncParents makes the moves durable: the directories the links left and
// LinksDir.
func syncParents(root string, links []Finding) {
	dirs := map[string]bool{filepath.Join(root, LinksDir): true}
	for _, f := range links {
		dirs[filepath.Dir(filepath.Join(root, f.Path))] = true
	}
	for d := range dirs {
		_ = maildir.SyncDir(d)
	}
}

// isLinkType reports whether a listing's d_type is a symbolic link.
func isLinkType(t uint8) bool { return t == syscall.DT_LNK }
