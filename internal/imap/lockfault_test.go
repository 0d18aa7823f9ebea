package imap_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/testfault"
	"github.com/cistern-mail/cistern/internal/uidlist"
)

// readerPatience bounds the wait for each line of the sessions that only
// read (SELECT, EXAMINE, STATUS, NOOP, IDLE) in TestLockFaults: far below
// their server's lock timeout of a minute, so that a command that waited
// for the lock fails the test by this deadline; no time is asserted.
const readerPatience = 5 * time.Second

// TestLockFaults: with the mailbox lock held by a live process, left
// empty or garbled, or with a dovecot-uidlist that cannot be written,
//
//   - APPEND and COPY answer NO, and leave no file in new/, cur/ or tmp/
//     and no record in the uidlist (a NO means not done);
//   - SELECT, EXAMINE and STATUS answer at once, showing the messages
//     that have UIDs and not a file delivered meanwhile, which has none
//     yet;
//   - once the fault is gone, an idling session hears of that file
//     without asking, with its UID, a NOOP shows it to another, and
//     APPEND works again with the next UID.
//
// Two servers share the Maildir, as two processes would: the one the
// changes go to waits 300 ms for the lock; the readers' one would wait a
// minute.
func TestLockFaults(t *testing.T) {
	const inUse = "NO [INUSE] Mailbox is locked by another process; try again later"
	type tc struct {
		name  string
		fault func(t *testing.T, dir string) (end func())
		no    string // the tagged answer to APPEND and COPY, without the tag
	}
	cases := []tc{{"dovecot-uidlist unwritable", func(t *testing.T, dir string) func() {
		return testfault.Unwritable(t, filepath.Join(dir, uidlist.FileName))
	}, "NO [NOPERM] Permission denied"}}
	for _, k := range testfault.LockKinds {
		cases = append(cases, tc{"lock " + k.String(), func(t *testing.T, dir string) func() {
			return testfault.HoldLock(t, dir, k)
		}, inUse})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writer := startServerWith(t, root, store.Options{Lock: uidlist.LockOptions{Timeout: 300 * time.Millisecond}})
			reader := startServerWith(t, root, store.Options{Lock: uidlist.LockOptions{Timeout: time.Minute}})
			dir := writer.mailDir("alice")

			w := loginRaw(t, writer, "alice")
			w.appendRaw("INBOX", "", testMessage("one", "first"))
			w.appendRaw("INBOX", `(\Seen)`, testMessage("two", "second"))
			w.selectRaw("INBOX")
			files, records := diskFiles(t, dir), uidList(t, dir)

			end := tc.fault(t, dir)
			if got := answer(w.appendTagged("INBOX", testMessage("three", "refused"))); got != tc.no {
				t.Errorf("APPEND: %q, want %q", got, tc.no)
			}
			if _, tagged := w.cmd("COPY 1:2 INBOX"); answer(tagged) != tc.no {
				t.Errorf("COPY: %q, want %q", answer(tagged), tc.no)
			}
			if got := diskFiles(t, dir); !maps.Equal(got, files) {
				t.Fatalf("refused, yet new/ and cur/ changed: %v -> %v", files, got)
			}
			if tmp := dirEntries(t, filepath.Join(dir, "tmp")); len(tmp) != 0 {
				t.Fatalf("refused, yet tmp/ holds %v", tmp)
			}
			if got := uidList(t, dir); !maps.Equal(got, records) {
				t.Fatalf("refused, yet dovecot-uidlist changed: %v -> %v", records, got)
			}

			// Delivered meanwhile by another program: no UID yet.
			foreign := "1700000000.M1P1Q1.foreign"
			if err := os.WriteFile(filepath.Join(dir, "new", foreign), []byte(testMessage("foreign", "delivered")), 0o600); err != nil {
				t.Fatal(err)
			}
			r := loginRaw(t, reader, "alice")
			r.timeout = readerPatience
			lines, tagged := r.cmd("SELECT INBOX")
			if answer(tagged) != "OK [READ-WRITE] SELECT completed" || !slices.Contains(lines, "* 2 EXISTS") {
				t.Fatalf("SELECT: %q after %q", tagged, lines)
			}
			r.exactly([]string{`* 1 FETCH (UID 1)`, `* 2 FETCH (UID 2)`}, "FETCH 1:* (UID)")
			e := loginRaw(t, reader, "alice")
			e.timeout = readerPatience
			e.exactly([]string{"* STATUS INBOX (MESSAGES 2 UIDNEXT 3)"}, "STATUS INBOX (MESSAGES UIDNEXT)")
			lines, tagged = e.cmd("EXAMINE INBOX")
			if answer(tagged) != "OK [READ-ONLY] EXAMINE completed" || !slices.Contains(lines, "* 2 EXISTS") {
				t.Fatalf("EXAMINE: %q after %q", tagged, lines)
			}

			idle := r.idle()
			end()
			r.waitFor("the foreign message", func(l string) bool { return l == "* 3 EXISTS" })
			r.done(idle)
			r.exactly([]string{`* 3 FETCH (UID 3)`}, "FETCH 3 (UID)")
			e.exactly([]string{"* 3 EXISTS"}, "NOOP")
			if uid := w.appendRaw("INBOX", "", testMessage("three", "accepted")); uid != 4 {
				t.Fatalf("APPEND after the fault: UID %d, want 4", uid)
			}

			// Everything on disk has its UID, once.
			got := diskFiles(t, dir)
			recs := uidList(t, dir)
			if len(got) != 4 || len(recs) != 4 {
				t.Fatalf("%d files, %d records after the fault: %v, %v", len(got), len(recs), got, recs)
			}
			for base := range got {
				if recs[base] == 0 {
					t.Errorf("%s has no UID", base)
				}
			}
			for _, ts := range []*testServer{writer, reader} {
				mb, ok := ts.reg.Lookup(dir)
				if !ok {
					t.Fatal("INBOX is not open")
				}
				if _, err := mb.Sync(t.Context()); err != nil {
					t.Fatal(err)
				}
				if err := mb.Check(); err != nil {
					t.Fatal(err)
				}
				if err := mb.CheckFiles(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// answer is a tagged response without its tag.
func answer(tagged string) string {
	_, rest, _ := strings.Cut(tagged, " ")
	return rest
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
