package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// replaceDir moves the Maildir at dir away, as another program renaming
// or removing a folder would, and makes a new empty Maildir there. It
// returns where the old one went.
func replaceDir(t *testing.T, dir string) string {
	t.Helper()
	away := dir + ".away"
	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	if err := maildir.Create(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return away
}

// A folder directory replaced under an open Mailbox (renamed away and a
// new one made, by another program): the old state is never served or
// written into the new directory, its subscribers hear it is gone, and
// a Registry opens the new directory as a new mailbox with a new
// UIDVALIDITY.
func TestRegistryDirectoryReplaced(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := maildir.Create(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := maildir.CreateFolder(root, []string{"box"}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, ".box")
	f := &fixture{t: t, dir: dir}
	f.put(maildir.Cur, "S")
	f.put(maildir.New, "")
	reg := NewRegistry(Options{Logger: testLogger(t)}, nil)
	defer reg.Close()
	old, release, err := reg.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	sub := old.Subscribe()
	defer sub.Close()
	sync1(t, old)
	sub.Take()
	oldValidity := old.UIDValidity()

	away := replaceDir(t, dir)
	f.put(maildir.New, "") // the new mailbox's first message

	if _, err := old.Sync(context.Background()); !errors.Is(err, ErrMailboxGone) {
		t.Fatalf("Sync of the replaced mailbox = %v, want ErrMailboxGone", err)
	}
	if !old.Gone() {
		t.Error("Gone() = false after the directory was replaced")
	}
	if p := sub.Take(); !p.Gone || len(p.Expunged)+len(p.New)+len(p.Flags) != 0 {
		t.Errorf("subscriber got %+v, want only Gone", p)
	}
	if _, err := os.Stat(filepath.Join(dir, uidlist.FileName)); !os.IsNotExist(err) {
		t.Fatalf("the old state wrote a uidlist into the new directory: %v", err)
	}
	// Writers fail too, and write nothing.
	if _, err := old.SetFlags(context.Background(), []uint32{1}, flagop.Add, maildir.Flags(0).With('F'), nil); !errors.Is(err, ErrMailboxGone) {
		t.Errorf("SetFlags on the replaced mailbox = %v, want ErrMailboxGone", err)
	}

	nb, release2, err := reg.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	if nb == old {
		t.Fatal("the Registry served the replaced mailbox's state again")
	}
	ch := sync1(t, nb)
	if len(ch.New) != 1 || ch.New[0].UID != 1 {
		t.Fatalf("the new mailbox: %+v", ch)
	}
	if nb.UIDValidity() == oldValidity {
		t.Errorf("the new mailbox got UIDVALIDITY %d, the old one's", oldValidity)
	}
	// The old directory, where it went, is as it was.
	moved, err := Open(away, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	sync1(t, moved)
	if moved.UIDValidity() != oldValidity || len(moved.Messages()) != 2 {
		t.Errorf("the moved mailbox: UIDVALIDITY %d (was %d), %d messages", moved.UIDValidity(), oldValidity, len(moved.Messages()))
	}
}

// The account's folders take their UIDVALIDITY from dovecot-uidvalidity,
// and a folder deleted and made again, or renamed away and made again,
// gets another, within one second.
func TestAccountUIDValidityAllocator(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	reg := NewRegistry(Options{Logger: testLogger(t)}, nil)
	defer reg.Close()
	a, err := OpenAccount(root, reg)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]string{}
	take := func(what string, path []string) uint32 {
		t.Helper()
		mb, release, err := a.OpenMailbox(path)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		sync1(t, mb)
		v := mb.UIDValidity()
		if prev, ok := seen[v]; ok {
			t.Errorf("%s got UIDVALIDITY %d, as %s did", what, v, prev)
		}
		seen[v] = what
		data, err := os.ReadFile(filepath.Join(root, uidlist.UIDValidityFileName))
		if err != nil {
			t.Fatal(err)
		}
		if want := []byte(fmtHex(v)); string(data) != string(want) {
			t.Errorf("%s: dovecot-uidvalidity holds %q, want %q", what, data, want)
		}
		return v
	}
	take("INBOX", nil)
	if err := a.CreateFolder([]string{"x"}, ""); err != nil {
		t.Fatal(err)
	}
	take("x, first", []string{"x"})
	for i := 0; i < 3; i++ {
		if err := a.DeleteFolder([]string{"x"}); err != nil {
			t.Fatal(err)
		}
		if err := a.CreateFolder([]string{"x"}, ""); err != nil {
			t.Fatal(err)
		}
		take("x, made again", []string{"x"})
	}
	if err := a.RenameFolder([]string{"x"}, []string{"y"}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateFolder([]string{"x"}, ""); err != nil {
		t.Fatal(err)
	}
	take("x, after x was renamed to y", []string{"x"})
}

func fmtHex(v uint32) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

// countFiles counts the messages in dir's new/ and cur/ (0 when dir is
// gone).
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, sub := range []string{maildir.New, maildir.Cur} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n += len(entries)
	}
	return n
}

// raceAccount makes an account with a message in INBOX and a folder t,
// both synced.
func raceAccount(t *testing.T) (a *Account, inbox, folder *Mailbox) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Maildir")
	reg := NewRegistry(Options{Logger: testLogger(t)}, nil)
	t.Cleanup(reg.Close)
	a, err := OpenAccount(root, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateFolder([]string{"t"}, ""); err != nil {
		t.Fatal(err)
	}
	inbox, rel1, err := a.OpenMailbox(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rel1)
	folder, rel2, err := a.OpenMailbox([]string{"t"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rel2)
	sync1(t, folder)
	if _, err := inbox.Append(context.Background(), strings.NewReader("Subject: x\r\n\r\nbody\r\n"), 0, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	return a, inbox, folder
}

// waitOrGoOn runs f in a goroutine and waits for it a while: f is a
// DELETE or RENAME that must wait for the change under way; if it does
// not wait, it is done before the change goes on, which the test then
// sees in what the change leaves.
func waitOrGoOn(f func() error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		done <- err
	case <-time.After(300 * time.Millisecond):
	}
	return done
}

// A DELETE of the target during a MOVE's renames waits for the MOVE: the
// message never ends up in a deleted folder while the MOVE says NO, nor
// in neither folder.
func TestDeleteFolderWaitsForMove(t *testing.T) {
	a, inbox, folder := raceAccount(t)
	var deleted <-chan error
	testHookMoveBeforeAppend = func() {
		deleted = waitOrGoOn(func() error { return a.DeleteFolder([]string{"t"}) })
	}
	t.Cleanup(func() { testHookMoveBeforeAppend = nil })
	_, src, _, err := inbox.Move(context.Background(), []uint32{1}, folder, nil)
	testHookMoveBeforeAppend = nil
	if derr := <-deleted; derr != nil {
		t.Fatalf("DELETE: %v", derr)
	}
	if err != nil || len(src) != 1 {
		// Refused: the message must still be in INBOX.
		if n := countFiles(t, inbox.Dir()); n != 1 {
			t.Fatalf("MOVE answered %v, and INBOX holds %d files: the message is lost", err, n)
		}
		return
	}
	// Done: the DELETE came after it, and took the message with the
	// folder, as a DELETE does.
	if n := countFiles(t, inbox.Dir()); n != 0 {
		t.Fatalf("MOVE done, yet INBOX holds %d files", n)
	}
}

// A RENAME of the target while a COPY's files are in its cur/ waits for
// the COPY: a refused COPY leaves no copy in the renamed folder.
func TestRenameFolderWaitsForCopy(t *testing.T) {
	a, inbox, folder := raceAccount(t)
	var renamed <-chan error
	testHookPublished = func() {
		if renamed == nil {
			renamed = waitOrGoOn(func() error { return a.RenameFolder([]string{"t"}, []string{"u"}) })
		}
	}
	t.Cleanup(func() { testHookPublished = nil })
	_, src, dst, err := inbox.Copy(context.Background(), []uint32{1}, folder, nil)
	testHookPublished = nil
	if rerr := <-renamed; rerr != nil {
		t.Fatalf("RENAME: %v", rerr)
	}
	u := filepath.Join(filepath.Dir(folder.Dir()), ".u")
	if err != nil || len(src) != 1 {
		if n := countFiles(t, u); n != 0 {
			t.Fatalf("COPY answered %v, and the renamed folder holds %d files", err, n)
		}
		return
	}
	// Done before the RENAME: the copy is in u, with the UID COPYUID gave.
	mb, err := Open(u, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	sync1(t, mb)
	if msgs := mb.Messages(); len(msgs) != 1 || msgs[0].UID != dst[0] {
		t.Fatalf("u holds %+v, COPY gave UID %v", msgs, dst)
	}
}

// A program that ignores the lock renames the target's directory away
// while an APPEND's or a COPY's files are in its cur/, and perhaps puts
// a fresh Maildir under the name: the command is refused, and the
// refused files are taken out of the directory they went to, wherever
// it is now; nothing is left in the fresh one.
func TestForeignRenameDuringAppend(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fresh bool // a fresh Maildir takes the name
		copy  bool
	}{
		{"append", false, false},
		{"append, fresh Maildir in its place", true, false},
		{"copy", false, true},
		{"copy, fresh Maildir in its place", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, inbox, folder := raceAccount(t)
			away := folder.Dir() + "-away"
			testHookPublished = func() {
				testHookPublished = nil
				if err := os.Rename(folder.Dir(), away); err != nil {
					t.Error(err)
					return
				}
				if tc.fresh {
					if err := maildir.Create(folder.Dir(), 0o700); err != nil {
						t.Error(err)
					}
				}
			}
			t.Cleanup(func() { testHookPublished = nil })
			var err error
			if tc.copy {
				_, _, _, err = inbox.Copy(context.Background(), []uint32{1}, folder, nil)
			} else {
				_, err = folder.Append(context.Background(), strings.NewReader("Subject: y\r\n\r\nbody\r\n"), 0, time.Time{}, nil)
			}
			if err == nil {
				t.Fatal("the command succeeded, though its mailbox's directory was renamed away before its UIDs were written")
			}
			if n := countFiles(t, away); n != 0 {
				t.Errorf("refused (%v), yet the renamed directory holds %d messages", err, n)
			}
			if n := countFiles(t, folder.Dir()); n != 0 {
				t.Errorf("refused (%v), yet the directory now at the name holds %d messages", err, n)
			}
		})
	}
}

// A program that ignores the lock renames a MOVE's target directory away
// after the files were renamed into it, and perhaps puts a fresh Maildir
// under the name: the MOVE is refused and its files are renamed back
// from the directory they went to, wherever it is now.
func TestForeignRenameDuringMove(t *testing.T) {
	for _, fresh := range []bool{false, true} {
		t.Run(fmt.Sprintf("fresh=%t", fresh), func(t *testing.T) {
			_, inbox, folder := raceAccount(t)
			away := folder.Dir() + "-away"
			testHookMoveBeforeAppend = func() {
				testHookMoveBeforeAppend = nil
				if err := os.Rename(folder.Dir(), away); err != nil {
					t.Error(err)
					return
				}
				if fresh {
					if err := maildir.Create(folder.Dir(), 0o700); err != nil {
						t.Error(err)
					}
				}
			}
			t.Cleanup(func() { testHookMoveBeforeAppend = nil })
			_, src, _, err := inbox.Move(context.Background(), []uint32{1}, folder, nil)
			if err == nil && len(src) > 0 {
				t.Fatal("MOVE succeeded, though its target's directory was renamed away before its UIDs were written")
			}
			if n := countFiles(t, inbox.Dir()); n != 1 {
				t.Errorf("MOVE refused (%v), yet INBOX holds %d messages, want 1", err, n)
			}
			if n := countFiles(t, away); n != 0 {
				t.Errorf("MOVE refused (%v), yet the renamed target holds %d messages", err, n)
			}
		})
	}
}
