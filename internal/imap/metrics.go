package imap

import (
	"slices"
	"time"

	"github.com/cistern-mail/cistern/internal/metrics"
)

// Metrics (Server.Metrics; the list is package metrics' doc). Commands
// are counted by name and outcome, one count per tagged response (or per
// command that got none):
//
//	outcome  the command got
//	ok       OK
//	no       NO for a reason the client can act on (RFC 5530 codes), or
//	         the BYE for too many commands before logging in
//	bad      BAD: syntax, an unknown command, a command not allowed now
//	error    NO [SERVERBUG] or NO [UNAVAILABLE] for a storage failure,
//	         NO [OVERQUOTA] for a full disk, NO [NOPERM] for a mailbox
//	         the server may not use, or no tagged response at all: the
//	         connection ended or the command panicked
//
// A command's name is its label when the command exists ("UID FETCH" for
// the UID form), else "other", so the series stay bounded whatever
// clients send. The duration histogram measures from the end of the tag
// to the end of the flush of the tagged response, arguments and literals
// included; it leaves out IDLE, whose duration is the client's choice,
// and LOGIN and AUTHENTICATE, whose failures wait on purpose (the
// Throttle) and whose password hashing costs are set by the operator:
// both would drown the latency of everything else. Commands that do not
// exist are counted, not timed.

// Outcomes of a command.
const (
	outcomeOK    = "ok"
	outcomeNo    = "no"
	outcomeBad   = "bad"
	outcomeError = "error"
)

// otherCommand labels a command that does not exist.
const otherCommand = "other"

// durationBuckets are the upper bounds of the command duration
// histogram, in seconds: from a cached FETCH of flags to a SEARCH of
// bodies in a large mailbox.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// untimed are the commands left out of the duration histogram, and
// otherCommand, which is answered BAD at once.
var untimed = map[string]bool{"IDLE": true, "LOGIN": true, "AUTHENTICATE": true, otherCommand: true}

// serverMetrics are a Server's metrics; nil without a Registry (every
// method of a nil metric does nothing).
type serverMetrics struct {
	accepted  *metrics.Counter
	commands  *metrics.CounterVec
	durations *metrics.HistogramVec
}

// commandLabels lists every command's label: the names of the command
// table, their UID forms, and otherCommand.
func commandLabels() []string {
	var names []string
	for name, cmd := range commands {
		names = append(names, name)
		if cmd.uid {
			names = append(names, "UID "+name)
		}
	}
	slices.Sort(names)
	return append(names, otherCommand)
}

// initMetrics registers the Server's metrics in s.Metrics, once; with
// no Registry, s.met stays nil.
func (s *Server) initMetrics() {
	r := s.Metrics
	if r == nil {
		return
	}
	names := commandLabels()
	timed := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return untimed[n] })
	s.met = &serverMetrics{
		accepted: r.Counter("cistern_imap_connections_accepted_total", "IMAP connections taken into service (not refused by the connection limits)."),
		commands: r.CounterVec("cistern_imap_commands_total", "IMAP commands by name and outcome (ok, no, bad, error).",
			metrics.Label{Name: "command", Values: names},
			metrics.Label{Name: "outcome", Values: []string{outcomeOK, outcomeNo, outcomeBad, outcomeError}}),
		durations: r.HistogramVec("cistern_imap_command_duration_seconds", "Time from an IMAP command's tag to its flushed tagged response; without IDLE, LOGIN and AUTHENTICATE.",
			durationBuckets, metrics.Label{Name: "command", Values: timed}),
	}
	r.GaugeFunc("cistern_imap_sessions", "IMAP connections open now.",
		func() float64 { return float64(s.open.all.Count("")) })
	r.GaugeFunc("cistern_imap_response_memory_bytes", "Bytes of messages IMAP sessions hold now for their responses, of imap.response_memory (FETCH and SEARCH).",
		func() float64 { return float64(s.budget().inUse()) })
	r.CounterFunc("cistern_imap_connections_refused_total", "IMAP connections refused over imap.max_connections or imap.max_connections_per_ip.",
		func() float64 { return float64(s.RefusedConnections.Load()) })
	r.GaugeFunc("cistern_imap_unauthenticated", "IMAP connections open now that have not logged in.",
		func() float64 { return float64(s.unauthenticated()) })
	r.CounterFunc("cistern_imap_connections_evicted_total", "IMAP connections not logged in closed to make room for a new one (imap.max_unauthenticated and the other connection limits).",
		func() float64 { return float64(s.EvictedConnections.Load()) })
	r.CounterFunc("cistern_imap_login_timeouts_total", "IMAP connections closed for not logging in within imap.login_timeout.",
		func() float64 { return float64(s.LoginTimeouts.Load()) })
	r.CounterFunc("cistern_imap_logins_refused_total", "IMAP logins refused over imap.max_connections_per_user.",
		func() float64 { return float64(s.RefusedLogins.Load()) })
	r.RegisterPanics("imap", s.Panics.Load)
	s.Throttle.RegisterMetrics(r)
}

// commandLabel is the label of the command name (upper case), in its
// UID form when uid; otherCommand for what is not a command.
func commandLabel(name string, uid bool) string {
	cmd, ok := commands[name]
	switch {
	case !ok || (uid && !cmd.uid):
		return otherCommand
	case uid:
		return "UID " + name
	}
	return name
}

// accept counts a connection taken into service.
func (m *serverMetrics) accept() {
	if m != nil {
		m.accepted.Inc()
	}
}

// commandDone counts a command that began at start.
func (m *serverMetrics) commandDone(label, outcome string, start time.Time) {
	if m == nil {
		return
	}
	m.commands.With(label, outcome).Inc()
	if !untimed[label] {
		m.durations.With(label).ObserveDuration(time.Since(start))
	}
}
