package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/maildir"
)

func TestParseQuotaFile(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		want  quotaFile
		wrong bool
	}{
		{"ours", "1000S,10C\n300 3\n-100 -1\n", quotaFile{QuotaLimit{1000, 10}, QuotaUsage{200, 2}, 2}, false},
		{"bytes only", "1000S\n0 0\n", quotaFile{QuotaLimit{Bytes: 1000}, QuotaUsage{}, 1}, false},
		{"messages only", "10C\n5 1\n", quotaFile{QuotaLimit{Messages: 10}, QuotaUsage{5, 1}, 1}, false},
		{"members in either order", "10C,1000S\n5 1\n", quotaFile{QuotaLimit{1000, 10}, QuotaUsage{5, 1}, 1}, false},
		{"zero is no limit (Dovecot's 0S)", "0S\n5 1\n", quotaFile{QuotaLimit{}, QuotaUsage{5, 1}, 1}, false},
		{"Courier's padding", "1000S\n         300            3\n        -100           -1\n", quotaFile{QuotaLimit{Bytes: 1000}, QuotaUsage{200, 2}, 2}, false},
		{"CRLF", "1000S\r\n300 3\r\n", quotaFile{QuotaLimit{Bytes: 1000}, QuotaUsage{300, 3}, 1}, false},
		{"write under way", "1000S\n300 3\n-10", quotaFile{QuotaLimit{Bytes: 1000}, QuotaUsage{300, 3}, 1}, false},
		{"negative sum parses", "1000S\n-5 -1\n", quotaFile{QuotaLimit{Bytes: 1000}, QuotaUsage{-5, -1}, 1}, false},
		{"definition only", "1000S\n", quotaFile{QuotaLimit{Bytes: 1000}, QuotaUsage{}, 0}, false},
		{"empty", "", quotaFile{}, true},
		{"no newline at all", "1000S", quotaFile{}, true},
		{"unknown member", "1000X\n1 1\n", quotaFile{}, true},
		{"negative limit", "-1000S\n1 1\n", quotaFile{}, true},
		{"one number", "1000S\n300\n", quotaFile{}, true},
		{"three numbers", "1000S\n300 3 1\n", quotaFile{}, true},
		{"not a number", "1000S\n3x0 3\n", quotaFile{}, true},
		{"torn line between writes", "1000S\n30-5 -1\n", quotaFile{}, true},
		{"blank line", "1000S\n\n5 1\n", quotaFile{}, true},
		{"sum overflows", "1000S\n9223372036854775807 1\n1 1\n", quotaFile{}, true},
		{"sum underflows", "1000S\n-9223372036854775808 1\n-1 1\n", quotaFile{}, true},
		{"number too large", "1000S\n9223372036854775808 1\n", quotaFile{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseQuotaFile([]byte(tt.data))
			if tt.wrong {
				if !errors.Is(err, errQuotaSyntax) {
					t.Fatalf("parse(%q) = %+v, %v; want a syntax error", tt.data, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parse(%q) = %+v, %v; want %+v", tt.data, got, err, tt.want)
			}
		})
	}
}

func TestFormatQuotaFile(t *testing.T) {
	for _, tt := range []struct {
		q    QuotaLimit
		u    QuotaUsage
		want string
	}{
		{QuotaLimit{1000000, 1000}, QuotaUsage{123, 4}, "1000000S,1000C\n123 4\n"},
		{QuotaLimit{Bytes: 1000000}, QuotaUsage{}, "1000000S\n0 0\n"},
		{QuotaLimit{Messages: 10}, QuotaUsage{5, 1}, "10C\n5 1\n"},
	} {
		got := string(formatQuotaFile(tt.q, tt.u))
		if got != tt.want {
			t.Errorf("format(%+v, %+v) = %q, want %q", tt.q, tt.u, got, tt.want)
		}
		f, err := parseQuotaFile([]byte(got))
		if err != nil || f.limit != tt.q || f.usage != tt.u || f.lines != 1 {
			t.Errorf("parse(format(%+v, %+v)) = %+v, %v", tt.q, tt.u, f, err)
		}
	}
}

// TestQuotaFixtures reads maildirsize files as other programs write them.
func TestQuotaFixtures(t *testing.T) {
	for _, tt := range []struct {
		file string
		want quotaFile
	}{
		{"courier", quotaFile{QuotaLimit{10000000, 1000}, QuotaUsage{7461, 2}, 4}},
		{"dovecot", quotaFile{QuotaLimit{Bytes: 1073741824}, QuotaUsage{52408, 11}, 3}},
		{"dovecot-nolimit", quotaFile{QuotaLimit{}, QuotaUsage{1000, 1}, 1}},
	} {
		data, err := os.ReadFile(filepath.Join("testdata", "maildirsize", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseQuotaFile(data)
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.file, got, err, tt.want)
		}
	}
}

func FuzzParseQuotaFile(f *testing.F) {
	f.Add([]byte("1000S,10C\n300 3\n-100 -1\n"))
	f.Add([]byte("0S\n\n"))
	f.Add([]byte("10C\n  1  -1\n2"))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := parseQuotaFile(data)
		if err != nil {
			if !errors.Is(err, errQuotaSyntax) {
				t.Fatalf("error %v does not wrap errQuotaSyntax", err)
			}
			return
		}
		if q.limit.Bytes < 0 || q.limit.Messages < 0 {
			t.Fatalf("negative limit %+v from %q", q.limit, data)
		}
		// What we write of what we read reads the same.
		again, err := parseQuotaFile(formatQuotaFile(q.limit, q.usage))
		if err != nil || again.limit != q.limit || again.usage != q.usage {
			t.Fatalf("%q: %+v, reread %+v, %v", data, q, again, err)
		}
	})
}

// quotaMaildir is a Maildir++ with messages in INBOX, a folder and Trash,
// some named with S= (with a size that differs from the file's, to tell
// which one is used) and some without.
type quotaMaildir struct {
	t    *testing.T
	root string
	n    int
}

func newQuotaMaildir(t *testing.T) *quotaMaildir {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Maildir")
	for _, dir := range []string{root, filepath.Join(root, ".Work"), filepath.Join(root, ".Trash")} {
		if err := maildir.Create(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return &quotaMaildir{t: t, root: root}
}

// put writes a message of n bytes into folder ("" for INBOX), sub, named
// with S=<size> unless size < 0, and returns its path.
func (q *quotaMaildir) put(folder, sub string, n int, size int64) string {
	q.t.Helper()
	q.n++
	name := fmt.Sprintf("1700000000.M%dP1.test", q.n)
	if size >= 0 {
		name += fmt.Sprintf(",S=%d", size)
	}
	if sub == maildir.Cur {
		name += ":2,S"
	}
	dir := q.root
	if folder != "" {
		dir = filepath.Join(q.root, "."+folder)
	}
	path := filepath.Join(dir, sub, name)
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), n), 0o600); err != nil {
		q.t.Fatal(err)
	}
	return path
}

func (q *quotaMaildir) writeFile(data string) {
	q.t.Helper()
	if err := os.WriteFile(filepath.Join(q.root, QuotaFile), []byte(data), 0o600); err != nil {
		q.t.Fatal(err)
	}
}

func (q *quotaMaildir) readFile() string {
	q.t.Helper()
	data, err := os.ReadFile(filepath.Join(q.root, QuotaFile))
	if err != nil {
		q.t.Fatal(err)
	}
	return string(data)
}

// age sets maildirsize's mtime d ago.
func (q *quotaMaildir) age(d time.Duration) {
	q.t.Helper()
	when := time.Now().Add(-d)
	if err := os.Chtimes(filepath.Join(q.root, QuotaFile), when, when); err != nil {
		q.t.Fatal(err)
	}
}

func TestRecalculateCounts(t *testing.T) {
	m := newQuotaMaildir(t)
	m.put("", maildir.New, 10, 100)   // S= wins over the file size
	m.put("", maildir.Cur, 20, -1)    // no S=: the file size
	m.put("Work", maildir.Cur, 5, 50) // folders count
	m.put("Work", maildir.New, 7, -1)
	m.put("Trash", maildir.Cur, 1000, 1000) // Trash does not
	if err := os.WriteFile(filepath.Join(m.root, maildir.Cur, ".hidden"), []byte("ignored"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Neither does a file that is not a folder, nor tmp/.
	if err := os.WriteFile(filepath.Join(m.root, ".notafolder"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.root, maildir.Tmp, "1.M1P1.x,S=99"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := QuotaLimit{Bytes: 1 << 20, Messages: 100}
	u, err := RecalculateQuota(m.root, q)
	if err != nil {
		t.Fatal(err)
	}
	want := QuotaUsage{Bytes: 100 + 20 + 50 + 7, Messages: 4}
	if u != want {
		t.Fatalf("usage %+v, want %+v", u, want)
	}
	if got := m.readFile(); got != "1048576S,100C\n177 4\n" {
		t.Fatalf("maildirsize %q", got)
	}
	// The new file was made in tmp/ and renamed: nothing is left there.
	names, _ := os.ReadDir(filepath.Join(m.root, maildir.Tmp))
	if len(names) != 1 {
		t.Fatalf("tmp/ holds %d files, want only the test's own", len(names))
	}
	// Without a limit, usage is counted and no file is written.
	m2 := newQuotaMaildir(t)
	m2.put("", maildir.New, 10, 10)
	if u, err := ReadQuota(m2.root, QuotaLimit{}); err != nil || u != (QuotaUsage{10, 1}) {
		t.Fatalf("ReadQuota unlimited = %+v, %v", u, err)
	}
	if _, err := os.Stat(filepath.Join(m2.root, QuotaFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("maildirsize written for no limit: %v", err)
	}
}

// TestRecalculationTriggers checks every rule that throws the file's
// totals out. The Maildir really holds 2 messages of 100 bytes; a file
// that is trusted says otherwise.
func TestRecalculationTriggers(t *testing.T) {
	q := QuotaLimit{Bytes: 1000, Messages: 10}
	real := QuotaUsage{Bytes: 200, Messages: 2}
	// padding is a trusted file of n bytes (n-16 divisible by 4).
	padding := func(n int) string {
		return "1000S,10C\n500 5\n" + strings.Repeat("0 0\n", (n-16)/4)
	}
	tests := []struct {
		name   string
		file   string // "" for none
		age    time.Duration
		want   QuotaUsage
		recalc bool
	}{
		{"missing", "", 0, real, true},
		{"trusted", "1000S,10C\n500 5\n", 0, QuotaUsage{500, 5}, false},
		{"just under 5120 bytes", padding(QuotaFileMax - 4), 0, QuotaUsage{500, 5}, false},
		{"5120 bytes", padding(QuotaFileMax), 0, real, true},
		{"larger", padding(2 * QuotaFileMax), 0, real, true},
		{"another limit", "2000S,10C\n500 5\n", 0, real, true},
		{"a limit fewer", "1000S\n500 5\n", 0, real, true},
		{"negative bytes", "1000S,10C\n500 5\n-600 -1\n", 0, real, true},
		{"negative messages", "1000S,10C\n500 5\n0 -6\n", 0, real, true},
		{"no usage line", "1000S,10C\n", 0, real, true},
		{"damaged", "1000S,10C\n500 five\n", 0, real, true},
		{"over quota, fresh single line", "1000S,10C\n1000 5\n", 0, QuotaUsage{1000, 5}, false},
		{"over quota, fresh, several lines", "1000S,10C\n900 5\n100 1\n", 0, real, true},
		{"over quota, 14 minutes old", "1000S,10C\n1000 5\n", 14 * time.Minute, QuotaUsage{1000, 5}, false},
		{"over quota, 16 minutes old", "1000S,10C\n1000 5\n", 16 * time.Minute, real, true},
		{"under quota, old: trusted", "1000S,10C\n500 5\n", time.Hour, QuotaUsage{500, 5}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newQuotaMaildir(t)
			m.put("", maildir.Cur, 1, 100)
			m.put("Work", maildir.New, 1, 100)
			if tt.file != "" {
				m.writeFile(tt.file)
				m.age(tt.age)
			}
			// The check is for one more byte: a file at the limit is
			// over quota for it.
			err := CheckQuota(m.root, q, 1, 0)
			u, _ := parseQuotaFile([]byte(m.readFile()))
			recalculated := m.readFile() == string(formatQuotaFile(q, real))
			if recalculated != tt.recalc {
				t.Fatalf("recalculated %v, want %v; file %q", recalculated, tt.recalc, m.readFile())
			}
			if u.usage != tt.want {
				t.Fatalf("usage %+v, want %+v", u.usage, tt.want)
			}
			if over := tt.want.Bytes+1 > q.Bytes; over != errors.Is(err, ErrOverQuota) {
				t.Fatalf("CheckQuota = %v, want over quota %v", err, over)
			}
		})
	}
}

func TestCheckQuotaBoundaries(t *testing.T) {
	m := newQuotaMaildir(t)
	m.writeFile("1000S,10C\n900 9\n")
	q := QuotaLimit{Bytes: 1000, Messages: 10}
	for _, tt := range []struct {
		bytes, messages int64
		resource        string // "" for allowed
		over            int64
	}{
		{100, 1, "", 0},
		{0, 0, "", 0},
		{101, 1, "storage", 1},
		{100, 2, "messages", 1},
		{5000, 1, "storage", 4900},
		{1<<63 - 1, 0, "storage", 1<<63 - 1 - 100},
		{-500, 1, "", 0},
	} {
		err := CheckQuota(m.root, q, tt.bytes, tt.messages)
		if tt.resource == "" {
			if err != nil {
				t.Errorf("CheckQuota(%d, %d) = %v, want nil", tt.bytes, tt.messages, err)
			}
			continue
		}
		var qe *QuotaError
		if !errors.Is(err, ErrOverQuota) || !errors.As(err, &qe) {
			t.Fatalf("CheckQuota(%d, %d) = %v, want a *QuotaError", tt.bytes, tt.messages, err)
		}
		if qe.Resource != tt.resource || qe.Used+qe.Add-qe.Limit != tt.over {
			t.Errorf("CheckQuota(%d, %d) = %+v, want %s over by %d", tt.bytes, tt.messages, qe, tt.resource, tt.over)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("by %d", tt.over)) {
			t.Errorf("error %q does not say by how much", err)
		}
	}
	// The refusals were trusted (a fresh one-line file): nothing was
	// recalculated, though the Maildir is empty.
	if got := m.readFile(); got != "1000S,10C\n900 9\n" {
		t.Errorf("maildirsize changed: %q", got)
	}
	// Messages only, bytes only.
	if err := CheckQuota(m.root, QuotaLimit{Messages: 10}, 1<<40, 1); err != nil {
		t.Errorf("bytes are not limited: %v", err)
	}
}

func TestUnlimitedQuota(t *testing.T) {
	m := newQuotaMaildir(t)
	if err := CheckQuota(m.root, QuotaLimit{}, 1<<50, 1<<40); err != nil {
		t.Fatal(err)
	}
	if err := AddQuota(m.root, QuotaLimit{}, 100, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.root, QuotaFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("maildirsize made for no limit: %v", err)
	}
}

func TestAddQuota(t *testing.T) {
	m := newQuotaMaildir(t)
	q := QuotaLimit{Bytes: 1000}
	// No file: nothing to add to; the next check counts.
	if err := AddQuota(m.root, q, 100, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.root, QuotaFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("AddQuota made maildirsize: %v", err)
	}
	m.put("", maildir.New, 1, 100)
	if err := CheckQuota(m.root, q, 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, d := range []QuotaUsage{{200, 1}, {-50, -1}, {0, 0}} {
		if err := AddQuota(m.root, q, d.Bytes, d.Messages); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.readFile(); got != "1000S\n100 1\n200 1\n-50 -1\n" {
		t.Fatalf("maildirsize %q", got)
	}
	if u, err := ReadQuota(m.root, q); err != nil || u != (QuotaUsage{250, 1}) {
		t.Fatalf("usage %+v, %v", u, err)
	}
}

// TestConcurrentAddQuota: appends from many writers at once are never
// lost or torn.
func TestConcurrentAddQuota(t *testing.T) {
	m := newQuotaMaildir(t)
	q := QuotaLimit{Bytes: 1 << 40}
	m.writeFile("1099511627776S\n0 0\n")
	const writers, each = 32, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				b, c := int64(1000*w+i), int64(1)
				if i%5 == 4 {
					b, c = -b, -1 // removals too
				}
				if err := AddQuota(m.root, q, b, c); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var want QuotaUsage
	for w := range writers {
		for i := range each {
			b, c := int64(1000*w+i), int64(1)
			if i%5 == 4 {
				b, c = -b, -1
			}
			want.Bytes += b
			want.Messages += c
		}
	}
	f, err := parseQuotaFile([]byte(m.readFile())) // the whole file, past 5120 bytes
	if err != nil {
		t.Fatal(err)
	}
	if f.usage != want || f.lines != writers*each+1 {
		t.Fatalf("sum %+v over %d lines, want %+v over %d", f.usage, f.lines, want, writers*each+1)
	}
}

// TestForeignDelete: mail removed by a program that does not record it
// leaves maildirsize too high; an over-quota check recounts and lets the
// delivery in.
func TestForeignDelete(t *testing.T) {
	m := newQuotaMaildir(t)
	q := QuotaLimit{Messages: 2}
	a := m.put("", maildir.New, 10, 10)
	if err := CheckQuota(m.root, q, 10, 1); err != nil {
		t.Fatal(err)
	}
	m.put("", maildir.New, 10, 10)
	if err := AddQuota(m.root, q, 10, 1); err != nil {
		t.Fatal(err)
	}
	if err := CheckQuota(m.root, q, 10, 1); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("a third message fits: %v", err)
	}
	if err := os.Remove(a); err != nil { // mutt, say
		t.Fatal(err)
	}
	// The refusal came from a fresh recount, which is trusted for 15
	// minutes; then it is recounted.
	if err := CheckQuota(m.root, q, 10, 1); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("a fresh recount is not trusted: %v", err)
	}
	m.age(QuotaStale + time.Minute)
	if err := CheckQuota(m.root, q, 10, 1); err != nil {
		t.Fatalf("after the foreign delete: %v", err)
	}
	if got := m.readFile(); got != "2C\n10 1\n" {
		t.Fatalf("maildirsize %q, want the recount", got)
	}
	// A program that recorded a removal it never counted makes the total
	// negative: recounted too.
	if err := AddQuota(m.root, q, -100, -5); err != nil {
		t.Fatal(err)
	}
	if u, err := ReadQuota(m.root, q); err != nil || u != (QuotaUsage{10, 1}) {
		t.Fatalf("usage %+v, %v", u, err)
	}
}

// TestRecalculateRacesDeliveries recounts while messages arrive: the
// result is never below what was there before the recount began, nor
// above what is there after.
func TestRecalculateRacesDeliveries(t *testing.T) {
	m := newQuotaMaildir(t)
	for range 50 {
		m.put("", maildir.Cur, 1, 10)
	}
	q := QuotaLimit{Bytes: 1 << 30}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			name := fmt.Sprintf("1800000000.M%dP2.race,S=10", i)
			if err := os.WriteFile(filepath.Join(m.root, maildir.New, name), []byte("x"), 0o600); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 20 {
		u, err := RecalculateQuota(m.root, q)
		if err != nil {
			t.Fatal(err)
		}
		if u.Messages < 50 || u.Bytes != 10*u.Messages {
			t.Fatalf("usage %+v", u)
		}
	}
	close(done)
	wg.Wait()
	entries, _ := os.ReadDir(filepath.Join(m.root, maildir.New))
	u, err := RecalculateQuota(m.root, q)
	if err != nil || u.Messages != int64(50+len(entries)) {
		t.Fatalf("quiet recount %+v, %v; want %d messages", u, err, 50+len(entries))
	}
}

// quotaAccount is an account with quota q, its INBOX, Work and Trash
// open; with check, each is checked (Mailbox.Check) when the test ends.
func quotaAccount(t *testing.T, q QuotaLimit, check bool) (*Account, map[string]*Mailbox) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Maildir")
	a, err := OpenAccountWithQuota(root, NewRegistry(Options{Logger: testLogger(t)}, nil), q)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateFolder([]string{"Work"}, ""); err != nil {
		t.Fatal(err)
	}
	boxes := map[string]*Mailbox{}
	for name, path := range map[string][]string{"INBOX": nil, "Work": {"Work"}, "Trash": {"Trash"}} {
		mb, release, err := a.OpenMailbox(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(release)
		sync1(t, mb)
		boxes[name] = mb
	}
	t.Cleanup(func() {
		if !check {
			return
		}
		for name, mb := range boxes {
			if err := mb.Check(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	return a, boxes
}

// usage returns the account's usage from maildirsize, and that it agrees
// with a recount.
func usage(t *testing.T, a *Account) QuotaUsage {
	t.Helper()
	u, err := a.QuotaUsage()
	if err != nil {
		t.Fatal(err)
	}
	counted, _, err := countQuota(a.Root())
	if err != nil {
		t.Fatal(err)
	}
	if u != counted {
		t.Fatalf("maildirsize says %+v, the Maildir holds %+v", u, counted)
	}
	return u
}

func appendN(t *testing.T, a *Account, mb *Mailbox, n int) (Message, error) {
	t.Helper()
	body := strings.Repeat("x", n)
	return a.Append(context.Background(), mb, strings.NewReader(body), int64(n), 0, time.Time{}, nil)
}

func TestAccountQuota(t *testing.T) {
	ctx := context.Background()
	a, mb := quotaAccount(t, QuotaLimit{Bytes: 1000, Messages: 5}, true)
	if u := usage(t, a); u != (QuotaUsage{}) {
		t.Fatalf("fresh account uses %+v", u)
	}

	// Append: exactly at the limit is fine, one byte more is refused and
	// writes nothing.
	m1, err := appendN(t, a, mb["INBOX"], 600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := appendN(t, a, mb["Work"], 400); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, a); u != (QuotaUsage{1000, 2}) {
		t.Fatalf("usage %+v", u)
	}
	before := len(mb["INBOX"].Messages())
	if _, err := appendN(t, a, mb["INBOX"], 1); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("append past the limit: %v", err)
	}
	sync1(t, mb["INBOX"])
	if n := len(mb["INBOX"].Messages()); n != before {
		t.Fatalf("refused append left %d messages, want %d", n, before)
	}
	for _, sub := range []string{maildir.Tmp, maildir.New} {
		if names, _ := readNames(filepath.Join(a.Root(), sub)); len(names) != 0 {
			t.Fatalf("refused append left %v in %s/", names, sub)
		}
	}
	// Trash is not counted: appending there is never refused.
	if _, err := appendN(t, a, mb["Trash"], 5000); err != nil {
		t.Fatal(err)
	}

	// Copy into a counted folder needs room; copying into Trash does not;
	// moving between counted folders adds nothing, so needs none.
	if _, _, _, err := a.Copy(ctx, mb["INBOX"], []uint32{m1.UID}, mb["Work"], false, nil); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("copy past the limit: %v", err)
	}
	if _, _, _, err := a.Copy(ctx, mb["INBOX"], []uint32{m1.UID}, mb["Trash"], false, nil); err != nil {
		t.Fatal(err)
	}
	_, src, dst, err := a.Copy(ctx, mb["INBOX"], []uint32{m1.UID}, mb["Work"], true, nil)
	if err != nil || len(dst) != 1 {
		t.Fatalf("move: %v, %v", dst, err)
	}
	if u, _ := a.QuotaUsage(); u != (QuotaUsage{1600, 3}) {
		t.Fatalf("usage between the copy and the expunge of a move: %+v", u)
	}
	if gone, err := a.Expunge(ctx, mb["INBOX"], src, nil); err != nil || len(gone) != 1 {
		t.Fatalf("expunge of the move: %v, %v", gone, err)
	}
	if u := usage(t, a); u != (QuotaUsage{1000, 2}) {
		t.Fatalf("usage after the move %+v", u)
	}

	// Moving into Trash frees; moving out of Trash needs room.
	work := mb["Work"].Messages()
	_, _, _, err = a.Copy(ctx, mb["Work"], []uint32{work[0].UID}, mb["Trash"], true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Expunge(ctx, mb["Work"], []uint32{work[0].UID}, nil); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, a); u != (QuotaUsage{600, 1}) {
		t.Fatalf("usage after moving to Trash %+v", u)
	}
	big := mb["Trash"].Messages()[0] // the 5000 bytes
	if _, _, _, err := a.Copy(ctx, mb["Trash"], []uint32{big.UID}, mb["INBOX"], true, nil); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("move out of Trash past the limit: %v", err)
	}

	// Expunge lowers usage, by the S= of the name or the file's size.
	if _, err := a.Expunge(ctx, mb["Work"], uids(mb["Work"].Messages()), nil); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, a); u != (QuotaUsage{0, 0}) {
		t.Fatalf("usage after expunging everything %+v", u)
	}
	foreign := filepath.Join(a.Root(), maildir.Cur, "1700000000.M1P1.foreign:2,")
	content := []byte("Subject: x\n\n12345\n")
	if err := os.WriteFile(foreign, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := AddQuota(a.Root(), a.Quota(), int64(len(content)), 1); err != nil { // a foreign writer that records
		t.Fatal(err)
	}
	sync1(t, mb["INBOX"])
	if _, err := a.Expunge(ctx, mb["INBOX"], uids(mb["INBOX"].Messages()), nil); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, a); u != (QuotaUsage{}) {
		t.Fatalf("usage after expunging a file without S= %+v", u)
	}
}

func TestAccountQuotaFolders(t *testing.T) {
	// The folders are renamed and deleted under the open mailboxes: no
	// Check of those.
	a, mb := quotaAccount(t, QuotaLimit{Bytes: 10000}, false)
	if _, err := appendN(t, a, mb["Work"], 300); err != nil {
		t.Fatal(err)
	}
	if _, err := appendN(t, a, mb["INBOX"], 200); err != nil {
		t.Fatal(err)
	}
	if _, err := appendN(t, a, mb["Trash"], 9600); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, a); u != (QuotaUsage{500, 2}) {
		t.Fatalf("usage %+v", u)
	}
	// Renaming Trash makes its messages count: that needs room.
	if err := a.RenameFolder([]string{"Trash"}, []string{"Old"}); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("rename of Trash past the limit: %v", err)
	}
	// A rename between counted names changes nothing.
	if err := a.RenameFolder([]string{"Work"}, []string{"Work2"}); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, a); u != (QuotaUsage{500, 2}) {
		t.Fatalf("usage after a rename %+v", u)
	}
	if err := a.DeleteFolder([]string{"Trash"}); err != nil {
		t.Fatal(err)
	}
	// Renaming a folder to Trash frees what it holds.
	if err := a.RenameFolder([]string{"Work2"}, []string{"Trash"}); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, a); u != (QuotaUsage{200, 1}) {
		t.Fatalf("usage after renaming to Trash %+v", u)
	}
	// Renaming INBOX moves its messages: still counted.
	if err := a.RenameFolder(nil, []string{"Saved"}); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, a); u != (QuotaUsage{200, 1}) {
		t.Fatalf("usage after renaming INBOX %+v", u)
	}
	// Deleting a folder frees what it held.
	if err := a.DeleteFolder([]string{"Saved"}); err != nil {
		t.Fatal(err)
	}
	if u := usage(t, a); u != (QuotaUsage{}) {
		t.Fatalf("usage after deleting %+v", u)
	}
}
