//go:build interop

package interop

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cistern-mail/cistern/internal/backend"
	cisternimap "github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/internal/testproc"
)

// Timeouts of the migrate test's own processes.
const (
	migrateRunTimeout  = 60 * time.Second // one 'cistern migrate'
	migrateStopTimeout = 10 * time.Second // the in-process IMAP server's shutdown
)

// The user of the in-process Cistern.
const (
	migrateUser     = "migrated"
	migratePassword = "migrate-secret"
)

// Dovecot serves a Maildir: APPENDs with flags and keywords into INBOX
// and a folder, keyword and flag changes. 'cistern migrate' on it finds
// Dovecot's format, leaves every file as it is and finds nothing wrong;
// Cistern, serving it afterwards, reports over IMAP the UIDVALIDITY,
// UIDNEXT, UIDs and flags (keywords included) that Dovecot reported.
func TestMigrateDovecotMaildir(t *testing.T) {
	dir := newMaildir(t)
	d := NewDovecot(t, dir)
	d.Start()
	c := d.Client()
	if err := c.Create("Archive", nil).Wait(); err != nil {
		t.Fatalf("CREATE Archive: %v", err)
	}
	appendFlags := [][]imap.Flag{
		nil,
		{imap.FlagSeen},
		{imap.FlagSeen, "$Label1"},
		{imap.FlagFlagged, "Work"},
		{imap.FlagAnswered, imap.FlagSeen, "$Label1", "Work", "$Forwarded"},
		{imap.FlagDraft},
	}
	for i := range 12 {
		mailbox := "INBOX"
		if i%3 == 2 {
			mailbox = "Archive"
		}
		appendToMailbox(t, c, mailbox, messageID("m", i), appendFlags[i%len(appendFlags)])
	}
	inbox := SelectInbox(t, c)
	storeFlags(t, c, imap.StoreFlagsAdd, []imap.Flag{"Project-X", imap.FlagSeen},
		inbox.ByMessageID[messageID("m", 0)].UID, inbox.ByMessageID[messageID("m", 4)].UID)
	storeFlags(t, c, imap.StoreFlagsDel, []imap.Flag{"$Label1"}, inbox.ByMessageID[messageID("m", 3)].UID)
	// Gaps in the UIDs, in the middle and at the top, so that numbering
	// the messages afresh could not give the same UIDs.
	storeFlags(t, c, imap.StoreFlagsAdd, []imap.Flag{imap.FlagDeleted},
		inbox.ByMessageID[messageID("m", 1)].UID, inbox.ByMessageID[messageID("m", 10)].UID)
	if _, err := c.Expunge().Collect(); err != nil {
		t.Fatalf("EXPUNGE: %v", err)
	}
	dove := map[string]*Inbox{"INBOX": SelectInbox(t, c), "Archive": SelectMailbox(t, c, "Archive")}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	d.Stop()
	if n := len(dove["INBOX"].Messages) + len(dove["Archive"].Messages); n != 10 {
		t.Fatalf("Dovecot lists %d messages, want 10", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "dovecot-keywords")); err != nil {
		t.Fatalf("test premise: Dovecot was to write dovecot-keywords: %v", err)
	}

	before := testfs.Snapshot(t, dir)
	bin := testproc.BuildCistern(t)
	out, code := runMigrateBinary(t, bin, "migrate", dir)
	t.Logf("cistern migrate %s: exit %d\n%s", dir, code, out)
	if code != 0 {
		t.Fatalf("cistern migrate %s: exit %d, want 0", dir, code)
	}
	for _, want := range []string{"INBOX: dovecot-uidlist: kept as it is", "Archive: dovecot-uidlist: kept as it is", "): clean\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("cistern migrate output lacks %q:\n%s", want, out)
		}
	}
	if after := testfs.Snapshot(t, dir); !maps.Equal(before, after) {
		t.Errorf("cistern migrate changed a Maildir Dovecot served:\n%s", testfs.Diff(before, after))
	}

	cis := startInProcess(t, dir)
	cc := cis.client(t)
	got := map[string]*Inbox{"INBOX": SelectInbox(t, cc), "Archive": SelectMailbox(t, cc, "Archive")}
	if err := cc.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	for name, dv := range dove {
		cv := got[name]
		for _, m := range cv.Messages {
			t.Logf("%s over Cistern: UID %d %s %v", name, m.UID, m.MessageID, m.Flags)
		}
		if cv.UIDValidity != dv.UIDValidity || cv.UIDNext != dv.UIDNext {
			t.Errorf("%s: Cistern UIDVALIDITY %d UIDNEXT %d, Dovecot %d %d", name, cv.UIDValidity, cv.UIDNext, dv.UIDValidity, dv.UIDNext)
		}
		if len(cv.Messages) != len(dv.Messages) {
			t.Errorf("%s: Cistern lists %d messages, Dovecot %d", name, len(cv.Messages), len(dv.Messages))
		}
		for id, dm := range dv.ByMessageID {
			cm, ok := cv.ByMessageID[id]
			switch {
			case !ok:
				t.Errorf("%s: %s (Dovecot UID %d) is not listed by Cistern", name, id, dm.UID)
			case cm.UID != dm.UID:
				t.Errorf("%s: %s has UID %d in Cistern, %d in Dovecot", name, id, cm.UID, dm.UID)
			case !slices.Equal(withoutRecent(cm.Flags), withoutRecent(dm.Flags)):
				t.Errorf("%s: %s has flags %v in Cistern, %v in Dovecot", name, id, withoutRecent(cm.Flags), withoutRecent(dm.Flags))
			}
		}
	}
	// The keywords made it through: Dovecot's and Cistern's views agree
	// on a message that has three of them.
	if m := got["INBOX"].ByMessageID[messageID("m", 4)]; !slices.Contains(m.Flags, "Project-X") || !slices.Contains(m.Flags, "$Forwarded") {
		t.Errorf("%s has flags %v over Cistern; want its keywords", messageID("m", 4), m.Flags)
	}
}

// appendToMailbox APPENDs message id to mailbox with flags.
func appendToMailbox(t *testing.T, c *imapclient.Client, mailbox, id string, flags []imap.Flag) {
	t.Helper()
	body := strings.ReplaceAll(messageText(id), "\n", "\r\n")
	cmd := c.Append(mailbox, int64(len(body)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write([]byte(body)); err != nil {
		t.Fatalf("APPEND %s to %s: %v", id, mailbox, err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("APPEND %s to %s: %v", id, mailbox, err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("APPEND %s to %s: %v", id, mailbox, err)
	}
}

// withoutRecent drops \Recent, which is session state, not a stored flag.
func withoutRecent(flags []imap.Flag) []imap.Flag {
	return slices.DeleteFunc(slices.Clone(flags), func(f imap.Flag) bool { return f == flagRecent })
}

// runMigrateBinary runs bin with args and returns its combined output and exit
// status.
func runMigrateBinary(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), migrateRunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	// Under -race a process sleeps a second at exit by default.
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("running %s %q: %v\n%s", bin, args, err, out)
	return "", 0
}

// inProcessCistern is Cistern's IMAP server, in the test's process, serving one
// Maildir to migrateUser on a loopback port.
type inProcessCistern struct {
	addr string
}

// migrateAuth lets migrateUser in to one Maildir.
type migrateAuth struct{ root string }

func (u migrateAuth) Authenticate(_ context.Context, name, password string) (backend.Account, error) {
	if name != migrateUser || password != migratePassword {
		return backend.Account{}, cisternimap.ErrAuthFailed
	}
	return backend.Account{MaildirRoot: u.root}, nil
}

// startInProcess serves root until the test ends; a session that
// panicked fails the test.
func startInProcess(t *testing.T, root string) *inProcessCistern {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := store.NewRegistry(store.Options{}, nil)
	srv := &cisternimap.Server{
		Backend: &backend.Backend{Auth: migrateAuth{root}, Registry: reg},
		Logger:  slog.New(slog.NewTextHandler(migrateTestLog{t}, nil)),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), migrateStopTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil && !errors.Is(err, cisternimap.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		reg.Close()
		if n := srv.Panics.Load(); n > 0 {
			t.Errorf("%d IMAP sessions panicked", n)
		}
	})
	return &inProcessCistern{addr: ln.Addr().String()}
}

// client logs in as migrateUser; the client is closed when the test ends.
func (s *inProcessCistern) client(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.addr, &imapclient.Options{Dialer: &net.Dialer{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatalf("dialing Cistern at %s: %v", s.addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(migrateUser, migratePassword).Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	return c
}

// migrateTestLog writes the server's log lines to the test's log.
type migrateTestLog struct{ t *testing.T }

func (w migrateTestLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
