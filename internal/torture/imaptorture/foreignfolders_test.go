package imaptorture

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

// TestForeignFolders: the foreign folder actor renames Aux's directory
// away and back and replaces siblings with fresh Maildirs, records each
// removal in the ledger, leaves Aux with its mail at the end, and never
// touches the mailbox under test.
func TestForeignFolders(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := maildir.Create(root, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Mailbox: "INBOX", Aux: DefaultAux, Maildir: root, FolderLifecycle: 1, ForeignFolders: 200}
	inboxMail := filepath.Join(root, "cur", "1.M1P1.test:2,S")
	auxDir, _ := folderDir(root, cfg.Aux)
	auxMail := filepath.Join(auxDir, "cur", "2.M2P2.test:2,")
	for _, name := range append(siblingNames(cfg.Aux), cfg.Aux) {
		if err := maildir.CreateFolder(root, strings.Split(name, ".")); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{inboxMail, auxMail} {
		if err := os.WriteFile(p, []byte("Message-ID: <x>\r\n\r\nx\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder(time.Now())
	r := &run{cfg: cfg, rec: rec, led: newLedger(rec, "test"), rng: rand.New(rand.NewPCG(1, 2))}
	seed := r.rng.Uint64()
	t.Logf("seed %d", seed)
	ff := newForeignFolders(r, maildirRoot(cfg.Mailbox, cfg.Maildir), seed)
	done := make(chan error)
	go func() { done <- ff.run() }()
	time.Sleep(400 * time.Millisecond)
	r.stop.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	renames, removals := r.counts.foreignRenames.Load(), r.counts.foreignRemovals.Load()
	if renames < 2 || removals == 0 {
		t.Errorf("%d renames, %d removals", renames, removals)
	}
	if _, err := os.Stat(inboxMail); err != nil {
		t.Errorf("the mailbox under test was touched: %v", err)
	}
	if _, err := os.Stat(auxMail); err != nil {
		t.Errorf("Aux did not come back with its mail: %v", err)
	}
	for _, name := range siblingNames(cfg.Aux) {
		if d, _ := folderDir(root, name); !maildir.IsMaildir(d) {
			t.Errorf("%s is not a Maildir at the end", d)
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), "-away-") {
			t.Errorf("%s left behind", e.Name())
		}
	}
	l := r.led
	l.mu.Lock()
	defer l.mu.Unlock()
	count := func(name string, removal bool) int64 {
		n := int64(0)
		for _, e := range l.book.events[name] {
			if e.removal == removal && e.done != forever {
				n++
			}
		}
		return n
	}
	// Every rename of Aux (away, and back) is a removal of the name; the
	// ones back are creations too.
	if got := count(cfg.Aux, true); got != renames {
		t.Errorf("%d removals of %s recorded, %d renames made", got, cfg.Aux, renames)
	}
	if got := count(cfg.Aux, false); 2*got != renames {
		t.Errorf("%d creations of %s recorded, %d renames made", got, cfg.Aux, renames)
	}
	var sib int64
	for _, name := range siblingNames(cfg.Aux) {
		sib += count(name, true)
	}
	if sib != removals {
		t.Errorf("%d removals of siblings recorded, %d made", sib, removals)
	}
}

// TestRenameNoReplace: a directory is never renamed onto one that
// exists, even an empty one (which rename(2) would replace).
func TestRenameNoReplace(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := renameNoReplace(a, b); !errors.Is(err, fs.ErrExist) {
		t.Errorf("rename onto an empty directory: %v", err)
	}
	if err := renameNoReplace(filepath.Join(dir, "none"), filepath.Join(dir, "c")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("rename of a missing directory: %v", err)
	}
	if err := renameNoReplace(a, filepath.Join(dir, "c")); err != nil {
		t.Error(err)
	}
}

func TestMaildirRoot(t *testing.T) {
	for _, tc := range []struct{ mailbox, dir, want string }{
		{"INBOX", "/m/Maildir", "/m/Maildir"},
		{"inbox", "/m/Maildir/", "/m/Maildir"},
		{"Work", "/m/Maildir/.Work", "/m/Maildir"},
		{"Work", "/m/Work", ""},
	} {
		if got := maildirRoot(tc.mailbox, tc.dir); got != tc.want {
			t.Errorf("maildirRoot(%q, %q) = %q, want %q", tc.mailbox, tc.dir, got, tc.want)
		}
	}
}
