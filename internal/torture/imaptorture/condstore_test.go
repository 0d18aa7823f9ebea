package imaptorture

import (
	"strings"
	"testing"
	"time"
)

// TestCondStoreRules: the judge of a STORE UNCHANGEDSINCE reports what
// the MODSEQs told prove, and nothing for a message whose MODSEQs went
// down (Dovecot's head modseq, as seen against Dovecot 2.3.19.1: UID 251
// told MODSEQ 519 to one session, then 513 to another, which stored
// UNCHANGEDSINCE 513 and was not refused).
func TestCondStoreRules(t *testing.T) {
	type told struct {
		who    string // "a" (the storing session) or "b"
		modseq uint64
		at     time.Duration
		flags  []string
	}
	for _, tc := range []struct {
		name    string
		told    []told // before the STORE, sent at 10
		refused bool
		truth   modTold // told at 20
		other   bool    // another session's STORE of the UID ran meanwhile
		want    int
	}{
		{"Dovecot's head modseq, then the message's own", []told{{"b", 519, 1, nil}, {"a", 513, 2, nil}}, false, modTold{modseq: 1177, flags: `\seen`}, false, 0},
		{"changed since, and changed again", []told{{"a", 513, 1, nil}, {"b", 519, 2, nil}}, false, modTold{modseq: 1177, flags: `\seen`}, false, 1},
		{"unchanged since, and changed", []told{{"a", 513, 1, nil}}, false, modTold{modseq: 1177, flags: `\seen`}, false, 0},
		{"unchanged since, and refused", []told{{"a", 510, 1, nil}}, true, modTold{modseq: 510}, false, 1},
		{"refused, a MODSEQ above m told", []told{{"a", 510, 1, nil}, {"b", 515, 2, nil}}, true, modTold{modseq: 510}, false, 0},
		{"refused, and done as asked", []told{{"a", 520, 1, nil}}, true, modTold{modseq: 530, flags: `\seen`}, false, 1},
		{"refused, another STORE did it", []told{{"a", 520, 1, nil}}, true, modTold{modseq: 530, flags: `\seen`}, true, 0},
		{"refused, other flags", []told{{"a", 520, 1, nil}}, true, modTold{modseq: 530, flags: `\flagged`}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &run{rec: newRecorder(time.Now())}
			r.led = newLedger(r.rec, "test")
			a := &session{name: "a", r: r, validity: 7}
			b := &session{name: "b", r: r, validity: 7}
			const uid = 251
			r.led.byUID[uid] = "<m@test>"
			var last modTold
			for _, x := range tc.told {
				s := a
				if x.who == "b" {
					s = b
				}
				f := &FetchData{UID: uid, HasUID: true, Flags: x.flags, HasFlags: true, ModSeq: x.modseq, HasModSeq: true}
				s.modseqTold(uid, f, x.at, "")
				if x.who == "a" {
					last = modTold{at: x.at, modseq: x.modseq, flags: canonFlags(x.flags), hasFlags: true}
				}
			}
			self := r.led.flagWriting("a", "UID STORE", []uint32{uid}, false, 10)
			r.led.flagWritten(self, nil, 11)
			if tc.other {
				r.led.flagWritten(r.led.flagWriting("b", "UID STORE", []uint32{uid}, false, 12), nil, 13)
			}
			tc.truth.at, tc.truth.hasFlags = 20, true
			a.modseqTold(uid, &FetchData{UID: uid, HasUID: true, Flags: strings.Fields(tc.truth.flags), HasFlags: true, ModSeq: tc.truth.modseq, HasModSeq: true}, 20, "")
			c := condStore{line: "UID STORE 251 (UNCHANGEDSINCE 513) +FLAGS (\\Seen)", m: 513, item: "+FLAGS", flag: `\Seen`, self: self, beforeSent: 0, sent: 10, truthSent: 19}
			a.judgeCond(c, uid, tc.refused, last, []modTold{tc.truth})
			if got := r.rec.counts[UnchangedSinceWrong]; got != tc.want {
				t.Errorf("%d violations, want %d: %+v", got, tc.want, r.rec.examples)
			}
		})
	}
}
