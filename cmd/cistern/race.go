package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cistern-mail/cistern/internal/race"
)

const raceHelp = `usage: cistern race --dir D --files N --seconds S [--renamers R] [--keep] [--json]

Measures the readdir race (DESIGN.md §1), the test Dovecot's authors ran in
2004: renamers change message flags at random, as a mail client does, while
two scanners list cur/ over and over:

  naive    open + readdir, as a mail server does (Go's Readdirnames: many
           getdents64 calls with a small buffer, like glibc's readdir)
  cistern  maildir.List, which proves a listing complete or says it could not

A scan is wrong when a message is missing or seen twice. A missing message
is a phantom expunge for a server that trusts the scan. For cistern, only
proven listings count as phantom expunges; an unproven listing (no proof
within the retry budget: starved) is never trusted.

D must be absent or empty. The race writes N small messages straight into
D/cur/ without fsync (scratch data: a crash loses nothing of value) and
removes every file it made when it is done, unless --keep.

Exit status: 0; 1 when a proven listing was wrong (a broken guarantee) or
the race could not run; 2 for bad flags.

flags:
`

// runRace is "cistern race".
func runRace(ctx context.Context, args []string, stdio Stdio) error {
	fs := flag.NewFlagSet("cistern race", flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), raceHelp)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", "", "`directory` for the scratch Maildir: absent or empty (required)")
	files := fs.Int("files", 0, "number of messages in cur/, 1.."+strconv.Itoa(race.MaxFiles)+" (required)")
	seconds := fs.Float64("seconds", 0, "how long the race runs, up to "+strconv.Itoa(int(race.MaxDuration.Seconds()))+" (required)")
	renamers := fs.Int("renamers", 1, "number of renaming goroutines, each owning a share of the messages")
	keep := fs.Bool("keep", false, "leave the Maildir in --dir after the race")
	seed := fs.Uint64("seed", 0, "seed of the message sizes and the renames (0: from the clock; the report prints the one used)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of tables")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: race: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: race: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *renamers < 1 {
		return fmt.Errorf("%w: race: --renamers %d: need at least 1", errUsage, *renamers)
	}
	// Compare seconds before converting: a huge float overflows Duration.
	if !(*seconds > 0 && *seconds <= race.MaxDuration.Seconds()) {
		return fmt.Errorf("%w: race: --seconds %v not in (0, %v]", errUsage, *seconds, race.MaxDuration.Seconds())
	}
	cfg := race.Config{
		Dir:      *dir,
		Files:    *files,
		Duration: time.Duration(*seconds * float64(time.Second)),
		Renamers: *renamers,
		Keep:     *keep,
		Seed:     *seed,
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	res, err := race.Run(ctx, cfg)
	if res != nil {
		if *asJSON {
			enc := json.NewEncoder(stdio.Out)
			if jerr := enc.Encode(res); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			printRace(stdio.Out, res)
		}
	}
	if err != nil {
		return fmt.Errorf("race: %w", err)
	}
	if res.BrokenGuarantee() {
		return &exitError{code: 1, err: fmt.Errorf("race: BROKEN GUARANTEE on %s: %d proven listings were wrong, %d phantom expunges (DESIGN.md §2.1); examples: %+v",
			res.FS, res.BrokenProofs, res.CisternPhantom, res.BrokenExamples)}
	}
	return nil
}

// printRace writes the human report: the setup, then one column per
// scanner.
func printRace(w io.Writer, r *race.Result) {
	fmt.Fprintf(w, "filesystem  %s\n", r.FS)
	fmt.Fprintf(w, "files       %d\n", r.Files)
	fmt.Fprintf(w, "seconds     %g (%.2f elapsed)\n", r.Seconds, r.Elapsed)
	fmt.Fprintf(w, "renamers    %d\n", r.Renamers)
	fmt.Fprintf(w, "seed        %d\n", r.Seed)
	fmt.Fprintf(w, "renames     %d (%.0f/s)\n\n", r.Renames, r.RenamesPerSec)

	row := func(name, naive, cistern string) { fmt.Fprintf(w, "%-20s %14s %14s\n", name, naive, cistern) }
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	row("", "naive readdir", "cistern List")
	row("scans", num(r.NaiveScans), num(r.CisternScans))
	row("wrong scans", num(r.NaiveWrong), num(r.CisternWrong))
	row("wrong %", percent(r.NaiveWrong, r.NaiveScans), percent(r.CisternWrong, r.CisternScans))
	row("phantom expunges", num(r.NaivePhantom), num(r.CisternPhantom))
	row("missing entries", num(r.NaiveMissing), num(r.CisternMissing))
	row("doubled entries", num(r.NaiveDoubled), num(r.CisternDoubled))
	row("unproven (starved)", "-", num(r.CisternUnproven))
	row("proofs used", "-", proofs(r.CisternProofs))
	row("retries", "-", num(r.CisternRetries))
	row("scans/s", fmt.Sprintf("%.1f", r.NaiveScansPerS), fmt.Sprintf("%.1f", r.CisternScansPerS))

	fmt.Fprintln(w)
	switch {
	case r.BrokenGuarantee():
		fmt.Fprintf(w, "BROKEN: %d proven listings were wrong (%d phantom expunges)\n", r.BrokenProofs, r.CisternPhantom)
		for _, e := range r.BrokenExamples {
			fmt.Fprintf(w, "  proof %s, %d tries, %d entries: %d missing %d doubled %d unknown; missing %q\n",
				e.Proof, e.Tries, e.Entries, e.Verdict.Missing, e.Verdict.Doubled, e.Verdict.Unknown, e.Missing)
		}
	case r.CisternScans > 0 && r.CisternUnproven == r.CisternScans:
		fmt.Fprintln(w, "no proven listing: cistern would have delayed every expunge (starved), never invented one")
	default:
		fmt.Fprintln(w, "no proven listing missed a message")
	}
}

func percent(n, of int64) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", 100*float64(n)/float64(of))
}

// proofs formats proof counts as "atomic=12 stable-timestamp=3", sorted
// by name.
func proofs(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, k+"="+strconv.FormatInt(m[k], 10))
	}
	return strings.Join(parts, " ")
}
