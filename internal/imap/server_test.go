package imap_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/backend"
	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/store"
)

// testAuth accepts "alice"/"secret" and "bob"/"secret", each with a
// Maildir under root and the quota set by testServer.setQuota (none by
// default).
type testAuth struct {
	root string

	mu    sync.Mutex
	quota map[string]store.QuotaLimit // guarded by mu
}

func (a *testAuth) Authenticate(ctx context.Context, user, pass string) (backend.Account, error) {
	if (user != "alice" && user != "bob") || pass != "secret" {
		return backend.Account{}, imap.ErrAuthFailed
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return backend.Account{MaildirRoot: filepath.Join(a.root, user, "Maildir"), Quota: a.quota[user]}, nil
}

type testServer struct {
	addr string
	srv  *imap.Server
	reg  *store.Registry
	root string
	auth *testAuth
}

// setQuota gives user the quota q from their next login on.
func (ts *testServer) setQuota(user string, q store.QuotaLimit) {
	ts.auth.mu.Lock()
	defer ts.auth.mu.Unlock()
	if ts.auth.quota == nil {
		ts.auth.quota = map[string]store.QuotaLimit{}
	}
	ts.auth.quota[user] = q
}

// startServer starts a server on 127.0.0.1:0; opts adjust it before it
// serves.
func startServer(t *testing.T, opts ...func(*imap.Server)) *testServer {
	t.Helper()
	return startServerWith(t, t.TempDir(), store.Options{}, opts...)
}

// startServerWith starts a server whose users' Maildirs are under root
// (two servers may share one, as two processes share a Maildir) and
// whose store uses so.
func startServerWith(t testing.TB, root string, so store.Options, opts ...func(*imap.Server)) *testServer {
	t.Helper()
	w, err := store.NewWatcher(nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := store.NewRegistry(so, w)
	auth := &testAuth{root: root}
	srv := &imap.Server{
		Backend: &backend.Backend{Auth: auth, Registry: reg},
		Logger:  slog.New(slog.NewTextHandler(testLog{t}, nil)),
	}
	for _, o := range opts {
		o(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, imap.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		w.Close()
		reg.Close()
		if n := srv.Panics.Load(); n != 0 {
			t.Errorf("%d sessions panicked", n)
		}
	})
	return &testServer{addr: ln.Addr().String(), srv: srv, reg: reg, root: root, auth: auth}
}

type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// rawClient speaks IMAP by hand: transcripts test exact bytes.
type rawClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
	n int
	// timeout bounds the wait for each line; 0: readTimeout.
	timeout time.Duration
}

func dialRaw(t *testing.T, ts *testServer) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c)}
	greet := rc.line()
	if !strings.HasPrefix(greet, "* OK [CAPABILITY ") {
		t.Fatalf("greeting %q", greet)
	}
	return rc
}

// readTimeout bounds the wait for one line from the server: generous,
// so that only a server that never answers fails.
const readTimeout = 20 * time.Second

func (rc *rawClient) line() string {
	rc.t.Helper()
	timeout := rc.timeout
	if timeout == 0 {
		timeout = readTimeout
	}
	rc.c.SetReadDeadline(time.Now().Add(timeout))
	l, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("reading: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends a command and returns the untagged lines and the tagged one.
func (rc *rawClient) cmd(format string, args ...any) ([]string, string) {
	rc.t.Helper()
	rc.n++
	tag := fmt.Sprintf("a%d", rc.n)
	fmt.Fprintf(rc.c, tag+" "+format+"\r\n", args...)
	return rc.until(tag)
}

func (rc *rawClient) until(tag string) ([]string, string) {
	rc.t.Helper()
	return rc.readUntil(tag, "")
}

var reLitEnd = regexp.MustCompile(`~?\{(\d+)\}$`)

// readUntil reads lines up to the tagged response to tag and returns the
// others, each with the bytes of its literals and literal8s, however
// many, read into it after sep.
func (rc *rawClient) readUntil(tag, sep string) ([]string, string) {
	rc.t.Helper()
	var lines []string
	for {
		l := rc.line()
		if strings.HasPrefix(l, tag+" ") {
			return lines, l
		}
		for {
			m := reLitEnd.FindStringSubmatch(l)
			if m == nil {
				break
			}
			n, _ := strconv.Atoi(m[1])
			buf := make([]byte, n)
			if _, err := io.ReadFull(rc.r, buf); err != nil {
				rc.t.Fatal(err)
			}
			l += sep + string(buf) + rc.line()
		}
		lines = append(lines, l)
	}
}

func (rc *rawClient) ok(format string, args ...any) []string {
	rc.t.Helper()
	lines, tagged := rc.cmd(format, args...)
	if !strings.Contains(tagged, " OK") {
		rc.t.Fatalf("%q: %s (untagged %q)", fmt.Sprintf(format, args...), tagged, lines)
	}
	return lines
}

func TestTranscriptBasics(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts)
	_, tagged := rc.cmd("LOGIN alice wrong")
	if !strings.Contains(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatalf("bad password: %s", tagged)
	}
	_, tagged = rc.cmd("FROB")
	if !strings.Contains(tagged, "BAD") {
		t.Fatalf("unknown command: %s", tagged)
	}
	_, tagged = rc.cmd("LOGIN alice secret")
	if !strings.HasPrefix(tagged, "a3 OK [CAPABILITY IMAP4rev1") {
		t.Fatalf("login: %s", tagged)
	}
	lines := rc.ok(`LIST "" "*"`)
	want := []string{`* LIST (\HasNoChildren) "." INBOX`, `* LIST (\HasNoChildren \Archive) "." Archive`, `* LIST (\HasNoChildren \Drafts) "." Drafts`}
	for _, w := range want {
		if !contains(lines, w) {
			t.Fatalf("LIST lacks %q: %q", w, lines)
		}
	}
	rc.ok("CREATE Work.Projects")
	lines = rc.ok(`LIST "" "Work*"`)
	if !contains(lines, `* LIST (\Noselect \HasChildren) "." Work`) || !contains(lines, `* LIST (\HasNoChildren) "." Work.Projects`) {
		t.Fatalf("LIST Work*: %q", lines)
	}
	msg := "From: bob@example.org\r\nSubject: hello\r\n\r\nHi there\r\n"
	fmt.Fprintf(rc.c, "a100 APPEND INBOX (\\Seen) {%d+}\r\n%s\r\n", len(msg), msg)
	_, tagged = rc.until("a100")
	if !strings.Contains(tagged, "OK [APPENDUID ") {
		t.Fatalf("append: %s", tagged)
	}
	lines = rc.ok("SELECT INBOX")
	if !contains(lines, "* 1 EXISTS") {
		t.Fatalf("select: %q", lines)
	}
	lines = rc.ok("FETCH 1 (FLAGS UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	if want := "* 1 FETCH (FLAGS (\\Seen \\Recent) UID 1 RFC822.SIZE 51 BODY[HEADER.FIELDS (SUBJECT)] {18}Subject: hello\r\n\r\n)"; len(lines) != 1 || lines[0] != want {
		t.Fatalf("fetch: %q", lines)
	}
	lines = rc.ok("UID STORE 1 +FLAGS (\\Flagged)")
	if len(lines) != 1 || lines[0] != `* 1 FETCH (FLAGS (\Flagged \Seen \Recent) UID 1)` {
		t.Fatalf("store: %q", lines)
	}
	lines = rc.ok("SEARCH SUBJECT hello FLAGGED")
	if !contains(lines, "* SEARCH 1") {
		t.Fatalf("search: %q", lines)
	}
	lines = rc.ok("UID MOVE 1 Work.Projects")
	if !contains(lines, "* 1 EXPUNGE") {
		t.Fatalf("move: %q", lines)
	}
	rc.ok("LOGOUT")
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// TestNonASCIIFolderOnDisk: a folder name with non-ASCII letters is
// modified UTF-7 on the wire and on disk, where Dovecot's Maildir++
// layout puts it (".Entw&APw-rfe"), and survives LIST, SELECT and
// SUBSCRIBE.
func TestNonASCIIFolderOnDisk(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts)
	rc.ok("LOGIN alice secret")
	rc.ok("CREATE Entw&APw-rfe.Alt")
	root := filepath.Join(ts.root, "alice", "Maildir")
	if _, err := os.Stat(filepath.Join(root, ".Entw&APw-rfe.Alt", "cur")); err != nil {
		t.Fatalf("not on disk as Dovecot names it: %v", err)
	}
	lines := rc.ok(`LIST "" "Entw*"`)
	if !contains(lines, `* LIST (\HasNoChildren) "." Entw&APw-rfe.Alt`) {
		t.Fatalf("LIST: %q", lines)
	}
	rc.ok("SUBSCRIBE Entw&APw-rfe.Alt")
	lines = rc.ok(`LSUB "" "*"`)
	if !contains(lines, `* LSUB (\HasNoChildren) "." Entw&APw-rfe.Alt`) {
		t.Fatalf("LSUB: %q", lines)
	}
	rc.ok("SELECT Entw&APw-rfe.Alt")
	rc.ok("ENABLE UTF8=ACCEPT")
	lines = rc.ok(`LIST "" "Entw*"`)
	if !contains(lines, `* LIST (\HasNoChildren) "." "Entwürfe.Alt"`) {
		t.Fatalf("LIST with UTF8=ACCEPT: %q", lines)
	}
}

// TestIMAP4rev2: after ENABLE IMAP4rev2 the session gets RFC 9051's
// responses: SELECT without RECENT and UNSEEN but with LIST, and ESEARCH
// for a plain SEARCH.
func TestIMAP4rev2(t *testing.T) {
	ts := startServer(t)
	rc := dialRaw(t, ts)
	lines := rc.ok("CAPABILITY")
	if !strings.Contains(lines[0], " IMAP4rev2") {
		t.Fatalf("capabilities %q", lines)
	}
	rc.ok("LOGIN alice secret")
	msg := "Subject: x\r\n\r\nx\r\n"
	fmt.Fprintf(rc.c, "a100 APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg)
	if _, tagged := rc.until("a100"); !strings.Contains(tagged, "OK") {
		t.Fatal(tagged)
	}
	lines = rc.ok("SELECT INBOX")
	if !contains(lines, "* 1 RECENT") || contains(lines, `* LIST () "." INBOX`) {
		t.Fatalf("IMAP4rev1 SELECT: %q", lines)
	}
	if lines = rc.ok("ENABLE IMAP4rev2"); !contains(lines, "* ENABLED IMAP4rev2") {
		t.Fatalf("ENABLE: %q", lines)
	}
	lines = rc.ok("SELECT INBOX")
	if contains(lines, "* 0 RECENT") || !contains(lines, `* LIST () "." INBOX`) {
		t.Fatalf("IMAP4rev2 SELECT: %q", lines)
	}
	for _, l := range lines {
		if strings.Contains(l, "[UNSEEN") {
			t.Fatalf("IMAP4rev2 SELECT sent %q", l)
		}
	}
	lines = rc.ok("SEARCH ALL")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `* ESEARCH (TAG "a`) || !strings.HasSuffix(lines[0], "ALL 1") {
		t.Fatalf("IMAP4rev2 SEARCH: %q", lines)
	}
}
