#!/usr/bin/env bash
# imaplib_check.sh checks Cistern with a real client, Python's imaplib:
# it builds the binary, starts `cistern serve --demo` on a free loopback
# port with its data in a temporary directory, runs
# scripts/imaplib_check.py against it as the demo user, stops the server
# with SIGTERM, and exits with the script's status (1 as well when the
# server did not start, or did not stop cleanly with status 0).
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

tmp=""
server_pid=""

# shellcheck source=scripts/lib.sh
. "$repo_root/scripts/lib.sh"
trap demo_cleanup EXIT

main() {
	ensure_python
	demo_binary
	start_server

	local addr user password
	demo_login
	log "server listening on $addr"

	# The password goes through the environment, not the command line
	# (which other users can read in ps).
	local status=0 stopped=0
	IMAP_USER="$user" IMAP_PASSWORD="$password" \
		python3 "$repo_root/scripts/imaplib_check.py" "${addr%:*}" "${addr##*:}" || status=$?

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
