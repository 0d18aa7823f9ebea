#!/usr/bin/env bash
# torture.sh runs the same `cistern torture imap` against Cistern and
# against Dovecot 2.3 on this machine, and prints the results side by
# side (the README's section on correctness shows one such run):
#
#   - Cistern: this repository's `cistern serve --config`, IMAP and LMTP
#     on loopback, one user whose INBOX is a Maildir here;
#   - Dovecot: bench/dovecot.sh's private instance, IMAP and LMTP on
#     loopback, one user whose INBOX is a Maildir here.
#
# Each run has every actor: IMAP sessions, an LMTP deliverer, and foreign
# writers renaming, moving, delivering and deleting in the Maildir
# without any lock. Run it as root (Dovecot's master needs it) on Debian
# 12, from anywhere inside the repository. Settings, by environment:
#
#   TORTURE_SECONDS   how long the actors run against each server (300)
#   TORTURE_SESSIONS  IMAP sessions (8)
#   TORTURE_MESSAGES  messages at the start (500)
#   TORTURE_RENAMES   foreign flag renames per second (200)
#   TORTURE_OUT       where the results go (a new directory under /var/tmp)
#   TORTURE_SERVERS   "both" (the default), or "cistern" alone: no Dovecot
#                     run and no comparison, cistern.json and cistern.html
#                     only (the long runs of one server); or "dovecot"
#                     alone (dovecot.json and dovecot.html only)
#   TORTURE_FLAGS     more `cistern torture imap` flags for both runs, e.g.
#                     the other actors: "--aux-lifecycle 20
#                     --folder-lifecycle 20 --foreign-folders 5
#                     --foreign-links 5 --prelogin 200 --hostile 3
#                     --resync 2" (the resync actors run only against a
#                     server that offers CONDSTORE: Dovecot)
#
# TORTURE_OUT receives cistern.json, cistern.html, dovecot.json,
# dovecot.html (the --json and --report of each run), comparison.txt (the
# table printed at the end) and the servers' logs; the work directory
# (Maildirs, the servers' state) is removed at the end unless it is
# TORTURE_OUT. Violations do not make the script fail; a run that cannot
# be made does.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${TORTURE_SECONDS:-300}"
sessions="${TORTURE_SESSIONS:-8}"
messages="${TORTURE_MESSAGES:-500}"
renames="${TORTURE_RENAMES:-200}"
servers="${TORTURE_SERVERS:-both}"
read -r -a extra_flags <<<"${TORTURE_FLAGS:-}"
readonly USER_NAME=torture
# shellcheck source=scripts/lib.sh
. "$repo_root/scripts/lib.sh"

case "$servers" in both | cistern | dovecot) ;; *) die "TORTURE_SERVERS is both, cistern or dovecot, not $servers" ;; esac
require_root "Dovecot's master needs it"
# Both servers touch mail as MAIL_USER (scripts/lib/debian.sh).
ensure_mail_user
work="$(mktemp -d /var/tmp/cistern-torture.XXXXXX)"
chmod 0755 "$work"
out="${TORTURE_OUT:-$work}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
log "work directory $work, results in $out"

cd "$repo_root"
log "building cistern"
build_cistern "$work/bin/cistern"
cistern="$work/bin/cistern"

# torture NAME IMAP LMTP PASSWORD MAILDIR runs the torture against one
# server; its exit status (1: violations or errors) is reported, not fatal.
torture() {
	local name="$1" imap="$2" lmtp="$3" password="$4" maildir="$5" rc=0
	log "torturing $name for $seconds s with $sessions sessions"
	printf '%s\n' "$password" >"$work/$name.pass"
	"$cistern" torture imap --imap "$imap" --lmtp "$lmtp" --user "$USER_NAME" \
		--pass-file "$work/$name.pass" --maildir "$maildir" \
		--sessions "$sessions" --seconds "$seconds" --messages "$messages" \
		--renames-per-second "$renames" ${extra_flags[@]+"${extra_flags[@]}"} \
		--json --report "$out/$name.html" >"$out/$name.json" || rc=$?
	log "$name: torture exit status $rc ($out/$name.html)"
	[ "$rc" -le 1 ] || die "the run against $name could not be made"
}

cistern_pid=""
stop_cistern() {
	[ -z "$cistern_pid" ] || stop_group "$cistern_pid" 200 || true
}
dovecot_dir="$work/dovecot"
cleanup() {
	stop_cistern
	[ -f "$dovecot_dir/dovecot.conf" ] && bash "$repo_root/bench/dovecot.sh" stop "$dovecot_dir"
	# The Maildirs and the servers' state go; the results stay.
	[ "$out" = "$work" ] || rm -rf "$work"
	return 0
}
trap cleanup EXIT

# Cistern: a configuration, a passwd-file, the Maildir, and the daemon in
# a process group of its own.
if [ "$servers" != dovecot ]; then
	cistern_dir="$work/cistern"
	mkdir -p "$cistern_dir/data" "$cistern_dir/mail/$USER_NAME/Maildir/"{new,cur,tmp}
	imap_port="$(free_port)"
	lmtp_port="$(free_port)"
	cat >"$cistern_dir/cistern.toml" <<EOF
# Cistern of bench/torture.sh.
user = "$MAIL_USER"
data_dir = "$cistern_dir/data"
mail_location = "$cistern_dir/mail/%u/Maildir"
passwd_file = "$cistern_dir/passwd"

[imap]
listen = ["127.0.0.1:$imap_port"]

[lmtp]
listen = ["127.0.0.1:$lmtp_port"]
EOF
	cistern_password="$(random_password)"
	printf '%s\n' "$cistern_password" | "$cistern" user add --config "$cistern_dir/cistern.toml" --scheme PLAIN "$USER_NAME" >/dev/null 2>&1
	chown -R "$MAIL_USER:" "$cistern_dir/data" "$cistern_dir/mail" "$cistern_dir/passwd"
	setsid "$cistern" serve --config "$cistern_dir/cistern.toml" >"$out/cistern.log" 2>&1 </dev/null &
	cistern_pid=$!
	for _ in $(seq 100); do
		greets "$imap_port" "* OK" && greets "$lmtp_port" "220 " && break
		kill -0 "$cistern_pid" 2>/dev/null || die "cistern serve exited: $(tail -n 20 "$out/cistern.log")"
		sleep 0.1
	done
	torture cistern "127.0.0.1:$imap_port" "127.0.0.1:$lmtp_port" "$cistern_password" "$cistern_dir/mail/$USER_NAME/Maildir"
	stop_cistern
fi
if [ "$servers" = cistern ]; then
	"$cistern" torture imap-compare cistern="$out/cistern.json" | tee "$out/comparison.txt"
	exit 0
fi

# Dovecot: bench/dovecot.sh's instance.
env_file="$work/dovecot.env"
DOVECOT_IMAP_PORT="$(free_port)" DOVECOT_LMTP_PORT="$(free_port)" \
	bash "$repo_root/bench/dovecot.sh" start "$dovecot_dir" >"$env_file"
dovecot_value() { sed -n "s/^$1=//p" "$env_file"; }
torture dovecot "$(dovecot_value imap)" "$(dovecot_value lmtp)" "$(dovecot_value password)" "$(dovecot_value maildir)"
bash "$repo_root/bench/dovecot.sh" stop "$dovecot_dir"
cp "$dovecot_dir/dovecot.log" "$out/dovecot.log"

{
	echo "cistern torture imap, $sessions sessions, $seconds s, $messages messages at the start, LMTP and foreign writers ($renames renames/s);"
	echo "$(uname -sr), $(nproc) cores, $(dovecot_version), cistern $(git -C "$repo_root" rev-parse --short HEAD)"
	echo
	if [ "$servers" = dovecot ]; then
		"$cistern" torture imap-compare dovecot="$out/dovecot.json"
	else
		"$cistern" torture imap-compare cistern="$out/cistern.json" dovecot="$out/dovecot.json"
	fi
} | tee "$out/comparison.txt"
