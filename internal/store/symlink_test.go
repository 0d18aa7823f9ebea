package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cistern-mail/cistern/maildir"
)

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSymlinkIsNoMessage: a symbolic link in new/ or cur/ is not a
// message, with either kind of listing: it gets no UID, and it is
// logged once.
func TestSymlinkIsNoMessage(t *testing.T) {
	for _, unsafe := range []bool{false, true} {
		t.Run(map[bool]string{false: "proven", true: "plain readdir"}[unsafe], func(t *testing.T) {
			f := newFixture(t)
			good := f.put(maildir.Cur, "S")
			decoy := filepath.Join(t.TempDir(), "decoy")
			if err := os.WriteFile(decoy, []byte("Subject: decoy\n\nDECOY\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			links := []string{filepath.Join(f.dir, maildir.Cur, "1700000099.M1P1.evil:2,S"), filepath.Join(f.dir, maildir.New, "1700000098.M1P1.evil")}
			for _, l := range links {
				if err := os.Symlink(decoy, l); err != nil {
					t.Fatal(err)
				}
			}
			var log syncBuffer
			mb := f.open(Options{Logger: slog.New(slog.NewTextHandler(&log, nil)), UnsafeTrustReaddir: unsafe})
			ch := sync1(t, mb)
			if got := bases(ch.New); !slices.Equal(got, []string{good}) {
				t.Fatalf("new %q, want only %q", got, good)
			}
			sync1(t, mb)
			if n := strings.Count(log.String(), "symbolic link"); n != len(links) {
				t.Errorf("%d log lines about links, want %d (once each):\n%s", n, len(links), log.String())
			}
			for _, l := range links {
				if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Errorf("%s: %v %v, want the link left as it is", l, fi, err)
				}
			}
		})
	}
}

// TestMessageSwappedForLink: a message file replaced by a link after it
// got its UID is not read; the next sync finds it gone.
func TestMessageSwappedForLink(t *testing.T) {
	f := newFixture(t)
	base := f.put(maildir.Cur, "")
	mb := f.open(Options{})
	sync1(t, mb)
	decoy := filepath.Join(t.TempDir(), "decoy")
	if err := os.WriteFile(decoy, []byte("DECOY"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub, name := f.find(base)
	p := filepath.Join(f.dir, sub, name)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(decoy, p); err != nil {
		t.Fatal(err)
	}
	file, _, err := mb.OpenMessage(context.Background(), 1)
	if err == nil {
		data, _ := io.ReadAll(file)
		file.Close()
		t.Fatalf("OpenMessage read %q through a link", data)
	}
	if !errors.Is(err, ErrNoSuchMessage) {
		t.Fatalf("OpenMessage: %v, want ErrNoSuchMessage", err)
	}
	if _, ok := mb.LookupUID(1); ok {
		t.Error("the message whose file became a link is still known")
	}
}

// TestFolderSwappedForLink: the swap race. A folder's directory is
// renamed away and a link to another user's Maildir put in its place
// after the Mailbox opened it: the Mailbox goes on reading its own
// directory (it opens messages relative to the directory it holds), and
// the path is no mailbox any more.
func TestFolderSwappedForLink(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := maildir.Create(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := maildir.CreateFolder(root, []string{"Work"}); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(root, ".Work")
	name := "1700000001.M1P1.test:2,"
	if err := os.WriteFile(filepath.Join(work, maildir.Cur, name), []byte("Subject: mine\n\nMINE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "Other")
	if err := maildir.Create(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, maildir.Cur, name), []byte("Subject: theirs\n\nTHEIRS\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mb, err := Open(work, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	sync1(t, mb)

	if err := os.Rename(work, filepath.Join(root, ".Moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, work); err != nil {
		t.Fatal(err)
	}
	file, _, err := mb.OpenMessage(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(file)
	file.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("MINE")) {
		t.Fatalf("OpenMessage read %q, want the mailbox's own file", data)
	}
	if _, err := Open(work, Options{}); !errors.Is(err, maildir.ErrSymlink) {
		t.Errorf("Open of the link: %v, want ErrSymlink", err)
	}
	if _, err := mb.Sync(context.Background()); !errors.Is(err, ErrMailboxGone) {
		t.Errorf("Sync after the swap: %v, want ErrMailboxGone", err)
	}
}

// TestQuotaSkipsLinks: the quota counts no message reached through a
// link: a link folder, a folder whose cur/ is a link, a link in cur/.
func TestQuotaSkipsLinks(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := maildir.Create(root, 0o700); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "Other")
	if err := maildir.Create(other, 0o700); err != nil {
		t.Fatal(err)
	}
	body := []byte("Subject: x\n\n0123456789\n")
	for i, n := range []string{"1700000001.M1P1.a:2,", "1700000002.M1P1.a:2,"} {
		if err := os.WriteFile(filepath.Join(other, maildir.Cur, n), body, 0o600); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := os.WriteFile(filepath.Join(root, maildir.Cur, n), body, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink(other, filepath.Join(root, ".Link")); err != nil {
		t.Fatal(err)
	}
	if err := maildir.CreateFolder(root, []string{"Half"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, ".Half", maildir.Cur)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(other, maildir.Cur), filepath.Join(root, ".Half", maildir.Cur)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(other, maildir.Cur, "1700000002.M1P1.a:2,"), filepath.Join(root, maildir.Cur, "1700000003.M1P1.link:2,")); err != nil {
		t.Fatal(err)
	}
	u, _, err := countQuota(root)
	if err != nil {
		t.Fatal(err)
	}
	if u.Messages != 1 || u.Bytes != int64(len(body)) {
		t.Errorf("usage %+v, want the one message of the root (%d bytes)", u, len(body))
	}
}
