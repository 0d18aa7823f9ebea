package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/maildir"
)

// The daemon, its LMTP and the LDA on a full disk and with a folder that
// cannot be used (issue 10 §3): each answers what the trouble is, and
// nothing acknowledged is lost, nothing refused is stored.

// diskConfig writes a configuration and a passwd-file (user alice,
// password "secret") for 'cistern serve' and 'cistern deliver' in dir,
// with the Maildirs under mail (user+folder files into folder), and
// returns the configuration's path.
func diskConfig(t *testing.T, dir, mail string) string {
	t.Helper()
	passwd := filepath.Join(dir, "passwd")
	writePasswd(t, passwd, auth.User{Name: "alice"})
	cfg := filepath.Join(dir, "cistern.toml")
	toml := fmt.Sprintf(`data_dir = %q
mail_location = %q
passwd_file = %q
[imap]
listen = ["127.0.0.1:0"]
[lmtp]
listen = ["127.0.0.1:0"]
save_to_detail_mailbox = true
`, filepath.Join(dir, "data"), filepath.Join(mail, "%u", "Maildir"), passwd)
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// serveDisk starts 'cistern serve' with cfg and returns it with its LMTP
// address.
func serveDisk(t *testing.T, cfg string) (*serveRun, string) {
	t.Helper()
	r := startServe(t, "--config", cfg)
	lmtpAddr := nextLine(t, r.errOut, regexp.MustCompile(`msg="lmtp: listening" addr=(\S+)`))[1]
	return r, lmtpAddr
}

func imapLogin(t *testing.T, addr string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("alice", "secret").Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	return c
}

// appendMsg APPENDs msg to mailbox and returns the error.
func appendMsg(c *imapclient.Client, mailbox, msg string) error {
	app := c.Append(mailbox, int64(len(msg)), nil)
	if _, err := app.Write([]byte(msg)); err != nil {
		return err
	}
	if err := app.Close(); err != nil {
		return err
	}
	_, err := app.Wait()
	return err
}

// wantNo checks that err is the tagged NO with code and text.
func wantNo(t *testing.T, what string, err error, code imap.ResponseCode, text string) {
	t.Helper()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != code || ie.Text != text {
		t.Errorf("%s: %v, want NO [%s] %s", what, err, code, text)
	}
}

// lmtpReply is the reply to the one recipient of an LMTP transaction
// that lmtpSend made: nil for 250.
func lmtpReply(t *testing.T, err error) *smtp.SMTPError {
	t.Helper()
	var lerr smtp.LMTPDataError
	var se *smtp.SMTPError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &lerr) && len(lerr) == 1:
		for _, e := range lerr {
			return e
		}
	case errors.As(err, &se):
		return se
	}
	t.Fatalf("LMTP: %v", err)
	return nil
}

// deliverLDA runs 'cistern deliver' and returns its exit status.
func deliverLDA(t *testing.T, cfg, msg string, args ...string) int {
	t.Helper()
	var stderr strings.Builder
	err := Run(t.Context(), append([]string{"deliver", "--config", cfg}, args...), Stdio{In: strings.NewReader(msg), Out: io.Discard, Err: &stderr})
	code := exitCode(err, &stderr)
	t.Logf("cistern deliver %q: exit %d %s", args, code, strings.TrimSpace(stderr.String()))
	return code
}

// subjects returns the subjects of the messages of mailbox, in UID
// order, by a SELECT and a FETCH of their envelopes.
func subjects(t *testing.T, c *imapclient.Client, mailbox string) []string {
	t.Helper()
	sel, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		t.Fatalf("SELECT %s: %v", mailbox, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: sel.NumMessages}}, &imap.FetchOptions{UID: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.Envelope.Subject)
	}
	return out
}

// filesHolding lists the files under root whose content holds s.
func filesHolding(t *testing.T, root, s string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(s)) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestServeFullDisk: alice's Maildir is on a file system with no free
// block. APPEND answers NO [OVERQUOTA] Not enough disk space, LMTP 452
// 4.3.1, the LDA exits 75; SELECT, EXAMINE and STATUS of an INBOX
// holding a delivered message without a UID answer OK; EXPUNGE of a
// \Deleted message and DELETE of a folder answer OK and free their
// files. With room again, every message acknowledged is there and none
// that was refused.
func TestServeFullDisk(t *testing.T) {
	mnt := testfs.Small(t)
	dir := t.TempDir()
	mail := filepath.Join(mnt, "mail")
	root := filepath.Join(mail, "alice", "Maildir")
	cfg := diskConfig(t, dir, mail)

	// Before the disk is full: three messages, one of them \Deleted.
	r, _ := serveDisk(t, cfg)
	c := imapLogin(t, r.addr)
	for _, s := range []string{"kept one", "deleted", "kept two"} {
		if err := appendMsg(c, "INBOX", "Subject: "+s+"\r\n\r\nx\r\n"); err != nil {
			t.Fatalf("APPEND: %v", err)
		}
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	deletedFile, err := filepath.Glob(filepath.Join(root, maildir.Cur, "*:2,*T*"))
	if err != nil || len(deletedFile) != 1 {
		t.Fatalf("the \\Deleted message's file: %q %v", deletedFile, err)
	}

	// A daemon that has not opened INBOX; a delivery it does not sync
	// (the LDA's), so that its file is in new/ without a UID; a full disk.
	r, lmtpAddr := serveDisk(t, cfg)
	if code := deliverLDA(t, cfg, "Subject: delivered\n\nx\n", "-u", "alice"); code != 0 {
		t.Fatalf("LDA before the disk is full: exit %d", code)
	}
	if names, _ := filepath.Glob(filepath.Join(root, maildir.New, "*")); len(names) != 1 {
		t.Fatalf("new/ holds %q, want the delivered message", names)
	}
	free := testfs.Fill(t, mnt)

	c = imapLogin(t, r.addr)
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT on a full disk: %v", err)
	}
	t.Logf("SELECT on a full disk: %d messages", sel.NumMessages)
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Errorf("EXAMINE on a full disk: %v", err)
	}
	if _, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDNext: true}).Wait(); err != nil {
		t.Errorf("STATUS on a full disk: %v", err)
	}
	wantNo(t, "APPEND on a full disk", appendMsg(c, "INBOX", "Subject: refused append\r\n\r\nx\r\n"),
		imap.ResponseCodeOverQuota, "Not enough disk space")
	rep := lmtpReply(t, lmtpSend(t, "tcp", lmtpAddr, "s@example.org", []string{"alice@example.org"}, "Subject: refused lmtp\r\n\r\nx\r\n"))
	if rep == nil || rep.Code != 452 || rep.EnhancedCode != (smtp.EnhancedCode{4, 3, 1}) {
		t.Errorf("LMTP on a full disk: %v, want 452 4.3.1", rep)
	}
	if code := deliverLDA(t, cfg, "Subject: refused lda\n\nx\n", "-u", "alice"); code != exTempFail {
		t.Errorf("LDA on a full disk: exit %d, want %d", code, exTempFail)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT on a full disk: %v", err)
	}
	expunged, err := c.Expunge().Collect()
	if err != nil || len(expunged) != 1 {
		t.Errorf("EXPUNGE on a full disk: %v %v, want one message", expunged, err)
	}
	if _, err := os.Stat(deletedFile[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the expunged message's file: %v, want it gone", err)
	}
	if err := c.Delete("Archive").Wait(); err != nil {
		t.Errorf("DELETE on a full disk: %v", err)
	}
	if maildir.IsMaildir(filepath.Join(root, ".Archive")) {
		t.Error("the deleted folder is still there")
	}

	free()
	if got, want := subjects(t, c, "INBOX"), []string{"kept one", "kept two", "delivered"}; !slices.Equal(got, want) {
		t.Errorf("INBOX with room again: %q, want %q", got, want)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if l.Mailbox == "Archive" {
			t.Error("LIST shows the deleted folder")
		}
	}
	for _, s := range []string{"refused append", "refused lmtp", "refused lda", "Subject: deleted"} {
		if got := filesHolding(t, mail, s); len(got) != 0 {
			t.Errorf("%q is stored: %q", s, got)
		}
	}
	// Nothing half-written either: a write cut short may hold no subject.
	for _, pattern := range []string{filepath.Join(root, maildir.Tmp, "*"), filepath.Join(root, ".*", maildir.Tmp, "*")} {
		if left, _ := filepath.Glob(pattern); len(left) != 0 {
			t.Errorf("left in tmp/: %q", left)
		}
	}
	c.Logout().Wait()
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestServeUnusableFolder: a folder of mode 000 (the daemon may not look
// inside) is listed; SELECT, EXAMINE and STATUS answer NO [NOPERM]; LMTP
// to user+folder answers 451 4.2.0 and the LDA exits 75, and nothing
// goes to INBOX. As root the test runs as nobody.
func TestServeUnusableFolder(t *testing.T) {
	if !testfs.Unprivileged(t) {
		return
	}
	dir := t.TempDir()
	mail := filepath.Join(dir, "mail")
	root := filepath.Join(mail, "alice", "Maildir")
	cfg := diskConfig(t, dir, mail)
	r, lmtpAddr := serveDisk(t, cfg)
	c := imapLogin(t, r.addr)
	if err := c.Create("Closed", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := appendMsg(c, "Closed", "Subject: before\r\n\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := filepath.Join(root, ".Closed")
	if err := os.Chmod(closed, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(closed, 0o700) })

	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, l := range list {
		if l.Mailbox == "Closed" {
			listed = !slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) && !slices.Contains(l.Attrs, imap.MailboxAttrNonExistent)
		}
	}
	if !listed {
		var names []string
		for _, l := range list {
			names = append(names, fmt.Sprintf("%s %v", l.Mailbox, l.Attrs))
		}
		t.Errorf("LIST: %q, want Closed, selectable", names)
	}
	_, err = c.Select("Closed", nil).Wait()
	wantNo(t, "SELECT", err, imap.ResponseCodeNoPerm, "Permission denied")
	_, err = c.Select("Closed", &imap.SelectOptions{ReadOnly: true}).Wait()
	wantNo(t, "EXAMINE", err, imap.ResponseCodeNoPerm, "Permission denied")
	_, err = c.Status("Closed", &imap.StatusOptions{NumMessages: true}).Wait()
	wantNo(t, "STATUS", err, imap.ResponseCodeNoPerm, "Permission denied")

	rep := lmtpReply(t, lmtpSend(t, "tcp", lmtpAddr, "s@example.org", []string{"alice+Closed@example.org"}, "Subject: refused lmtp\r\n\r\nx\r\n"))
	if rep == nil || rep.Code != 451 || rep.EnhancedCode != (smtp.EnhancedCode{4, 2, 0}) {
		t.Errorf("LMTP to alice+Closed: %v, want 451 4.2.0", rep)
	}
	for _, args := range [][]string{{"-u", "alice+Closed"}, {"-u", "alice", "-m", "Closed"}, {"-u", "alice", "-m", "Closed", "--create"}} {
		if code := deliverLDA(t, cfg, "Subject: refused lda\n\nx\n", args...); code != exTempFail {
			t.Errorf("LDA %q: exit %d, want %d", args, code, exTempFail)
		}
	}
	if got := subjects(t, c, "INBOX"); len(got) != 0 {
		t.Errorf("INBOX: %q, want nothing", got)
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := subjects(t, c, "Closed"); !slices.Equal(got, []string{"before"}) {
		t.Errorf("Closed: %q, want what was there before", got)
	}
	for _, s := range []string{"refused lmtp", "refused lda"} {
		if got := filesHolding(t, mail, s); len(got) != 0 {
			t.Errorf("%q is stored: %q", s, got)
		}
	}
	c.Logout().Wait()
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}
