package main

import (
	"log/slog"

	"github.com/cistern-mail/cistern/internal/config"
	"github.com/cistern-mail/cistern/internal/imap"
	"github.com/cistern-mail/cistern/internal/throttle"
)

// limitIMAP sets srv's connection limits and login timeout, the syntax limits that are not
// set elsewhere (nesting, literals per command) and a login Throttle, as
// cfg says (its zero fields as their defaults), and returns srv.
func limitIMAP(srv *imap.Server, cfg *config.Config, logger *slog.Logger) *imap.Server {
	d := cfg.WithDefaults()
	srv.MaxConnections = d.IMAP.MaxConnections
	srv.MaxConnectionsPerIP = d.IMAP.MaxConnectionsPerIP
	srv.MaxConnectionsPerUser = d.IMAP.MaxConnectionsPerUser
	srv.MaxUnauthenticated = d.IMAP.MaxUnauthenticated
	srv.MaxUnauthenticatedPerIP = d.IMAP.MaxUnauthenticatedPerIP
	srv.LoginTimeout = d.IMAP.LoginTimeout
	srv.Limits.MaxDepth = d.IMAP.MaxNesting
	srv.Limits.MaxLiteralsPerCommand = d.IMAP.MaxLiteralsPerCommand
	srv.ResponseMemory = d.IMAP.ResponseMemory
	srv.ResponseMemoryPerUser = d.IMAP.ResponseMemoryPerUser
	srv.Throttle = newThrottle(d.Throttle, logger)
	return srv
}

// newThrottle returns the login Throttle of [throttle] t, whose zero
// fields are filled in; Validate has checked t.
func newThrottle(t config.Throttle, logger *slog.Logger) *throttle.Throttle {
	exempt, err := t.Exempt()
	if err != nil {
		// Only a configuration that skipped Validate gets here: throttle
		// everybody rather than exempt nobody knows whom.
		logger.Error("throttle: exempt_networks ignored", "err", err)
		exempt = nil
	}
	return &throttle.Throttle{
		Policy: throttle.Policy{
			BaseDelay:       t.Delay,
			MaxDelay:        t.MaxDelay,
			Window:          t.Window,
			MaxAddrFailures: t.MaxFailuresPerIP,
			MaxUserFailures: t.MaxFailuresPerUser,
			Penalty:         t.Penalty,
			MaxKeys:         t.MaxTracked,
			Exempt:          exempt,
		},
		Logger: logger,
	}
}

// logLimitCounters logs what the limits and the throttle counted while
// serving.
func logLimitCounters(logger *slog.Logger, srv *imap.Server, front *lmtpService) {
	var lmtpRefused int64
	if front != nil {
		lmtpRefused = front.srv.RefusedConnections.Load()
	}
	args := []any{
		"imap_refused_connections", srv.RefusedConnections.Load(),
		"imap_refused_logins", srv.RefusedLogins.Load(),
		"lmtp_refused_connections", lmtpRefused,
	}
	if th := srv.Throttle; th != nil {
		args = append(args, "failed_logins", th.Failures.Load(), "throttled_logins", th.Refused.Load(), "throttle_blocks", th.Blocks.Load())
	}
	logger.Info("limits: counters", args...)
}
