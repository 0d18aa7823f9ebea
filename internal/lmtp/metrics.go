package lmtp

// initMetrics registers the server's metrics in s.Metrics (package
// metrics' doc has the list): its connections, its panics, and its
// Deliverer's outcomes. Deliveries by 'cistern deliver' are another
// process's, and not counted here. Called once, by init.
func (s *Server) initMetrics() {
	r := s.Metrics
	if r == nil {
		return
	}
	s.accepted = r.Counter("cistern_lmtp_connections_accepted_total", "LMTP connections taken into service (not refused by the connection limits).")
	r.GaugeFunc("cistern_lmtp_sessions", "LMTP connections open now.",
		func() float64 { return float64(s.open.all.Count("")) })
	r.CounterFunc("cistern_lmtp_connections_refused_total", "LMTP connections refused over lmtp.max_connections or lmtp.max_connections_per_ip.",
		func() float64 { return float64(s.RefusedConnections.Load()) })
	r.RegisterPanics("lmtp", s.Panics.Load)
	s.Deliverer.Counters.RegisterMetrics(r)
}
