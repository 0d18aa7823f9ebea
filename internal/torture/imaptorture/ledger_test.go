package imaptorture

import (
	"testing"
	"time"
)

// TestRemovedBefore: what counts as an actor's removal of a message, and
// from when.
func TestRemovedBefore(t *testing.T) {
	s := time.Second
	type event func(l *ledger)
	mark := func(at time.Duration, uids ...uint32) event {
		return func(l *ledger) { l.markDeleted(uids, at) }
	}
	expunge := func(sent, done time.Duration, uids ...uint32) event {
		return func(l *ledger) {
			e := l.expungeSent(uids, sent)
			if done > 0 {
				l.expungeDone(e, done)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		events []event
		at     time.Duration
		want   bool
	}{
		{"nothing", nil, 10 * s, false},
		{"foreign deletion before", []event{func(l *ledger) { l.foreignDeleted("<m>", 2*s) }}, 3 * s, true},
		{"foreign deletion after", []event{func(l *ledger) { l.foreignDeleted("<m>", 4*s) }}, 3 * s, false},
		{"move before", []event{func(l *ledger) { l.moveSent([]uint32{7}, 2*s) }}, 3 * s, true},
		{"move of another UID", []event{func(l *ledger) { l.moveSent([]uint32{8}, 2*s) }}, 3 * s, false},
		{"deleted, then EXPUNGE", []event{mark(1*s, 7), expunge(2*s, 3*s)}, 4 * s, true},
		{"deleted, EXPUNGE running", []event{mark(1*s, 7), expunge(2*s, 0)}, 4 * s, true},
		{"EXPUNGE done before the mark", []event{expunge(1*s, 2*s), mark(3*s, 7)}, 4 * s, false},
		{"mark and EXPUNGE after the report", []event{mark(5*s, 7), expunge(6*s, 7*s)}, 4 * s, false},
		{"deleted, no EXPUNGE", []event{mark(1*s, 7)}, 4 * s, false},
		{"deleted, UID EXPUNGE of it", []event{mark(1*s, 7), expunge(2*s, 3*s, 7)}, 4 * s, true},
		{"deleted, UID EXPUNGE of others", []event{mark(1*s, 7), expunge(2*s, 3*s, 8, 9)}, 4 * s, false},
		{"another UID deleted, then EXPUNGE", []event{mark(1*s, 8), expunge(2*s, 3*s)}, 4 * s, false},
		{"foreign T, then EXPUNGE", []event{func(l *ledger) { l.foreignMarkDeleted("<m>", 1*s) }, expunge(2*s, 3*s)}, 4 * s, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLedger(newRecorder(time.Now()), "test")
			for _, e := range tc.events {
				e(l)
			}
			m := &message{id: "<m>", uids: []uint32{7}, ours: true}
			got := l.newCauses().removedBefore(m, m.uids, tc.at)
			if (got != "") != tc.want {
				t.Errorf("removedBefore = %q, want a cause: %t", got, tc.want)
			}
		})
	}
}

// TestLearn: the ledger's verdicts on the UIDs a message is seen under.
func TestLearn(t *testing.T) {
	s := time.Second
	newRun := func() (*run, *session) {
		rec := newRecorder(time.Now())
		r := &run{rec: rec, led: newLedger(rec, "test")}
		return r, &session{name: "imap-1", r: r}
	}
	for _, tc := range []struct {
		name string
		do   func(r *run, s *session)
		want Kind // "" for none
	}{
		{"same UID twice", func(r *run, se *session) {
			r.led.learn("<a>", 5, 1*s, se, "x")
			r.led.learn("<a>", 5, 2*s, se, "y")
		}, ""},
		{"one UID, two messages", func(r *run, se *session) {
			r.led.learn("<a>", 5, 1*s, se, "x")
			r.led.learn("<b>", 5, 2*s, se, "y")
		}, UIDChange},
		{"back under a new UID", func(r *run, se *session) {
			r.led.learn("<a>", 5, 1*s, se, "x")
			r.led.learn("<a>", 9, 2*s, se, "y")
		}, UIDChange},
		{"visible twice", func(r *run, se *session) {
			se.v.reset(2)
			se.v.uids[0], se.v.uids[1] = 5, 9
			r.led.learn("<a>", 5, 1*s, se, "x")
			r.led.learn("<a>", 9, 2*s, se, "y")
		}, Duplicate},
		{"APPENDUID, then another UID", func(r *run, se *session) {
			r.led.created("<a>", "APPEND", 1*s)
			r.led.acked("<a>", 5, 2*s, se)
			r.led.learn("<a>", 6, 3*s, se, "y")
		}, UIDChange},
		{"new message under an old UID", func(r *run, se *session) {
			r.led.sawUID(40, 1*s)
			r.led.created("<a>", "LMTP", 2*s)
			r.led.learn("<a>", 30, 3*s, se, "y")
		}, UIDOrder},
		{"new message above the old UIDs", func(r *run, se *session) {
			r.led.sawUID(40, 1*s)
			r.led.created("<a>", "LMTP", 2*s)
			r.led.learn("<a>", 41, 3*s, se, "y")
		}, ""},
		{"UIDNEXT at or below a UID seen", func(r *run, se *session) {
			r.led.sawUID(40, 1*s)
			r.led.uidNextIs(40, 2*s, 3*s, se, "* OK [UIDNEXT 40]")
		}, UIDNext},
		{"UIDNEXT down", func(r *run, se *session) {
			r.led.uidNextIs(50, 1*s, 2*s, se, "* OK [UIDNEXT 50]")
			r.led.uidNextIs(45, 3*s, 4*s, se, "* OK [UIDNEXT 45]")
		}, UIDNext},
		{"UIDNEXT of a command sent before", func(r *run, se *session) {
			r.led.uidNextIs(50, 3*s, 4*s, se, "* OK [UIDNEXT 50]")
			r.led.uidNextIs(45, 1*s, 5*s, se, "* OK [UIDNEXT 45]")
		}, ""},
		{"UIDVALIDITY changed", func(r *run, se *session) {
			r.led.uidValidityIs(7, 1*s, se, "a")
			r.led.uidValidityIs(8, 2*s, se, "b")
		}, UIDValidity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, se := newRun()
			tc.do(r, se)
			res := &Result{}
			r.rec.fill(res, 1)
			for _, k := range Kinds {
				if got := res.Violations[k]; (got > 0) != (k == tc.want) {
					t.Errorf("%d of %s: %+v", got, k, res.Examples)
				}
			}
		})
	}
}
