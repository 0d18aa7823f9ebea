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

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$repo_root/scripts/lib.sh"

readonly DOVECOT=/usr/sbin/dovecot
readonly USER_NAME=torture
imap_port="${DOVECOT_IMAP_PORT:-10143}"
lmtp_port="${DOVECOT_LMTP_PORT:-10024}"

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

ensure_prerequisites() {
	require_root "Dovecot's master needs it"
	ensure_dovecot dovecot-imapd dovecot-lmtpd
	ensure_mail_user
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
	password="$(random_password)"
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
			log "$(dovecot_version) serving $dir"
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
	# Wait until no process of the instance is left, so that nothing
	# touches the Maildir any more.
	stop_group "$pgid" 100 || log "dovecot ignored SIGTERM for 10 s; killed it"
}

[ $# -eq 2 ] || usage
case "$1" in
start) start "$2" ;;
stop) stop "$2" ;;
*) usage ;;
esac
