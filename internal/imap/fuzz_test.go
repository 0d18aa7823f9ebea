package imap

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/flagop"
	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/message"
)

// The engine on hostile input: whole sessions of client bytes are fed to
// a session on an in-memory backend, and the transcript is checked.

// fuzzMessages are the messages of every fuzzed INBOX: plain text, a
// multipart with an attachment, and a nested message with encoded words.
var fuzzMessages = []string{
	"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: one\r\n" +
		"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <1@example.org>\r\n\r\nHello, Bob.\r\n",
	"From: bob@example.org\r\nTo: alice@example.org, \"C, D\" <cd@example.org>\r\nSubject: two\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n" +
		"--b1\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Disposition: attachment; filename*=utf-8''%C3%A9.bin\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b1--\r\n",
	"From: =?utf-8?B?w4lsb2TDrWU=?= <e@example.org>\r\nSubject: =?iso-8859-1?Q?fwd=3A_caf=E9?=\r\n" +
		"Content-Type: message/rfc822\r\n\r\nFrom: x@example.org\r\nSubject: inner\r\n\r\ninner body\r\n",
}

// fuzzDate is every fuzzed message's internal date.
var fuzzDate = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeMsg struct {
	uid   uint32
	flags []string
	data  []byte
	date  time.Time
	// overstate is added to the size OpenBody gives: a file that
	// turns out shorter than its recorded size.
	overstate int64
}

type fakeBox struct {
	validity, next uint32
	firstRecent    uint32     // the lowest UID no session claimed as recent
	msgs           []*fakeMsg // ascending UIDs
}

func (b *fakeBox) add(data []byte, flags []string, date time.Time) uint32 {
	uid := b.next
	b.next++
	b.msgs = append(b.msgs, &fakeMsg{uid: uid, flags: slices.Clone(flags), data: data, date: date})
	return uid
}

func (b *fakeBox) find(uid uint32) *fakeMsg {
	i, ok := slices.BinarySearchFunc(b.msgs, uid, func(m *fakeMsg, u uint32) int { return int(int64(m.uid) - int64(u)) })
	if !ok {
		return nil
	}
	return b.msgs[i]
}

func (b *fakeBox) keywords() []string {
	var kw []string
	for _, m := range b.msgs {
		for _, f := range m.flags {
			if !strings.HasPrefix(f, `\`) && !slices.Contains(kw, f) {
				kw = append(kw, f)
			}
		}
	}
	return kw
}

// fakeBackend is one user, alice with password secret, whose mailboxes
// live in memory; it answers only with the engine's sentinel errors, so
// a NO [SERVERBUG] is the engine's own doing.
type fakeBackend struct {
	mu    sync.Mutex // guards everything below
	boxes map[string]*fakeBox
	subs  map[string]bool
	valid uint32
}

func newFakeBackend() *fakeBackend {
	b := &fakeBackend{boxes: map[string]*fakeBox{}, subs: map[string]bool{"INBOX": true, "Gone": true}}
	for _, name := range []string{"INBOX", "Work", "Work.Old", "Trash", "Caf\u00e9"} {
		b.boxes[name] = b.newBox()
	}
	inbox := b.boxes["INBOX"]
	for i, m := range fuzzMessages {
		flags := [][]string{{`\Seen`}, {`\Flagged`, "$Label1"}, nil}[i]
		inbox.add([]byte(m), flags, fuzzDate)
	}
	return b
}

func (b *fakeBackend) newBox() *fakeBox {
	b.valid++
	return &fakeBox{validity: b.valid, next: 1}
}

// The fake's object ids (RFC 8474): the UIDVALIDITY names a box, the
// UID a message (the fake does not keep ids across COPY), the
// Message-ID a thread.
func (m *fakeMailbox) MailboxID() string { defer m.lock()(); return fmt.Sprintf("F%d", m.bx.validity) }
func (m *fakeMailbox) EmailID(uid uint32) (string, error) {
	if _, err := m.lookup(uid); err != nil {
		return "", err
	}
	defer m.lock()()
	return fmt.Sprintf("M%d-%d", m.bx.validity, uid), nil
}
func (m *fakeMailbox) ThreadID(uid uint32, st *message.Structure) (string, error) {
	return "T" + hex.EncodeToString([]byte(st.ThreadRoot[:min(len(st.ThreadRoot), 64)])), nil
}

func canonical(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

func (b *fakeBackend) Login(ctx context.Context, user, pass string) (User, error) {
	if user != "alice" || pass != "secret" {
		return nil, ErrAuthFailed
	}
	return &fakeUser{b: b}, nil
}

type fakeUser struct{ b *fakeBackend }

var (
	_ Backend = (*fakeBackend)(nil)
	_ User    = (*fakeUser)(nil)
	_ Mailbox = (*fakeMailbox)(nil)
)

func (u *fakeUser) Username() string { return "alice" }
func (u *fakeUser) Close() error     { return nil }

func (u *fakeUser) box(name string) (*fakeBox, error) {
	bx, ok := u.b.boxes[canonical(name)]
	if !ok {
		return nil, ErrNoSuchMailbox
	}
	return bx, nil
}

func (u *fakeUser) Folders(ctx context.Context) ([]FolderInfo, error) {
	u.b.mu.Lock()
	defer u.b.mu.Unlock()
	names := make([]string, 0, len(u.b.boxes))
	for n := range u.b.boxes {
		if n != "INBOX" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	names = append([]string{"INBOX"}, names...)
	var out []FolderInfo
	for _, n := range names {
		children := false
		for m := range u.b.boxes {
			children = children || strings.HasPrefix(m, n+".")
		}
		out = append(out, FolderInfo{Name: n, HasChildren: children, Subscribed: u.b.subs[n], SpecialUse: map[string]string{"Trash": `\Trash`}[n]})
	}
	for s := range u.b.subs {
		if _, ok := u.b.boxes[s]; !ok {
			out = append(out, FolderInfo{Name: s, NonExistent: true, NoSelect: true, Subscribed: true})
		}
	}
	return out, nil
}

func validBoxName(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, ".") &&
		!strings.Contains(name, "..") && !strings.ContainsAny(name, "/\x00\r\n")
}

func (u *fakeUser) Create(ctx context.Context, name, specialUse string) error {
	u.b.mu.Lock()
	defer u.b.mu.Unlock()
	name = canonical(name)
	if !validBoxName(name) {
		return ErrBadMailboxName
	}
	if _, ok := u.b.boxes[name]; ok {
		return ErrMailboxExists
	}
	u.b.boxes[name] = u.b.newBox()
	return nil
}

func (u *fakeUser) Delete(ctx context.Context, name string) error {
	u.b.mu.Lock()
	defer u.b.mu.Unlock()
	name = canonical(name)
	if name == "INBOX" {
		return ErrBadMailboxName
	}
	if _, err := u.box(name); err != nil {
		return err
	}
	delete(u.b.boxes, name)
	return nil
}

func (u *fakeUser) Rename(ctx context.Context, from, to string) error {
	u.b.mu.Lock()
	defer u.b.mu.Unlock()
	from, to = canonical(from), canonical(to)
	src, err := u.box(from)
	if err != nil {
		return err
	}
	if !validBoxName(to) || to == "INBOX" {
		return ErrBadMailboxName
	}
	if _, ok := u.b.boxes[to]; ok {
		return ErrMailboxExists
	}
	if from == "INBOX" {
		// RFC 9051 §6.3.6: the messages move, INBOX stays, empty.
		moved := u.b.newBox()
		moved.msgs, moved.next = src.msgs, src.next
		src.msgs = nil
		u.b.boxes[to] = moved
		return nil
	}
	for n, bx := range u.b.boxes {
		if n == from || strings.HasPrefix(n, from+".") {
			delete(u.b.boxes, n)
			u.b.boxes[to+n[len(from):]] = bx
		}
	}
	return nil
}

func (u *fakeUser) SetSubscribed(ctx context.Context, name string, on bool) error {
	u.b.mu.Lock()
	defer u.b.mu.Unlock()
	name = canonical(name)
	if !validBoxName(name) {
		return ErrBadMailboxName
	}
	if on {
		u.b.subs[name] = true
	} else {
		delete(u.b.subs, name)
	}
	return nil
}

func (u *fakeUser) Status(ctx context.Context, name string) (StatusInfo, error) {
	u.b.mu.Lock()
	defer u.b.mu.Unlock()
	bx, err := u.box(name)
	if err != nil {
		return StatusInfo{}, err
	}
	st := StatusInfo{UIDNext: bx.next, UIDValidity: bx.validity, MailboxID: fmt.Sprintf("F%d", bx.validity)}
	for _, m := range bx.msgs {
		st.Messages++
		st.Size += int64(len(m.data))
		if !hasFlag(m.flags, `\Seen`) {
			st.Unseen++
		}
		if hasFlag(m.flags, `\Deleted`) {
			st.Deleted++
		}
	}
	return st, nil
}

func (u *fakeUser) Select(ctx context.Context, name string) (Mailbox, error) {
	u.b.mu.Lock()
	defer u.b.mu.Unlock()
	bx, err := u.box(name)
	if err != nil {
		return nil, err
	}
	m := &fakeMailbox{u: u, bx: bx, known: map[uint32]bool{}}
	for _, msg := range bx.msgs {
		m.known[msg.uid] = true
	}
	return m, nil
}

// maxFakeKeywords is Maildir's limit: 26 keyword letters per mailbox.
const maxFakeKeywords = 26

func checkKeywords(bx *fakeBox, flags []string) error {
	kw := bx.keywords()
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) && !slices.Contains(kw, f) {
			kw = append(kw, f)
		}
	}
	if len(kw) > maxFakeKeywords {
		return ErrKeywordsFull
	}
	return nil
}

// storable drops \Recent, which cannot be set (RFC 9051 §2.3.2).
func storable(flags []string) []string {
	var out []string
	for _, f := range flags {
		if !strings.EqualFold(f, `\Recent`) && !hasFlag(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func (u *fakeUser) Append(ctx context.Context, name string, r io.Reader, size int64, flags []string, date time.Time) (uint32, uint32, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, 0, err
	}
	u.b.mu.Lock()
	defer u.b.mu.Unlock()
	bx, err := u.box(name)
	if err != nil {
		return 0, 0, err
	}
	flags = storable(flags)
	if err := checkKeywords(bx, flags); err != nil {
		return 0, 0, err
	}
	if date.IsZero() {
		date = fuzzDate
	}
	return bx.validity, bx.add(message.ToCRLF(data), flags, date), nil
}

// fakeMailbox is a session's handle; known are the UIDs the session was
// told of, so that Take reports what others (here: APPEND and COPY into
// the selected mailbox) changed.
type fakeMailbox struct {
	u     *fakeUser
	bx    *fakeBox
	known map[uint32]bool
}

func (m *fakeMailbox) lock() func() {
	m.u.b.mu.Lock()
	return m.u.b.mu.Unlock
}

func (m *fakeMailbox) UIDValidity() uint32 { defer m.lock()(); return m.bx.validity }
func (m *fakeMailbox) UIDNext() uint32     { defer m.lock()(); return m.bx.next }
func (m *fakeMailbox) Keywords() []string  { defer m.lock()(); return m.bx.keywords() }
func (m *fakeMailbox) Recent(upTo uint32, claim bool) uint32 {
	defer m.lock()()
	first := max(m.bx.firstRecent, 1)
	if claim && first < upTo {
		m.bx.firstRecent = upTo
	}
	return first
}
func (m *fakeMailbox) Sync(ctx context.Context) error {
	return nil
}
func (m *fakeMailbox) Notify() <-chan struct{} { return nil }
func (m *fakeMailbox) Close() error            { return nil }

func (m *fakeMailbox) info(msg *fakeMsg) MessageInfo {
	return MessageInfo{UID: msg.uid, Flags: slices.Clone(msg.flags), Size: int64(len(msg.data)), InternalDate: msg.date}
}

func (m *fakeMailbox) Messages() []MessageInfo {
	defer m.lock()()
	out := make([]MessageInfo, len(m.bx.msgs))
	for i, msg := range m.bx.msgs {
		out[i] = m.info(msg)
	}
	return out
}

func (m *fakeMailbox) Deleted() []uint32 {
	defer m.lock()()
	var out []uint32
	for _, msg := range m.bx.msgs {
		if hasFlag(msg.flags, `\Deleted`) {
			out = append(out, msg.uid)
		}
	}
	return out
}

func (m *fakeMailbox) UIDs() ([]uint32, uint32) {
	defer m.lock()()
	uids := make([]uint32, len(m.bx.msgs))
	unseen := uint32(0)
	for i, msg := range m.bx.msgs {
		uids[i] = msg.uid
		if unseen == 0 && !hasFlag(msg.flags, `\Seen`) {
			unseen = uint32(i + 1)
		}
	}
	return uids, unseen
}

func (m *fakeMailbox) Take() Update {
	defer m.lock()()
	var up Update
	now := map[uint32]bool{}
	for _, msg := range m.bx.msgs {
		now[msg.uid] = true
		if !m.known[msg.uid] {
			up.New = append(up.New, m.info(msg))
		}
	}
	for uid := range m.known {
		if !now[uid] {
			up.Expunged = append(up.Expunged, uid)
		}
	}
	slices.Sort(up.Expunged)
	m.known = now
	return up
}

// The fake keeps no modseqs: every message's is 0, and so is the
// mailbox's HIGHESTMODSEQ; nothing is remembered as expunged.
func (m *fakeMailbox) HighestModSeq() uint64                    { return 0 }
func (m *fakeMailbox) ExpungedSince(modseq uint64) []UIDRange   { return nil }
func (m *fakeMailbox) ChangedSince(modseq uint64) []MessageInfo { return nil }
func (m *fakeMailbox) StoreUnchangedSince(ctx context.Context, uids []uint32, op flagop.Op, flags []string, since uint64) ([]MessageInfo, []uint32, error) {
	msgs, err := m.Store(ctx, uids, op, flags)
	return msgs, nil, err
}

func (m *fakeMailbox) Store(ctx context.Context, uids []uint32, op flagop.Op, flags []string) ([]MessageInfo, error) {
	defer m.lock()()
	flags = storable(flags)
	if err := checkKeywords(m.bx, flags); err != nil {
		return nil, err
	}
	var out []MessageInfo
	for _, uid := range uids {
		msg := m.bx.find(uid)
		if msg == nil {
			continue
		}
		switch op {
		case flagop.Replace:
			msg.flags = slices.Clone(flags)
		case flagop.Add:
			for _, f := range flags {
				if !hasFlag(msg.flags, f) {
					msg.flags = append(msg.flags, f)
				}
			}
		case flagop.Remove:
			msg.flags = slices.DeleteFunc(msg.flags, func(f string) bool { return hasFlag(flags, f) })
		}
		out = append(out, m.info(msg))
	}
	return out, nil
}

func (m *fakeMailbox) Expunge(ctx context.Context, uids []uint32) ([]uint32, error) {
	defer m.lock()()
	var gone []uint32
	m.bx.msgs = slices.DeleteFunc(m.bx.msgs, func(msg *fakeMsg) bool {
		if slices.Contains(uids, msg.uid) {
			gone = append(gone, msg.uid)
			delete(m.known, msg.uid)
			return true
		}
		return false
	})
	return gone, nil
}

func (m *fakeMailbox) Copy(ctx context.Context, uids []uint32, dest string) (uint32, []uint32, []uint32, error) {
	defer m.lock()()
	dst, err := m.u.box(dest)
	if err != nil {
		return 0, nil, nil, err
	}
	var src, to []uint32
	var msgs []*fakeMsg
	for _, uid := range uids {
		if msg := m.bx.find(uid); msg != nil {
			msgs = append(msgs, msg)
		}
	}
	var flags []string
	for _, msg := range msgs {
		flags = append(flags, msg.flags...)
	}
	if err := checkKeywords(dst, flags); err != nil {
		return 0, nil, nil, err
	}
	for _, msg := range msgs {
		src = append(src, msg.uid)
		to = append(to, dst.add(msg.data, msg.flags, msg.date))
	}
	return dst.validity, src, to, nil
}

func (m *fakeMailbox) lookup(uid uint32) (*fakeMsg, error) {
	defer m.lock()()
	msg := m.bx.find(uid)
	if msg == nil {
		return nil, ErrNoSuchMessageErr
	}
	return msg, nil
}

func (m *fakeMailbox) Stat(ctx context.Context, uid uint32) (MessageInfo, error) {
	msg, err := m.lookup(uid)
	if err != nil {
		return MessageInfo{}, err
	}
	defer m.lock()()
	return m.info(msg), nil
}

func (m *fakeMailbox) Structure(ctx context.Context, uid uint32) (*message.Structure, MessageInfo, error) {
	data, info, err := m.Open(ctx, uid)
	if err != nil {
		return nil, MessageInfo{}, err
	}
	return message.Parse(data).Structure(), info, nil
}

func (m *fakeMailbox) Open(ctx context.Context, uid uint32) ([]byte, MessageInfo, error) {
	msg, err := m.lookup(uid)
	if err != nil {
		return nil, MessageInfo{}, err
	}
	defer m.lock()()
	return msg.data, m.info(msg), nil
}

func (m *fakeMailbox) OpenBody(ctx context.Context, uid uint32, structure bool) (Body, MessageInfo, error) {
	data, info, err := m.Open(ctx, uid)
	if err != nil {
		return Body{}, MessageInfo{}, err
	}
	msg, _ := m.lookup(uid)
	b := Body{File: nopCloser{bytes.NewReader(data)}, Size: message.CRLFLen(data) + msg.overstate}
	if structure {
		b.Structure = message.ParseFile(data).Structure()
	}
	return b, info, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// fuzzConn is a client that sends its bytes and then closes its side;
// what the server writes is kept.
type fuzzConn struct {
	mu  sync.Mutex // guards in and out
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.in.Read(p)
}

func (c *fuzzConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

func (c *fuzzConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 143}

func (c *fuzzConn) Close() error                     { return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return loopback }
func (c *fuzzConn) RemoteAddr() net.Addr             { return loopback }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzLimits keep every literal small, so that the fuzzer reaches the
// limits instead of allocating.
var fuzzLimits = wire.Limits{MaxLine: 4096, MaxLiteral: 64 << 10, MaxString: 1024, MaxDepth: 8, MaxLiteralsPerCommand: 8}

// sessionTimeout bounds one fuzzed session; a session that outlives it
// is hung.
const sessionTimeout = 10 * time.Second

// runSession serves one connection that sends in, and returns what the
// server wrote. It fails the test when the session panicked or hung.
func runSession(t *testing.T, in []byte) []byte {
	t.Helper()
	var log bytes.Buffer
	var logMu sync.Mutex
	srv := &Server{
		Backend: newFakeBackend(),
		Logger:  slog.New(slog.NewTextHandler(lockedWriter{&logMu, &log}, nil)),
		Limits:  fuzzLimits,
	}
	nc := &fuzzConn{in: bytes.NewReader(in)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		newConn(srv, nc).serve()
	}()
	select {
	case <-done:
	case <-time.After(sessionTimeout):
		t.Fatalf("session still running after %v on %q; wrote %q", sessionTimeout, in, nc.output())
	}
	if srv.Panics.Load() != 0 {
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("session panicked on %q:\n%s", in, log.String())
	}
	return nc.output()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// checkTranscript checks the server's bytes: a greeting, then whole
// responses, each line CRLF-terminated with no CR, LF or NUL inside it
// (literals aside), every line untagged, a continuation request or a
// tagged OK, NO or BAD with a tag the client sent; never SERVERBUG.
func checkTranscript(in, out []byte) error {
	if !bytes.HasPrefix(out, []byte("* OK [CAPABILITY ")) {
		return fmt.Errorf("greeting %q", out)
	}
	rest := out
	cont := false // inside a response, after a literal
	for len(rest) > 0 {
		i := bytes.Index(rest, []byte("\r\n"))
		if i < 0 {
			return fmt.Errorf("response without CRLF %q", rest)
		}
		line := rest[:i]
		rest = rest[i+2:]
		if bytes.ContainsAny(line, "\r\n\x00") {
			return fmt.Errorf("CR, LF or NUL inside response line %q", line)
		}
		if bytes.Contains(line, []byte("SERVERBUG")) {
			return fmt.Errorf("engine error: %q", line)
		}
		if !cont {
			if err := checkLineStart(in, line); err != nil {
				return err
			}
		}
		cont = false
		if n, ok := trailingLiteral(line); ok {
			if int64(len(rest)) < n {
				return fmt.Errorf("literal of %d bytes, %d left", n, len(rest))
			}
			rest = rest[n:]
			cont = true
		}
	}
	if cont {
		return errors.New("output ends inside a response")
	}
	return nil
}

func checkLineStart(in, line []byte) error {
	if bytes.HasPrefix(line, []byte("* ")) || bytes.HasPrefix(line, []byte("+ ")) || string(line) == "+" {
		return nil
	}
	tag, status, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(tag) == 0 || !bytes.Contains(in, tag) {
		return fmt.Errorf("response %q: not untagged and no tag the client sent", line)
	}
	word, _, _ := bytes.Cut(status, []byte(" "))
	switch string(word) {
	case "OK", "NO", "BAD":
		return nil
	}
	return fmt.Errorf("tagged response %q is not OK, NO or BAD", line)
}

// trailingLiteral reports whether a response line ends with a literal
// header "{n}" or "~{n}", and its size.
func trailingLiteral(line []byte) (int64, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(line[i+1:len(line)-1]), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// seedSessions are client sessions as real clients send them, and the
// seeds of the wire package's fuzz target after a login and a SELECT.
func seedSessions(f *testing.F) [][]byte {
	login := "a0 LOGIN alice secret\r\na00 SELECT INBOX\r\n"
	seeds := []string{
		"a1 CAPABILITY\r\na2 LOGIN alice secret\r\na3 LIST \"\" \"*\"\r\na4 SELECT INBOX\r\n" +
			"a5 UID FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)\r\na6 LOGOUT\r\n",
		// Thunderbird
		"1 capability\r\n2 authenticate PLAIN AGFsaWNlAHNlY3JldA==\r\n3 ID (\"name\" \"Thunderbird\")\r\n" +
			"4 enable UTF8=ACCEPT\r\n5 list (SUBSCRIBED) \"\" \"*\" RETURN (SPECIAL-USE)\r\n6 select \"INBOX\"\r\n" +
			"7 UID fetch 1:* (FLAGS)\r\n8 UID fetch 3 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])\r\n" +
			"9 UID fetch 2 (UID RFC822.SIZE BODY.PEEK[])\r\n10 IDLE\r\nDONE\r\n11 logout\r\n",
		// mbsync
		"1 LOGIN alice secret\r\n2 NAMESPACE\r\n3 LIST \"\" \"*\"\r\n4 SELECT Work\r\n" +
			"5 UID FETCH 1:1000000000 (UID FLAGS)\r\n6 APPEND Work (\\Seen) {12+}\r\nSubject: x\r\n\r\n" +
			"7 UID STORE 1 +FLAGS.SILENT (\\Deleted)\r\n8 UID EXPUNGE 1\r\n9 LOGOUT\r\n",
		login + "b1 FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)\r\nb2 FETCH 2 (BODY[1] BINARY[2] BINARY.SIZE[2] BODY[1.MIME] BODY[TEXT]<2.5>)\r\n" +
			"b3 FETCH 3 (BODY.PEEK[1.HEADER] BODY[1.TEXT] RFC822 RFC822.HEADER RFC822.TEXT)\r\nb4 UID FETCH 4:* FAST\r\n",
		login + "c1 SEARCH UNSEEN\r\nc2 UID SEARCH RETURN (MIN MAX COUNT ALL SAVE) OR FROM alice SUBJECT two\r\n" +
			"c3 SEARCH CHARSET UTF-8 BODY \"caf\u00e9\" NOT DELETED SENTSINCE 1-Jan-1990 LARGER 10\r\nc4 FETCH $ (UID)\r\n" +
			"c5 SEARCH HEADER Message-ID <1@example.org> KEYWORD $Label1 UID 1:2,3 TEXT {5}\r\ninner\r\n",
		login + "d1 STORE 1:* +FLAGS (\\Deleted $Junk)\r\nd2 COPY 1:2 Trash\r\nd3 MOVE 3 Work.Old\r\nd4 EXPUNGE\r\nd5 CLOSE\r\n" +
			"d6 STATUS Work.Old (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT)\r\n",
		login + "e1 CREATE Lists.Go\r\ne2 CREATE \"&AMk-t&AOk-\"\r\ne3 RENAME Lists.Go Archive.Go\r\ne4 SUBSCRIBE Archive.Go\r\n" +
			"e5 LSUB \"\" *\r\ne6 LIST \"\" % RETURN (CHILDREN STATUS (MESSAGES))\r\ne7 DELETE Archive.Go\r\ne8 UNSUBSCRIBE Gone\r\n" +
			"e9 RENAME INBOX Old\r\ne10 EXAMINE Old\r\ne11 STORE 1 +FLAGS (x)\r\ne12 UNSELECT\r\n",
		login + "f1 ENABLE IMAP4rev2\r\nf2 SELECT INBOX\r\nf3 FETCH 1 (BINARY.PEEK[] FLAGS)\r\nf4 APPEND INBOX ~{5+}\r\na\x00b\r\n\r\n" +
			"f5 COPY 1:* INBOX\r\nf6 NOOP\r\nf7 CHECK\r\n",
		"g1 STARTTLS\r\ng2 AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\ng3 SELECT INBOX\r\n",
		"h1 LOGIN alice wrong\r\nh2 AUTHENTICATE PLAIN\r\n*\r\nh3 AUTHENTICATE CRAM-MD5\r\nh4 LOGIN {5}\r\nalice {6}\r\nsecret\r\n",
	}
	out := make([][]byte, 0, len(seeds))
	for _, s := range seeds {
		out = append(out, []byte(s))
	}
	b, err := os.ReadFile("wire/testdata/commands.txt")
	if err != nil {
		f.Fatal(err)
	}
	for para := range strings.SplitSeq(string(b), "\n\n") {
		if strings.HasPrefix(para, "#") || strings.TrimSpace(para) == "" {
			continue
		}
		para = strings.TrimSuffix(para, "\n") + "\n"
		out = append(out, []byte(login+strings.ReplaceAll(para, "\n", "\r\n")))
	}
	return out
}

// FuzzSession: no client bytes make a session panic, hang, or write a
// malformed response, an engine error, or a tag the client did not send.
func FuzzSession(f *testing.F) {
	for _, s := range seedSessions(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := runSession(t, in)
		if err := checkTranscript(in, out); err != nil {
			t.Fatalf("%v\ninput %q\noutput %q", err, in, out)
		}
	})
}

// FuzzAuthenticate: AUTHENTICATE PLAIN, with the response as an initial
// response (RFC 4959) or after the continuation, succeeds exactly for
// alice's credentials, answers BAD for what is not base64 (or "*", the
// cancellation), NO for other credentials, and leaves the session in
// step.
func FuzzAuthenticate(f *testing.F) {
	enc := base64.StdEncoding.EncodeToString
	for _, s := range []string{
		enc([]byte("\x00alice\x00secret")), enc([]byte("alice\x00alice\x00secret")), enc([]byte("bob\x00alice\x00secret")),
		enc([]byte("\x00alice\x00wrong")), enc([]byte("\x00alice")), enc([]byte("\x00alice\x00secret\x00")), enc(nil),
		"=", "*", "", "AGFsaWNlAHNlY3JldA", "AGFsaWNlAHNlY3JldA===", "AGFs aWNlAHNlY3JldA==", "\xff",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, resp string, initial bool) {
		if strings.ContainsAny(resp, "\r\n") || len(resp) > 1000 {
			return
		}
		var in string
		if initial {
			in = "a1 AUTHENTICATE PLAIN " + resp + "\r\n"
		} else {
			in = "a1 AUTHENTICATE PLAIN\r\n" + resp + "\r\n"
		}
		in += "a2 NOOP\r\n"
		out := runSession(t, []byte(in))
		if err := checkTranscript([]byte(in), out); err != nil {
			t.Fatalf("%v\ninput %q\noutput %q", err, in, out)
		}
		want := "BAD"
		raw, err := base64.StdEncoding.DecodeString(resp)
		if resp == "=" {
			raw, err = nil, nil
		}
		if err == nil && (resp != "" || !initial) {
			want = "NO"
			if string(raw) == "\x00alice\x00secret" || string(raw) == "alice\x00alice\x00secret" {
				want = "OK"
			}
		}
		tagged, got := "", ""
		for l := range strings.SplitSeq(string(out), "\r\n") {
			if rest, ok := strings.CutPrefix(l, "a1 "); ok {
				tagged = l
				got, _, _ = strings.Cut(rest, " ")
			}
		}
		if got != want {
			t.Fatalf("AUTHENTICATE with %q (initial %v): %q, want %s\n%s", resp, initial, tagged, want, out)
		}
		if !strings.Contains(string(out), "\r\na2 OK") {
			t.Fatalf("NOOP after AUTHENTICATE with %q (initial %v) not answered OK:\n%s", resp, initial, out)
		}
	})
}

func TestFuzzTranscriptCheck(t *testing.T) {
	in := []byte("a1 NOOP\r\n")
	good := "* OK [CAPABILITY IMAP4rev1] hi\r\n* 1 FETCH (BODY[] {3}\r\na\r\n)\r\n+ go on\r\na1 OK done\r\n"
	if err := checkTranscript(in, []byte(good)); err != nil {
		t.Errorf("checkTranscript(%q): %v", good, err)
	}
	for _, bad := range []string{
		"",
		"* OK [CAPABILITY IMAP4rev1] hi\r\nzz OK invented tag\r\n",
		"* OK [CAPABILITY IMAP4rev1] hi\r\na1 MAYBE\r\n",
		"* OK [CAPABILITY IMAP4rev1] hi\r\n* BYE no end",
		"* OK [CAPABILITY IMAP4rev1] hi\r\n* 1 FETCH (BODY[] {9}\r\nab\r\n",
		"* OK [CAPABILITY IMAP4rev1] hi\r\n* 1 FETCH (BODY[] {2}\r\nab",
		"* OK [CAPABILITY IMAP4rev1] hi\r\na1 NO [SERVERBUG] oops\r\n",
		"* OK [CAPABILITY IMAP4rev1] hi\r\n* OK a\rb\r\n",
	} {
		if checkTranscript(in, []byte(bad)) == nil {
			t.Errorf("checkTranscript accepted %q", bad)
		}
	}
	if n, ok := trailingLiteral([]byte("x ~{12}")); n != 12 || !ok {
		t.Errorf("trailingLiteral: %d, %v", n, ok)
	}
}
