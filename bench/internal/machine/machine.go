// Package machine describes the machine a benchmark under bench/ ran on,
// for its report: kernel, CPUs, Go, Dovecot's version, the filesystem of
// the work directory and the load.
package machine

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
)

// Info is what the numbers were measured on.
type Info struct {
	Kernel     string `json:"kernel"`
	CPUs       int    `json:"cpus"`
	CPU        string `json:"cpu"`
	Go         string `json:"go"`
	Dovecot    string `json:"dovecot,omitempty"`
	Filesystem string `json:"filesystem"` // of the work directory
	LoadAvg    string `json:"loadavg"`    // when Describe ran
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

// Describe describes this machine with dir as the work directory. With a
// dovecotBinary ("" for none) it asks it for its version.
func Describe(dir, dovecotBinary string) Info {
	m := Info{CPUs: runtime.NumCPU(), Go: runtime.Version()}
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
	if dovecotBinary != "" {
		if out, err := exec.Command(dovecotBinary, "--version").Output(); err == nil {
			m.Dovecot = strings.TrimSpace(string(out))
		}
	}
	return m
}

// String is the one-line summary the reports print.
func (m Info) String() string {
	return fmt.Sprintf("%d CPUs (%s), Linux %s, %s, work directory on %s, load %s",
		m.CPUs, m.CPU, m.Kernel, m.Go, m.Filesystem, m.LoadAvg)
}
