package imaptorture

import (
	"testing"
	"time"
)

// TestRefusedCopies: the ledger's verdicts on APPENDs, COPYs and MOVEs
// the server refused, by what was seen where.
func TestRefusedCopies(t *testing.T) {
	s := time.Second
	const aux = "Aux"
	// send records a transfer of <a> sent at at and answered reply (""
	// for no answer).
	send := func(l *ledger, verb, box string, at time.Duration, reply string) *transfer {
		x := l.transferSent(verb, "imap-1", verb+" "+box, box, []string{"<a>"}, []uint32{4}, at)
		if reply != "" {
			l.transferAnswered(x, &Response{Type: reply, Line: "a1 " + reply}, nil, at+time.Second/10)
		}
		return x
	}
	// fetched: a FETCH showed <a> as UID uid of box under UIDVALIDITY 7.
	fetched := func(l *ledger, box string, uid uint32, at time.Duration) {
		l.named(box, 7, uid, "<a>", at, true, "life-aux/sel", "UID FETCH 1:*", "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (MESSAGE-ID)] {22})")
	}
	for _, tc := range []struct {
		name string
		do   func(l *ledger)
		disk []diskMessage
		want bool // refused_but_done
	}{
		{"APPEND refused, never seen", func(l *ledger) {
			send(l, "APPEND", "INBOX", 1*s, "NO")
		}, nil, false},
		{"APPEND refused, seen in the mailbox under test", func(l *ledger) {
			send(l, "APPEND", "INBOX", 1*s, "NO")
			fetched(l, "INBOX", 9, 2*s)
		}, nil, true},
		{"APPEND rejected as BAD, seen", func(l *ledger) {
			send(l, "APPEND", "INBOX", 1*s, "BAD")
			fetched(l, "INBOX", 9, 2*s)
		}, nil, true},
		{"APPEND refused, seen in another mailbox", func(l *ledger) {
			send(l, "APPEND", aux, 1*s, "NO")
			fetched(l, "Aux-away", 1, 2*s)
		}, nil, true},
		{"APPEND refused, on disk at the end", func(l *ledger) {
			send(l, "APPEND", "INBOX", 1*s, "NO")
		}, []diskMessage{{id: "<a>", base: "1.M1P1.x"}}, true},
		{"APPEND refused, only told by an APPENDUID", func(l *ledger) {
			send(l, "APPEND", aux, 1*s, "NO")
			l.named(aux, 7, 1, "<a>", 2*s, false, "x", "", "")
		}, nil, false},
		{"APPEND never answered, seen", func(l *ledger) {
			send(l, "APPEND", "INBOX", 1*s, "")
			fetched(l, "INBOX", 9, 2*s)
		}, nil, false},
		{"APPEND accepted, seen", func(l *ledger) {
			send(l, "APPEND", "INBOX", 1*s, "OK")
			fetched(l, "INBOX", 9, 2*s)
		}, nil, false},
		{"COPY refused, its source seen in the mailbox under test", func(l *ledger) {
			send(l, "COPY", aux, 1*s, "NO")
			fetched(l, "INBOX", 4, 2*s)
		}, nil, false},
		{"COPY refused, a copy seen", func(l *ledger) {
			send(l, "COPY", aux, 1*s, "NO")
			fetched(l, aux, 1, 2*s)
		}, nil, true},
		{"MOVE refused, a copy seen", func(l *ledger) {
			send(l, "MOVE", aux, 1*s, "NO")
			fetched(l, aux, 1, 2*s)
		}, nil, true},
		{"COPY refused, a copy seen under the name a RENAME gave the target", func(l *ledger) {
			send(l, "COPY", aux, 1*s, "NO")
			l.lifeDone(l.removing("RENAME", 1*s, aux, "Aux-away"), 2*s)
			fetched(l, "Aux-away", 1, 3*s)
		}, nil, true},
		{"COPY refused while a foreign program moved the target's directory away", func(l *ledger) {
			l.lifeDone(l.foreignRemoving("foreign rename", 1*s, aux, "Aux-away"), 2*s)
			send(l, "COPY", aux, 1*s, "NO")
			fetched(l, "Aux-away", 1, 3*s)
		}, nil, false},
		{"COPY refused, a foreign rename of the target only after its answer", func(l *ledger) {
			send(l, "COPY", aux, 1*s, "NO")
			l.lifeDone(l.foreignRemoving("foreign rename", 2*s, aux, "Aux-away"), 3*s)
			fetched(l, "Aux-away", 1, 4*s)
		}, nil, true},
		{"COPY refused, the copy an accepted COPY named whose sender did not know the message yet", func(l *ledger) {
			x := l.transferSent("COPY", "imap-2", "COPY "+aux, aux, nil, []uint32{4}, 1*s)
			l.transferAnswered(x, &Response{Type: "OK", Line: "a1 OK"}, nil, 1*s+s/10)
			l.transferMade(x, "<a>", 7, 1)
			send(l, "COPY", aux, 2*s, "NO")
			fetched(l, aux, 1, 3*s)
		}, nil, false},
		{"COPY refused, the copy an accepted COPY named while no one knew the message", func(l *ledger) {
			x := l.transferSent("COPY", "imap-2", "COPY "+aux, aux, nil, []uint32{4}, 1*s)
			l.transferAnswered(x, &Response{Type: "OK", Line: "a1 OK"}, nil, 1*s+s/10)
			l.transferPaired(x, 4, 7, 1)
			// A session learns which message UID 4 names only later.
			l.mu.Lock()
			l.byUID[4] = "<a>"
			l.mu.Unlock()
			send(l, "COPY", aux, 2*s, "NO")
			fetched(l, aux, 1, 3*s)
		}, nil, false},
		{"COPY refused, the copy an accepted COPY's COPYUID named", func(l *ledger) {
			l.transferMade(send(l, "COPY", aux, 1*s, "OK"), "<a>", 7, 1)
			send(l, "COPY", aux, 2*s, "NO")
			fetched(l, aux, 1, 3*s)
		}, nil, false},
		{"COPY refused, the copy an accepted COPY's COPYUID named, after a RENAME", func(l *ledger) {
			l.transferMade(send(l, "COPY", aux, 1*s, "OK"), "<a>", 7, 1)
			send(l, "COPY", aux, 2*s, "NO")
			fetched(l, "Aux-away", 1, 3*s)
		}, nil, false},
		{"COPY refused, a second copy beside the accepted one", func(l *ledger) {
			l.transferMade(send(l, "COPY", aux, 1*s, "OK"), "<a>", 7, 1)
			send(l, "COPY", aux, 2*s, "NO")
			fetched(l, aux, 1, 3*s)
			fetched(l, aux, 2, 3*s)
		}, nil, true},
		{"COPY refused, an accepted COPY that named no UID", func(l *ledger) {
			send(l, "COPY", aux, 1*s, "OK")
			send(l, "COPY", aux, 2*s, "NO")
			fetched(l, aux, 2, 3*s)
		}, nil, false},
		{"COPY refused, a COPY never answered", func(l *ledger) {
			send(l, "COPY", aux, 1*s, "")
			send(l, "COPY", aux, 2*s, "NO")
			fetched(l, aux, 2, 3*s)
		}, nil, false},
		{"COPY refused, an accepted COPY sent after the copy was seen", func(l *ledger) {
			send(l, "COPY", aux, 1*s, "NO")
			fetched(l, aux, 1, 2*s)
			send(l, "COPY", aux, 3*s, "OK")
		}, nil, true},
		{"a copy seen before the COPY was refused", func(l *ledger) {
			fetched(l, aux, 1, 1*s)
			send(l, "COPY", aux, 2*s, "NO")
		}, nil, false},
		{"COPY refused, the target deleted: no copy seen", func(l *ledger) {
			send(l, "COPY", aux, 1*s, "NO")
			l.lifeDone(l.removing("DELETE", 1*s, aux), 2*s)
		}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(time.Now())
			l := newLedger(rec, "test")
			tc.do(l)
			l.mu.Lock()
			l.judgeRefusedLocked(tc.disk, 10)
			l.mu.Unlock()
			res := &Result{}
			rec.fill(res, 1)
			for _, k := range Kinds {
				if got := res.Violations[k]; (got > 0) != (k == RefusedButDone && tc.want) {
					t.Errorf("%d of %s: %+v", got, k, res.Examples)
				}
			}
		})
	}
}

// TestRefusedMove: a MOVE the server refused is no cause for its
// message to leave the mailbox under test; when it is the only one, the
// message's departure is refused_but_done.
func TestRefusedMove(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name  string
		reply string // the MOVE's answer, "" for none
		// expunged: a session is told the EXPUNGE; deleted: \Deleted
		// and EXPUNGE before; shown: the server still shows it at the
		// end.
		expunged, deleted, shown bool
		// foreignAway: a foreign program renamed the target's directory
		// away while the MOVE ran.
		foreignAway bool
		want        Kind // "" for none
	}{
		{"refused, then expunged", "NO", true, false, false, false, RefusedButDone},
		{"refused while a foreign program moved the target away, then expunged", "NO", true, false, false, true, ""},
		{"refused while a foreign program moved the target away, still there", "NO", false, false, true, true, ""},
		{"rejected as BAD, then expunged", "BAD", true, false, false, false, RefusedButDone},
		{"refused, then gone without a word", "NO", false, false, false, false, RefusedButDone},
		{"refused, expunged after \\Deleted and EXPUNGE", "NO", true, true, false, false, ""},
		{"refused, expunged and still shown at the end", "NO", true, false, true, false, PhantomExpunge},
		{"refused, still there", "NO", false, false, true, false, ""},
		{"accepted, then expunged", "OK", true, false, false, false, ""},
		{"never answered, then expunged", "", true, false, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(time.Now())
			r := &run{rec: rec, led: newLedger(rec, "test")}
			se := &session{name: "imap-1", r: r}
			l := r.led
			l.created("<a>", "APPEND imap-1", 0)
			l.acked("<a>", 4, 7, 1*s, se)
			l.learn("<a>", 4, 1*s, se, "* 1 FETCH (UID 4 BODY[HEADER.FIELDS (MESSAGE-ID)] {22})")
			if tc.foreignAway {
				l.lifeDone(l.foreignRemoving("foreign rename", 2*s, "Aux", "Aux-away"), 2*s+s/20)
			}
			x := l.transferSent("MOVE", "imap-1", "UID MOVE 4 Aux", "Aux", []string{"<a>"}, []uint32{4}, 2*s)
			if tc.reply != "" {
				l.transferAnswered(x, &Response{Type: tc.reply, Line: "a7 " + tc.reply + " [TRYCREATE] No such mailbox"}, nil, 2*s+s/10)
			}
			if tc.deleted {
				l.markDeleted([]uint32{4}, 2*s)
				l.expungeDone(l.expungeSent(nil, 3*s), 4*s)
			}
			if tc.expunged {
				se.cur.line = "NOOP"
				l.expunged(se, 4, 5*s, "* 1 EXPUNGE")
			}
			shownIDs, shown := map[string]bool{}, map[uint32]bool{}
			if tc.shown {
				shownIDs["<a>"], shown[4] = true, true
			}
			r.analyse(shownIDs, shown, nil, 10)
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

// TestRefusedButDone: a server that answers NO to an APPEND, a COPY or a
// MOVE and does it anyway (or, for a MOVE, takes the message out of the
// mailbox and puts it nowhere) is caught as refused_but_done and as
// nothing else; an honest one is accused of nothing, and so is one
// whose refusals do nothing.
func TestRefusedButDone(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  lie
		want Kind // "" for none
		op   string
	}{
		{"honest", honest, "", ""},
		{"refusals that did nothing", refuseTruly, "", "APPEND"},
		{"APPEND refused but kept", lieRefuseAppend, RefusedButDone, "APPEND"},
		{"COPY refused but copied", lieRefuseCopy, RefusedButDone, "COPY"},
		{"MOVE refused but moved", lieRefuseMove, RefusedButDone, "MOVE"},
		{"MOVE refused, message lost", lieRefuseMoveLose, RefusedButDone, "MOVE"},
		{"STORE of too many keywords refused, room used", lieKeywordsKept, RefusedButDone, "STORE keywords"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := fakeRunWith(t, tc.lie, lifecycleConfig())
			onlyKind(t, res, tc.want)
			if tc.op != "" && res.Op(tc.op).No == 0 {
				t.Errorf("no %s was refused: %+v", tc.op, res.Op(tc.op))
			}
			if res.Op("STORE keywords").No == 0 {
				t.Errorf("no keyword flood was refused: %+v", res.Op("STORE keywords"))
			}
			if tc.lie == refuseTruly && (res.Op("COPY").No == 0 || res.Op("MOVE").No == 0) {
				t.Errorf("COPY %+v, MOVE %+v: not both were refused", res.Op("COPY"), res.Op("MOVE"))
			}
		})
	}
}
