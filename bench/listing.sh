#!/usr/bin/env bash
# listing.sh measures the listing and sync speed goals of DESIGN.md §3 on a
# 100,000-message cur/ with warm caches:
#
#   proven listing          <= 1.5 x one raw getdents pass
#   sync, nothing changed   <= 2   x one raw getdents pass
#
# It runs the maildir and store benchmarks, keeps their output in a new
# temporary directory (printed at the end), and prints the medians and the
# ratios. Run it from anywhere inside the repository. The benchmark Maildirs
# are made once, under $TMPDIR (default /tmp), and removed on exit: set
# TMPDIR=/dev/shm to measure on tmpfs. COUNT (default 5) is the number of
# runs of each benchmark; the medians are over them.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$repo_root/scripts/lib.sh"
count="${COUNT:-5}"

out="$(mktemp -d "${TMPDIR:-/tmp}/cistern-bench-out.XXXXXX")"
# The fixture Maildirs are shared by every benchmark of this run (see
# benchDirEnv in maildir/bench_test.go).
CISTERN_BENCH_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cistern-bench-fixture.XXXXXX")"
export CISTERN_BENCH_DIR
trap 'rm -rf "$CISTERN_BENCH_DIR"' EXIT

cd "$repo_root"
fs="$(df -T "$CISTERN_BENCH_DIR" | awk 'NR == 2 { print $2 }')"
{
	echo "kernel: $(uname -r)"
	echo "cpus: $(nproc)"
	echo "fs: $fs ($CISTERN_BENCH_DIR)"
	echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
	go version
} | tee "$out/machine.txt" >&2

# A failed benchmark (a listing that came back short, a sync that reported
# changes) does not stop the others: its failure is reported at the end.
status=0
log "maildir benchmarks (making the fixture takes seconds to a minute)"
go test -run '^$' -bench 'RawGetdents|List100k|ListVsRaw' -benchtime 20x \
	-count "$count" ./maildir/ 2>&1 | tee "$out/maildir.txt" >&2 || status=1
log "store benchmarks"
go test -run '^$' -bench 'Sync' -benchtime 10x \
	-count "$count" ./internal/store/ 2>&1 | tee "$out/store.txt" >&2 || status=1

# Medians of every metric of every benchmark, as "name unit median min max n".
cat "$out/maildir.txt" "$out/store.txt" | awk '
	/^Benchmark/ {
		name = $1
		sub(/-[0-9]+$/, "", name)
		for (i = 3; i + 1 <= NF; i += 2) {
			key = name SUBSEP $(i + 1)
			if (!(key in n)) {
				keys[++nk] = key
			}
			v[key, ++n[key]] = $i
		}
	}
	END {
		for (k = 1; k <= nk; k++) {
			key = keys[k]
			m = n[key]
			for (i = 1; i <= m; i++) {
				a[i] = v[key, i] + 0
			}
			for (i = 2; i <= m; i++) {  # insertion sort: m is small
				x = a[i]
				for (j = i - 1; j >= 1 && a[j] > x; j--) {
					a[j + 1] = a[j]
				}
				a[j + 1] = x
			}
			med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
			split(key, parts, SUBSEP)
			printf "%s %s %.6g %.6g %.6g %d\n", parts[1], parts[2], med, a[1], a[m], m
		}
	}' >"$out/medians.txt"

awk '
	{ med[$1 " " $2] = $3; lo[$1 " " $2] = $4; hi[$1 " " $2] = $5; cnt[$1 " " $2] = $6 }
	function ms(ns) { return sprintf("%10.3f ms", ns / 1e6) }
	function row(b, unit) {
		if (!((b " " unit) in med)) return
		printf "  %-36s %s  (min %s, max %s, %d runs)\n", b, ms(med[b " " unit]), ms(lo[b " " unit]), ms(hi[b " " unit]), cnt[b " " unit]
	}
	function ratio(label, a, b, goal) {
		if (!(a in med) || !(b in med) || med[b] == 0) return
		r = med[a] / med[b]
		printf "  %-44s %7.3f  (goal <= %s: %s)\n", label, r, goal, (r <= goal ? "met" : "MISSED")
	}
	function metric(label, key, goal) {
		if (!(key in med)) return
		printf "  %-44s %7.3f  (min %.3f, max %.3f; goal <= %s: %s)\n", label, med[key], lo[key], hi[key], goal, (med[key] <= goal ? "met" : "MISSED")
	}
	END {
		print "median ns/op:"
		row("BenchmarkRawGetdents100k", "ns/op")
		row("BenchmarkRawGetdentsOneCall100k", "ns/op")
		row("BenchmarkRawGetdentsNoNames100k", "ns/op")
		row("BenchmarkList100k", "ns/op")
		row("BenchmarkSyncNoChange100k", "ns/op")
		row("BenchmarkSyncNoChangeFullRead100k", "ns/op")
		row("BenchmarkFirstSync100k", "ns/op")
		print "ratios of medians, across benchmarks:"
		raw = "BenchmarkRawGetdents100k ns/op"
		ratio("List / RawGetdents", "BenchmarkList100k ns/op", raw, 1.5)
		ratio("SyncNoChangeFullRead / RawGetdents", "BenchmarkSyncNoChangeFullRead100k ns/op", raw, 2)
		ratio("SyncNoChange (skipped) / RawGetdents", "BenchmarkSyncNoChange100k ns/op", raw, 2)
		print "ratios measured within one benchmark (interleaved, same load):"
		metric("ListVsRaw list/raw", "BenchmarkListVsRaw100k list/raw", 1.5)
		metric("SyncNoChangeFullRead sync/raw", "BenchmarkSyncNoChangeFullRead100k sync/raw", 2)
		print "the same in CPU time (user+system, whole process; not inflated by waiting for a CPU):"
		metric("ListVsRaw list/raw-cpu", "BenchmarkListVsRaw100k list/raw-cpu", 1.5)
		metric("SyncNoChangeFullRead sync/raw-cpu", "BenchmarkSyncNoChangeFullRead100k sync/raw-cpu", 2)
	}' "$out/medians.txt" | tee "$out/summary.txt"

if [ "$status" -ne 0 ]; then
	echo "FAILED benchmarks (their runs are missing from the medians):"
	grep -h -A3 -e '^--- FAIL' "$out/maildir.txt" "$out/store.txt" || true
fi
echo "output: $out"
exit "$status"
