package store

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cistern-mail/cistern/internal/logctx"
	"github.com/cistern-mail/cistern/internal/metrics"
	"github.com/cistern-mail/cistern/internal/metrics/metricstest"
	"github.com/cistern-mail/cistern/maildir"
)

func scrape(t *testing.T, reg *metrics.Registry) *metricstest.Exposition {
	t.Helper()
	var b bytes.Buffer
	reg.WriteTo(&b)
	e, err := metricstest.Parse(b.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return e
}

func wantMetric(t *testing.T, e *metricstest.Exposition, want float64, name string, labels ...string) {
	t.Helper()
	if v, ok := e.Value(name, labels...); !ok || v != want {
		t.Errorf("%s%q = %v (%v), want %v", name, labels, v, ok, want)
	}
}

// TestSyncMetrics: syncs are counted under the proof of their listings,
// and suspects as they come, wait and go.
func TestSyncMetrics(t *testing.T) {
	reg := metrics.NewRegistry()
	sm := NewMetrics(reg)
	open := func(caps maildir.Capabilities) (*fixture, *Mailbox, *Registry) {
		f := newFixture(t)
		r := NewRegistry(Options{Logger: testLogger(t), Caps: &caps, Metrics: sm}, nil)
		t.Cleanup(r.Close)
		mb, release, err := r.Open(f.dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(release)
		return f, mb, r
	}
	hide := func(f *fixture, base string) func() {
		sub, name := f.find(base)
		from, to := filepath.Join(f.dir, sub, name), filepath.Join(f.dir, "hidden")
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
		return func() {
			if err := os.Rename(to, from); err != nil {
				t.Fatal(err)
			}
		}
	}

	// No proof: a hidden message is a suspect until it is seen again.
	f, mb, _ := open(maildir.Capabilities{FSType: "test"})
	a := f.put(maildir.Cur, "S")
	f.put(maildir.New, "")
	sync1(t, mb)
	back := hide(f, a)
	sync1(t, mb)
	e := scrape(t, reg)
	wantMetric(t, e, 2, "cistern_syncs_total", "proof", "none")
	wantMetric(t, e, 1, "cistern_sync_suspects_total")
	wantMetric(t, e, 1, "cistern_sync_suspects")
	back()
	sync1(t, mb)
	e = scrape(t, reg)
	wantMetric(t, e, 1, "cistern_sync_suspects_resolved_total", "outcome", "found")
	wantMetric(t, e, 0, "cistern_sync_suspects")

	// A suspect waiting in a mailbox that the Registry closes leaves the
	// gauge with it.
	f2, mb2, r2 := open(maildir.Capabilities{FSType: "test"})
	b := f2.put(maildir.Cur, "")
	sync1(t, mb2)
	hide(f2, b)
	sync1(t, mb2)
	wantMetric(t, scrape(t, reg), 1, "cistern_sync_suspects")
	r2.Close()
	wantMetric(t, scrape(t, reg), 0, "cistern_sync_suspects")

	// Atomic reads: a message gone is expunged at once; nothing changed
	// and timestamps that can be trusted: the sync is skipped.
	f3, mb3, _ := open(maildir.Capabilities{FSType: "test", AtomicRead: true, FineTimestamps: true})
	c := f3.put(maildir.Cur, "")
	f3.put(maildir.Cur, "S")
	sync1(t, mb3)
	f3.remove(c)
	if ch := sync1(t, mb3); len(ch.Expunged) != 1 || ch.NewProof != maildir.ProofAtomic || ch.CurProof != maildir.ProofAtomic {
		t.Fatalf("proven sync: %+v", ch)
	}
	if ch := sync1(t, mb3); !ch.Skipped {
		t.Fatalf("nothing changed, not skipped: %+v", ch)
	}
	e = scrape(t, reg)
	wantMetric(t, e, 2, "cistern_syncs_total", "proof", "atomic")
	wantMetric(t, e, 1, "cistern_syncs_total", "proof", "skipped")
	wantMetric(t, e, 3, "cistern_sync_suspects_total") // a, b and c
	wantMetric(t, e, 1, "cistern_sync_suspects_resolved_total", "outcome", "expunged")

	// Stable timestamps only.
	f4, mb4, _ := open(maildir.Capabilities{FSType: "test", FineTimestamps: true})
	f4.put(maildir.New, "")
	sync1(t, mb4)
	wantMetric(t, scrape(t, reg), 1, "cistern_syncs_total", "proof", "stable_timestamp")

	// A sync that fails.
	if err := os.RemoveAll(filepath.Join(f4.dir, maildir.Cur)); err != nil {
		t.Fatal(err)
	}
	if _, err := mb4.Sync(context.Background()); err == nil {
		t.Fatal("a sync without cur/ succeeded")
	}
	e = scrape(t, reg)
	wantMetric(t, e, 1, "cistern_sync_failures_total")
	if v, _ := e.Sum("cistern_syncs_total"); v != 9 {
		t.Errorf("%v syncs counted, want 9 (the failure is not one)", v)
	}
}

// TestSyncMetricsOurExpunge: a suspect that we expunge ourselves is
// resolved as expunged.
func TestSyncMetricsOurExpunge(t *testing.T) {
	reg := metrics.NewRegistry()
	f := newFixture(t)
	caps := maildir.Capabilities{FSType: "test"}
	mb := f.open(Options{Caps: &caps, Metrics: NewMetrics(reg)})
	a := f.put(maildir.Cur, "")
	sync1(t, mb)
	sub, name := f.find(a)
	// Moved aside and back between two listings: a suspect, whose file
	// is where the state says.
	hidden := filepath.Join(f.dir, "hidden")
	os.Rename(filepath.Join(f.dir, sub, name), hidden)
	sync1(t, mb)
	os.Rename(hidden, filepath.Join(f.dir, sub, name))
	m, _ := mb.Lookup(a)
	if !m.Suspect {
		t.Fatal("not a suspect")
	}
	if gone, err := mb.Expunge(context.Background(), []uint32{m.UID}, nil); err != nil || len(gone) != 1 {
		t.Fatalf("Expunge: %v %v", gone, err)
	}
	wantMetric(t, scrape(t, reg), 1, "cistern_sync_suspects_resolved_total", "outcome", "expunged")
}

// TestSessionLogger: the lines of a sync whose ctx carries a logger go
// to that logger, naming the mailbox; a sync without one logs to
// Options.Logger.
func TestSessionLogger(t *testing.T) {
	var daemon, session bytes.Buffer
	f := newFixture(t)
	mb := f.open(Options{Logger: slog.New(slog.NewTextHandler(&daemon, nil))})
	if err := os.WriteFile(filepath.Join(f.dir, maildir.Cur, ".junk1"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := logctx.With(context.Background(), slog.New(slog.NewTextHandler(&session, nil)).With("session", "ABCDEFGH"))
	if _, err := mb.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(session.String(), `session=ABCDEFGH mailbox=`+f.dir+` file=`) || strings.Contains(daemon.String(), ".junk1") {
		t.Errorf("session's sync: session log %q, daemon log %q", session.String(), daemon.String())
	}
	// A listing that holds only known messages is not looked at
	// further: a new message makes this one looked at.
	if err := os.WriteFile(filepath.Join(f.dir, maildir.Cur, ".junk2"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f.put(maildir.New, "")
	if _, err := mb.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(daemon.String(), "mailbox="+f.dir+" file="+filepath.Join(f.dir, maildir.Cur, ".junk2")) || strings.Contains(session.String(), ".junk2") {
		t.Errorf("background sync: session log %q, daemon log %q", session.String(), daemon.String())
	}
}
