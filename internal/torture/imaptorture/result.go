package imaptorture

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kind is a kind of violation: a guarantee of DESIGN.md §2 or a rule of
// RFC 9051 that a server broke.
type Kind string

// The kinds of violation, in the order reports list them.
const (
	PhantomExpunge       Kind = "phantom_expunge"
	UIDChange            Kind = "uid_change"
	UIDReuse             Kind = "uid_reuse"
	Duplicate            Kind = "duplicate"
	Lost                 Kind = "lost"
	RefusedButDone       Kind = "refused_but_done"
	ExpungeDuringCommand Kind = "expunge_during_command"
	ExistsDecrease       Kind = "exists_decrease"
	SeqOutOfRange        Kind = "seq_out_of_range"
	UIDOrder             Kind = "uid_order"
	UIDNext              Kind = "uidnext"
	UIDValidity          Kind = "uidvalidity"
	FlagsDiverge         Kind = "flags_diverge"
	FollowedSymlink      Kind = "followed_symlink"
	LoginStarved         Kind = "login_starved"
	OversizedResponse    Kind = "oversized_response"
	BadNameAccepted      Kind = "bad_name_accepted"
	RecentWrong          Kind = "recent_wrong"
	UnannouncedKeyword   Kind = "unannounced_keyword"
	BodyWrong            Kind = "body_wrong"
	ResyncMissed         Kind = "resync_missed"
	ModseqRegressed      Kind = "modseq_regressed"
	UnchangedSinceWrong  Kind = "unchangedsince_wrong"
	ObjectIDWrong        Kind = "objectid_wrong"
	SearchModSeqWrong    Kind = "search_modseq_wrong"
)

// Kinds lists every kind.
var Kinds = []Kind{PhantomExpunge, UIDChange, UIDReuse, Duplicate, Lost, RefusedButDone, ExpungeDuringCommand, ExistsDecrease, SeqOutOfRange, UIDOrder, UIDNext, UIDValidity, FlagsDiverge, FollowedSymlink, LoginStarved, OversizedResponse, BadNameAccepted, RecentWrong, UnannouncedKeyword, BodyWrong, ResyncMissed, ModseqRegressed, UnchangedSinceWrong, ObjectIDWrong, SearchModSeqWrong}

// Title is the kind for people.
func (k Kind) Title() string {
	switch k {
	case PhantomExpunge:
		return "phantom expunge"
	case UIDChange:
		return "UID change"
	case UIDReuse:
		return "UID reused"
	case Duplicate:
		return "duplicate"
	case Lost:
		return "lost message"
	case RefusedButDone:
		return "NO, yet done"
	case ExpungeDuringCommand:
		return "EXPUNGE during FETCH/STORE/SEARCH"
	case ExistsDecrease:
		return "EXISTS went down"
	case SeqOutOfRange:
		return "sequence number out of range"
	case UIDOrder:
		return "UIDs not ascending"
	case UIDNext:
		return "UIDNEXT misbehaving"
	case UIDValidity:
		return "UIDVALIDITY changed"
	case FlagsDiverge:
		return "flags do not converge"
	case FollowedSymlink:
		return "followed a symbolic link"
	case LoginStarved:
		return "login starved by connections that never log in"
	case OversizedResponse:
		return "ENVELOPE/BODYSTRUCTURE over the cap"
	case BadNameAccepted:
		return "mailbox name with a control character made"
	case RecentWrong:
		return `\Recent not in exactly one session`
	case UnannouncedKeyword:
		return "keyword used before FLAGS announced it"
	case BodyWrong:
		return "message bytes not as stored"
	case ResyncMissed:
		return "resync (CONDSTORE/QRESYNC) missed a change"
	case ModseqRegressed:
		return "MODSEQ or HIGHESTMODSEQ went back"
	case UnchangedSinceWrong:
		return "STORE UNCHANGEDSINCE misjudged"
	case ObjectIDWrong:
		return "EMAILID changed or shared"
	case SearchModSeqWrong:
		return "SEARCH MODSEQ left a change out"
	}
	return string(k)
}

// Violation is one broken rule, with what proves it.
type Violation struct {
	Kind Kind `json:"kind"`
	// At is when it was seen, in seconds since the start of the run.
	At float64 `json:"at"`
	// Session is the actor that was told ("imap-3", "checker", "disk").
	Session string `json:"session"`
	// Command is the command in progress, "" for the final check.
	Command string `json:"command,omitempty"`
	Detail  string `json:"detail"`
	// Evidence are the responses (and records) that prove it.
	Evidence []string `json:"evidence,omitempty"`
}

// OpStat is what one kind of operation did.
type OpStat struct {
	Op        string  `json:"op"`
	Count     int     `json:"count"`
	OK        int     `json:"ok"`
	No        int     `json:"no"`
	Bad       int     `json:"bad"`
	Failed    int     `json:"failed"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	Maxms     float64 `json:"max_ms"`
	PerSecond float64 `json:"per_second"`
}

// MessageStats counts the messages of the run.
type MessageStats struct {
	Seeded           int `json:"seeded"`
	Appended         int `json:"appended"`
	LMTPDelivered    int `json:"lmtp_delivered"`
	ForeignDelivered int `json:"foreign_delivered"`
	// ToldExpunged counts EXPUNGE responses for a message the session
	// had identified, over all sessions; Unattributed those for a
	// message it had not identified yet (by UID and Message-ID), which
	// cannot be judged.
	ToldExpunged   int `json:"told_expunged"`
	Unattributed   int `json:"unattributed_expunges"`
	ForeignDeleted int `json:"foreign_deleted"`
	Final          int `json:"final"`
	// Recent counts the messages shown \Recent to a read-write
	// selection; FlagsAnnounced the FLAGS responses sessions received
	// outside SELECT and EXAMINE (recent.go).
	Recent         int `json:"recent"`
	FlagsAnnounced int `json:"flags_announced"`
	// Resyncs counts the resynchronisations judged (resync.go).
	Resyncs int `json:"resyncs"`
	// CondStores counts the conditional STOREs judged, CondStale those
	// with a stale UNCHANGEDSINCE, CondModified those answered MODIFIED
	// (condstore.go).
	CondStores   int `json:"cond_stores"`
	CondStale    int `json:"cond_stale"`
	CondModified int `json:"cond_modified"`
}

// LifecycleStats counts what the lifecycle actors did to the mailboxes
// other than the one under test (Aux, its siblings, the names Aux is
// renamed to) and what the run learned there.
type LifecycleStats struct {
	// Creates, Deletes and Renames count the CREATE, DELETE and RENAME
	// commands that succeeded.
	Creates int `json:"creates"`
	Deletes int `json:"deletes"`
	Renames int `json:"renames"`
	// ForeignRenames and ForeignRemovals count the folder directories a
	// foreign actor renamed, and removed and made again.
	ForeignRenames  int `json:"foreign_renames"`
	ForeignRemovals int `json:"foreign_removals"`
	// Appended counts the messages APPENDed to those mailboxes.
	Appended int `json:"appended"`
	// Reconnects counts the sessions told BYE (or disconnected) after a
	// change of their selected mailbox's name, which connected again.
	Reconnects int `json:"reconnects"`
	// Expunges counts the EXPUNGEs told in those mailboxes.
	Expunges int `json:"expunges"`
	// UIDs counts the (mailbox, UIDVALIDITY, UID) the run was told of,
	// in every mailbox, over Lives (mailbox, UIDVALIDITY) pairs.
	UIDs  int `json:"uids"`
	Lives int `json:"lives"`
}

// Timeline is the run second by second, for plots.
type Timeline struct {
	// Groups name the series of Ops.
	Groups []string `json:"groups"`
	// Ops[g][s] is how many operations of group g started in second s.
	Ops [][]int `json:"ops"`
	// Latency are sampled operations: when, how long, which group.
	Latency []LatencySample `json:"latency"`
	// Violations are when each violation was seen (up to a limit).
	Violations []ViolationMark `json:"violations"`
}

// LatencySample is one operation on the latency plot.
type LatencySample struct {
	At    float64 `json:"at"`
	Ms    float64 `json:"ms"`
	Group int     `json:"group"`
}

// ViolationMark places one violation on the timeline.
type ViolationMark struct {
	At   float64 `json:"at"`
	Kind Kind    `json:"kind"`
}

// Result is what a run did and found.
type Result struct {
	Target   string    `json:"target"`
	Greeting string    `json:"greeting"`
	Mailbox  string    `json:"mailbox"`
	LMTP     string    `json:"lmtp,omitempty"`
	Maildir  string    `json:"maildir,omitempty"`
	Sessions int       `json:"sessions"`
	Started  time.Time `json:"started"`
	// Seconds is how long the actors ran; Elapsed the whole run with
	// setup and the final check.
	Seconds      float64      `json:"seconds"`
	Elapsed      float64      `json:"elapsed"`
	Operations   int          `json:"operations"`
	OpsPerSecond float64      `json:"ops_per_second"`
	Ops          []OpStat     `json:"ops"`
	Violations   map[Kind]int `json:"violations"`
	Total        int          `json:"violation_total"`
	Examples     []Violation  `json:"examples"`
	Errors       []string     `json:"errors"`
	// Notes say what the run could not check or had to do again, and why.
	Notes        []string       `json:"notes,omitempty"`
	Messages     MessageStats   `json:"messages"`
	Lifecycle    LifecycleStats `json:"lifecycle"`
	Timeline     Timeline       `json:"timeline"`
	Capabilities []string       `json:"capabilities"`
	Actors       map[string]int `json:"actors"`
}

// Op returns the statistics of operation op (a zero OpStat if none ran).
func (r *Result) Op(op string) OpStat {
	for _, s := range r.Ops {
		if s.Op == op {
			return s
		}
	}
	return OpStat{Op: op}
}

// outcome is how an operation ended.
type outcome uint8

const (
	outOK outcome = iota
	outNo
	outBad
	outFailed
)

// Limits of what a run keeps for its report.
const (
	// examplesPerKind bounds the violations described, per kind, so
	// that every kind found has its examples.
	examplesPerKind   = 20
	summaryExamples   = 3 // per kind, on the terminal
	maxMarks          = 20000
	maxErrors         = 100
	maxLatencySamples = 4000
)

type opRecord struct {
	label      uint16
	outcome    outcome
	start, dur time.Duration
}

// recorder collects operations, violations and errors from every actor.
type recorder struct {
	start time.Time // immutable

	mu       sync.Mutex // guards the fields below
	labels   []string
	index    map[string]uint16
	ops      []opRecord
	counts   map[Kind]int
	seen     map[string]bool // dedup keys of violations
	examples []Violation
	marks    []ViolationMark
	errors   []string
}

func newRecorder(start time.Time) *recorder {
	return &recorder{start: start, index: make(map[string]uint16), counts: make(map[Kind]int), seen: make(map[string]bool)}
}

// since is the time of t in the run.
func (r *recorder) since(t time.Time) time.Duration { return t.Sub(r.start) }

// op records one operation.
func (r *recorder) op(label string, start time.Time, dur time.Duration, out outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.index[label]
	if !ok {
		i = uint16(len(r.labels))
		r.labels = append(r.labels, label)
		r.index[label] = i
	}
	r.ops = append(r.ops, opRecord{label: i, outcome: out, start: start.Sub(r.start), dur: dur})
}

// violation records v once per key ("" records it always).
func (r *recorder) violation(key string, v Violation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if key != "" {
		key = string(v.Kind) + "|" + key
		if r.seen[key] {
			return
		}
		r.seen[key] = true
	}
	r.counts[v.Kind]++
	if r.counts[v.Kind] <= examplesPerKind {
		r.examples = append(r.examples, v)
	}
	if len(r.marks) < maxMarks {
		r.marks = append(r.marks, ViolationMark{At: v.At, Kind: v.Kind})
	}
}

// failure records an error that ended an actor or a phase.
func (r *recorder) failure(who string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errors) < maxErrors {
		r.errors = append(r.errors, fmt.Sprintf("%s: %v", who, err))
	}
}

// groupOf puts an operation label in a plot series.
func groupOf(label string) int {
	switch {
	case strings.HasPrefix(label, "LMTP"):
		return 2
	case strings.HasPrefix(label, "foreign"):
		return 3
	}
	switch label {
	case "STORE", "STORE keywords", "COPY", "MOVE", "EXPUNGE", "UID EXPUNGE", "APPEND", "CREATE", "DELETE", "RENAME", "folder APPEND":
		return 1
	}
	return 0
}

var groupNames = []string{"IMAP reads", "IMAP writes", "LMTP", "foreign writers"}

// fill puts the collected figures into res; loadSeconds is how long the
// actors ran.
func (r *recorder) fill(res *Result, loadSeconds float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Violations = make(map[Kind]int, len(Kinds))
	res.Total = 0
	for _, k := range Kinds {
		res.Violations[k] = r.counts[k]
		res.Total += r.counts[k]
	}
	res.Examples = slices.Clone(r.examples)
	sort.SliceStable(res.Examples, func(i, j int) bool { return res.Examples[i].At < res.Examples[j].At })
	res.Errors = slices.Clone(r.errors)
	if res.Examples == nil {
		res.Examples = []Violation{}
	}
	if res.Errors == nil {
		res.Errors = []string{}
	}

	durs := make([][]float64, len(r.labels))
	stats := make([]OpStat, len(r.labels))
	seconds := int(math.Ceil(loadSeconds)) + 1
	for _, op := range r.ops {
		s := &stats[op.label]
		s.Count++
		switch op.outcome {
		case outOK:
			s.OK++
		case outNo:
			s.No++
		case outBad:
			s.Bad++
		default:
			s.Failed++
		}
		durs[op.label] = append(durs[op.label], float64(op.dur)/float64(time.Millisecond))
		if sec := int(op.start / time.Second); sec+1 > seconds {
			seconds = sec + 1
		}
	}
	res.Operations = len(r.ops)
	if loadSeconds > 0 {
		res.OpsPerSecond = float64(len(r.ops)) / loadSeconds
	}
	res.Ops = res.Ops[:0]
	for i, label := range r.labels {
		s := stats[i]
		s.Op = label
		d := durs[i]
		slices.Sort(d)
		s.P50ms, s.P99ms = percentile(d, 0.50), percentile(d, 0.99)
		if len(d) > 0 {
			s.Maxms = d[len(d)-1]
		}
		if loadSeconds > 0 {
			s.PerSecond = float64(s.Count) / loadSeconds
		}
		res.Ops = append(res.Ops, s)
	}
	sort.Slice(res.Ops, func(i, j int) bool { return opOrder(res.Ops[i].Op) < opOrder(res.Ops[j].Op) })

	tl := Timeline{Groups: groupNames, Ops: make([][]int, len(groupNames))}
	for g := range tl.Ops {
		tl.Ops[g] = make([]int, seconds)
	}
	step := max(1, len(r.ops)/maxLatencySamples)
	for i, op := range r.ops {
		g := groupOf(r.labels[op.label])
		tl.Ops[g][int(op.start/time.Second)]++
		if i%step == 0 {
			tl.Latency = append(tl.Latency, LatencySample{At: op.start.Seconds(), Ms: float64(op.dur) / float64(time.Millisecond), Group: g})
		}
	}
	tl.Violations = slices.Clone(r.marks)
	if tl.Violations == nil {
		tl.Violations = []ViolationMark{}
	}
	if tl.Latency == nil {
		tl.Latency = []LatencySample{}
	}
	res.Timeline = tl
}

// opOrder sorts operations as the issue lists them; others after.
func opOrder(op string) int {
	order := []string{"LOGIN", "SELECT", "EXAMINE", "FETCH FLAGS", "FETCH ENVELOPE", "FETCH BODY", "FETCH learn", "STORE", "STORE keywords", "SEARCH", "COPY", "MOVE", "EXPUNGE", "UID EXPUNGE", "APPEND", "NOOP", "IDLE", "LMTP",
		"CREATE", "DELETE", "RENAME", "folder APPEND", "folder SELECT", "folder EXAMINE", "folder FETCH", "folder NOOP",
		"foreign rename", "foreign move", "foreign delivery", "foreign deletion", "foreign folder rename", "foreign folder removal",
		"ENABLE", "resync SELECT", "resync FETCH", "resync SEARCH", "resync truth"}
	if i := slices.Index(order, op); i >= 0 {
		return i
	}
	return len(order)
}

// percentile of sorted values (nearest rank).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// WriteSummary writes the result as tables for a terminal.
func (r *Result) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "cistern torture imap: %s, mailbox %s, %d sessions, %.0f s", r.Target, r.Mailbox, r.Sessions, r.Seconds)
	if r.LMTP != "" {
		fmt.Fprintf(w, ", LMTP %s", r.LMTP)
	}
	if r.Maildir != "" {
		fmt.Fprintf(w, ", foreign writers in %s", r.Maildir)
	}
	fmt.Fprintf(w, "\nserver: %s\n\n", r.Greeting)
	fmt.Fprintf(w, "%-18s %8s %8s %6s %6s %7s %9s %9s %9s\n", "operation", "count", "ok", "no", "bad", "failed", "p50 ms", "p99 ms", "per s")
	for _, s := range r.Ops {
		fmt.Fprintf(w, "%-18s %8d %8d %6d %6d %7d %9.2f %9.2f %9.1f\n", s.Op, s.Count, s.OK, s.No, s.Bad, s.Failed, s.P50ms, s.P99ms, s.PerSecond)
	}
	fmt.Fprintf(w, "%-18s %8d %63.1f\n\n", "total", r.Operations, r.OpsPerSecond)
	m := r.Messages
	fmt.Fprintf(w, "messages: %d seeded, %d appended, %d over LMTP, %d by foreign writers; %d foreign deletions; %d EXPUNGEs told to sessions (and %d for messages not identified yet); %d at the end\n",
		m.Seeded, m.Appended, m.LMTPDelivered, m.ForeignDelivered, m.ForeignDeleted, m.ToldExpunged, m.Unattributed, m.Final)
	fmt.Fprintf(w, "%d messages shown \\Recent to a session; %d FLAGS responses announcing keywords after SELECT; %d resynchronisations judged; %s\n", m.Recent, m.FlagsAnnounced, m.Resyncs, condStat(m.CondStores, m.CondStale, m.CondModified))
	if l := r.Lifecycle.Summary(); l != "" {
		fmt.Fprintf(w, "other mailboxes: %s\n", l)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-36s %8s\n", "violation", "count")
	for _, k := range Kinds {
		fmt.Fprintf(w, "%-36s %8d\n", k.Title(), r.Violations[k])
	}
	fmt.Fprintf(w, "%-36s %8d\n", "total", r.Total)
	if len(r.Examples) > 0 {
		fmt.Fprintln(w, "\nviolations (the first of each kind; more in --json and --report):")
		for _, k := range Kinds {
			shown := 0
			for _, v := range r.Examples {
				if v.Kind != k || shown == summaryExamples {
					continue
				}
				shown++
				fmt.Fprintf(w, "  [%7.2fs] %s, %s", v.At, v.Kind.Title(), v.Session)
				if v.Command != "" {
					fmt.Fprintf(w, ", during %q", v.Command)
				}
				fmt.Fprintf(w, ": %s\n", v.Detail)
				for _, e := range v.Evidence {
					fmt.Fprintf(w, "      %s\n", e)
				}
			}
		}
	}
	if len(r.Errors) > 0 {
		fmt.Fprintln(w, "\nerrors:")
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
}

// Summary describes the lifecycle figures in one line, "" when no
// lifecycle actor changed anything.
func (l LifecycleStats) Summary() string {
	if l.Creates+l.Deletes+l.Renames+l.ForeignRenames+l.ForeignRemovals == 0 {
		return ""
	}
	return fmt.Sprintf("%d CREATE, %d DELETE, %d RENAME, %d foreign folder renames, %d foreign folder removals; %d messages appended there, %d EXPUNGEs told there; %d reconnections after a BYE; %d (mailbox, UIDVALIDITY, UID) learned over %d lives",
		l.Creates, l.Deletes, l.Renames, l.ForeignRenames, l.ForeignRemovals, l.Appended, l.Expunges, l.Reconnects, l.UIDs, l.Lives)
}

// WriteComparison writes results of several runs side by side: the
// operations, latencies and violations of each.
func WriteComparison(w io.Writer, names []string, results []*Result) {
	fmt.Fprintf(w, "%-36s", "")
	for _, n := range names {
		fmt.Fprintf(w, " %22s", n)
	}
	fmt.Fprintln(w)
	row := func(label string, f func(r *Result) string) {
		fmt.Fprintf(w, "%-36s", label)
		for _, r := range results {
			fmt.Fprintf(w, " %22s", f(r))
		}
		fmt.Fprintln(w)
	}
	row("server", func(r *Result) string { return r.Target })
	row("sessions, seconds", func(r *Result) string { return fmt.Sprintf("%d, %.0f", r.Sessions, r.Seconds) })
	row("operations (per second)", func(r *Result) string { return fmt.Sprintf("%d (%.0f/s)", r.Operations, r.OpsPerSecond) })
	var ops []string
	for _, r := range results {
		for _, s := range r.Ops {
			if !slices.Contains(ops, s.Op) {
				ops = append(ops, s.Op)
			}
		}
	}
	sort.SliceStable(ops, func(i, j int) bool { return opOrder(ops[i]) < opOrder(ops[j]) })
	for _, op := range ops {
		row("  "+op+" (p50/p99 ms)", func(r *Result) string {
			s := r.Op(op)
			return fmt.Sprintf("%d (%.1f/%.1f)", s.Count, s.P50ms, s.P99ms)
		})
	}
	for _, k := range Kinds {
		row(k.Title(), func(r *Result) string { return fmt.Sprint(r.Violations[k]) })
	}
	row("violations in all", func(r *Result) string { return fmt.Sprint(r.Total) })
	row("errors", func(r *Result) string { return fmt.Sprint(len(r.Errors)) })
}
