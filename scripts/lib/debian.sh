# shellcheck shell=bash
# debian.sh (sourced through scripts/lib.sh): installing Debian packages
# without starting their services, and the mail user.

# MAIL_USER is the unprivileged account the private Dovecot and Cistern
# instances of the benchmarks and of the interop suite touch mail as;
# internal/testproc.MailUser names the same.
readonly MAIL_USER=cistern-interop

# A policy-rc.d that exits 101 tells invoke-rc.d (which every Debian
# maintainer script uses to start services) "action forbidden".
readonly POLICY_RC_D=/usr/sbin/policy-rc.d
apt_updated=no

# apt_install installs Debian packages without recommends and without
# starting their services: a policy-rc.d forbids service starts while
# apt-get runs, and an existing one is put back afterwards, also on error
# (the function runs in a subshell with its own EXIT trap).
apt_install() {
	if [ "$apt_updated" = no ]; then
		log "apt-get update"
		as_root apt-get update -qq
		apt_updated=yes
	fi
	log "installing $*"
	(
		saved=""
		if [ -e "$POLICY_RC_D" ]; then
			saved="$(mktemp)"
			as_root cp -p "$POLICY_RC_D" "$saved"
		fi
		# shellcheck disable=SC2317 # called by the trap
		restore_policy() {
			if [ -n "$saved" ]; then
				as_root mv -f "$saved" "$POLICY_RC_D"
			else
				as_root rm -f "$POLICY_RC_D"
			fi
		}
		trap restore_policy EXIT
		printf '#!/bin/sh\n# written by %s while it installs packages\nexit 101\n' "${0##*/}" |
			as_root tee "$POLICY_RC_D" >/dev/null
		as_root chmod 0755 "$POLICY_RC_D"
		as_root env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "$@"
	)
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
	apt_install python3
}

# stop_pidfile_daemon NAME PIDFILE stops the system's daemon NAME whose
# master's pid is in PIDFILE, if a package script started one despite
# the policy: SIGTERM, up to 5 s, then SIGKILL.
stop_pidfile_daemon() {
	local name="$1" pidfile="$2" pid
	[ -r "$pidfile" ] || return 0
	pid="$(tr -dc '0-9' <"$pidfile")"
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		log "stopping the system $name (pid $pid)"
		as_root kill -TERM "$pid" || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || return 0
			sleep 0.1
		done
		as_root kill -KILL "$pid" || true
	fi
}

# ensure_dovecot PACKAGE... installs Debian's Dovecot packages
# (dovecot-imapd, dovecot-lmtpd) when the master or one of their
# services is missing, and stops the system's Dovecot if the packages
# started it: the scripts run private instances.
ensure_dovecot() {
	local missing=no p service
	[ -x /usr/sbin/dovecot ] || missing=yes
	for p in "$@"; do
		# dovecot-imapd's service is /usr/lib/dovecot/imap.
		service="${p#dovecot-}"
		[ -x "/usr/lib/dovecot/${service%d}" ] || missing=yes
	done
	[ "$missing" = yes ] || return 0
	apt_install "$@"
	stop_pidfile_daemon dovecot /run/dovecot/master.pid
}

# dovecot_version prints "dovecot <version>" of the installed Dovecot.
dovecot_version() {
	/usr/sbin/dovecot --version | sed 's/^/dovecot /'
}

# ensure_mail_user creates MAIL_USER, a system account without a home or
# a login shell, when it is missing.
ensure_mail_user() {
	if ! getent passwd "$MAIL_USER" >/dev/null; then
		log "creating system user $MAIL_USER"
		as_root useradd --system --user-group --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
	fi
}
