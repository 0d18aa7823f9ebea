package imaptorture

import (
	"slices"
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
	// move sends UID MOVE of uid at at, answered by reply ("" for no
	// answer).
	move := func(at time.Duration, uid uint32, reply string) event {
		return func(l *ledger) {
			x := l.transferSent("MOVE", "imap-1", "UID MOVE", "Aux", []string{"<m>"}, []uint32{uid}, at)
			if reply != "" {
				l.transferAnswered(x, &Response{Type: reply, Line: "a1 " + reply}, nil, at+time.Second/10)
			}
		}
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
		{"move before", []event{move(2*s, 7, "OK")}, 3 * s, true},
		{"move of another UID", []event{move(2*s, 8, "OK")}, 3 * s, false},
		{"move not answered", []event{move(2*s, 7, "")}, 3 * s, true},
		{"move refused", []event{move(2*s, 7, "NO")}, 3 * s, false},
		{"move rejected as BAD", []event{move(2*s, 7, "BAD")}, 3 * s, false},
		{"move refused, another accepted", []event{move(1*s, 7, "NO"), move(2*s, 7, "OK")}, 3 * s, true},
		{"move refused, then EXPUNGE", []event{move(1*s, 7, "NO"), mark(1*s, 7), expunge(2*s, 3*s)}, 4 * s, true},
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
		}, UIDReuse},
		{"one UID, two messages, under two UIDVALIDITYs", func(r *run, se *session) {
			se.validity = 7
			r.led.learn("<a>", 5, 1*s, se, "x")
			se.validity = 8
			r.led.learn("<b>", 5, 2*s, se, "y")
		}, ""},
		{"APPENDUID of a UID that named another message", func(r *run, se *session) {
			r.led.learn("<a>", 5, 1*s, se, "x")
			r.led.created("<b>", "APPEND", 2*s)
			r.led.acked("<b>", 5, 0, 3*s, se)
		}, UIDReuse},
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
			r.led.acked("<a>", 5, 0, 2*s, se)
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

// TestLives: the judgement of what sessions are told in mailboxes other
// than the one under test, by the changes of their names.
func TestLives(t *testing.T) {
	s := time.Second
	const box = "Aux"
	for _, tc := range []struct {
		name string
		do   func(l *ledger)
		want Kind // "" for none
	}{
		{"one name, one UIDVALIDITY, two messages", func(l *ledger) {
			l.named(box, 7, 1, "<a>", 1*s, false, "life-aux/ctl", "APPEND", "t1 OK [APPENDUID 7 1]")
			l.nameCreated("CREATE", box, 3*s, 4*s)
			l.named(box, 7, 1, "<b>", 5*s, false, "imap-1", "UID COPY 4 Aux", "t9 OK [COPYUID 7 4 1]")
		}, UIDReuse},
		{"another name", func(l *ledger) {
			l.named(box, 7, 1, "<a>", 1*s, false, "x", "", "")
			l.named("Aux-away", 7, 1, "<b>", 2*s, false, "x", "", "")
		}, ""},
		{"another UIDVALIDITY", func(l *ledger) {
			l.named(box, 7, 1, "<a>", 1*s, false, "x", "", "")
			l.named(box, 8, 1, "<b>", 2*s, false, "x", "", "")
		}, ""},
		{"the same message again", func(l *ledger) {
			l.named(box, 7, 1, "<a>", 1*s, false, "x", "", "")
			l.named(box, 7, 1, "<a>", 2*s, true, "x", "", "")
		}, ""},
		{"an appended message missing from a later look", func(l *ledger) {
			l.named(box, 7, 1, "<a>", 1*s, false, "x", "", "")
			l.judgeLook("sel", box, 7, map[uint32]string{}, 2*s, 3*s)
		}, Lost},
		{"a seen message missing from a later look", func(l *ledger) {
			l.named(box, 7, 1, "<a>", 1*s, true, "x", "", "")
			l.judgeLook("sel", box, 7, map[uint32]string{}, 2*s, 3*s)
		}, PhantomExpunge},
		{"present under another UID", func(l *ledger) {
			l.named(box, 7, 1, "<a>", 1*s, false, "x", "", "")
			l.judgeLook("sel", box, 7, map[uint32]string{2: "<a>"}, 2*s, 3*s)
		}, UIDChange},
		{"missing after a DELETE", func(l *ledger) {
			l.named(box, 7, 1, "<a>", 1*s, true, "x", "", "")
			l.lifeDone(l.removing("DELETE", 2*s, box), 2*s+1)
			l.judgeLook("sel", box, 7, map[uint32]string{}, 3*s, 4*s)
		}, ""},
		{"missing during a RENAME still running", func(l *ledger) {
			l.named(box, 7, 1, "<a>", 1*s, true, "x", "", "")
			l.removing("RENAME", 2*s, box)
			l.judgeLook("sel", box, 7, map[uint32]string{}, 3*s, 4*s)
		}, ""},
		{"missing after a RENAME of another name", func(l *ledger) {
			l.named(box, 7, 1, "<a>", 1*s, true, "x", "", "")
			l.lifeDone(l.removing("RENAME", 2*s, "Other"), 2*s+1)
			l.judgeLook("sel", box, 7, map[uint32]string{}, 3*s, 4*s)
		}, PhantomExpunge},
		{"missing after a DELETE of an earlier life", func(l *ledger) {
			l.lifeDone(l.removing("DELETE", 1*s, box), 1*s+1)
			l.nameCreated("CREATE", box, 2*s, 2*s+1)
			l.named(box, 8, 1, "<a>", 3*s, true, "x", "", "")
			l.judgeLook("sel", box, 8, map[uint32]string{}, 4*s, 5*s)
		}, PhantomExpunge},
		{"told after the look began", func(l *ledger) {
			l.judgeLook("sel", box, 7, map[uint32]string{}, 2*s, 4*s)
			l.named(box, 7, 1, "<a>", 3*s, false, "x", "", "")
		}, ""},
		{"present", func(l *ledger) {
			l.named(box, 7, 1, "<a>", 1*s, false, "x", "", "")
			l.judgeLook("sel", box, 7, map[uint32]string{1: "<a>"}, 2*s, 3*s)
		}, ""},
		{"EXPUNGE with nothing removed", func(l *ledger) {
			l.folderExpunged("sel", "NOOP", selection{box, 7, 1 * s}, 1, 2*s, "* 1 EXPUNGE")
		}, PhantomExpunge},
		{"EXPUNGE after a DELETE", func(l *ledger) {
			l.lifeDone(l.removing("DELETE", 2*s, box), 3*s)
			l.folderExpunged("sel", "NOOP", selection{box, 7, 1 * s}, 1, 4*s, "* 1 EXPUNGE")
		}, ""},
		{"EXPUNGE after a removal that ended before the selection", func(l *ledger) {
			l.lifeDone(l.removing("DELETE", 1*s, box), 1*s+1)
			l.nameCreated("CREATE", box, 2*s, 2*s+1)
			l.sawLife(box, 8, 3*s)
			l.folderExpunged("sel", "NOOP", selection{box, 8, 3 * s}, 1, 4*s, "* 1 EXPUNGE")
		}, PhantomExpunge},
		{"EXPUNGE after a foreign removal that a lagging server showed as the old life", func(l *ledger) {
			l.sawLife(box, 7, 1*s)
			l.lifeDone(l.removing("foreign rm -r", 2*s, box), 2*s+1)
			l.folderExpunged("sel", "NOOP", selection{box, 7, 3 * s}, 1, 4*s, "* 1 EXPUNGE")
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(time.Now())
			l := newLedger(rec, "test")
			tc.do(l)
			res := &Result{}
			rec.fill(res, 1)
			for _, k := range Kinds {
				if got := res.Violations[k]; (got > 0) != (k == tc.want) {
					t.Errorf("%d of %s: %+v", got, k, res.Examples)
				}
			}
		})
	}
}

// TestSelectionEnded: a BYE is allowed to a session whose selected
// mailbox's name was removed since the selection (or since the life it
// showed began), and to no other.
func TestSelectionEnded(t *testing.T) {
	s := time.Second
	l := newLedger(newRecorder(time.Now()), "test")
	l.sawLife("Aux", 7, 1*s)
	if why := l.selectionEnded("Aux", 7, 2*s, 3*s); why != "" {
		t.Errorf("nothing removed Aux, yet: %s", why)
	}
	l.lifeDone(l.removing("DELETE \"Aux\" by life-aux", 4*s, "Aux"), 5*s)
	if why := l.selectionEnded("Aux", 7, 2*s, 6*s); why == "" {
		t.Error("a DELETE after the SELECT does not end the selection")
	}
	if why := l.selectionEnded("Aux", 7, 2*s, 3*s); why != "" {
		t.Errorf("a DELETE sent after the BYE ends the selection: %s", why)
	}
	if why := l.selectionEnded("Other", 0, 2*s, 6*s); why != "" {
		t.Errorf("a DELETE of Aux ends a selection of Other: %s", why)
	}
	l.nameCreated("CREATE", "Aux", 6*s, 7*s)
	l.sawLife("Aux", 9, 8*s)
	if why := l.selectionEnded("Aux", 9, 8*s, 9*s); why != "" {
		t.Errorf("a DELETE before the new life ends its selection: %s", why)
	}
}

// TestUIDSets: the uid-sets of COPYUID.
func TestUIDSets(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []uint32 // nil: refused
	}{
		{"5", []uint32{5}},
		{"4,7:9", []uint32{4, 7, 8, 9}},
		{"9:7", []uint32{7, 8, 9}},
		{"0", nil},
		{"*", nil},
		{"1:*", nil},
		{"", nil},
		{"1:4000000000", nil},
		{"3,,4", nil},
	} {
		got, ok := parseUIDSet(tc.in)
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("parseUIDSet(%q) = %v, %t; want %v", tc.in, got, ok, tc.want)
		}
	}
	v, src, dst, ok := copyUID(&Response{Code: "COPYUID", CodeArgs: []string{"77", "3,5:6", "10:12"}})
	if !ok || v != 77 || !slices.Equal(src, []uint32{3, 5, 6}) || !slices.Equal(dst, []uint32{10, 11, 12}) {
		t.Errorf("copyUID = %d %v %v %t", v, src, dst, ok)
	}
	if _, _, _, ok := copyUID(&Response{Code: "COPYUID", CodeArgs: []string{"77", "3,5", "10"}}); ok {
		t.Error("COPYUID with sets of two sizes accepted")
	}
}
