#!/usr/bin/env bash
# tls_check.sh checks Cistern's TLS with a real client, Python's ssl and
# imaplib: it builds the binary, starts `cistern serve --demo` in a
# temporary directory (its plain IMAP listener on a non-loopback address
# of this machine, its implicit-TLS listener on 127.0.0.1, free ports),
# runs scripts/tls_check.py against it as the demo user, trusting only the
# self-signed certificate the demo printed, stops the server with SIGTERM,
# and exits with the script's status (1 as well when the server did not
# start, or did not stop cleanly with status 0).
#
# The non-loopback address is the first global IPv4 address of an
# interface that is up (`ip`, else `hostname -I`). A machine without one
# gets 198.18.0.1/32 (RFC 2544's benchmarking block, never routed) on lo
# for the run, when run as root; otherwise the check fails, saying so.
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
readonly FALLBACK_ADDR=198.18.0.1

log() { printf 'tls_check.sh: %s\n' "$*" >&2; }

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

tmp=""
server_pid=""
added_addr=""

cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [ -n "$added_addr" ]; then
		ip addr del "$added_addr/32" dev lo 2>/dev/null || log "could not remove $added_addr from lo"
	fi
	if [ -n "$tmp" ]; then
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

# non_loopback_addr prints an IPv4 address of this machine that is not a
# loopback address, adding one to lo when there is none (root only).
non_loopback_addr() {
	local a=""
	if command -v ip >/dev/null 2>&1; then
		a="$(ip -o -4 addr show up scope global | awk '{ split($4, p, "/"); print p[1]; exit }')"
	fi
	if [ -z "$a" ] && command -v hostname >/dev/null 2>&1; then
		a="$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' | grep -v '^127\.' | head -n 1 || true)"
	fi
	if [ -n "$a" ]; then
		printf '%s\n' "$a"
		return 0
	fi
	if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1; then
		log "this machine has no non-loopback IPv4 address; as root (with iproute2) one is added to lo for the run"
		return 1
	fi
	ip addr add "$FALLBACK_ADDR/32" dev lo
	added_addr=$FALLBACK_ADDR
	printf '%s\n' "$FALLBACK_ADDR"
}

. "$repo_root/scripts/demo_server.sh"

# field prints the value of the demo's stdout line "name: value".
field() { sed -n "s/^$1: //p" "$tmp/out" | head -n 1; }

main() {
	ensure_python
	tmp="$(mktemp -d)"
	local host
	host="$(non_loopback_addr)"
	cd "$repo_root"
	log "go build -o $tmp/cistern ./cmd/cistern"
	go build -o "$tmp/cistern" ./cmd/cistern
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
