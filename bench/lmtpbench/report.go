package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/cistern-mail/cistern/bench/internal/machine"
)

// serverStats are one server's runs of one configuration.
type serverStats struct {
	Runs []runResult `json:"runs"`
	// Deliveries per second: median, min and max over the runs.
	Median float64 `json:"median_deliveries_per_second"`
	Min    float64 `json:"min_deliveries_per_second"`
	Max    float64 `json:"max_deliveries_per_second"`
	// Medians over the runs of the runs' figures.
	LatencyP50 float64 `json:"median_latency_p50_ms"`
	LatencyP99 float64 `json:"median_latency_p99_ms"`
	ServerCPU  float64 `json:"median_server_cpu_ms_per_delivery"`
	ClientCPU  float64 `json:"median_client_cpu_ms_per_delivery"`
	FileBytes  int64   `json:"mean_file_bytes"`
}

type configResult struct {
	config
	Cistern *serverStats `json:"cistern,omitempty"`
	Dovecot *serverStats `json:"dovecot,omitempty"`
	// Ratio is Cistern's median deliveries per second over Dovecot's:
	// above 1, Cistern is faster.
	Ratio float64 `json:"ratio_cistern_dovecot,omitempty"`
}

type results struct {
	Machine machine.Info `json:"machine"`
	// DovecotMailFsync is Dovecot's mail_fsync setting.
	DovecotMailFsync string          `json:"dovecot_mail_fsync,omitempty"`
	Runs             int             `json:"runs"`
	Warmup           int             `json:"warmup_deliveries_per_size"`
	Configs          []*configResult `json:"configurations"`
}

// stats returns the named server's stats, made on first use.
func (cr *configResult) stats(name string) *serverStats {
	p := &cr.Cistern
	if name == "dovecot" {
		p = &cr.Dovecot
	}
	if *p == nil {
		*p = &serverStats{}
	}
	return *p
}

// summarize computes the medians and the ratio from the runs.
func (cr *configResult) summarize() {
	for _, s := range []*serverStats{cr.Cistern, cr.Dovecot} {
		if s == nil || len(s.Runs) == 0 {
			continue
		}
		med := func(f func(runResult) float64) float64 {
			v := make([]float64, len(s.Runs))
			for i, r := range s.Runs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return median(v)
		}
		rates := make([]float64, len(s.Runs))
		var bytes int64
		for i, r := range s.Runs {
			rates[i] = r.PerSecond
			bytes += r.FileBytes
		}
		slices.Sort(rates)
		s.Median, s.Min, s.Max = median(rates), rates[0], rates[len(rates)-1]
		s.LatencyP50 = med(func(r runResult) float64 { return r.LatencyP50 })
		s.LatencyP99 = med(func(r runResult) float64 { return r.LatencyP99 })
		s.ServerCPU = med(func(r runResult) float64 { return r.ServerCPU })
		s.ClientCPU = med(func(r runResult) float64 { return r.ClientCPU })
		s.FileBytes = bytes / int64(len(s.Runs))
	}
	if cr.Cistern != nil && cr.Dovecot != nil && cr.Dovecot.Median > 0 {
		cr.Ratio = cr.Cistern.Median / cr.Dovecot.Median
	}
}

func (r *results) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *results) writeTable(w io.Writer) {
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	if r.Machine.Dovecot != "" {
		fmt.Fprintf(w, "dovecot: %s, mail_fsync = %s\n", r.Machine.Dovecot, r.DovecotMailFsync)
	}
	fmt.Fprintf(w, "%d timed runs per configuration and server, each into a new Maildir, after %d untimed deliveries of each size\n\n",
		r.Runs, r.Warmup)

	fmt.Fprintf(w, "%-8s %10s %7s  %-24s %-24s %8s\n", "body", "deliveries", "clients",
		"Cistern/s (min–max)", "Dovecot/s (min–max)", "C/D")
	for _, c := range r.Configs {
		ratio := "-"
		if c.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", c.Ratio)
		}
		fmt.Fprintf(w, "%-8s %10d %7d  %-24s %-24s %8s\n", sizeName(c.Size), c.Deliveries, c.Clients,
			rate(c.Cistern), rate(c.Dovecot), ratio)
	}
	fmt.Fprintf(w, "\ndeliveries per second, median of the runs; C/D = Cistern/Dovecot, above 1: Cistern is faster\n\n")

	fmt.Fprintf(w, "per delivery, medians of the runs: transaction latency p50 / p99 (ms), server CPU (ms), client CPU (ms), stored file (bytes)\n")
	fmt.Fprintf(w, "%-8s %7s  %-38s %s\n", "body", "clients", "Cistern", "Dovecot")
	for _, c := range r.Configs {
		fmt.Fprintf(w, "%-8s %7d  %-38s %s\n", sizeName(c.Size), c.Clients, perDelivery(c.Cistern), perDelivery(c.Dovecot))
	}
}

// rate is "median (min–max)" in deliveries per second.
func rate(s *serverStats) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f (%.0f–%.0f)", s.Median, s.Min, s.Max)
}

func perDelivery(s *serverStats) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f / %.2f, %.3f, %.3f, %d", s.LatencyP50, s.LatencyP99, s.ServerCPU, s.ClientCPU, s.FileBytes)
}
