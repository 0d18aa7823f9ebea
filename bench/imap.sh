#!/usr/bin/env bash
# imap.sh measures Cistern's IMAP server beside Dovecot 2.3 on one large
# INBOX with warm caches (bench/imapbench; results in bench/README.md):
# SELECT, UID FETCH 1:* (FLAGS), FETCH 1:* (ENVELOPE), FETCH of the last
# 1,000 messages' BODY.PEEK[] and SEARCH TEXT, as ratios Cistern/Dovecot.
#
# Run it from anywhere inside the repository, as root or with sudo, on
# Debian 12: Dovecot's master needs root. It installs Debian's
# dovecot-imapd if missing (without letting the package start its system
# service) and creates the unprivileged mail user Dovecot reads the copy
# as, then runs
#
#   go run ./bench/imapbench --dir <work dir> "$@"
#
# Arguments go to imapbench (--messages N, --runs R, --json, --cpuprofile P,
# --skip-dovecot; see `go run ./bench/imapbench --help`). The work directory
# is a new one under /var/tmp (it holds two copies of the Maildir: about
# 1.1 GB for 100,000 messages) and is removed at the end. Set
# IMAPBENCH_DIR to use and keep a directory of your own instead: a later run
# with the same --messages reuses its Maildirs and the servers' indexes.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# imapbench's mail user; scripts/interop.sh uses the same account.
readonly MAIL_USER=cistern-interop
readonly POLICY_RC_D=/usr/sbin/policy-rc.d

log() { printf 'imap.sh: %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

# install_dovecot installs dovecot-imapd with a policy-rc.d that forbids
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
	printf '#!/bin/sh\n# written by bench/imap.sh while it installs packages\nexit 101\n' |
		as_root tee "$POLICY_RC_D" >/dev/null
	as_root chmod 0755 "$POLICY_RC_D"
	log "installing dovecot-imapd"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends dovecot-imapd
	restore_policy
	trap - EXIT
}

skip_dovecot=no
for arg in "$@"; do
	case "$arg" in
	--skip-dovecot | -skip-dovecot) skip_dovecot=yes ;;
	esac
done

if [ "$skip_dovecot" = no ]; then
	[ -x /usr/sbin/dovecot ] || install_dovecot
	if ! getent passwd "$MAIL_USER" >/dev/null; then
		log "creating system user $MAIL_USER"
		as_root useradd --system --user-group --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
	fi
	log "$(/usr/sbin/dovecot --version | sed 's/^/dovecot /')"
fi

cd "$repo_root"
if [ -n "${IMAPBENCH_DIR:-}" ]; then
	work="$IMAPBENCH_DIR"
else
	work="$(mktemp -d /var/tmp/cistern-imapbench.XXXXXX)"
	trap 'rm -rf "$work"' EXIT
fi
log "work directory $work"
if [ "$(id -u)" -eq 0 ]; then
	go run ./bench/imapbench --dir "$work" "$@"
else
	# sudo's PATH may lack the Go toolchain: build as the caller.
	go build -o "$work/imapbench" ./bench/imapbench
	sudo "$work/imapbench" --dir "$work" "$@"
fi
