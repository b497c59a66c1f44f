#!/usr/bin/env bash
# run.sh - the durable events benchmark: sustained events/s made durable by iotd, end to end
# through device sessions and alone (the store in process), with group commit and one event
# per transaction (batch_max=1), against Mosquitto's QoS 1 publish rate on loopback.
#
#   tests/bench/events/run.sh [BUILD_DIR]          (default BUILD_DIR: build-release)
#
# Not part of the test suite: run it by hand on an idle machine. BUILD_DIR must hold a Release
# build of iotd, iotctl and the iotd_events library (cmake --build BUILD_DIR).
#
#   iotd       event_load.c: DEVICES devices, each on its own TCP connection, authenticate with
#              the firmware library's handshake and keep WINDOW EVENTs un-acknowledged each;
#              iotd (BUILD_DIR, its local MariaDB: innodb_flush_log_at_trx_commit=1) answers ACK
#              only once the event is committed (group commit). Run with [events] batch_max =
#              BATCH_MAX and then batch_max = 1 (one event per transaction), on the same state.
#   store      event_bench.c: event_store in process against a private mariadbd (the one
#              iotd's "url = local" runs, default settings). DEVICES simulated devices keep
#              WINDOW events un-acknowledged each; an ACK (the store's done()) releases the
#              next. Run with batch_max=BATCH_MAX (group commit) and batch_max=1.
#   mosquitto  mqtt_pub.c: DEVICES clients keep WINDOW QoS 1 PUBLISHes un-acked each against
#              `mosquitto -p PORT` (default config: no persistence). Its PUBACK is NOT tied to a
#              disk write: the figure is an acknowledged, not a durable, publish.
#
# The summary at the end puts the figures side by side, with the ratios.
# Knobs (environment): SECONDS_RUN=10 DEVICES=100 WINDOW=16 BATCH_MAX=1000 KEEP=1
# SYSTEMS="iotd store mosquitto".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
build=$(cd "${1:-$top/build-release}" && pwd)
SECONDS_RUN=${SECONDS_RUN:-10}
DEVICES=${DEVICES:-100}
WINDOW=${WINDOW:-16}
BATCH_MAX=${BATCH_MAX:-1000}
SYSTEMS=${SYSTEMS:-"iotd store mosquitto"}
work=$(mktemp -d /tmp/iotd-events-bench.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "${KEEP:-}" ]; then echo "work dir kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
log() { echo "== $*" >&2; }
want() { case " $SYSTEMS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
mkdir -p "$work/bin"
results=$work/results.txt
: >"$results"
ulimit -n "$(ulimit -Hn)"

# ---- iotd end to end: event_load over TCP, ACK after the commit ----
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
iotd_pid=
# iotd_start BATCH_MAX: (re)start iotd on $work/iotd-state with that batch_max.
iotd_start() {
    cat >"$work/iotd.conf" <<CONF
[iotd]
state_dir = $work/iotd-state
log_level = warn
[devices]
listen = 127.0.0.1:$iotd_port
[events]
batch_max = $1
[database]
url = local
CONF
    "$build/iotd/core/iotd" -f -c "$work/iotd.conf" >>"$work/iotd.log" 2>&1 &
    iotd_pid=$!
    pids+=("$iotd_pid")
    for _ in $(seq 1 600); do ictl status >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "iotd did not start (see $work/iotd.log)" >&2
    return 1
}
iotd_stop() {
    kill -TERM "$iotd_pid"
    wait "$iotd_pid" 2>/dev/null || true
}
ictl() { "$build/iotctl/iotctl" -s "$work/iotd-state/control.sock" "$@"; }
# iotd_run LABEL BATCH_MAX SEQ_START: one event_load run, its line and iotd's own counters.
iotd_run() {
    local before after
    before=$(ictl --json stats --count 1 | python3 -c 'import json,sys; e=json.load(sys.stdin)["totals"]["events"]; print(e["stored"], e["batches"])')
    log "iotd end to end batch_max=$2, $DEVICES devices x $WINDOW in flight, ${SECONDS_RUN}s"
    "$work/bin/event_load" -c "127.0.0.1:$iotd_port" --devices "$work/devices.txt" \
        --window "$WINDOW" --duration "$SECONDS_RUN" --seq-start "$3" --label "$1" \
        >"$work/$1.txt" 2>"$work/$1.log" || { echo "event_load failed: $(tail -3 "$work/$1.log")" >&2; return 1; }
    after=$(ictl --json stats --count 1 | python3 -c 'import json,sys; e=json.load(sys.stdin)["totals"]["events"]; print(e["stored"], e["batches"])')
    # shellcheck disable=SC2086 # two numbers each
    set -- "$1" "$2" $before $after
    echo "$(head -1 "$work/$1.txt") $(tail -1 "$work/$1.txt") batch_max=$2 mean_batch=$(python3 -c "print(round(($5-$3)/max(1,$6-$4),1))")" |
        tee -a "$results"
}
if want iotd; then
    if [ ! -x "$build/iotd/core/iotd" ] || [ ! -x "$build/iotctl/iotctl" ]; then
        echo "missing $build/iotd/core/iotd or iotctl: build them (Release)" >&2
        exit 1
    fi
    # shellcheck disable=SC2016 # ${CMAKE_CURRENT_LIST_DIR} is cmake's, matched literally
    mapfile -t iotp_sources < <(sed -n 's#.*\${CMAKE_CURRENT_LIST_DIR}/\(src/[a-z_0-9]*\.c\).*#'"$top"'/firmware/\1#p' \
        "$top/firmware/iotp.cmake")
    cc -std=c11 -O2 -Wall -Wextra -Werror -I"$top/firmware/include" -I"$top/tests/bench/relay" \
        -o "$work/bin/event_load" "$here/event_load.c" "$top/tests/bench/relay/bench_stats.c" \
        "${iotp_sources[@]}"
    iotd_port=$(free_port)
    iotd_start "$BATCH_MAX"
    {
        ictl tenant add bench
        ictl type add thermo --tenant bench
        ictl message add thermo temperature --tenant bench --direction event --args "value:float unit:str?"
    } >"$work/iotd-setup.log" 2>&1
    for i in $(seq 1 "$DEVICES"); do
        ictl --json device add "ev$i" --tenant bench --type thermo
    done | python3 -c '
import json, sys
dec, text, at = json.JSONDecoder(), sys.stdin.read(), 0
while True:
    while at < len(text) and text[at].isspace():
        at += 1
    if at == len(text):
        break
    d, at = dec.raw_decode(text, at)
    print(d["id"], d["secret"])' >"$work/devices.txt"
    iotd_run iotd_batch "$BATCH_MAX" 1
    iotd_stop
    iotd_start 1
    iotd_run iotd_batch1 1 1000000000 # above the first run's numbers: new events, not duplicates
    iotd_stop
fi

libs=("$build/iotd/events/libiotd_events.a" "$build/iotd/db/libiotd_db.a"
    "$build/iotd/loop/libiotd_loop.a" "$build/iotd/core/libiotd_core_util.a"
    "$build/common/libiot_common.a")
want store && for l in "${libs[@]}"; do [ -f "$l" ] || { echo "missing $l: build target iotd_events" >&2; exit 1; }; done
# shellcheck disable=SC2046 # pkg-config output is a list of flags
want store && cc -std=gnu11 -O2 -Wall -Wextra -Werror -I"$top/iotd" -I"$top/common" \
    $(pkg-config --cflags libuv libmariadb libcjson) -o "$work/bin/event_bench" \
    "$here/event_bench.c" "${libs[@]}" \
    $(pkg-config --libs libuv libmariadb libcjson inih) -lpthread
want store && for b in "$BATCH_MAX" 1; do
    log "event_store batch_max=$b, $DEVICES devices x $WINDOW in flight, ${SECONDS_RUN}s"
    mkdir -p "$work/state-$b"
    "$work/bin/event_bench" --dir "$work/state-$b" --devices "$DEVICES" --window "$WINDOW" \
        --batch-max "$b" --seconds "$SECONDS_RUN" | tee -a "$results"
done

if ! want mosquitto; then
    :
elif [ -f /usr/include/mosquitto.h ] && [ -x /usr/sbin/mosquitto ]; then
    cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$work/bin/mqtt_pub" "$here/mqtt_pub.c" -lmosquitto
    port=$((20000 + RANDOM % 20000))
    printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 0\nmax_queued_messages 0\n' \
        "$port" >"$work/mosquitto.conf"
    /usr/sbin/mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
    pids+=($!)
    sleep 0.5
    log "mosquitto QoS 1, $DEVICES clients x $WINDOW in flight, ${SECONDS_RUN}s"
    "$work/bin/mqtt_pub" -c "127.0.0.1:$port" --clients "$DEVICES" --window "$WINDOW" \
        --seconds "$SECONDS_RUN" | tee -a "$results"
else
    log "mosquitto not installed: skipped (apt-get install mosquitto libmosquitto-dev)"
fi
echo
echo "machine: $(nproc) cores, $(uname -r); disk of the state dir: $(df -h "$work" | awk 'NR==2{print $1}')"
cat "$results"
# ---- summary: the figures side by side, and their ratios ----
python3 - "$results" <<'PY'
import re, sys
r = {}
for line in open(sys.argv[1]):
    m = re.search(r"system=(\S+) .*rt_s=(\d+) p50_us=([\d.]+) p99_us=([\d.]+).*mean_batch=([\d.]+)", line)
    if m:
        r[m[1]] = (float(m[2]), float(m[3]), float(m[4]), float(m[5]))
        continue
    m = re.search(r"event_store batch_max=(\d+) .*: (\d+) events/s durable.*mean batch ([\d.]+)", line)
    if m:
        r["store1" if m[1] == "1" else "store"] = (float(m[2]), None, None, float(m[3]))
        continue
    m = re.search(r"mosquitto QoS 1 .*: (\d+) PUBACKs/s", line)
    if m:
        r["mosquitto"] = (float(m[1]), None, None, None)
rows = [("iotd_batch", "iotd end to end, group commit (ACK after COMMIT)"),
        ("iotd_batch1", "iotd end to end, batch_max=1 (one COMMIT per event)"),
        ("store", "event store alone, group commit"),
        ("store1", "event store alone, batch_max=1"),
        ("mosquitto", "Mosquitto QoS 1 (PUBACK NOT tied to a disk write)")]
print()
print(f"{'':54} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'batch':>7}")
for k, title in rows:
    if k in r:
        v, p50, p99, b = r[k]
        f = lambda x, d=1: "-" if x is None else f"{x / 1000:.{d}f}"
        print(f"{title:54} {v:10.0f} {f(p50, 2):>8} {f(p99, 2):>8} {'-' if b is None else f'{b:.1f}':>7}")
def ratio(a, b, what):
    if a in r and b in r and r[b][0] > 0:
        print(f"  {what}: {r[a][0] / r[b][0]:.2f}x")
print("ratios:")
ratio("iotd_batch", "iotd_batch1", "iotd group commit / iotd batch_max=1")
ratio("iotd_batch", "store", "iotd end to end / store alone (group commit)")
ratio("iotd_batch1", "store1", "iotd end to end / store alone (batch_max=1)")
ratio("store", "store1", "store group commit / store batch_max=1")
ratio("mosquitto", "iotd_batch", "Mosquitto QoS 1 / iotd group commit (Mosquitto's PUBACK is not durable)")
PY
