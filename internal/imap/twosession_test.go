package imap_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Two sessions on one mailbox, for every mutating command: session A
// changes the mailbox, session B (selected on it) must hear of it at the
// moments the protocol allows, and never hear an EXPUNGE in answer to a
// FETCH, STORE or SEARCH by sequence number (RFC 9051 §7.5.1).

var reExpunge = regexp.MustCompile(`^\* \d+ EXPUNGE$`)

// setupTwoSessions fills alice's INBOX with five messages (UIDs 1–5,
// 2 and 4 \Deleted) and Other with one, and returns A and B selected on
// INBOX with their models.
func setupTwoSessions(t *testing.T, ts *testServer) (a, b *rawClient, mb *model) {
	t.Helper()
	a = loginRaw(t, ts, "alice")
	a.ok("CREATE Other")
	for i := 1; i <= 5; i++ {
		flags := ""
		if i%2 == 0 {
			flags = `(\Deleted)`
		}
		if uid := a.appendRaw("INBOX", flags, testMessage(fmt.Sprintf("msg %d", i), "text")); uid != uint32(i) {
			t.Fatalf("APPEND %d: UID %d", i, uid)
		}
	}
	a.appendRaw("Other", "", testMessage("from other", "text"))
	a.selectRaw("INBOX")
	b = loginRaw(t, ts, "alice")
	mb = b.selectRaw("INBOX")
	if !slices.Equal(mb.uids, []uint32{1, 2, 3, 4, 5}) {
		t.Fatalf("B's view after SELECT: %v", mb.uids)
	}
	return a, b, mb
}

// truth is what a fresh session sees in INBOX now.
func truth(t *testing.T, ts *testServer) *model {
	t.Helper()
	c := loginRaw(t, ts, "alice")
	m := c.selectRaw("INBOX")
	c.ok("LOGOUT")
	return m
}

func sameModel(a, b *model) bool {
	if !slices.Equal(a.uids, b.uids) || len(a.flags) != len(b.flags) {
		return false
	}
	for i := range a.flags {
		if !slices.Equal(a.flags[i], b.flags[i]) {
			return false
		}
	}
	return true
}

// matches is sameModel where m does not know yet: the UID and flags of
// a new message that no FETCH told.
func (m *model) matches(want *model) bool {
	if len(m.uids) != len(want.uids) {
		return false
	}
	for i, u := range m.uids {
		if u != 0 && u != want.uids[i] || m.flags[i] != nil && !slices.Equal(m.flags[i], want.flags[i]) {
			return false
		}
	}
	return true
}

// fill asks for the UIDs and flags of the new messages the model does
// not know, as a client does after EXISTS.
func (m *model) fill(t *testing.T, rc *rawClient) {
	t.Helper()
	for i, u := range m.uids {
		if u == 0 || m.flags[i] == nil {
			m.applyAll(t, "FETCH", rc.ok("FETCH %d (UID FLAGS)", i+1))
		}
	}
}

func (m *model) String() string {
	var b strings.Builder
	for i, u := range m.uids {
		fmt.Fprintf(&b, "%d:%d%v ", i+1, u, m.flags[i])
	}
	return b.String()
}

var twoSessionCases = []struct {
	name string
	op   func(t *testing.T, a *rawClient)
	// expunged are the UIDs B must be told are gone.
	expunged []uint32
}{
	{"STORE", func(t *testing.T, a *rawClient) {
		a.ok(`STORE 1,3 +FLAGS (\Flagged $Work)`)
		a.ok(`UID STORE 4 -FLAGS.SILENT (\Deleted)`)
		a.ok(`STORE 5 FLAGS (\Seen)`)
	}, nil},
	{"EXPUNGE", func(t *testing.T, a *rawClient) {
		lines := a.ok("EXPUNGE")
		// A took the five messages as recent at SELECT.
		if !slices.Equal(lines, []string{"* 4 EXPUNGE", "* 2 EXPUNGE", "* 3 RECENT"}) {
			t.Errorf("A's EXPUNGE: %q", lines)
		}
	}, []uint32{2, 4}},
	{"UID EXPUNGE", func(t *testing.T, a *rawClient) {
		if lines := a.ok("UID EXPUNGE 1:2"); !slices.Equal(lines, []string{"* 2 EXPUNGE", "* 4 RECENT"}) {
			t.Errorf("A's UID EXPUNGE: %q", lines)
		}
	}, []uint32{2}},
	{"APPEND", func(t *testing.T, a *rawClient) {
		if uid := a.appendRaw("INBOX", `(\Seen $Late)`, testMessage("late", "text")); uid != 6 {
			t.Errorf("APPEND: UID %d", uid)
		}
	}, nil},
	{"COPY into B's mailbox", func(t *testing.T, a *rawClient) {
		a.ok("SELECT Other")
		_, tagged := a.cmd("COPY 1 INBOX")
		if !strings.Contains(tagged, "OK [COPYUID ") || !strings.Contains(tagged, " 1 6]") {
			t.Errorf("COPY: %s", tagged)
		}
	}, nil},
	{"MOVE", func(t *testing.T, a *rawClient) {
		lines := a.ok("UID MOVE 2:3 Other")
		if !contains(lines, "* 3 EXPUNGE") || !contains(lines, "* 2 EXPUNGE") || !contains(lines, "* 3 RECENT") || len(lines) != 4 {
			t.Errorf("A's MOVE: %q", lines)
		}
	}, []uint32{2, 3}},
	{"CLOSE", func(t *testing.T, a *rawClient) {
		if lines := a.ok("CLOSE"); len(lines) != 0 {
			t.Errorf("CLOSE answered %q", lines)
		}
	}, []uint32{2, 4}},
}

// TestTwoSessionsNoop: B hears of A's change only through commands
// that may carry it; the EXPUNGEs wait for NOOP.
func TestTwoSessionsNoop(t *testing.T) {
	for _, tc := range twoSessionCases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			a, b, mb := setupTwoSessions(t, ts)
			tc.op(t, a)
			want := truth(t, ts)

			// Commands by sequence number: no EXPUNGE, and the view they
			// use is still B's (5 messages, or more after EXISTS).
			for _, cmd := range []string{"FETCH 1:5 (UID FLAGS)", `STORE 1 -FLAGS.SILENT (\Answered)`, "SEARCH ALL", "FETCH 5 (UID)"} {
				lines := b.ok("%s", cmd)
				for _, l := range lines {
					if reExpunge.MatchString(l) {
						t.Fatalf("B got %q in answer to %s: %q", l, cmd, lines)
					}
					for _, u := range tc.expunged {
						if strings.HasSuffix(l, fmt.Sprintf(" UID %d)", u)) || strings.Contains(l, fmt.Sprintf("(UID %d ", u)) {
							t.Errorf("B got %q about expunged UID %d in answer to %s", l, u, cmd)
						}
					}
				}
				mb.applyAll(t, "B "+cmd, lines)
			}
			if len(mb.uids) < 5 || !slices.Equal(mb.uids[:5], []uint32{1, 2, 3, 4, 5}) {
				t.Fatalf("B's view changed before NOOP: %v", mb)
			}
			mb.applyAll(t, "B NOOP", b.ok("NOOP"))
			mb.fill(t, b)
			if !sameModel(mb, want) {
				t.Errorf("B after NOOP: %v\nwant %v", mb, want)
			}
			slices.Sort(mb.expunged)
			if !slices.Equal(mb.expunged, tc.expunged) {
				t.Errorf("B was told UIDs %v expunged, want %v", mb.expunged, tc.expunged)
			}
			// Nothing is told twice.
			if lines := b.ok("NOOP"); len(lines) != 0 {
				t.Errorf("second NOOP: %q", lines)
			}
		})
	}
}

// TestTwoSessionsIdle: the same changes are pushed to B during IDLE.
func TestTwoSessionsIdle(t *testing.T) {
	for _, tc := range twoSessionCases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t)
			a, b, mb := setupTwoSessions(t, ts)
			tag := b.idle()
			tc.op(t, a)
			want := truth(t, ts)
			b.waitFor("B's view to match "+want.String(), func(l string) bool {
				if err := mb.apply(l); err != nil {
					t.Fatalf("B during IDLE: %v", err)
				}
				return mb.matches(want)
			})
			mb.applyAll(t, "B after DONE", b.done(tag))
			mb.applyAll(t, "B NOOP", b.ok("NOOP"))
			mb.fill(t, b)
			if !sameModel(mb, want) {
				t.Errorf("B after IDLE: %v\nwant %v", mb, want)
			}
			slices.Sort(mb.expunged)
			if !slices.Equal(mb.expunged, tc.expunged) {
				t.Errorf("B was told UIDs %v expunged, want %v", mb.expunged, tc.expunged)
			}
		})
	}
}

// TestUIDCommandsMayExpunge: a UID command may carry pending EXPUNGEs
// (RFC 9051 §7.5.1 forbids them only for sequence-number commands);
// whatever B is told, its view stays consistent.
func TestUIDCommandsMayExpunge(t *testing.T) {
	ts := startServer(t)
	a, b, mb := setupTwoSessions(t, ts)
	a.ok("EXPUNGE")
	want := truth(t, ts)
	lines := b.ok("UID FETCH 1:* (FLAGS)")
	mb.applyAll(t, "B UID FETCH", lines)
	mb.applyAll(t, "B NOOP", b.ok("NOOP"))
	if !sameModel(mb, want) {
		t.Errorf("B: %v\nwant %v", mb, want)
	}
	for _, l := range lines {
		if strings.Contains(l, "FETCH") && (strings.Contains(l, "UID 2)") || strings.Contains(l, "UID 4)")) {
			t.Errorf("UID FETCH answered an expunged message: %q", l)
		}
	}
}

// TestCopyUIDPairs: COPYUID pairs each source UID with the UID of its
// copy (RFC 4315 §3), whatever order the sets are written in.
func TestCopyUIDPairs(t *testing.T) {
	ts := startServer(t)
	a, _, _ := setupTwoSessions(t, ts)
	_, tagged := a.cmd("UID COPY 1:5 Other")
	var validity uint32
	var src, dst string
	if _, err := fmt.Sscanf(tagged, "a%d OK [COPYUID %d %s %s", new(int), &validity, &src, &dst); err != nil {
		t.Fatalf("COPY: %s", tagged)
	}
	srcUIDs, dstUIDs := expandSet(t, src), expandSet(t, strings.TrimSuffix(dst, "]"))
	if len(srcUIDs) != 5 || len(dstUIDs) != 5 {
		t.Fatalf("COPYUID %s %s", src, dst)
	}
	o := loginRaw(t, ts, "alice")
	o.ok("EXAMINE Other")
	for i, s := range srcUIDs {
		lines := o.ok("UID FETCH %d (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", dstUIDs[i])
		if want := fmt.Sprintf("Subject: msg %d", s); len(lines) != 1 || !strings.Contains(lines[0], want) {
			t.Errorf("source UID %d → %d: %q, want %s", s, dstUIDs[i], lines, want)
		}
	}
}

// expandSet lists the numbers of a sequence set in the order written.
func expandSet(t *testing.T, s string) []uint32 {
	t.Helper()
	var out []uint32
	for _, r := range strings.Split(s, ",") {
		var lo, hi uint32
		if n, _ := fmt.Sscanf(r, "%d:%d", &lo, &hi); n == 2 {
			for u := lo; u <= hi; u++ {
				out = append(out, u)
			}
			continue
		}
		if _, err := fmt.Sscanf(r, "%d", &lo); err != nil {
			t.Fatalf("set %q", s)
		}
		out = append(out, lo)
	}
	return out
}

// TestOwnStoreAfterPendingChange: B holds A's flag change to a message,
// not yet told, and then changes the same message itself. The last flags
// B hears of it are the latest (A's and B's), with and without .SILENT:
// the change B held, sent after B's own STORE answered, would leave B's
// client on flags that are no longer true.
func TestOwnStoreAfterPendingChange(t *testing.T) {
	for _, silent := range []bool{false, true} {
		t.Run(fmt.Sprintf("silent=%v", silent), func(t *testing.T) {
			ts := startServer(t)
			a, b, mb := setupTwoSessions(t, ts)
			a.ok(`STORE 1 +FLAGS (\Seen)`)
			cmd := `STORE 1 +FLAGS (\Draft)`
			if silent {
				cmd = `STORE 1 +FLAGS.SILENT (\Draft)`
			}
			mb.applyAll(t, "B "+cmd, b.ok("%s", cmd))
			mb.applyAll(t, "B NOOP", b.ok("NOOP"))
			if got := mb.flags[0]; !slices.Contains(got, `\Seen`) || !slices.Contains(got, `\Draft`) {
				t.Fatalf("B's last word on message 1: %v, want \\Draft and \\Seen", got)
			}
			if want := truth(t, ts); !sameModel(mb, want) {
				t.Fatalf("B: %v\nwant %v", mb, want)
			}
		})
	}
}
