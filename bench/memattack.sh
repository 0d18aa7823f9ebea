#!/usr/bin/env bash
# memattack.sh measures what one hostile message costs a Cistern server
# (issue 11): the peak memory (VmHWM) of `cistern serve` while clients
# fetch ENVELOPE, BODYSTRUCTURE and BODY[] of a message whose To: holds
# 1 million addresses (about 10 MB) and one whose To: holds 15 million
# (about 60 MB, under the default 64 MiB APPENDLIMIT).
#
#	bench/memattack.sh [CISTERN_BINARY]
#
# The binary is the argument, or $CISTERN, or one built from this
# checkout; run it once with an old build (/var/tmp/cistern-old) and once
# with a new one to compare. For every case it starts the binary afresh
# (`cistern serve --demo` on 127.0.0.1, its data in a new temporary
# directory, so that peaks do not mix and no cached structure helps),
# puts the message into the demo user's INBOX as a foreign program would
# (tmp/ then rename into new/), and runs the clients (Python 3, raw
# sockets: every byte of the response is counted, none kept). It prints
# one row per case: the server's peak RSS from /proc/PID/status, the
# bytes of the largest FETCH response, and the wall time of the slowest
# client.
#
# Cases: env10/env60 (FETCH 1:* (ENVELOPE), one client: the demo's welcome
# message and the hostile one), env10x3/env60x3
# (three clients at once), bs10/bs60 and bs10x3/bs60x3 (BODYSTRUCTURE),
# body60x10 (ten clients FETCH 1:* (BODY.PEEK[]) at once), plain60x10 (the
# same with a 60 MB message of an ordinary header and a big body: the
# memory budget alone, without the address list).
#
# Environment:
#	MEMATTACK_CASES    the cases to run, space separated (default: all)
#	MEMATTACK_SKIP     cases to leave out (an old build needs about 8 GB
#	                   for one ENVELOPE of the 60 MB message: skip the x3
#	                   ones where three would not fit; they print as
#	                   "skipped")
#	MEMATTACK_MAX_RSS_MB  kill the server when its RSS passes this
#	                   (default: 85 % of MemTotal); the row then says so
#	MEMATTACK_TIMEOUT  seconds a case may take (default 900)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly START_TIMEOUT=60
# shellcheck source=scripts/lib.sh
. "$repo_root/scripts/lib.sh"

tmp="$(mktemp -d)"
server_pid=""
trap demo_cleanup EXIT

bin="${1:-${CISTERN:-}}"
if [ -z "$bin" ]; then
	log "go build -o $tmp/cistern ./cmd/cistern"
	build_cistern "$tmp/cistern"
	bin="$tmp/cistern"
fi
if [ ! -x "$bin" ]; then
	log "$bin is not an executable"
	exit 2
fi
command -v python3 >/dev/null || { log "python3 is needed"; exit 2; }

all_cases="env10 env10x3 bs10 bs10x3 env60 env60x3 bs60 bs60x3 body60x10 plain60x10"
cases="${MEMATTACK_CASES:-$all_cases}"
skip=" ${MEMATTACK_SKIP:-} "
mem_total_mb=$(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo)
max_rss_mb="${MEMATTACK_MAX_RSS_MB:-$((mem_total_mb * 85 / 100))}"
case_timeout="${MEMATTACK_TIMEOUT:-900}"

cat >"$tmp/client.py" <<'PY'
import os, socket, sys, threading, time

def make(path, n, compact):
    # compact: "a@b," (4 bytes an address); else "u<i>@x.yz, " folded.
    with open(path, "wb") as f:
        f.write(b"From: attacker@example.org\r\nSubject: many addresses\r\n"
                b"Message-ID: <memattack@example.org>\r\nTo: ")
        step = 100
        for i in range(0, n, step):
            k = min(step, n - i)
            if compact:
                chunk = b"a@b," * k
            else:
                chunk = b"".join(b"u%d@x.yz," % j for j in range(i, i + k))
            if i + k >= n:
                chunk = chunk[:-1]
            f.write(chunk + b"\r\n ")
        f.write(b"\r\n\r\nbody\r\n")

def plain(path, size):
    with open(path, "wb") as f:
        f.write(b"From: sender@example.org\r\nTo: demo@example.org\r\nSubject: big\r\n"
                b"Message-ID: <memattack-plain@example.org>\r\n\r\n")
        line = b"x" * 78 + b"\r\n"
        f.write(line * (size // len(line)))

def session(addr, user, pw, item, out, idx):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    f = s.makefile("rb", buffering=1 << 16)
    f.readline()
    def cmd(tag, line):
        s.sendall(tag + b" " + line + b"\r\n")
        total, tail = 0, b""
        while True:
            b = f.readline()
            if not b:
                raise RuntimeError("connection closed during %r" % line)
            total += len(b)
            if b.startswith(tag + b" "):
                return total, b.strip()
            if b.rstrip(b"\r\n").endswith(b"}"):
                n = int(b[b.rindex(b"{") + 1:b.rstrip(b"\r\n").rindex(b"}")].rstrip(b"+"))
                while n > 0:
                    c = f.read(min(n, 1 << 20))
                    if not c:
                        raise RuntimeError("closed in a literal")
                    n -= len(c)
                    total += len(c)
    cmd(b"a1", b"LOGIN " + user.encode() + b" " + pw.encode())
    cmd(b"a2", b"SELECT INBOX")
    t0 = time.time()
    size, status = cmd(b"a3", b"FETCH 1:* (" + item.encode() + b")")
    out[idx] = (size, time.time() - t0, status.decode(errors="replace"))
    s.close()

def run(addr, user, pw, item, n):
    out = [None] * n
    ts = [threading.Thread(target=session, args=(addr, user, pw, item, out, i)) for i in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    if any(o is None for o in out):
        print("FAILED")
        return
    size = max(o[0] for o in out)
    secs = max(o[1] for o in out)
    ok = all(o[2].startswith("a3 OK") for o in out)
    print("%d %.1f %s" % (size, secs, "ok" if ok else out[0][2][:60].replace(" ", "_")))

if sys.argv[1] == "make":
    make(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "compact")
elif sys.argv[1] == "plain":
    plain(sys.argv[2], int(sys.argv[3]))
else:
    run(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
PY

log "generating the messages"
python3 "$tmp/client.py" make "$tmp/msg10" 1000000 spaced
python3 "$tmp/client.py" make "$tmp/msg60" 15000000 compact
python3 "$tmp/client.py" plain "$tmp/plain60" 60000000
log "$(stat -c '%s' "$tmp/msg10") and $(stat -c '%s' "$tmp/msg60") bytes"

# The demo server comes from scripts/lib/demo.sh: start_server runs
# $cistern_bin, a fresh demo each case (its data removed before), and
# end_server stops one the watchdog may have killed.
cistern_bin="$bin"

# deliver puts message file $1 into the demo INBOX as a foreign program.
deliver() {
	local md="$tmp/data/mail/demo/Maildir"
	local name
	name="$(date +%s).M1P$$Q1.memattack"
	cp "$1" "$md/tmp/$name"
	mv "$md/tmp/$name" "$md/new/$name"
}

printf '%-10s %10s %14s %9s  %s\n' case peak_MB response_B seconds status
printf '%-10s %10s %14s %9s  %s\n' "----" "-------" "----------" "-------" "------"
for c in $cases; do
	if [[ "$skip" == *" $c "* ]]; then
		printf '%-10s %10s %14s %9s  %s\n' "$c" - - - skipped
		continue
	fi
	case "$c" in
	env10) msg=msg10 item=ENVELOPE n=1 ;; env10x3) msg=msg10 item=ENVELOPE n=3 ;;
	bs10) msg=msg10 item=BODYSTRUCTURE n=1 ;; bs10x3) msg=msg10 item=BODYSTRUCTURE n=3 ;;
	env60) msg=msg60 item=ENVELOPE n=1 ;; env60x3) msg=msg60 item=ENVELOPE n=3 ;;
	bs60) msg=msg60 item=BODYSTRUCTURE n=1 ;; bs60x3) msg=msg60 item=BODYSTRUCTURE n=3 ;;
	body60x10) msg=msg60 item=BODY.PEEK[] n=10 ;;
	plain60x10) msg=plain60 item=BODY.PEEK[] n=10 ;;
	*) log "unknown case $c"; exit 2 ;;
	esac
	rm -rf "$tmp/data"
	start_server
	demo_login
	deliver "$tmp/$msg"
	# A watchdog that kills a server about to take the machine.
	(
		while kill -0 "$server_pid" 2>/dev/null; do
			rss=$(awk '/^VmRSS:/ {print int($2/1024)}' "/proc/$server_pid/status" 2>/dev/null || echo 0)
			if [ "${rss:-0}" -gt "$max_rss_mb" ]; then
				echo "$rss" >"$tmp/killed"
				kill -KILL "$server_pid"
				exit 0
			fi
			sleep 0.2
		done
	) &
	watch_pid=$!
	rm -f "$tmp/killed"
	result="$(timeout "$case_timeout" python3 "$tmp/client.py" run "$addr" "$user" "$password" "$item" "$n" 2>"$tmp/client.err" || echo "FAILED")"
	peak=$(awk '/^VmHWM:/ {print int($2/1024)}' "/proc/$server_pid/status" 2>/dev/null || echo "?")
	status=""
	if [ -f "$tmp/killed" ]; then
		peak=">$(cat "$tmp/killed")"
		status="killed by the watchdog"
	fi
	kill "$watch_pid" 2>/dev/null || true
	wait "$watch_pid" 2>/dev/null || true
	end_server 30
	if [ "$result" = "FAILED" ] || [ -n "$status" ]; then
		printf '%-10s %10s %14s %9s  %s\n' "$c" "$peak" - - "${status:-client failed: $(tail -n 1 "$tmp/client.err")}"
		continue
	fi
	read -r size secs st <<<"$result"
	printf '%-10s %10s %14s %9s  %s\n' "$c" "$peak" "$size" "$secs" "$st"
done
