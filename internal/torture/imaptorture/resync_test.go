package imaptorture

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestModseqRules: a change of a message needs a higher MODSEQ, in one
// selection and across sessions; a lower MODSEQ with the same flags (as
// Dovecot shows before its index tracks modseqs) is no change;
// HIGHESTMODSEQ never goes down.
func TestModseqRules(t *testing.T) {
	start := time.Now()
	r := &run{rec: newRecorder(start)}
	count := func() int {
		r.rec.mu.Lock()
		defer r.rec.mu.Unlock()
		return r.rec.counts[ModseqRegressed]
	}
	a := &session{name: "a", r: r, validity: 7}
	b := &session{name: "b", r: r, validity: 7}
	fetch := func(s *session, uid uint32, modseq uint64, at time.Duration, flags ...string) {
		s.modseqTold(uid, &FetchData{UID: uid, HasUID: true, Flags: flags, HasFlags: true, ModSeq: modseq, HasModSeq: true}, at, "")
	}
	step := func(what string, want int, f func()) {
		t.Helper()
		before := count()
		f()
		if got := count() - before; got != want {
			t.Errorf("%s: %d violations, want %d", what, got, want)
		}
	}
	step("the first MODSEQ", 0, func() { fetch(a, 335, 530, 1, `\Answered`, `\Draft`) })
	step("lower, same flags (Dovecot's head modseq, then the message's own)", 0, func() { fetch(a, 335, 529, 2, `\Draft`, `\Answered`) })
	step("higher, other flags", 0, func() { fetch(a, 335, 531, 3, `\Seen`) })
	step("the same MODSEQ, other flags", 1, func() { fetch(a, 335, 531, 4, `\Flagged`) })
	step("lower, other flags", 1, func() { fetch(a, 335, 500, 5) })
	step("another session lags: not judged", 0, func() { fetch(b, 335, 400, 6, `\Answered`) })

	b.cur.resync = &resyncNews{selectSent: 10, truth: make(map[uint32]modTold)}
	step("after SELECT, the flags of MODSEQ 531 at a lower MODSEQ", 0, func() { fetch(b, 335, 520, 11, `\Seen`) })
	b.sel.modseqs = nil
	step("after SELECT, other flags than at MODSEQ 531, not above it", 1, func() { fetch(b, 335, 531, 12, `\Deleted`) })
	b.sel.modseqs = nil
	step("after SELECT, other flags above it", 0, func() { fetch(b, 335, 532, 13, `\Deleted`) })
	b.cur.resync = nil

	highest := func(s *session, v string, selectSent time.Duration) {
		s.cur = curCmd{selectCmd: selectSent > 0, sent: selectSent}
		s.highestTold(&Response{Type: "OK", Code: "HIGHESTMODSEQ", CodeArgs: []string{v}}, selectSent+1)
	}
	step("HIGHESTMODSEQ", 0, func() { highest(a, "540", 20) })
	step("HIGHESTMODSEQ lower, outside SELECT", 0, func() { highest(b, "530", 0) })
	step("HIGHESTMODSEQ lower in a SELECT sent after", 1, func() { highest(b, "539", 30) })
	step("HIGHESTMODSEQ as high", 0, func() { highest(b, "540", 40) })
}

// TestResyncJudge: the old model brought up to date by what a resync
// reported must be the truth for every message not changed after the
// resync's HIGHESTMODSEQ; a message of the model gone must have been
// reported VANISHED (EARLIER), or told expunged from the new selection
// (a VANISHED during the resync's own UID FETCH, after its SELECT).
func TestResyncJudge(t *testing.T) {
	r := &run{rec: newRecorder(time.Now()), ctx: context.Background()}
	r.led = newLedger(r.rec, "test")
	a := &resyncActor{session: &session{name: "resync-1", r: r, validity: 7}}
	s := a.session
	vanished := func(line string) {
		t.Helper()
		rs := readAll(t, []byte(line+"\r\n"))
		if err := s.onUntagged(rs[0], time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	old := map[uint32]string{1: "", 2: `\seen`, 3: "", 4: "", 5: `\flagged`, 6: ""}
	truth := func() map[uint32]modTold {
		return map[uint32]modTold{
			2: {modseq: 10, flags: `\seen`, hasFlags: true},     // unchanged
			5: {modseq: 12, flags: `\answered`, hasFlags: true}, // changed, reported
			6: {modseq: 90, flags: `\deleted`, hasFlags: true},  // changed after the resync
		}
	}
	for _, tc := range []struct {
		name  string
		lines []string // responses during the resync, after its SELECT (EXISTS 5)
		// reported are the flags the resync reported
		reported map[uint32]string
		want     int
	}{
		{"everything reported", []string{"* VANISHED (EARLIER) 1,3:4,100:200", "* VANISHED 4"}, map[uint32]string{5: `\answered`}, 0},
		{"an expunge after the SELECT, told as VANISHED", []string{"* VANISHED (EARLIER) 1,3", "* VANISHED 4"}, map[uint32]string{5: `\answered`}, 0},
		{"an expunge after the SELECT of a message not learned, told as VANISHED", []string{"* VANISHED (EARLIER) 1,3", "* VANISHED 4"}, map[uint32]string{5: `\answered`}, 0},
		{"an expunge not reported", []string{"* VANISHED (EARLIER) 1,3"}, map[uint32]string{5: `\answered`}, 1},
		{"a change not reported", []string{"* VANISHED (EARLIER) 1,3:4"}, nil, 1},
		{"a change reported wrong", []string{"* VANISHED (EARLIER) 1,3:4"}, map[uint32]string{5: `\seen`}, 1},
		{"a message reported gone that is there", []string{"* VANISHED (EARLIER) 1:4"}, map[uint32]string{5: `\answered`}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.rec.mu.Lock()
			before := r.rec.counts[ResyncMissed] + r.rec.counts[PhantomExpunge]
			r.rec.mu.Unlock()
			news := newResyncNews()
			s.v.reset(0)
			s.v.uids = []uint32{2, 3, 4, 5, 6}
			if strings.Contains(tc.name, "not learned") {
				s.v.uids[2] = 0 // UID 4's FETCH never came
			}
			s.cur = curCmd{resync: news}
			for _, l := range tc.lines {
				vanished(l)
			}
			for u, f := range tc.reported {
				news.reported[u] = f
			}
			news.truth = truth()
			a.judge("test", old, 5, 50, news)
			r.rec.mu.Lock()
			got := r.rec.counts[ResyncMissed] + r.rec.counts[PhantomExpunge] - before
			r.rec.mu.Unlock()
			if got != tc.want {
				t.Errorf("%d violations, want %d", got, tc.want)
			}
		})
	}
}
