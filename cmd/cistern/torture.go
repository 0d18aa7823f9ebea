package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cistern-mail/cistern/internal/torture"
)

const tortureHelp = `usage: cistern torture maildir --dir D [flags]
       cistern torture imap --imap HOST:PORT --user U --pass P [flags]

torture imap tortures any IMAP server (Cistern, Dovecot) over the wire,
with LMTP deliverers and foreign Maildir writers, and checks what every
session was told; see 'cistern torture imap -h'.

torture maildir runs foreign Maildir writers that never take Cistern's
lock (flag renamers, new/ -> cur/ movers, deliverers, deleters) against
one Maildir, with several Cistern syncers in separate processes, and
checks every guarantee: no phantom expunge, stable UIDs, no UID given
twice or reused, nothing lost, flags converge. Exits 1 when any
guarantee was broken.

D must be absent or empty; it is left behind for inspection (the event
log is D/cistern-torture/events.log).
`

func runTorture(ctx context.Context, args []string, stdio Stdio) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdio.Out, tortureHelp)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "maildir":
		return runTortureMaildir(ctx, args[1:], stdio)
	case "maildir-syncer":
		return runTortureSyncer(ctx, args[1:], stdio)
	case "imap":
		return runTortureIMAP(ctx, args[1:], stdio)
	case "imap-compare":
		return runTortureIMAPCompare(ctx, args[1:], stdio)
	}
	return fmt.Errorf("%w: unknown torture %q (want maildir or imap)", errUsage, args[0])
}

func runTortureMaildir(ctx context.Context, args []string, stdio Stdio) error {
	fs := flag.NewFlagSet("torture maildir", flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() {
		fmt.Fprint(stdio.Err, tortureHelp+"\nflags:\n")
		fs.PrintDefaults()
	}
	dir := fs.String("dir", "", "the Maildir to create and torture (absent or empty)")
	messages := fs.Int("messages", 5000, "messages in the Maildir at the start")
	seconds := fs.Float64("seconds", 60, "how long the writers run")
	renamers := fs.Int("renamers", 4, "flag renamers (they also move new/ -> cur/)")
	deliverers := fs.Int("deliverers", 2, "deliverers writing tmp/ -> new/")
	deleters := fs.Int("deleters", 1, "deleters")
	syncers := fs.Int("syncers", 4, "Cistern syncer processes")
	asJSON := fs.Bool("json", false, "print one JSON object")
	unsafe := fs.Bool("unsafe-trust-readdir", false, "TEST ONLY: switch the expunge rule off (plain readdir, trusted) to show that the checker sees phantom expunges")
	verbose := fs.Bool("v", false, "show the syncers' logs")
	noAtomic := fs.Bool("no-atomic-read", false, "prove listings by stable timestamps only, as on btrfs")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return errUsage
	}
	if *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%w: --dir is required", errUsage)
	}
	if *seconds <= 0 || *seconds > 86400 {
		return fmt.Errorf("%w: --seconds must be in (0, 86400]", errUsage)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg := torture.MaildirConfig{
		Dir: *dir, Messages: *messages, Duration: time.Duration(*seconds * float64(time.Second)),
		Renamers: *renamers, Deliverers: *deliverers, Deleters: *deleters, Syncers: *syncers,
		SyncerCommand:      []string{exe, "torture", "maildir-syncer"},
		UnsafeTrustReaddir: *unsafe,
		NoAtomicRead:       *noAtomic,
	}
	if *verbose {
		cfg.Stderr = stdio.Err
	}
	res, err := torture.RunMaildir(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdio.Out)
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printTorture(stdio, res)
	}
	if n := res.Violations(); n > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d guarantee violations", n)}
	}
	return nil
}

func printTorture(stdio Stdio, r *torture.MaildirResult) {
	w := stdio.Out
	fmt.Fprintf(w, "filesystem      %s\n", r.FS)
	fmt.Fprintf(w, "expunge rule    %t\n", r.ExpungeRule)
	fmt.Fprintf(w, "atomic reads    %t\n", r.AtomicRead)
	fmt.Fprintf(w, "seconds         %.1f\n", r.Seconds)
	fmt.Fprintf(w, "messages        %d at start, %d at end\n", r.Messages, r.FinalMessages)
	fmt.Fprintf(w, "renames         %d\n", r.Renames)
	fmt.Fprintf(w, "moves           %d\n", r.Moves)
	fmt.Fprintf(w, "deliveries      %d\n", r.Deliveries)
	fmt.Fprintf(w, "deletions       %d\n", r.Deletions)
	fmt.Fprintf(w, "syncs           %d (%d proven, %d skipped by the cheap check)\n", r.Syncs, r.ProvenSyncs, r.SkippedSyncs)
	fmt.Fprintf(w, "expunges        %d reported, at most %d suspects waiting\n", r.Expunges, r.MaxSuspects)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "phantom expunges %d\n", r.PhantomExpunges)
	fmt.Fprintf(w, "uid changes      %d\n", r.UIDChanges)
	fmt.Fprintf(w, "duplicate uids   %d\n", r.DuplicateUIDs)
	fmt.Fprintf(w, "reused uids      %d\n", r.ReusedUIDs)
	fmt.Fprintf(w, "lost messages    %d\n", r.LostMessages)
	fmt.Fprintf(w, "flag mismatches  %d\n", r.FlagMismatches)
	fmt.Fprintf(w, "stale messages   %d\n", r.StaleMessages)
	for _, e := range r.Examples {
		fmt.Fprintln(w, "  ", e)
	}
}

// runTortureSyncer is the syncer process that torture maildir starts.
func runTortureSyncer(ctx context.Context, args []string, stdio Stdio) error {
	fs := flag.NewFlagSet("torture maildir-syncer", flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	var cfg torture.SyncerConfig
	fs.StringVar(&cfg.Dir, "dir", "", "the Maildir")
	fs.StringVar(&cfg.LogPath, "log", "", "the shared event log")
	fs.IntVar(&cfg.ID, "id", 0, "this syncer's number")
	fs.BoolVar(&cfg.UnsafeTrustReaddir, "unsafe-trust-readdir", false, "TEST ONLY: expunge rule off")
	fs.BoolVar(&cfg.NoAtomicRead, "no-atomic-read", false, "prove listings by stable timestamps only")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if cfg.Dir == "" || cfg.LogPath == "" {
		return fmt.Errorf("%w: --dir and --log are required", errUsage)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stdio.Err, nil)).With("syncer", cfg.ID)
	return torture.RunSyncer(ctx, cfg, stdio.In, stdio.Out)
}
