package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
)

// machine is what the numbers were measured on.
type machine struct {
	Kernel     string `json:"kernel"`
	CPUs       int    `json:"cpus"`
	CPU        string `json:"cpu"`
	Go         string `json:"go"`
	Dovecot    string `json:"dovecot,omitempty"`
	Filesystem string `json:"filesystem"` // of the work directory
	LoadAvg    string `json:"loadavg"`    // at the end of the run
}

// Filesystem magic numbers (statfs(2)) of the filesystems one benchmarks on.
var fsNames = map[int64]string{
	0xEF53:     "ext4",
	0x01021994: "tmpfs",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0x794C7630: "overlayfs",
	0x2FC12FC1: "zfs",
}

func describeMachine(dir, dovecotBinary string, skipDovecot bool) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil {
		m.Filesystem = fsNames[int64(st.Type)]
		if m.Filesystem == "" {
			m.Filesystem = fmt.Sprintf("0x%X", st.Type)
		}
	}
	if !skipDovecot {
		if out, err := exec.Command(dovecotBinary, "--version").Output(); err == nil {
			m.Dovecot = strings.TrimSpace(string(out))
		}
	}
	return m
}

func (r *results) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *results) writeTable(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "machine: %d CPUs (%s), Linux %s, %s, work directory on %s, load %s\n",
		m.CPUs, m.CPU, m.Kernel, m.Go, m.Filesystem, m.LoadAvg)
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
func spread(s *serverStats) string {
	return fmt.Sprintf("%.1f (%.1f–%.1f)", s.MedianMS, s.MinMS, s.MaxMS)
}
