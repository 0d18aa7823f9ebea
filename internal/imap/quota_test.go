package imap_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/store"
)

// quotaUsage is the usage that maildirsize records for user, which must
// agree with a recount of the Maildir.
func quotaUsage(t *testing.T, ts *testServer, user string, q store.QuotaLimit) store.QuotaUsage {
	t.Helper()
	u, err := store.ReadQuota(ts.mailDir(user), q)
	if err != nil {
		t.Fatal(err)
	}
	counted, err := store.ReadQuota(ts.mailDir(user), store.QuotaLimit{})
	if err != nil {
		t.Fatal(err)
	}
	if u != counted {
		t.Fatalf("maildirsize says %+v, the Maildir holds %+v", u, counted)
	}
	return u
}

// appendTagged appends msg to mailbox and returns the tagged response.
func (rc *rawClient) appendTagged(mailbox, msg string) string {
	rc.t.Helper()
	tag := rc.send("APPEND %s {%d+}\r\n%s", mailbox, len(msg), msg)
	_, tagged := rc.until(tag)
	return tagged
}

func wantOverQuota(t *testing.T, what, tagged string) {
	t.Helper()
	if !strings.Contains(tagged, " NO [OVERQUOTA] ") {
		t.Fatalf("%s: %s, want NO [OVERQUOTA]", what, tagged)
	}
}

// TestQuotaAppend: APPEND up to the limit works; past it, NO [OVERQUOTA]
// and nothing on disk.
func TestQuotaAppend(t *testing.T) {
	ts := startServer(t)
	m1, m2 := testMessage("one", "first"), testMessage("two", "second")
	q := store.QuotaLimit{Bytes: int64(len(m1) + len(m2)), Messages: 10}
	ts.setQuota("alice", q)
	rc := loginRaw(t, ts, "alice")
	rc.appendRaw("INBOX", "", m1)
	rc.appendRaw("INBOX", `(\Seen)`, m2) // exactly at the limit
	if u := quotaUsage(t, ts, "alice", q); u != (store.QuotaUsage{Bytes: q.Bytes, Messages: 2}) {
		t.Fatalf("usage %+v", u)
	}
	wantOverQuota(t, "APPEND past the limit", rc.appendTagged("INBOX", testMessage("three", "x")))
	if files := diskFiles(t, ts.mailDir("alice")); len(files) != 2 {
		t.Fatalf("%d messages on disk, want 2", len(files))
	}
	if tmp, _ := os.ReadDir(filepath.Join(ts.mailDir("alice"), "tmp")); len(tmp) != 0 {
		t.Fatalf("tmp/ holds %d files", len(tmp))
	}
	// The session goes on, and Trash takes what INBOX does not.
	rc.appendRaw("Trash", "", testMessage("three", "x"))
	m := rc.selectRaw("INBOX")
	if len(m.uids) != 2 {
		t.Fatalf("INBOX shows %d messages", len(m.uids))
	}
	// Another user is not limited by alice's quota.
	bob := loginRaw(t, ts, "bob")
	bob.appendRaw("INBOX", "", strings.Repeat("x", int(q.Bytes)+1))
}

// TestQuotaExpunge: EXPUNGE and CLOSE give the space back.
func TestQuotaExpunge(t *testing.T) {
	ts := startServer(t)
	m1, m2 := testMessage("one", "first"), testMessage("two", "second")
	q := store.QuotaLimit{Bytes: int64(len(m1) + len(m2))}
	ts.setQuota("alice", q)
	rc := loginRaw(t, ts, "alice")
	rc.appendRaw("INBOX", "", m1)
	rc.appendRaw("INBOX", "", m2)
	rc.selectRaw("INBOX")
	rc.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	rc.ok("EXPUNGE")
	if u := quotaUsage(t, ts, "alice", q); u != (store.QuotaUsage{Bytes: int64(len(m2)), Messages: 1}) {
		t.Fatalf("usage after EXPUNGE %+v", u)
	}
	rc.appendRaw("INBOX", "", m1) // fits again
	rc.ok(`STORE 1:* +FLAGS.SILENT (\Deleted)`)
	rc.ok("CLOSE")
	if u := quotaUsage(t, ts, "alice", q); u != (store.QuotaUsage{}) {
		t.Fatalf("usage after CLOSE %+v", u)
	}
}

// TestQuotaCopyMove: COPY needs room; MOVE between counted mailboxes does
// not; MOVE into Trash frees; MOVE out of Trash needs room.
func TestQuotaCopyMove(t *testing.T) {
	ts := startServer(t)
	msg := testMessage("one", "first")
	size := int64(len(msg))
	q := store.QuotaLimit{Bytes: 2 * size}
	ts.setQuota("alice", q)
	rc := loginRaw(t, ts, "alice")
	rc.appendRaw("INBOX", "", msg)
	rc.selectRaw("INBOX")
	rc.ok("COPY 1 Archive") // exactly at the limit
	_, tagged := rc.cmd("COPY 1 Archive")
	wantOverQuota(t, "COPY past the limit", tagged)
	_, tagged = rc.cmd("UID MOVE 1 Archive")
	if !strings.Contains(tagged, " OK") {
		t.Fatalf("MOVE at the limit: %s", tagged)
	}
	status := rc.ok("STATUS Archive (MESSAGES)")
	if len(status) != 1 || status[0] != "* STATUS Archive (MESSAGES 2)" {
		t.Fatalf("Archive after COPY and MOVE: %q", status)
	}
	if u := quotaUsage(t, ts, "alice", q); u != (store.QuotaUsage{Bytes: 2 * size, Messages: 2}) {
		t.Fatalf("usage after MOVE %+v", u)
	}

	rc.selectRaw("Archive")
	rc.ok("MOVE 1 Trash")
	if u := quotaUsage(t, ts, "alice", q); u != (store.QuotaUsage{Bytes: size, Messages: 1}) {
		t.Fatalf("usage after MOVE to Trash %+v", u)
	}
	big := testMessage("big", strings.Repeat("x", int(q.Bytes)))
	rc.appendRaw("Trash", "", big)
	rc.selectRaw("Trash")
	found := rc.ok("UID SEARCH SUBJECT big")
	var uid uint32
	if _, err := fmt.Sscanf(strings.Join(found, ""), "* SEARCH %d", &uid); err != nil || uid == 1 {
		t.Fatalf("search: %q, %v", found, err)
	}
	_, tagged = rc.cmd("UID MOVE %d INBOX", uid)
	wantOverQuota(t, "MOVE out of Trash past the limit", tagged)
	// The small one fits.
	rc.ok("UID MOVE 1 INBOX")
	if u := quotaUsage(t, ts, "alice", q); u != (store.QuotaUsage{Bytes: 2 * size, Messages: 2}) {
		t.Fatalf("usage after MOVE out of Trash %+v", u)
	}
}

// TestQuotaRename: RENAME of Trash to a counted name needs room.
func TestQuotaRename(t *testing.T) {
	ts := startServer(t)
	q := store.QuotaLimit{Messages: 1}
	ts.setQuota("alice", q)
	rc := loginRaw(t, ts, "alice")
	rc.appendRaw("INBOX", "", testMessage("one", "x"))
	rc.appendRaw("Trash", "", testMessage("two", "x"))
	_, tagged := rc.cmd("RENAME Trash Old")
	wantOverQuota(t, "RENAME Trash", tagged)
	rc.ok("DELETE Trash")
	if u := quotaUsage(t, ts, "alice", q); u.Messages != 1 {
		t.Fatalf("usage after DELETE Trash %+v", u)
	}
}
