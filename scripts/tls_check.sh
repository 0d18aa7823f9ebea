#!/usr/bin/env bash
# tls_check.sh checks Cistern's TLS with a real client, Python's ssl and
# imaplib: it builds the binary, starts `cistern serve --demo` in a
# temporary directory (its plain IMAP listener on a non-loopback address,
# its implicit-TLS listener on 127.0.0.1, free ports),
# runs scripts/tls_check.py against it as the demo user, trusting only the
# self-signed certificate the demo printed, stops the server with SIGTERM,
# and exits with the script's status (1 as well when the server did not
# start, or did not stop cleanly with status 0).
#
# The server and the client run in a network namespace of the check's
# own (unshare --net), where one end of a veth pair made there holds
# 198.18.0.1/32 (RFC 2544's benchmarking block): the non-loopback
# address. No traffic reaches this machine's interfaces or addresses.
# Making the namespace needs root, unshare(1) and ip(8); without them the
# check fails, saying so.
#
# Run it from anywhere inside the repository. It needs go and python3; on
# Debian, a missing python3 is installed with apt-get (as root, or through
# sudo).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# How long the server may take to start listening, and to stop (it waits
# up to 10 s for its sessions on SIGTERM).
readonly START_TIMEOUT=60
readonly STOP_TIMEOUT=20
readonly NETNS_ADDR=198.18.0.1

tmp=""
server_pid=""

# netns_up sets up the namespace the check runs in (see the top) and
# prints its non-loopback address.
netns_up() {
	ip link set lo up
	ip link add tlscheck0 type veth peer name tlscheck1
	ip addr add "$NETNS_ADDR/32" dev tlscheck0
	ip link set tlscheck0 up
	ip link set tlscheck1 up
	printf '%s\n' "$NETNS_ADDR"
}

# shellcheck source=scripts/lib.sh
. "$repo_root/scripts/lib.sh"
trap demo_cleanup EXIT

# field prints the value of the demo's stdout line "name: value".
field() { sed -n "s/^$1: //p" "$tmp/out" | head -n 1; }

main() {
	if [ "${TLS_CHECK_NETNS:-}" = "" ]; then
		# Outside: what needs the network (apt-get, the module proxy),
		# then the check again in a namespace of its own.
		ensure_python
		if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
			log "the check runs in a network namespace of its own: it needs root, unshare and ip"
			return 1
		fi
		tmp="$(mktemp -d)"
		cd "$repo_root"
		log "go build -o $tmp/cistern ./cmd/cistern"
		go build -o "$tmp/cistern" ./cmd/cistern
		local status=0
		TLS_CHECK_NETNS="$tmp" unshare --net -- bash "$repo_root/scripts/tls_check.sh" || status=$?
		return "$status"
	fi
	tmp="$TLS_CHECK_NETNS"
	trap - EXIT
	trap 'if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid"; fi' EXIT
	local host
	host="$(netns_up)"
	cd "$repo_root"
	start_server "$host"

	local user password cert plain tls
	user="$(field user)"
	password="$(field password)"
	cert="$(field certificate)"
	plain="$(field listening)"
	tls="$(field 'tls listening')"
	if [ -z "$user" ] || [ -z "$password" ] || [ -z "$cert" ] || [ -z "$tls" ]; then
		log "no user:, password:, certificate: and tls listening: lines from the server"
		show_server_log
		return 1
	fi
	log "server listening on $plain (plain, STARTTLS) and $tls (TLS); certificate $cert"

	# The password goes through the environment, not the command line
	# (which other users can read in ps).
	local status=0 stopped=0
	IMAP_USER="$user" IMAP_PASSWORD="$password" \
		python3 "$repo_root/scripts/tls_check.py" --cafile "$cert" --tls "$tls" --plain "$plain" || status=$?

	stop_server || stopped=1 # shows the server's log itself
	if [ "$status" -ne 0 ] && [ "$stopped" -eq 0 ]; then
		show_server_log
	fi
	if [ "$status" -eq 0 ]; then
		status=$stopped
	fi
	return "$status"
}

main "$@"
