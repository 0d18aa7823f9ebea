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

# shellcheck source=scripts/lib.sh
. "$repo_root/scripts/lib.sh"

# The test Dovecot instances access mail as MAIL_USER
# (scripts/lib/debian.sh); interop/dovecot.go looks it up by that name.

# ensure_dovecot_imap installs Dovecot's IMAP server (the library's
# ensure_dovecot also stops a system Dovecot the package started).
ensure_dovecot_imap() {
	ensure_dovecot dovecot-imapd
	log "$(dovecot_version)"
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
		stop_pidfile_daemon postfix /var/spool/postfix/pid/master.pid
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

run_tests() {
	cd "$repo_root"
	log "go test -race -count=1 -tags interop ${*:+$* }./interop/..."
	go test -race -count=1 -tags interop "$@" ./interop/...
}

main() {
	ensure_dovecot_imap
	ensure_postfix
	ensure_swaks
	ensure_chromium
	ensure_mail_user
	run_tests "$@"
}

main "$@"
