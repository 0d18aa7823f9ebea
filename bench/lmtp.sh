#!/usr/bin/env bash
# lmtp.sh measures LMTP delivery throughput, Cistern beside Dovecot 2.3, on
# one machine and filesystem at equal durability (bench/lmtpbench; results
# in bench/README.md): deliveries per second of 4 KiB and 100 KiB messages
# over 1 and 8 client connections, and the ratios Cistern/Dovecot.
#
# Run it from anywhere inside the repository, as root or with sudo, on
# Debian 12: Dovecot's master needs root. It installs Debian's
# dovecot-lmtpd if missing (without letting the package start its system
# service), creates the unprivileged mail user Dovecot writes as, builds
# cistern into the work directory, and runs
#
#   go run ./bench/lmtpbench --dir <work dir> --cistern <work dir>/cistern "$@"
#
# Arguments go to lmtpbench (--sizes, --deliveries, --clients, --runs,
# --warmup, --dovecot-fsync, --json, --skip-cistern, --skip-dovecot; see
# `go run ./bench/lmtpbench --help`). The work directory is a new one under
# /var/tmp, removed at the end; set LMTPBENCH_DIR to use and keep a
# directory of your own instead (new or empty: lmtpbench refuses one that
# holds an earlier run's files).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# lmtpbench's mail user; bench/imap.sh and scripts/interop.sh use the same.
readonly MAIL_USER=cistern-interop
readonly POLICY_RC_D=/usr/sbin/policy-rc.d
readonly DOVECOT_LMTP=/usr/lib/dovecot/lmtp

log() { printf 'lmtp.sh: %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

# install_dovecot installs dovecot-lmtpd with a policy-rc.d that forbids
# service starts (exit 101), put back as it was afterwards.
install_dovecot() {
	local saved=""
	if [ -e "$POLICY_RC_D" ]; then
		saved="$(mktemp)"
		as_root cp -p "$POLICY_RC_D" "$saved"
	fi
	restore_policy() {
		if [ -n "$saved" ]; then
			as_root mv -f "$saved" "$POLICY_RC_D"
		else
			as_root rm -f "$POLICY_RC_D"
		fi
	}
	trap restore_policy EXIT
	printf '#!/bin/sh\n# written by bench/lmtp.sh while it installs packages\nexit 101\n' |
		as_root tee "$POLICY_RC_D" >/dev/null
	as_root chmod 0755 "$POLICY_RC_D"
	log "installing dovecot-lmtpd"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends dovecot-lmtpd
	restore_policy
	trap - EXIT
}

skip_dovecot=no
skip_cistern=no
for arg in "$@"; do
	case "$arg" in
	--skip-dovecot | -skip-dovecot) skip_dovecot=yes ;;
	--skip-cistern | -skip-cistern) skip_cistern=yes ;;
	esac
done

if [ "$skip_dovecot" = no ]; then
	if [ ! -x /usr/sbin/dovecot ] || [ ! -x "$DOVECOT_LMTP" ]; then
		install_dovecot
	fi
	if ! getent passwd "$MAIL_USER" >/dev/null; then
		log "creating system user $MAIL_USER"
		as_root useradd --system --user-group --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
	fi
	log "$(/usr/sbin/dovecot --version | sed 's/^/dovecot /')"
fi

cd "$repo_root"
if [ -n "${LMTPBENCH_DIR:-}" ]; then
	work="$LMTPBENCH_DIR"
	mkdir -p "$work"
else
	work="$(mktemp -d /var/tmp/cistern-lmtpbench.XXXXXX)"
	trap 'rm -rf "$work"' EXIT
fi
log "work directory $work"
if [ "$skip_cistern" = no ]; then
	log "building cistern"
	go build -o "$work/cistern" ./cmd/cistern
fi
if [ "$(id -u)" -eq 0 ]; then
	go run ./bench/lmtpbench --dir "$work" --cistern "$work/cistern" "$@"
else
	# sudo's PATH may lack the Go toolchain: build as the caller.
	go build -o "$work/lmtpbench" ./bench/lmtpbench
	sudo "$work/lmtpbench" --dir "$work" --cistern "$work/cistern" "$@"
fi
