package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/config"
	"github.com/cistern-mail/cistern/internal/delivery"
	"github.com/cistern-mail/cistern/internal/lmtp"
	"github.com/cistern-mail/cistern/internal/store"
)

// demoLMTPListen is the demo's LMTP address (--demo-lmtp changes it).
const demoLMTPListen = "127.0.0.1:2424"

// passwdUsers is delivery.Users on a passwd-file: a user's Maildir is
// mail_location expanded for them, their quota config.UserQuota's.
type passwdUsers struct {
	users *auth.Authenticator
	cfg   *config.Config // immutable
}

var _ delivery.Users = (*passwdUsers)(nil)

// LookupUser implements delivery.Users. A user whose Maildir or quota
// the configuration cannot give is a temporary failure: the operator
// fixes the line, the MTA retries.
func (p *passwdUsers) LookupUser(name string) (delivery.User, error) {
	u, err := p.users.Lookup(name)
	if errors.Is(err, auth.ErrNoSuchUser) {
		return delivery.User{}, fmt.Errorf("%w: %w", delivery.ErrUnknownUser, err)
	}
	if err != nil {
		return delivery.User{}, err
	}
	root, err := p.cfg.MailDir(u.Name, u.Home)
	if err != nil {
		return delivery.User{}, err
	}
	quota, err := p.cfg.UserQuota(u)
	if err != nil {
		return delivery.User{}, err
	}
	return delivery.User{Name: u.Name, Root: root, Quota: quota}, nil
}

// newDeliverer returns the Deliverer of the configuration (for LMTP and
// the LDA alike).
func newDeliverer(cfg *config.Config, users *auth.Authenticator, logger *slog.Logger) *delivery.Deliverer {
	d := cfg.WithDefaults()
	return &delivery.Deliverer{
		Users:     &passwdUsers{users: users, cfg: cfg},
		Logger:    logger,
		MaxSize:   d.LMTP.MaxMessageSize,
		Delimiter: d.LMTP.RecipientDelimiter,

		SaveToDetailMailbox: d.LMTP.SaveToDetailMailbox,
		MaxFolders:          d.Quota.MaxFolders,
	}
}

// lmtpService is the daemon's LMTP side: its listeners and its server,
// which serveIMAP starts on the daemon's Registry (so that a delivery is
// seen at once by the IMAP sessions) and stops with the IMAP side. A nil
// *lmtpService serves nothing.
type lmtpService struct {
	lns    []net.Listener
	srv    *lmtp.Server
	logger *slog.Logger
	fail   chan error     // the first listener that stopped by itself
	served sync.WaitGroup // the Serve calls
}

// newLMTPService opens the listeners of [lmtp] (TCP addresses and the
// unix socket); it returns nil when there are none. With tlsConfig, the
// TCP listeners offer STARTTLS.
func newLMTPService(cfg *config.Config, users *auth.Authenticator, tlsConfig *tls.Config, logger *slog.Logger) (*lmtpService, error) {
	d := cfg.WithDefaults()
	if len(d.LMTP.Listen) == 0 && d.LMTP.Socket == "" {
		return nil, nil
	}
	var lns []net.Listener
	fail := func(err error) (*lmtpService, error) {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, fmt.Errorf("lmtp: %w", err)
	}
	for _, a := range d.LMTP.Listen {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fail(err)
		}
		lns = append(lns, ln)
	}
	if d.LMTP.Socket != "" {
		perm, err := d.LMTP.SocketPerm()
		if err != nil {
			return fail(err)
		}
		ln, err := listenUnix(d.LMTP.Socket, perm)
		if err != nil {
			return fail(err)
		}
		lns = append(lns, ln)
	}
	for _, ln := range lns {
		logger.Info("lmtp: listening", "addr", ln.Addr().String())
	}
	return &lmtpService{
		lns:    lns,
		logger: logger,
		fail:   make(chan error, 1),
		srv: &lmtp.Server{
			Deliverer:          newDeliverer(cfg, users, logger),
			Logger:             logger,
			MaxMessageSize:     d.LMTP.MaxMessageSize,
			MaxRecipients:      d.LMTP.MaxRecipients,
			DataTimeout:        d.LMTP.DataTimeout,
			MinDataRate:        d.LMTP.MinDataRate,
			TransactionTimeout: d.LMTP.TransactionTimeout,
			QuotaFullTempfail:  d.LMTP.QuotaFullTempfail,
			TLSConfig:          tlsConfig,
			// The limits of [lmtp]; see internal/lmtp/limits.go.
			MaxConnections:      d.LMTP.MaxConnections,
			MaxConnectionsPerIP: d.LMTP.MaxConnectionsPerIP,
		},
	}, nil
}

// staleSocketDial bounds the check whether a server still answers on an
// existing socket.
const staleSocketDial = time.Second

// listenUnix listens on a unix socket at path with permissions perm. A
// socket left there by a server that is gone is replaced; one that
// still answers, or a file that is not a socket, is an error.
func listenUnix(path string, perm os.FileMode) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, staleSocketDial); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another server is listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// Until this chmod the socket has the umask's permissions; connecting
	// needs write permission, which a usual umask (022, 077) gives nobody
	// but the owner.
	if err := os.Chmod(path, perm); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// closeListeners closes the listeners of a service that will not start.
func (l *lmtpService) closeListeners() {
	if l == nil {
		return
	}
	for _, ln := range l.lns {
		ln.Close()
	}
}

// start serves LMTP on every listener, delivering with reg's mailboxes
// told of each delivery.
func (l *lmtpService) start(reg *store.Registry) {
	if l == nil {
		return
	}
	l.srv.Deliverer.Registry = reg
	for _, ln := range l.lns {
		l.served.Go(func() {
			if err := l.srv.Serve(ln); !errors.Is(err, lmtp.ErrServerClosed) {
				select {
				case l.fail <- fmt.Errorf("lmtp: %w", err):
				default: // one failure is enough to stop
				}
			}
		})
	}
}

// failed delivers the error of the first listener that stopped by
// itself; never for a nil service.
func (l *lmtpService) failed() <-chan error {
	if l == nil {
		return nil
	}
	return l.fail
}

// shutdown stops accepting and lets the deliveries under way finish until
// ctx is done (then it cuts them). The returned channel is closed once
// everything has ended.
func (l *lmtpService) shutdown(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	if l == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		if err := l.srv.Shutdown(ctx); err != nil {
			l.logger.Warn("lmtp: deliveries did not end in time; closed their connections", "err", err)
			l.srv.Close()
		}
		l.served.Wait()
		if n := l.srv.Panics.Load(); n > 0 {
			l.logger.Error("lmtp: sessions panicked while serving", "count", n)
		}
		l.logger.Info("lmtp: stopped")
	}()
	return done
}
