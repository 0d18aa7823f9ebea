#!/usr/bin/env bash
# fuzz.sh runs every native Go fuzz target in the module, one after the
# other, each for a bounded time:
#
#	bash scripts/fuzz.sh [SECONDS]
#
# Targets are found with `go test -list '^Fuzz' ./...`, so a new one is
# run without changing this script. Each runs alone (go test -fuzz takes
# one target) with two workers, for SECONDS each; without SECONDS, a
# total of FUZZ_BUDGET seconds (default 150) is shared among the targets,
# at least 2 s each. Interesting inputs are minimized for at most
# FUZZ_MINIMIZE (default 1s), so that minimizing does not eat a short
# run. The seed corpora (f.Add and testdata/fuzz) already run as unit
# tests in plain `go test`; this finds new inputs.
#
# It exits 1 when any target fails, after running the rest, and names
# each failed target with the failing input that go test wrote into the
# package's testdata/fuzz/<Name>/ (rerun it with go test -run=<Name>/<file>
# in that package; keep it there as a regression seed once fixed). A run
# that Go's fuzzing coordinator ends with "context deadline exceeded" and
# no failing input (golang/go#75804, a race at the end of -fuzztime in Go
# 1.26) is run once more before it counts as a failure.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
. "$repo_root/scripts/lib.sh"
cd "$repo_root"

per_target="${1:-}"
budget="${FUZZ_BUDGET:-150}"
minimize="${FUZZ_MINIMIZE:-1s}"
# The least time that lets a target get past its seed corpus and fuzz.
readonly MIN_SECONDS=2
# Time for building and starting a target on top of its fuzzing time,
# before go test's own timeout calls it hung.
readonly SLACK_SECONDS=300

if [ -n "$per_target" ] && ! [[ "$per_target" =~ ^[1-9][0-9]*$ ]]; then
	log "SECONDS must be a positive whole number, got '$per_target'"
	exit 2
fi

module="$(go list -m)"
start=$SECONDS

# Discover: go test -list prints a package's matching names, then its
# "ok <import path>" line.
list="$(mktemp)"
trap 'rm -f "$list"' EXIT
if ! go test -run '^$' -list '^Fuzz' ./... >"$list" 2>&1; then
	cat "$list" >&2
	log "listing the fuzz targets failed"
	exit 1
fi
targets=() # "package-dir name"
names=()
while IFS= read -r line; do
	case "$line" in
	Fuzz*)
		names+=("$line")
		;;
	ok*)
		pkg="$(awk '{print $2}' <<<"$line")"
		dir=".${pkg#"$module"}"
		for n in "${names[@]}"; do
			targets+=("$dir $n")
		done
		names=()
		;;
	esac
done <"$list"
if [ "${#targets[@]}" -eq 0 ]; then
	log "no fuzz targets found"
	exit 1
fi

if [ -z "$per_target" ]; then
	per_target=$((budget / ${#targets[@]}))
	if [ "$per_target" -lt "$MIN_SECONDS" ]; then
		per_target=$MIN_SECONDS
	fi
fi
log "${#targets[@]} targets, ${per_target}s each"

# fuzz_one DIR NAME runs one target, its output in $out.
fuzz_one() {
	go test -run '^$' -fuzz "^${2}\$" -fuzztime "${per_target}s" -fuzzminimizetime "$minimize" \
		-parallel 2 -timeout "$((per_target + SLACK_SECONDS))s" "$1" >"$out" 2>&1
}

# deadline_race reports whether a failed run in $out is Go's own fuzzing
# coordinator reporting the end of -fuzztime as an error (golang/go#75804,
# in Go 1.26, fixed in 1.27): "context deadline exceeded" as the only
# failure, and no failing input written.
deadline_race() {
	grep -qx '    context deadline exceeded' "$out" && ! grep -q 'Failing input written to' "$out"
}

failed=()
out="$(mktemp)"
trap 'rm -f "$list" "$out"' EXIT
for t in "${targets[@]}"; do
	dir="${t% *}"
	name="${t#* }"
	t0=$SECONDS
	if fuzz_one "$dir" "$name"; then
		log "ok   $dir $name ($((SECONDS - t0))s)"
		continue
	fi
	if deadline_race; then
		log "again $dir $name: go test stopped on its own fuzztime deadline (golang/go#75804)"
		if fuzz_one "$dir" "$name"; then
			log "ok   $dir $name ($((SECONDS - t0))s)"
			continue
		fi
	fi
	cat "$out" >&2
	crasher="$(sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^ ]*\).*/\1/p' "$out" | tail -n 1)"
	if [ -n "$crasher" ]; then
		failed+=("$dir $name: failing input in ${dir#./}/$crasher")
	else
		failed+=("$dir $name: failed without a failing input (see above)")
	fi
	log "FAIL $dir $name ($((SECONDS - t0))s)"
done

log "${#targets[@]} targets in $((SECONDS - start))s"
if [ "${#failed[@]}" -gt 0 ]; then
	log "${#failed[@]} failed:"
	for f in "${failed[@]}"; do
		log "  $f"
	done
	exit 1
fi
