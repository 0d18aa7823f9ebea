# shellcheck shell=bash
# lib.sh: the one file every script in scripts/ and bench/ sources, from
# a path derived from the script's own location:
#
#	repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
#	. "$repo_root/scripts/lib.sh"
#
# It sources the parts in scripts/lib/:
#
#	base.sh    log, die, as_root, require_root, random_password,
#	           free_port, greets, stop_group, build_cistern
#	debian.sh  apt_install (no service starts), ensure_python,
#	           ensure_dovecot, dovecot_version, stop_pidfile_daemon,
#	           ensure_mail_user and MAIL_USER
#	demo.sh    starting and stopping 'cistern serve --demo'
#	bench.sh   what bench/imap.sh and bench/lmtp.sh share: has_arg,
#	           bench_dovecot, bench_workdir, run_bench_tool
#
# The caller sets repo_root first (build_cistern and run_bench_tool use
# it); log names the script by the file run.

lib_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/lib" && pwd)"
# shellcheck source=scripts/lib/base.sh
. "$lib_dir/base.sh"
# shellcheck source=scripts/lib/debian.sh
. "$lib_dir/debian.sh"
# shellcheck source=scripts/lib/demo.sh
. "$lib_dir/demo.sh"
# shellcheck source=scripts/lib/bench.sh
. "$lib_dir/bench.sh"
unset lib_dir
