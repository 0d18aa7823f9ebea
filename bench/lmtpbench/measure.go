package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// lhloName is the client's name in LHLO.
const lhloName = "lmtpbench.example.org"

// config is one measured configuration: deliveries of size-byte bodies
// over clients connections.
type config struct {
	Size       int `json:"body_bytes"`
	Deliveries int `json:"deliveries"`
	Clients    int `json:"clients"`
}

func (c config) String() string {
	return fmt.Sprintf("%s × %d, %d client%s", sizeName(c.Size), c.Deliveries, c.Clients, plural(c.Clients))
}

// runResult is one run of one configuration on one server.
type runResult struct {
	User       string  `json:"user"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"deliveries_per_second"`
	LatencyP50 float64 `json:"latency_p50_ms"` // of one transaction, MAIL to the last reply
	LatencyP99 float64 `json:"latency_p99_ms"`
	// ServerCPU is the CPU time (user + system) of the server's
	// processes during the run, per delivery.
	ServerCPU float64 `json:"server_cpu_ms_per_delivery"`
	// ClientCPU is the CPU time of this process during the run, per
	// delivery: the load generator's cost.
	ClientCPU float64 `json:"client_cpu_ms_per_delivery"`
	// FileBytes is the mean size of a delivered file (the server's own
	// header fields added, line ends as it stores them).
	FileBytes int64 `json:"mean_file_bytes"`
}

// delivery is one message to send.
type delivery struct {
	header []byte
	id     string // its Message-ID
}

// runOnce delivers cfg.Deliveries messages to user on t over cfg.Clients
// connections and checks the result: every recipient answered 250, and
// the user's Maildir (empty before) holds exactly the messages sent,
// each once, whole. runID makes the Message-IDs unique.
func runOnce(ctx context.Context, t *target, user, runID string, cfg config, bodyData []byte) (runResult, error) {
	res := runResult{User: user}
	to := rcpt(user)
	now := time.Now()
	msgs := make([]delivery, cfg.Deliveries)
	for i := range msgs {
		msgs[i] = delivery{header: header(runID, i, to, now), id: messageID(runID, i)}
	}

	clients := make([]*lmtpClient, 0, cfg.Clients)
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	for range cfg.Clients {
		c, err := dialLMTP(t.addr(), lhloName)
		if err != nil {
			return res, err
		}
		clients = append(clients, c)
	}
	// Writeback of the last run's unsynced files (Dovecot's index, the
	// logs) is not this run's cost.
	syscall.Sync()

	var (
		next      atomic.Int64
		failed    atomic.Bool
		errOnce   sync.Once
		firstErr  error
		wg        sync.WaitGroup
		latencies = make([][]time.Duration, len(clients))
		start     = make(chan struct{})
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		failed.Store(true)
	}
	for ci, c := range clients {
		wg.Go(func() {
			<-start
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(msgs) {
					return
				}
				if err := ctx.Err(); err != nil {
					fail(err)
					return
				}
				t0 := time.Now()
				replies, err := c.deliver(sender, []string{to}, msgs[i].header, bodyData)
				latencies[ci] = append(latencies[ci], time.Since(t0))
				if err == nil && replies[0].code != 250 {
					err = &replyError{"delivery to <" + to + ">", replies[0]}
				}
				if err != nil {
					fail(fmt.Errorf("%s, delivery %d of %d: %w", t.name, i+1, len(msgs), err))
					return
				}
			}
		})
	}
	cpu0, err := groupCPU(t.proc.Pgid())
	if err != nil {
		return res, err
	}
	self0 := selfCPU()
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	self1 := selfCPU()
	cpu1, err := groupCPU(t.proc.Pgid())
	if err != nil {
		return res, err
	}
	if firstErr != nil {
		return res, firstErr
	}
	for _, c := range clients {
		if err := c.quit(); err != nil {
			return res, fmt.Errorf("%s: QUIT: %w", t.name, err)
		}
	}
	clients = nil

	n := float64(cfg.Deliveries)
	res.Seconds = elapsed.Seconds()
	res.PerSecond = n / elapsed.Seconds()
	all := slices.Concat(latencies...)
	slices.Sort(all)
	res.LatencyP50 = ms(percentile(all, 0.50))
	res.LatencyP99 = ms(percentile(all, 0.99))
	res.ServerCPU = ms(cpu1-cpu0) / n
	res.ClientCPU = ms(self1-self0) / n

	size, err := checkMaildir(t.mailDir(user), msgs, bodyData)
	if err != nil {
		return res, fmt.Errorf("%s: every delivery was answered 250, but %w", t.name, err)
	}
	res.FileBytes = size / int64(len(msgs))
	return res, nil
}

// checkMaildir checks that the Maildir dir holds exactly msgs: one file
// in new/ or cur/ per message, with its Message-ID and ending in the body
// sent (whatever line ends the server stores), and nothing left in tmp/.
// It returns the files' total size.
func checkMaildir(dir string, msgs []delivery, bodyData []byte) (int64, error) {
	want := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		want[m.id] = true
	}
	bodyLF := bytes.ReplaceAll(bodyData, []byte("\r\n"), []byte("\n"))
	var total int64
	files := 0
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			files++
			p := filepath.Join(dir, sub, e.Name())
			data, err := os.ReadFile(p)
			if err != nil {
				return 0, err
			}
			total += int64(len(data))
			id := headerField(data, "Message-ID")
			switch {
			case id == "":
				return 0, fmt.Errorf("%s has no Message-ID", p)
			case !want[id]:
				return 0, fmt.Errorf("%s: Message-ID %s was not sent in this run, or is there twice", p, id)
			}
			delete(want, id)
			if !bytes.HasSuffix(data, bodyData) && !bytes.HasSuffix(data, bodyLF) {
				return 0, fmt.Errorf("%s (Message-ID %s) does not end in the body that was sent", p, id)
			}
		}
	}
	if files != len(msgs) {
		return 0, fmt.Errorf("%s holds %d messages in new/ and cur/, want %d", dir, files, len(msgs))
	}
	if len(want) > 0 {
		return 0, fmt.Errorf("%s lacks %d of the messages sent", dir, len(want))
	}
	tmp, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		return 0, err
	}
	if len(tmp) > 0 {
		return 0, fmt.Errorf("%s/tmp holds %d files after every delivery was answered", dir, len(tmp))
	}
	return total, nil
}

// headerField returns the value of the first header field called name
// in the message data, or "".
func headerField(data []byte, name string) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			return ""
		}
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// groupCPU is the CPU time, user and system, of the processes of the
// process group pgid and of their children that ended and were waited
// for.
func groupCPU(pgid int) (time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid pgrp session tty tpgid flags minflt
		// cminflt majflt cmajflt utime stime cutime cstime ...; comm
		// may hold spaces and parentheses.
		end := bytes.LastIndexByte(b, ')')
		if end < 0 {
			continue
		}
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 15 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg != pgid {
			continue
		}
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(v, 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// selfCPU is this process's CPU time, user and system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

var errNoServers = errors.New("nothing to measure: both --skip-cistern and --skip-dovecot")

func sizeName(n int) string {
	switch {
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	default:
		return strconv.Itoa(n) + " B"
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
