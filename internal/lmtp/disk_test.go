package lmtp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/cistern-mail/cistern/internal/delivery"
	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/maildir"
)

// sendEach sends msg to rcpts in one transaction and returns each
// recipient's reply error (nil: 250).
func sendEach(t *testing.T, c *smtp.Client, rcpts []string, msg string) map[string]*smtp.SMTPError {
	t.Helper()
	if err := c.Mail("sender@example.org", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, err = w.CloseWithLMTPResponse()
	out := map[string]*smtp.SMTPError{}
	var lerr smtp.LMTPDataError
	if errors.As(err, &lerr) {
		for r, e := range lerr {
			out[r] = e
		}
	} else if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	return out
}

// TestFullDisk: with no free block, every recipient gets 452 4.3.1 (RFC
// 3463: mail system full) and nothing is stored, for a Maildir that
// exists and one that is to be made; with room again, both are
// delivered.
func TestFullDisk(t *testing.T) {
	mnt := testfs.Small(t)
	us := users{}
	for _, n := range []string{"good", "fresh"} {
		us[n] = delivery.User{Name: n, Root: filepath.Join(mnt, n, "Maildir")}
	}
	ts := startServer(t, func(s *Server) { s.Deliverer.Users = us })
	c := ts.client(t)
	rcpts := []string{"good@example.org", "fresh@example.org"}
	if errs := sendEach(t, c, rcpts[:1], "Subject: before\r\n\r\nx\r\n"); len(errs) != 0 {
		t.Fatalf("before filling the disk: %v", errs)
	}
	free := testfs.Fill(t, mnt)
	errs := sendEach(t, c, rcpts, "Subject: full\r\n\r\nx\r\n")
	for _, r := range rcpts {
		wantCode(t, r+" on a full disk", errs[r], 452, smtp.EnhancedCode{4, 3, 1})
	}
	if got := messages(t, us["good"].Root); len(got) != 1 || !strings.Contains(got[0], "Subject: before") {
		t.Errorf("good's mailbox on a full disk: %q", got)
	}
	if got := messages(t, us["fresh"].Root); len(got) != 0 {
		t.Errorf("fresh's mailbox on a full disk: %q", got)
	}
	free()
	if errs := sendEach(t, c, rcpts, "Subject: after\r\n\r\nx\r\n"); len(errs) != 0 {
		t.Fatalf("with room again: %v", errs)
	}
	if got := messages(t, us["good"].Root); len(got) != 2 {
		t.Errorf("good's mailbox with room again: %q", got)
	}
	if got := messages(t, us["fresh"].Root); len(got) != 1 || !strings.Contains(got[0], "Subject: after") {
		t.Errorf("fresh's mailbox with room again: %q", got)
	}
}

// TestUnusableFolder: mail for user+folder, where the folder exists but
// the server may not look inside it, gets 451 4.2.0 (the MTA retries)
// and is not filed in INBOX. As root the test runs as nobody.
func TestUnusableFolder(t *testing.T) {
	if !testfs.Unprivileged(t) {
		return
	}
	ts := startServer(t, func(s *Server) { s.Deliverer.SaveToDetailMailbox = true })
	root := ts.root("good")
	if err := maildir.Create(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := maildir.CreateFolder(root, []string{"Closed"}); err != nil {
		t.Fatal(err)
	}
	closed := filepath.Join(root, ".Closed")
	if err := os.Chmod(closed, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(closed, 0o700) })
	c := ts.client(t)
	errs := sendEach(t, c, []string{"good+Closed@example.org", "other@example.org"}, "Subject: closed\r\n\r\nx\r\n")
	wantCode(t, "good+Closed", errs["good+Closed@example.org"], 451, smtp.EnhancedCode{4, 2, 0})
	if e := errs["other@example.org"]; e != nil {
		t.Errorf("other: %v", e)
	}
	if got := messages(t, root); len(got) != 0 {
		t.Errorf("good's INBOX: %q", got)
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := messages(t, closed); len(got) != 0 {
		t.Errorf("good's Closed: %q", got)
	}
}

// TestDetailMailbox: RCPT TO user+folder files into INBOX unless the
// Deliverer saves to the detail mailbox (Dovecot's
// lmtp_save_to_detail_mailbox, off by default); even then, never into
// Sent, Drafts or Trash (their special use), whoever the sender.
func TestDetailMailbox(t *testing.T) {
	for _, save := range []bool{false, true} {
		ts := startServer(t, func(s *Server) { s.Deliverer.SaveToDetailMailbox = save })
		root := ts.root("good")
		c := ts.client(t)
		// The first delivery makes the account, with its special-use
		// folders.
		if errs := sendEach(t, c, []string{"good@example.org"}, "Subject: first\r\n\r\nx\r\n"); errs["good@example.org"] != nil {
			t.Fatal(errs)
		}
		rcpts := []string{"good+Sent@example.org", "good+Drafts@example.org", "good+Trash@example.org", "good+Junk@example.org"}
		errs := sendEach(t, c, rcpts, "Subject: detail\r\n\r\nx\r\n")
		for _, r := range rcpts {
			if errs[r] != nil {
				t.Errorf("save=%v %s: %v", save, r, errs[r])
			}
		}
		// One transaction: one copy per target folder. Off: the first
		// message and one copy for all four in INBOX. On: one in Junk,
		// one for the other three in INBOX.
		inbox, junk := 2, 0
		if save {
			junk = 1
		}
		if got := messages(t, root); len(got) != inbox {
			t.Errorf("save=%v: INBOX holds %d messages, want %d", save, len(got), inbox)
		}
		for _, f := range []string{"Sent", "Drafts", "Trash"} {
			if got := messages(t, filepath.Join(root, "."+f)); len(got) != 0 {
				t.Errorf("save=%v: %s holds %q", save, f, got)
			}
		}
		if got := messages(t, filepath.Join(root, ".Junk")); len(got) != junk {
			t.Errorf("save=%v: Junk holds %d messages, want %d", save, len(got), junk)
		}
	}
}
