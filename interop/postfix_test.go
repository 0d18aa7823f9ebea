//go:build interop

package interop

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cistern-mail/cistern/internal/testfs"
	"github.com/cistern-mail/cistern/internal/testproc"
)

// The mail domain of the Postfix tests, and their users.
const (
	postfixDomain = "cistern.test"
	senderUser    = "sender" // sends every test message and gets the bounces
	userPassword  = "interop-secret"
)

// Bounds of the Postfix tests.
const (
	// postfixRunTimeout bounds a whole test: IMAP connections fail after
	// it, so that no command can hang.
	postfixRunTimeout = 4 * time.Minute
	// postfixDeliveryTimeout bounds the wait for Postfix to be done with
	// every message.
	postfixDeliveryTimeout = 2 * time.Minute
	// idleNewsTimeout bounds the wait for IDLE to report the last
	// delivery after Postfix logged it.
	idleNewsTimeout = 20 * time.Second
	// swaksWorkers is how many swaks run at once.
	swaksWorkers = 8
	// swaksTimeout bounds one swaks.
	swaksTimeout = 60 * time.Second
)

// postfixCase is one kind of message of TestPostfixDeliversToCistern: how
// many are sent, to whom, and where they must end up.
type postfixCase struct {
	name   string
	count  int
	rcpt   string // the envelope recipient
	size   int    // body bytes, roughly
	status string // Postfix's final status: sent or bounced
	reply  string // what Cistern's reply must contain
	user   string // the user whose Maildir gets it; "" for none
	folder string // the folder; "" for INBOX
}

var postfixCases = []postfixCase{
	{"inbox", 150, "alice@" + postfixDomain, 600, "sent", "250 2.0.0", "alice", ""},
	{"lists", 25, "alice+Lists@" + postfixDomain, 600, "sent", "250 2.0.0", "alice", "Lists"},
	{"nofolder", 10, "alice+Nonexistentfolder@" + postfixDomain, 600, "sent", "250 2.0.0", "alice", ""},
	{"unknown", 13, "nobody-here@" + postfixDomain, 600, "bounced", "550 5.1.1", "", ""},
	{"bob-fits", 1, "bob@" + postfixDomain, 600, "sent", "250 2.0.0", "bob", ""},
	{"bob-over-quota", 1, "bob@" + postfixDomain, 30 << 10, "bounced", "552 5.2.2", "", ""},
}

// bobQuota is bob's passwd-file quota rule: 20 KiB, which the small
// message fits in and the large one does not.
const bobQuota = "userdb_quota_rule=*:storage=20k"

// mailJob is one message to send through Postfix.
type mailJob struct {
	c  *postfixCase
	n  int    // its number within its case
	id string // Message-ID, with <>
}

// folderKey names a folder of a user.
type folderKey struct{ user, folder string }

func (k folderKey) String() string {
	if k.folder == "" {
		return k.user + "/INBOX"
	}
	return k.user + "/" + k.folder
}

// Postfix takes 200 messages over SMTP and hands them to Cistern over
// LMTP while a client IDLEs on the INBOX: every message Postfix calls
// delivered must be in the right folder exactly once with a UID, every
// message Cistern refused must have bounced with Cistern's reply and be
// in no Maildir, the bounces must reach the sender, and IDLE must have
// announced every INBOX delivery.
func TestPostfixDeliversToCistern(t *testing.T) {
	start := time.Now()
	deadline := runDeadline(t)
	cis := StartCistern(t, CisternOptions{Users: []CisternUser{
		{Name: "alice", Password: userPassword},
		{Name: "bob", Password: userPassword, Extra: []string{bobQuota}},
		{Name: senderUser, Password: userPassword},
	}})
	pf := StartPostfix(t, postfixDomain, cis.LMTPAddr())
	relay := lmtpRelay(cis)

	// alice's IDLE session, which also makes the folder Lists.
	var exists atomic.Uint32
	var existsResponses atomic.Int64
	idler := cis.Login("alice", userPassword, deadline, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists.Store(*d.NumMessages)
					existsResponses.Add(1)
				}
			},
		},
	})
	if err := idler.Create("Lists", nil).Wait(); err != nil {
		t.Fatalf("CREATE Lists: %v", err)
	}
	sel, err := idler.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT INBOX: %v", err)
	}
	if sel.NumMessages != 0 {
		t.Fatalf("alice's INBOX has %d messages before the test sent any", sel.NumMessages)
	}
	idle, err := idler.Idle()
	if err != nil {
		t.Fatalf("IDLE: %v", err)
	}

	var jobs []mailJob
	for i := range postfixCases {
		c := &postfixCases[i]
		for n := range c.count {
			jobs = append(jobs, mailJob{c: c, n: n, id: fmt.Sprintf("<postfix-%s-%03d@interop.%s>", c.name, n, postfixDomain)})
		}
	}
	// Mix the cases, the same way every run.
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	sendStart := time.Now()
	sendAll(t, pf.SMTPAddr(), jobs)
	sendTime := time.Since(sendStart)

	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.id
	}
	byID := waitPostfixDone(t, pf, ids, deliveryDeadline(deadline))
	doneTime := time.Since(sendStart)
	files := ParseMaillog(pf.Maillog())

	// What Postfix logged, message by message; and where each delivered
	// message must be.
	want := map[folderKey]map[string]bool{
		{"alice", ""}: {}, {"alice", "Lists"}: {}, {"bob", ""}: {}, {senderUser, ""}: {},
	}
	bounced, notices := 0, 0
	for _, j := range jobs {
		q := byID[j.id]
		if !checkAttempts(t, j.id, q, j.c.rcpt, relay, j.c.status, j.c.reply) {
			continue
		}
		if j.c.user != "" {
			want[folderKey{j.c.user, j.c.folder}][j.id] = true
		}
		if j.c.status != "bounced" {
			continue
		}
		bounced++
		// The sender must get Postfix's bounce, delivered by Cistern.
		var notice *QueueFile
		for _, f := range files {
			if f.NotificationOf == q.ID {
				if notice != nil {
					t.Errorf("%s (queue ID %s): two bounces, %s and %s", j.id, q.ID, notice.ID, f.ID)
				}
				notice = f
			}
		}
		if notice == nil {
			t.Errorf("%s (queue ID %s) bounced, but Postfix logged no bounce to the sender", j.id, q.ID)
			continue
		}
		if checkAttempts(t, "bounce of "+j.id, notice, senderUser+"@"+postfixDomain, relay, "sent", "250 2.0.0") {
			want[folderKey{senderUser, ""}][notice.MessageID] = true
			notices++
		}
	}

	// IDLE must have announced every INBOX delivery, without a NOOP.
	inboxWant := uint32(len(want[folderKey{"alice", ""}]))
	idleWait := time.Now().Add(idleNewsTimeout)
	for exists.Load() < inboxWant && time.Now().Before(idleWait) {
		time.Sleep(50 * time.Millisecond)
	}
	idleSaw := exists.Load()
	if err := idle.Close(); err != nil {
		t.Fatalf("IDLE DONE: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	if err := idler.Noop().Wait(); err != nil {
		t.Fatalf("NOOP: %v", err)
	}
	afterNoop := exists.Load()
	if idleSaw != inboxWant {
		t.Errorf("during IDLE the last EXISTS of alice's INBOX was %d, %v after Postfix was done; %d messages were delivered to it (after DONE and NOOP: %d)",
			idleSaw, idleNewsTimeout, inboxWant, afterNoop)
	}
	if afterNoop != inboxWant {
		t.Errorf("after IDLE, DONE and NOOP the last EXISTS of alice's INBOX was %d; %d messages were delivered to it", afterNoop, inboxWant)
	}
	if err := idler.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}

	// Every folder, over IMAP and on disk.
	for _, k := range slices.SortedFunc(maps.Keys(want), func(a, b folderKey) int { return strings.Compare(a.String(), b.String()) }) {
		checkIMAPFolder(t, cis, k, deadline, want[k])
	}
	for k, ids := range want {
		checkMaildirFolder(t, filepath.Join(cis.Maildir(k.user), maildirFolder(k.folder)), k.String(), ids)
	}
	checkNoFolder(t, cis.Maildir("alice"), "Nonexistentfolder")
	if _, err := os.Stat(filepath.Dir(cis.Maildir("nobody-here"))); !os.IsNotExist(err) {
		t.Errorf("mail directory of the unknown user nobody-here: %v, want it not to exist", err)
	}
	for _, u := range []string{"alice", "bob", senderUser} {
		checkTmpEmpty(t, cis.Maildir(u))
	}

	pf.Stop()
	cis.Stop()
	counts := make(map[string]int)
	for k, ids := range want {
		counts[k.String()] = len(ids)
	}
	t.Logf("Postfix took %d messages over SMTP in %v and was done with them after %v: delivered %d to alice/INBOX, %d to alice/Lists, %d to bob/INBOX; bounced %d on Cistern's refusal, %d bounces delivered to %s/INBOX; IDLE saw EXISTS %d in %d responses; whole test %v",
		len(jobs), sendTime.Round(time.Millisecond), doneTime.Round(time.Millisecond),
		counts["alice/INBOX"], counts["alice/Lists"], counts["bob/INBOX"],
		bounced, notices, senderUser, idleSaw, existsResponses.Load(), time.Since(start).Round(time.Millisecond))
}

// With lmtp.quota_full_tempfail, a message for a full mailbox is deferred
// (452 4.2.2), not bounced, and Postfix keeps retrying; once the user
// expunges enough over IMAP, the retry is delivered, exactly once.
func TestPostfixRetriesWhenQuotaFull(t *testing.T) {
	deadline := runDeadline(t)
	cis := StartCistern(t, CisternOptions{
		QuotaFullTempfail: true,
		Users: []CisternUser{
			{Name: "bob", Password: userPassword, Extra: []string{bobQuota}},
			{Name: senderUser, Password: userPassword},
		},
	})
	pf := StartPostfix(t, postfixDomain, cis.LMTPAddr())
	relay := lmtpRelay(cis)
	rcpt := "bob@" + postfixDomain
	// Each fits alone; both do not.
	fill := &postfixCase{name: "fill", count: 1, rcpt: rcpt, size: 12 << 10}
	later := &postfixCase{name: "later", count: 1, rcpt: rcpt, size: 12 << 10}
	fillJob := mailJob{c: fill, id: "<postfix-quota-fill@interop." + postfixDomain + ">"}
	laterJob := mailJob{c: later, id: "<postfix-quota-later@interop." + postfixDomain + ">"}

	sendAll(t, pf.SMTPAddr(), []mailJob{fillJob})
	byID := waitPostfixDone(t, pf, []string{fillJob.id}, deliveryDeadline(deadline))
	if !checkAttempts(t, fillJob.id, byID[fillJob.id], rcpt, relay, "sent", "250 2.0.0") {
		t.FailNow()
	}

	// The second is refused for now, and again on Postfix's retry.
	sendAll(t, pf.SMTPAddr(), []mailJob{laterJob})
	const wantDeferrals = 2
	waitMaillog(t, pf, deliveryDeadline(deadline),
		fmt.Sprintf("%d deferrals of %s", wantDeferrals, laterJob.id),
		func(files map[string]*QueueFile) (bool, string) {
			q := queueFileOf(files, laterJob.id)
			if q == nil {
				return false, "not yet in the maillog"
			}
			deferred := 0
			for _, a := range q.Attempts {
				if a.Status != "deferred" {
					t.Fatalf("%s: %s, want status=deferred while bob is over quota", laterJob.id, a.Line)
				}
				if a.Relay != relay || !strings.Contains(a.Reply, "452 4.2.2") {
					t.Fatalf("%s: %s, want a deferral by %s with 452 4.2.2", laterJob.id, a.Line, relay)
				}
				deferred++
			}
			return deferred >= wantDeferrals, fmt.Sprintf("%d deferrals", deferred)
		})
	bobInbox := filepath.Join(cis.Maildir("bob"), maildirFolder(""))
	checkMaildirFolder(t, bobInbox, "bob/INBOX while full", map[string]bool{fillJob.id: true})

	// bob makes room.
	c := cis.Login("bob", userPassword, deadline, nil)
	in := SelectInbox(t, c)
	fillMsg, ok := in.ByMessageID[fillJob.id]
	if !ok || len(in.Messages) != 1 {
		t.Fatalf("bob's INBOX over IMAP: %+v, want only %s", in.Messages, fillJob.id)
	}
	uids := imap.UIDSetNum(imap.UID(fillMsg.UID))
	if err := c.Store(uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatalf("UID STORE %d +FLAGS.SILENT (\\Deleted): %v", fillMsg.UID, err)
	}
	if err := c.UIDExpunge(uids).Close(); err != nil {
		t.Fatalf("UID EXPUNGE %d: %v", fillMsg.UID, err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}

	byID = waitPostfixDone(t, pf, []string{laterJob.id}, deliveryDeadline(deadline))
	q := byID[laterJob.id]
	final, _ := q.Final()
	if final.Status != "sent" || final.Relay != relay || !strings.Contains(final.Reply, "250 2.0.0") {
		t.Fatalf("%s after bob made room: %s, want status=sent by %s with 250 2.0.0", laterJob.id, final.Line, relay)
	}
	for _, f := range ParseMaillog(pf.Maillog()) {
		if f.NotificationOf != "" {
			t.Errorf("Postfix sent a notification (queue ID %s) for queue ID %s; a full mailbox with quota_full_tempfail must not bounce", f.ID, f.NotificationOf)
		}
	}
	c = cis.Login("bob", userPassword, deadline, nil)
	in = SelectInbox(t, c)
	laterMsg, ok := in.ByMessageID[laterJob.id]
	switch {
	case !ok || len(in.Messages) != 1:
		t.Errorf("bob's INBOX over IMAP: %+v, want only %s", in.Messages, laterJob.id)
	case laterMsg.UID <= fillMsg.UID:
		t.Errorf("%s got UID %d, not above the expunged UID %d", laterJob.id, laterMsg.UID, fillMsg.UID)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	checkMaildirFolder(t, bobInbox, "bob/INBOX", map[string]bool{laterJob.id: true})
	checkTmpEmpty(t, cis.Maildir("bob"))
	t.Logf("%s: deferred %d times with 452 4.2.2 while bob was full, delivered after an expunge", laterJob.id, len(q.Attempts)-1)
}

// runDeadline is when the test must be over: postfixRunTimeout from now,
// or earlier if go test's -timeout says so.
func runDeadline(t *testing.T) time.Time {
	d := time.Now().Add(postfixRunTimeout)
	if td, ok := t.Deadline(); ok {
		if td = td.Add(-10 * time.Second); td.Before(d) {
			d = td
		}
	}
	return d
}

// deliveryDeadline is postfixDeliveryTimeout from now, or runDeadline if
// that is earlier.
func deliveryDeadline(run time.Time) time.Time {
	if d := time.Now().Add(postfixDeliveryTimeout); d.Before(run) {
		return d
	}
	return run
}

// lmtpRelay is how Postfix logs the relay of a delivery to Cistern.
func lmtpRelay(c *Cistern) string {
	host, port, _ := strings.Cut(c.LMTPAddr(), ":")
	return fmt.Sprintf("%s[%s]:%s", host, host, port)
}

// sendAll sends the jobs to Postfix's smtpd with swaks, swaksWorkers at a
// time, from senderUser, and fails the test if any send fails.
func sendAll(t *testing.T, smtpAddr string, jobs []mailJob) {
	t.Helper()
	if _, err := exec.LookPath("swaks"); err != nil {
		t.Fatalf("swaks is not installed: %s", installHint)
	}
	work := make(chan mailJob)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range swaksWorkers {
		wg.Go(func() {
			for j := range work {
				if err := swaks(smtpAddr, j); err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d messages could not be sent; the first:\n%s", len(failures), len(jobs), failures[0])
	}
}

// swaks sends one message.
func swaks(smtpAddr string, j mailJob) error {
	ctx, cancel := context.WithTimeout(context.Background(), swaksTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "swaks",
		"--server", smtpAddr,
		"--timeout", "30",
		"--helo", "client."+postfixDomain,
		"--from", senderUser+"@"+postfixDomain,
		"--to", j.c.rcpt,
		// Replaces swaks's own Message-Id header (it matches the case).
		"--header", "Message-Id: "+j.id,
		"--header", fmt.Sprintf("Subject: Postfix interop %s %d", j.c.name, j.n),
		"--body", messageBody(j))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("swaks to %s, %s: %v\n%s", j.c.rcpt, j.id, err, testproc.LastLines(string(out), 15))
	}
	return nil
}

// messageBody is a body of lines of 72 characters, about j.c.size bytes.
func messageBody(j mailJob) string {
	var b strings.Builder
	for n := 0; b.Len() < j.c.size; n++ {
		fmt.Fprintf(&b, "%-71.71s\n", fmt.Sprintf("Line %d of %s, case %s of the Postfix interop test.", n, j.id, j.c.name))
	}
	return b.String()
}

// queueFileOf is the one queue file of the message with Message-ID id,
// nil if the maillog has none yet.
func queueFileOf(files map[string]*QueueFile, id string) *QueueFile {
	for _, f := range files {
		if f.MessageID == id {
			return f
		}
	}
	return nil
}

// waitMaillog polls Postfix's maillog until done says so, and fails the
// test at deadline with the last progress report of done.
func waitMaillog(t *testing.T, pf *Postfix, deadline time.Time, what string, done func(map[string]*QueueFile) (bool, string)) {
	t.Helper()
	start := time.Now()
	for {
		ok, progress := done(ParseMaillog(pf.Maillog()))
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up after %v: %s", what, time.Since(start).Round(time.Second), progress)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitPostfixDone waits until Postfix has removed the queue file of every
// message in ids and of every bounce it made for them, and returns the
// queue file of each message by Message-ID. A message ID in two queue
// files fails the test.
func waitPostfixDone(t *testing.T, pf *Postfix, ids []string, deadline time.Time) map[string]*QueueFile {
	t.Helper()
	var byID map[string]*QueueFile
	waitMaillog(t, pf, deadline, fmt.Sprintf("Postfix to be done with %d messages", len(ids)), func(files map[string]*QueueFile) (bool, string) {
		byID = make(map[string]*QueueFile, len(ids))
		for _, id := range ids {
			byID[id] = nil
		}
		for _, f := range files {
			prev, ours := byID[f.MessageID]
			if !ours {
				continue
			}
			if prev != nil {
				t.Fatalf("Message-ID %s in two queue files, %s and %s", f.MessageID, prev.ID, f.ID)
			}
			byID[f.MessageID] = f
		}
		var pending []string
		for _, id := range ids {
			q := byID[id]
			switch {
			case q == nil:
				pending = append(pending, id+" (not logged yet)")
			case !q.Removed:
				last := "no delivery attempt yet"
				if a, ok := q.Final(); ok {
					last = a.Line
				}
				pending = append(pending, fmt.Sprintf("%s (queue ID %s; last: %s)", id, q.ID, last))
			}
		}
		for _, f := range files {
			if parent := files[f.NotificationOf]; parent != nil && !f.Removed {
				if _, ours := byID[parent.MessageID]; ours {
					pending = append(pending, fmt.Sprintf("bounce %s of %s", f.ID, parent.MessageID))
				}
			}
		}
		if len(pending) == 0 {
			return true, ""
		}
		slices.Sort(pending)
		return false, fmt.Sprintf("%d of %d not done, e.g.:\n  %s", len(pending), len(ids), strings.Join(pending[:min(len(pending), 10)], "\n  "))
	})
	return byID
}

// checkAttempts checks that Postfix tried queue file q once, for rcpt, at
// relay (Cistern), with the final status want and a reply containing
// reply, and reports whether it did.
func checkAttempts(t *testing.T, what string, q *QueueFile, rcpt, relay, want, reply string) bool {
	t.Helper()
	if len(q.Attempts) != 1 {
		lines := make([]string, len(q.Attempts))
		for i, a := range q.Attempts {
			lines[i] = a.Line
		}
		t.Errorf("%s (queue ID %s): %d delivery attempts, want 1:\n%s", what, q.ID, len(q.Attempts), strings.Join(lines, "\n"))
		return false
	}
	a := q.Attempts[0]
	if a.To != rcpt || a.Relay != relay || a.Status != want || !strings.Contains(a.Reply, reply) {
		t.Errorf("%s: Postfix logged\n  %s\nwant to=<%s>, relay=%s, status=%s with %q", what, a.Line, rcpt, relay, want, reply)
		return false
	}
	return true
}

// maildirFolder is the Maildir++ directory of folder, relative to the
// user's Maildir root; "" for INBOX.
func maildirFolder(folder string) string {
	if folder == "" {
		return ""
	}
	return "." + folder
}

// checkIMAPFolder logs in as k's user and checks that the folder holds
// exactly the messages with the Message-IDs in want, each at one UID.
func checkIMAPFolder(t *testing.T, cis *Cistern, k folderKey, deadline time.Time, want map[string]bool) {
	t.Helper()
	c := cis.Login(k.user, userPassword, deadline, nil)
	name := k.folder
	if name == "" {
		name = "INBOX"
	}
	got := SelectMailbox(t, c, name)
	for id := range want {
		if _, ok := got.ByMessageID[id]; !ok {
			t.Errorf("%s over IMAP: %s is missing", k, id)
		}
	}
	for _, m := range got.Messages {
		if !want[m.MessageID] {
			t.Errorf("%s over IMAP: UID %d %s should not be there", k, m.UID, m.MessageID)
		}
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("%s: LOGOUT: %v", k, err)
	}
}

// checkMaildirFolder reads the messages in new/ and cur/ of the Maildir
// folder dir and checks that they are exactly those with the Message-IDs
// in want, each once.
func checkMaildirFolder(t *testing.T, dir, what string, want map[string]bool) {
	t.Helper()
	got, err := readMaildirIDs(dir)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	for id := range want {
		if len(got[id]) == 0 {
			t.Errorf("%s on disk: %s is missing", what, id)
		}
	}
	for id, files := range got {
		switch {
		case !want[id]:
			t.Errorf("%s on disk: %s should not be there (%s)", what, id, strings.Join(files, ", "))
		case len(files) > 1:
			t.Errorf("%s on disk: %s is there %d times: %s", what, id, len(files), strings.Join(files, ", "))
		}
	}
}

// readMaildirIDs returns the files of every message in new/ and cur/ of
// dir by Message-ID. new/ is read before cur/ and files are counted by
// base name, so that a message moving from new/ to cur/ meanwhile counts
// once; a file renamed between the listing and its reading makes the
// whole read start again, a bounded number of times.
func readMaildirIDs(dir string) (map[string][]string, error) {
	const tries = 5
	var err error
	for range tries {
		var ids map[string][]string
		if ids, err = readMaildirIDsOnce(dir); err == nil || !os.IsNotExist(err) {
			return ids, err
		}
	}
	return nil, fmt.Errorf("files kept vanishing while reading (%d tries): %w", tries, err)
}

func readMaildirIDsOnce(dir string) (map[string][]string, error) {
	ids := make(map[string][]string)
	seen := make(map[string]bool)
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			base, _, _ := strings.Cut(e.Name(), ":")
			if seen[base] {
				continue
			}
			seen[base] = true
			path := filepath.Join(dir, sub, e.Name())
			id, err := testfs.MessageID(path)
			if err != nil {
				return nil, err
			}
			ids[id] = append(ids[id], filepath.Join(sub, e.Name()))
		}
	}
	return ids, nil
}

// checkNoFolder fails the test if the Maildir root has a folder whose
// name contains name, in any case.
func checkNoFolder(t *testing.T, root, name string) {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Error(err)
		return
	}
	for _, e := range entries {
		if strings.Contains(strings.ToLower(e.Name()), strings.ToLower(name)) {
			t.Errorf("%s: folder %s exists; mail for a folder that does not exist must go to INBOX without making it", root, e.Name())
		}
	}
}

// checkTmpEmpty fails the test if tmp/ of the Maildir root, or of any
// Maildir++ folder below it, holds a file.
func checkTmpEmpty(t *testing.T, root string) {
	t.Helper()
	dirs := []string{root}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Error(err)
		return
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	for _, d := range dirs {
		tmp, err := os.ReadDir(filepath.Join(d, "tmp"))
		if err != nil {
			t.Errorf("%s: %v", d, err)
			continue
		}
		for _, e := range tmp {
			t.Errorf("%s: left in tmp/: %s", d, e.Name())
		}
	}
}
