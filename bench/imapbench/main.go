// Command imapbench measures Cistern's IMAP server beside Dovecot 2.3 on
// one large INBOX with warm caches, and reports each operation's time in
// both servers and the ratio Cistern/Dovecot (below 1: Cistern is faster).
// bench/imap.sh installs what it needs and runs it; see bench/README.md.
//
// It makes a Maildir of --messages generated messages, copies it for
// Dovecot, serves the original with Cistern (in this process) and the copy
// with a private Dovecot (a child process on another loopback port), runs
// every operation once on each server untimed, and then times --runs runs
// of each operation on each server.
//
// # Work directory
//
// Everything lives under --dir, which is made if missing:
//
//	path                   what
//	cistern/Maildir        the generated INBOX, served by Cistern
//	cistern-index/index.db Cistern's bbolt index (store.OpenIndex)
//	dovecot/Maildir        the copy served by Dovecot; Dovecot keeps its
//	                       uidlist and index files in it, as by default
//	dovecot-run/           Dovecot's configuration, passwd-file, runtime
//	                       and state directories, home and log
//	generated              "<messages> <bytes>" once both Maildirs are
//	                       complete; a later run with the same --messages
//	                       reuses them (with the servers' uidlists and
//	                       indexes) instead of generating again
//
// The messages are scratch data: they are written straight into cur/
// without fsync and without the tmp/ step of a delivery. Nothing here is
// durable, and nothing needs to be.
//
// # What is timed
//
// The operations (measure.go): SELECT INBOX; SELECT INBOX while another
// session has INBOX selected (Cistern shares one open mailbox among its
// sessions, so this SELECT finds it open and synced, the state of a
// daemon whose user has another client connected); UID FETCH 1:* (FLAGS);
// FETCH 1:* (ENVELOPE); FETCH of the last 1,000 messages' BODY.PEEK[]
// (every body read and sent, as a client downloading new mail does);
// SEARCH TEXT "quokka", a word planted in about 1%
// of the messages.
//
// Three more are about state the server keeps. SELECT INBOX after a
// restart: the server is stopped and started again before each run (its
// index files stay), warm (the page cache holds the files) and cold (the
// page cache dropped first, root only). And a reconnect with QRESYNC
// (qresync.go): a session with QRESYNC enabled notes HIGHESTMODSEQ,
// another flags 100 messages spread over the mailbox, and the timed
// command is SELECT INBOX (QRESYNC (uidvalidity modseq)), which must
// return one FETCH per changed message and nothing else; beside the
// bytes of SELECT plus UID FETCH 1:* (FLAGS), it is what a client saves.
//
// Each timed run opens a new connection, reads the greeting, logs in and,
// for every operation but SELECT, selects INBOX; none of that is timed.
// The time runs from writing the command to reading its tagged OK, with
// every response byte read and discarded on the way. The client is a
// minimal one over net.Conn (client.go), so that the numbers are the
// servers', not a client library's. The client shares the machine's CPUs
// with both servers (and this process with Cistern). A run ends with
// LOGOUT and waits for the server to close the connection, so that the
// next run's session starts after the last one has ended.
//
// The checks: SELECT reports every message as EXISTS, each FETCH returns
// one response per message, and SEARCH finds the same number of messages
// in every run on both servers; anything else fails the benchmark.
//
// Dovecot needs root (its master) and the unprivileged account
// testproc.MailUser for mail access; bench/imap.sh (like
// scripts/interop.sh) creates it. internal/testproc starts and
// stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/cistern-mail/cistern/bench/internal/cli"
	"github.com/cistern-mail/cistern/bench/internal/machine"
)

const usage = `usage: imapbench [flags]

Generates a Maildir INBOX, serves it with Cistern (in this process) and a
copy with Dovecot, warms both, and times SELECT INBOX (alone, with INBOX
selected in another session, and as the first command after a restart,
warm and cold), SELECT INBOX (QRESYNC ...) after 100 messages changed, UID
FETCH 1:* (FLAGS), FETCH 1:* (ENVELOPE), FETCH of the last 1,000
messages' BODY.PEEK[] and SEARCH TEXT on each. Prints a table (or JSON) of median,
min and max times and the ratios Cistern/Dovecot.

flags:
  --messages N       messages in INBOX (default 100000)
  --dir D            work directory, made if missing (required)
  --runs R           timed runs of each operation on each server (default 5)
  --dovecot PATH     the Dovecot binary (default /usr/sbin/dovecot)
  --skip-dovecot     measure Cistern only (no root needed)
  --json             print one JSON object instead of the table
  --cpuprofile P     write a CPU profile of this process during Cistern's
                     timed runs of each operation to P.<operation>.pprof

Exit status: 0 done, 1 failed (including servers that disagree on the
number of SEARCH hits), 2 usage error.
`

// errUsage marks an error in the command line (exit status 2).
var errUsage = cli.ErrUsage

func main() { cli.Main("imapbench", Run) }

// config is what the flags say.
type config struct {
	messages    int
	dir         string
	runs        int
	dovecot     string
	skipDovecot bool
	json        bool
	cpuprofile  string
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("imapbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&cfg.messages, "messages", 100000, "")
	fs.StringVar(&cfg.dir, "dir", "", "")
	fs.IntVar(&cfg.runs, "runs", 5, "")
	fs.StringVar(&cfg.dovecot, "dovecot", "/usr/sbin/dovecot", "")
	fs.BoolVar(&cfg.skipDovecot, "skip-dovecot", false, "")
	fs.BoolVar(&cfg.json, "json", false, "")
	fs.StringVar(&cfg.cpuprofile, "cpuprofile", "", "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprint(stderr, usage)
		if errors.Is(err, flag.ErrHelp) {
			return cfg, flag.ErrHelp
		}
		return cfg, fmt.Errorf("%w: %v", errUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("%w: no arguments expected, got %q", errUsage, fs.Args())
	case cfg.dir == "":
		return cfg, fmt.Errorf("%w: --dir is required", errUsage)
	case cfg.messages < 1:
		return cfg, fmt.Errorf("%w: --messages must be at least 1", errUsage)
	case cfg.runs < 1:
		return cfg, fmt.Errorf("%w: --runs must be at least 1", errUsage)
	}
	return cfg, nil
}

// Run is the whole benchmark; main only maps its error to an exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "imapbench: "+format+"\n", a...) }

	w, err := newWorkDir(cfg.dir)
	if err != nil {
		return err
	}
	var owner *mailOwner
	if !cfg.skipDovecot {
		if owner, err = checkDovecotPrerequisites(cfg.dovecot, w.root); err != nil {
			return err
		}
	}
	corpus, err := w.prepare(ctx, cfg.messages, owner, logf)
	if err != nil {
		return err
	}

	servers := make([]*server, 0, 2)
	cs, err := startCistern(w)
	if err != nil {
		return err
	}
	defer func() {
		if serr := cs.stop(); serr != nil {
			logf("%v", serr)
			if err == nil {
				err = serr
			}
		}
	}()
	cs.restartWith(w)
	servers = append(servers, cs.server)
	logf("cistern listening on %s", cs.server.addr)
	if !cfg.skipDovecot {
		d, derr := startDovecot(cfg.dovecot, w, owner)
		if derr != nil {
			return derr
		}
		defer func() {
			if derr := d.stop(); derr != nil {
				logf("%v", derr)
			}
		}()
		d.restartWith(cfg.dovecot, w, owner)
		servers = append(servers, d.server)
		logf("%s listening on %s", d.version, d.server.addr)
	}

	res, err := measureAll(ctx, servers, cfg, corpus, logf)
	if err != nil {
		return err
	}
	dovecotBinary := cfg.dovecot
	if cfg.skipDovecot {
		dovecotBinary = ""
	}
	res.Machine = machine.Describe(w.root, dovecotBinary)
	if cfg.json {
		return res.writeJSON(stdout)
	}
	res.writeTable(stdout)
	return nil
}
