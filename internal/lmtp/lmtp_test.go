package lmtp

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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/cistern-mail/cistern/internal/delivery"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/maildir"
)

// ioTimeout bounds every wait of these tests for the server; none of
// them is expected to come near it.
const ioTimeout = 30 * time.Second

type users map[string]delivery.User

func (u users) LookupUser(name string) (delivery.User, error) {
	if v, ok := u[name]; ok {
		return v, nil
	}
	return delivery.User{}, fmt.Errorf("%w: %q", delivery.ErrUnknownUser, name)
}

type testServer struct {
	srv   *Server
	addr  string
	base  string
	users users
	done  chan error
}

// startServer serves LMTP on a loopback port for the users good, other
// and full (a quota of 10 bytes); change configures the Server first.
func startServer(t *testing.T, change func(*Server)) *testServer {
	t.Helper()
	base := t.TempDir()
	us := users{}
	for _, n := range []string{"good", "other", "full"} {
		us[n] = delivery.User{Name: n, Root: filepath.Join(base, n)}
	}
	full := us["full"]
	full.Quota = store.QuotaLimit{Bytes: 10}
	us["full"] = full
	logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	srv := &Server{Deliverer: &delivery.Deliverer{Users: us, Logger: logger}, Logger: logger, Hostname: "lmtp.test"}
	if change != nil {
		change(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, addr: ln.Addr().String(), base: base, users: us, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-ts.done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if n := srv.Panics.Load(); n != 0 {
			t.Errorf("%d panics while serving", n)
		}
	})
	return ts
}

// testWriter sends the server's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (ts *testServer) root(user string) string { return ts.users[user].Root }

// client dials and says LHLO with go-smtp's client.
func (ts *testServer) client(t *testing.T) *smtp.Client {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(nc)
	c.CommandTimeout, c.SubmissionTimeout = ioTimeout, ioTimeout
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("mta.test"); err != nil {
		t.Fatalf("LHLO: %v", err)
	}
	return c
}

// messages returns the contents of the messages in dir/new, and fails
// the test when tmp/ or cur/ hold anything (nothing half-made, nothing
// left behind). A missing Maildir has no messages.
func messages(t *testing.T, dir string) []string {
	t.Helper()
	for _, sub := range []string{maildir.Tmp, maildir.Cur} {
		if names, _ := filepath.Glob(filepath.Join(dir, sub, "*")); len(names) != 0 {
			t.Errorf("%s/%s holds %q", dir, sub, names)
		}
	}
	names, _ := filepath.Glob(filepath.Join(dir, maildir.New, "*"))
	var out []string
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(data))
	}
	return out
}

func wantCode(t *testing.T, what string, err error, code int, enh smtp.EnhancedCode) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != code || se.EnhancedCode != enh {
		t.Errorf("%s: %v, want %d %d.%d.%d", what, err, code, enh[0], enh[1], enh[2])
	}
}

func TestMixedTransaction(t *testing.T) {
	for _, tempfail := range []bool{false, true} {
		t.Run(fmt.Sprintf("quota_full_tempfail=%v", tempfail), func(t *testing.T) {
			ts := startServer(t, func(s *Server) { s.QuotaFullTempfail = tempfail })
			c := ts.client(t)
			if err := c.Mail("sender@example.org", nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Rcpt("good@example.org", nil); err != nil {
				t.Fatal(err)
			}
			wantCode(t, "RCPT of an unknown user", c.Rcpt("nobody@example.org", nil), 550, smtp.EnhancedCode{5, 1, 1})
			if err := c.Rcpt("full@example.org", nil); err != nil {
				t.Fatal(err)
			}
			w, err := c.Data()
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, "Subject: mixed\r\n\r\nhello\r\n")
			resp, err := w.CloseWithLMTPResponse()
			var lerr smtp.LMTPDataError
			if !errors.As(err, &lerr) || len(lerr) != 1 {
				t.Fatalf("DATA: %v, want one recipient refused", err)
			}
			if r := resp["good@example.org"]; r == nil || !strings.HasSuffix(r.StatusText, "Saved") {
				t.Errorf("good: %+v", resp)
			}
			if tempfail {
				wantCode(t, "full", lerr["full@example.org"], 452, smtp.EnhancedCode{4, 2, 2})
			} else {
				wantCode(t, "full", lerr["full@example.org"], 552, smtp.EnhancedCode{5, 2, 2})
			}
			got := messages(t, ts.root("good"))
			if len(got) != 1 || got[0] != "Return-Path: <sender@example.org>\r\nSubject: mixed\r\n\r\nhello\r\n" {
				t.Errorf("good's mailbox: %q", got)
			}
			if got := messages(t, ts.root("full")); len(got) != 0 {
				t.Errorf("full's mailbox: %q", got)
			}
			// The connection carries on.
			if err := c.Mail("", nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Rcpt("other@example.org", nil); err != nil {
				t.Fatal(err)
			}
			w, err = c.Data()
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, "Subject: second\r\n\r\nx\r\n")
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := messages(t, ts.root("other")); len(got) != 1 || !strings.HasPrefix(got[0], "Return-Path: <>\r\nDelivered-To: other@example.org\r\nSubject: second") {
				t.Errorf("other's mailbox: %q", got)
			}
			if err := c.Quit(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSizeLimit(t *testing.T) {
	ts := startServer(t, func(s *Server) { s.MaxMessageSize = 1000 })
	c := ts.client(t)
	// go-smtp needs one byte more than the limit to accept a message of
	// exactly the limit (see init).
	if ok, size := c.Extension("SIZE"); !ok || size != "1001" {
		t.Errorf("SIZE extension %v %q, want 1001", ok, size)
	}
	wantCode(t, "MAIL SIZE=1001", c.Mail("s@example.org", &smtp.MailOptions{Size: 1001}), 552, smtp.EnhancedCode{5, 3, 4})
	wantCode(t, "MAIL SIZE=2000", c.Mail("s@example.org", &smtp.MailOptions{Size: 2000}), 552, smtp.EnhancedCode{5, 3, 4})

	for _, msg := range []string{strings.Repeat("y", 1001), strings.Repeat(strings.Repeat("y", 98)+"\r\n", 1000)} {
		if err := c.Mail("s@example.org", nil); err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{"good@example.org", "other@example.org"} {
			if err := c.Rcpt(r, nil); err != nil {
				t.Fatal(err)
			}
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, msg)
		_, err = w.CloseWithLMTPResponse()
		var lerr smtp.LMTPDataError
		if !errors.As(err, &lerr) || len(lerr) != 2 {
			t.Fatalf("%d bytes: %v, want both recipients refused", len(msg), err)
		}
		for r, e := range lerr {
			wantCode(t, r, e, 552, smtp.EnhancedCode{5, 3, 4})
		}
	}
	if got := messages(t, ts.root("good")); len(got) != 0 {
		t.Errorf("stored %d messages", len(got))
	}
	// At the limit, on the same connection: delivered.
	if err := c.Mail("s@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("good@example.org", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, strings.Repeat("z", 998)+"\r\n")
	if err := w.Close(); err != nil {
		t.Fatalf("a message of exactly the limit: %v", err)
	}
	if got := messages(t, ts.root("good")); len(got) != 1 {
		t.Errorf("stored %d messages, want 1", len(got))
	}

	// One line far longer than the limit: refused, then the connection
	// is closed (go-smtp's line limit), never a delivery.
	rc := ts.raw(t)
	rc.begin("other")
	rc.send(strings.Repeat("w", 200_000) + "\r\n.\r\n")
	rc.expect("552 5.3.4 <other@example.org>")
	if l, err := rc.r.ReadString('\n'); err == nil && !strings.HasPrefix(l, "500 5.4.0") {
		t.Errorf("after the long line: %q", l)
	}
	if got := messages(t, ts.root("other")); len(got) != 0 {
		t.Errorf("stored %d messages for other", len(got))
	}
}

func TestRecipientLimit(t *testing.T) {
	ts := startServer(t, func(s *Server) { s.MaxRecipients = 2 })
	c := ts.client(t)
	if err := c.Mail("s@example.org", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"good@example.org", "other@example.org"} {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, "third RCPT", c.Rcpt("full@example.org", nil), 452, smtp.EnhancedCode{4, 5, 3})
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: two\r\n\r\nx\r\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The copies share one file, which names no recipient.
	var fis []os.FileInfo
	for _, u := range []string{"good", "other"} {
		got := messages(t, ts.root(u))
		if len(got) != 1 || strings.Contains(got[0], "Delivered-To") {
			t.Fatalf("%s: %q", u, got)
		}
		names, _ := filepath.Glob(filepath.Join(ts.root(u), maildir.New, "*"))
		fi, err := os.Stat(names[0])
		if err != nil {
			t.Fatal(err)
		}
		fis = append(fis, fi)
	}
	if !os.SameFile(fis[0], fis[1]) {
		t.Error("the two copies are not one inode")
	}
}

// rawConn talks LMTP byte by byte, for what go-smtp's client would not
// send.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (ts *testServer) raw(t *testing.T) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ioTimeout))
	rc := &rawConn{t: t, c: c, r: bufio.NewReader(c)}
	rc.expect("220 ")
	rc.send("LHLO mta.test\r\n")
	rc.expect("250 ")
	return rc
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// reply reads one reply (the last line of a multi-line one).
func (rc *rawConn) reply() string {
	rc.t.Helper()
	for {
		l, err := rc.r.ReadString('\n')
		if err != nil {
			rc.t.Fatalf("reading a reply: %v (got %q)", err, l)
		}
		if len(l) < 4 || l[3] != '-' {
			return strings.TrimRight(l, "\r\n")
		}
	}
}

func (rc *rawConn) expect(prefix string) string {
	rc.t.Helper()
	l := rc.reply()
	if !strings.HasPrefix(l, prefix) {
		rc.t.Fatalf("reply %q, want %q...", l, prefix)
	}
	return l
}

// begin starts a transaction for the users and waits for 354.
func (rc *rawConn) begin(users ...string) {
	rc.t.Helper()
	rc.send("MAIL FROM:<s@example.org>\r\n")
	rc.expect("250 ")
	for _, u := range users {
		rc.send("RCPT TO:<" + u + "@example.org>\r\n")
		rc.expect("250 ")
	}
	rc.send("DATA\r\n")
	rc.expect("354 ")
}

func TestMessageContent(t *testing.T) {
	const hdr = "Return-Path: <s@example.org>\r\nDelivered-To: good@example.org\r\n"
	long := strings.Repeat("L", 5000)
	tests := []struct {
		name  string
		data  string // after DATA, up to and with the end marker
		reply string // the recipient's reply
		want  string // stored, after the header lines; "" for nothing
	}{
		{"crlf", "Subject: a\r\n\r\nbody\r\n.\r\n", "250 2.0.0", "Subject: a\r\n\r\nbody\r\n"},
		{"bare lf", "Subject: a\nX: b\n\nbody\nmore\r\n.\r\n", "250 2.0.0", "Subject: a\r\nX: b\r\n\r\nbody\r\nmore\r\n"},
		{"lf dot lf is data", "a\n.\nb\r\n.\r\n", "250 2.0.0", "a\r\n.\r\nb\r\n"},
		{"dot-stuffing", "..leading dot\r\n...two\r\n.\r\n", "250 2.0.0", ".leading dot\r\n..two\r\n"},
		{"8-bit header", "Subject: Gr\xc3\xbc\xc3\x9fe \xe9\r\n\r\n\xff\r\n.\r\n", "250 2.0.0", "Subject: Gr\xc3\xbc\xc3\x9fe \xe9\r\n\r\n\xff\r\n"},
		{"long line", "Subject: long\r\n\r\n" + long + "\r\n.\r\n", "250 2.0.0", "Subject: long\r\n\r\n" + long + "\r\n"},
		{"bare cr", "a\rb\r\n.\r\n", "250 2.0.0", "a\rb\r\n"},
		{"NUL", "Subject: nul\r\n\r\na\x00b\r\n.\r\n", "554 5.6.0", ""},
		{"empty", ".\r\n", "554 5.6.0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, nil)
			rc := ts.raw(t)
			rc.begin("good")
			rc.send(tt.data)
			rc.expect(tt.reply + " <good@example.org>")
			// The connection is still in step: nothing of the data was
			// taken for a command.
			rc.send("NOOP\r\n")
			rc.expect("250 ")
			got := messages(t, ts.root("good"))
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("stored %q, want nothing", got)
			case tt.want != "" && (len(got) != 1 || got[0] != hdr+tt.want):
				t.Errorf("stored %q\nwant %q", got, hdr+tt.want)
			}
		})
	}
}

func TestBDAT(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw(t)
	rc.send("MAIL FROM:<s@example.org>\r\nRCPT TO:<good@example.org>\r\nRCPT TO:<other@example.org>\r\n")
	rc.expect("250 ")
	rc.expect("250 ")
	rc.expect("250 ")
	rc.send("BDAT 12\r\nSubject: b\r\n")
	rc.expect("250 ")
	rc.send("BDAT 9 LAST\r\n\r\nno CRLF")
	rc.expect("250 2.0.0 <good@example.org>")
	rc.expect("250 2.0.0 <other@example.org>")
	for _, u := range []string{"good", "other"} {
		if got := messages(t, ts.root(u)); len(got) != 1 || got[0] != "Return-Path: <s@example.org>\r\nSubject: b\r\n\r\nno CRLF" {
			t.Errorf("%s: %q", u, got)
		}
	}
}

func TestDataTimeout(t *testing.T) {
	ts := startServer(t, func(s *Server) { s.DataTimeout = 200 * time.Millisecond })
	rc := ts.raw(t)
	rc.begin("good", "other")
	rc.send("Subject: never ends\r\n\r\npart of a body")
	rc.expect("421 4.4.2 <good@example.org>")
	rc.expect("421 4.4.2 <other@example.org>")
	if l, err := rc.r.ReadString('\n'); err != io.EOF {
		t.Errorf("after the timeout: %q, %v; want the connection closed", l, err)
	}
	for _, u := range []string{"good", "other"} {
		if got := messages(t, ts.root(u)); len(got) != 0 {
			t.Errorf("%s: stored %q", u, got)
		}
	}
}

func TestBadAddresses(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw(t)
	rc.send("MAIL FROM:<\"a\x01b\"@example.org>\r\n")
	rc.expect("501 5.1.7")
	rc.send("MAIL FROM:<s@example.org>\r\n")
	rc.expect("250 ")
	rc.send("RCPT TO:<\"go\x7fod\"@example.org>\r\n")
	rc.expect("501 5.1.3")
	rc.send("RCPT TO:<nobody@example.org>\r\n")
	rc.expect("550 5.1.1")
	rc.send("DATA\r\n")
	rc.expect("502 ") // no recipient accepted
}

// A second MAIL inside a transaction is refused: the recipients of the
// first stay, and each gets the reply of its own delivery.
func TestNestedMail(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.raw(t)
	rc.send("MAIL FROM:<s@example.org>\r\n")
	rc.expect("250 ")
	rc.send("RCPT TO:<good@example.org>\r\n")
	rc.expect("250 ")
	rc.send("MAIL FROM:<t@example.org>\r\n")
	rc.expect("503 5.5.1")
	rc.send("RCPT TO:<other@example.org>\r\n")
	rc.expect("250 ")
	rc.send("DATA\r\n")
	rc.expect("354 ")
	rc.send("Subject: n\r\n\r\nx\r\n.\r\n")
	rc.expect("250 2.0.0 <good@example.org>")
	rc.expect("250 2.0.0 <other@example.org>")
	for _, u := range []string{"good", "other"} {
		if got := messages(t, ts.root(u)); len(got) != 1 || !strings.HasPrefix(got[0], "Return-Path: <s@example.org>\r\n") {
			t.Errorf("%s: %q", u, got)
		}
	}
	// After the transaction, MAIL starts the next one.
	rc.send("MAIL FROM:<t@example.org>\r\n")
	rc.expect("250 ")
}

func TestShutdownFinishesDelivery(t *testing.T) {
	ts := startServer(t, nil)
	idle := ts.raw(t)
	busy := ts.raw(t)
	busy.begin("good")
	busy.send("Subject: in flight\r\n\r\nfirst half\r\n")

	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		stopped <- ts.srv.Shutdown(ctx)
	}()
	// The idle connection is closed at once.
	if l, err := idle.r.ReadString('\n'); err != io.EOF {
		t.Errorf("idle connection: %q, %v; want it closed", l, err)
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Error("a new connection was accepted after Shutdown")
	}
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) with a delivery under way", err)
	default:
	}
	busy.send("second half\r\n.\r\n")
	busy.expect("250 2.0.0 <good@example.org>")
	// Between transactions the connection is closed: a new MAIL finds it
	// closed (EOF, or a reset when it came after the close).
	busy.send("MAIL FROM:<s@example.org>\r\n")
	if l, err := busy.r.ReadString('\n'); err == nil && !strings.HasPrefix(l, "421 4.3.2") {
		t.Errorf("a new transaction after Shutdown: %q", l)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if got := messages(t, ts.root("good")); len(got) != 1 || !strings.HasSuffix(got[0], "first half\r\nsecond half\r\n") {
		t.Errorf("stored %q", got)
	}
}

func TestConcurrentDeliveries(t *testing.T) {
	ts := startServer(t, nil)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", ts.addr)
			if err != nil {
				errs <- err
				return
			}
			err = smtp.NewClientLMTP(nc).SendMail("s@example.org", []string{"good@example.org", "other@example.org"}, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i)))
			nc.Close()
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, u := range []string{"good", "other"} {
		if got := messages(t, ts.root(u)); len(got) != n {
			t.Errorf("%s: %d messages, want %d", u, len(got), n)
		}
	}
}

func TestServeAfterShutdown(t *testing.T) {
	s := &Server{Deliverer: &delivery.Deliverer{Users: users{}}}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener was left open")
	}
}
