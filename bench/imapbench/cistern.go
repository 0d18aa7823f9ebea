package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/cistern-mail/cistern/internal/backend"
	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/store"
)

// cisternShutdownTimeout bounds the wait for sessions at the end.
const cisternShutdownTimeout = 5 * time.Second

// staticAuth is one user with one password and one Maildir.
type staticAuth struct {
	user, password, maildir string
}

var _ backend.Authenticator = staticAuth{}

func (a staticAuth) Authenticate(_ context.Context, user, password string) (backend.Account, error) {
	if user != a.user || subtle.ConstantTimeCompare([]byte(password), []byte(a.password)) != 1 {
		return backend.Account{}, imap.ErrAuthFailed
	}
	return backend.Account{MaildirRoot: a.maildir}, nil
}

// cistern is Cistern's IMAP server in this process, set up as the daemon
// sets it up (a Registry with a Watcher) plus the bbolt index.
type cistern struct {
	*server
	srv *imap.Server
	// registry is closed before the index, as the daemon's shutdown
	// does (cmd/cistern serve): that is when the mailboxes' states are
	// stored for the warm start.
	registry *store.Registry
	index    *store.Index
	watcher  *store.Watcher
	serving  chan error
	stopped  bool // stop ran: a restart that failed half way leaves none
}

func startCistern(w *workDir) (*cistern, error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ix, err := store.OpenIndex(w.cisternIndex, logger)
	if err != nil {
		return nil, err
	}
	watcher, err := store.NewWatcher(logger)
	if err != nil {
		ix.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		watcher.Close()
		ix.Close()
		return nil, err
	}
	registry := store.NewRegistry(store.Options{Index: ix, Logger: logger}, watcher)
	c := &cistern{
		server: &server{name: "cistern", addr: ln.Addr().String()},
		srv: &imap.Server{
			Backend: &backend.Backend{
				Auth:     staticAuth{user: benchUser, password: benchPassword, maildir: w.cisternMaildir},
				Registry: registry,
			},
			Logger: logger,
		},
		registry: registry,
		index:    ix,
		watcher:  watcher,
		serving:  make(chan error, 1),
	}
	go func() { c.serving <- c.srv.Serve(ln) }()
	return c, nil
}

// stop shuts the server down and closes the index; a session panic is an
// error, as it is in the IMAP tests.
func (c *cistern) stop() error {
	if c.stopped {
		return nil
	}
	c.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), cisternShutdownTimeout)
	defer cancel()
	err := c.srv.Shutdown(ctx)
	if serr := <-c.serving; !errors.Is(serr, imap.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if n := c.srv.Panics.Load(); n > 0 {
		err = errors.Join(err, errors.New("cistern: sessions panicked"))
	}
	c.registry.Close()
	return errors.Join(err, c.watcher.Close(), c.index.Close())
}

// restartWith makes c.restart stop c and start a new server in its place
// on the same Maildir and index: a new Registry, so that nothing of the
// mailbox's state survives in memory but what the index holds, as after
// a restart of the daemon.
func (c *cistern) restartWith(w *workDir) {
	c.server.restart = func(cold bool) error {
		if err := c.stop(); err != nil {
			return err
		}
		if cold {
			if err := dropCaches(); err != nil {
				return err
			}
		}
		nc, err := startCistern(w)
		if err != nil {
			return err
		}
		c.srv, c.registry, c.index, c.watcher, c.serving, c.stopped = nc.srv, nc.registry, nc.index, nc.watcher, nc.serving, false
		c.server.addr = nc.server.addr
		return nil
	}
}
