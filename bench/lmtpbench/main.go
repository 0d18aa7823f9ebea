// Command lmtpbench measures LMTP delivery throughput, Cistern's beside
// Dovecot 2.3's, on one machine and filesystem at equal durability, and
// reports deliveries per second of each server and the ratio
// Cistern/Dovecot (above 1: Cistern is faster). bench/lmtp.sh installs
// what it needs and runs it; see bench/README.md.
//
// Both servers are child processes on loopback ports: 'cistern serve'
// with a configuration of its own (the --cistern binary), and a private
// Dovecot (master in the foreground, dovecot-lmtpd) with LMTP only and a
// passwd-file userdb. Each run of each configuration delivers to a user
// of its own, whose Maildir is new and empty, so that every run starts
// from the same state and its result can be checked exactly.
//
// # Work directory
//
// Everything lives under --dir, made if missing, which must not hold an
// earlier run's files (lmtpbench deletes nothing: on ext4 without a
// journal, files created right after many were deleted cost more):
//
//	path                          what
//	cistern.toml, passwd          Cistern's configuration and passwd-file
//	cistern-data/                 Cistern's data_dir (its index)
//	cistern-mail/<user>/Maildir   Cistern's Maildirs (mail_location)
//	cistern.log                   what 'cistern serve' wrote
//	dovecot-run/                  Dovecot's configuration, userdb
//	                              (users), runtime and state
//	                              directories, and log
//	dovecot-mail/<user>/Maildir   Dovecot's Maildirs, with its index
//	                              files; owned by the mail user
//
// # What is timed
//
// A configuration is a body size, a number of deliveries N and a number
// of clients C. A run opens C connections (greeting and LHLO untimed);
// then, timed, the C clients take deliveries from a shared counter until
// N are done, each a MAIL FROM / RCPT TO / DATA transaction on its
// client's connection, one recipient, every reply read before the next
// command. The time runs from releasing the clients to the last reply.
// Deliveries per second is N over that time. Each configuration runs
// --runs times on each server, the servers alternating which goes
// first; the report gives the median, min and max.
//
// Before the runs, each server takes --warmup deliveries of each size
// over the largest number of clients (its processes start, its caches
// fill); they are checked but not reported.
//
// Messages have the header fields a message has when it reaches the
// mailbox server (Received, From, To, Subject, Date, a Message-ID unique
// to the run and delivery, MIME fields) and a text body of exactly the
// configured size, the same for every message of a size, with lines that
// start with '.' so that dot-stuffing is exercised (client.go).
//
// # Checks
//
// A run fails unless every recipient is answered 250, and afterwards the
// user's Maildir holds exactly N files in new/ and cur/, each with a
// Message-ID of the run, no Message-ID twice, each ending in the body
// sent, and nothing in tmp/. Any failure ends the benchmark (exit 1).
//
// Dovecot needs root (its master) and the unprivileged account
// testproc.MailUser for mail access; bench/lmtp.sh creates it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cistern-mail/cistern/bench/internal/cli"
	"github.com/cistern-mail/cistern/bench/internal/machine"
	"github.com/cistern-mail/cistern/internal/testproc"
)

const usage = `usage: lmtpbench --dir D [flags]

Delivers messages over LMTP to Cistern ('cistern serve', a child
process) and to a private Dovecot, each into fresh Maildirs, and prints
deliveries per second for each body size and number of clients, with
the ratio Cistern/Dovecot (above 1: Cistern is faster). Checks that every
delivery was answered 250 and is in the Maildir, once.

flags:
  --dir D              work directory, made if missing (required); it
                       must not hold an earlier run's files
  --cistern PATH       the cistern binary (default D/cistern)
  --dovecot PATH       the Dovecot binary (default /usr/sbin/dovecot)
  --sizes LIST         body sizes, bytes or with K/KiB (default 4KiB,100KiB)
  --deliveries LIST    deliveries per run, one per size or one for all
                       (default 2000,500)
  --clients LIST       concurrent client connections (default 1,8)
  --runs R             runs per configuration and server (default 3)
  --warmup N           untimed deliveries of each size per server before
                       the runs (default 200)
  --dovecot-fsync MODE Dovecot's mail_fsync: optimized (default) or always
  --skip-cistern       measure Dovecot only
  --skip-dovecot       measure Cistern only (no root needed)
  --json               print one JSON object instead of the table

Exit status: 0 done, 1 failed (including a delivery not answered 250 or
not found in the Maildir), 2 usage error.
`

// errUsage marks an error in the command line (exit status 2).
var errUsage = cli.ErrUsage

func main() { cli.Main("lmtpbench", Run) }

// options is what the flags say.
type options struct {
	dir          string
	cistern      string
	dovecot      string
	sizes        []int
	deliveries   []int
	clients      []int
	runs         int
	warmup       int
	dovecotFsync string
	skipCistern  bool
	skipDovecot  bool
	json         bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var sizes, deliveries, clients string
	fs := flag.NewFlagSet("lmtpbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.dir, "dir", "", "")
	fs.StringVar(&o.cistern, "cistern", "", "")
	fs.StringVar(&o.dovecot, "dovecot", "/usr/sbin/dovecot", "")
	fs.StringVar(&sizes, "sizes", "4KiB,100KiB", "")
	fs.StringVar(&deliveries, "deliveries", "2000,500", "")
	fs.StringVar(&clients, "clients", "1,8", "")
	fs.IntVar(&o.runs, "runs", 3, "")
	fs.IntVar(&o.warmup, "warmup", 200, "")
	fs.StringVar(&o.dovecotFsync, "dovecot-fsync", "optimized", "")
	fs.BoolVar(&o.skipCistern, "skip-cistern", false, "")
	fs.BoolVar(&o.skipDovecot, "skip-dovecot", false, "")
	fs.BoolVar(&o.json, "json", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprint(stderr, usage)
		if errors.Is(err, flag.ErrHelp) {
			return o, flag.ErrHelp
		}
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	bad := func(format string, a ...any) (options, error) {
		return o, fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
	}
	var err error
	if o.sizes, err = parseList(sizes, parseSize); err != nil {
		return bad("--sizes: %v", err)
	}
	if o.deliveries, err = parseList(deliveries, strconv.Atoi); err != nil {
		return bad("--deliveries: %v", err)
	}
	if o.clients, err = parseList(clients, strconv.Atoi); err != nil {
		return bad("--clients: %v", err)
	}
	switch {
	case fs.NArg() > 0:
		return bad("no arguments expected, got %q", fs.Args())
	case o.dir == "":
		return bad("--dir is required")
	case len(o.deliveries) != 1 && len(o.deliveries) != len(o.sizes):
		return bad("--deliveries: %d values for %d sizes", len(o.deliveries), len(o.sizes))
	case o.runs < 1:
		return bad("--runs must be at least 1")
	case o.warmup < 0:
		return bad("--warmup must not be negative")
	case o.dovecotFsync != "optimized" && o.dovecotFsync != "always":
		return bad("--dovecot-fsync: %q is neither optimized nor always (never would not be equal durability)", o.dovecotFsync)
	case o.skipCistern && o.skipDovecot:
		return o, errNoServers
	}
	for _, n := range slices.Concat(o.sizes, o.deliveries, o.clients) {
		if n < 1 {
			return bad("sizes, deliveries and clients must be at least 1")
		}
	}
	if len(o.deliveries) == 1 {
		o.deliveries = slices.Repeat(o.deliveries, len(o.sizes))
	}
	if o.cistern == "" {
		o.cistern = o.dir + "/cistern"
	}
	return o, nil
}

// parseList parses a comma-separated list with parse.
func parseList(s string, parse func(string) (int, error)) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := parse(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// parseSize parses bytes: "4096", "4K", "4KiB".
func parseSize(s string) (int, error) {
	mult := 1
	for _, suffix := range []string{"KiB", "K"} {
		if rest, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = rest, 1<<10
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: want bytes, or a number with K or KiB", s)
	}
	return n * mult, nil
}

// Run is the whole benchmark; main only maps its error to an exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "lmtpbench: "+format+"\n", a...) }

	w, err := newWorkDir(o.dir)
	if err != nil {
		return err
	}
	var owner *testproc.Owner
	if !o.skipDovecot {
		if owner, err = testproc.CheckDovecot(o.dovecot, w.root, "run bench/lmtp.sh (as root), or pass --skip-dovecot"); err != nil {
			return err
		}
	}

	// The plan: every run of every configuration on a server has a user
	// (and Maildir) of its own; so has each size's warm-up.
	var configs []config
	for i, size := range o.sizes {
		for _, c := range o.clients {
			configs = append(configs, config{Size: size, Deliveries: o.deliveries[i], Clients: c})
		}
	}
	warmUser := func(sizeIdx int) string { return fmt.Sprintf("warm%d", sizeIdx+1) }
	runUser := func(ci, run int) string { return fmt.Sprintf("run%03d", ci*o.runs+run+1) }
	var users []string
	for i := range o.sizes {
		users = append(users, warmUser(i))
	}
	for ci := range configs {
		for r := range o.runs {
			users = append(users, runUser(ci, r))
		}
	}

	var targets []*target
	defer func() {
		for _, t := range targets {
			if serr := t.proc.Stop(testproc.StopTimeout); serr != nil {
				logf("%v", serr)
				if err == nil {
					err = serr
				}
			}
		}
	}()
	if !o.skipCistern {
		t, err := startCistern(o.cistern, w, users)
		if err != nil {
			return err
		}
		targets = append(targets, t)
		logf("cistern (%s) LMTP on %s", o.cistern, t.addr())
	}
	if !o.skipDovecot {
		version, err := testproc.DovecotVersion(o.dovecot)
		if err != nil {
			return err
		}
		t, err := startDovecot(o.dovecot, w, owner, users, o.dovecotFsync)
		if err != nil {
			return err
		}
		targets = append(targets, t)
		logf("%s LMTP on %s, mail_fsync = %s", version, t.addr(), o.dovecotFsync)
	}

	bodies := make(map[int][]byte)
	for _, size := range o.sizes {
		bodies[size] = body(size)
	}
	runTag := strconv.FormatInt(time.Now().UnixNano(), 36)
	maxClients := slices.Max(o.clients)

	if o.warmup > 0 {
		for _, t := range targets {
			for i, size := range o.sizes {
				cfg := config{Size: size, Deliveries: o.warmup, Clients: maxClients}
				r, err := runOnce(ctx, t, warmUser(i), runTag+"-"+t.name+"-"+warmUser(i), cfg, bodies[size])
				if err != nil {
					return fmt.Errorf("warm-up: %w", err)
				}
				logf("warm:  %-7s %-28s %8.0f deliveries/s", t.name, cfg, r.PerSecond)
			}
		}
	}

	res := &results{Runs: o.runs, Warmup: o.warmup}
	if !o.skipDovecot {
		res.DovecotMailFsync = o.dovecotFsync
	}
	for ci, cfg := range configs {
		cr := &configResult{config: cfg}
		res.Configs = append(res.Configs, cr)
		for r := range o.runs {
			order := slices.Clone(targets)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, t := range order {
				user := runUser(ci, r)
				rr, err := runOnce(ctx, t, user, runTag+"-"+t.name+"-"+user, cfg, bodies[cfg.Size])
				if err != nil {
					return err
				}
				cr.stats(t.name).Runs = append(cr.stats(t.name).Runs, rr)
				logf("run %d: %-7s %-28s %8.0f deliveries/s, p50 %.2f ms, p99 %.2f ms, server CPU %.3f ms/delivery",
					r+1, t.name, cfg, rr.PerSecond, rr.LatencyP50, rr.LatencyP99, rr.ServerCPU)
			}
		}
		cr.summarize()
	}
	for _, t := range targets {
		if t.proc.Exited() {
			return fmt.Errorf("%s exited during the benchmark", t.name)
		}
	}

	dovecotBinary := o.dovecot
	if o.skipDovecot {
		dovecotBinary = ""
	}
	res.Machine = machine.Describe(w.root, dovecotBinary)
	if o.json {
		return res.writeJSON(stdout)
	}
	res.writeTable(stdout)
	return nil
}
