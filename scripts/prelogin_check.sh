#!/usr/bin/env bash
# prelogin_check.sh measures issue 11's attack against a real server: it
# starts `cistern serve --demo` (the default limits: 2,000 connections,
# 20 per address) on a free loopback port with its data in a temporary
# directory, opens 3,000 connections that never log in from 150
# addresses of 127.0.0.0/8 (scripts/prelogin_check.py), and prints the
# time a legitimate client then takes to connect and log in. It exits 1
# when that client is refused (BYE) or the login fails, or when the
# server did not start or stop cleanly.
#
# CISTERN_BIN=/path/to/cistern runs another binary (an older build, for
# the before and after) instead of building this tree. CONNS and
# PER_ADDR change the attack. Run it from anywhere inside the
# repository; it needs go (unless CISTERN_BIN) and python3, and takes a
# few seconds.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

readonly START_TIMEOUT=60
readonly STOP_TIMEOUT=20

tmp=""
server_pid=""

# shellcheck source=scripts/lib.sh
. "$repo_root/scripts/lib.sh"
trap demo_cleanup EXIT

main() {
	demo_binary
	start_server

	local addr user password
	demo_login
	log "server listening on $addr"

	local status=0 stopped=0
	IMAP_USER="$user" IMAP_PASSWORD="$password" \
		python3 "$repo_root/scripts/prelogin_check.py" "${addr%:*}" "${addr##*:}" || status=$?

	stop_server || stopped=1
	if [ "$status" -eq 0 ]; then
		status=$stopped
	fi
	return "$status"
}

main "$@"
