package main

import (
	"encoding/json"
	"fmt"
	"io"
)

func (r *results) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *results) writeTable(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "machine: %s\n", m)
	if m.Dovecot != "" {
		fmt.Fprintf(w, "dovecot: %s\n", m.Dovecot)
	}
	fmt.Fprintf(w, "INBOX: %d messages, %.1f MB; %d timed runs per operation and server after one untimed pass\n\n",
		r.Corpus.Messages, float64(r.Corpus.Bytes)/1e6, r.Runs)

	fmt.Fprintf(w, "%-28s %26s %26s %16s\n", "operation", "Cistern ms (min–max)", "Dovecot ms (min–max)", "Cistern/Dovecot")
	for _, op := range r.Operations {
		dovecot, ratio := "-", "-"
		if d := op.Dovecot; d != nil {
			dovecot, ratio = spread(d), fmt.Sprintf("%.2f", op.Ratio)
		}
		fmt.Fprintf(w, "%-28s %26s %26s %16s\n", op.Name, spread(&op.Cistern), dovecot, ratio)
	}
	fmt.Fprintln(w, "untimed first pass (warming), ms:")
	for _, op := range r.Operations {
		dovecot := "-"
		if d := op.Dovecot; d != nil {
			dovecot = fmt.Sprintf("%.1f", d.WarmMS)
		}
		fmt.Fprintf(w, "  %-26s %26.1f %26s\n", op.Name, op.Cistern.WarmMS, dovecot)
	}
	fmt.Fprintf(w, "\nmedians over the timed runs; ratio < 1: Cistern is faster\n")
	fmt.Fprintf(w, "response bytes per run (Cistern / Dovecot):\n")
	for _, op := range r.Operations {
		fmt.Fprintf(w, "  %-26s %12d", op.Name, op.Cistern.ResponseBytes)
		if op.Dovecot != nil {
			fmt.Fprintf(w, " / %d", op.Dovecot.ResponseBytes)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "SEARCH TEXT %q: Cistern found %d messages", searchWord, r.SearchHits["cistern"])
	if n, ok := r.SearchHits["dovecot"]; ok {
		fmt.Fprintf(w, ", Dovecot %d (the same)", n)
	}
	fmt.Fprintf(w, "; the generator planted it in %d\n", r.Corpus.Hits)
}

// spread is "median (min–max)" in ms; the en dash is one column wide.
// Times under 10 ms get two decimals, so that a SELECT's ratio can be
// read off the table.
func spread(s *serverStats) string {
	f := "%.1f (%.1f–%.1f)"
	if s.MaxMS < 10 {
		f = "%.2f (%.2f–%.2f)"
	}
	return fmt.Sprintf(f, s.MedianMS, s.MinMS, s.MaxMS)
}
