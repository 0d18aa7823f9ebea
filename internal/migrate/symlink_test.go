package migrate

import (
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// TestSymlinksNotFollowed: migrate follows no symbolic link: a folder
// that links to another Courier Maildir is not migrated (nothing is
// written into it), and a message link in cur/, with Courier's UID and
// keywords naming it, gets no UID and is not renamed.
func TestSymlinksNotFollowed(t *testing.T) {
	root := courierTree(t)
	other := courierTree(t)
	if err := os.Symlink(other, filepath.Join(root, ".evil")); err != nil {
		t.Fatal(err)
	}
	decoy := filepath.Join(t.TempDir(), "decoy")
	writeFile(t, decoy, "Subject: decoy\n\nDECOY\n")
	link := filepath.Join(root, maildir.Cur, m5+":2,S")
	if err := os.Symlink(decoy, link); err != nil {
		t.Fatal(err)
	}
	otherBefore := testfs.Snapshot(t, other)
	res := run(t, Options{Root: root})
	if res.Mailboxes != 2 {
		t.Errorf("%d mailboxes migrated, want 2 (INBOX and Sent, not the link)", res.Mailboxes)
	}
	if after := testfs.Snapshot(t, other); !maps.Equal(otherBefore, after) {
		t.Errorf("the Maildir behind the link folder changed:\n%s", testfs.Diff(otherBefore, after))
	}
	uids, _ := uidsOf(t, root)
	if u, ok := uids[m5]; ok {
		t.Errorf("the link %s got UID %d", link, u)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was renamed or replaced: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(other, uidlist.FileName)); err == nil {
		t.Error("a dovecot-uidlist was written behind the link")
	}
}
