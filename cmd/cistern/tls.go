package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cistern-mail/cistern/internal/tlscert"
)

// The demo's certificate (see serveHelp).
const (
	demoCertFile = "tls-cert.pem"
	demoKeyFile  = "tls-key.pem"
	// demoTLSListen is the demo's implicit-TLS address (--demo-tls-listen
	// changes it, "" turns it off).
	demoTLSListen = "127.0.0.1:1993"
	// demoCertValidity: long enough that a demo left running is not cut
	// off; a certificate this close to its end is replaced at start.
	demoCertValidity = 365 * 24 * time.Hour
	demoCertRenew    = 24 * time.Hour
)

// demoCertHosts are the names a client of the demo may use.
var demoCertHosts = []string{"localhost", "127.0.0.1", "::1"}

// demoCertificate returns the paths of the demo's certificate and key in
// dir, making a self-signed pair (tlscert.SelfSigned, for demoCertHosts)
// when there is none, when the two files are not a pair, or when the
// certificate ends within demoCertRenew; a usable pair is kept, so that
// a client that trusted it once keeps trusting it.
//
// Both files are written durably (writeFileSynced), mode 0600, the key
// first: a crash between the two leaves a key without its certificate,
// which the next start replaces, never a certificate whose key is lost.
func demoCertificate(dir string, now time.Time, stderr io.Writer) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, demoCertFile), filepath.Join(dir, demoKeyFile)
	certs, err := tlscert.Load(certPath, keyPath)
	switch {
	case err == nil && now.Add(demoCertRenew).Before(certs.Certificate().Leaf.NotAfter):
		return certPath, keyPath, nil
	case err == nil:
		fmt.Fprintf(stderr, "cistern: %s expires %s: making a new one\n", certPath, certs.Certificate().Leaf.NotAfter.Format(time.DateOnly))
	case !errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(stderr, "cistern: %v: making a new certificate and key\n", err)
	}
	certPEM, keyPEM, err := tlscert.SelfSigned("localhost", demoCertHosts, now, demoCertValidity)
	if err != nil {
		return "", "", err
	}
	if err := writeFileSynced(keyPath, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeFileSynced(certPath, certPEM, 0o600); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// loadCertificate reads the certificate of [tls] (or the demo's) and
// logs what it is.
func loadCertificate(certPath, keyPath string, logger *slog.Logger) (*tlscert.Store, error) {
	certs, err := tlscert.Load(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	logCertificate(logger, "tls: certificate loaded", certPath, certs.Certificate(), time.Now())
	return certs, nil
}

// logCertificate logs msg with what the certificate says about itself,
// as a warning when it is not valid at now: clients will refuse it, but
// an operator may be replacing it.
func logCertificate(logger *slog.Logger, msg, path string, cert *tls.Certificate, now time.Time) {
	leaf := cert.Leaf
	attrs := []any{"path", path, "subject", leaf.Subject.String(), "dns", leaf.DNSNames, "not_after", leaf.NotAfter.UTC()}
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		logger.Warn(msg+"; it is not valid now, clients will refuse it", attrs...)
		return
	}
	logger.Info(msg, attrs...)
}

// reloadOnHangup reloads certs (nil: there is no certificate) on every
// SIGHUP until stop is called. A reload that fails is logged and the
// certificate in force stays. Sessions are not touched: they keep the
// keys of their handshake, and only new handshakes see the new
// certificate.
func reloadOnHangup(certs *tlscert.Store, certPath string, logger *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-hup:
			case <-done:
				return
			}
			if certs == nil {
				logger.Info("SIGHUP: no [tls] certificate to reload")
				continue
			}
			cert, err := certs.Reload()
			if err != nil {
				attrs := []any{"err", err}
				if errors.Is(err, fs.ErrPermission) {
					// Read as root at start, unreadable after the drop.
					attrs = append(attrs, "hint", fmt.Sprintf("tls.cert and tls.key must be readable by uid %d, which cistern runs as", os.Geteuid()))
				}
				logger.Error("tls: reload failed; the certificate in force stays", attrs...)
				continue
			}
			logCertificate(logger, "tls: certificate reloaded", certPath, cert, time.Now())
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		<-finished
	}
}
