package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// A full disk (DESIGN.md §4): reading needs no free space, and EXPUNGE
// and DELETE work, since they free it.

// fullFixture is a fixture whose Maildir is on a small file system of
// its own (testfs.Small), which the test fills.
func fullFixture(t *testing.T) *fixture {
	t.Helper()
	dir := filepath.Join(testfs.Small(t), "Maildir")
	if err := maildir.Create(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, dir: dir}
}

// padUIDList writes dovecot-uidlist with the records of bases (UIDs 1,
// 2, ...) and one record for a file that does not exist, whose name is
// as long as it takes to make the file end exactly at a block boundary
// of its file system: the next record needs a new block.
func padUIDList(t *testing.T, dir string, bases []string) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	block := int(st.Bsize)
	f := &uidlist.File{Header: uidlist.Header{Version: 3, UIDValidity: 1700000000, GUID: uidlist.NewGUID()}}
	for i, b := range bases {
		f.Records = append(f.Records, uidlist.Record{UID: uint32(i + 1), Name: b})
	}
	pad := uidlist.Record{UID: uint32(len(bases) + 1), Name: "pad"}
	f.Records = append(f.Records, pad)
	f.Header.NextUID = pad.UID + 1
	// The pad line grows by one byte per byte of name, up to the boundary.
	extra := (block - len(f.Marshal())%block) % block
	f.Records[len(f.Records)-1].Name = "pad" + strings.Repeat("x", extra)
	data := f.Marshal()
	if len(data)%block != 0 {
		t.Fatalf("padded uidlist is %d bytes, not a multiple of the block size %d", len(data), block)
	}
	if err := os.WriteFile(filepath.Join(dir, uidlist.FileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSyncFullDisk: on a full disk a sync gives a delivered message its
// UID when its record fits the uidlist's last block, and otherwise
// leaves it waiting, unseen, without failing; with room again, the next
// sync numbers it.
func TestSyncFullDisk(t *testing.T) {
	f := fullFixture(t)
	a, b := f.put(maildir.New, ""), f.put(maildir.Cur, "S")
	padUIDList(t, f.dir, []string{a, b})
	mb := f.open(Options{})
	t.Cleanup(func() { mb.Close() }) // before the unmount
	if ch := sync1(t, mb); !slices.Equal(uids(ch.New), []uint32{1, 2}) {
		t.Fatalf("first sync: UIDs %v, want [1 2]", uids(ch.New))
	}
	c := f.put(maildir.New, "") // delivered, no UID yet
	free := testfs.Fill(t, filepath.Dir(f.dir))

	for i := 0; i < 2; i++ {
		ch := sync1(t, mb)
		if len(ch.New) != 0 || ch.Unassigned != 1 {
			t.Fatalf("sync %d on a full disk: new %v, unassigned %d; want nothing new and 1 unassigned", i, bases(ch.New), ch.Unassigned)
		}
	}
	if got := bases(mb.Messages()); !slices.Equal(got, []string{a, b}) {
		t.Fatalf("messages on a full disk %v, want %v", got, []string{a, b})
	}
	if _, err := os.Stat(filepath.Join(f.dir, uidlist.LockName)); !os.IsNotExist(err) {
		t.Errorf("the lock is left behind: %v", err)
	}

	free()
	ch := sync1(t, mb)
	if len(ch.New) != 1 || ch.New[0].Base != c || ch.New[0].UID != 4 || ch.Unassigned != 0 {
		t.Fatalf("sync with room again: new %v (UIDs %v), unassigned %d; want %s with UID 4", bases(ch.New), uids(ch.New), ch.Unassigned, c)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Error(err)
	}
}

// TestSyncFullDiskRecordFits: the same delivered message, with room for
// its record in the uidlist's last block, is numbered at once.
func TestSyncFullDiskRecordFits(t *testing.T) {
	f := fullFixture(t)
	f.put(maildir.New, "")
	mb := f.open(Options{})
	t.Cleanup(func() { mb.Close() }) // before the unmount
	sync1(t, mb)
	c := f.put(maildir.New, "")
	testfs.Fill(t, filepath.Dir(f.dir))
	ch := sync1(t, mb)
	if len(ch.New) != 1 || ch.New[0].Base != c || ch.Unassigned != 0 {
		t.Fatalf("sync on a full disk: new %v, unassigned %d; want %s", bases(ch.New), ch.Unassigned, c)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Error(err)
	}
}

// TestExpungeAndDeleteFullDisk: on a full disk, with a quota whose
// maildirsize cannot grow, EXPUNGE removes the file and answers what it
// removed, and DeleteFolder removes a folder with a special-use
// attribute.
func TestExpungeAndDeleteFullDisk(t *testing.T) {
	root := filepath.Join(testfs.Small(t), "Maildir")
	reg := NewRegistry(Options{Logger: testLogger(t)}, nil)
	t.Cleanup(reg.Close) // before the unmount
	a, err := OpenAccountWithQuota(root, reg, QuotaLimit{Bytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.QuotaUsage(); err != nil { // writes maildirsize
		t.Fatal(err)
	}
	mb, release, err := a.OpenMailbox(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var msgs []Message
	for i := range 3 {
		m, err := a.Append(ctx, mb, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i)), -1, 0, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if _, err := mb.SetFlags(ctx, []uint32{msgs[1].UID}, flagop.Add, flagsOf("T"), nil); err != nil {
		t.Fatal(err)
	}
	deleted, ok := mb.LookupUID(msgs[1].UID)
	if !ok {
		t.Fatalf("UID %d is not there", msgs[1].UID)
	}
	gonePath := mb.Path(deleted)
	free := testfs.Fill(t, filepath.Dir(root))

	gone, err := a.Expunge(ctx, mb, []uint32{msgs[1].UID}, nil)
	if err != nil || len(gone) != 1 || gone[0].UID != msgs[1].UID {
		t.Fatalf("Expunge on a full disk: %v, %v; want UID %d", uids(gone), err, msgs[1].UID)
	}
	if _, err := os.Stat(gonePath); !os.IsNotExist(err) {
		t.Errorf("the expunged file is still there: %v", err)
	}
	if got := uids(sync1(t, mb).Expunged); len(got) != 0 {
		t.Errorf("a sync after the expunge reports %v expunged again", got)
	}
	if got := uids(mb.Messages()); !slices.Equal(got, []uint32{msgs[0].UID, msgs[2].UID}) {
		t.Errorf("messages after the expunge %v", got)
	}

	if err := a.DeleteFolder([]string{"Archive"}); err != nil {
		t.Fatalf("DeleteFolder on a full disk: %v", err)
	}
	if err := maildir.CheckMaildir(filepath.Join(root, ".Archive")); !errors.Is(err, maildir.ErrNotMaildir) {
		t.Errorf("the deleted folder: %v", err)
	}

	free()
	if err := mb.CheckFiles(); err != nil {
		t.Error(err)
	}
	fs, err := a.Folders()
	if err != nil {
		t.Fatal(err)
	}
	if got := folderNames(fs); slices.ContainsFunc(got, func(n string) bool { return strings.HasPrefix(n, "Archive") }) {
		t.Errorf("folders after the delete: %v", got)
	}
}

// TestDeleteFolderSpecialUseUnwritable: a folder whose special-use
// attribute cannot be forgotten afterwards (here: tmp/ of the root is
// not writable, so the file cannot be rewritten) is deleted all the
// same, and the failure is logged.
func TestDeleteFolderSpecialUseUnwritable(t *testing.T) {
	if !testfs.Unprivileged(t) {
		return
	}
	root := filepath.Join(t.TempDir(), "Maildir")
	var log bytes.Buffer
	a, err := OpenAccount(root, NewRegistry(Options{Logger: slog.New(slog.NewTextHandler(&log, nil))}, nil))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(root, maildir.Tmp)
	if err := os.Chmod(tmp, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(tmp, 0o700) })
	if err := a.DeleteFolder([]string{"Archive"}); err != nil {
		t.Fatalf("DeleteFolder: %v, want nil: the folder is gone", err)
	}
	if maildir.IsMaildir(filepath.Join(root, ".Archive")) {
		t.Error("the folder is still there")
	}
	if !strings.Contains(log.String(), "special-use attribute of a deleted folder is kept") {
		t.Errorf("the failure is not logged: %q", log.String())
	}
}

// TestUnusableFolder: a folder this process may not look inside is
// listed, and opening it says why it cannot be used rather than that it
// does not exist; an account root in that state is never filled in
// place.
func TestUnusableFolder(t *testing.T) {
	if !testfs.Unprivileged(t) {
		return
	}
	root := filepath.Join(t.TempDir(), "Maildir")
	a, err := OpenAccount(root, NewRegistry(Options{Logger: testLogger(t)}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateFolder([]string{"Closed"}, ""); err != nil {
		t.Fatal(err)
	}
	closed := filepath.Join(root, ".Closed")
	if err := os.Chmod(closed, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(closed, 0o700) })

	fs1, err := a.Folders()
	if err != nil {
		t.Fatal(err)
	}
	if got := folderNames(fs1); !slices.Contains(got, "Closed") {
		t.Errorf("folders %v lack Closed (selectable)", got)
	}
	_, _, err = a.OpenMailbox([]string{"Closed"})
	if !errors.Is(err, fs.ErrPermission) || errors.Is(err, ErrNoSuchFolder) {
		t.Errorf("OpenMailbox of a folder of mode 000: %v, want a permission error", err)
	}

	special, err := os.ReadFile(filepath.Join(root, SpecialUseFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(root, 0o700) })
	if _, err := OpenAccount(root, nil); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("OpenAccount of a root of mode 000: %v, want a permission error", err)
	}
	if err := os.Chmod(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if now, err := os.ReadFile(filepath.Join(root, SpecialUseFile)); err != nil || !bytes.Equal(now, special) {
		t.Errorf("special-use file after opening the closed root: %q %v, want %q", now, err, special)
	}
}
