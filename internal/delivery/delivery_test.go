package delivery

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/testfault"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// fakeUsers is a passwd-file in memory.
type fakeUsers struct {
	mu    sync.Mutex
	users map[string]User
	err   error // returned for every lookup when set
}

func (f *fakeUsers) LookupUser(name string) (User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return User{}, f.err
	}
	u, ok := f.users[name]
	if !ok {
		return User{}, fmt.Errorf("%w: %q", ErrUnknownUser, name)
	}
	return u, nil
}

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type fixture struct {
	d    *Deliverer
	base string
	log  *logBuffer
	u    *fakeUsers
}

// newFixture makes a Deliverer whose users are named, each with a
// Maildir root under a temporary directory (made on first delivery).
func newFixture(t *testing.T, names ...string) *fixture {
	t.Helper()
	base := t.TempDir()
	u := &fakeUsers{users: map[string]User{}}
	for _, n := range names {
		u.users[n] = User{Name: n, Root: filepath.Join(base, strings.ReplaceAll(n, "@", "_at_"), "Maildir")}
	}
	lb := &logBuffer{}
	d := &Deliverer{Users: u, Logger: slog.New(slog.NewTextHandler(lb, nil))}
	return &fixture{d: d, base: base, log: lb, u: u}
}

func (f *fixture) root(name string) string { return f.u.users[name].Root }

func (f *fixture) resolve(t *testing.T, addrs ...string) []*Recipient {
	t.Helper()
	var rs []*Recipient
	for _, a := range addrs {
		r, err := f.d.Resolve("t1", a)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", a, err)
		}
		rs = append(rs, r)
	}
	return rs
}

// files lists the files in dir's sub/, or nil when there is none.
func files(t *testing.T, dir, sub string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, sub))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// only returns the path of the one message in dir/new, failing the test
// when there is not exactly one, or when tmp/ or cur/ hold anything.
func only(t *testing.T, dir string) string {
	t.Helper()
	names := files(t, dir, maildir.New)
	if len(names) != 1 {
		t.Fatalf("%s/new holds %q, want one message", dir, names)
	}
	if left := files(t, dir, maildir.Tmp); len(left) != 0 {
		t.Errorf("%s/tmp holds %q", dir, left)
	}
	if cur := files(t, dir, maildir.Cur); len(cur) != 0 {
		t.Errorf("%s/cur holds %q", dir, cur)
	}
	return filepath.Join(dir, maildir.New, names[0])
}

// empty fails the test when dir holds any message or temporary file.
func empty(t *testing.T, dir string) {
	t.Helper()
	for _, sub := range []string{maildir.New, maildir.Cur, maildir.Tmp} {
		if names := files(t, dir, sub); len(names) != 0 {
			t.Errorf("%s/%s holds %q", dir, sub, names)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

const sampleMsg = "From: a@example.org\nSubject: hello\n\nline one\r\nline two\n"
const sampleCRLF = "From: a@example.org\r\nSubject: hello\r\n\r\nline one\r\nline two\r\n"

func TestDeliverOneRecipient(t *testing.T) {
	f := newFixture(t, "bob")
	rs := f.resolve(t, "bob@example.org")
	res := f.d.Deliver(Envelope{From: "alice@example.org", ID: "t1"}, rs, strings.NewReader(sampleMsg))
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("Deliver = %+v", res)
	}
	path := only(t, f.root("bob"))
	want := "Return-Path: <alice@example.org>\r\nDelivered-To: bob@example.org\r\n" + sampleCRLF
	if got := read(t, path); got != want {
		t.Errorf("stored %q\nwant   %q", got, want)
	}
	if res[0].Folder != "INBOX" || res[0].Size != int64(len(want)) || filepath.Base(path) != res[0].Filename {
		t.Errorf("result %+v (file %s, size %d)", res[0], path, len(want))
	}
	if s, w := maildir.SizeFields(res[0].Filename); s != int64(len(want)) || w != s {
		t.Errorf("size fields of %s: %d %d", res[0].Filename, s, w)
	}
	// The account was made on first delivery, default folders included.
	if !maildir.IsMaildir(filepath.Join(f.root("bob"), ".Sent")) {
		t.Error("first delivery did not make the default folders")
	}
	if n, b := f.d.Counters.Delivered.Load(), f.d.Counters.Bytes.Load(); n != 1 || b != int64(len(want)) {
		t.Errorf("counters: delivered %d bytes %d", n, b)
	}
	for _, s := range []string{"msg=delivery", "id=t1", "rcpt=bob@example.org", "user=bob", "folder=INBOX", fmt.Sprintf("size=%d", len(want)), "result=delivered", "duration="} {
		if !strings.Contains(f.log.String(), s) {
			t.Errorf("log lacks %q: %s", s, f.log)
		}
	}
}

func TestDeliverNullSender(t *testing.T) {
	f := newFixture(t, "bob")
	res := f.d.Deliver(Envelope{}, f.resolve(t, "bob"), strings.NewReader("x\n"))
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if got := read(t, only(t, f.root("bob"))); got != "Return-Path: <>\r\nDelivered-To: bob\r\nx\r\n" {
		t.Errorf("stored %q", got)
	}
}

func TestDeliverSharesOneFile(t *testing.T) {
	f := newFixture(t, "a", "b", "c")
	rs := f.resolve(t, "a@example.org", "b@example.org", "c@example.org")
	res := f.d.Deliver(Envelope{From: "s@example.org"}, rs, strings.NewReader(sampleMsg))
	var first os.FileInfo
	for i, name := range []string{"a", "b", "c"} {
		if res[i].Err != nil {
			t.Fatalf("%s: %v", name, res[i].Err)
		}
		path := only(t, f.root(name))
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = fi
		} else if !os.SameFile(first, fi) {
			t.Errorf("%s's copy is another inode", name)
		}
		got := read(t, path)
		if got != "Return-Path: <s@example.org>\r\n"+sampleCRLF {
			t.Errorf("%s: stored %q", name, got)
		}
		if strings.Contains(got, "Delivered-To") {
			t.Errorf("%s: a shared copy names a recipient", name)
		}
	}
	if st := first.Sys().(*syscall.Stat_t); st.Nlink != 3 {
		t.Errorf("link count %d, want 3 (the spool name must be gone)", st.Nlink)
	}
	if n := f.d.Counters.Delivered.Load(); n != 3 {
		t.Errorf("delivered counter %d, want 3", n)
	}
}

func TestDeliverDuplicateRecipient(t *testing.T) {
	f := newFixture(t, "bob")
	rs := f.resolve(t, "bob@example.org", "bob@example.org")
	res := f.d.Deliver(Envelope{}, rs, strings.NewReader("x\n"))
	if res[0].Err != nil || res[1] != res[0] {
		t.Fatalf("results %+v", res)
	}
	only(t, f.root("bob"))
}

func TestResolve(t *testing.T) {
	f := newFixture(t, "bob", "carol@example.org", "carol", "dave+x", "ünï")
	f.d.SaveToDetailMailbox = true
	tests := []struct {
		addr, user, detail string
		folder             []string
	}{
		{"bob", "bob", "", nil},
		{"bob@example.org", "bob", "", nil},
		{"bob@other.example", "bob", "", nil},
		{"bob+Lists@example.org", "bob", "Lists", []string{"Lists"}},
		{"bob+Lists.Go@example.org", "bob", "Lists.Go", []string{"Lists", "Go"}},
		{"bob+R&D", "bob", "R&D", []string{"R&-D"}},
		{"bob+Café", "bob", "Café", []string{"Caf&AOk-"}},
		{"bob+inbox", "bob", "inbox", nil},
		{"bob+a/b", "bob", "a/b", nil},
		{"bob+..", "bob", "..", nil},
		{"bob+", "bob", "", nil},
		{"carol@example.org", "carol@example.org", "", nil},
		{"carol+Box@example.org", "carol@example.org", "Box", []string{"Box"}},
		{"carol@elsewhere.example", "carol", "", nil},
		{"dave+x@example.org", "dave+x", "", nil},
		{"ünï@example.org", "ünï", "", nil},
	}
	for _, tt := range tests {
		r, err := f.d.Resolve("t", tt.addr)
		if err != nil {
			t.Errorf("Resolve(%q): %v", tt.addr, err)
			continue
		}
		if r.User.Name != tt.user || r.Detail != tt.detail || !slices.Equal(r.Folder, tt.folder) || r.Address != tt.addr {
			t.Errorf("Resolve(%q) = user %q detail %q folder %q address %q; want %q %q %q", tt.addr, r.User.Name, r.Detail, r.Folder, r.Address, tt.user, tt.detail, tt.folder)
		}
	}

	for _, addr := range []string{"nobody@example.org", "Bob@example.org", "+bob", "dave@example.org"} {
		if _, err := f.d.Resolve("t", addr); !errors.Is(err, ErrUnknownUser) || KindOf(err) != UnknownUser {
			t.Errorf("Resolve(%q) = %v, want unknown user", addr, err)
		}
	}
	for _, addr := range []string{"", "bob\r\nX-Evil: 1@example.org", "bob\x00", strings.Repeat("b", 600)} {
		if _, err := f.d.Resolve("t", addr); KindOf(err) != BadAddress {
			t.Errorf("Resolve(%q) = %v, want bad address", addr, err)
		}
	}
	if n := f.d.Counters.UnknownUser.Load(); n != 4 {
		t.Errorf("unknown-user counter %d, want 4", n)
	}
	if !strings.Contains(f.log.String(), "result=\"unknown user\"") {
		t.Errorf("no log line for the unknown user: %s", f.log)
	}

	f.d.Delimiter = "-+"
	if r, err := f.d.Resolve("t", "bob-x@example.org"); err != nil || r.User.Name != "bob" || r.Detail != "x" {
		t.Errorf("delimiter -+: %+v %v", r, err)
	}

	f.u.err = errors.New("passwd-file unreadable")
	if _, err := f.d.Resolve("t", "bob"); KindOf(err) != Temporary {
		t.Errorf("unreadable passwd-file: %v, want a temporary error", err)
	}
}

func TestDeliverFolders(t *testing.T) {
	f := newFixture(t, "bob")
	f.d.SaveToDetailMailbox = true
	acct, err := store.OpenAccount(f.root("bob"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]string{{"Lists"}, {"Lists", "Go"}, {"R&-D"}} {
		if err := acct.CreateFolder(p, ""); err != nil {
			t.Fatal(err)
		}
	}
	root := f.root("bob")
	tests := []struct {
		addr   string
		dir    string
		folder string
	}{
		{"bob+Lists@example.org", ".Lists", "Lists"},
		{"bob+Lists.Go@example.org", ".Lists.Go", "Lists.Go"},
		{"bob+R&D@example.org", ".R&-D", "R&-D"},
		{"bob+Missing@example.org", "", "INBOX"},
		{"bob+INBOX@example.org", "", "INBOX"},
		{"bob+a/b@example.org", "", "INBOX"},
		{"bob+..@example.org", "", "INBOX"},
	}
	for _, tt := range tests {
		res := f.d.Deliver(Envelope{}, f.resolve(t, tt.addr), strings.NewReader("x\n"))
		if res[0].Err != nil || res[0].Folder != tt.folder {
			t.Errorf("%s: result %+v, want folder %s", tt.addr, res[0], tt.folder)
			continue
		}
		dir := filepath.Join(root, tt.dir)
		path := only(t, dir)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, ".Missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a delivery made the folder Missing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "b")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a/b escaped the Maildir: %v", err)
	}

	// The LDA's option: create the folder.
	p, err := FolderPath("New.Sub")
	if err != nil {
		t.Fatal(err)
	}
	r := f.resolve(t, "bob")[0]
	r.Folder, r.CreateFolder = p, true
	res := f.d.Deliver(Envelope{}, []*Recipient{r}, strings.NewReader("x\n"))
	if res[0].Err != nil || res[0].Folder != "New.Sub" {
		t.Fatalf("create folder: %+v", res[0])
	}
	only(t, filepath.Join(root, ".New.Sub"))
}

func TestFolderPath(t *testing.T) {
	tests := []struct {
		name string
		want []string
		bad  bool
	}{
		{"INBOX", nil, false},
		{"inbox", nil, false},
		{"", nil, false},
		{"Lists", []string{"Lists"}, false},
		{"a.b.c", []string{"a", "b", "c"}, false},
		{"&", []string{"&-"}, false},
		{"a..b", nil, true},
		{".a", nil, true},
		{"a/b", nil, true},
		{"..", nil, true},
		{"a\x00b", nil, true}, // no IMAP client could see it (RFC 9051 §5.1)
		{"x\u0085", nil, true},
	}
	for _, tt := range tests {
		got, err := FolderPath(tt.name)
		if tt.bad {
			if !errors.Is(err, maildir.ErrBadFolderName) {
				t.Errorf("FolderPath(%q) = %q, %v; want ErrBadFolderName", tt.name, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("FolderPath(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestDeliverOverQuota(t *testing.T) {
	f := newFixture(t, "small", "big")
	u := f.u.users["small"]
	u.Quota = store.QuotaLimit{Bytes: 10}
	f.u.users["small"] = u
	rs := f.resolve(t, "small@example.org", "big@example.org")
	res := f.d.Deliver(Envelope{From: "s@example.org"}, rs, strings.NewReader(sampleMsg))
	if KindOf(res[0].Err) != OverQuota || !errors.Is(res[0].Err, store.ErrOverQuota) {
		t.Errorf("small: %v, want over quota", res[0].Err)
	}
	if res[1].Err != nil {
		t.Errorf("big: %v", res[1].Err)
	}
	empty(t, f.root("small"))
	only(t, f.root("big"))
	if n := f.d.Counters.OverQuota.Load(); n != 1 {
		t.Errorf("over-quota counter %d", n)
	}

	// Within the limit: delivered and counted in maildirsize.
	u.Quota = store.QuotaLimit{Bytes: 1 << 20, Messages: 1}
	f.u.users["small"] = u
	res = f.d.Deliver(Envelope{}, f.resolve(t, "small"), strings.NewReader("x\n"))
	if res[0].Err != nil {
		t.Fatalf("within quota: %v", res[0].Err)
	}
	only(t, f.root("small"))
	res = f.d.Deliver(Envelope{}, f.resolve(t, "small"), strings.NewReader("y\n"))
	if KindOf(res[0].Err) != OverQuota {
		t.Errorf("second message over a one-message quota: %v", res[0].Err)
	}
	only(t, f.root("small"))

	// Trash is not counted (store.QuotaCounts): a delivery there is
	// neither refused nor recorded. (Only into a folder Trash without
	// the special use \Trash, which delivery never files into: one
	// another server made.)
	if err := maildir.CreateFolder(f.root("small"), []string{"Trash"}); err != nil && !errors.Is(err, maildir.ErrFolderExists) {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.root("small"), store.SpecialUseFile)); err != nil {
		t.Fatal(err)
	}
	f.d.SaveToDetailMailbox = true
	res = f.d.Deliver(Envelope{}, f.resolve(t, "small+Trash"), strings.NewReader("z\n"))
	if res[0].Err != nil {
		t.Fatalf("into Trash over quota: %v", res[0].Err)
	}
	usage, err := store.ReadQuota(f.root("small"), u.Quota)
	if err != nil || usage.Messages != 1 {
		t.Errorf("usage after a delivery into Trash: %+v, %v; want 1 message", usage, err)
	}
}

func TestDeliverRefused(t *testing.T) {
	big := strings.Repeat("a", 100) + "\n"
	tests := []struct {
		name string
		msg  io.Reader
		kind Kind
		is   error
	}{
		{"empty", strings.NewReader(""), BadMessage, ErrEmpty},
		{"NUL", strings.NewReader("Subject: x\n\nnul \x00 here\n"), BadMessage, ErrNUL},
		{"NUL late", io.MultiReader(strings.NewReader(strings.Repeat("x\n", 40000)), strings.NewReader("\x00")), BadMessage, ErrNUL},
		{"too big", strings.NewReader(big + big), TooBig, ErrTooBig},
		{"reader fails", iotest.TimeoutReader(strings.NewReader(strings.Repeat("x", 70000))), Temporary, iotest.ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "a", "b")
			if tt.kind == TooBig {
				f.d.MaxSize = int64(len(big)) + 50
			}
			res := f.d.Deliver(Envelope{}, f.resolve(t, "a", "b"), tt.msg)
			for i, r := range res {
				if KindOf(r.Err) != tt.kind || !errors.Is(r.Err, tt.is) {
					t.Errorf("recipient %d: %v, want %v (%v)", i, r.Err, tt.kind, tt.is)
				}
			}
			empty(t, f.root("a"))
			empty(t, f.root("b"))
			if f.d.Counters.Delivered.Load() != 0 {
				t.Error("counted as delivered")
			}
		})
	}
	// Exactly MaxSize bytes is allowed.
	f := newFixture(t, "a")
	f.d.MaxSize = int64(len(big))
	if res := f.d.Deliver(Envelope{}, f.resolve(t, "a"), strings.NewReader(big)); res[0].Err != nil {
		t.Errorf("a message of exactly MaxSize: %v", res[0].Err)
	}
}

func TestDeliverFailures(t *testing.T) {
	f := newFixture(t, "a", "b", "c")
	// Linking into b's Maildir fails (a full disk, an I/O error): only b
	// fails, temporarily.
	errDisk := errors.New("disk failure")
	setFailpoint(t, func(op, dir string) error {
		if (op == "link" && dir == f.root("b")) || (op == "spool" && strings.Contains(dir, "/x/")) {
			return errDisk
		}
		return nil
	})
	// c's Maildir cannot be made: a file is where its parent should be.
	if err := os.MkdirAll(filepath.Dir(filepath.Dir(f.root("c"))), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Dir(f.root("c")), []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := f.d.Deliver(Envelope{}, f.resolve(t, "a", "b", "c"), strings.NewReader(sampleMsg))
	if res[0].Err != nil {
		t.Errorf("a: %v", res[0].Err)
	}
	if KindOf(res[1].Err) != Temporary {
		t.Errorf("b: %v, want temporary", res[1].Err)
	}
	if KindOf(res[2].Err) != CannotCreate {
		t.Errorf("c: %v, want cannot create", res[2].Err)
	}
	only(t, f.root("a"))
	for _, sub := range []string{maildir.Cur, maildir.Tmp} {
		if names := files(t, f.root("b"), sub); len(names) != 0 {
			t.Errorf("b/%s holds %q", sub, names)
		}
	}
	c := &f.d.Counters
	if c.Delivered.Load() != 1 || c.TempFail.Load() != 1 || c.CannotCreate.Load() != 1 {
		t.Errorf("counters: delivered %d temp %d cannot-create %d", c.Delivered.Load(), c.TempFail.Load(), c.CannotCreate.Load())
	}

	// The spool's own Maildir (the first recipient's) failing leaves the
	// others untouched too.
	g := newFixture(t, "x", "y")
	res = g.d.Deliver(Envelope{}, g.resolve(t, "x", "y"), strings.NewReader(sampleMsg))
	if KindOf(res[0].Err) != Temporary || KindOf(res[1].Err) != Temporary {
		t.Errorf("no tmp/: %v, %v", res[0].Err, res[1].Err)
	}
	empty(t, g.root("y"))

	// A bad sender refuses the message for everyone.
	res = f.d.Deliver(Envelope{From: "a\r\nb"}, f.resolve(t, "a"), strings.NewReader("x\n"))
	if KindOf(res[0].Err) != BadAddress {
		t.Errorf("bad sender: %v", res[0].Err)
	}
}

func setFailpoint(t *testing.T, f func(op, dir string) error) {
	testFailpoint = f
	t.Cleanup(func() { testFailpoint = nil })
}

func TestDeliverCrossDevice(t *testing.T) {
	const other = "/dev/shm"
	f := newFixture(t, "here", "there1", "there2")
	var a, b syscall.Stat_t
	if syscall.Stat(other, &a) != nil || syscall.Stat(f.base, &b) != nil || a.Dev == b.Dev {
		t.Skip("no second filesystem at " + other)
	}
	dir, err := os.MkdirTemp(other, "delivery-test")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, n := range []string{"there1", "there2"} {
		u := f.u.users[n]
		u.Root = filepath.Join(dir, n)
		f.u.users[n] = u
	}
	res := f.d.Deliver(Envelope{}, f.resolve(t, "here", "there1", "there2"), strings.NewReader(sampleMsg))
	var infos []os.FileInfo
	for i, n := range []string{"here", "there1", "there2"} {
		if res[i].Err != nil {
			t.Fatalf("%s: %v", n, res[i].Err)
		}
		fi, err := os.Stat(only(t, f.root(n)))
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, fi)
	}
	if os.SameFile(infos[0], infos[1]) || !os.SameFile(infos[1], infos[2]) {
		t.Error("want a copy on the other filesystem, shared by both of its recipients")
	}
}

func TestDeliverKicksOpenMailbox(t *testing.T) {
	f := newFixture(t, "bob")
	if _, err := store.OpenAccount(f.root("bob"), nil); err != nil {
		t.Fatal(err)
	}
	reg := store.NewRegistry(store.Options{}, nil) // no watcher: only the kick can tell
	t.Cleanup(reg.Close)
	mb, release, err := reg.Open(f.root("bob"))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := mb.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.d.Registry = reg
	if res := f.d.Deliver(Envelope{}, f.resolve(t, "bob"), strings.NewReader("x\n")); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(mb.Messages()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the open mailbox did not learn of the delivery")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNormalizer(t *testing.T) {
	straddle := strings.Repeat("x", normChunk-1) + "\r\n" + strings.Repeat("y\n", 10)
	tests := []struct{ in, want string }{
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"a\rb", "a\rb"},
		{"a\r\r\n", "a\r\r\n"},
		{"no end", "no end"},
		{"8bit: \xe9\xff\n", "8bit: \xe9\xff\r\n"},
		{straddle, strings.ReplaceAll(strings.ReplaceAll(straddle, "\r\n", "\n"), "\n", "\r\n")},
		{strings.Repeat("x", 5000) + "\n", strings.Repeat("x", 5000) + "\r\n"},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(newNormalizer(r, 0))
			if err != nil || string(got) != tt.want {
				t.Errorf("normalize(%.40q, one byte %v) = %.40q, %v; want %.40q", tt.in, oneByte, got, err, tt.want)
			}
		}
	}
	if err := iotest.TestReader(newNormalizer(strings.NewReader("a\nb\n"), 0), []byte("a\r\nb\r\n")); err != nil {
		t.Error(err)
	}
}

// TestDeliverWithoutTheLock: delivery needs neither the mailbox lock nor
// a writable dovecot-uidlist. With the lock held by a live process, left
// empty or garbled, or the uidlist unwritable, the message is delivered
// into new/ (a success, which the sender must not retry); a sync shows it
// only once it can give it a UID, after the fault.
func TestDeliverWithoutTheLock(t *testing.T) {
	type fault struct {
		name string
		make func(t *testing.T, dir string) func()
	}
	faults := []fault{{"dovecot-uidlist unwritable", func(t *testing.T, dir string) func() {
		return testfault.Unwritable(t, filepath.Join(dir, uidlist.FileName))
	}}}
	for _, k := range testfault.LockKinds {
		faults = append(faults, fault{"lock " + k.String(), func(t *testing.T, dir string) func() {
			return testfault.HoldLock(t, dir, k)
		}})
	}
	for _, fl := range faults {
		t.Run(fl.name, func(t *testing.T) {
			f := newFixture(t, "a")
			if res := f.d.Deliver(Envelope{}, f.resolve(t, "a"), strings.NewReader(sampleMsg)); res[0].Err != nil {
				t.Fatal(res[0].Err)
			}
			mb, err := store.Open(f.root("a"), store.Options{Lock: uidlist.LockOptions{Timeout: time.Minute}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mb.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			end := fl.make(t, f.root("a"))
			res := f.d.Deliver(Envelope{}, f.resolve(t, "a"), strings.NewReader(sampleMsg))
			if res[0].Err != nil {
				t.Fatalf("delivery during the fault: %v", res[0].Err)
			}
			if _, err := os.Stat(filepath.Join(f.root("a"), maildir.New, res[0].Filename)); err != nil {
				t.Fatalf("delivered, yet not in new/: %v", err)
			}
			ch, err := mb.Sync(t.Context())
			if err != nil || ch.Unassigned != 1 || len(mb.Messages()) != 1 {
				t.Fatalf("sync during the fault: %+v, %v, %d messages", ch, err, len(mb.Messages()))
			}
			end()
			ch, err = mb.Sync(t.Context())
			if err != nil || len(ch.New) != 1 || ch.New[0].Base != maildir.BaseName(res[0].Filename) {
				t.Fatalf("sync after the fault: %+v, %v", ch, err)
			}
			if err := mb.CheckFiles(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDetailMailbox: user+folder files into INBOX unless
// SaveToDetailMailbox (Dovecot's lmtp_save_to_detail_mailbox, off by
// default; the detail is logged either way), and never into a folder
// whose special use is \Sent, \Drafts or \Trash, even with it on or
// when the Recipient names the folder itself (the LDA's -m, --create).
// \Junk is no such folder.
func TestDetailMailbox(t *testing.T) {
	f := newFixture(t, "bob")
	acct, err := store.OpenAccount(f.root("bob"), nil) // the default folders, with their special use
	if err != nil {
		t.Fatal(err)
	}
	if err := acct.CreateFolder([]string{"Lists"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := acct.CreateFolder([]string{"Outbox"}, `\Sent`); err != nil {
		t.Fatal(err)
	}
	root := f.root("bob")
	deliver := func(r *Recipient, want, dir string) {
		t.Helper()
		res := f.d.Deliver(Envelope{}, []*Recipient{r}, strings.NewReader("x\n"))
		if res[0].Err != nil || res[0].Folder != want {
			t.Errorf("%s (folder %q): result %+v, want folder %s", r.Address, r.Folder, res[0], want)
			return
		}
		if err := os.Remove(only(t, filepath.Join(root, dir))); err != nil {
			t.Fatal(err)
		}
	}
	for _, addr := range []string{"bob+Lists@example.org", "bob+Sent@example.org", "bob+Junk@example.org"} {
		r := f.resolve(t, addr)[0]
		if r.Folder != nil || r.Detail == "" {
			t.Errorf("%s with SaveToDetailMailbox off: folder %q detail %q", addr, r.Folder, r.Detail)
		}
		deliver(r, "INBOX", "")
	}
	if !strings.Contains(f.log.String(), "detail=Lists") {
		t.Errorf("the detail is not logged:\n%s", f.log)
	}

	f.d.SaveToDetailMailbox = true
	for _, tc := range []struct{ addr, folder, dir string }{
		{"bob+Lists@example.org", "Lists", ".Lists"},
		{"bob+Junk@example.org", "Junk", ".Junk"},
		{"bob+Sent@example.org", "INBOX", ""},
		{"bob+sent@example.org", "INBOX", ""}, // no such folder: INBOX anyway
		{"bob+Drafts@example.org", "INBOX", ""},
		{"bob+Trash@example.org", "INBOX", ""},
		{"bob+Outbox@example.org", "INBOX", ""},
	} {
		deliver(f.resolve(t, tc.addr)[0], tc.folder, tc.dir)
	}
	// The LDA's -m FOLDER, with or without --create.
	for _, create := range []bool{false, true} {
		for _, name := range []string{"Sent", "Drafts", "Trash", "Outbox"} {
			p, err := FolderPath(name)
			if err != nil {
				t.Fatal(err)
			}
			r := f.resolve(t, "bob")[0]
			r.Folder, r.CreateFolder = p, create
			deliver(r, "INBOX", "")
		}
	}
	if !strings.Contains(f.log.String(), `folder=Sent special_use=\Sent`) {
		t.Errorf("the refusal of Sent is not logged:\n%s", f.log)
	}
}

// TestDeliverFolderLimit: a folder delivery would create (the LDA's
// --create) past the user's folder limit is not made: the message goes
// to INBOX.
func TestDeliverFolderLimit(t *testing.T) {
	f := newFixture(t, "bob")
	f.d.MaxFolders = len(store.DefaultFolders) + 1
	root := f.root("bob")
	for i, name := range []string{"One", "Two"} {
		p, err := FolderPath(name)
		if err != nil {
			t.Fatal(err)
		}
		r := f.resolve(t, "bob")[0]
		r.Folder, r.CreateFolder = p, true
		res := f.d.Deliver(Envelope{}, []*Recipient{r}, strings.NewReader("x\n"))
		want, dir := name, "."+name
		if i == 1 {
			want, dir = "INBOX", ""
		}
		if res[0].Err != nil || res[0].Folder != want {
			t.Errorf("--create %s: %+v, want folder %s", name, res[0], want)
		}
		only(t, filepath.Join(root, dir))
	}
	if _, err := os.Stat(filepath.Join(root, ".Two")); !os.IsNotExist(err) {
		t.Errorf(".Two made past the limit: %v", err)
	}
	if !strings.Contains(f.log.String(), "too many") {
		t.Errorf("not logged:\n%s", f.log)
	}
}
