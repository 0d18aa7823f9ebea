#!/usr/bin/env bash
# interop.sh runs the interop suite: the Go package ./interop (build tag
# "interop") against real third-party servers from Debian's packages.
#
# Run it from anywhere inside the repository, as root or with sudo, on
# Debian 12. It installs what is missing (once; later runs only check), never
# lets a package start its system service, and exits with the status of
# `go test`, to which it passes its arguments (e.g. -v, -run Postfix).
# Each component has one ensure_* function; add new components (mbsync,
# ...) the same way and call them from main.
#
# Components: Dovecot (dovecot-imapd), Postfix, swaks, and Chromium (to
# render the torture report headless). The tests run private instances of
# Dovecot and Postfix under temporary directories; the system's instances
# stay stopped and their configuration untouched.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The unprivileged account that the test Dovecot instances use for mail
# access; interop/dovecot.go looks it up by this name.
readonly MAIL_USER=cistern-interop

log() { printf 'interop.sh: %s\n' "$*" >&2; }

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

apt_updated=no

# apt_install installs Debian packages without recommends and without
# starting their services (see block_service_starts).
apt_install() {
	if [ "$apt_updated" = no ]; then
		log "apt-get update"
		as_root apt-get update -qq
		apt_updated=yes
	fi
	log "installing $*"
	block_service_starts
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "$@"
	unblock_service_starts
}

# A policy-rc.d that exits 101 tells invoke-rc.d (which every Debian
# maintainer script uses to start services) "action forbidden". An existing
# policy is kept aside and put back afterwards, also on error.
readonly POLICY_RC_D=/usr/sbin/policy-rc.d
policy_saved=""
policy_blocked=no

block_service_starts() {
	if [ -e "$POLICY_RC_D" ]; then
		policy_saved="$(mktemp)"
		as_root cp -p "$POLICY_RC_D" "$policy_saved"
	fi
	printf '#!/bin/sh\n# written by scripts/interop.sh while it installs packages\nexit 101\n' |
		as_root tee "$POLICY_RC_D" >/dev/null
	as_root chmod 0755 "$POLICY_RC_D"
	policy_blocked=yes
}

unblock_service_starts() {
	[ "$policy_blocked" = yes ] || return 0
	if [ -n "$policy_saved" ]; then
		as_root mv -f "$policy_saved" "$POLICY_RC_D"
		policy_saved=""
	else
		as_root rm -f "$POLICY_RC_D"
	fi
	policy_blocked=no
}
trap unblock_service_starts EXIT

# stop_system_dovecot stops the Dovecot of the system configuration, if the
# package's scripts started one despite the policy; the tests run their own
# instances and need nothing from it.
stop_system_dovecot() {
	local pidfile=/run/dovecot/master.pid pid
	[ -r "$pidfile" ] || return 0
	pid="$(cat "$pidfile")"
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		log "stopping the system dovecot (pid $pid)"
		as_root kill -TERM "$pid" || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || return 0
			sleep 0.1
		done
		as_root kill -KILL "$pid" || true
	fi
}

ensure_dovecot() {
	if [ ! -x /usr/sbin/dovecot ]; then
		apt_install dovecot-imapd
		stop_system_dovecot
	fi
	log "$(/usr/sbin/dovecot --version | sed 's/^/dovecot /')"
}

# stop_system_postfix stops the Postfix of the system configuration, if a
# package script started one despite the policy; the tests run their own
# instance with its own queue and need nothing from it.
stop_system_postfix() {
	local pidfile=/var/spool/postfix/pid/master.pid pid
	[ -r "$pidfile" ] || return 0
	pid="$(tr -dc '0-9' <"$pidfile")"
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		log "stopping the system postfix (pid $pid)"
		as_root kill -TERM "$pid" || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || return 0
			sleep 0.1
		done
		as_root kill -KILL "$pid" || true
	fi
}

# ensure_postfix installs Postfix with debconf's "No configuration": the
# package then writes no main.cf for the system instance, which stays
# unconfigured and stopped; interop/postfix.go writes a complete
# configuration for each private instance.
ensure_postfix() {
	if [ ! -x /usr/sbin/postfix ]; then
		echo 'postfix postfix/main_mailer_type select No configuration' |
			as_root debconf-set-selections
		apt_install postfix
		stop_system_postfix
	fi
	log "postfix $(/usr/sbin/postconf -d -h mail_version)"
}

# ensure_swaks installs swaks, the SMTP client the Postfix test sends with.
ensure_swaks() {
	if ! command -v swaks >/dev/null 2>&1; then
		apt_install swaks
	fi
	log "$(swaks --version 2>&1 | head -n 1)"
}

# ensure_chromium installs Debian's Chromium and a font, with which the
# torture test renders its HTML report headless and screenshots it.
ensure_chromium() {
	if [ ! -x /usr/bin/chromium ] || ! dpkg -s fonts-dejavu-core >/dev/null 2>&1; then
		apt_install chromium fonts-dejavu-core
	fi
	log "$(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
}

ensure_mail_user() {
	if ! getent passwd "$MAIL_USER" >/dev/null; then
		log "creating system user $MAIL_USER"
		as_root useradd --system --user-group --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
	fi
}

run_tests() {
	cd "$repo_root"
	log "go test -race -count=1 -tags interop ${*:+$* }./interop/..."
	go test -race -count=1 -tags interop "$@" ./interop/...
}

main() {
	ensure_dovecot
	ensure_postfix
	ensure_swaks
	ensure_chromium
	ensure_mail_user
	run_tests "$@"
}

main "$@"
