package metrics

import (
	"runtime"
	"runtime/debug"
	"time"
)

// RegisterProcess registers the metrics of the process itself: when it
// started (start) and what it was built from.
func (r *Registry) RegisterProcess(start time.Time) {
	if r == nil {
		return
	}
	at := float64(start.UnixNano()) / 1e9
	r.GaugeFunc("cistern_process_start_time_seconds", "When the process started, in seconds since the Unix epoch.",
		func() float64 { return at })
	version, revision := "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	r.GaugeFunc("cistern_build_info", "Always 1; the labels say what the running binary was built from.",
		func() float64 { return 1 }, "version", version, "revision", revision, "goversion", runtime.Version())
}

// RegisterPanics registers the panics that server ("imap", "lmtp")
// recovered, as count reports them, in the one family the servers share.
func (r *Registry) RegisterPanics(server string, count func() int64) {
	r.CounterFunc("cistern_panics_total", "Panics recovered while serving a connection; each closed that connection only.",
		func() float64 { return float64(count()) }, "server", server)
}
