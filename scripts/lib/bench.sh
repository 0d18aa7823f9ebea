# shellcheck shell=bash
# shellcheck disable=SC2154 # repo_root is the sourcing script's (base.sh checks it)
# bench.sh (sourced through scripts/lib.sh): what bench/imap.sh and
# bench/lmtp.sh share around their Go programs (bench/imapbench,
# bench/lmtpbench).

# has_arg NAME ARG... reports whether the ARGs hold --NAME or -NAME (Go's
# flag package takes both).
has_arg() {
	local name="$1" a
	shift
	for a in "$@"; do
		case "$a" in
		"--$name" | "-$name") return 0 ;;
		esac
	done
	return 1
}

# bench_dovecot PACKAGE ARG... prepares Dovecot for a benchmark whose
# arguments are the ARGs, unless they hold --skip-dovecot: it installs
# PACKAGE (dovecot-imapd, dovecot-lmtpd) when missing, creates
# MAIL_USER, and logs Dovecot's version.
bench_dovecot() {
	local package="$1"
	shift
	if has_arg skip-dovecot "$@"; then
		return 0
	fi
	ensure_dovecot "$package"
	ensure_mail_user
	log "$(dovecot_version)"
}

# bench_workdir VAR PREFIX sets work: the directory named by the
# environment variable VAR when set (made if missing, and kept), else a
# new /var/tmp/PREFIX.XXXXXX removed on exit.
bench_workdir() {
	local keep="${!1:-}"
	if [ -n "$keep" ]; then
		work="$keep"
		mkdir -p "$work"
	else
		work="$(mktemp -d "/var/tmp/$2.XXXXXX")"
		trap 'rm -rf "$work"' EXIT
	fi
	log "work directory $work"
}

# run_bench_tool NAME ARG... runs ./bench/NAME of $repo_root as root with
# the ARGs: with go run when we are root, else built as the caller into
# $work (sudo's PATH may lack the Go toolchain) and run through sudo.
run_bench_tool() {
	local name="$1"
	shift
	cd "$repo_root" || return
	if [ "$(id -u)" -eq 0 ]; then
		go run "./bench/$name" "$@"
	else
		go build -o "$work/$name" "./bench/$name"
		sudo "$work/$name" "$@"
	fi
}
