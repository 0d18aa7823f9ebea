//go:build interop

package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/internal/testproc"
	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// Cistern assigns the UIDs of a Maildir with gaps (expunges in the middle
// and at the top between syncs); Dovecot, started on it afterwards, must
// report the same UIDs, UIDVALIDITY and UIDNEXT, and the flags of the file
// names.
func TestDovecotReadsCisternUIDs(t *testing.T) {
	dir := newMaildir(t)
	d := NewDovecot(t, dir)
	mb := openStore(t, dir)
	var next int      // number of the next message to make
	var topUID uint32 // highest UID Cistern ever assigned

	// deliverBatch delivers n messages: every third into new/, the others
	// into cur/ with one of flagSets. Their UIDs must lie above every UID
	// assigned before, expunged ones included.
	deliverBatch := func(n int) {
		first := next
		for range n {
			cur := next%3 != 0
			var flags maildir.Flags
			if cur {
				flags = mustFlags(t, flagSets[next%len(flagSets)])
			}
			deliver(t, dir, messageID("a", next), cur, flags)
			next++
		}
		syncStore(t, mb)
		byID := cisternMessages(t, mb)
		floor := topUID
		for i := first; i < next; i++ {
			m, ok := byID[messageID("a", i)]
			switch {
			case !ok:
				t.Fatalf("Cistern did not pick up %s", messageID("a", i))
			case m.UID <= floor:
				t.Errorf("Cistern gave %s UID %d, not above %d, the highest UID it had assigned", messageID("a", i), m.UID, floor)
			}
			topUID = max(topUID, m.UID)
		}
	}
	// expunge removes the files of the messages with these Message-IDs, as
	// another program would, and lets Cistern notice.
	expunge := func(ids ...string) {
		byID := cisternMessages(t, mb)
		for _, id := range ids {
			m, ok := byID[id]
			if !ok {
				t.Fatalf("expunge %s: Cistern does not know it", id)
			}
			if err := os.Remove(filepath.Join(dir, m.Sub, m.Filename)); err != nil {
				t.Fatal(err)
			}
		}
		syncStore(t, mb)
		byID = cisternMessages(t, mb)
		for _, id := range ids {
			if m, ok := byID[id]; ok {
				t.Fatalf("Cistern still lists %s (UID %d) after its file was removed and the Maildir synced", id, m.UID)
			}
		}
	}
	highest := func() string {
		msgs := mb.Messages()
		return messageIDOf(t, dir, msgs[len(msgs)-1])
	}

	deliverBatch(30)
	expunge(messageID("a", 4), messageID("a", 17))
	deliverBatch(10)
	expunge(highest(), messageID("a", 33))
	deliverBatch(12)
	// The top UID gone last: only the uidlist's next UID remembers it.
	expunge(highest())

	want := cisternMessages(t, mb)
	if len(want) != next-5 {
		t.Fatalf("Cistern lists %d messages, want %d", len(want), next-5)
	}
	checkAscendingUIDs(t, mb.Messages())
	uidValidity, nextUID := mb.UIDValidity(), mb.NextUID()
	if uidValidity == 0 {
		t.Fatal("Cistern left UIDVALIDITY 0 after syncing")
	}

	d.Start()
	c := d.Client()
	got := SelectInbox(t, c)
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	d.Stop()

	if got.UIDValidity != uidValidity {
		t.Errorf("Dovecot UIDVALIDITY %d, Cistern %d", got.UIDValidity, uidValidity)
	}
	if got.UIDNext != nextUID {
		t.Errorf("Dovecot UIDNEXT %d, Cistern's next UID %d", got.UIDNext, nextUID)
	}
	compareUIDs(t, "Dovecot", got, want)
	for id, m := range want {
		if g, ok := got.ByMessageID[id]; ok {
			checkFlags(t, id, m, g)
		}
	}
}

// Dovecot assigns the UIDs (SELECT of delivered files, APPENDs, EXPUNGEs
// in the middle and at the top, flag changes); Cistern, opened on the
// Maildir afterwards, must give every message Dovecot's UID and keep
// Dovecot's dovecot-uidlist records as they were.
func TestCisternReadsDovecotUIDs(t *testing.T) {
	dir := newMaildir(t)
	d := NewDovecot(t, dir)
	for i := range 20 {
		cur := i%2 == 0
		var flags maildir.Flags
		if cur {
			flags = mustFlags(t, survivesExpunge(flagSets[i%len(flagSets)]))
		}
		deliver(t, dir, messageID("b", i), cur, flags)
	}

	d.Start()
	c := d.Client()
	first := SelectInbox(t, c)
	if len(first.Messages) != 20 {
		t.Fatalf("Dovecot sees %d messages, want 20", len(first.Messages))
	}
	for i := 20; i < 26; i++ {
		var flags []imap.Flag
		if i%2 == 1 {
			flags = []imap.Flag{imap.FlagSeen}
		}
		appendMessage(t, c, messageID("b", i), flags)
	}
	mid := SelectInbox(t, c)
	storeFlags(t, c, imap.StoreFlagsAdd, []imap.Flag{imap.FlagFlagged, imap.FlagAnswered},
		mid.ByMessageID[messageID("b", 1)].UID, mid.ByMessageID[messageID("b", 6)].UID)
	storeFlags(t, c, imap.StoreFlagsDel, []imap.Flag{imap.FlagSeen},
		mid.ByMessageID[messageID("b", 2)].UID)
	storeFlags(t, c, imap.StoreFlagsAdd, []imap.Flag{imap.FlagDeleted},
		mid.ByMessageID[messageID("b", 3)].UID,
		mid.ByMessageID[messageID("b", 11)].UID,
		mid.ByMessageID[messageID("b", 25)].UID) // the top UID
	if _, err := c.Expunge().Collect(); err != nil {
		t.Fatalf("EXPUNGE: %v", err)
	}
	appendMessage(t, c, messageID("b", 26), []imap.Flag{imap.FlagDraft})
	dove := SelectInbox(t, c)
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	d.Stop()
	if len(dove.Messages) != 24 {
		t.Fatalf("Dovecot sees %d messages at the end, want 24", len(dove.Messages))
	}

	uidlistPath := filepath.Join(dir, "dovecot-uidlist")
	before := readUIDList(t, uidlistPath)
	t.Logf("dovecot-uidlist as Dovecot left it:\n%s", before.raw)
	if before.file.Header.UIDValidity != dove.UIDValidity {
		t.Errorf("Dovecot's uidlist has UIDVALIDITY %d, its SELECT said %d", before.file.Header.UIDValidity, dove.UIDValidity)
	}

	mb := openStore(t, dir)
	syncStore(t, mb)
	got := cisternMessages(t, mb)
	if v := mb.UIDValidity(); v != dove.UIDValidity {
		t.Errorf("Cistern UIDVALIDITY %d, Dovecot %d", v, dove.UIDValidity)
	}
	if n := mb.NextUID(); n < dove.UIDNext {
		t.Errorf("Cistern's next UID %d is below Dovecot's UIDNEXT %d: an expunged UID would be reused", n, dove.UIDNext)
	}
	compareUIDs(t, "Cistern", &Inbox{ByMessageID: imapByID(got)}, toStore(dove))
	for id, m := range got {
		if g, ok := dove.ByMessageID[id]; ok {
			checkFlags(t, id, m, g)
		}
	}

	after := readUIDList(t, uidlistPath)
	checkRecordsKept(t, dir, before, after)

	// A message Cistern adds now must not take an UID Dovecot used.
	deliver(t, dir, messageID("b", 27), false, 0)
	syncStore(t, mb)
	m, ok := cisternMessages(t, mb)[messageID("b", 27)]
	if !ok {
		t.Fatal("Cistern did not pick up a new message")
	}
	if m.UID < dove.UIDNext {
		t.Errorf("Cistern gave a new message UID %d, below Dovecot's UIDNEXT %d", m.UID, dove.UIDNext)
	}
	checkRecordsKept(t, dir, before, readUIDList(t, uidlistPath))
}

// Dovecot serves; Cistern syncs after other programs dropped files into
// new/ and cur/ and renamed one; Dovecot serves again and must see
// Cistern's UIDs without renumbering; Dovecot appends, and Cistern must
// see that with Dovecot's UID.
func TestBothWayRoundTrip(t *testing.T) {
	dir := newMaildir(t)
	d := NewDovecot(t, dir)
	for i := range 10 {
		cur := i%2 == 1
		var flags maildir.Flags
		if cur {
			flags = mustFlags(t, survivesExpunge(flagSets[i%len(flagSets)]))
		}
		deliver(t, dir, messageID("c", i), cur, flags)
	}

	// Round 1: Dovecot assigns UIDs, appends, expunges.
	d.Start()
	c := d.Client()
	SelectInbox(t, c)
	appendMessage(t, c, messageID("c", 10), nil)
	appendMessage(t, c, messageID("c", 11), []imap.Flag{imap.FlagSeen})
	sel := SelectInbox(t, c)
	var gone []uint32
	for _, i := range []int{5, 6, 7, 8, 11} {
		gone = append(gone, sel.ByMessageID[messageID("c", i)].UID)
	}
	storeFlags(t, c, imap.StoreFlagsAdd, []imap.Flag{imap.FlagDeleted}, gone...)
	if _, err := c.Expunge().Collect(); err != nil {
		t.Fatalf("EXPUNGE: %v", err)
	}
	round1 := SelectInbox(t, c)
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	d.Stop()

	// Premise: expunging 5 of 12 messages makes Dovecot 2.3 rewrite the
	// uidlist without their records, so the top UID (gone[4]) lives on only
	// in the header's next UID, which Cistern must honour.
	if ul := readUIDList(t, filepath.Join(dir, "dovecot-uidlist")); ul.file.LastUID() >= gone[4] || ul.file.Header.NextUID <= gone[4] {
		t.Fatalf("test premise: Dovecot was to rewrite its uidlist without UIDs %v and with next UID above %d; it has:\n%s", gone, gone[4], ul.raw)
	}
	// Other programs change the Maildir while nobody serves it.
	dropFile(t, dir, "new", "1700000100.M1P100Q1.mda.example", messageID("c", 12))
	dropFile(t, dir, "new", "1700000101.M2P100Q2.mda.example", messageID("c", 13))
	dropFile(t, dir, "cur", "1700000102.M3P100Q3.mda.example:2,S", messageID("c", 14))
	renamed := renameWithFlags(t, dir, messageID("c", 0), "FS")

	// Cistern syncs: Dovecot's UIDs kept, new files numbered after them.
	mb := openStore(t, dir)
	syncStore(t, mb)
	if v := mb.UIDValidity(); v != round1.UIDValidity {
		t.Fatalf("Cistern UIDVALIDITY %d, Dovecot %d", v, round1.UIDValidity)
	}
	cis := cisternMessages(t, mb)
	if len(cis) != len(round1.Messages)+3 {
		t.Errorf("Cistern lists %d messages, want %d", len(cis), len(round1.Messages)+3)
	}
	for id, g := range round1.ByMessageID {
		if m, ok := cis[id]; !ok || m.UID != g.UID {
			t.Errorf("%s: Cistern UID %d (found %v), Dovecot gave %d", id, m.UID, ok, g.UID)
		}
	}
	for i := 12; i <= 14; i++ {
		m, ok := cis[messageID("c", i)]
		if !ok {
			t.Errorf("Cistern did not pick up dropped message %s", messageID("c", i))
		} else if m.UID < round1.UIDNext {
			t.Errorf("%s: Cistern UID %d is below Dovecot's UIDNEXT %d", messageID("c", i), m.UID, round1.UIDNext)
		}
	}
	if m := cis[messageID("c", 0)]; m.Filename != renamed {
		t.Errorf("Cistern has %s as %q, the file is %q", messageID("c", 0), m.Filename, renamed)
	}
	checkAscendingUIDs(t, mb.Messages())

	// Round 2: Dovecot must take Cistern's UIDs as they are.
	d.Start()
	c = d.Client()
	round2 := SelectInbox(t, c)
	if round2.UIDValidity != round1.UIDValidity {
		t.Errorf("Dovecot changed UIDVALIDITY %d → %d after Cistern's sync", round1.UIDValidity, round2.UIDValidity)
	}
	if want := mb.NextUID(); round2.UIDNext != want {
		t.Errorf("Dovecot UIDNEXT %d, Cistern's next UID %d", round2.UIDNext, want)
	}
	compareUIDs(t, "Dovecot (round 2)", round2, cis)
	for id, m := range cis {
		if g, ok := round2.ByMessageID[id]; ok {
			checkFlags(t, id, m, g)
		}
	}
	appendMessage(t, c, messageID("c", 15), []imap.Flag{imap.FlagAnswered})
	round3 := SelectInbox(t, c)
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	d.Stop()
	appended, ok := round3.ByMessageID[messageID("c", 15)]
	if !ok || appended.UID < round2.UIDNext {
		t.Fatalf("Dovecot appended %s at UID %d (found %v), want at least %d", messageID("c", 15), appended.UID, ok, round2.UIDNext)
	}

	// Cistern again, same Mailbox: Dovecot's append shows up with its UID.
	syncStore(t, mb)
	compareUIDs(t, "Cistern (round 3)", &Inbox{ByMessageID: imapByID(cisternMessages(t, mb))}, toStore(round3))
	if v := mb.UIDValidity(); v != round1.UIDValidity {
		t.Errorf("Cistern UIDVALIDITY %d after round 3, want %d", v, round1.UIDValidity)
	}
}

// flagSets are the flag letters given to messages delivered into cur/, in
// turn; Maildir order, upper case only (keywords need dovecot-keywords).
var flagSets = []string{"S", "", "RS", "F", "FS", "T", "D", "DFRST", "ST", "FRS"}

// imapFlagOf maps the Maildir flag letters that Dovecot reports to their
// IMAP system flags (RFC 9051 §2.3.2); Dovecot reports P (passed) as no
// flag.
var imapFlagOf = map[byte]imap.Flag{
	maildir.FlagSeen:    imap.FlagSeen,
	maildir.FlagReplied: imap.FlagAnswered,
	maildir.FlagFlagged: imap.FlagFlagged,
	maildir.FlagTrashed: imap.FlagDeleted,
	maildir.FlagDraft:   imap.FlagDraft,
}

// survivesExpunge drops T (\\Deleted) from flag letters, for messages of
// a test that sends EXPUNGE.
func survivesExpunge(letters string) string {
	return strings.ReplaceAll(letters, string(maildir.FlagTrashed), "")
}

// flagRecent is IMAP4rev1's \Recent (RFC 3501 §2.3.2), which go-imap v2
// does not name.
const flagRecent imap.Flag = "\\Recent"

// expectedIMAPFlags returns the IMAP flags of a file with flags f, sorted.
func expectedIMAPFlags(f maildir.Flags) []imap.Flag {
	var out []imap.Flag
	for letter, flag := range imapFlagOf {
		if f.Has(letter) {
			out = append(out, flag)
		}
	}
	slices.Sort(out)
	return out
}

// checkFlags compares the flags Dovecot reported with the file name's.
// \Recent is session state, not a file flag, and is ignored.
func checkFlags(t *testing.T, id string, m store.Message, got IMAPMessage) {
	t.Helper()
	have := slices.DeleteFunc(slices.Clone(got.Flags), func(f imap.Flag) bool { return f == flagRecent })
	if want := expectedIMAPFlags(m.Flags); !slices.Equal(have, want) {
		t.Errorf("%s (UID %d, file %s/%s): Dovecot flags %v, file name says %v", id, m.UID, m.Sub, m.Filename, have, want)
	}
}

// compareUIDs checks that got (what server reported) holds exactly the
// Message-IDs of want, each at the same UID.
func compareUIDs(t *testing.T, server string, got *Inbox, want map[string]store.Message) {
	t.Helper()
	for id, m := range want {
		g, ok := got.ByMessageID[id]
		switch {
		case !ok:
			t.Errorf("%s: %s does not list it (want UID %d)", id, server, m.UID)
		case g.UID != m.UID:
			t.Errorf("%s: %s says UID %d, want %d", id, server, g.UID, m.UID)
		}
	}
	for id, g := range got.ByMessageID {
		if _, ok := want[id]; !ok {
			t.Errorf("%s: %s lists it at UID %d, but it should not exist", id, server, g.UID)
		}
	}
}

// checkAscendingUIDs checks that msgs (in UID order) have strictly ascending,
// non-zero UIDs.
func checkAscendingUIDs(t *testing.T, msgs []store.Message) {
	t.Helper()
	var last uint32
	for _, m := range msgs {
		if m.UID <= last {
			t.Errorf("UID %d (%s) follows UID %d", m.UID, m.Base, last)
		}
		last = m.UID
	}
}

// uidListSnapshot is one reading of a dovecot-uidlist.
type uidListSnapshot struct {
	raw  string
	file *uidlist.File
}

func readUIDList(t *testing.T, path string) uidListSnapshot {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, problems, err := uidlist.Parse(path, data)
	if err != nil {
		t.Fatalf("parsing %s: %v\n%s", path, err, data)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", path, p)
	}
	return uidListSnapshot{raw: string(data), file: f}
}

// checkRecordsKept checks that the uidlist after Cistern's sync has the
// header identity (UIDVALIDITY, GUID) and every record that Dovecot's had,
// unchanged, for each message whose file still exists. A record of a file
// that is gone may have been dropped (Dovecot drops them on a rewrite), but
// its UID must not name another file.
func checkRecordsKept(t *testing.T, dir string, before, after uidListSnapshot) {
	t.Helper()
	bh, ah := before.file.Header, after.file.Header
	if ah.UIDValidity != bh.UIDValidity || ah.GUID != bh.GUID {
		t.Errorf("uidlist header changed from V%d G%s to V%d G%s", bh.UIDValidity, bh.GUID, ah.UIDValidity, ah.GUID)
	}
	if ah.NextUID < bh.NextUID {
		t.Errorf("uidlist next UID went down from %d to %d", bh.NextUID, ah.NextUID)
	}
	exists := existingBases(t, dir)
	for _, rb := range before.file.Records {
		ra, ok := after.file.Lookup(rb.UID)
		switch {
		case !ok && exists[rb.Base()]:
			t.Errorf("uidlist record %d %s was dropped, but its file exists", rb.UID, rb.Name)
		case ok && (ra.Name != rb.Name || !slices.Equal(ra.Ext, rb.Ext)):
			t.Errorf("uidlist record changed from %d %v :%s to %d %v :%s", rb.UID, rb.Ext, rb.Name, ra.UID, ra.Ext, ra.Name)
		}
	}
	if t.Failed() {
		t.Logf("dovecot-uidlist before Cistern's sync:\n%s\nafter:\n%s", before.raw, after.raw)
	}
}

// existingBases returns the base names of the files in new/ and cur/.
func existingBases(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := make(map[string]bool)
	for _, sub := range []string{maildir.New, maildir.Cur} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out[maildir.BaseName(e.Name())] = true
		}
	}
	return out
}

// newMaildir makes an empty Maildir that Dovecot's mail user can reach.
func newMaildir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(testproc.TraversableTempDir(t), "Maildir")
	if err := maildir.Create(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// messageID is the Message-ID of message n of a test's series.
func messageID(series string, n int) string {
	return fmt.Sprintf("<interop-%s-%03d@cistern.test>", series, n)
}

// messageText is a small RFC 5322 message with Message-ID id, with LF line
// endings as Maildir files have them.
func messageText(id string) string {
	return fmt.Sprintf("From: Interop Sender <sender@cistern.test>\n"+
		"To: %s@cistern.test\n"+
		"Subject: interop %s\n"+
		"Date: Tue, 14 Nov 2023 22:13:20 +0000\n"+
		"Message-ID: %s\n"+
		"\n"+
		"Body of %s.\n", DovecotUser, id, id, id)
}

func mustFlags(t *testing.T, s string) maildir.Flags {
	t.Helper()
	f, err := maildir.ParseFlags(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// deliver delivers message id with Cistern's maildir package.
func deliver(t *testing.T, dir, id string, cur bool, flags maildir.Flags) string {
	t.Helper()
	name, err := maildir.Deliver(dir, strings.NewReader(messageText(id)), maildir.DeliverOptions{Cur: cur, Flags: flags})
	if err != nil {
		t.Fatalf("delivering %s: %v", id, err)
	}
	return name
}

// dropFile puts message id into sub/name the way a foreign delivery agent
// does: written in tmp/, renamed into place.
func dropFile(t *testing.T, dir, sub, name, id string) {
	t.Helper()
	tmp := filepath.Join(dir, maildir.Tmp, maildir.BaseName(name))
	if err := os.WriteFile(tmp, []byte(messageText(id)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, sub, name)); err != nil {
		t.Fatal(err)
	}
}

// renameWithFlags renames the file of message id (in new/ or cur/) to
// cur/ with the flags letters, as a mail reader does, and returns the new
// file name.
func renameWithFlags(t *testing.T, dir, id, letters string) string {
	t.Helper()
	for _, sub := range []string{maildir.New, maildir.Cur} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			old := filepath.Join(dir, sub, e.Name())
			if readMessageID(t, old) != id {
				continue
			}
			name := maildir.FilenameWithFlags(maildir.BaseName(e.Name()), mustFlags(t, letters))
			if err := os.Rename(old, filepath.Join(dir, maildir.Cur, name)); err != nil {
				t.Fatal(err)
			}
			return name
		}
	}
	t.Fatalf("no file in new/ or cur/ holds %s", id)
	return ""
}

func readMessageID(t *testing.T, path string) string {
	t.Helper()
	id, err := testfs.MessageID(path)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func messageIDOf(t *testing.T, dir string, m store.Message) string {
	t.Helper()
	return readMessageID(t, filepath.Join(dir, m.Sub, m.Filename))
}

func openStore(t *testing.T, dir string) *store.Mailbox {
	t.Helper()
	mb, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("store.Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := mb.Close(); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	return mb
}

// syncStore syncs mb with a deadline and checks the store's invariants,
// including that its state is the files: in these tests nobody changes the
// Maildir while Cistern syncs.
func syncStore(t *testing.T, mb *store.Mailbox) *store.Changes {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := mb.Sync(ctx)
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := mb.Check(); err != nil {
		t.Errorf("store.Check after Sync: %v", err)
	}
	if err := mb.CheckFiles(); err != nil {
		t.Errorf("store.CheckFiles after Sync: %v", err)
	}
	return ch
}

// cisternMessages maps the Message-ID in each message's file to the
// message, failing the test on a suspect or a Message-ID seen twice.
func cisternMessages(t *testing.T, mb *store.Mailbox) map[string]store.Message {
	t.Helper()
	out := make(map[string]store.Message)
	for _, m := range mb.Messages() {
		if m.Suspect {
			t.Errorf("Cistern holds %s (UID %d) as a suspect on a quiet Maildir", m.Base, m.UID)
			continue
		}
		id := messageIDOf(t, mb.Dir(), m)
		if prev, dup := out[id]; dup {
			t.Fatalf("Cistern lists %s twice: UID %d (%s) and UID %d (%s)", id, prev.UID, prev.Filename, m.UID, m.Filename)
		}
		out[id] = m
	}
	return out
}

// toStore turns what Dovecot reported into the form compareUIDs expects.
func toStore(in *Inbox) map[string]store.Message {
	out := make(map[string]store.Message, len(in.ByMessageID))
	for id, m := range in.ByMessageID {
		out[id] = store.Message{UID: m.UID}
	}
	return out
}

func imapByID(msgs map[string]store.Message) map[string]IMAPMessage {
	out := make(map[string]IMAPMessage, len(msgs))
	for id, m := range msgs {
		out[id] = IMAPMessage{UID: m.UID, MessageID: id}
	}
	return out
}

// appendMessage APPENDs message id to INBOX with flags.
func appendMessage(t *testing.T, c *imapclient.Client, id string, flags []imap.Flag) {
	t.Helper()
	body := strings.ReplaceAll(messageText(id), "\n", "\r\n")
	cmd := c.Append("INBOX", int64(len(body)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write([]byte(body)); err != nil {
		t.Fatalf("APPEND %s: %v", id, err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("APPEND %s: %v", id, err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("APPEND %s: %v", id, err)
	}
}

// storeFlags sends UID STORE uids (+|-)FLAGS.SILENT (flags).
func storeFlags(t *testing.T, c *imapclient.Client, op imap.StoreFlagsOp, flags []imap.Flag, uids ...uint32) {
	t.Helper()
	var set imap.UIDSet
	for _, u := range uids {
		if u == 0 {
			t.Fatal("storeFlags: UID 0 (a Message-ID not in the mailbox?)")
		}
		set.AddNum(imap.UID(u))
	}
	if err := c.Store(set, &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close(); err != nil {
		t.Fatalf("UID STORE %v: %v", set, err)
	}
}
