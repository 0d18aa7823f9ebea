package imap_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/store"
)

// RFC 5258, RFC 5819, RFC 6154 §3.
func TestListExtended(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.ok("CREATE Work.Projects")
	rc.ok("CREATE Fruit")
	rc.ok("CREATE Fruit.Banana")
	for _, mb := range []string{"Archive", "Drafts", "Junk", "Sent", "Trash"} {
		rc.ok("UNSUBSCRIBE %s", mb)
	}
	rc.ok("SUBSCRIBE INBOX")
	rc.ok("SUBSCRIBE Work.Projects")
	rc.ok("SUBSCRIBE Fruit")
	rc.ok("SUBSCRIBE Fruit.Banana")
	rc.ok("CREATE Old")
	rc.ok("SUBSCRIBE Old")
	rc.ok("DELETE Old") // the subscription stays (RFC 9051 §6.3.7)
	rc.appendRaw("Fruit.Banana", `(\Seen)`, testMessage("one", "x"))
	rc.appendRaw("Fruit.Banana", "", testMessage("two", "x"))

	tests := []struct {
		name, cmd string
		want      []string
	}{
		{"subscribed", `LIST (SUBSCRIBED) "" "*"`, []string{
			`* LIST (\HasNoChildren \Subscribed) "." INBOX`,
			`* LIST (\HasChildren \Subscribed) "." Fruit`,
			`* LIST (\HasNoChildren \Subscribed) "." Fruit.Banana`,
			`* LIST (\HasNoChildren \Subscribed) "." Work.Projects`,
			`* LIST (\NonExistent \Subscribed) "." Old`,
		}},
		{"nonexistent only when subscribed", `LIST "" "Old*" RETURN (SUBSCRIBED)`, nil},
		{"lsub lists a nonexistent subscription", `LSUB "" "Old"`, []string{
			`* LSUB () "." Old`,
		}},
		{"remote is a no-op", `list (remote subscribed) "" "Fruit*"`, []string{
			`* LIST (\HasChildren \Subscribed) "." Fruit`,
			`* LIST (\HasNoChildren \Subscribed) "." Fruit.Banana`,
		}},
		{"recursivematch", `LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)`, []string{
			`* LIST (\HasNoChildren \Subscribed) "." INBOX`,
			`* LIST (\HasChildren \Subscribed) "." Fruit ("CHILDINFO" ("SUBSCRIBED"))`,
			`* LIST (\Noselect \HasChildren) "." Work ("CHILDINFO" ("SUBSCRIBED"))`,
			`* LIST (\NonExistent \Subscribed) "." Old`,
		}},
		{"return subscribed", `LIST "" "Work*" RETURN (SUBSCRIBED)`, []string{
			`* LIST (\Noselect \HasChildren) "." Work`,
			`* LIST (\HasNoChildren \Subscribed) "." Work.Projects`,
		}},
		{"several patterns", `LIST "" ("INBOX" "Drafts" "Fruit.%" "INBOX")`, []string{
			`* LIST (\HasNoChildren) "." INBOX`,
			`* LIST (\HasNoChildren \Drafts) "." Drafts`,
			`* LIST (\HasNoChildren) "." Fruit.Banana`,
		}},
		{"special-use selection", `LIST (SPECIAL-USE) "" ("Drafts" "Fruit*") RETURN (SPECIAL-USE)`, []string{
			`* LIST (\HasNoChildren \Drafts) "." Drafts`,
		}},
		{"status", `LIST "" "Fruit*" RETURN (STATUS (MESSAGES UNSEEN))`, []string{
			`* LIST (\HasChildren) "." Fruit`,
			`* STATUS Fruit (MESSAGES 0 UNSEEN 0)`,
			`* LIST (\HasNoChildren) "." Fruit.Banana`,
			`* STATUS Fruit.Banana (MESSAGES 2 UNSEEN 1)`,
		}},
		{"no status for \\Noselect", `LIST "" "Work*" RETURN (STATUS (MESSAGES) SUBSCRIBED)`, []string{
			`* LIST (\Noselect \HasChildren) "." Work`,
			`* LIST (\HasNoChildren \Subscribed) "." Work.Projects`,
			`* STATUS Work.Projects (MESSAGES 0)`,
		}},
		{"empty pattern in extended form", `LIST () "" ""`, nil},
		{"basic form unchanged", `LIST "" ""`, []string{`* LIST (\Noselect) "." ""`}},
		{"lsub unchanged", `LSUB "" "Fruit*"`, []string{
			`* LSUB (\HasChildren) "." Fruit`,
			`* LSUB (\HasNoChildren) "." Fruit.Banana`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc.t = t
			rc.exactly(tt.want, "%s", tt.cmd)
		})
	}
	rc.t = t

	bad := []string{
		`LIST (FROB) "" "*"`,
		`LIST (RECURSIVEMATCH) "" "*"`,
		`LIST "" "*" RETURN (FROB)`,
		`LIST "" "*" RETURN (STATUS ())`,
		`LIST "" "*" RETURN (STATUS)`,
		`LIST "" "*" RETURNS ()`,
		`LIST "" ("*"`,
		`LSUB (SUBSCRIBED) "" "*"`,
	}
	for _, cmd := range bad {
		if lines, tagged := rc.cmd("%s", cmd); !strings.Contains(tagged, " BAD ") || len(lines) != 0 {
			t.Errorf("%s: %s %q", cmd, tagged, lines)
		}
	}
	caps := rc.ok("CAPABILITY")[0]
	for _, c := range []string{" LIST-EXTENDED", " LIST-STATUS", " SPECIAL-USE"} {
		if !strings.Contains(caps, c) {
			t.Errorf("%s not advertised: %s", c, caps)
		}
	}
}

// TestListInboxChild: CREATE INBOX.x makes INBOX a parent, and INBOX is
// listed once, selectable, \HasChildren (it was listed twice, once
// \Noselect, as the level above INBOX.x).
func TestListInboxChild(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.ok("CREATE INBOX.x")
	tests := []struct {
		cmd  string
		want []string
	}{
		{`LIST "" INBOX`, []string{`* LIST (\HasChildren) "." INBOX`}},
		{`LIST "" inbox`, []string{`* LIST (\HasChildren) "." INBOX`}},
		{`LIST "" "INBOX*"`, []string{`* LIST (\HasChildren) "." INBOX`, `* LIST (\HasNoChildren) "." INBOX.x`}},
		{`LIST (SUBSCRIBED) "" "INBOX"`, []string{`* LIST (\HasChildren \Subscribed) "." INBOX`}},
		{`LSUB "" "INBOX*"`, []string{`* LSUB (\HasChildren) "." INBOX`}},
	}
	for _, tc := range tests {
		lines := rc.ok("%s", tc.cmd)
		if strings.Join(lines, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", tc.cmd, lines, tc.want)
		}
	}
	rc.ok("SELECT INBOX")
	rc.ok("DELETE INBOX.x")
	if lines := rc.ok(`LIST "" "INBOX*"`); len(lines) != 1 || lines[0] != `* LIST (\HasNoChildren) "." INBOX` {
		t.Errorf("after DELETE INBOX.x: %q", lines)
	}
}

// TestListReference: RFC 9051 §6.3.9. The reference and the pattern are
// one name, the one's text then the other's, nothing put between (RFC
// 3501 §6.3.8's examples; Dovecot answers the same, byte for byte); an
// empty pattern asks for the delimiter and the root of the reference:
// its first level with the delimiter, as Dovecot and UW-IMAP answer.
func TestListReference(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	rc.ok("CREATE a")
	rc.ok("CREATE a.b")
	rc.ok("CREATE ab")
	tests := []struct {
		cmd  string
		want []string
	}{
		{`LIST "a" "*"`, []string{`* LIST (\HasChildren) "." a`, `* LIST (\HasNoChildren) "." a.b`, `* LIST (\HasNoChildren) "." ab`}},
		{`LIST "a." "%"`, []string{`* LIST (\HasNoChildren) "." a.b`}},
		{`LIST "a" ".%"`, []string{`* LIST (\HasNoChildren) "." a.b`}},
		{`LIST "a.b" ""`, []string{`* LIST (\Noselect) "." a.`}},
		{`LIST "#news.comp.mail" ""`, []string{`* LIST (\Noselect) "." #news.`}},
		{`LIST "a" ""`, []string{`* LIST (\Noselect) "." ""`}},
		{`LIST "" ""`, []string{`* LIST (\Noselect) "." ""`}},
	}
	for _, tc := range tests {
		lines := rc.ok("%s", tc.cmd)
		if strings.Join(lines, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", tc.cmd, lines, tc.want)
		}
	}
}

// TestFolderLimit: with a limit of 7 folders (the 5 a new account gets
// and 2 more), CREATE past it answers NO [LIMIT] and makes nothing;
// RENAME of a folder moves it (allowed), RENAME INBOX would make one
// more (refused); DELETE makes room again.
func TestFolderLimit(t *testing.T) {
	ts := startServerWith(t, t.TempDir(), store.Options{MaxFolders: 7})
	rc := loginRaw(t, ts, "alice")
	rc.ok("CREATE a")
	rc.ok("CREATE b.c") // b is a level, no folder
	const limit = "NO [LIMIT] Maximum number of mailboxes reached"
	for _, cmd := range []string{"CREATE x", "CREATE b", "CREATE a.y", "RENAME INBOX z"} {
		if _, tagged := rc.cmd("%s", cmd); !strings.HasSuffix(tagged, limit) {
			t.Errorf("%s at the limit: %q, want %q", cmd, tagged, limit)
		}
	}
	if _, tagged := rc.cmd("CREATE a"); !strings.Contains(tagged, "NO [ALREADYEXISTS]") {
		t.Errorf("CREATE of an existing folder at the limit: %q", tagged)
	}
	rc.ok("RENAME a d")
	rc.ok("RENAME b.c e")
	for _, n := range []string{".x", ".b", ".a.y", ".z", ".a"} {
		if _, err := os.Stat(filepath.Join(ts.mailDir("alice"), n)); !os.IsNotExist(err) {
			t.Errorf("%s on disk: %v", n, err)
		}
	}
	rc.ok("DELETE e")
	rc.ok("RENAME INBOX z")
	if _, tagged := rc.cmd("CREATE y"); !strings.HasSuffix(tagged, limit) {
		t.Errorf("CREATE at the limit again: %q", tagged)
	}
}

// TestListSubscribedParents: a subscribed name whose parent is not
// subscribed (RFC 3501 §6.3.9: "foo/bar" subscribed, "foo" not). LSUB
// with a pattern ending in "%" returns the parent \Noselect, whether it
// is a mailbox or no mailbox at all (it returned nothing); LIST
// (SUBSCRIBED RECURSIVEMATCH) returns it with CHILDINFO ("SUBSCRIBED")
// and without \Subscribed (RFC 5258 §3.5), \NonExistent when it is no
// mailbox; without RECURSIVEMATCH it is not returned. Then RFC 5258 §5
// example 9, with '.' for '/'.
func TestListSubscribedParents(t *testing.T) {
	ts := startServer(t)
	rc := loginRaw(t, ts, "alice")
	for _, mb := range []string{"Archive", "Drafts", "Junk", "Sent", "Trash"} {
		rc.ok("UNSUBSCRIBE %s", mb)
	}
	rc.ok("SUBSCRIBE a.b.c") // no mailbox a, a.b or a.b.c
	rc.ok("CREATE m.n.o")    // m and m.n are mailboxes, unsubscribed
	rc.ok("UNSUBSCRIBE m.n.o")
	rc.ok("CREATE m.n.o.p")
	rc.ok("SUBSCRIBE m.n.o.p")
	tests := []struct {
		cmd  string
		want []string
	}{
		{`LSUB "" a.%`, []string{`* LSUB (\Noselect) "." a.b`}},
		{`LSUB "" %`, []string{`* LSUB (\HasNoChildren) "." INBOX`, `* LSUB (\Noselect) "." m`, `* LSUB (\Noselect) "." a`}},
		{`LSUB "" a.%.%`, []string{`* LSUB () "." a.b.c`}},
		{`LSUB "" m.n.%`, []string{`* LSUB (\Noselect) "." m.n.o`}},
		{`LSUB "" a.*`, []string{`* LSUB () "." a.b.c`}},
		{`LSUB "" a.b`, nil},
		{`LSUB "" a.b.c`, []string{`* LSUB () "." a.b.c`}},
		{`LIST (SUBSCRIBED RECURSIVEMATCH) "" a.%`, []string{`* LIST (\NonExistent) "." a.b ("CHILDINFO" ("SUBSCRIBED"))`}},
		{`LIST (SUBSCRIBED RECURSIVEMATCH) "" %`, []string{
			`* LIST (\HasNoChildren \Subscribed) "." INBOX`,
			`* LIST (\Noselect \HasChildren) "." m ("CHILDINFO" ("SUBSCRIBED"))`,
			`* LIST (\NonExistent) "." a ("CHILDINFO" ("SUBSCRIBED"))`,
		}},
		{`LIST (SUBSCRIBED RECURSIVEMATCH) "" m.n.%`, []string{`* LIST (\HasChildren) "." m.n.o ("CHILDINFO" ("SUBSCRIBED"))`}},
		{`LIST (SUBSCRIBED RECURSIVEMATCH) "" a.*`, []string{`* LIST (\NonExistent \Subscribed) "." a.b.c`}},
		{`LIST (SUBSCRIBED) "" a.%`, nil},
		{`LIST (SUBSCRIBED) "" %`, []string{`* LIST (\HasNoChildren \Subscribed) "." INBOX`}},
		{`LIST "" a.%`, nil},
	}
	for _, tc := range tests {
		rc.exactly(tc.want, "%s", tc.cmd)
	}

	// RFC 5258 §5 example 9: Foo2, Foo2.Bar1, Foo2.Bar2, Baz2, Baz2.Bar2,
	// Baz2.Bar22, Baz2.Bar222, Eps2, Eps2.Mamba, Qux2.Bar2 exist; all but
	// Foo2, Baz2 and Qux2 are subscribed. Baz2 is not listed for "*2":
	// its subscribed children match the pattern themselves.
	rc2 := loginRaw(t, ts, "bob")
	for _, mb := range []string{"Archive", "Drafts", "Junk", "Sent", "Trash"} {
		rc2.ok("UNSUBSCRIBE %s", mb)
	}
	for _, mb := range []string{"Foo2", "Foo2.Bar1", "Foo2.Bar2", "Baz2", "Baz2.Bar2", "Baz2.Bar22", "Baz2.Bar222", "Eps2", "Eps2.Mamba", "Qux2.Bar2"} {
		rc2.ok("CREATE %s", mb)
		if mb != "Foo2" && mb != "Baz2" {
			rc2.ok("SUBSCRIBE %s", mb)
		}
	}
	// The server's order is the names' (RFC 5258 sets none).
	rc2.exactly([]string{
		`* LIST (\HasNoChildren \Subscribed) "." Baz2.Bar2`,
		`* LIST (\HasNoChildren \Subscribed) "." Baz2.Bar22`,
		`* LIST (\HasNoChildren \Subscribed) "." Baz2.Bar222`,
		`* LIST (\HasChildren \Subscribed) "." Eps2 ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasChildren) "." Foo2 ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasNoChildren \Subscribed) "." Foo2.Bar2`,
		`* LIST (\HasNoChildren \Subscribed) "." Qux2.Bar2`,
	}, "%s", `LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"`)
	// The same with "%": every parent with a subscribed child is listed.
	rc2.exactly([]string{
		`* LIST (\HasNoChildren \Subscribed) "." INBOX`,
		`* LIST (\HasChildren) "." Baz2 ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasChildren \Subscribed) "." Eps2 ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\HasChildren) "." Foo2 ("CHILDINFO" ("SUBSCRIBED"))`,
		`* LIST (\Noselect \HasChildren) "." Qux2 ("CHILDINFO" ("SUBSCRIBED"))`,
	}, "%s", `LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`)
	rc2.exactly([]string{
		`* LSUB (\HasNoChildren) "." INBOX`,
		`* LSUB (\Noselect) "." Baz2`,
		`* LSUB (\HasChildren) "." Eps2`,
		`* LSUB (\Noselect) "." Foo2`,
		`* LSUB (\Noselect) "." Qux2`,
	}, "%s", `LSUB "" "%"`)
}
