#!/usr/bin/env bash
# dovecot.sh starts and stops a private Dovecot 2.3 on loopback, serving
# IMAP and LMTP for one user whose mail is a Maildir on this machine, so
# that `cistern torture imap` (or anything else) can be pointed at it:
#
#   bench/dovecot.sh start DIR    start it in DIR (absent or empty)
#   bench/dovecot.sh stop DIR     stop it and wait for its processes
#
# start prints what a client needs, one key=value per line:
#
#   imap=127.0.0.1:<port>      IMAP, no TLS, plaintext LOGIN allowed
#   lmtp=127.0.0.1:<port>      LMTP, RCPT TO:<user@localhost>
#   user=torture
#   password=<password>
#   maildir=DIR/home/torture/Maildir   the user's INBOX
#
# The ports are DOVECOT_IMAP_PORT and DOVECOT_LMTP_PORT (default 10143
# and 10024). Dovecot runs with its defaults for everything about mail
# (mail_fsync = optimized, index files in the Maildir), mail access as the
# unprivileged cistern-interop account (Dovecot refuses root); its log is
# DIR/dovecot.log.
#
# Run it as root (Dovecot's master needs it) on Debian 12: it installs
# dovecot-imapd and dovecot-lmtpd when missing, without letting the
# packages start the system's Dovecot, and creates the mail user. DIR is
# left behind for inspection; remove it after stop.
set -euo pipefail

readonly MAIL_USER=cistern-interop
readonly POLICY_RC_D=/usr/sbin/policy-rc.d
readonly DOVECOT=/usr/sbin/dovecot
readonly USER_NAME=torture
imap_port="${DOVECOT_IMAP_PORT:-10143}"
lmtp_port="${DOVECOT_LMTP_PORT:-10024}"

log() { printf 'dovecot.sh: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# install_dovecot installs the packages with a policy-rc.d that forbids
# service starts (exit 101), put back as it was afterwards.
install_dovecot() {
	local saved=""
	if [ -e "$POLICY_RC_D" ]; then
		saved="$(mktemp)"
		cp -p "$POLICY_RC_D" "$saved"
	fi
	restore_policy() {
		if [ -n "$saved" ]; then
			mv -f "$saved" "$POLICY_RC_D"
		else
			rm -f "$POLICY_RC_D"
		fi
	}
	trap restore_policy EXIT
	printf '#!/bin/sh\n# written by bench/dovecot.sh while it installs packages\nexit 101\n' >"$POLICY_RC_D"
	chmod 0755 "$POLICY_RC_D"
	log "installing dovecot-imapd dovecot-lmtpd"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 \
		--no-install-recommends dovecot-imapd dovecot-lmtpd
	restore_policy
	trap - EXIT
}

ensure_prerequisites() {
	[ "$(id -u)" -eq 0 ] || die "run me as root: Dovecot's master needs it"
	if [ ! -x "$DOVECOT" ] || [ ! -x /usr/lib/dovecot/imap ] || [ ! -x /usr/lib/dovecot/lmtp ]; then
		install_dovecot
	fi
	if ! getent passwd "$MAIL_USER" >/dev/null; then
		log "creating system user $MAIL_USER"
		useradd --system --user-group --no-create-home \
			--home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
	fi
}

# greets reports whether host port sends a first line starting with $3.
greets() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && IFS= read -r line <&3 && [[ "$line" == "$2"* ]]' _ "$1" "$2" 2>/dev/null
}

start() {
	local dir="$1"
	ensure_prerequisites
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	[ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
	chmod 0755 "$dir"
	local p="$dir"
	while [ "$p" != / ]; do
		[ $((0$(stat -c '%a' "$p") & 1)) -eq 1 ] ||
			die "$p is not searchable by others: $MAIL_USER could not reach the mail (use a directory under /var/tmp)"
		p="$(dirname "$p")"
	done
	local uid gid password home
	uid="$(id -u "$MAIL_USER")"
	gid="$(id -g "$MAIL_USER")"
	password="$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	home="$dir/home/$USER_NAME"
	mkdir -p "$dir/run" "$dir/state" "$home/Maildir/new" "$home/Maildir/cur" "$home/Maildir/tmp"
	chown -R "$uid:$gid" "$dir/home"
	chmod -R go-rwx "$home"
	# user:password:uid:gid:gecos:home:shell:extra
	printf '%s:{PLAIN}%s:%d:%d::%s::\n' "$USER_NAME" "$password" "$uid" "$gid" "$home" >"$dir/users"
	chmod 0644 "$dir/users"
	cat >"$dir/dovecot.conf" <<EOF
# Private Dovecot of bench/dovecot.sh.
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
first_valid_gid = 1

protocols = imap lmtp
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100
lmtp_save_to_detail_mailbox = no

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp_port
  }
}

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $dir/users
}
userdb {
  driver = passwd-file
  args = username_format=%n $dir/users
}
EOF
	# In the foreground, in a session and process group of its own, so that
	# stop can wait for every process of the instance.
	setsid "$DOVECOT" -F -c "$dir/dovecot.conf" >>"$dir/dovecot.out" 2>&1 </dev/null &
	echo $! >"$dir/master.pgid"
	for _ in $(seq 100); do
		if greets "$imap_port" "* OK" && greets "$lmtp_port" "220 "; then
			printf 'imap=127.0.0.1:%s\nlmtp=127.0.0.1:%s\nuser=%s\npassword=%s\nmaildir=%s\n' \
				"$imap_port" "$lmtp_port" "$USER_NAME" "$password" "$home/Maildir"
			log "$("$DOVECOT" --version | sed 's/^/dovecot /') serving $dir"
			return 0
		fi
		sleep 0.1
	done
	stop "$dir"
	die "no greeting on ports $imap_port and $lmtp_port; see $dir/dovecot.log"
}

stop() {
	local dir="$1" pgid
	[ -f "$dir/dovecot.conf" ] || die "$dir has no dovecot.conf"
	[ -r "$dir/master.pgid" ] || return 0
	pgid="$(cat "$dir/master.pgid")"
	kill -TERM -- "-$pgid" 2>/dev/null || return 0
	# Wait until no process of the instance is left, so that nothing
	# touches the Maildir any more.
	for _ in $(seq 100); do
		kill -0 -- "-$pgid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "dovecot ignored SIGTERM for 10 s; killing it"
	kill -KILL -- "-$pgid" 2>/dev/null || true
}

[ $# -eq 2 ] || usage
case "$1" in
start) start "$2" ;;
stop) stop "$2" ;;
*) usage ;;
esac
