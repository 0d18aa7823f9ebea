package imaptorture

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeRun tortures a fake server for a short while.
func fakeRun(t *testing.T, l lie, timeout time.Duration) *Result {
	t.Helper()
	return fakeRunWith(t, l, Config{Sessions: 3, Duration: 2500 * time.Millisecond, Messages: 20, Timeout: timeout, Seed: 11})
}

// fakeRunWith tortures a fake server as cfg says, its address and user
// filled in.
func fakeRunWith(t *testing.T, l lie, cfg Config) *Result {
	t.Helper()
	return runFake(t, startFakeWith(t, l, cfg.Resync > 0 || resyncLie(l)), cfg)
}

// runFake tortures f as cfg says, its address and user filled in.
func runFake(t *testing.T, f *fakeServer, cfg Config) *Result {
	t.Helper()
	l := f.lie
	cfg.IMAP, cfg.User, cfg.Password = f.addr(), testUser, testPassword
	t.Logf("seed %d", cfg.Seed)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	res.WriteSummary(&sb)
	t.Log("\n" + sb.String())
	f.mu.Lock()
	fired := f.fired
	f.mu.Unlock()
	if l != honest && !fired {
		t.Fatal("the fake never told its lie")
	}
	return res
}

// TestLies: a server that lies in one way is caught, and for exactly
// that kind of violation; an honest one is not accused of anything.
func TestLies(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  lie
		want Kind // "" for none
		// resync: the fake offers CONDSTORE and QRESYNC, and a resync
		// actor runs.
		resync bool
		// also is a kind the lie may bring as well: a MODSEQ shown stale
		// misleads the judge of STORE UNCHANGEDSINCE too.
		also Kind
	}{
		{"honest", honest, "", false, ""},
		{"honest with resync", honest, "", true, ""},
		{"phantom expunge", liePhantomExpunge, PhantomExpunge, false, ""},
		{"renumbered UID", lieRenumberUID, UIDChange, false, ""},
		{"message shown twice", lieDuplicate, Duplicate, false, ""},
		{"APPEND dropped", lieDropAppend, Lost, false, ""},
		{"EXPUNGE during FETCH", lieExpungeDuringFetch, ExpungeDuringCommand, false, ""},
		{"EXISTS decreased", lieDecreaseExists, ExistsDecrease, false, ""},
		{"sequence number out of range", lieSeqOutOfRange, SeqOutOfRange, false, ""},
		{"SEARCH descending", lieUIDsDescending, UIDOrder, false, ""},
		{"UIDVALIDITY changed", lieChangeUIDValidity, UIDValidity, false, ""},
		{"UIDNEXT lowered", lieLowerUIDNext, UIDNext, false, ""},
		{"flags do not converge", lieNoConverge, FlagsDiverge, false, ""},
		{"\\Recent in two sessions", lieRecentTwice, RecentWrong, false, ""},
		{"keyword before FLAGS", lieUnannounced, UnannouncedKeyword, false, ""},
		{"body without CR", lieBodyLF, BodyWrong, false, ""},
		{"BAD APPEND kept", lieStoreBadAppend, RefusedButDone, false, ""},
		{"resync misses a change", lieResyncMiss, ResyncMissed, true, ""},
		{"HIGHESTMODSEQ goes back", lieModseqBack, ModseqRegressed, true, ""},
		{"change without a higher MODSEQ", lieModseqStale, ModseqRegressed, true, UnchangedSinceWrong},
		{"MODIFIED though unchanged since", lieCondRefuseUnchanged, UnchangedSinceWrong, true, ""},
		{"STORE UNCHANGEDSINCE of a changed message done", lieCondIgnore, UnchangedSinceWrong, true, ""},
		{"MODIFIED and done", lieCondRefuseDone, UnchangedSinceWrong, true, ""},
		{"EMAILID changes", lieEmailIDChanges, ObjectIDWrong, false, ""},
		{"one EMAILID for all", lieEmailIDShared, ObjectIDWrong, false, ""},
		{"SEARCH MODSEQ leaves a change out", lieSearchModSeq, SearchModSeqWrong, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Sessions: 3, Duration: 2500 * time.Millisecond, Messages: 20, Timeout: 5 * time.Second, Seed: 11}
			if tc.resync {
				cfg.Resync, cfg.ResyncAway = 2, time.Second
			}
			res := fakeRunWith(t, tc.lie, cfg)
			onlyKind(t, res, tc.want, tc.also)
			if res.Operations < 300 {
				t.Errorf("only %d operations", res.Operations)
			}
			if tc.resync && res.Messages.Resyncs == 0 {
				t.Error("no resynchronisation was judged")
			}
			if tc.resync && (res.Messages.CondStores == 0 || res.Messages.CondStale == 0 || tc.lie == honest && res.Messages.CondModified == 0) {
				t.Errorf("%s: the conditional STORE checks had too little to judge", condStat(res.Messages.CondStores, res.Messages.CondStale, res.Messages.CondModified))
			}
		})
	}
}

// TestBrokenServer: a server that sends garbage, closes a connection or
// stops answering ends one session with an error; the run goes on and
// ends in time.
func TestBrokenServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  lie
		want string
	}{
		{"garbage", lieGarbage, "malformed"},
		{"closed", lieClose, "closed"},
		{"stalled", lieStall, "timeout"},
		{"flooding", lieFlood, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			res := fakeRun(t, tc.lie, time.Second)
			if len(res.Errors) != 1 || !strings.Contains(res.Errors[0], tc.want) {
				t.Errorf("errors %q, want one about %q", res.Errors, tc.want)
			}
			if res.Total != 0 {
				t.Errorf("%d violations, want none", res.Total)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("the run took %v", d)
			}
		})
	}
}

// TestHostile: the hostile actor's messages, fetched from a server that
// cuts their address lists at the cap, are no violation; from one that
// sends every address, oversized_response and nothing else.
func TestHostile(t *testing.T) {
	for _, tc := range []struct {
		name string
		lie  lie
		want Kind
	}{
		{"cut at the cap", honest, ""},
		{"the whole list", lieWholeList, OversizedResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := fakeRunWith(t, tc.lie, Config{Sessions: 2, Duration: 2500 * time.Millisecond, Messages: 10, Timeout: 5 * time.Second, Seed: 13, Hostile: 4})
			onlyKind(t, res, tc.want)
			if s := res.Op("hostile FETCH ENVELOPE"); s.OK == 0 {
				t.Errorf("no hostile FETCH ENVELOPE succeeded: %+v", s)
			}
		})
	}
}

// onlyKind fails the test unless res reports violations of kind want
// (none when want is "") and of no other kind but those allowed, and no
// error.
func onlyKind(t *testing.T, res *Result, want Kind, allowed ...Kind) {
	t.Helper()
	for _, k := range Kinds {
		got := res.Violations[k]
		switch {
		case k == want && got == 0:
			t.Errorf("%s not reported", k.Title())
		case k != want && got != 0 && !slices.Contains(allowed, k):
			t.Errorf("%d violations of kind %s, want none", got, k.Title())
		}
	}
	if len(res.Errors) != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
}

// TestResyncOffered: the resync actors against a server without
// CONDSTORE do nothing and the result says so; against one with
// CONDSTORE and no QRESYNC they resynchronise with UID FETCH
// (CHANGEDSINCE) and UID SEARCH ALL, and find nothing wrong with an
// honest one.
func TestResyncOffered(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		condstore, noQresync bool
		note                 string
		resyncs              bool
	}{
		{"no CONDSTORE", false, false, "neither CONDSTORE nor QRESYNC", false},
		{"CONDSTORE without QRESYNC", true, true, "CONDSTORE without QRESYNC", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startFakeWith(t, honest, tc.condstore)
			f.mu.Lock()
			f.noQresync = tc.noQresync
			f.mu.Unlock()
			res := runFake(t, f, Config{Sessions: 3, Duration: 2500 * time.Millisecond, Messages: 20, Timeout: 5 * time.Second, Seed: 12, Resync: 2, ResyncAway: time.Second})
			onlyKind(t, res, "")
			if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, tc.note) }) {
				t.Errorf("notes %q, want one about %q", res.Notes, tc.note)
			}
			switch {
			case tc.resyncs && (res.Messages.Resyncs == 0 || res.Op("resync SEARCH").OK == 0):
				t.Errorf("%d resynchronisations judged, %+v", res.Messages.Resyncs, res.Op("resync SEARCH"))
			case !tc.resyncs && (res.Messages.Resyncs != 0 || res.Op("resync SELECT").Count != 0 || res.Actors["resync"] != 0):
				t.Errorf("%d resynchronisations, %d resync SELECTs against a server without CONDSTORE", res.Messages.Resyncs, res.Op("resync SELECT").Count)
			}
			if offered := tc.condstore; offered == slices.Contains(res.Notes, condNote) || offered != (res.Op("STORE conditional").Count > 0) {
				t.Errorf("CONDSTORE offered %v: %d conditional STOREs, notes %q", offered, res.Op("STORE conditional").Count, res.Notes)
			}
		})
	}
}
