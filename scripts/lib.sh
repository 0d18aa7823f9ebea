# lib.sh: what the check and bench scripts share, sourced by each from
# its own location (. "$repo_root/scripts/lib.sh"): running a command as
# root, installing python3, and starting and stopping 'cistern serve
# --demo' (imaplib_check.sh, tls_check.sh, prelogin_check.sh and
# bench/memattack.sh). The caller defines log (its own prefix), sets
# tmp (the binary is $tmp/cistern, the demo lives in $tmp/data),
# START_TIMEOUT, STOP_TIMEOUT and repo_root; server_pid is set here.

# as_root runs a command as root, through sudo when we are not root.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		log "need root (or sudo) to run: $*"
		return 1
	fi
}

# ensure_python installs python3 with apt-get when it is missing.
ensure_python() {
	if command -v python3 >/dev/null 2>&1; then
		return 0
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		log "python3 is missing and there is no apt-get to install it"
		return 1
	fi
	log "installing python3 with apt-get"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends python3
}

show_server_log() {
	log "server output:"
	sed -e 's/^password: .*/password: (hidden)/' -e 's/^/  stdout: /' "$tmp/out" >&2 || true
	sed 's/^/  stderr: /' "$tmp/err" >&2 || true
}

# start_server starts the demo server with its plain listener on host $1
# (default 127.0.0.1), LMTP and implicit TLS on 127.0.0.1, all on free
# ports, and waits for its "listening:" line.
start_server() {
	"$tmp/cistern" serve --demo --demo-dir "$tmp/data" --listen "${1:-127.0.0.1}:0" \
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
		(cd "$repo_root" && go build -o "$tmp/cistern" ./cmd/cistern)
		log "built $tmp/cistern from $repo_root"
	fi
}
