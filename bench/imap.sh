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
# shellcheck source=scripts/lib.sh
. "$repo_root/scripts/lib.sh"

# imapbench reads the copy as MAIL_USER (scripts/lib/debian.sh), as
# scripts/interop.sh's Dovecot does.
bench_dovecot dovecot-imapd "$@"
bench_workdir IMAPBENCH_DIR cistern-imapbench
run_bench_tool imapbench --dir "$work" "$@"
