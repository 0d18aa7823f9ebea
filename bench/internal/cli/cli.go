// Package cli is the process side of a benchmark command under bench/:
// main maps the error of its Run to an exit status, as cmd/cistern does.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// ErrUsage marks an error in the command line: exit status 2.
var ErrUsage = errors.New("usage error")

// Main runs run with the process's arguments and standard output and
// error, under a context that SIGINT and SIGTERM cancel, and exits with
// ExitCode of its error, printed after name on stderr.
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
	}
	os.Exit(ExitCode(err))
}

// ExitCode is the exit status for Run's error: 0 for none, 2 for a usage
// error (ErrUsage), 1 for any other.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	default:
		return 1
	}
}
