package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"time"

	"github.com/cistern-mail/cistern/bench/internal/machine"
)

// operation is one timed IMAP command.
type operation struct {
	Key     string `json:"key"` // names the profile file
	Name    string `json:"name"`
	Command string `json:"command"`
	// selectFirst: the session selects INBOX (untimed) before it.
	selectFirst bool
	// heldOpen: another session has INBOX selected meanwhile. Cistern
	// then has the mailbox open and synced (store.Registry shares it);
	// without one, every SELECT opens and syncs it anew.
	heldOpen bool
	// last: the command's message set is the last this many messages
	// ("<n-last+1>:*", Command holding "%s" for it); 0: none.
	last int
	// restart: the server is stopped and started again (untimed) before
	// each run, so that the command is the first of a new process; with
	// cold, the kernel's page cache is dropped too (root only).
	restart, cold bool
	// qresync: the run is a reconnect (qresync.go): a session learns
	// HIGHESTMODSEQ, another changes qresyncChanged messages' flags, and
	// the timed command is SELECT INBOX (QRESYNC (uidvalidity modseq)),
	// Command holding "%d %d" for them.
	qresync bool
}

// command is the command sent: Command, with the message set of last
// filled in.
func (op operation) command(corpus corpusInfo) string {
	if op.last == 0 {
		return op.Command
	}
	return fmt.Sprintf(op.Command, strconv.Itoa(max(corpus.Messages-op.last+1, 1))+":*")
}

var operations = []operation{
	{Key: "select", Name: "SELECT INBOX", Command: "SELECT INBOX"},
	{Key: "select-held", Name: "SELECT INBOX, held open", Command: "SELECT INBOX", heldOpen: true},
	{Key: "select-restart", Name: "SELECT INBOX, after restart", Command: "SELECT INBOX", restart: true},
	{Key: "select-restart-cold", Name: "SELECT INBOX, restart, cold", Command: "SELECT INBOX", restart: true, cold: true},
	{Key: "qresync-100", Name: "SELECT (QRESYNC), 100 changed", Command: "SELECT INBOX (QRESYNC (%d %d))", qresync: true},
	{Key: "uid-fetch-flags", Name: "UID FETCH 1:* (FLAGS)", Command: "UID FETCH 1:* (FLAGS)", selectFirst: true},
	{Key: "fetch-envelope", Name: "FETCH 1:* (ENVELOPE)", Command: "FETCH 1:* (ENVELOPE)", selectFirst: true},
	{Key: "fetch-body-last1000", Name: "FETCH last 1,000 BODY.PEEK[]", Command: "FETCH %s BODY.PEEK[]", selectFirst: true, last: 1000},
	{Key: "search-text", Name: `SEARCH TEXT "` + searchWord + `"`, Command: `SEARCH TEXT "` + searchWord + `"`, selectFirst: true},
}

// holdOpen starts the session that keeps INBOX selected during op's runs
// on s, when op asks for one; the returned function ends it.
func holdOpen(s *server, op operation, corpus corpusInfo) (func(), error) {
	if !op.heldOpen {
		return func() {}, nil
	}
	c, err := login(s.addr)
	if err != nil {
		return nil, err
	}
	rep, err := c.run("SELECT INBOX")
	if err == nil && rep.exists != corpus.Messages {
		err = fmt.Errorf("SELECT INBOX: %d EXISTS, want %d", rep.exists, corpus.Messages)
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("the session holding INBOX open: %w", err)
	}
	return c.close, nil
}

// serverStats are one server's runs of one operation.
type serverStats struct {
	WarmMS        float64   `json:"warm_ms"` // the untimed first pass
	RunsMS        []float64 `json:"runs_ms"`
	MedianMS      float64   `json:"median_ms"`
	MinMS         float64   `json:"min_ms"`
	MaxMS         float64   `json:"max_ms"`
	ResponseBytes int64     `json:"response_bytes"` // of the command, per run
}

type opResult struct {
	operation
	Cistern serverStats  `json:"cistern"`
	Dovecot *serverStats `json:"dovecot,omitempty"`
	// Ratio is Cistern's median over Dovecot's: below 1, Cistern is faster.
	Ratio float64 `json:"ratio_cistern_dovecot,omitempty"`
}

type results struct {
	Machine    machine.Info `json:"machine"`
	Corpus     corpusInfo   `json:"corpus"`
	Runs       int          `json:"runs"`
	SearchWord string       `json:"search_word"`
	// SearchHits is the number of SEARCH TEXT hits of each server.
	SearchHits map[string]int `json:"search_hits"`
	Operations []*opResult    `json:"operations"`
}

// measureAll warms every server with one pass of every operation and
// then times cfg.runs runs of each operation on each server, Cistern's
// runs of an operation before Dovecot's (so that a CPU profile of this
// process can cover Cistern's runs only).
func measureAll(ctx context.Context, servers []*server, cfg config, corpus corpusInfo, logf func(string, ...any)) (*results, error) {
	res := &results{Corpus: corpus, Runs: cfg.runs, SearchWord: searchWord, SearchHits: map[string]int{}}
	stats := func(r *opResult, s *server) *serverStats {
		if s.name == "cistern" {
			return &r.Cistern
		}
		if r.Dovecot == nil {
			r.Dovecot = &serverStats{}
		}
		return r.Dovecot
	}
	for _, op := range operations {
		if op.cold && !canDropCaches() {
			logf("skipped: %s (dropping the page cache needs root)", op.Name)
			continue
		}
		res.Operations = append(res.Operations, &opResult{operation: op})
	}

	for _, s := range servers {
		for _, r := range res.Operations {
			release, err := holdOpen(s, r.operation, corpus)
			if err != nil {
				return nil, fmt.Errorf("%s, warming: %w", s.name, err)
			}
			d, rep, err := measureOnce(s, r.operation, corpus, res)
			release()
			if err != nil {
				return nil, fmt.Errorf("%s, warming: %w", s.name, err)
			}
			stats(r, s).WarmMS = ms(d)
			logf("warm: %-7s %-26s %10.1f ms  %d response bytes", s.name, r.Name, ms(d), rep.bytes)
		}
	}

	for _, r := range res.Operations {
		for _, s := range servers {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			st := stats(r, s)
			release, err := holdOpen(s, r.operation, corpus)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			stopProfile, err := startProfile(cfg.cpuprofile, s, r.operation, logf)
			if err != nil {
				release()
				return nil, err
			}
			runtime.GC() // garbage from the last block is not this block's
			for range cfg.runs {
				d, rep, err := measureOnce(s, r.operation, corpus, res)
				if err != nil {
					stopProfile()
					release()
					return nil, fmt.Errorf("%s: %w", s.name, err)
				}
				st.RunsMS = append(st.RunsMS, ms(d))
				st.ResponseBytes = rep.bytes
			}
			stopProfile()
			release()
			sorted := slices.Sorted(slices.Values(st.RunsMS))
			st.MinMS, st.MaxMS, st.MedianMS = sorted[0], sorted[len(sorted)-1], median(sorted)
			logf("timed: %-7s %-26s median %10.1f ms (%.1f–%.1f)", s.name, r.Name, st.MedianMS, st.MinMS, st.MaxMS)
		}
		if r.Dovecot != nil && r.Dovecot.MedianMS > 0 {
			r.Ratio = r.Cistern.MedianMS / r.Dovecot.MedianMS
		}
	}
	return res, nil
}

// measureOnce runs op on a new session of s and returns the time from
// sending the command to reading its tagged OK. It checks what the
// responses say against the corpus: SELECT's EXISTS, one FETCH response
// per message, and SEARCH hits that every run of every server agrees on.
func measureOnce(s *server, op operation, corpus corpusInfo, res *results) (time.Duration, reply, error) {
	if op.restart {
		if err := s.restart(op.cold); err != nil {
			return 0, reply{}, fmt.Errorf("restarting %s: %w", s.name, err)
		}
	}
	command := op.command(corpus)
	if op.qresync {
		uidValidity, modseq, err := reconnectPrepare(s, corpus)
		if err != nil {
			return 0, reply{}, err
		}
		command = fmt.Sprintf(op.Command, uidValidity, modseq)
	}
	c, err := login(s.addr)
	if err != nil {
		return 0, reply{}, err
	}
	defer c.close()
	if op.qresync {
		if _, err := c.run("ENABLE QRESYNC"); err != nil {
			return 0, reply{}, err
		}
	}
	if op.selectFirst {
		rep, err := c.run("SELECT INBOX")
		if err != nil {
			return 0, rep, err
		}
		if rep.exists != corpus.Messages {
			return 0, rep, fmt.Errorf("SELECT INBOX: %d EXISTS, want %d", rep.exists, corpus.Messages)
		}
	}
	start := time.Now()
	rep, err := c.run(command)
	d := time.Since(start)
	if err != nil {
		return d, rep, err
	}
	switch op.Key {
	case "select", "select-held", "select-restart", "select-restart-cold":
		if rep.exists != corpus.Messages {
			return d, rep, fmt.Errorf("%s: %d EXISTS, want %d", op.Command, rep.exists, corpus.Messages)
		}
	case "qresync-100":
		if rep.exists != corpus.Messages || rep.fetches != qresyncChanged(corpus) || rep.vanished {
			return d, rep, fmt.Errorf("%s: %d EXISTS, %d FETCH responses, VANISHED %v; want %d, %d, none",
				command, rep.exists, rep.fetches, rep.vanished, corpus.Messages, qresyncChanged(corpus))
		}
	case "uid-fetch-flags", "fetch-envelope":
		if rep.fetches != corpus.Messages {
			return d, rep, fmt.Errorf("%s: %d FETCH responses, want %d", op.Command, rep.fetches, corpus.Messages)
		}
	case "fetch-body-last1000":
		if want := min(op.last, corpus.Messages); rep.fetches != want {
			return d, rep, fmt.Errorf("%s: %d FETCH responses, want %d", op.command(corpus), rep.fetches, want)
		}
	case "search-text":
		if rep.hits <= 0 {
			return d, rep, fmt.Errorf("%s: no hits (%d planted)", op.Command, corpus.Hits)
		}
		if prev, ok := res.SearchHits[s.name]; ok && prev != rep.hits {
			return d, rep, fmt.Errorf("%s: %d hits, an earlier run found %d", op.Command, rep.hits, prev)
		}
		res.SearchHits[s.name] = rep.hits
		for other, n := range res.SearchHits {
			if n != rep.hits {
				return d, rep, fmt.Errorf("%s: the servers disagree: %s found %d messages, %s found %d (%d planted)",
					op.Command, s.name, rep.hits, other, n, corpus.Hits)
			}
		}
	}
	return d, rep, nil
}

// startProfile starts a CPU profile of this process for Cistern's runs of
// op when a profile prefix was given; the returned function stops it.
func startProfile(prefix string, s *server, op operation, logf func(string, ...any)) (func(), error) {
	if prefix == "" || s.name != "cistern" {
		return func() {}, nil
	}
	path := prefix + "." + op.Key + ".pprof"
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			logf("profile %s: %v", path, err)
		}
		logf("profile: %s", path)
	}, nil
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
