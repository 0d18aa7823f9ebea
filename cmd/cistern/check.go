package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/config"
	"github.com/cistern-mail/cistern/internal/fsck"
	"github.com/cistern-mail/cistern/internal/store"
)

const checkHelp = `usage: cistern check [--repair] [--all] [--config PATH] [--data-dir DIR] USER|PATH

Verifies, offline, every invariant of a user's Maildirs (INBOX and every
folder) and prints one line per finding ("<mailbox>: <kind>: <detail>"),
then a summary:

  header            dovecot-uidlist's header is damaged or unusable
  damaged-line      a dovecot-uidlist line no reader can use
  duplicate-uid     two dovecot-uidlist lines with one UID
  uid-order         a UID that is not above the one before it
  duplicate-record  one message with two UIDs
  next-uid          a next UID that is not above a UID in the file
  stale-record      a record whose message file is gone
  missing-uid       a message file without a UID
  duplicate-name    one base name held by two different files
  unnamed-keyword   a keyword letter that dovecot-keywords does not name
  stale-tmp         a tmp/ file older than 36 hours
  quota             maildirsize disagrees with a recount, or its limit
                    is not the user's
  index-stale       a cached entry of a message or mailbox that is gone
  index-size        a cached entry whose size is not the file's

Lines starting "info:" say what could not be checked and which proofs of
completeness listings get on the filesystem. Missing UIDs, stale records
and stale tmp/ files also come from normal use (mail delivered since the
mailbox was last opened, expunged messages whose records are compacted
later); --repair clears them. The check takes no lock and writes nothing;
it may run while the daemon serves the user.

USER is a user of passwd_file, whose Maildir is mail_location (from
--config, default ` + config.DefaultPath + `), as 'cistern serve' finds
it; their quota is checked against maildirsize, and the index under
data_dir (or --data-dir) against the files. PATH (any argument with a
'/', e.g. ./Maildir) is a root Maildir itself; its index is checked only
with --data-dir.

--repair fixes what can be fixed without changing any message's UID:
dovecot-uidlist is rewritten under the mailbox lock (stale records
dropped when a proven listing shows the file gone, skipped lines restored
with their UID, a second record of one message dropped, the next UID
raised, a damaged file copied aside first), files without a UID get one
from the store's normal sync, which also renames the later of two files
sharing a base name, stale tmp/ files are removed, maildirsize is
recalculated and wrong index entries dropped (not while the daemon holds
the index). Keyword letters without a name are left alone: add the name
to dovecot-keywords ("<index> <name>", index 0 for letter a). A
dovecot-uidlist whose UIDVALIDITY cannot be read is left alone too:
rebuilding it would make every client download every message again.
Then the check runs again and prints what is left.

Progress goes to standard error: a bar on a terminal, else one line per
mailbox.

flags:
  --repair        repair, then check again
  --all           print every finding (default: the first 20 of each kind
                  in each mailbox)
  --config PATH   the configuration file, for USER
  --data-dir DIR  the data directory holding the index (default: data_dir)

Exit status: 0 nothing found (or nothing left after --repair), 1 problems
found (or left after --repair), 2 usage or other error.
`

// maxFindingsShown is how many findings of one kind in one mailbox are
// printed without --all.
const maxFindingsShown = 20

func runCheck(ctx context.Context, args []string, stdio Stdio) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	repair := fs.Bool("repair", false, "")
	all := fs.Bool("all", false, "")
	tgt, err := parseTarget(fs, args, checkHelp, stdio)
	if tgt == nil {
		return err
	}
	opts := fsck.Options{
		Root:      tgt.root,
		IndexPath: tgt.indexPath,
		Quota:     tgt.quota,
		Logger:    slog.New(slog.NewTextHandler(stdio.Err, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Progress:  newProgress(stdio.Err, "check").update,
	}
	rep, err := fsck.Check(ctx, opts)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	printReport(stdio.Out, rep, *all)
	if *repair && !rep.Clean() {
		opts.Progress = newProgress(stdio.Err, "repair").update
		actions, err := fsck.Repair(ctx, opts, rep)
		for _, a := range actions {
			fmt.Fprintln(stdio.Out, "repair:", a)
		}
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		fmt.Fprintln(stdio.Out, "after repair:")
		opts.Progress = newProgress(stdio.Err, "check").update
		if rep, err = fsck.Check(ctx, opts); err != nil {
			return &exitError{code: 2, err: err}
		}
		printReport(stdio.Out, rep, *all)
	}
	if !rep.Clean() {
		return &exitError{code: 1, err: fmt.Errorf("check: %d problem(s) in %s", len(rep.Findings), rep.Root)}
	}
	return nil
}

// parseTarget parses the arguments of a subcommand (check, migrate) that
// works on one USER or PATH, with fs holding the subcommand's own flags
// (--config and --data-dir are added here), and resolves the operand
// (resolveTarget). A nil target comes with the error to return: nil
// after -h printed help to stdout, a usage error after help on stderr,
// or an exit status 2 error when the operand does not resolve.
func parseTarget(fs *flag.FlagSet, args []string, help string, stdio Stdio) (*target, error) {
	configPath := fs.String("config", "", "")
	dataDir := fs.String("data-dir", "", "")
	operands, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdio.Out, help)
		return nil, nil
	}
	if err == nil && len(operands) != 1 {
		err = fmt.Errorf("%s takes one USER or PATH, got %d", fs.Name(), len(operands))
	}
	if err != nil {
		fmt.Fprint(stdio.Err, help)
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	tgt, err := resolveTarget(operands[0], *configPath, *dataDir)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return tgt, nil
}

// parseInterspersed parses flags that may come before or after the
// operands, and returns the operands.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return operands, nil
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// printReport prints the notes, the findings (at most maxFindingsShown of
// a kind in a mailbox unless all) and a summary.
func printReport(w io.Writer, rep *fsck.Report, all bool) {
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "info:", n)
	}
	type key struct {
		mailbox string
		kind    fsck.Kind
	}
	shown := map[key]int{}
	var hidden []key
	for _, f := range rep.Findings {
		k := key{f.Mailbox, f.Kind}
		if shown[k] == maxFindingsShown && !all {
			hidden = append(hidden, k)
		}
		shown[k]++
		if all || shown[k] <= maxFindingsShown {
			fmt.Fprintln(w, f)
		}
	}
	for _, k := range hidden {
		fmt.Fprintf(w, "%s: %s: %d more (--all prints them)\n", k.mailbox, k.kind, shown[k]-maxFindingsShown)
	}
	summary := fmt.Sprintf("summary: %d mailbox(es), %d message(s): ", len(rep.Mailboxes), rep.Messages)
	if rep.Clean() {
		fmt.Fprintln(w, summary+"clean")
		return
	}
	var parts []string
	for _, c := range rep.Counts() {
		parts = append(parts, fmt.Sprintf("%s %d", c.Kind, c.Count))
	}
	fmt.Fprintf(w, "%s%d problem(s): %s\n", summary, len(rep.Findings), strings.Join(parts, ", "))
}

// target is the Maildir tree a command works on.
type target struct {
	root      string
	indexPath string            // "": no index
	quota     *store.QuotaLimit // nil: not known
}

// resolveTarget finds the Maildir of arg: a PATH when it holds a '/',
// else a user of the configuration's passwd-file, whose Maildir is
// mail_location expanded as 'cistern serve' does.
func resolveTarget(arg, configPath, dataDir string) (*target, error) {
	if strings.ContainsRune(arg, '/') {
		if configPath != "" {
			return nil, fmt.Errorf("%w: --config is for USER; %q is a PATH", errUsage, arg)
		}
		root, err := filepath.Abs(arg)
		if err != nil {
			return nil, err
		}
		t := &target{root: root}
		if dataDir != "" {
			t.indexPath = filepath.Join(dataDir, indexFile)
		}
		return t, nil
	}
	if configPath == "" {
		configPath = config.DefaultPath
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, err
	}
	file, _, err := auth.LoadFile(cfg.PasswdFile)
	if err != nil {
		return nil, err
	}
	u, ok := file.Lookup(arg)
	if !ok {
		return nil, fmt.Errorf("no user %q in %s (a Maildir path needs a '/', e.g. ./%s)", arg, cfg.PasswdFile, arg)
	}
	root, err := cfg.MailDir(u.Name, u.Home)
	if err != nil {
		return nil, err
	}
	q, err := cfg.UserQuota(u)
	if err != nil {
		return nil, err
	}
	if dataDir == "" {
		dataDir = cfg.WithDefaults().DataDir
	}
	return &target{root: root, indexPath: filepath.Join(dataDir, indexFile), quota: &q}, nil
}

// progress shows how far a long command got: on a terminal, a bar drawn
// over itself and erased at the end; elsewhere one line per step.
type progress struct {
	w     io.Writer
	what  string
	width int // terminal columns; 0 when w is not a terminal
}

// Bounds of the progress bar.
const (
	progressBarMax = 40
	progressBarMin = 10
)

func newProgress(w io.Writer, what string) *progress {
	p := &progress{w: w, what: what}
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			p.width = int(ws.Col)
		}
	}
	return p
}

// update reports that done of total steps are done and that name is next
// (done == total: finished).
func (p *progress) update(done, total int, name string) {
	if p.width == 0 {
		if done < total {
			fmt.Fprintf(p.w, "%s: %d/%d %s\n", p.what, done+1, total, name)
		}
		return
	}
	if done >= total {
		fmt.Fprint(p.w, "\r\x1b[K")
		return
	}
	count := fmt.Sprintf(" %d/%d ", done+1, total)
	bar := min(progressBarMax, p.width-len(p.what)-len(count)-4)
	if bar < progressBarMin {
		fmt.Fprintf(p.w, "\r%s:%s\x1b[K", p.what, count)
		return
	}
	filled := bar * done / total
	room := p.width - len(p.what) - len(count) - bar - 4
	if len(name) > room {
		name = name[:max(room, 0)]
	}
	fmt.Fprintf(p.w, "\r%s [%s%s]%s%s\x1b[K", p.what, strings.Repeat("=", filled), strings.Repeat(" ", bar-filled), count, name)
}
