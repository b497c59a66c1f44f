#!/usr/bin/env bash
# fleet_connect.sh - how long N simulated devices (iotsim, built on the firmware library) take
# to connect and authenticate to iotd, over TCP and over TLS, and iotd's resident memory per
# connected device. Not part of the test suite: run it by hand on an idle machine.
#
#   tests/bench/fleet_connect.sh [BUILD_DIR] [N]        (defaults: build-release, 10000)
#   TRANSPORTS="tcp" tests/bench/fleet_connect.sh ...    (only some transports; default "tcp tls")
#   TRIM_PROBE=1 ...   also print the RSS after malloc_trim(0) called through gdb: how much of the
#                      growth is free heap memory left resident (fragmentation), not live objects
#   MALLOC_STATS=1 ... also print glibc's malloc_stats() per arena (system vs in-use bytes)
#   SETTLE_S=1 ...     seconds between "all authenticated" and reading the RSS (default 1)
#   RATE=N ...         connections iotsim opens per second (default: all at once). A TLS storm
#                      of 20,000 on a loaded 2-core machine never converges (handshakes time
#                      out and retry); RATE=1000 measures the idle memory all the same
#   SIM_S=300 ...      how long iotsim keeps its devices connected: all must be in by then
#   IOTD_PLACEMENT=spread ...  iotd's [devices] placement (default tenant: the fleet, one
#                      tenant, is on one io thread)
#   IOTD_WRAPPER="heaptrack -o /tmp/ht" ...   run iotd under a wrapper (a profiler); the RSS is
#                      still read from iotd's own process (with the profiler's overhead in it)
#   SMAPS_OUT=DIR ...  also copy iotd's /proc/PID/smaps to DIR/<transport>-before and -after:
#                      which mappings (main heap, io threads' arenas, pools) the growth is in
#   KILL_CONNECTED=1 ... SIGKILL iotd while the first transport's devices are all connected and
#                      stop there: iotd frees nothing, so heaptrack's "leaked" is exactly what was
#                      live per call site at that moment (compare runs at N and 2N devices)
#
# It builds BUILD_DIR as Release if needed, starts iotd on a temporary state dir with its own
# MariaDB, registers N devices, then for each transport: connects them all with iotsim, reads iotd's
# RSS before and after, and prints one line per transport.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-release}
n=${2:-10000}
[ -x "$build/iotd/core/iotd" ] || {
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DIOTD_TESTS=OFF >/dev/null
    cmake --build "$build" -j"$(nproc)" >/dev/null
}
dir=$(mktemp -d /tmp/iotd-bench.XXXXXX)
iotd_pid=
wrapper_pid=
cleanup() {
    if [ -n "$iotd_pid" ]; then
        kill "$iotd_pid" 2>/dev/null || true
        # With a wrapper, iotd is its child: wait for the wrapper, which writes its report last.
        wait "${wrapper_pid:-$iotd_pid}" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
# iotd and iotsim each hold one socket per device: 20,000 devices and more need more than a
# usual hard limit (root may raise it; the systemd unit's LimitNOFILE is what iotd gets there).
ulimit -Hn $((n + 4096)) 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
cat >"$dir/iotd.conf" <<CONF
[iotd]
state_dir = $dir/state
log_level = warn
[devices]
listen = 127.0.0.1:0
placement = ${IOTD_PLACEMENT:-tenant}
tls_listen = 127.0.0.1:0
tls_cert = $dir/cert.pem
tls_key = $dir/key.pem
CONF
# shellcheck disable=SC2086 # the wrapper is a command line, split on purpose
${IOTD_WRAPPER:-} "$build/iotd/core/iotd" -f -c "$dir/iotd.conf" 2>"$dir/iotd.log" &
iotd_pid=$!
if [ -n "${IOTD_WRAPPER:-}" ]; then
    # The wrapper may be a script that starts iotd as its child: measure and signal iotd itself.
    for _ in $(seq 1 100); do
        child=$(pgrep -n -f "^$build/iotd/core/iotd -f -c $dir/iotd.conf" || true)
        [ -n "$child" ] && break
        sleep 0.1
    done
    wrapper_pid=$iotd_pid
    [ -n "$child" ] && iotd_pid=$child
fi
ctl() { "$build/iotctl/iotctl" -s "$dir/state/control.sock" "$@"; }
for _ in $(seq 1 300); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
port=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["devices"]["port"])')
tls_port=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["devices"]["tls_port"])')

ctl tenant add bench >/dev/null
ctl type add sensor --tenant bench >/dev/null
start=$(date +%s.%N)
# One import (batches, one registry change each) rather than N iotctl processes: minutes at 20k.
awk -v n="$n" 'BEGIN { print "id,type"; for (i = 1; i <= n; i++) printf "dev-%d,sensor\n", i }' \
    >"$dir/fleet.csv"
ctl --timeout-ms 600000 device import "$dir/fleet.csv" --tenant bench \
    --secrets-out "$dir/devices.jsonl" >/dev/null
reg_s=$(python3 -c "import sys; print(int(float(sys.argv[1]) - float(sys.argv[2])))" "$(date +%s.%N)" "$start")

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$iotd_pid/status"; }
run() { # transport port [iotsim options...]
    local name=$1 p=$2
    shift 2
    local before after
    before=$(rss_kb)
    [ -n "${SMAPS_OUT:-}" ] && mkdir -p "$SMAPS_OUT" && cp "/proc/$iotd_pid/smaps" "$SMAPS_OUT/$name-before"
    # iotsim keeps its devices connected until SIGINT; its final stats line says when all of
    # them were authenticated at once. iotd's RSS is read while they are all connected.
    "$build/firmware/sim/iotsim" -c "127.0.0.1:$p" -f "$dir/devices.jsonl" --rate-connect "${RATE:-1000000}" \
        --duration "${SIM_S:-300}" --stats-interval 0 --json "$@" >"$dir/sim-$name.json" &
    local sim=$!
    local online=0
    for _ in $(seq 1 3000); do
        online=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["devices"]["online"])')
        [ "$online" -ge "$n" ] && break
        sleep 0.1
    done
    # Idle devices: let the storm settle (keepalives not yet due; iotd gives the heap its
    # handshakes left behind back within a tick) before reading the RSS.
    sleep "${SETTLE_S:-1}"
    after=$(rss_kb)
    [ -n "${SMAPS_OUT:-}" ] && cp "/proc/$iotd_pid/smaps" "$SMAPS_OUT/$name-after"
    if [ -n "${MALLOC_STATS:-}" ]; then
        # Per-arena heap use (the main arena is the main thread's, one more per io thread):
        # which thread's allocations the growth is made of. malloc_stats writes to iotd's stderr.
        gdb -p "$iotd_pid" -batch -ex 'call (void) malloc_stats()' >/dev/null 2>&1 || true
        sleep 0.2
        grep -E '^(Arena|system bytes|in use bytes|Total)' "$dir/iotd.log" | tail -40 || true
    fi
    if [ -n "${KILL_CONNECTED:-}" ]; then
        echo "$name: iotd RSS $before -> $after KiB with $n devices connected; killing iotd"
        kill -KILL "$iotd_pid"
        kill -INT $sim
        wait $sim || true
        exit 0
    fi
    if [ -n "${TRIM_PROBE:-}" ]; then
        gdb -p "$iotd_pid" -batch -ex 'call (int) malloc_trim(0)' >/dev/null 2>&1 || true
        echo "$name after malloc_trim(0): iotd RSS $(rss_kb) KiB"
    fi
    kill -INT $sim
    wait $sim || true
    local ms
    ms=$(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    if "all_authenticated_ms" in j: print(j["all_authenticated_ms"])' "$dir/sim-$name.json" | tail -1)
    printf '%-4s %6d devices authenticated in %6s ms (%s/s); iotd RSS %d -> %d KiB: %.0f bytes per device\n' \
        "$name" "$n" "$ms" "$(python3 -c "print(round($n*1000/max(1,$ms or 1)))")" "$before" "$after" \
        "$(python3 -c "print(($after - $before) * 1024 / $n)")"
    # Let iotd notice the disconnects before the next run.
    for _ in $(seq 1 300); do
        online=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["devices"]["online"])')
        [ "$online" -eq 0 ] && break
        sleep 0.1
    done
}
echo "registered $n devices in ${reg_s} s (iotctl device import)"
for t in ${TRANSPORTS:-tcp tls}; do
    case $t in
    tcp) run tcp "$port" ;;
    tls) run tls "$tls_port" --tls --ca "$dir/cert.pem" ;;
    *) echo "unknown transport $t" >&2 ;;
    esac
done
