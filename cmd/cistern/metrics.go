package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cistern-mail/cistern/internal/metrics"
)

// Bounds of the metrics endpoint: a scraper sends one small request and
// reads a few kilobytes; anything slower or bigger is not a scraper.
const (
	metricsReadTimeout  = 10 * time.Second
	metricsWriteTimeout = 30 * time.Second
	metricsIdleTimeout  = 2 * time.Minute
	metricsMaxHeader    = 16 << 10
	// metricsStopTimeout bounds the wait for scrapes under way at the
	// stop.
	metricsStopTimeout = 5 * time.Second
)

// startMetrics serves a new Registry's metrics, with the process's own,
// at GET /metrics over plain HTTP on addr (metrics.listen), and returns
// the Registry and the function that stops serving. addr "" serves
// nothing: the Registry is nil (no metrics are kept) and nothing
// listens.
func startMetrics(addr string, logger *slog.Logger) (*metrics.Registry, func(), error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	reg := metrics.NewRegistry()
	reg.RegisterProcess(time.Now())
	mux := http.NewServeMux()
	mux.Handle("/metrics", reg)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: metricsReadTimeout,
		ReadTimeout:       metricsReadTimeout,
		WriteTimeout:      metricsWriteTimeout,
		IdleTimeout:       metricsIdleTimeout,
		MaxHeaderBytes:    metricsMaxHeader,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("metrics: listening", "addr", ln.Addr().String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The mail keeps flowing without its metrics: a failure is
		// logged, and the server goes on.
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics: listener failed; no metrics are served", "err", err)
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), metricsStopTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-done
	}
	return reg, stop, nil
}

// setMetrics gives the LMTP server its metrics Registry (nil: none);
// before start.
func (l *lmtpService) setMetrics(reg *metrics.Registry) {
	if l != nil {
		l.srv.Metrics = reg
	}
}
