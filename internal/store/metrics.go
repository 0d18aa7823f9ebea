package store

import (
	"sync"

	"github.com/cistern-mail/cistern/internal/metrics"
	"github.com/cistern-mail/cistern/maildir"
)

// Metrics count what syncs find (Options.Metrics). A nil *Metrics
// counts nothing.
//
//	cistern_syncs_total{proof}                 syncs by the proof of their listings (syncProof)
//	cistern_sync_failures_total                syncs that returned an error
//	cistern_sync_suspects                      suspects waiting now, in the mailboxes of
//	                                           every Registry opened with these Metrics
//	cistern_sync_suspects_total                messages that became suspects
//	cistern_sync_suspects_resolved_total{outcome}
//	                                           suspects seen again (found) or proven gone,
//	                                           expunged by us, or voided with their
//	                                           UIDVALIDITY (expunged)
//	cistern_warm_starts_total{outcome}         mailboxes opened from the state stored in
//	                                           the index (served) or whose stored state
//	                                           was not proven current (refused: read cold)
type Metrics struct {
	warm     *metrics.CounterVec
	syncs    *metrics.CounterVec
	failures *metrics.Counter
	suspects *metrics.Counter
	resolved *metrics.CounterVec

	mu   sync.Mutex  // guards regs
	regs []*Registry // whose mailboxes' suspects the gauge sums
}

// Sync proofs, as labelled.
const (
	proofSkipped = "skipped"
	proofNone    = "none"
)

// proofLabel is a listing proof's label.
func proofLabel(p maildir.Proof) string {
	switch p {
	case maildir.ProofAtomic:
		return "atomic"
	case maildir.ProofStableTimestamp:
		return "stable_timestamp"
	case maildir.ProofLocked:
		return "locked"
	}
	return proofNone
}

// syncProof is the label of a sync's proof: skipped when the cheap check
// read nothing; none when a listing was not proven (no suspect can
// become an expunge); else the proof both listings carry, and when they
// differ, the weaker: a stable timestamp rests on the timestamps'
// granularity, an atomic read on the kernel's directory lock. (Locked
// is a mailbox's setting: it never mixes with the others.)
func syncProof(ch *Changes) string {
	switch {
	case ch.Skipped:
		return proofSkipped
	case !ch.NewProof.Proven() || !ch.CurProof.Proven():
		return proofNone
	case ch.NewProof == maildir.ProofStableTimestamp || ch.CurProof == maildir.ProofStableTimestamp:
		return proofLabel(maildir.ProofStableTimestamp)
	}
	return proofLabel(ch.CurProof)
}

// Suspect outcomes, as labelled.
const (
	resolvedFound    = "found"
	resolvedExpunged = "expunged"
)

// NewMetrics registers the store's metrics in r; nil for a nil r.
func NewMetrics(r *metrics.Registry) *Metrics {
	if r == nil {
		return nil
	}
	m := &Metrics{
		syncs: r.CounterVec("cistern_syncs_total", "Mailbox syncs by the proof that their listings are complete (skipped: nothing changed, nothing read; none: not proven, suspects wait).",
			metrics.Label{Name: "proof", Values: []string{"atomic", "stable_timestamp", "locked", proofNone, proofSkipped}}),
		failures: r.Counter("cistern_sync_failures_total", "Mailbox syncs that failed (a read, lock or uidlist error)."),
		suspects: r.Counter("cistern_sync_suspects_total", "Messages that went missing from a listing that was not proven complete, and became suspects."),
		resolved: r.CounterVec("cistern_sync_suspects_resolved_total", "Suspects resolved: seen again (found), or proven gone or expunged (expunged).",
			metrics.Label{Name: "outcome", Values: []string{resolvedFound, resolvedExpunged}}),
	}
	m.warm = r.CounterVec("cistern_warm_starts_total", "Mailboxes opened from the synced state stored in the index (served), or whose stored state was not proven current and was read from the files (refused).",
		metrics.Label{Name: "outcome", Values: []string{warmServed, warmRefused}})
	r.GaugeFunc("cistern_sync_suspects", "Suspects waiting now for a proof, in every open mailbox.", m.waiting)
	return m
}

// synced counts a sync: ch is its result, nil when it failed.
func (m *Metrics) synced(ch *Changes) {
	if m == nil {
		return
	}
	if ch == nil {
		m.failures.Inc()
		return
	}
	m.syncs.With(syncProof(ch)).Inc()
}

// Warm start outcomes, as labelled.
const (
	warmServed  = "served"
	warmRefused = "refused"
)

// warmStart counts a stored state served or refused (loadState).
func (m *Metrics) warmStart(outcome string) {
	if m != nil {
		m.warm.With(outcome).Inc()
	}
}

func (m *Metrics) suspected() {
	if m != nil {
		m.suspects.Inc()
	}
}

func (m *Metrics) resolvedAs(outcome string) {
	if m != nil {
		m.resolved.With(outcome).Inc()
	}
}

// watch adds r's mailboxes to the suspects gauge.
func (m *Metrics) watch(r *Registry) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.regs = append(m.regs, r)
}

// waiting sums the suspects of the open mailboxes of every Registry.
func (m *Metrics) waiting() float64 {
	m.mu.Lock()
	regs := m.regs
	m.mu.Unlock()
	var n int64
	for _, r := range regs {
		n += r.suspects()
	}
	return float64(n)
}
