package imap_test

import (
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Tests that drive the server with go-imap v2's client: an independent
// parser of everything the server says.

// dialClient logs in as user with go-imap's client; h, if not nil,
// receives unilateral data.
func dialClient(t *testing.T, ts *testServer, user string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	// go-imap's client waits forever; the deadline turns a server that
	// does not answer into a failure.
	nc.SetDeadline(time.Now().Add(time.Minute))
	var debug io.Writer
	if os.Getenv("IMAPDEBUG") != "" {
		debug = os.Stderr
	}
	c := imapclient.New(nc, &imapclient.Options{UnilateralDataHandler: h, DebugWriter: debug})
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, "secret").Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	return c
}

func appendMsg(t *testing.T, c *imapclient.Client, mailbox, msg string, opts *imap.AppendOptions) *imap.AppendData {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(msg)), opts)
	if _, err := cmd.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	return data
}

func flagStrings(fs []imap.Flag) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	slices.Sort(out)
	return out
}

// wantFlags compares flags without \Recent, which is the session's own
// (recent_test.go).
func wantFlags(t *testing.T, what string, got []imap.Flag, want ...string) {
	t.Helper()
	slices.Sort(want)
	g := slices.DeleteFunc(flagStrings(got), func(f string) bool { return f == `\Recent` })
	if !slices.Equal(g, want) {
		t.Errorf("%s: flags %q, want %q", what, g, want)
	}
}

func TestClientMailboxes(t *testing.T) {
	ts := startServer(t)
	c := dialClient(t, ts, "alice", nil)

	for _, name := range []string{"Lists", "Lists.Go", "Old"} {
		if err := c.Create(name, nil).Wait(); err != nil {
			t.Fatalf("CREATE %s: %v", name, err)
		}
	}
	if err := c.Create("Old", nil).Wait(); err == nil || !strings.Contains(err.Error(), "ALREADYEXISTS") {
		t.Errorf("CREATE of an existing mailbox: %v", err)
	}
	if err := c.Rename("Old", "Archive2", nil).Wait(); err != nil {
		t.Fatalf("RENAME: %v", err)
	}
	if err := c.Delete("Lists.Go").Wait(); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	if err := c.Delete("Nowhere").Wait(); err == nil || !strings.Contains(err.Error(), "NONEXISTENT") {
		t.Errorf("DELETE of a missing mailbox: %v", err)
	}
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Errorf("DELETE INBOX succeeded")
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]*imap.ListData{}
	for _, l := range list {
		names[l.Mailbox] = l
		if l.Delim != '.' {
			t.Errorf("%s: delimiter %q", l.Mailbox, l.Delim)
		}
	}
	for _, want := range []string{"INBOX", "Lists", "Archive2"} {
		if names[want] == nil {
			t.Errorf("LIST lacks %s: %v", want, list)
		}
	}
	for _, gone := range []string{"Old", "Lists.Go"} {
		if names[gone] != nil {
			t.Errorf("LIST still has %s", gone)
		}
	}
	if l := names["Lists"]; l != nil && !slices.Contains(l.Attrs, imap.MailboxAttrHasNoChildren) {
		t.Errorf("Lists after deleting its child: %v", l.Attrs)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
}

const multipartMsg = "From: Bob <bob@example.org>\r\n" +
	"To: Alice <alice@example.org>\r\n" +
	"Subject: Quarterly report\r\n" +
	"Date: Tue, 03 Jan 2006 10:00:00 +0000\r\n" +
	"Message-ID: <report@example.org>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n" +
	"\r\n" +
	"--XYZ\r\n" +
	"Content-Type: text/plain; charset=us-ascii\r\n" +
	"\r\n" +
	"The numbers are fine.\r\n" +
	"--XYZ\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"AAECAw==\r\n" +
	"--XYZ--\r\n"

func TestClientAppendFetch(t *testing.T) {
	ts := startServer(t)
	c := dialClient(t, ts, "alice", nil)

	date := time.Date(2020, 5, 17, 8, 30, 0, 0, time.UTC)
	app := appendMsg(t, c, "INBOX", multipartMsg, &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged, "$Report"}, Time: date})
	if app.UID == 0 || app.UIDValidity == 0 {
		t.Fatalf("APPEND: no APPENDUID: %+v", app)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 1 || sel.UIDValidity != app.UIDValidity || sel.UIDNext <= app.UID {
		t.Fatalf("SELECT: %+v after APPENDUID %+v", sel, app)
	}
	if !slices.Contains(sel.PermanentFlags, "$Report") || !slices.Contains(sel.Flags, "$Report") {
		t.Errorf("keyword missing from FLAGS %v / PERMANENTFLAGS %v", sel.Flags, sel.PermanentFlags)
	}

	whole := &imap.FetchItemBodySection{Peek: true}
	header := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
	part1 := &imap.FetchItemBodySection{Part: []int{1}, Peek: true}
	partial := &imap.FetchItemBodySection{Partial: &imap.SectionPartial{Offset: 0, Size: 10}, Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(app.UID), &imap.FetchOptions{
		Flags: true, UID: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{whole, header, part1, partial},
	}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("FETCH: %d messages", len(msgs))
	}
	m := msgs[0]
	if m.UID != app.UID || m.SeqNum != 1 {
		t.Errorf("UID %d seq %d, want UID %d (APPENDUID)", m.UID, m.SeqNum, app.UID)
	}
	wantFlags(t, "appended", m.Flags, `\Flagged`, "$Report")
	if !m.InternalDate.Equal(date) {
		t.Errorf("INTERNALDATE %v, want %v", m.InternalDate, date)
	}
	if m.RFC822Size != int64(len(multipartMsg)) {
		t.Errorf("RFC822.SIZE %d, want %d", m.RFC822Size, len(multipartMsg))
	}
	env := m.Envelope
	if env == nil || env.Subject != "Quarterly report" || env.MessageID != "report@example.org" ||
		len(env.From) != 1 || env.From[0].Addr() != "bob@example.org" || env.From[0].Name != "Bob" ||
		len(env.To) != 1 || env.To[0].Addr() != "alice@example.org" {
		t.Errorf("ENVELOPE %+v", env)
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || !strings.EqualFold(mp.Subtype, "mixed") || len(mp.Children) != 2 {
		t.Fatalf("BODYSTRUCTURE %#v", m.BodyStructure)
	}
	if sp, ok := mp.Children[0].(*imap.BodyStructureSinglePart); !ok || !strings.EqualFold(sp.Type, "text") || !strings.EqualFold(sp.Subtype, "plain") {
		t.Errorf("part 1: %#v", mp.Children[0])
	}
	if sp, ok := mp.Children[1].(*imap.BodyStructureSinglePart); !ok || !strings.EqualFold(sp.Encoding, "base64") || sp.Size != 8 {
		t.Errorf("part 2: %#v", mp.Children[1])
	}
	if got := m.FindBodySection(whole); string(got) != multipartMsg {
		t.Errorf("BODY[]: %q", got)
	}
	if got := string(m.FindBodySection(header)); !strings.HasPrefix(got, "From: Bob") || !strings.HasSuffix(got, "\r\n\r\n") || strings.Contains(got, "--XYZ") {
		t.Errorf("BODY[HEADER]: %q", got)
	}
	if got := string(m.FindBodySection(part1)); got != "The numbers are fine." {
		t.Errorf("BODY[1]: %q", got)
	}
	if got := string(m.FindBodySection(partial)); got != multipartMsg[:10] {
		t.Errorf("BODY[]<0.10>: %q", got)
	}

	// PEEK left \Seen alone; BODY[1] without it sets \Seen and reports it.
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Part: []int{1}}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	wantFlags(t, "after BODY[1]", msgs[0].Flags, `\Flagged`, `\Seen`, "$Report")
}

func TestClientStoreKeywords(t *testing.T) {
	ts := startServer(t)
	c := dialClient(t, ts, "alice", nil)
	for i := 0; i < 3; i++ {
		appendMsg(t, c, "INBOX", testMessage("m"+string(rune('0'+i)), "x"), nil)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	store := func(set imap.NumSet, op imap.StoreFlagsOp, silent bool, flags ...imap.Flag) []*imapclient.FetchMessageBuffer {
		t.Helper()
		msgs, err := c.Store(set, &imap.StoreFlags{Op: op, Silent: silent, Flags: flags}, nil).Collect()
		if err != nil {
			t.Fatalf("STORE: %v", err)
		}
		return msgs
	}
	msgs := store(imap.SeqSetNum(1, 2), imap.StoreFlagsAdd, false, imap.FlagSeen, imap.FlagAnswered)
	if len(msgs) != 2 {
		t.Fatalf("+FLAGS reported %d messages", len(msgs))
	}
	for _, m := range msgs {
		wantFlags(t, "+FLAGS", m.Flags, `\Seen`, `\Answered`)
	}
	msgs = store(imap.SeqSetNum(1), imap.StoreFlagsDel, false, imap.FlagAnswered)
	if len(msgs) != 1 {
		t.Fatalf("-FLAGS reported %d messages", len(msgs))
	}
	wantFlags(t, "-FLAGS", msgs[0].Flags, `\Seen`)
	if msgs := store(imap.SeqSetNum(3), imap.StoreFlagsSet, true, imap.FlagDraft, "Project-X"); len(msgs) != 0 {
		t.Errorf("FLAGS.SILENT answered %d FETCHes", len(msgs))
	}
	// +FLAGS must keep the keyword (mbsync changes flags this way).
	store(imap.SeqSetNum(3), imap.StoreFlagsAdd, true, imap.FlagFlagged)
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	wantFlags(t, "1", msgs[0].Flags, `\Seen`)
	wantFlags(t, "2", msgs[1].Flags, `\Seen`, `\Answered`)
	wantFlags(t, "3", msgs[2].Flags, `\Draft`, `\Flagged`, "Project-X")

	// The new keyword is announced by the next SELECT.
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(sel.Flags, "Project-X") || !slices.Contains(sel.PermanentFlags, "Project-X") || !slices.Contains(sel.PermanentFlags, imap.FlagWildcard) {
		t.Errorf("re-SELECT: FLAGS %v PERMANENTFLAGS %v", sel.Flags, sel.PermanentFlags)
	}

	// EXAMINE is read-only: STORE fails, BODY[] does not set \Seen.
	sel, err = c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.PermanentFlags) != 0 {
		t.Errorf("EXAMINE: PERMANENTFLAGS %v", sel.PermanentFlags)
	}
	if _, err := c.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); err == nil {
		t.Errorf("STORE in a read-only mailbox succeeded")
	}
	if _, err := c.Fetch(imap.SeqSetNum(3), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Expunge().Collect(); err == nil {
		t.Errorf("EXPUNGE in a read-only mailbox succeeded")
	}
	msgs, err = c.Fetch(imap.SeqSetNum(3), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	wantFlags(t, "after BODY[] in EXAMINE", msgs[0].Flags, `\Draft`, `\Flagged`, "Project-X")
}

func TestClientCopyMoveExpunge(t *testing.T) {
	ts := startServer(t)
	var mu sync.Mutex
	var expunged []uint32
	c := dialClient(t, ts, "alice", &imapclient.UnilateralDataHandler{Expunge: func(seq uint32) {
		mu.Lock()
		expunged = append(expunged, seq)
		mu.Unlock()
	}})
	takeExpunged := func() []uint32 {
		mu.Lock()
		defer mu.Unlock()
		out := expunged
		expunged = nil
		return out
	}
	if err := c.Create("Dest", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	var uids []imap.UID
	for i := 0; i < 6; i++ {
		uids = append(uids, appendMsg(t, c, "INBOX", testMessage("copy "+string(rune('a'+i)), "body"), &imap.AppendOptions{Flags: []imap.Flag{"Kw1"}}).UID)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	cp, err := c.Copy(imap.UIDSetNum(uids[0], uids[1]), "Dest").Wait()
	if err != nil {
		t.Fatalf("COPY: %v", err)
	}
	if src, _ := cp.SourceUIDs.Nums(); !slices.Equal(src, uids[:2]) {
		t.Errorf("COPYUID source %v, want %v", cp.SourceUIDs, uids[:2])
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "Nowhere").Wait(); err == nil || !strings.Contains(err.Error(), "TRYCREATE") {
		t.Errorf("COPY to a missing mailbox: %v", err)
	}

	mv, err := c.Move(imap.SeqSetNum(3), "Dest").Wait()
	if err != nil {
		t.Fatalf("MOVE: %v", err)
	}
	if src, _ := mv.SourceUIDs.(imap.UIDSet).Nums(); !slices.Equal(src, []imap.UID{uids[2]}) {
		t.Errorf("MOVE COPYUID source %v", mv.SourceUIDs)
	}
	if got := takeExpunged(); !slices.Equal(got, []uint32{3}) {
		t.Errorf("MOVE expunged %v, want [3]", got)
	}

	// The copies are in Dest under the UIDs COPYUID named, with their
	// flags and keyword. (go-imap's UIDSet does not keep the order of
	// the set; the pairing itself is checked by TestCopyUIDPairs.)
	dest := dialClient(t, ts, "alice", nil)
	if _, err := dest.Select("Dest", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	dstUIDs, _ := cp.DestUIDs.Nums()
	mvUIDs, _ := mv.DestUIDs.(imap.UIDSet).Nums()
	all := append(dstUIDs, mvUIDs...)
	msgs, err := dest.Fetch(imap.UIDSetNum(all...), &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("Dest has %d of the 3 copied UIDs %v", len(msgs), all)
	}
	var subjects []string
	for _, m := range msgs {
		subjects = append(subjects, m.Envelope.Subject)
		wantFlags(t, "copied", m.Flags, "Kw1")
	}
	slices.Sort(subjects)
	if want := []string{"copy a", "copy b", "copy c"}; !slices.Equal(subjects, want) {
		t.Errorf("Dest holds %q, want %q", subjects, want)
	}
	if m := msgs[len(msgs)-1]; m.UID != mvUIDs[0] || m.Envelope.Subject != "copy c" {
		t.Errorf("moved message: UID %d %q, COPYUID said %d", m.UID, m.Envelope.Subject, mvUIDs[0])
	}

	// INBOX now: uids 0 1 3 4 5. EXPUNGE and UID EXPUNGE.
	if _, err := c.Store(imap.SeqSetNum(1, 3, 4), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	got, err := c.UIDExpunge(imap.UIDSetNum(uids[3])).Collect()
	if err != nil {
		t.Fatalf("UID EXPUNGE: %v", err)
	}
	if !slices.Equal(got, []uint32{3}) {
		t.Errorf("UID EXPUNGE: %v, want [3]", got)
	}
	got, err = c.Expunge().Collect()
	if err != nil {
		t.Fatalf("EXPUNGE: %v", err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []uint32{1, 3}) && !slices.Equal(got, []uint32{1, 2}) {
		t.Errorf("EXPUNGE: %v", got)
	}
	msgs, err = c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{UID: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].UID != uids[1] || msgs[1].UID != uids[5] {
		t.Errorf("left after EXPUNGE: %v", msgs)
	}

	// UNSELECT keeps \Deleted messages; CLOSE expunges them silently.
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	takeExpunged()
	if err := c.Unselect().Wait(); err != nil {
		t.Fatalf("UNSELECT: %v", err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumDeleted: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 2 || *st.NumDeleted != 1 {
		t.Errorf("after UNSELECT: %d messages, %d deleted", *st.NumMessages, *st.NumDeleted)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Fatalf("CLOSE: %v", err)
	}
	if got := takeExpunged(); len(got) != 0 {
		t.Errorf("CLOSE sent EXPUNGE %v", got)
	}
	st, err = c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumDeleted: true, UIDNext: true, UIDValidity: true, NumUnseen: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 1 || *st.NumDeleted != 0 || *st.NumUnseen != 1 || st.UIDNext <= uids[5] || st.UIDValidity == 0 {
		t.Errorf("after CLOSE: %+v", st)
	}
}

func TestClientSearch(t *testing.T) {
	ts := startServer(t)
	c := dialClient(t, ts, "alice", nil)
	day := func(d int) time.Time { return time.Date(2021, 3, d, 12, 0, 0, 0, time.UTC) }
	msgs := []struct {
		subject, body string
		flags         []imap.Flag
		date          time.Time
	}{
		{"alpha apples", "red fruit", []imap.Flag{imap.FlagSeen}, day(1)},
		{"beta bananas", "yellow fruit", []imap.Flag{imap.FlagFlagged}, day(5)},
		{"gamma grapes", "purple FRUIT", []imap.Flag{imap.FlagSeen, imap.FlagFlagged}, day(10)},
		{"delta dates", "brown", nil, day(15)},
	}
	var uids []imap.UID
	for _, m := range msgs {
		uids = append(uids, appendMsg(t, c, "INBOX", testMessage(m.subject, m.body), &imap.AppendOptions{Flags: m.flags, Time: m.date}).UID)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		crit imap.SearchCriteria
		want []uint32
	}{
		{"seen", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, []uint32{1, 3}},
		{"unseen", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, []uint32{2, 4}},
		{"seen flagged", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen, imap.FlagFlagged}}, []uint32{3}},
		{"seq set", imap.SearchCriteria{SeqNum: []imap.SeqSet{imap.SeqSetNum(2, 3, 4)}}, []uint32{2, 3, 4}},
		{"uid set", imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(uids[0], uids[3])}}, []uint32{1, 4}},
		{"subject", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "GRAPES"}}}, []uint32{3}},
		{"body", imap.SearchCriteria{Body: []string{"fruit"}}, []uint32{1, 2, 3}},
		{"text", imap.SearchCriteria{Text: []string{"dates"}}, []uint32{4}},
		{"since", imap.SearchCriteria{Since: day(5)}, []uint32{2, 3, 4}},
		{"before", imap.SearchCriteria{Before: day(10)}, []uint32{1, 2}},
		{"since before", imap.SearchCriteria{Since: day(5), Before: day(15)}, []uint32{2, 3}},
		{"sent before", imap.SearchCriteria{SentBefore: time.Date(2006, 1, 3, 0, 0, 0, 0, time.UTC)}, []uint32{1, 2, 3, 4}},
		{"not", imap.SearchCriteria{Not: []imap.SearchCriteria{{Body: []string{"fruit"}}}}, []uint32{4}},
		{"or", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "alpha"}}}, {Flag: []imap.Flag{imap.FlagFlagged}}}}}, []uint32{1, 2, 3}},
		{"not or", imap.SearchCriteria{Not: []imap.SearchCriteria{{Or: [][2]imap.SearchCriteria{{{Flag: []imap.Flag{imap.FlagSeen}}, {Flag: []imap.Flag{imap.FlagFlagged}}}}}}}, []uint32{4}},
		{"none", imap.SearchCriteria{Text: []string{"kiwi"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := c.Search(&tt.crit, nil).Wait()
			if err != nil {
				t.Fatalf("SEARCH: %v", err)
			}
			if got := data.AllSeqNums(); !slices.Equal(got, tt.want) {
				t.Errorf("SEARCH: %v, want %v", got, tt.want)
			}
			udata, err := c.UIDSearch(&tt.crit, nil).Wait()
			if err != nil {
				t.Fatalf("UID SEARCH: %v", err)
			}
			var want []imap.UID
			for _, s := range tt.want {
				want = append(want, uids[s-1])
			}
			if got := udata.AllUIDs(); !slices.Equal(got, want) {
				t.Errorf("UID SEARCH: %v, want %v", got, want)
			}
		})
	}
}

func TestClientIdle(t *testing.T) {
	ts := startServer(t)
	events := make(chan string, 16)
	c := dialClient(t, ts, "alice", &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				events <- "exists"
			}
		},
		Expunge: func(seq uint32) { events <- "expunge" },
		Fetch:   func(m *imapclient.FetchMessageData) { events <- "fetch" },
	})
	other := dialClient(t, ts, "alice", nil)
	appendMsg(t, other, "INBOX", testMessage("first", "x"), nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	wait := func(want string) {
		t.Helper()
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("during IDLE: %s, want %s", got, want)
			}
		case <-time.After(readTimeout):
			t.Fatalf("during IDLE: no %s", want)
		}
	}
	appendMsg(t, other, "INBOX", testMessage("second", "y"), nil)
	wait("exists")
	if _, err := other.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	wait("fetch")
	if _, err := other.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	wait("expunge")
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != "second" {
		t.Fatalf("after IDLE: %v %v", msgs, err)
	}
}
