# shellcheck shell=bash
# base.sh (sourced through scripts/lib.sh): messages, root, and small
# helpers for processes and loopback ports.

# repo_root is the sourcing script's: the top of this repository.
: "${repo_root:?the script that sources scripts/lib.sh sets repo_root}"

# log writes a line to stderr prefixed with the script's name (the file
# run, as in "imap.sh: ..."); die logs and exits 1.
log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() {
	log "$*"
	exit 1
}

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

# require_root exits, saying why ($1), unless we are root.
require_root() {
	[ "$(id -u)" -eq 0 ] || die "run me as root: $1"
}

# random_password prints 24 hex digits from /dev/urandom.
random_password() {
	head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'
}

# free_port prints a loopback TCP port that was free a moment ago.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# greets reports whether 127.0.0.1:$1 sends a first line starting with $2.
greets() {
	# shellcheck disable=SC2016 # the inner bash expands them
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && IFS= read -r line <&3 && [[ "$line" == "$2"* ]]' _ "$1" "$2" 2>/dev/null
}

# stop_group PGID TENTHS sends SIGTERM to process group PGID and waits
# up to TENTHS tenths of a second for all of it to exit, then sends
# SIGKILL; it returns 1 when it had to kill, 0 otherwise (also when the
# group was gone already).
stop_group() {
	local pgid="$1" tenths="$2"
	kill -TERM -- "-$pgid" 2>/dev/null || return 0
	for _ in $(seq "$tenths"); do
		kill -0 -- "-$pgid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL -- "-$pgid" 2>/dev/null || true
	return 1
}

# build_cistern DEST builds this repository's cistern command ($repo_root)
# into DEST.
build_cistern() {
	(cd "$repo_root" && go build -o "$1" ./cmd/cistern)
}
