package imaptorture

import (
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
