package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// The crash tests (crash_test.go) keep a ledger of every message their
// clients sent and of every copy the server acknowledged; checkMaildir and
// checkUIDList hold a Maildir against it after the server was killed many
// times. A copy is identified by its Message-ID, which names one message
// sent once (a message whose delivery was cut is never sent again, so a
// second copy is always a duplicate), and by the user whose Maildir holds
// it.

// crashDomain is the domain of every address in the crash tests.
const crashDomain = "crash.test"

// sentMessage is one message as a client sent it.
type sentMessage struct {
	from  string   // the envelope sender, without angle brackets
	rcpts []string // the recipients as the client named them (RCPT TO, deliver -u)
	users []string // the user each recipient belongs to
	size  int64    // bytes of the message as stored below the added header lines
	sum   [sha256.Size]byte
}

// addedHeader is what Cistern puts above every stored message (package
// delivery): Return-Path, and Delivered-To for a single recipient.
func (m *sentMessage) addedHeader() string {
	h := "Return-Path: <" + m.from + ">\r\n"
	if len(m.rcpts) == 1 {
		h += "Delivered-To: " + m.rcpts[0] + "\r\n"
	}
	return h
}

// matches reports whether data is the whole message as Cistern stores it.
func (m *sentMessage) matches(data []byte) bool {
	rest, ok := bytes.CutPrefix(data, []byte(m.addedHeader()))
	return ok && int64(len(rest)) == m.size && sha256.Sum256(rest) == m.sum
}

// ledger records what the clients of a crash test sent and which copies
// the server acknowledged (LMTP 250 for that recipient, LDA exit 0). Safe
// for concurrent use.
type ledger struct {
	mu    sync.Mutex
	sent  map[string]*sentMessage    // by Message-ID
	acked map[string]map[string]bool // Message-ID → user → acknowledged
}

func newLedger() *ledger {
	return &ledger{sent: make(map[string]*sentMessage), acked: make(map[string]map[string]bool)}
}

// record notes msg, which holds the CRLF message as it is sent, before it
// is sent.
func (l *ledger) record(id, from string, rcpts, users []string, msg []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.sent[id]; dup {
		return fmt.Errorf("Message-ID %s sent twice", id)
	}
	l.sent[id] = &sentMessage{from: from, rcpts: rcpts, users: users, size: int64(len(msg)), sum: sha256.Sum256(msg)}
	return nil
}

// ack notes that the copy of message id for user was acknowledged.
func (l *ledger) ack(id, user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.acked[id] == nil {
		l.acked[id] = make(map[string]bool)
	}
	l.acked[id][user] = true
}

func (l *ledger) lookup(id string) *sentMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent[id]
}

func (l *ledger) isAcked(id, user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked[id][user]
}

// ackedFor returns the Message-IDs acknowledged for user, sorted.
func (l *ledger) ackedFor(user string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for id, users := range l.acked {
		if users[user] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// totals returns the number of messages sent, of copies acknowledged, and
// of acknowledged copies of messages with more than one recipient.
func (l *ledger) totals() (sent, acked, ackedShared int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, users := range l.acked {
		acked += len(users)
		if len(l.sent[id].rcpts) > 1 {
			ackedShared += len(users)
		}
	}
	return len(l.sent), acked, ackedShared
}

// composeMessage returns a message of size bytes (at least a few hundred)
// with CRLF line endings, whose first header line is its Message-ID, and
// whose body is random text from rng. No line starts with a dot.
func composeMessage(rng *rand.Rand, id, from string, rcpts []string, size int) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b bytes.Buffer
	b.Grow(size)
	fmt.Fprintf(&b, "Message-ID: %s\r\nFrom: <%s>\r\nTo: %s\r\nSubject: crash test %s\r\n\r\n", id, from, strings.Join(rcpts, ", "), id)
	for b.Len() < size {
		n := min(76, size-b.Len()-2)
		if n <= 0 {
			n = 1
		}
		for range n {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// messageID returns the Message-ID field of a stored message, "" when its
// header holds no complete Message-ID line (a file cut short).
func messageID(data []byte) string {
	for {
		line, rest, ok := bytes.Cut(data, []byte("\r\n"))
		if !ok || len(line) == 0 {
			return ""
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(name), "Message-ID") {
			return strings.TrimSpace(string(value))
		}
		data = rest
	}
}

// crlfSize is the size of data with every bare LF counted as CRLF: what
// Dovecot's W= field says.
func crlfSize(data []byte) int64 {
	n := int64(len(data))
	for i, c := range data {
		if c == '\n' && (i == 0 || data[i-1] != '\r') {
			n++
		}
	}
	return n
}

// violationKind is a class of broken delivery guarantee (DESIGN.md §2).
type violationKind int

const (
	lostMessage      violationKind = iota // acknowledged, but not in new/ or cur/
	duplicateMessage                      // in new/ and cur/ more than once
	partialMessage                        // in new/ or cur/, but not the whole message sent
	strayMessage                          // in new/ or cur/, but never sent to this user
	wrongSizeField                        // S= or W= in the file name disagrees with the file
	ackedInTmp                            // tmp/ holds a copy of an acknowledged message
	badUIDList                            // dovecot-uidlist damaged or not matching the files
)

var violationNames = [...]string{"lost", "duplicate", "partial", "stray", "wrong size field", "acknowledged in tmp/", "bad uidlist"}

func (k violationKind) String() string { return violationNames[k] }

// violation is one broken guarantee found in a Maildir.
type violation struct {
	kind   violationKind
	detail string
}

func (v violation) String() string { return v.kind.String() + ": " + v.detail }

// maildirReport is what checkMaildir found in one user's Maildir.
type maildirReport struct {
	messages       int               // files in new/ and cur/
	acked          int               // acknowledged copies present
	unackedPresent int               // copies present that were never acknowledged
	tmpLeft        []string          // files left in tmp/
	ids            map[string]string // base name → Message-ID of each file in new/ and cur/
	violations     []violation
}

// checkMaildir holds the Maildir dir of user against the ledger:
//
//   - every copy acknowledged for user is in new/ or cur/ exactly once;
//   - every file in new/ and cur/ is the whole of a message sent to user,
//     byte for byte below the header lines Cistern adds, once, with S= and
//     W= fields (when present) matching the file;
//   - every file in tmp/ whose Message-ID can be read belongs to a copy
//     that was not acknowledged.
//
// Copies that were not acknowledged may be present (a crash after the
// fsync, before the reply) or not. An error is an I/O failure, not a
// finding.
func checkMaildir(dir, user string, l *ledger) (*maildirReport, error) {
	r := &maildirReport{ids: make(map[string]string)}
	bad := func(k violationKind, format string, args ...any) {
		r.violations = append(r.violations, violation{k, fmt.Sprintf(format, args...)})
	}
	copies := make(map[string][]string) // Message-ID → sub/name
	for _, sub := range []string{maildir.New, maildir.Cur} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			path := filepath.Join(dir, sub, e.Name())
			where := sub + "/" + e.Name()
			if !e.Type().IsRegular() {
				bad(strayMessage, "%s is not a regular file", where)
				continue
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			r.messages++
			base := maildir.BaseName(e.Name())
			id := messageID(data)
			r.ids[base] = id
			m := l.lookup(id)
			switch {
			case id == "":
				bad(strayMessage, "%s (%d bytes) has no Message-ID", where, len(data))
				continue
			case m == nil:
				bad(strayMessage, "%s holds %s, which no client sent", where, id)
				continue
			case !slices.Contains(m.users, user):
				bad(strayMessage, "%s holds %s, sent to %q, not to %s", where, id, m.users, user)
				continue
			case !m.matches(data):
				bad(partialMessage, "%s holds %d bytes of %s, not the %d sent (plus %d of added header)", where, len(data), id, m.size, len(m.addedHeader()))
			}
			if s, w := maildir.SizeFields(base); (s >= 0 && s != int64(len(data))) || (w >= 0 && w != crlfSize(data)) {
				bad(wrongSizeField, "%s: S=%d W=%d, the file has %d bytes, %d with CRLF", where, s, w, len(data), crlfSize(data))
			}
			copies[id] = append(copies[id], where)
			if len(copies[id]) > 1 {
				continue
			}
			if l.isAcked(id, user) {
				r.acked++
			} else {
				r.unackedPresent++
			}
		}
	}
	for id, where := range copies {
		if len(where) > 1 {
			bad(duplicateMessage, "%s is there %d times: %q", id, len(where), where)
		}
	}
	for _, id := range l.ackedFor(user) {
		if len(copies[id]) == 0 {
			bad(lostMessage, "%s was acknowledged for %s and is not in new/ or cur/", id, user)
		}
	}

	entries, err := os.ReadDir(filepath.Join(dir, maildir.Tmp))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		path := filepath.Join(dir, maildir.Tmp, e.Name())
		r.tmpLeft = append(r.tmpLeft, path)
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if id := messageID(data); id != "" && l.isAcked(id, user) {
			bad(ackedInTmp, "tmp/%s (%d bytes) holds %s, acknowledged for %s", e.Name(), len(data), id, user)
		}
	}
	return r, nil
}

// checkUIDList checks dir's dovecot-uidlist against the message files
// whose base names are the keys of files, for a mailbox that was synced
// after its last delivery and where nothing was ever expunged:
//
//   - the format's reader finds no damage in it (uidlist.Parse problems);
//   - read line by line, independently of that reader: a version 3
//     header with a UIDVALIDITY, UIDs strictly ascending (so none twice),
//     no base name twice;
//   - every message file has a record, and every record has its file.
func checkUIDList(dir string, files map[string]string) []violation {
	var vs []violation
	bad := func(format string, args ...any) {
		vs = append(vs, violation{badUIDList, fmt.Sprintf(format, args...)})
	}
	path := filepath.Join(dir, uidlist.FileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if len(files) > 0 {
			bad("no %s for %d message files", uidlist.FileName, len(files))
		}
		return vs
	}
	if err != nil {
		bad("%v", err)
		return vs
	}
	if _, problems, err := uidlist.Parse(path, data); err != nil {
		bad("%v", err)
	} else {
		for _, p := range problems {
			bad("%s", p)
		}
	}

	lines := strings.Split(string(data), "\n")
	if last := lines[len(lines)-1]; last != "" {
		bad("last line %q has no line end", last)
	}
	lines = lines[:len(lines)-1]
	if len(lines) == 0 {
		bad("empty")
		return vs
	}
	header := strings.Fields(lines[0])
	if len(header) < 2 || header[0] != "3" || !strings.HasPrefix(header[1], "V") {
		bad("header %q is not version 3 with a UIDVALIDITY", lines[0])
	} else if v, err := strconv.ParseUint(header[1][1:], 10, 32); err != nil || v == 0 {
		bad("header %q: bad UIDVALIDITY", lines[0])
	}
	seen := make(map[string]uint64) // base name → UID
	var prev uint64
	for _, line := range lines[1:] {
		uidText, rest, _ := strings.Cut(line, " ")
		uid, err := strconv.ParseUint(uidText, 10, 32)
		_, name, hasName := strings.Cut(rest, ":")
		if err != nil || uid == 0 || !hasName || name == "" {
			bad("record %q is malformed", line)
			continue
		}
		if uid <= prev {
			bad("UID %d follows UID %d (record %q)", uid, prev, line)
		}
		prev = max(prev, uid)
		base := maildir.BaseName(name)
		if other, dup := seen[base]; dup {
			bad("base name %s has UIDs %d and %d", base, other, uid)
		}
		seen[base] = uid
		if _, ok := files[base]; !ok {
			bad("UID %d names %s, which is no message file", uid, base)
		}
	}
	for base, id := range files {
		if _, ok := seen[base]; !ok {
			bad("message file %s (%s) has no UID", base, id)
		}
	}
	return vs
}

// checkerFixture is a small Maildir of the user "u1", with a ledger:
//
//	acked1   for u1, acknowledged, in new/
//	shared   for u1 and u2, acknowledged for u1, in new/
//	unacked  for u1, not acknowledged, in new/ (a crash after the fsync)
//	cut      for u1, not acknowledged, its first half in tmp/
//
// and a dovecot-uidlist written by the store.
type checkerFixture struct {
	dir   string
	l     *ledger
	files map[string]string // Message-ID (acked1, shared, unacked) → path
	raw   map[string][]byte // Message-ID → the file's bytes
}

func newCheckerFixture(t *testing.T) *checkerFixture {
	t.Helper()
	fx := &checkerFixture{dir: filepath.Join(t.TempDir(), "Maildir"), l: newLedger(), files: map[string]string{}, raw: map[string][]byte{}}
	if err := maildir.Create(fx.dir, 0); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	from := "s@" + crashDomain
	for _, m := range []struct {
		id    string
		users []string
		acked bool
		where string
	}{
		{"<acked1@crash.test>", []string{"u1"}, true, maildir.New},
		{"<shared@crash.test>", []string{"u1", "u2"}, true, maildir.New},
		{"<unacked@crash.test>", []string{"u1"}, false, maildir.New},
		{"<cut@crash.test>", []string{"u1"}, false, maildir.Tmp},
	} {
		var rcpts []string
		for _, u := range m.users {
			rcpts = append(rcpts, u+"@"+crashDomain)
		}
		msg := composeMessage(rng, m.id, from, rcpts, 3000)
		if err := fx.l.record(m.id, from, rcpts, m.users, msg); err != nil {
			t.Fatal(err)
		}
		stored := append([]byte(fx.l.lookup(m.id).addedHeader()), msg...)
		fx.raw[m.id] = stored
		if m.acked {
			fx.l.ack(m.id, "u1")
		}
		if m.where == maildir.Tmp {
			fx.write(t, filepath.Join(fx.dir, maildir.Tmp, "1700000000.M1P1Q1.crash"), stored[:len(stored)/2])
			continue
		}
		name, err := maildir.Deliver(fx.dir, bytes.NewReader(stored), maildir.DeliverOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fx.files[m.id] = filepath.Join(fx.dir, maildir.New, name)
	}
	mb, err := store.Open(fx.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	mb.Close()
	return fx
}

func (fx *checkerFixture) write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// check runs both checkers and returns the kinds of violation found.
func (fx *checkerFixture) check(t *testing.T) (*maildirReport, map[violationKind]bool) {
	t.Helper()
	r, err := checkMaildir(fx.dir, "u1", fx.l)
	if err != nil {
		t.Fatal(err)
	}
	vs := append(r.violations, checkUIDList(fx.dir, r.ids)...)
	kinds := make(map[violationKind]bool)
	for _, v := range vs {
		t.Logf("found: %s", v)
		kinds[v.kind] = true
	}
	return r, kinds
}

// The checker finds every kind of damage planted into a Maildir, and
// nothing in an undamaged one.
func TestCrashCheckerFindsDamage(t *testing.T) {
	t.Run("undamaged", func(t *testing.T) {
		fx := newCheckerFixture(t)
		r, kinds := fx.check(t)
		if len(kinds) != 0 {
			t.Errorf("violations in an undamaged Maildir: %v", kinds)
		}
		if r.messages != 3 || r.acked != 2 || r.unackedPresent != 1 || len(r.tmpLeft) != 1 {
			t.Errorf("counted %d messages, %d acknowledged, %d not, %d in tmp/; want 3, 2, 1, 1",
				r.messages, r.acked, r.unackedPresent, len(r.tmpLeft))
		}
	})

	tests := []struct {
		name  string
		plant func(t *testing.T, fx *checkerFixture)
		want  []violationKind
	}{
		{"acknowledged message missing", func(t *testing.T, fx *checkerFixture) {
			if err := os.Remove(fx.files["<acked1@crash.test>"]); err != nil {
				t.Fatal(err)
			}
		}, []violationKind{lostMessage, badUIDList}},
		{"message present twice", func(t *testing.T, fx *checkerFixture) {
			// Under another name, with a UID of its own: only the
			// duplicate is wrong.
			src, err := os.Open(fx.files["<shared@crash.test>"])
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if _, err := maildir.Deliver(fx.dir, src, maildir.DeliverOptions{}); err != nil {
				t.Fatal(err)
			}
			mb, err := store.Open(fx.dir, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer mb.Close()
			if _, err := mb.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
		}, []violationKind{duplicateMessage}},
		{"truncated file in new/", func(t *testing.T, fx *checkerFixture) {
			if err := os.Truncate(fx.files["<unacked@crash.test>"], 1000); err != nil {
				t.Fatal(err)
			}
		}, []violationKind{partialMessage, wrongSizeField}},
		{"truncated file in new/ without size fields", func(t *testing.T, fx *checkerFixture) {
			path := fx.files["<acked1@crash.test>"]
			fx.write(t, path, fx.raw["<acked1@crash.test>"][:len(fx.raw["<acked1@crash.test>"])-1])
			// The name keeps its S=: rename the file to its bare
			// unique part, which the uidlist does not know either.
			bare := filepath.Join(fx.dir, maildir.New, strings.Split(filepath.Base(path), ",")[0])
			if err := os.Rename(path, bare); err != nil {
				t.Fatal(err)
			}
		}, []violationKind{partialMessage, badUIDList}},
		{"tmp/ file of an acknowledged message", func(t *testing.T, fx *checkerFixture) {
			fx.write(t, filepath.Join(fx.dir, maildir.Tmp, "1700000000.M2P2Q2.crash"), fx.raw["<shared@crash.test>"])
		}, []violationKind{ackedInTmp}},
		{"message for another user", func(t *testing.T, fx *checkerFixture) {
			msg := composeMessage(rand.New(rand.NewPCG(3, 4)), "<other@crash.test>", "s@"+crashDomain, []string{"u2@" + crashDomain}, 2000)
			if err := fx.l.record("<other@crash.test>", "s@"+crashDomain, []string{"u2@" + crashDomain}, []string{"u2"}, msg); err != nil {
				t.Fatal(err)
			}
			stored := append([]byte(fx.l.lookup("<other@crash.test>").addedHeader()), msg...)
			if _, err := maildir.Deliver(fx.dir, bytes.NewReader(stored), maildir.DeliverOptions{}); err != nil {
				t.Fatal(err)
			}
		}, []violationKind{strayMessage, badUIDList}},
		{"duplicated UID in dovecot-uidlist", func(t *testing.T, fx *checkerFixture) {
			path := filepath.Join(fx.dir, uidlist.FileName)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(data), "\n")
			if len(lines) != 5 || !strings.HasPrefix(lines[2], "2 ") || !strings.HasPrefix(lines[3], "3 ") {
				t.Fatalf("the fixture's uidlist is not a header and UIDs 1, 2, 3:\n%s", data)
			}
			lines[3] = "2" + strings.TrimPrefix(lines[3], "3")
			fx.write(t, path, []byte(strings.Join(lines, "\n")))
		}, []violationKind{badUIDList}},
		{"base name twice in dovecot-uidlist", func(t *testing.T, fx *checkerFixture) {
			path := filepath.Join(fx.dir, uidlist.FileName)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(data), "\n")
			_, name, _ := strings.Cut(lines[1], ":")
			fx.write(t, path, append(data, []byte("9 :"+name+"\n")...))
		}, []violationKind{badUIDList}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newCheckerFixture(t)
			tt.plant(t, fx)
			_, kinds := fx.check(t)
			for _, k := range tt.want {
				if !kinds[k] {
					t.Errorf("no %q violation found", k)
				}
				delete(kinds, k)
			}
			for k := range kinds {
				t.Errorf("unexpected %q violation", k)
			}
		})
	}
}
