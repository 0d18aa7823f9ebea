package imap_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/delivery"
	"github.com/cistern-mail/cistern/internal/store"
)

// Tests of CONDSTORE and QRESYNC (RFC 7162). Modseqs come from the
// clock, so transcripts read them from the server's answers and then
// require the exact bytes with them filled in.

var (
	reHighest = regexp.MustCompile(`\[HIGHESTMODSEQ (\d+)\]`)
	reModSeq  = regexp.MustCompile(`MODSEQ \((\d+)\)`)
)

// highestIn is the last HIGHESTMODSEQ in lines (0: none).
func highestIn(lines ...string) uint64 {
	var h uint64
	for _, l := range lines {
		if m := reHighest.FindStringSubmatch(l); m != nil {
			h, _ = strconv.ParseUint(m[1], 10, 64)
		}
	}
	return h
}

// modseqsIn maps each UID of the FETCH lines to its MODSEQ.
func modseqsIn(t *testing.T, lines []string) map[uint32]uint64 {
	t.Helper()
	out := map[uint32]uint64{}
	for _, l := range lines {
		if !strings.Contains(l, " FETCH (") {
			continue
		}
		u, m := reUID.FindStringSubmatch(l), reModSeq.FindStringSubmatch(l)
		if u == nil || m == nil {
			t.Fatalf("FETCH without UID or MODSEQ: %q", l)
		}
		uid, _ := strconv.ParseUint(u[1], 10, 32)
		ms, _ := strconv.ParseUint(m[1], 10, 64)
		out[uint32(uid)] = ms
	}
	return out
}

// want compares lines with the exact lines expected.
func want(t *testing.T, what string, got []string, exp ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(exp, "\n") {
		t.Fatalf("%s:\ngot  %q\nwant %q", what, got, exp)
	}
}

// cmdTagged runs a command and returns its untagged lines and its tagged
// line without the tag.
func (rc *rawClient) cmdTagged(format string, args ...any) ([]string, string) {
	rc.t.Helper()
	lines, tagged := rc.cmd(format, args...)
	_, rest, _ := strings.Cut(tagged, " ")
	return lines, rest
}

func TestCondstoreTranscript(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	lines := rc.ok("CAPABILITY")
	if !strings.Contains(lines[0], " CONDSTORE QRESYNC ") {
		t.Fatalf("CAPABILITY after login: %q", lines[0])
	}
	for i := 1; i <= 3; i++ {
		rc.appendRaw("INBOX", "", testMessage(fmt.Sprintf("m%d", i), "x"))
	}
	sel := rc.ok("SELECT INBOX")
	h := highestIn(sel...)
	i := slices.Index(sel, fmt.Sprintf("* OK [HIGHESTMODSEQ %d] Highest", h))
	if h == 0 || i < 1 || !strings.HasPrefix(sel[i-1], "* OK [UIDNEXT 4]") {
		t.Fatalf("SELECT: HIGHESTMODSEQ must follow UIDNEXT (RFC 7162 §3.1.2.1): %q", sel)
	}
	// Without CONDSTORE enabled, FLAGS comes alone.
	want(t, "FETCH FLAGS before CONDSTORE", rc.ok("FETCH 1 (FLAGS)"), `* 1 FETCH (FLAGS (\Recent))`)
	// FETCH MODSEQ enables it (§3.1); then FLAGS brings MODSEQ along.
	m1 := modseqsIn(t, rc.ok("UID FETCH 1 (MODSEQ)"))[1]
	if m1 == 0 || m1 > h {
		t.Fatalf("MODSEQ of message 1: %d (HIGHESTMODSEQ %d)", m1, h)
	}
	want(t, "FETCH FLAGS after CONDSTORE", rc.ok("FETCH 1 (FLAGS)"), fmt.Sprintf(`* 1 FETCH (FLAGS (\Recent) MODSEQ (%d))`, m1))

	lines = rc.ok(`STORE 2 +FLAGS (\Seen)`)
	m2 := modseqsIn(t, lines)[2]
	if m2 <= h {
		t.Fatalf("STORE did not raise MODSEQ above %d: %q", h, lines)
	}
	want(t, "STORE", lines, fmt.Sprintf(`* 2 FETCH (FLAGS (\Seen \Recent) UID 2 MODSEQ (%d))`, m2))
	// CHANGEDSINCE: only message 2, MODSEQ implied (§3.1.4.1).
	want(t, "CHANGEDSINCE", rc.ok("FETCH 1:* (UID) (CHANGEDSINCE %d)", h), fmt.Sprintf(`* 2 FETCH (UID 2 MODSEQ (%d))`, m2))
	// CHANGEDSINCE 0 asks for every message (accepted, as Dovecot).
	if got := modseqsIn(t, rc.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)")); len(got) != 3 {
		t.Fatalf("CHANGEDSINCE 0: %v", got)
	}

	// UNCHANGEDSINCE: message 2 changed since h and fails; the others
	// change, and the tagged OK names the failure (§3.1.3).
	lines, tagged := rc.cmdTagged(`STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\Flagged)`, h)
	ms := modseqsIn(t, lines)
	want(t, "STORE UNCHANGEDSINCE", lines,
		fmt.Sprintf(`* 1 FETCH (FLAGS (\Flagged \Recent) UID 1 MODSEQ (%d))`, ms[1]),
		fmt.Sprintf(`* 3 FETCH (FLAGS (\Flagged \Recent) UID 3 MODSEQ (%d))`, ms[3]))
	if tagged != "OK [MODIFIED 2] Conditional STORE failed" || ms[1] <= m2 {
		t.Fatalf("tagged %q, modseqs %v", tagged, ms)
	}
	// UNCHANGEDSINCE 0 fails for every message; UID STORE names UIDs.
	lines, tagged = rc.cmdTagged(`UID STORE 2:3 (UNCHANGEDSINCE 0) +FLAGS (\Draft)`)
	want(t, "UNCHANGEDSINCE 0", lines)
	if tagged != "OK [MODIFIED 2:3] Conditional STORE failed" {
		t.Fatalf("UNCHANGEDSINCE 0: %q", tagged)
	}
	// .SILENT still tells the new MODSEQ of what changed, and nothing
	// of a message whose flags stay.
	lines = rc.ok(`STORE 1 (UNCHANGEDSINCE 9223372036854775807) +FLAGS.SILENT (\Answered)`)
	m1 = modseqsIn(t, lines)[1]
	want(t, "STORE .SILENT", lines, fmt.Sprintf(`* 1 FETCH (UID 1 MODSEQ (%d))`, m1))
	want(t, "STORE .SILENT without a change", rc.ok(`STORE 1 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\Answered)`, m1))

	// SEARCH MODSEQ: n or more; the answer carries the highest (§3.1.5).
	want(t, "SEARCH MODSEQ", rc.ok("SEARCH MODSEQ %d", ms[3]), fmt.Sprintf("* SEARCH 1 3 (MODSEQ %d)", m1))
	want(t, "SEARCH MODSEQ entry", rc.ok(`SEARCH MODSEQ "/flags/\\Seen" all %d`, m1), fmt.Sprintf("* SEARCH 1 (MODSEQ %d)", m1))
	want(t, "SEARCH MODSEQ nothing", rc.ok("SEARCH MODSEQ %d", m1+1), "* SEARCH")
	want(t, "ESEARCH MODSEQ", rc.ok("UID SEARCH RETURN (MIN) MODSEQ 1"), fmt.Sprintf(`* ESEARCH (TAG "a%d") UID MIN 1 MODSEQ %d`, rc.n, m1))
	want(t, "ESEARCH MODSEQ MAX", rc.ok("UID SEARCH RETURN (MAX) MODSEQ 1"), fmt.Sprintf(`* ESEARCH (TAG "a%d") UID MAX 3 MODSEQ %d`, rc.n, ms[3]))
	want(t, "ESEARCH MODSEQ ALL", rc.ok("UID SEARCH RETURN (ALL COUNT) MODSEQ 1"), fmt.Sprintf(`* ESEARCH (TAG "a%d") UID ALL 1:3 COUNT 3 MODSEQ %d`, rc.n, m1))
	want(t, "STATUS", rc.ok("STATUS INBOX (HIGHESTMODSEQ MESSAGES)"), fmt.Sprintf(`* STATUS INBOX (HIGHESTMODSEQ %d MESSAGES 3)`, m1))
}

// TestCondstoreEnabledBy: each CONDSTORE enabling command (RFC 7162
// §3.1) makes the next FETCH FLAGS carry MODSEQ.
func TestCondstoreEnabledBy(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	a.appendRaw("INBOX", "", testMessage("m", "x"))
	for _, enabling := range []string{"ENABLE CONDSTORE", "ENABLE QRESYNC", "SELECT INBOX (CONDSTORE)", "EXAMINE INBOX (CONDSTORE)",
		"STATUS INBOX (HIGHESTMODSEQ)", "FETCH 1 (MODSEQ)", "FETCH 1 (UID) (CHANGEDSINCE 1)", `STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\Seen)`, "SEARCH MODSEQ 1"} {
		rc := loginRaw(t, ts, "alice")
		if !strings.HasPrefix(enabling, "ENABLE") && !strings.HasPrefix(enabling, "STATUS") && !strings.Contains(enabling, "INBOX (") {
			rc.ok("SELECT INBOX")
		}
		rc.ok("%s", enabling)
		if !strings.Contains(enabling, "INBOX (") || strings.HasPrefix(enabling, "STATUS") {
			rc.ok("SELECT INBOX")
		}
		if l := rc.ok("FETCH 1 (FLAGS)"); len(l) != 1 || !reModSeq.MatchString(l[0]) {
			t.Errorf("after %s: %q, want MODSEQ", enabling, l)
		}
	}
}

func TestCondstoreBad(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.appendRaw("INBOX", "", testMessage("m", "x"))
	bad := func(cmd string) {
		t.Helper()
		if _, tagged := rc.cmdTagged("%s", cmd); !strings.HasPrefix(tagged, "BAD ") {
			t.Errorf("%s: %q, want BAD", cmd, tagged)
		}
	}
	// QRESYNC without ENABLE QRESYNC (§3.2.5), VANISHED likewise (§3.2.6).
	bad("SELECT INBOX (QRESYNC (1 1))")
	var highest string
	for _, l := range rc.ok("SELECT INBOX") {
		if strings.HasPrefix(l, "* OK [HIGHESTMODSEQ ") {
			highest = l
		}
	}
	bad("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
	// Enabled while a mailbox is selected: HIGHESTMODSEQ again, as
	// Dovecot sends it (nothing changed since the SELECT's).
	want(t, "ENABLE QRESYNC", rc.ok("ENABLE QRESYNC"), highest, "* ENABLED QRESYNC")
	want(t, "ENABLE CONDSTORE after QRESYNC", rc.ok("ENABLE CONDSTORE QRESYNC"), "* ENABLED")
	bad("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)") // not UID FETCH
	bad("UID FETCH 1:* (FLAGS) (VANISHED)")            // no CHANGEDSINCE
	bad("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)")
	bad("FETCH 1 (FLAGS) (FOO)")
	// 2^63-1 is the largest mod-sequence value (§7).
	rc.ok("FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775807)")
	bad("FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775808)")
	bad(`STORE 1 (UNCHANGEDSINCE 9223372036854775808) +FLAGS (\Seen)`)
	bad(`STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\Seen)`)
	bad(`STORE 1 (FOO 1) +FLAGS (\Seen)`)
	bad("SEARCH MODSEQ 9223372036854775808")
	rc.ok("SEARCH MODSEQ 9223372036854775807")
	bad("SELECT INBOX (QRESYNC (0 1))") // UIDVALIDITY is nz-number
	bad("SELECT INBOX (QRESYNC (1 9223372036854775808))")
	bad("SELECT INBOX (QRESYNC (1))")
	bad("SELECT INBOX (QRESYNC (1 1 1:*))")         // known-uids without "*"
	bad("SELECT INBOX (QRESYNC (1 1 1:3 (1:2 5)))") // seq-match sizes differ
	bad("SELECT INBOX (QRESYNC (1 1 1:3 (1:2 5) 4))")
	bad("SELECT INBOX (FOO)")
	rc.ok("SELECT INBOX (QRESYNC (1 9223372036854775807 1:3 (1 1)) CONDSTORE)")
}

// TestQresyncSelect: a client that selected, went away while another
// session changed flags, expunged and appended, comes back with SELECT
// (QRESYNC): VANISHED (EARLIER) for what went, FETCH (UID FLAGS MODSEQ)
// for what changed, nothing else (RFC 7162 §3.2.5).
func TestQresyncSelect(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	for i := 1; i <= 5; i++ {
		a.appendRaw("INBOX", "", testMessage(fmt.Sprintf("m%d", i), "x"))
	}
	a.ok("ENABLE QRESYNC")
	sel := a.ok("SELECT INBOX")
	h, validity := highestIn(sel...), uidValidityIn(t, sel)
	a.ok("UNSELECT")

	b := loginRaw(t, ts, "alice")
	b.ok("ENABLE QRESYNC")
	b.ok("SELECT INBOX")
	b.ok(`STORE 2 +FLAGS (\Seen)`)
	b.ok(`STORE 3:4 +FLAGS (\Deleted)`)
	_, tagged := b.cmdTagged("EXPUNGE")
	// With QRESYNC the expunges are VANISHED, and the tagged OK tells
	// the new HIGHESTMODSEQ (§3.2.10).
	if hx := highestIn(tagged); hx <= h || tagged != fmt.Sprintf("OK [HIGHESTMODSEQ %d] EXPUNGE completed (2)", hx) {
		t.Fatalf("EXPUNGE: %q", tagged)
	}
	b.appendRaw("INBOX", "", testMessage("m6", "x"))

	lines := a.ok("SELECT INBOX (QRESYNC (%d %d 1:5))", validity, h)
	i := slices.Index(lines, "* VANISHED (EARLIER) 3:4")
	if i < 0 || i != len(lines)-2 || !strings.HasPrefix(lines[i+1], "* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (") {
		t.Fatalf("QRESYNC SELECT: %q", lines)
	}
	// A reselect says CLOSED first (§3.2.11); a UIDVALIDITY that does
	// not match is a plain SELECT.
	lines = a.ok("SELECT INBOX (QRESYNC (%d %d))", validity+1, h)
	if lines[0] != "* OK [CLOSED] Previous mailbox closed" || slices.ContainsFunc(lines, func(l string) bool {
		return strings.Contains(l, "VANISHED") || strings.Contains(l, "FETCH")
	}) {
		t.Fatalf("QRESYNC SELECT with another UIDVALIDITY: %q", lines)
	}
	// Without known-uids, every UID up to UIDNEXT-1 counts, and the new
	// message is reported too; seq-match-data whose pair (2 5) still
	// holds (UID 5 is message 2... it is not: 3 and 4 went) trims
	// nothing, while (1 1) holds and trims UID 1 only.
	lines = a.ok("EXAMINE INBOX (QRESYNC (%d %d))", validity, h)
	got := modseqsIn(t, lines)
	if !slices.Contains(lines, "* VANISHED (EARLIER) 3:4") || len(got) != 2 || got[2] == 0 || got[6] == 0 {
		t.Fatalf("EXAMINE (QRESYNC) without known-uids: %q", lines)
	}
	lines = a.ok("EXAMINE INBOX (QRESYNC (%d %d 1:5 (1,2 1,5)))", validity, h)
	if !slices.Contains(lines, "* VANISHED (EARLIER) 3:4") {
		t.Fatalf("EXAMINE (QRESYNC) with a seq-match that fails at 5: %q", lines)
	}
	lines = a.ok("EXAMINE INBOX (QRESYNC (%d 1 1:5 (1,5 1,5)))", validity)
	if !slices.Contains(lines, "* VANISHED (EARLIER) 3:4") {
		t.Fatalf("EXAMINE (QRESYNC) from modseq 1: %q", lines)
	}
	// UID 5 is message 3 for a client that knew 3 and 4 gone: nothing
	// at or below 5 went since its state (§3.2.5.2).
	lines = a.ok("EXAMINE INBOX (QRESYNC (%d 1 1:5 (1,3 1,5)))", validity)
	if slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "VANISHED") }) {
		t.Fatalf("EXAMINE (QRESYNC) with a seq-match that holds at 5: %q", lines)
	}
}

func uidValidityIn(t *testing.T, lines []string) uint32 {
	t.Helper()
	for _, l := range lines {
		var v uint32
		if _, err := fmt.Sscanf(l, "* OK [UIDVALIDITY %d]", &v); err == nil {
			return v
		}
	}
	t.Fatalf("no UIDVALIDITY in %q", lines)
	return 0
}

// TestQresyncHeldExpunge: a FETCH by sequence number may not announce an
// expunge, yet tells a MODSEQ above it; the session then tells a lower
// HIGHESTMODSEQ, so that a client that resynchronises from what it was
// told cannot skip the expunge (RFC 7162 §3.2.10, erratum 1810 of RFC
// 5162). The NOOP after announces it as VANISHED.
func TestQresyncHeldExpunge(t *testing.T) {
	ts := startServer(t)
	a := loginRaw(t, ts, "alice")
	for i := 1; i <= 3; i++ {
		a.appendRaw("INBOX", "", testMessage(fmt.Sprintf("m%d", i), "x"))
	}
	a.ok("ENABLE QRESYNC")
	h := highestIn(a.ok("SELECT INBOX")...)
	b := loginRaw(t, ts, "alice")
	b.ok("ENABLE QRESYNC")
	b.ok("SELECT INBOX")
	b.ok(`STORE 1 +FLAGS (\Deleted)`)
	_, tagged := b.cmdTagged("EXPUNGE")
	e := highestIn(tagged)
	b.ok(`STORE 1 +FLAGS (\Flagged)`) // UID 2, now message 1 for b
	lines, tagged := a.cmdTagged("FETCH 1:3 (UID FLAGS)")
	ms := modseqsIn(t, lines)
	if slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "VANISHED") }) {
		t.Fatalf("VANISHED during FETCH by sequence number: %q", lines)
	}
	if ms[2] <= e {
		t.Fatalf("UID 2's MODSEQ %d not above the expunge's %d: %q", ms[2], e, lines)
	}
	told := highestIn(append(lines, tagged)...)
	if told == 0 || told >= e || told < h {
		t.Fatalf("HIGHESTMODSEQ told %d with an expunge at %d held (HIGHESTMODSEQ at SELECT %d): %q %q", told, e, h, lines, tagged)
	}
	lines, tagged = a.cmdTagged("NOOP")
	if lines[0] != "* VANISHED 1" || slices.ContainsFunc(lines, func(l string) bool { return strings.HasSuffix(l, " EXPUNGE") }) {
		t.Fatalf("NOOP after: %q, want VANISHED 1 first and no EXPUNGE", lines)
	}
	if highestIn(tagged) < ms[2] {
		t.Fatalf("NOOP: %q", tagged)
	}
	// A resync from the HIGHESTMODSEQ told gets the expunge.
	c := loginRaw(t, ts, "alice")
	c.ok("ENABLE QRESYNC")
	sel := c.ok("SELECT INBOX")
	if l := c.ok("SELECT INBOX (QRESYNC (%d %d 1:3))", uidValidityIn(t, sel), told); !slices.Contains(l, "* VANISHED (EARLIER) 1") {
		t.Fatalf("resync from %d: %q", told, l)
	}
}

// TestModSeqChangePaths: every way a message changes raises its MODSEQ,
// and a session with QRESYNC hears of it with MODSEQ; a client that
// comes back with the HIGHESTMODSEQ it had gets exactly what changed.
func TestModSeqChangePaths(t *testing.T) {
	type outcome struct {
		flagged, added, gone []uint32
	}
	cases := []struct {
		name   string
		change func(t *testing.T, ts *testServer, b *rawClient)
		want   outcome
	}{
		{"STORE", func(t *testing.T, ts *testServer, b *rawClient) { b.ok(`UID STORE 2 +FLAGS (\Seen)`) }, outcome{flagged: []uint32{2}}},
		{"APPEND", func(t *testing.T, ts *testServer, b *rawClient) {
			b.appendRaw("INBOX", "", testMessage("new", "x"))
		}, outcome{added: []uint32{4}}},
		{"COPY", func(t *testing.T, ts *testServer, b *rawClient) {
			b.ok("SELECT Other")
			b.ok("COPY 1 INBOX")
		}, outcome{added: []uint32{4}}},
		{"MOVE", func(t *testing.T, ts *testServer, b *rawClient) { b.ok("UID MOVE 3 Other") }, outcome{gone: []uint32{3}}},
		{"EXPUNGE", func(t *testing.T, ts *testServer, b *rawClient) {
			b.ok(`UID STORE 1 +FLAGS.SILENT (\Deleted)`)
			b.ok("UID EXPUNGE 1")
		}, outcome{gone: []uint32{1}}},
		{"LMTP delivery", func(t *testing.T, ts *testServer, b *rawClient) {
			deliverTo(t, ts, "alice", testMessage("delivered", "x"))
		}, outcome{added: []uint32{4}}},
		{"foreign rename", func(t *testing.T, ts *testServer, b *rawClient) {
			renameFlags(t, ts, 2, "F")
		}, outcome{flagged: []uint32{2}}},
		{"foreign delete", func(t *testing.T, ts *testServer, b *rawClient) {
			dir := filepath.Join(ts.mailDir("alice"), "cur")
			if err := os.Remove(filepath.Join(dir, fileOf(t, ts, 3))); err != nil {
				t.Fatal(err)
			}
		}, outcome{gone: []uint32{3}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			a := loginRaw(t, ts, "alice")
			a.ok("CREATE Other")
			a.appendRaw("Other", "", testMessage("other", "x"))
			for i := 1; i <= 3; i++ {
				a.appendRaw("INBOX", "", testMessage(fmt.Sprintf("m%d", i), "x"))
			}
			a.ok("ENABLE QRESYNC")
			sel := a.ok("SELECT INBOX")
			a.ok("FETCH 1:* (FLAGS)") // moves the files to cur/
			h, validity := highestIn(sel...), uidValidityIn(t, sel)
			b := loginRaw(t, ts, "alice")
			b.ok("SELECT INBOX")
			tc.change(t, ts, b)

			// a hears of it: FETCH with MODSEQ, EXISTS, VANISHED.
			lines, tagged := a.cmdTagged("NOOP")
			ms := modseqsIn(t, lines)
			for _, u := range tc.want.flagged {
				if ms[u] <= h {
					t.Errorf("NOOP: UID %d MODSEQ %d, not above %d: %q", u, ms[u], h, lines)
				}
			}
			for _, u := range tc.want.gone {
				if !slices.Contains(lines, fmt.Sprintf("* VANISHED %d", u)) {
					t.Errorf("NOOP: no VANISHED %d: %q", u, lines)
				}
			}
			if len(tc.want.added) > 0 && !slices.Contains(lines, "* 4 EXISTS") {
				t.Errorf("NOOP: no EXISTS: %q", lines)
			}
			h2 := max(highestIn(tagged), slices.Max(append(slices.Collect(mapValues(ms)), 0)))
			if h2 <= h {
				t.Errorf("after %s the session was told no HIGHESTMODSEQ above %d: %q %q", tc.name, h, lines, tagged)
			}
			// CHANGEDSINCE gives the changed and new messages, VANISHED
			// the gone ones.
			lines = a.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)", h)
			got := modseqsIn(t, lines)
			changed := append(slices.Clone(tc.want.flagged), tc.want.added...)
			if len(got) != len(changed) {
				t.Errorf("CHANGEDSINCE: %q, want UIDs %v", lines, changed)
			}
			for _, u := range changed {
				if got[u] <= h {
					t.Errorf("CHANGEDSINCE: UID %d MODSEQ %d: %q", u, got[u], lines)
				}
			}
			for _, u := range tc.want.gone {
				if !slices.Contains(lines, fmt.Sprintf("* VANISHED (EARLIER) %d", u)) {
					t.Errorf("CHANGEDSINCE VANISHED: no %d: %q", u, lines)
				}
			}
			// A client back with HIGHESTMODSEQ h learns the same.
			c := loginRaw(t, ts, "alice")
			c.ok("ENABLE QRESYNC")
			lines = c.ok("SELECT INBOX (QRESYNC (%d %d))", validity, h)
			got = modseqsIn(t, lines)
			if len(got) != len(changed) {
				t.Errorf("QRESYNC: %q, want UIDs %v", lines, changed)
			}
			for _, u := range tc.want.gone {
				if !slices.Contains(lines, fmt.Sprintf("* VANISHED (EARLIER) %d", u)) {
					t.Errorf("QRESYNC: no VANISHED (EARLIER) %d: %q", u, lines)
				}
			}
		})
	}
}

func mapValues(m map[uint32]uint64) func(func(uint64) bool) {
	return func(yield func(uint64) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// fileOf is the name in cur/ of the message with uid in alice's INBOX.
func fileOf(t *testing.T, ts *testServer, uid uint32) string {
	t.Helper()
	dir := ts.mailDir("alice")
	for base, u := range uidList(t, dir) {
		if u != uid {
			continue
		}
		if name, ok := diskFiles(t, dir)[base]; ok {
			return name
		}
	}
	t.Fatalf("no file for UID %d", uid)
	return ""
}

// renameFlags gives the file of uid the flag letters, as another
// program (mutt) does.
func renameFlags(t *testing.T, ts *testServer, uid uint32, letters string) {
	t.Helper()
	dir := filepath.Join(ts.mailDir("alice"), "cur")
	old := fileOf(t, ts, uid)
	if err := os.Rename(filepath.Join(dir, old), filepath.Join(dir, baseName(old)+":2,"+letters)); err != nil {
		t.Fatal(err)
	}
}

// TestModSeqAfterRestart: a new server (a new registry, as after a
// restart) on the same Maildir tells a HIGHESTMODSEQ above every one the
// first told, and a client's old modseq gets every expunge since.
func TestModSeqAfterRestart(t *testing.T) {
	root := t.TempDir()
	ts1 := startServerWith(t, root, store.Options{})
	a := loginRaw(t, ts1, "alice")
	for i := 1; i <= 4; i++ {
		a.appendRaw("INBOX", "", testMessage(fmt.Sprintf("m%d", i), "x"))
	}
	a.ok("ENABLE QRESYNC")
	sel := a.ok("SELECT INBOX")
	h0, validity := highestIn(sel...), uidValidityIn(t, sel)
	a.ok(`STORE 2 +FLAGS (\Deleted)`)
	_, tagged := a.cmdTagged("EXPUNGE")
	h1 := highestIn(tagged)

	ts2 := startServerWith(t, root, store.Options{})
	b := loginRaw(t, ts2, "alice")
	b.ok("ENABLE QRESYNC")
	lines := b.ok("SELECT INBOX (QRESYNC (%d %d 1:4))", validity, h0)
	if h := highestIn(lines...); h <= h1 {
		t.Fatalf("HIGHESTMODSEQ after a restart %d, not above %d", h, h1)
	}
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "* VANISHED (EARLIER) ") })
	if i < 0 || !expandSetHas(t, strings.TrimPrefix(lines[i], "* VANISHED (EARLIER) "), 2) {
		t.Fatalf("resync after a restart misses the expunge of UID 2: %q", lines)
	}
	for _, u := range expandSet(t, strings.TrimPrefix(lines[i], "* VANISHED (EARLIER) ")) {
		if u == 1 || u == 3 || u == 4 {
			t.Fatalf("VANISHED (EARLIER) names UID %d, which is there: %q", u, lines)
		}
	}
}

func expandSetHas(t *testing.T, set string, u uint32) bool {
	return slices.Contains(expandSet(t, set), u)
}

// oneUser is the delivery's user table: user, with the test server's
// Maildir.
type oneUser struct {
	name, root string
}

func (u oneUser) LookupUser(name string) (delivery.User, error) {
	if name != u.name {
		return delivery.User{}, delivery.ErrUnknownUser
	}
	return delivery.User{Name: name, Root: u.root}, nil
}

// deliverTo delivers msg to user's INBOX as the daemon's LMTP does (the
// same Deliverer, told of the server's registry).
func deliverTo(t *testing.T, ts *testServer, user, msg string) {
	t.Helper()
	d := &delivery.Deliverer{Users: oneUser{user, ts.mailDir(user)}, Registry: ts.reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rcpt, err := d.Resolve("test", user)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Deliver(delivery.Envelope{From: "sender@example.org", ID: "test"}, []*delivery.Recipient{rcpt}, strings.NewReader(msg)) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// TestQresyncOwnMove: with QRESYNC the session's own MOVE and EXPUNGE
// announce VANISHED, never EXPUNGE (RFC 7162 §3.2.10), and EXPUNGE's and
// MOVE's tagged OK carry the new HIGHESTMODSEQ.
func TestQresyncOwnMove(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.ok("CREATE Other")
	for i := 1; i <= 3; i++ {
		rc.appendRaw("INBOX", "", testMessage(fmt.Sprintf("m%d", i), "x"))
	}
	rc.ok("ENABLE QRESYNC IMAP4rev2") // IMAP4rev2: no RECENT
	h := highestIn(rc.ok("SELECT INBOX")...)
	lines, tagged := rc.cmdTagged("MOVE 1 Other")
	hm := highestIn(tagged)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "* OK [COPYUID ") || lines[1] != "* VANISHED 1" ||
		hm <= h || tagged != fmt.Sprintf("OK [HIGHESTMODSEQ %d] MOVE completed", hm) {
		t.Fatalf("MOVE: %q %q", lines, tagged)
	}
	rc.ok(`STORE 1:2 +FLAGS.SILENT (\Deleted)`)
	lines, tagged = rc.cmdTagged("EXPUNGE")
	he := highestIn(tagged)
	want(t, "EXPUNGE", lines, "* VANISHED 2:3")
	if he <= hm || tagged != fmt.Sprintf("OK [HIGHESTMODSEQ %d] EXPUNGE completed (2)", he) {
		t.Fatalf("EXPUNGE: %q", tagged)
	}
}
