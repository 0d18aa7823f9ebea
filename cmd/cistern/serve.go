package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cistern-mail/cistern/internal/auth"
	"github.com/cistern-mail/cistern/internal/backend"
	"github.com/cistern-mail/cistern/internal/config"
	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/imap/wire"
	"github.com/cistern-mail/cistern/internal/store"
	"github.com/cistern-mail/cistern/internal/tlscert"
	"github.com/cistern-mail/cistern/maildir"
)

const serveHelp = `usage: cistern serve [--config PATH]
       cistern serve --demo [--demo-dir DIR] [--listen ADDR] [--demo-lmtp ADDR]
                     [--demo-tls-listen ADDR]

Serves IMAP, and LMTP for delivery from the MTA, until SIGINT or SIGTERM.

With --config (default ` + config.DefaultPath + `) it serves the users of
passwd_file on every imap.listen address, their mail at mail_location, and
logs to standard error as [log] says. It accepts mail over LMTP on every
lmtp.listen address and on lmtp.socket, delivered into the same Maildirs
(see 'cistern deliver' for the same delivery without the daemon). With
metrics.listen it serves its metrics at GET /metrics on that address, in
Prometheus' text format, over plain HTTP.

TLS: with tls.cert and tls.key, imap.listen and lmtp.listen offer
STARTTLS and every imap.listen_tls address serves implicit TLS (RFC 8314,
port 993); TLS 1.2 at least. Without TLS, passwords are accepted only
from loopback peers, unless imap.allow_plaintext_auth: other clients are
told LOGINDISABLED until they STARTTLS. SIGHUP reads tls.cert and tls.key
again: new connections get the new certificate, sessions already open
keep theirs; a pair that does not load is logged and the one in force
stays.

Privileges: cistern never touches mail as root. Started as root (to
bind ports 143, 993 and 24), it opens every listener, reads tls.cert and
tls.key, makes data_dir when it is missing, gives that new data_dir and
lmtp.socket to user and group, and then becomes user for good (with
user's supplementary groups), before it reads any mail. Started as root
without user, it refuses to start. Started as another user, it runs as
that user, and refuses to start when user names someone else. The user
must own data_dir and every Maildir under mail_location (new Maildirs
are made as the user, so the directory above them must be theirs),
read passwd_file (e.g. owned by root, group the user's, mode 0640), and
own the directory of lmtp.socket (to remove the socket at stop); SIGHUP's
reload of the certificate needs tls.cert and tls.key readable by the
user too (e.g. through the group ssl-cert): otherwise it fails with a
log line and the certificate read at start stays. What cistern makes is private
to the user: messages 0600, new Maildirs and data_dir 0700, the index
0600; folders and control files in a Maildir take the Maildir's mode.

With --demo it needs no configuration and no root (as root it warns and
serves as root, on its own directory only): everything lives under DIR (default ./cistern-data, made on first start):

  DIR/passwd                 the passwd-file, with the user "demo"
  DIR/demo-password          demo's password in clear text (mode 0600)
  DIR/mail/<user>/Maildir    the mail (mail_location DIR/mail/%u/Maildir)
  DIR/` + demoCertFile + `           a self-signed certificate for localhost,
                             127.0.0.1 and ::1, valid for a year
  DIR/` + demoKeyFile + `            its private key (mode 0600)

The first start makes the user "demo" with a random password and delivers
a welcome message to its INBOX, and makes the certificate (again when it
is missing, unusable or about to expire). Every start prints, on standard
output:

  user: demo
  password: <the password>
  certificate: <DIR/` + demoCertFile + `>
  connect: IMAP <host> port <port>, STARTTLS, user demo
  connect: IMAP <host> port <port>, TLS, user demo
  tls listening: <host:port>
  listening: <host:port>
  lmtp listening: <host:port>

once the server accepts connections: IMAP with STARTTLS on "listening",
IMAP with implicit TLS on "tls listening" (both "TLS" lines are left out
with --demo-tls-listen ""), LMTP (RCPT TO:<demo@localhost>, STARTTLS
offered) on "lmtp listening". A client verifies the server by trusting
the certificate file. Add more users with
'cistern user add --passwd-file DIR/passwd NAME'.

Stopping: the first SIGINT or SIGTERM stops accepting, says BYE to every
IMAP session, closes idle LMTP connections, lets LMTP deliveries under way
finish, and waits up to 10 s for all that before closing what is left; a
second signal closes them at once (exit status 1).

flags:
  --config PATH    the configuration file (not with --demo)
  --demo           serve the demo setup described above
  --demo-dir DIR   the demo's data directory (default ./cistern-data)
  --listen ADDR    the demo's IMAP address (default 127.0.0.1:1143)
  --demo-lmtp ADDR the demo's LMTP address (default ` + demoLMTPListen + `)
  --demo-tls-listen ADDR
                   the demo's implicit-TLS IMAP address (default
                   ` + demoTLSListen + `; "" for none)

Exit status: 0 stopped by a signal, 1 failed, 2 usage error.
`

const (
	// shutdownTimeout is how long a stopping server waits for its
	// sessions to say goodbye before it closes them.
	shutdownTimeout = 10 * time.Second

	demoUser = "demo"
	demoDir  = "cistern-data"
	// indexFile is the cache of message data under the data directory
	// (DESIGN.md §5): deleting it loses nothing.
	indexFile       = "index.db"
	demoListen      = "127.0.0.1:1143"
	demoPasswordLen = 16
	// demoPasswordFile holds the demo's clear password: the passwd-file
	// keeps only a hash, and every start prints the password.
	demoPasswordFile = "demo-password"
)

// demoHashOptions are the hashing costs of the demo password and of the
// demo's dummy hash; zero means auth's defaults. Tests lower them.
var demoHashOptions auth.HashOptions

func runServe(ctx context.Context, args []string, stdio Stdio) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() {}
	configPath := fs.String("config", "", "")
	demo := fs.Bool("demo", false, "")
	dir := fs.String("demo-dir", "", "")
	listen := fs.String("listen", "", "")
	lmtpListen := fs.String("demo-lmtp", "", "")
	tlsListen := fs.String("demo-tls-listen", "", "")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdio.Out, serveHelp)
			return nil
		}
		fmt.Fprint(stdio.Err, serveHelp)
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stdio.Err, serveHelp)
		return fmt.Errorf("%w: serve takes no arguments, got %q", errUsage, fs.Args())
	}
	// --demo-tls-listen "" turns the listener off; unset is the default.
	tlsListenSet := false
	fs.Visit(func(f *flag.Flag) { tlsListenSet = tlsListenSet || f.Name == "demo-tls-listen" })
	if *demo {
		if *configPath != "" {
			return fmt.Errorf("%w: --config and --demo exclude each other", errUsage)
		}
		if *dir == "" {
			*dir = demoDir
		}
		if *listen == "" {
			*listen = demoListen
		}
		if *lmtpListen == "" {
			*lmtpListen = demoLMTPListen
		}
		if !tlsListenSet {
			*tlsListen = demoTLSListen
		}
		return serveDemo(ctx, *dir, *listen, *lmtpListen, *tlsListen, stdio)
	}
	if *dir != "" || *listen != "" || *lmtpListen != "" || tlsListenSet {
		return fmt.Errorf("%w: --demo-dir, --listen, --demo-lmtp and --demo-tls-listen are for --demo (the configuration sets imap.listen, imap.listen_tls and lmtp.listen)", errUsage)
	}
	if *configPath == "" {
		*configPath = config.DefaultPath
	}
	return serveConfig(ctx, *configPath, stdio)
}

// serveConfig serves as the configuration file at path says.
func serveConfig(ctx context.Context, path string, stdio Stdio) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if len(cfg.IMAP.Listen) == 0 && len(cfg.IMAP.ListenTLS) == 0 && len(cfg.LMTP.Listen) == 0 && cfg.LMTP.Socket == "" {
		return fmt.Errorf("config %s: imap.listen, imap.listen_tls, lmtp.listen and lmtp.socket are empty: nothing to serve", path)
	}
	logger, err := newLogger(stdio.Err, cfg.Log)
	if err != nil {
		return err
	}
	runAs, err := serveIdentity(effectiveUID(), cfg.User, cfg.Group, lookupIdentity)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	// Fail now rather than answer every login with an error: the
	// operator is watching a start, nobody watches a failed login.
	_, problems, err := auth.LoadFile(cfg.PasswdFile)
	if err != nil {
		return fmt.Errorf("%w (add users with 'cistern user add')", err)
	}
	for _, p := range problems {
		logger.Warn("passwd-file: line skipped", "path", cfg.PasswdFile, "problem", p.String())
	}
	var certs *tlscert.Store
	var tlsConfig *tls.Config
	if cfg.TLS.Cert != "" {
		if certs, err = loadCertificate(cfg.TLS.Cert, cfg.TLS.Key, logger); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
		tlsConfig = certs.ServerConfig()
	}
	stopReload := reloadOnHangup(certs, cfg.TLS.Cert, logger)
	defer stopReload()
	lns, err := listenAll(cfg.IMAP.Listen)
	if err != nil {
		return err
	}
	tlsLns, err := listenAll(cfg.IMAP.ListenTLS)
	if err != nil {
		closeListeners(lns)
		return err
	}
	for _, ln := range lns {
		logger.Info("imap: listening", "addr", ln.Addr().String())
	}
	for _, ln := range tlsLns {
		logger.Info("imap: listening with implicit TLS", "addr", ln.Addr().String())
	}
	authn := auth.NewAuthenticator(cfg.PasswdFile, logger)
	front, err := newLMTPService(cfg, authn, tlsConfig, logger)
	if err != nil {
		closeListeners(lns)
		closeListeners(tlsLns)
		return err
	}
	reg, stopMetrics, err := startMetrics(cfg.Metrics.Listen, logger) // metrics.go
	if err != nil {
		closeListeners(lns)
		closeListeners(tlsLns)
		front.closeListeners()
		return err
	}
	defer stopMetrics()
	front.setMetrics(reg)
	// Everything that needs root (every listener, the metrics one
	// included, and the TLS key) is open by now: from here on cistern is
	// runAs (privilege.go).
	if runAs != nil {
		if err := dropServePrivileges(runAs, cfg, logger); err != nil {
			closeListeners(lns)
			closeListeners(tlsLns)
			front.closeListeners()
			return fmt.Errorf("config %s: %w", path, err)
		}
	}
	users := &passwdAuth{users: authn, cfg: cfg}
	return serveIMAP(ctx, lns, tlsLns, logger, cfg.WithDefaults().DataDir, cfg.WithDefaults().Quota.MaxFolders, users, limitIMAP(&imap.Server{
		TLSConfig:             tlsConfig,
		AllowPlaintextAuth:    cfg.IMAP.AllowPlaintextAuth,
		Logger:                logger,
		Metrics:               reg,
		Limits:                wire.Limits{MaxLine: cfg.IMAP.MaxLine, MaxLiteral: cfg.IMAP.MaxLiteral},
		IdleTimeout:           cfg.IMAP.IdleTimeout,
		MaxCommandsBeforeAuth: cfg.IMAP.MaxCommandsBeforeAuth,
	}, cfg, logger), front)
}

// newLogger makes the slog.Logger that [log] describes, writing to w.
func newLogger(w io.Writer, l config.Log) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// passwdAuth is backend.Authenticator on a passwd-file: a user's Maildir
// is mail_location expanded for them, their quota [quota] or their own
// quota rules (config.UserQuota).
type passwdAuth struct {
	users *auth.Authenticator
	cfg   *config.Config // immutable
}

var _ backend.Authenticator = (*passwdAuth)(nil)

// Authenticate implements backend.Authenticator. Bad credentials of every
// kind are imap.ErrAuthFailed; a passwd-file that cannot be read is
// imap.ErrUnavailable (the client may retry); anything else (a home that
// mail_location cannot use) is the server's problem and passes through,
// to be logged, as is a quota rule that cannot be read.
func (p *passwdAuth) Authenticate(ctx context.Context, name, password string) (backend.Account, error) {
	u, err := p.users.Authenticate(ctx, name, password)
	if errors.Is(err, auth.ErrBadCredentials) {
		return backend.Account{}, imap.ErrAuthFailed
	}
	if errors.Is(err, auth.ErrUnavailable) {
		return backend.Account{}, errors.Join(imap.ErrUnavailable, err)
	}
	if err != nil {
		return backend.Account{}, err
	}
	root, err := p.cfg.MailDir(u.Name, u.Home)
	if err != nil {
		return backend.Account{}, err
	}
	quota, err := p.cfg.UserQuota(u)
	if err != nil {
		return backend.Account{}, err
	}
	return backend.Account{MaildirRoot: root, Quota: quota}, nil
}

// listenAll opens a TCP listener on each address, or none.
func listenAll(addrs []string) ([]net.Listener, error) {
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			closeListeners(lns)
			return nil, fmt.Errorf("imap: %w", err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// closeListeners closes the listeners of a server that will not start.
func closeListeners(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// serveIMAP serves srv on lns, and with implicit TLS on tlsLns, with a
// Backend of users on a Registry of its own, and LMTP (front, if not
// nil) on the same Registry, until ctx is done or a listener fails. Then
// it shuts down: both Shutdowns, at once, with shutdownTimeout (cut
// short by a second SIGINT/SIGTERM), then the watcher. It returns nil
// after a stop by ctx.
func serveIMAP(ctx context.Context, lns, tlsLns []net.Listener, logger *slog.Logger, dataDir string, maxFolders int, users backend.Authenticator, srv *imap.Server, front *lmtpService) error {
	closeAll := func() {
		closeListeners(lns)
		closeListeners(tlsLns)
		front.closeListeners()
	}
	watcher, err := store.NewWatcher(logger)
	if err != nil {
		closeAll()
		return err
	}
	defer watcher.Close()
	index, err := store.OpenIndex(filepath.Join(dataDir, indexFile), logger)
	if err != nil {
		closeAll()
		return err
	}
	defer index.Close()
	registry := store.NewRegistry(store.Options{Logger: logger, Index: index, Metrics: store.NewMetrics(srv.Metrics), MaxFolders: maxFolders}, watcher)
	defer registry.Close()
	srv.Backend = &backend.Backend{Auth: users, Registry: registry}

	served := make(chan error, len(lns)+len(tlsLns))
	for _, ln := range lns {
		go func() { served <- srv.Serve(ln) }()
	}
	for _, ln := range tlsLns {
		go func() { served <- srv.ServeTLS(ln) }()
	}
	front.start(registry)

	var failed error
	select {
	case <-ctx.Done():
		logger.Info("imap: stopping", "cause", context.Cause(ctx))
	case failed = <-served:
		logger.Error("imap: listener failed; stopping", "err", failed)
		failed = fmt.Errorf("imap: %w", failed)
	case failed = <-front.failed():
		logger.Error("lmtp: listener failed; stopping", "err", failed)
	}

	// main's signal.NotifyContext keeps catching SIGINT and SIGTERM after
	// the first one (and drops them), so without this a second signal
	// would do nothing: listen for it and cut the wait short.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	forcedc := make(chan bool, 1)
	go func() {
		select {
		case <-again:
			cancel()
			forcedc <- true
		case <-sctx.Done():
			forcedc <- false
		}
	}()
	lmtpDone := front.shutdown(sctx)
	shutdownErr := srv.Shutdown(sctx)
	<-lmtpDone
	cancel()
	forced := <-forcedc
	closeAll() // for a Serve that had not started when Shutdown ran
	for range len(lns) + len(tlsLns) {
		if err := <-served; failed == nil && err != nil && !errors.Is(err, imap.ErrServerClosed) {
			failed = fmt.Errorf("imap: %w", err)
		}
	}
	if n := srv.Panics.Load(); n > 0 {
		logger.Error("imap: sessions panicked while serving", "count", n)
	}
	if err := watcher.Close(); err != nil {
		logger.Warn("watcher: close", "err", err)
	}
	switch {
	case failed != nil:
		return failed
	case forced:
		return &exitError{code: 1, err: errors.New("serve: second signal: sessions closed without waiting")}
	case shutdownErr != nil:
		logger.Warn("imap: sessions did not end in time; closed them", "timeout", shutdownTimeout)
	}
	logLimitCounters(logger, srv, front)
	logger.Info("imap: stopped")
	return nil
}

// serveDemo serves the demo setup (see serveHelp) under dir, IMAP on
// listen, IMAP with implicit TLS on tlsListen ("": none) and LMTP on
// lmtpListen.
func serveDemo(ctx context.Context, dir, listen, lmtpListen, tlsListen string, stdio Stdio) error {
	asRoot := effectiveUID() == 0
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stdio.Err, nil))
	if asRoot {
		// The demo is one directory of its own; a fresh machine's first
		// try is often a root shell. Real service as root drops to
		// [user] (--config); the demo says so and goes on.
		logger.Warn("demo: running as root; its files under the demo directory belong to root. To serve mail, use --config with user = \"...\"", "dir", dir)
	}
	cfg := &config.Config{
		// A '%' in dir is a '%', not a variable.
		MailLocation: strings.ReplaceAll(dir, "%", "%%") + "/mail/%u/Maildir",
		PasswdFile:   filepath.Join(dir, "passwd"),
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo directory %s: %w", dir, err)
	}
	password, err := demoAccount(dir, cfg, stdio)
	if err != nil {
		return err
	}
	certPath, keyPath, err := demoCertificate(dir, time.Now(), stdio.Err)
	if err != nil {
		return err
	}
	certs, err := loadCertificate(certPath, keyPath, logger)
	if err != nil {
		return err
	}
	stopReload := reloadOnHangup(certs, certPath, logger)
	defer stopReload()
	lns, err := listenAll([]string{listen})
	if err != nil {
		return err
	}
	var tlsLns []net.Listener
	if tlsListen != "" {
		if tlsLns, err = listenAll([]string{tlsListen}); err != nil {
			closeListeners(lns)
			return err
		}
	}
	users := auth.NewAuthenticator(cfg.PasswdFile, logger)
	users.Options = demoHashOptions
	cfg.LMTP.Listen = []string{lmtpListen}
	front, err := newLMTPService(cfg, users, certs.ServerConfig(), logger)
	if err != nil {
		closeListeners(lns)
		closeListeners(tlsLns)
		return err
	}
	if password != "" {
		fmt.Fprintf(stdio.Out, "user: %s\npassword: %s\n", demoUser, password)
	} else {
		fmt.Fprintf(stdio.Out, "user: %s\n", demoUser)
	}
	fmt.Fprintf(stdio.Out, "certificate: %s\n", certPath)
	host, port, _ := net.SplitHostPort(lns[0].Addr().String())
	fmt.Fprintf(stdio.Out, "connect: IMAP %s port %s, STARTTLS, user %s\n", host, port, demoUser)
	for _, ln := range tlsLns {
		host, port, _ := net.SplitHostPort(ln.Addr().String())
		fmt.Fprintf(stdio.Out, "connect: IMAP %s port %s, TLS, user %s\n", host, port, demoUser)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		fmt.Fprintln(stdio.Err, "cistern: note: clients on other machines must use TLS (STARTTLS, or the TLS port) to log in, trusting "+certPath)
	}
	for _, ln := range tlsLns {
		fmt.Fprintf(stdio.Out, "tls listening: %s\n", ln.Addr())
	}
	fmt.Fprintf(stdio.Out, "listening: %s\n", lns[0].Addr())
	fmt.Fprintf(stdio.Out, "lmtp listening: %s\n", front.lns[0].Addr())

	srv := limitIMAP(&imap.Server{Logger: logger, TLSConfig: certs.ServerConfig()}, cfg, logger)
	return serveIMAP(ctx, lns, tlsLns, logger, dir, cfg.WithDefaults().Quota.MaxFolders, &passwdAuth{users: users, cfg: cfg}, srv, front)
}

// demoAccount makes sure the demo user exists with the password in
// dir/demo-password, and that its Maildir exists, with the welcome
// message when it is new. It returns the password to print, or "" when
// the user's password was changed since and is not known.
//
// The steps are ordered so that a start interrupted at any point is
// completed by the next one: the password file first, then the user,
// then the Maildir and the welcome (a crash between those two leaves the
// demo without the welcome message, nothing worse).
func demoAccount(dir string, cfg *config.Config, stdio Stdio) (string, error) {
	pwPath := filepath.Join(dir, demoPasswordFile)
	file, _, err := auth.LoadFile(cfg.PasswdFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var user *auth.User
	if file != nil {
		user, _ = file.Lookup(demoUser)
	}

	password, err := readDemoPassword(pwPath)
	if err != nil {
		return "", err
	}
	newPassword := password == ""
	if newPassword {
		if password, err = randomPassword(demoPasswordLen); err != nil {
			return "", err
		}
		if err := writeFileSynced(pwPath, []byte(password+"\n"), 0o600); err != nil {
			return "", err
		}
	}

	switch {
	case user == nil:
		stored, err := auth.HashWith(auth.DefaultScheme, password, demoHashOptions)
		if err != nil {
			return "", err
		}
		if err := auth.Add(cfg.PasswdFile, auth.User{Name: demoUser, Password: stored}); err != nil {
			return "", err
		}
	case newPassword:
		// The clear password was lost (demo-password removed): the hash
		// cannot give it back, so the demo gets a new one.
		stored, err := auth.HashWith(auth.DefaultScheme, password, demoHashOptions)
		if err != nil {
			return "", err
		}
		if err := auth.SetPassword(cfg.PasswdFile, demoUser, stored); err != nil {
			return "", err
		}
		fmt.Fprintf(stdio.Err, "cistern: %s was missing: user %s has a new password\n", pwPath, demoUser)
	default:
		ok, err := auth.Verify(user.Password, password)
		if err != nil || !ok {
			fmt.Fprintf(stdio.Err, "cistern: warning: the password of %s in %s is no longer the one in %s (changed with 'cistern user passwd'?); not printing it\n",
				demoUser, cfg.PasswdFile, pwPath)
			password = ""
		}
	}

	root, err := cfg.MailDir(demoUser, "")
	if err != nil {
		return "", err
	}
	if maildir.IsMaildir(root) {
		return password, nil
	}
	// OpenAccount only creates here; serving uses its own registry.
	if _, err := store.OpenAccount(root, store.NewRegistry(store.Options{}, nil)); err != nil {
		return "", err
	}
	if _, err := maildir.Deliver(root, strings.NewReader(welcomeMessage(time.Now())), maildir.DeliverOptions{}); err != nil {
		return "", fmt.Errorf("delivering the welcome message: %w", err)
	}
	return password, nil
}

// readDemoPassword returns the password stored at path, or "" when there
// is none.
func readDemoPassword(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

// randomPassword returns n letters and digits from crypto/rand, each
// equally likely.
func randomPassword(n int) (string, error) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	// Bytes at or above limit would make the first letters likelier.
	const limit = 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

// writeFileSynced writes data to path durably: a temporary file in the
// same directory, fsynced, renamed over path, and the directory fsynced.
// A crash leaves the old file (or none) or the new one, never a part.
func writeFileSynced(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return maildir.SyncDir(filepath.Dir(path))
}

// welcomeMessage is the demo INBOX's first message (RFC 5322, one
// text/plain UTF-8 part), dated now.
func welcomeMessage(now time.Time) string {
	id, err := randomPassword(24)
	if err != nil {
		id = fmt.Sprint(now.UnixNano())
	}
	body := `Welcome to Cistern, an IMAP server on Maildir storage.

Cistern keeps every client's view of a mailbox true while many IMAP
sessions, delivery agents and programs it does not control (mutt,
procmail, another server) change the same Maildir at once: no phantom
expunges, UIDs that never change, nothing lost, nothing duplicated.

This demo serves the files under the directory given by --demo-dir
(./cistern-data by default). Your mail is the Maildir
mail/demo/Maildir there; the password of the user "demo" is in the
file demo-password.

To read it with a mail client, add an IMAP account:

  server:    the host and port printed on a "connect:" line
             (127.0.0.1, port 1143 with STARTTLS, or port 1993 with
             TLS, unless --listen or --demo-tls-listen say otherwise)
  security:  STARTTLS or TLS, trusting the self-signed certificate
             ` + demoCertFile + ` there (printed on the "certificate:" line);
             on this machine, none works too
  user:      demo
  password:  the one printed on the "password:" line

Messages you delete here are removed from the Maildir; files put into
mail/demo/Maildir/new by another program appear in this INBOX.

— Cistern
`
	hdr := []string{
		"From: Cistern <cistern@localhost>",
		"To: demo <demo@localhost>",
		"Subject: Welcome to Cistern",
		"Date: " + now.Format(time.RFC1123Z),
		"Message-ID: <" + id + "@cistern.localhost>",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: 8bit",
	}
	// Maildir files end lines in LF; IMAP sends them with CRLF.
	return strings.Join(hdr, "\n") + "\n\n" + body
}
