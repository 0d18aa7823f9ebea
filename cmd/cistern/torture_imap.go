package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cistern-mail/cistern/internal/torture/imaptorture"
)

const tortureIMAPHelp = `usage: cistern torture imap --imap HOST:PORT --user U --pass P [flags]
       cistern torture imap-compare NAME=RESULT.json NAME=RESULT.json ...

Tortures any IMAP server over the wire and checks the guarantees of
Cistern's DESIGN.md §2 against what every session was told: N sessions on
one mailbox run a random mix of SELECT/EXAMINE, FETCH (flags, envelope,
body), STORE, SEARCH, COPY, MOVE, EXPUNGE, UID EXPUNGE, APPEND, NOOP and
IDLE; with --lmtp, LMTP deliverers add mail; with --maildir (the mailbox's
Maildir on this machine), foreign writers rename, move, deliver and
delete files there without any lock, as mutt and procmail do.

Lifecycle actors change the other mailboxes meanwhile: one RENAMEs the
COPY/MOVE target (--aux) to a fresh name and back, DELETEs and CREATEs
it; one CREATEs, fills, selects and DELETEs sibling folders of it; with
--maildir, a foreign one renames the target's folder directory away and
back, and replaces a sibling's directory (rm -r, then a fresh Maildir),
in the Maildir++ root. The mailbox under test is never deleted or
renamed. A session whose selected mailbox is deleted or renamed may be
told BYE: it connects again.

Every message has a Message-ID of its own; the checker keeps the ground
truth (who made, flagged, expunged, moved or deleted which message, when)
and a model of every session's view, and reports, with the session, the
command and the responses that prove it:

  phantom expunge     an EXPUNGE (or a vanished message) no actor caused
  UID change          a message back under a new UID
  UID reused          one (mailbox, UIDVALIDITY, UID) naming two messages
                      over the whole run, in any mailbox, across DELETE,
                      CREATE and RENAME
  duplicate           one message visible twice
  lost message        an APPEND OK or LMTP 250 that never appeared (in
                      another mailbox: unless its name was deleted or
                      renamed meanwhile)
  NO, yet done        an APPEND, COPY or MOVE answered NO (or BAD) that
                      was done anyway: the APPENDed message seen in any
                      mailbox or left in the Maildir, a copy no accepted
                      COPY or MOVE made, the MOVEd message gone from the
                      mailbox with no other cause
  EXPUNGE during FETCH/STORE/SEARCH, EXISTS going down, sequence numbers
  out of range, UIDs not ascending, UIDNEXT or UIDVALIDITY misbehaving
  flags diverge       views that differ after a final quiet NOOP in every
                      session (with each other, with the Maildir)

The run deletes mail: point it at a test account. The mailbox must be
empty (--clear empties it and the COPY/MOVE target first). Only loopback
addresses are accepted unless --allow-remote. It stops by itself after
--seconds and a final check.

Output: a summary table (operations, latency p50/p99 per command,
commands per second, violations by kind); --json prints the same figures
as one JSON object; --report FILE writes one self-contained HTML page
with latency plots and a timeline of operations and violations.

imap-compare prints the results of several runs (--json files) side by
side, as bench/torture.sh does for Cistern and Dovecot.

Exit status: 0 no violation and no error, 1 violations or errors, 2 usage.
`

// Default paces of the lifecycle actors: steps a second of each IMAP
// one, folder directory changes a second of the foreign one.
const (
	defaultLifecycle      = 10
	defaultForeignFolders = 2
	defaultForeignLinks   = 1
)

func runTortureIMAP(ctx context.Context, args []string, stdio Stdio) error {
	fs := flag.NewFlagSet("torture imap", flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() {
		fmt.Fprint(stdio.Err, tortureIMAPHelp+"\nflags:\n")
		fs.PrintDefaults()
	}
	var cfg imaptorture.Config
	fs.StringVar(&cfg.IMAP, "imap", "", "the IMAP server, HOST:PORT")
	fs.StringVar(&cfg.User, "user", "", "the user to log in as")
	fs.StringVar(&cfg.Password, "pass", "", "the user's password")
	passFile := fs.String("pass-file", "", "read the password from this file's first line instead")
	fs.StringVar(&cfg.Mailbox, "mailbox", imaptorture.DefaultMailbox, "the mailbox to torture")
	fs.StringVar(&cfg.Aux, "aux", imaptorture.DefaultAux, "the mailbox COPY and MOVE put messages in (created if missing)")
	fs.StringVar(&cfg.LMTP, "lmtp", "", "an LMTP server delivering to the mailbox, HOST:PORT")
	fs.StringVar(&cfg.Rcpt, "rcpt", "", "the LMTP recipient (default USER@localhost)")
	fs.IntVar(&cfg.LMTPDeliverers, "lmtp-deliverers", 1, "LMTP connections delivering (with --lmtp)")
	fs.StringVar(&cfg.Maildir, "maildir", "", "the mailbox's Maildir directory on this machine: run foreign writers there and compare it at the end")
	fs.IntVar(&cfg.RenamesPerSecond, "renames-per-second", imaptorture.DefaultRenames, "pace of the foreign flag renamer (with --maildir)")
	fs.IntVar(&cfg.AuxLifecycle, "aux-lifecycle", defaultLifecycle, "steps a second of the actor that renames --aux away and back, deletes and creates it (0: off)")
	fs.IntVar(&cfg.FolderLifecycle, "folder-lifecycle", defaultLifecycle, "steps a second of the actor that creates, fills, selects and deletes sibling folders of --aux (0: off)")
	fs.IntVar(&cfg.ForeignFolders, "foreign-folders", defaultForeignFolders, "folder directories renamed or replaced a second in the Maildir root (with --maildir; 0: off)")
	fs.IntVar(&cfg.ForeignLinks, "foreign-links", defaultForeignLinks, "symbolic links planted a second in the Maildir, to decoys outside it that the server must never follow (with --maildir; 0: off)")
	fs.IntVar(&cfg.PreLogin, "prelogin", 0, "connections held open that never log in (idle and slowloris), while the torture checks it can still log in (0: off)")
	fs.IntVar(&cfg.Hostile, "hostile", 0, "steps a second of the actor that appends messages built to make ENVELOPE and BODYSTRUCTURE huge (many addresses, nested message/rfc822, many parameters) to --aux-hostile and checks what FETCH answers against Cistern's caps (0: off)")
	fs.IntVar(&cfg.Resync, "resync", 1, "resync actors: sessions that disconnect, stay away and come back with SELECT (QRESYNC ...) or UID FETCH (CHANGEDSINCE ...), checked against the truth; they run only when the server offers CONDSTORE (0: off)")
	fs.DurationVar(&cfg.ResyncAway, "resync-away", imaptorture.DefaultResyncAway, "the longest a resync actor stays away (the shortest is a fifth of it)")
	fs.IntVar(&cfg.Sessions, "sessions", 8, "IMAP sessions")
	seconds := fs.Float64("seconds", 60, "how long the actors run")
	fs.IntVar(&cfg.Messages, "messages", imaptorture.DefaultMessages, "messages appended first; the actors keep between half and twice as many")
	fs.DurationVar(&cfg.Timeout, "timeout", imaptorture.DefaultTimeout, "bound of every read, write and command")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "accept addresses that are not loopback")
	fs.BoolVar(&cfg.Clear, "clear", false, "delete every message of the mailbox and of --aux first")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the random choices (0: a new one)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object instead of tables")
	report := fs.String("report", "", "write an HTML report to this file")
	quiet := fs.Bool("q", false, "no progress lines on standard error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 || cfg.IMAP == "" || cfg.User == "" {
		fs.Usage()
		return fmt.Errorf("%w: --imap and --user are required", errUsage)
	}
	if *seconds <= 0 || *seconds > 86400 {
		return fmt.Errorf("%w: --seconds must be in (0, 86400]", errUsage)
	}
	if cfg.AuxLifecycle < 0 || cfg.FolderLifecycle < 0 || cfg.ForeignFolders < 0 || cfg.ForeignLinks < 0 || cfg.Hostile < 0 || cfg.Resync < 0 {
		return fmt.Errorf("%w: --aux-lifecycle, --folder-lifecycle, --foreign-folders, --foreign-links, --hostile and --resync must not be negative", errUsage)
	}
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			return err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		cfg.Password = strings.TrimSuffix(line, "\r")
	}
	if cfg.LMTP == "" {
		cfg.LMTPDeliverers = 0
	}
	cfg.Duration = time.Duration(*seconds * float64(time.Second))
	if !*quiet {
		cfg.Progress = stdio.Err
	}
	res, err := imaptorture.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *report != "" {
		if err := writeReport(*report, res.HTML()); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		res.WriteSummary(stdio.Out)
	}
	if res.Total > 0 || len(res.Errors) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d guarantee violations, %d errors", res.Total, len(res.Errors))}
	}
	return nil
}

// runTortureIMAPCompare prints the results of several runs side by side.
func runTortureIMAPCompare(_ context.Context, args []string, stdio Stdio) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdio.Out, tortureIMAPHelp)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	var names []string
	var results []*imaptorture.Result
	for _, a := range args {
		name, path, ok := strings.Cut(a, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("%w: %q is not NAME=FILE", errUsage, a)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var r imaptorture.Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		names = append(names, name)
		results = append(results, &r)
	}
	imaptorture.WriteComparison(stdio.Out, names, results)
	return nil
}

// writeReport writes data to path through a temporary file in the
// same directory.
func writeReport(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
