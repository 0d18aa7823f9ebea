// Command cistern is the one Cistern binary: the IMAP server and the tools
// around its Maildir storage.
//
//	cistern serve    the IMAP and LMTP server (--demo: a self-contained demo)
//	cistern deliver  deliver the message on standard input (an LDA for the MTA)
//	cistern user     users in the passwd-file
//	cistern check    verify a user's Maildirs offline (--repair: and repair them)
//	cistern migrate  adopt a Maildir tree that Courier or Dovecot served
//	cistern race     the readdir race, measured: naive scans against proven listings
//	cistern torture  adversarial tests of the guarantees (torture maildir, torture imap)
//
// main only maps Run's error to an exit code; each subcommand lives in its
// own file with its help beside it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Stdio is where a subcommand reads and writes.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// exitError carries a specific exit code out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// errUsage marks an error as a usage error (exit code 2).
var errUsage = errors.New("usage")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdio Stdio) error
}

func commands() []command {
	return []command{
		{"serve", "serve IMAP and LMTP: from the configuration, or a demo setup with --demo", runServe},
		{"deliver", "deliver the message on standard input to a user (LDA, for the MTA)", runDeliver},
		{"race", "measure the readdir race: naive scans against proven listings", runRace},
		{"torture", "adversarial tests of the guarantees (torture maildir, torture imap)", runTorture},
		{"user", "manage the users of the passwd-file: add, passwd, del, list", runUser},
		{"check", "verify a user's Maildirs offline, and repair them with --repair", runCheck},
		{"migrate", "adopt a Maildir tree that Courier or Dovecot served, keeping every UID", runMigrate},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cistern <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'cistern <command> -h' for a command's flags.")
}

// Run runs the command line args (without the program name).
func Run(ctx context.Context, args []string, stdio Stdio) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdio.Out)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdio)
		}
	}
	usage(stdio.Err)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		// Returns only when it did not execute the binary again; the
		// drop of privileges then refuses to go on (nonewprivs.go).
		if err := execWithNoNewPrivs(); err != nil {
			fmt.Fprintln(os.Stderr, "cistern:", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, os.Args[1:], Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, w io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(w, "cistern:", ee.err)
		}
		return ee.code
	}
	if errors.Is(err, errUsage) {
		if err != errUsage {
			fmt.Fprintln(w, "cistern:", err)
		}
		return 2
	}
	fmt.Fprintln(w, "cistern:", err)
	return 1
}
