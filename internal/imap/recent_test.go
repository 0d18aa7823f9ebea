package imap_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cistern-mail/cistern/internal/store"
)

var reRecent = regexp.MustCompile(`^\* (\d+) RECENT$`)

// recentOf returns the last RECENT count in lines, -1 if none.
func recentOf(lines []string) int {
	n := -1
	for _, l := range lines {
		if m := reRecent.FindStringSubmatch(l); m != nil {
			n, _ = strconv.Atoi(m[1])
		}
	}
	return n
}

// recentUIDs returns the UIDs that "UID FETCH 1:* (FLAGS)" shows with
// \Recent.
func recentUIDs(t *testing.T, rc *rawClient) []uint32 {
	t.Helper()
	var out []uint32
	for _, l := range rc.ok("UID FETCH 1:* (FLAGS)") {
		if !strings.Contains(l, " FETCH ") {
			continue
		}
		u := reUID.FindStringSubmatch(l)
		if u == nil {
			t.Fatalf("no UID in %q", l)
		}
		if strings.Contains(l, `\Recent`) {
			n, _ := strconv.ParseUint(u[1], 10, 32)
			out = append(out, uint32(n))
		}
	}
	return out
}

func searchOf(t *testing.T, rc *rawClient, criteria string) string {
	t.Helper()
	for _, l := range rc.ok("UID SEARCH %s", criteria) {
		if strings.HasPrefix(l, "* SEARCH") {
			return strings.TrimSpace(strings.TrimPrefix(l, "* SEARCH"))
		}
	}
	t.Fatalf("UID SEARCH %s: no SEARCH response", criteria)
	return ""
}

// TestRecentOneSession: RFC 3501 §2.3.2: a message is recent in the one
// session that first sees it; EXAMINE and STATUS leave it recent.
func TestRecentOneSession(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	for i := range 3 {
		a.appendRaw("INBOX", "", testMessage(fmt.Sprint("m", i), "x"))
	}
	a.appendRaw("INBOX", `(\Seen)`, testMessage("seen", "x"))

	if got := a.ok("STATUS INBOX (MESSAGES RECENT)"); !contains(got, "* STATUS INBOX (MESSAGES 4 RECENT 4)") {
		t.Errorf("STATUS before any SELECT: %q", got)
	}
	// EXAMINE looks without taking.
	ex := loginRaw(t, ts, "alice")
	if n := recentOf(ex.ok("EXAMINE INBOX")); n != 4 {
		t.Errorf("EXAMINE: %d RECENT, want 4", n)
	}
	if got := fmt.Sprint(recentUIDs(t, ex)); got != "[1 2 3 4]" {
		t.Errorf("EXAMINE session's \\Recent: %s", got)
	}

	b := loginRaw(t, ts, "alice")
	if n := recentOf(b.ok("SELECT INBOX")); n != 4 {
		t.Errorf("first SELECT: %d RECENT, want 4", n)
	}
	if got := fmt.Sprint(recentUIDs(t, b)); got != "[1 2 3 4]" {
		t.Errorf("first SELECT's \\Recent: %s", got)
	}
	if got := searchOf(t, b, "RECENT"); got != "1 2 3 4" {
		t.Errorf("SEARCH RECENT: %q", got)
	}
	if got := searchOf(t, b, "NEW"); got != "1 2 3" {
		t.Errorf("SEARCH NEW (recent and unseen): %q", got)
	}
	if got := searchOf(t, b, "OLD"); got != "" {
		t.Errorf("SEARCH OLD: %q", got)
	}
	// STORE and its FETCH keep \Recent, which no client can set or clear.
	if got := b.ok(`UID STORE 1 +FLAGS (\Flagged)`); !contains(got, `* 1 FETCH (FLAGS (\Flagged \Recent) UID 1)`) {
		t.Errorf("STORE answered %q", got)
	}

	if got := a.ok("STATUS INBOX (RECENT)"); !contains(got, "* STATUS INBOX (RECENT 0)") {
		t.Errorf("STATUS after a SELECT: %q", got)
	}
	c := loginRaw(t, ts, "alice")
	if n := recentOf(c.ok("SELECT INBOX")); n != 0 {
		t.Errorf("second SELECT: %d RECENT, want 0", n)
	}
	if got := recentUIDs(t, c); len(got) != 0 {
		t.Errorf("second SELECT's \\Recent: %v", got)
	}
	if got := searchOf(t, c, "OLD"); got != "1 2 3 4" {
		t.Errorf("second session's SEARCH OLD: %q", got)
	}

	// A new message goes to the first selected session that hears of it.
	a.appendRaw("INBOX", "", testMessage("late", "x"))
	got := c.ok("NOOP")
	if !contains(got, "* 5 EXISTS") || recentOf(got) != 1 {
		t.Errorf("NOOP after a delivery: %q, want EXISTS and 1 RECENT", got)
	}
	if got := fmt.Sprint(recentUIDs(t, c)); got != "[5]" {
		t.Errorf("new message's \\Recent: %s", got)
	}
	got = b.ok("NOOP")
	if !contains(got, "* 5 EXISTS") || recentOf(got) != -1 {
		t.Errorf("the other session's NOOP: %q, want EXISTS without RECENT (4 stays 4)", got)
	}
	if got := fmt.Sprint(recentUIDs(t, b)); got != "[1 2 3 4]" {
		t.Errorf("after the news, first session's \\Recent: %s", got)
	}
	// An expunge of a recent message lowers the count, and RECENT says so.
	b.ok(`UID STORE 2 +FLAGS.SILENT (\Deleted)`)
	if got := b.ok("EXPUNGE"); recentOf(got) != 3 {
		t.Errorf("EXPUNGE of a recent message: %q, want 3 RECENT", got)
	}
	// Closing does not hand them on: they were seen.
	b.ok("CLOSE")
	if n := recentOf(b.ok("SELECT INBOX")); n != 0 {
		t.Errorf("reselect: %d RECENT, want 0", n)
	}
}

// TestRecentIMAP4rev2: RFC 9051 has no \Recent; a session that enabled
// it neither sees nor takes it.
func TestRecentIMAP4rev2(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	a.appendRaw("INBOX", "", testMessage("m", "x"))
	a.ok("ENABLE IMAP4rev2")
	if got := a.ok("SELECT INBOX"); recentOf(got) != -1 {
		t.Errorf("IMAP4rev2 SELECT: %q", got)
	}
	if got := a.ok("FETCH 1 (FLAGS)"); !contains(got, "* 1 FETCH (FLAGS ())") {
		t.Errorf("IMAP4rev2 FETCH: %q", got)
	}
	b := loginRaw(t, ts, "alice")
	if n := recentOf(b.ok("SELECT INBOX")); n != 1 {
		t.Errorf("IMAP4rev1 SELECT after an IMAP4rev2 one: %d RECENT, want 1", n)
	}
}

// TestRecentAddsUp: messages delivered while 20 sessions have the
// mailbox selected and poll it are recent in exactly one of them, and
// each session's last RECENT is the number it shows with \Recent.
func TestRecentAddsUp(t *testing.T) {
	ts := startServer(t)
	const sessions, msgs = 20, 60
	cs := make([]*rawClient, sessions)
	told := make([][]string, sessions)
	for i := range cs {
		cs[i] = loginRaw(t, ts, "alice")
		told[i] = cs[i].ok("SELECT INBOX")
	}
	a := loginRaw(t, ts, "alice")
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				lines, tagged := c.cmd("NOOP")
				if !strings.Contains(tagged, "OK") {
					t.Errorf("session %d NOOP: %s", i, tagged)
					return
				}
				told[i] = append(told[i], lines...)
			}
		}()
	}
	for i := range msgs {
		a.appendRaw("INBOX", "", testMessage(fmt.Sprint("m", i), "x"))
	}
	wg.Wait()
	seen := map[uint32]int{}
	total := 0
	for i, c := range cs {
		told[i] = append(told[i], c.ok("NOOP")...)
		mine := recentUIDs(t, c)
		if n := recentOf(told[i]); n != len(mine) {
			t.Errorf("session %d: last told %d RECENT, shows %d with \\Recent", i, n, len(mine))
		}
		for _, u := range mine {
			seen[u]++
		}
		total += len(mine)
	}
	for u := uint32(1); u <= msgs; u++ {
		if seen[u] != 1 {
			t.Errorf("UID %d recent in %d sessions", u, seen[u])
		}
	}
	if total != msgs {
		t.Errorf("recent counts add up to %d, want %d", total, msgs)
	}
}

// TestRecentMarkSurvives: the mark is kept in the index: a restart of
// the server does not make messages recent again.
func TestRecentMarkSurvives(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	ix, err := store.OpenIndex(data+"/index.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerWith(t, root, store.Options{Index: ix})
	a := loginRaw(t, ts, "alice")
	a.ok("SELECT INBOX")
	a.ok("CLOSE")
	// Delivered into new/, where a message stays until its flags change:
	// without the mark they would be taken for unseen by any reader.
	for i, name := range []string{"1700000000.M1P1.test", "1700000001.M1P1.test"} {
		msg := testMessage(fmt.Sprint("new", i), "x")
		if err := os.WriteFile(filepath.Join(ts.mailDir("alice"), "new", name), []byte(msg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if n := recentOf(a.ok("SELECT INBOX")); n != 2 {
		t.Fatalf("SELECT: %d RECENT", n)
	}
	a.ok("LOGOUT")
	ts.srv.Shutdown(t.Context())
	ts.reg.Close()
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	ix2, err := store.OpenIndex(data+"/index.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix2.Close()
	ts2 := startServerWith(t, root, store.Options{Index: ix2})
	b := loginRaw(t, ts2, "alice")
	b.appendRaw("INBOX", "", testMessage("three", "x"))
	if n := recentOf(b.ok("SELECT INBOX")); n != 1 {
		t.Errorf("SELECT after a restart: %d RECENT, want 1 (only the message since)", n)
	}
	if got := fmt.Sprint(recentUIDs(t, b)); got != "[3]" {
		t.Errorf("after a restart, \\Recent: %s", got)
	}
}
