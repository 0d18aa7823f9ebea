//go:build interop

// Package interop tests Cistern against real third-party programs that
// share its files or speak its protocols. It holds only tests and their
// helpers, behind the build tag "interop"; scripts/interop.sh installs the
// programs (from Debian's packages) and runs it:
//
//	bash scripts/interop.sh
//
// # Dovecot
//
// A test starts its own Dovecot (see [NewDovecot]) on a Maildir the test
// made: Dovecot runs in the foreground as a child of the test, with a
// configuration, runtime directory, state directory and log of its own in a
// temporary directory, listening for IMAP only on 127.0.0.1 at a free port,
// without TLS and with one user whose password is plain text. The
// Dovecot master runs as root (the test must run as root); mail access runs
// as the unprivileged system user [MailUser], because Dovecot refuses
// uid 0 for it. Files the test writes as root are handed to that user
// before every start.
//
// Dovecot keeps its control and index files in the Maildir itself, as a
// stock installation does: dovecot-uidlist (shared with Cistern), and
// dovecot-uidvalidity*, dovecot.index* and dovecot.list.index*, which are
// Dovecot's alone and which Cistern must tolerate.
//
// # Cistern and Postfix
//
// The delivery tests run 'cistern serve' itself (see [StartCistern]),
// built from this repository with the race detector, serving IMAP and
// LMTP on loopback ports for users of a passwd-file of its own; and a
// private Postfix instance (see [StartPostfix]) whose local domain is
// delivered to Cistern over LMTP. Mail is sent to Postfix's SMTP port with
// swaks. What Postfix did with each message is read from its maillog
// ([ParseMaillog]); what Cistern did, from the Maildirs and over IMAP.
package interop

import (
	"cmp"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cistern-mail/cistern/internal/testproc"
)

// DovecotBinary is where Debian's dovecot-core installs the server.
const DovecotBinary = testproc.DovecotBinary

// MailUser is the unprivileged system account that Dovecot uses to access
// the test Maildirs; scripts/interop.sh creates it.
const MailUser = testproc.MailUser

// The one IMAP user of every test instance.
const (
	DovecotUser     = "tester"
	DovecotPassword = "interop-secret"
)

const installHint = "run `bash scripts/interop.sh` (as root) to install what the interop tests need"

// Dovecot is a private Dovecot instance serving one Maildir to the user
// [DovecotUser]. Start and Stop may alternate any number of times; the
// configuration, state and log are kept across restarts, and the port
// changes on every start. Methods must be called from the test's goroutine.
type Dovecot struct {
	t       *testing.T
	maildir string          // the INBOX, immutable
	dir     string          // config, runtime and state directory, immutable
	owner   *testproc.Owner // MailUser, immutable

	proc *testproc.Proc // set while running
}

// NewDovecot prepares a private Dovecot instance for maildir, which must
// exist; it does not start it. The instance is stopped in t.Cleanup, where
// Dovecot's log is printed if the test failed. It fails the test when
// Dovecot or MailUser is missing or the process is not root.
func NewDovecot(t *testing.T, maildir string) *Dovecot {
	t.Helper()
	maildir, err := filepath.Abs(maildir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(maildir); err != nil || !fi.IsDir() {
		t.Fatalf("Maildir %s: not a directory (%v)", maildir, err)
	}
	dir := testproc.TraversableTempDir(t)
	// The Maildir itself becomes MailUser's; the way to it must be open.
	owner, err := testproc.CheckDovecot(DovecotBinary, filepath.Dir(maildir), installHint)
	if err != nil {
		t.Fatal(err)
	}
	d := &Dovecot{t: t, maildir: maildir, dir: dir, owner: owner}
	if err := testproc.WriteDovecotUser(dir, DovecotUser, DovecotPassword, owner); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			d.dumpLog()
		}
	})
	return d
}

// Addr is the address of the running instance, host:port.
func (d *Dovecot) Addr() string { return d.proc.Addr }

// LogPath is Dovecot's log file; it survives restarts.
func (d *Dovecot) LogPath() string { return filepath.Join(d.dir, "dovecot.log") }

// config is the whole configuration of the instance for one port. Every
// path Dovecot writes is inside d.dir or the Maildir.
func (d *Dovecot) config(port int) string {
	return "# Private Dovecot of a Cistern interop test.\n" + testproc.DovecotIMAP(d.dir, d.maildir, port, d.owner, `
auth_verbose = yes
mail_debug = yes
auth_cache_size = 0
mail_fsync = always
maildir_very_dirty_syncs = no
`)
}

// Start hands the Maildir to MailUser and starts Dovecot, returning once it
// greets on its port. It fails the test if Dovecot does not come up.
func (d *Dovecot) Start() {
	d.t.Helper()
	if d.proc != nil {
		d.t.Fatal("Dovecot.Start: already running")
	}
	if err := d.owner.ChownTree(d.maildir); err != nil {
		d.t.Fatalf("handing the Maildir to %s: %v", MailUser, err)
	}
	p, err := testproc.StartDovecot(DovecotBinary, d.dir, d.config, "* OK")
	if err != nil {
		d.dumpLog()
		d.t.Fatal(err)
	}
	d.proc = p
}

// Stop stops Dovecot (SIGTERM, then SIGKILL to its process group after
// testproc.StopTimeout) and waits until its processes are gone, so that
// the Maildir is no longer touched. Stopping a stopped instance does
// nothing.
func (d *Dovecot) Stop() {
	d.t.Helper()
	if d.proc == nil {
		return
	}
	p := d.proc
	d.proc = nil
	if err := p.Stop(testproc.StopTimeout); err != nil {
		d.t.Error(err)
	}
}

// Client logs in as DovecotUser and returns the client, which is closed in
// t.Cleanup (a test may Logout earlier).
func (d *Dovecot) Client() *imapclient.Client {
	d.t.Helper()
	if d.proc == nil {
		d.t.Fatal("Dovecot.Client: not running")
	}
	c, err := imapclient.DialInsecure(d.Addr(), &imapclient.Options{
		Dialer: &net.Dialer{Timeout: 10 * time.Second},
	})
	if err != nil {
		d.t.Fatalf("dialing Dovecot at %s: %v", d.Addr(), err)
	}
	d.t.Cleanup(func() { c.Close() })
	if err := c.Login(DovecotUser, DovecotPassword).Wait(); err != nil {
		d.t.Fatalf("LOGIN: %v", err)
	}
	return c
}

// IMAPMessage is one message as an IMAP server reported it.
type IMAPMessage struct {
	UID       uint32
	Flags     []imap.Flag // sorted
	MessageID string      // the Message-ID header field, with its <>
}

// Inbox is a mailbox (INBOX, or another one for SelectMailbox) as one
// SELECT and a UID FETCH of everything saw it.
type Inbox struct {
	UIDValidity uint32
	UIDNext     uint32
	Messages    []IMAPMessage          // in ascending UID order
	ByMessageID map[string]IMAPMessage // every message has a distinct Message-ID
}

// messageIDSection is BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)].
var messageIDSection = &imap.FetchItemBodySection{
	Specifier:    imap.PartSpecifierHeader,
	HeaderFields: []string{"Message-ID"},
	Peek:         true,
}

// SelectInbox sends SELECT INBOX and
// UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]),
// failing the test on an error, a message without a Message-ID or two
// messages with one.
func SelectInbox(t *testing.T, c *imapclient.Client) *Inbox {
	t.Helper()
	return SelectMailbox(t, c, "INBOX")
}

// SelectMailbox is SelectInbox for the mailbox called name.
func SelectMailbox(t *testing.T, c *imapclient.Client, name string) *Inbox {
	t.Helper()
	sel, err := c.Select(name, nil).Wait()
	if err != nil {
		t.Fatalf("SELECT %s: %v", name, err)
	}
	in := &Inbox{
		UIDValidity: sel.UIDValidity,
		UIDNext:     uint32(sel.UIDNext),
		ByMessageID: make(map[string]IMAPMessage),
	}
	if sel.NumMessages == 0 {
		return in
	}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}} // 1:*
	msgs, err := c.Fetch(all, &imap.FetchOptions{
		UID:         true,
		Flags:       true,
		BodySection: []*imap.FetchItemBodySection{messageIDSection},
	}).Collect()
	if err != nil {
		t.Fatalf("%s: UID FETCH 1:*: %v", name, err)
	}
	if len(msgs) != int(sel.NumMessages) {
		t.Errorf("%s: UID FETCH 1:* returned %d messages, SELECT said %d exist", name, len(msgs), sel.NumMessages)
	}
	for _, m := range msgs {
		header := m.FindBodySection(messageIDSection)
		msg, err := mail.ReadMessage(strings.NewReader(string(header) + "\r\n"))
		if err != nil {
			t.Fatalf("UID %d: parsing %q: %v", m.UID, header, err)
		}
		im := IMAPMessage{
			UID:       uint32(m.UID),
			Flags:     slices.Sorted(slices.Values(m.Flags)),
			MessageID: msg.Header.Get("Message-Id"),
		}
		if im.UID == 0 || im.MessageID == "" {
			t.Fatalf("FETCH response without UID or Message-ID: %+v (header %q)", im, header)
		}
		if prev, dup := in.ByMessageID[im.MessageID]; dup {
			t.Fatalf("%s: Message-ID %s at UID %d and %d", name, im.MessageID, prev.UID, im.UID)
		}
		in.ByMessageID[im.MessageID] = im
		in.Messages = append(in.Messages, im)
	}
	slices.SortFunc(in.Messages, func(a, b IMAPMessage) int { return cmp.Compare(a.UID, b.UID) })
	return in
}

// Log returns Dovecot's log so far.
func (d *Dovecot) Log() string {
	b, _ := os.ReadFile(d.LogPath())
	return string(b)
}

func (d *Dovecot) dumpLog() {
	if output, _ := os.ReadFile(filepath.Join(d.dir, "dovecot.out")); len(output) > 0 {
		d.t.Logf("dovecot stdout/stderr:\n%s", output)
	}
	d.t.Logf("dovecot log %s:\n%s", d.LogPath(), d.Log())
}
