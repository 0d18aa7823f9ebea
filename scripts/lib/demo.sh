# shellcheck shell=bash
# shellcheck disable=SC2154 # repo_root is the sourcing script's (base.sh checks it)
# demo.sh (sourced through scripts/lib.sh): starting and stopping
# 'cistern serve --demo' (imaplib_check.sh, tls_check.sh,
# prelogin_check.sh and bench/memattack.sh). The caller sets tmp (the demo
# lives in $tmp/data, its output in $tmp/out and $tmp/err), START_TIMEOUT
# and STOP_TIMEOUT; the binary is $cistern_bin when set, else
# $tmp/cistern (demo_binary puts it there); server_pid is set here.

show_server_log() {
	log "server output:"
	sed -e 's/^password: .*/password: (hidden)/' -e 's/^/  stdout: /' "$tmp/out" >&2 || true
	sed 's/^/  stderr: /' "$tmp/err" >&2 || true
}

# start_server starts the demo server with its plain listener on host $1
# (default 127.0.0.1), LMTP and implicit TLS on 127.0.0.1, all on free
# ports, and waits for its "listening:" line.
start_server() {
	"${cistern_bin:-$tmp/cistern}" serve --demo --demo-dir "$tmp/data" --listen "${1:-127.0.0.1}:0" \
		--demo-lmtp 127.0.0.1:0 --demo-tls-listen 127.0.0.1:0 \
		>"$tmp/out" 2>"$tmp/err" &
	server_pid=$!
	local deadline=$((SECONDS + START_TIMEOUT))
	until grep -q '^listening: ' "$tmp/out"; do
		if ! kill -0 "$server_pid" 2>/dev/null; then
			log "the server exited before listening"
			show_server_log
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "the server did not listen within ${START_TIMEOUT}s"
			show_server_log
			return 1
		fi
		sleep 0.1
	done
}

# demo_login sets addr, user and password from the demo's output: the
# plain listener's host:port and the demo user's credentials. It fails,
# showing the server's log, when they are missing.
demo_login() {
	addr="$(sed -n 's/^listening: //p' "$tmp/out" | head -n 1)"
	user="$(sed -n 's/^user: //p' "$tmp/out" | head -n 1)"
	password="$(sed -n 's/^password: //p' "$tmp/out" | head -n 1)"
	if [ -z "$addr" ] || [ -z "$user" ] || [ -z "$password" ]; then
		log "no listening:, user: and password: lines from the server"
		show_server_log
		return 1
	fi
}

# stop_server sends SIGTERM and checks that the server exits with 0 in
# time.
stop_server() {
	local pid=$server_pid status=0
	kill -TERM "$pid"
	local deadline=$((SECONDS + STOP_TIMEOUT))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "the server did not stop within ${STOP_TIMEOUT}s of SIGTERM"
			show_server_log
			return 1
		fi
		sleep 0.1
	done
	wait "$pid" || status=$?
	server_pid=""
	if [ "$status" -ne 0 ]; then
		log "the server exited with status $status after SIGTERM, want 0"
		show_server_log
		return 1
	fi
	log "server stopped (status 0)"
}

# end_server stops the server without judging how: SIGTERM, up to $1
# seconds, then SIGKILL (for a server that may have been killed already).
end_server() {
	kill -TERM "$server_pid" 2>/dev/null || true
	local deadline=$((SECONDS + $1))
	while kill -0 "$server_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 0.1
	done
	kill -KILL "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
}

# demo_cleanup kills a server still running and removes $tmp: the
# callers' EXIT trap (trap demo_cleanup EXIT).
demo_cleanup() {
	if [ -n "${server_pid:-}" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [ -n "${tmp:-}" ]; then
		rm -rf "$tmp"
	fi
}

# demo_binary makes $tmp and puts the server there: $CISTERN_BIN when
# set (an older build, for a before/after comparison), else a build of
# this repository ($repo_root).
demo_binary() {
	tmp="$(mktemp -d)"
	if [ -n "${CISTERN_BIN:-}" ]; then
		cp "$CISTERN_BIN" "$tmp/cistern"
		log "using $CISTERN_BIN"
	else
		build_cistern "$tmp/cistern"
		log "built $tmp/cistern from $repo_root"
	fi
}
