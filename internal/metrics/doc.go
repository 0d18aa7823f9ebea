// Package metrics counts what Cistern's servers do and renders it in the
// Prometheus text exposition format, version 0.0.4, for 'cistern serve'
// to answer GET /metrics with (config key metrics.listen; off by
// default). It depends on nothing outside the standard library.
//
// # Kinds and bounds
//
// Counters, gauges and histograms are atomic values, cheap enough for
// every command. A vector's labels take values from fixed lists given
// at registration (Label), so a family has at most the product of their
// lengths of series whatever clients send; callers map what they do not
// know onto a list value first (the IMAP engine counts an unknown
// command as "other"). A vector's series is rendered once it was used;
// a family with nothing to render is left out. Counts that a package
// already keeps in its own atomics are read at each rendering
// (CounterFunc, GaugeFunc) rather than kept twice.
//
// # Rendering
//
// WriteTo (and ServeHTTP) render families sorted by name, each as
//
//	# HELP <name> <help, with \ and newline escaped>
//	# TYPE <name> counter|gauge|histogram
//	<name>{<label>="<value>",...} <value>
//
// with its series sorted by their labels, label values escaped (\\, \",
// \n), integers without exponent, +Inf, -Inf and NaN as spelled here. A
// histogram series is its cumulative buckets in ascending order of le,
// ending with le="+Inf", then _sum and _count; _count is the +Inf
// bucket, from the same reads. Two renderings of the same state are the
// same bytes. Package metricstest parses the format back and checks
// these rules, for tests.
//
// # Concurrency and state
//
// Every method is safe for concurrent use. There is no global registry:
// 'cistern serve' makes one Registry and passes it to each part
// (imap.Server.Metrics, lmtp.Server.Metrics, store.Options.Metrics);
// a nil *Registry and the nil metrics it hands out count nothing, so
// code and tests without metrics pay nothing.
//
// # The metrics of cistern serve
//
// All names start with cistern_; counters end in _total.
//
//	name                                    kind       labels            what
//	imap_sessions                           gauge                        IMAP connections open now
//	imap_connections_accepted_total         counter                      IMAP connections taken into service
//	imap_connections_refused_total          counter                      refused over imap.max_connections(_per_ip)
//	imap_logins_refused_total               counter                      logins refused over imap.max_connections_per_user
//	imap_unauthenticated                    gauge                        IMAP connections open now that have not logged in
//	imap_connections_evicted_total          counter                      not logged in, closed to make room (imap.max_unauthenticated)
//	imap_login_timeouts_total               counter                      closed for not logging in within imap.login_timeout
//	imap_commands_total                     counter    command, outcome  IMAP commands; outcome ok, no, bad, error (see below)
//	imap_command_duration_seconds           histogram  command           tag to flushed tagged response; buckets .0005 … 10 s
//	imap_response_memory_bytes              gauge                        message bytes FETCH and SEARCH hold now, of imap.response_memory
//	lmtp_sessions                           gauge                        LMTP connections open now
//	lmtp_connections_accepted_total         counter                      LMTP connections taken into service
//	lmtp_connections_refused_total          counter                      refused over lmtp.max_connections(_per_ip)
//	deliveries_total                        counter    result            per recipient: delivered, unknown_user, bad_address,
//	                                                                     over_quota, too_big, bad_message, cannot_create, temporary
//	delivered_bytes_total                   counter                      bytes stored, each recipient's copy counted
//	auth_failures_total                     counter                      failed IMAP logins (wrong password, unknown user, ...)
//	auth_throttled_total                    counter                      logins the throttle refused without a password check
//	auth_blocks_total                       counter                      an address or user name went over its failure limit
//	auth_tracked                            gauge                        addresses, names and pairs the throttle remembers
//	syncs_total                             counter    proof             mailbox syncs: atomic, stable_timestamp, locked,
//	                                                                     none (not proven: suspects wait), skipped (nothing changed)
//	sync_failures_total                     counter                      syncs that returned an error
//	sync_suspects                           gauge                        suspects waiting now for a proof, in open mailboxes
//	sync_suspects_total                     counter                      messages that became suspects
//	sync_suspects_resolved_total            counter    outcome           found (seen again) or expunged (proven gone, or removed)
//	panics_total                            counter    server            panics recovered (imap, lmtp); each closed one connection
//	process_start_time_seconds              gauge                        start of the process, Unix time
//	build_info                              gauge      version, revision, goversion
//	                                                                     always 1
//
// An IMAP command's label is its name in capitals ("UID FETCH" for the
// UID form), or "other" for a command that does not exist. Its outcome
// is its tagged response: ok (OK), no (NO with an RFC 5530 code, or the
// BYE for too many commands before logging in), bad (BAD), error (NO
// [SERVERBUG] or NO [UNAVAILABLE] after a storage failure, or no tagged
// response: the connection ended, or the command panicked). The
// duration histogram leaves out IDLE, whose length the client chooses,
// LOGIN and AUTHENTICATE, whose failures are slowed down on purpose and
// whose success costs a password hash, and unknown commands. A sync's
// proof is that of its listings of new/ and cur/; when they differ, the
// stable-timestamp one. Deliveries by 'cistern deliver', another
// process, are not counted.
package metrics
