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
#   SETTLE_S=1 ...     seconds between "all authenticated" and reading the RSS (default 1); then
#                      the RSS is read once a second until it has not gone down for 5 readings
#                      (at most STEADY_S=60 s): the connection log's batch buffers hold a
#                      storm's records (~5 MB at 10,000) until the database has them and a
#                      flush with nothing to write gives the pages back, which on a loaded
#                      machine takes up to 20 s. Each line says how long that took
#   PING_S=300 ...     iotd's [devices] ping_s: the devices' keepalive period. Long by default,
#                      so that the idle fleet is measured idle (with the default 30 s, a wave of
#                      PING/PONG crosses the reading and leaves ~150 bytes per device of freed
#                      buffers in the io thread's heap)
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
#   STORM=1 ...        then a reconnect storm: iotd is stopped (SIGTERM) and started again on the
#                      same state with the whole fleet still trying; prints the time until every
#                      device is back, the auth failures iotsim saw (must be 0) and iotd's peak
#                      RSS during the storm (VmHWM of the new process). Not with IOTD_WRAPPER
#   SIM_BUILD=DIR ...  take iotsim from DIR's build (default BUILD_DIR): to measure an older iotd
#                      with this tree's iotsim
#   PER_SIM=15000 ...  devices per iotsim process. A fleet larger than that runs in several
#                      processes, each from its own loopback source address (127.0.0.2, .3, ...):
#                      one source has one ephemeral port range (~28,000 ports), and each process
#                      one descriptor limit
#
# 100,000 devices: iotd needs N + ~100 descriptors, iotsim PER_SIM + ~100 each. The script raises
# the soft limit to the hard one and the hard one where it may (root with CAP_SYS_RESOURCE:
# `ulimit -Hn`; elsewhere /etc/security/limits.conf or the container's --ulimit nofile=...), and
# stops with a message when the hard limit is too low for N. The kernel's fs.nr_open and
# fs.file-max must allow it too (defaults: 1,048,576 and more).
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
    [ -n "${KEEP_DIR:-}" ] && echo "kept $dir" >&2 && return
    rm -rf "$dir"
}
trap cleanup EXIT
# iotd and iotsim each hold one socket per device: 20,000 devices and more need more than a
# usual hard limit (root may raise it; the systemd unit's LimitNOFILE is what iotd gets there).
need_fds=$((n + 256))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$need_fds" ]; then
    ulimit -Hn "$need_fds" 2>/dev/null || true
fi
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
    echo "fleet_connect.sh: iotd needs $need_fds descriptors for $n devices and the hard limit" \
        "is $(ulimit -Hn) (raise it as root: ulimit -Hn, limits.conf, or the container's" \
        "--ulimit nofile)" >&2
    exit 1
fi
per_sim=${PER_SIM:-15000}
# The simulator is the load, not what is measured: SIM_BUILD runs this tree's iotsim (which
# has --source) against an older iotd in BUILD_DIR.
sim_bin=${SIM_BUILD:-$build}/firmware/sim/iotsim
[ "$per_sim" -gt "$(($(ulimit -n) - 256))" ] && per_sim=$(($(ulimit -n) - 256))
# Fixed ports, so that a restarted iotd (STORM=1) is where the fleet reconnects.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
tls_port=$(free_port)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
cat >"$dir/iotd.conf" <<CONF
[iotd]
state_dir = $dir/state
log_level = warn
[devices]
listen = 127.0.0.1:$port
placement = ${IOTD_PLACEMENT:-tenant}
ping_s = ${PING_S:-300}
tls_listen = 127.0.0.1:$tls_port
tls_cert = $dir/cert.pem
tls_key = $dir/key.pem
CONF
# shellcheck disable=SC2086 # the wrapper is a command line, split on purpose
${IOTD_WRAPPER:-} "$build/iotd/core/iotd" -f -c "$dir/iotd.conf" 2>>"$dir/iotd.log" &
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
wait_control() { for _ in $(seq 1 600); do ctl status >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
wait_control
online() { ctl --json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["devices"]["online"])' 2>/dev/null || echo 0; }

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
# The connection log's records not yet in the database (iotctl stats, queue "conn_log").
conn_log_depth() {
    ctl --json stats --count 1 2>/dev/null | python3 -c 'import json,sys
def find(o):
    if isinstance(o, dict):
        if o.get("name") == "conn_log" and "depth" in o: return o["depth"]
        o = list(o.values())
    if isinstance(o, list):
        for v in o:
            d = find(v)
            if d is not None: return d
    return None
print(find(json.loads(sys.stdin.readline())) or 0)' 2>/dev/null || echo 0
}
# Sets steady_kb and steady_s: the RSS once the connection log is written and the RSS stopped
# going down (see SETTLE_S).
steady_rss() {
    local last flat=0 now
    for _ in $(seq 1 "${STEADY_S:-60}"); do
        [ "$(conn_log_depth)" -eq 0 ] && break
        sleep 1
    done
    sleep "${SETTLE_S:-1}"
    last=$(rss_kb)
    steady_s=${SETTLE_S:-1}
    while [ "$flat" -lt 5 ] && [ "$steady_s" -lt "${STEADY_S:-60}" ]; do
        sleep 1
        steady_s=$((steady_s + 1))
        now=$(rss_kb)
        if [ "$now" -lt "$last" ]; then flat=0; else flat=$((flat + 1)); fi
        [ "$now" -lt "$last" ] && last=$now
    done
    steady_kb=$last
}
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$iotd_pid/status"; }
# The fleet in slices of per_sim devices, one iotsim each (see PER_SIM).
split -l "$per_sim" -d -a 3 "$dir/devices.jsonl" "$dir/slice."
slices=("$dir"/slice.*)
# The sum of a field over the last stats line of each iotsim (their --json output).
sims_sum() { # field transport
    python3 -c 'import json,sys
total = 0
for path in sys.argv[2:]:
    last = None
    for line in open(path):
        if line.startswith("{"): last = json.loads(line)
    total += (last or {}).get(sys.argv[1], 0)
print(total)' "$1" "$dir"/sim-"$2".*.json
}
sims_max() { # field transport: the largest over the processes (-1 if one has none)
    python3 -c 'import json,sys
worst = 0
for path in sys.argv[2:]:
    v = -1
    for line in open(path):
        if line.startswith("{"): v = json.loads(line).get(sys.argv[1], v)
    worst = -1 if v < 0 or worst < 0 else max(worst, v)
print(worst)' "$1" "$dir"/sim-"$2".*.json
}
# SIGTERM, wait, start again on the same state; the devices reconnect by themselves.
storm() { # transport baseline_kib (iotd's RSS before the fleet connected)
    local name=$1 base=$2 t0 back_ms after peak
    t0=$(date +%s%N)
    kill -TERM "$iotd_pid"
    wait "$iotd_pid" 2>/dev/null || true
    while kill -0 "$iotd_pid" 2>/dev/null; do sleep 0.05; done
    "$build/iotd/core/iotd" -f -c "$dir/iotd.conf" 2>>"$dir/iotd.log" &
    iotd_pid=$!
    wait_control || { echo "$name storm: iotd did not come back" >&2; return 1; }
    local got=0
    for _ in $(seq 1 $((${SIM_S:-300} * 10))); do
        got=$(online)
        [ "$got" -ge "$n" ] && break
        sleep 0.1
    done
    back_ms=$((($(date +%s%N) - t0) / 1000000))
    steady_rss
    after=$steady_kb
    peak=$(hwm_kb)
    # shellcheck disable=SC2034 # run() prints it
    printf -v storm_line '%-4s storm: iotd restarted, %d of %d devices back in %d ms; iotd peak RSS %d KiB (%.0f bytes per device over the RSS before the fleet), %d KiB once settled (%.0f)' \
        "$name" "$got" "$n" "$back_ms" "$peak" "$(python3 -c "print(($peak - $base) * 1024 / $n)")" \
        "$after" "$(python3 -c "print(($after - $base) * 1024 / $n)")"
}
# Per-arena heap use (the main arena is the main thread's, one more per io thread): which
# thread's allocations the growth is made of. malloc_stats writes to iotd's stderr; the last
# "Total" is the heap and malloc's own mmaps together.
malloc_stats() { # label
    local mark
    mark=$(wc -l <"$dir/iotd.log")
    gdb -p "$iotd_pid" -batch -ex 'call (void) malloc_stats()' >/dev/null 2>&1 || true
    sleep 0.2
    echo "malloc_stats $1:"
    tail -n +"$((mark + 1))" "$dir/iotd.log" | grep -E '^(Arena|system bytes|in use bytes|Total)' || true
}
run() { # transport port [iotsim options...]
    local name=$1 p=$2
    shift 2
    local before after
    before=$(rss_kb)
    [ -n "${MALLOC_STATS:-}" ] && malloc_stats before
    [ -n "${SMAPS_OUT:-}" ] && mkdir -p "$SMAPS_OUT" && cp "/proc/$iotd_pid/smaps" "$SMAPS_OUT/$name-before"
    # iotsim keeps its devices connected until SIGINT; its final stats line says when all of
    # them were authenticated at once. iotd's RSS is read while they are all connected.
    local sims=() k=0 source=()
    for slice in "${slices[@]}"; do
        [ "${#slices[@]}" -gt 1 ] && source=(--source "127.0.0.$((k + 2))")
        "$sim_bin" -c "127.0.0.1:$p" "${source[@]}" -f "$slice" \
            --rate-connect "${RATE:-1000000}" --duration "${SIM_S:-300}" \
            --stats-interval 0 --json "$@" >"$dir/sim-$name.$k.json" &
        sims+=($!)
        k=$((k + 1))
    done
    local online=0
    for _ in $(seq 1 3000); do
        online=$(online)
        [ "$online" -ge "$n" ] && break
        sleep 0.1
    done
    # Idle devices: let the storm settle (keepalives not yet due; iotd gives the heap its
    # handshakes left behind back within a tick) before reading the RSS.
    steady_rss
    after=$steady_kb
    local settled_s=$steady_s
    [ -n "${SMAPS_OUT:-}" ] && cp "/proc/$iotd_pid/smaps" "$SMAPS_OUT/$name-after"
    [ -n "${MALLOC_STATS:-}" ] && malloc_stats after
    if [ -n "${KILL_CONNECTED:-}" ]; then
        echo "$name: iotd RSS $before -> $after KiB with $n devices connected; killing iotd"
        kill -KILL "$iotd_pid"
        kill -INT "${sims[@]}"
        wait "${sims[@]}" || true
        exit 0
    fi
    if [ -n "${TRIM_PROBE:-}" ]; then
        gdb -p "$iotd_pid" -batch -ex 'call (int) malloc_trim(0)' >/dev/null 2>&1 || true
        echo "$name after malloc_trim(0): iotd RSS $(rss_kb) KiB"
    fi
    local storm_line=
    if [ -n "${STORM:-}" ] && [ -z "${IOTD_WRAPPER:-}" ]; then
        storm "$name" "$before" # not in a subshell: it replaces iotd_pid
    fi
    kill -INT "${sims[@]}"
    wait "${sims[@]}" || true
    # iotsim's counters are cumulative: its last line has every auth failure of the run.
    [ -n "$storm_line" ] && echo "$storm_line; iotsim auth failures over the run: $(sims_sum auth_failures "$name")"
    local ms
    ms=$(sims_max all_authenticated_ms "$name")
    printf '%-4s %6d devices authenticated in %6s ms (%s/s); iotd RSS %d -> %d KiB (steady after %d s): %.0f bytes per device\n' \
        "$name" "$n" "$ms" "$(python3 -c "print(round($n*1000/max(1,$ms or 1)))")" "$before" "$after" "$settled_s" \
        "$(python3 -c "print(($after - $before) * 1024 / $n)")"
    # Let iotd notice the disconnects before the next run.
    for _ in $(seq 1 300); do
        online=$(online)
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
