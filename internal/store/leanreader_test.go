package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cistern-mail/cistern/internal/uidlist"
	"github.com/cistern-mail/cistern/maildir"
)

// appendRecordLine appends a record to dovecot-uidlist as another
// process (Dovecot) does.
func (f *fixture) appendRecordLine(uid uint32, base string) {
	f.t.Helper()
	fd, err := os.OpenFile(filepath.Join(f.dir, uidlist.FileName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	defer fd.Close()
	if _, err := fmt.Fprintf(fd, "%d :%s\n", uid, base); err != nil {
		f.t.Fatal(err)
	}
}

// TestSyncLetsGoOfUIDListRecords: once a sync has ended, the Mailbox
// keeps no record of the uidlist beside its state (the lean Reader,
// settled): the uidlist costs no memory per message.
func TestSyncLetsGoOfUIDListRecords(t *testing.T) {
	f := newFixture(t)
	for range 5 {
		f.put(maildir.Cur, "")
	}
	mb := f.open(Options{})
	defer mb.Close()
	sync1(t, mb)
	f.put(maildir.New, "")
	sync1(t, mb)
	mb.wmu.Lock()
	last := mb.lastFile
	mb.wmu.Unlock()
	if last == nil || len(last.Records) != 0 || last.Len() != 6 {
		t.Fatalf("the last uidlist holds %d records (Len %d), want none kept of 6", len(last.Records), last.Len())
	}
	fr, _, err := mb.reader.Refresh()
	if err != nil || fr != last {
		t.Fatalf("an unchanged uidlist is answered with %p (%v), want the settled %p", fr, err, last)
	}
}

// TestRecordReadBeforeIsFound: a record another process appended for a
// file that no listing had found yet, read by a sync and let go of, gives
// the file its UID when it appears: the base name gets no second UID.
func TestRecordReadBeforeIsFound(t *testing.T) {
	f := newFixture(t)
	f.put(maildir.Cur, "")
	mb := f.open(Options{})
	defer mb.Close()
	sync1(t, mb)
	const base = "1700009999.M1P1Q1.other,S=20,W=21"
	f.appendRecordLine(7, base)
	// A sync reads the record; the file is not there yet (Dovecot wrote
	// the record before a rename we have not seen). The sync must not
	// skip: new/ changes too.
	f.put(maildir.New, "")
	if ch := sync1(t, mb); len(ch.New) != 1 {
		t.Fatalf("sync found %+v, want one new message", ch.New)
	}
	if !mb.reader.MayHold(base) {
		t.Fatal("the record was not read")
	}
	if err := os.WriteFile(filepath.Join(f.dir, maildir.New, base), []byte("Subject: x\n\nbody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ch := sync1(t, mb) // Check: no base name twice in the uidlist
	if len(ch.New) != 1 || ch.New[0].Base != base || ch.New[0].UID != 7 {
		t.Fatalf("sync found %+v, want %s with UID 7 from its record", ch.New, base)
	}
}
