package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/cistern-mail/cistern/internal/config"
	"github.com/cistern-mail/cistern/internal/fsck"
	"github.com/cistern-mail/cistern/internal/migrate"
)

const migrateHelp = `usage: cistern migrate [--dry-run] [--config PATH] [--data-dir DIR] USER|PATH

Adopts a Maildir tree that Courier-IMAP or Dovecot served, keeping every
UID and UIDVALIDITY, so that clients download nothing again. For INBOX
and every folder:

  courierimapuiddb        becomes dovecot-uidlist: the same UIDVALIDITY,
                          next UID and UIDs (records of messages that are
                          gone are left out); messages Courier had not
                          numbered get UIDs above its next UID
  courierimapkeywords/    becomes dovecot-keywords, each keyword's letter
                          added to its messages' file names (other flags
                          kept)
  courierimapsubscribed   becomes subscriptions (root only): "INBOX" stays,
                          "INBOX.<folder>" becomes "<folder>"

A mailbox that already has dovecot-uidlist and dovecot-keywords (Dovecot
served it, or Cistern) is in Cistern's format and is left as it is;
Dovecot's dovecot.index* files may stay. Courier's files are never changed
or removed. Each step is done only while its result is missing, every
file is written by temp file and rename, so an interrupted migration is
completed by running it again, and running it again after a complete one
changes nothing.

Then the tree is checked as 'cistern check' does, and the result printed.

USER and PATH are as for 'cistern check' (a PATH has a '/').

flags:
  --dry-run       print what would be done; change nothing, check nothing
  --config PATH   the configuration file, for USER (default
                  ` + config.DefaultPath + `)
  --data-dir DIR  the data directory holding the index, for the check

Progress goes to standard error: a bar on a terminal, else one line per
mailbox.

Exit status: 0 migrated (or nothing to do) and the check found nothing,
1 something was left unconverted (lines starting "warning:") or the
check found problems, 2 usage or other error.
`

func runMigrate(ctx context.Context, args []string, stdio Stdio) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dryRun := fs.Bool("dry-run", false, "")
	tgt, err := parseTarget(fs, args, migrateHelp, stdio)
	if tgt == nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	res, err := migrate.Run(ctx, migrate.Options{
		Root:     tgt.root,
		DryRun:   *dryRun,
		Logger:   logger,
		Progress: newProgress(stdio.Err, "migrate").update,
	})
	if res != nil {
		for _, s := range res.Steps {
			if s.Warning {
				fmt.Fprintln(stdio.Out, "warning:", s)
			} else {
				fmt.Fprintln(stdio.Out, s)
			}
		}
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	verb := "converted"
	if *dryRun {
		verb = "to convert"
	}
	warnings := len(res.Warnings())
	fmt.Fprintf(stdio.Out, "migrate: %d mailbox(es), %d %s from Courier's files, %d warning(s)\n", res.Mailboxes, res.Converted, verb, warnings)
	if *dryRun {
		if warnings > 0 {
			return &exitError{code: 1, err: fmt.Errorf("migrate: %d warning(s)", warnings)}
		}
		return nil
	}
	rep, err := fsck.Check(ctx, fsck.Options{
		Root:      tgt.root,
		IndexPath: tgt.indexPath,
		Quota:     tgt.quota,
		Progress:  newProgress(stdio.Err, "check").update,
	})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	printReport(stdio.Out, rep, false)
	switch {
	case warnings > 0 && !rep.Clean():
		return &exitError{code: 1, err: fmt.Errorf("migrate: %d warning(s), and the check found %d problem(s)", warnings, len(rep.Findings))}
	case warnings > 0:
		return &exitError{code: 1, err: fmt.Errorf("migrate: %d warning(s)", warnings)}
	case !rep.Clean():
		return &exitError{code: 1, err: fmt.Errorf("migrate: the check found %d problem(s); 'cistern check --repair' fixes what it can", len(rep.Findings))}
	}
	return nil
}
