#!/usr/bin/env bash
# lmtp.sh measures LMTP delivery throughput, Cistern beside Dovecot 2.3, on
# one machine and filesystem at equal durability (bench/lmtpbench; results
# in bench/README.md): deliveries per second of 4 KiB and 100 KiB messages
# over 1 and 8 client connections, and the ratios Cistern/Dovecot.
#
# Run it from anywhere inside the repository, as root or with sudo, on
# Debian 12: Dovecot's master needs root. It installs Debian's
# dovecot-lmtpd if missing (without letting the package start its system
# service), creates the unprivileged mail user Dovecot (and Cistern, run
# as root) writes as, builds
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
# shellcheck source=scripts/lib.sh
. "$repo_root/scripts/lib.sh"

# lmtpbench's Dovecot writes as MAIL_USER (scripts/lib/debian.sh), and so
# does its Cistern when run as root.
bench_dovecot dovecot-lmtpd "$@"
bench_workdir LMTPBENCH_DIR cistern-lmtpbench
if ! has_arg skip-cistern "$@"; then
	ensure_mail_user
	log "building cistern"
	build_cistern "$work/cistern"
fi
run_bench_tool lmtpbench --dir "$work" --cistern "$work/cistern" "$@"
