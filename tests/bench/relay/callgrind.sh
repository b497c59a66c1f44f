#!/usr/bin/env bash
# callgrind.sh - instructions per relayed round trip in iotd's process, a figure this shared
# machine's load does not move (timings do, by ±15%): iotd runs under valgrind --tool=callgrind
# (its MariaDB natively, as a child valgrind does not follow), the relay bench's devices and
# user drive it with K requests in flight for DURATION seconds, and the instructions of every
# iotd thread (io threads, main loop, db threads: the audit's formatting and its client side
# included) between the zeroing and the dump of callgrind's counters are divided by the
# round trips iotd relayed meanwhile (its stats' outcome counts), leaving out the load's one
# LOGIN (its argon2id password check); audit_per_rt is the part in relay_audit_record (io
# threads) and write_records (db threads), inclusive. Not part of the test suite.
#
#   tests/bench/relay/callgrind.sh BUILD [AUDIT]     (AUDIT: all (default), denied, none)
#   INFLIGHT=16 DURATION=20 DEVICES=4 KEEP=1 (keep the work dir and callgrind's output)
#   WEBSOCKET=1: the user is a browser's WebSocket session on [web] listen (relay_load
#   --websocket), the path iotd_ws of run.sh measures
#
# For where the instructions go: callgrind_annotate WORK/callgrind.out (with KEEP=1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
build=$(cd "${1:?usage: callgrind.sh BUILD [AUDIT]}" && pwd)
audit=${2:-all}
inflight=${INFLIGHT:-16}
duration=${DURATION:-20}
devices=${DEVICES:-4}
work=$(mktemp -d /tmp/iotd-callgrind.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "${KEEP:-}" ]; then echo "work dir kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }

mapfile -t iotp_sources < <(sed -n 's#.*\${CMAKE_CURRENT_LIST_DIR}/\(src/[a-z_0-9]*\.c\).*#'"$top"'/firmware/\1#p' \
    "$top/firmware/iotp.cmake")
cc -std=c11 -O2 -Wall -Wextra -Werror -I"$top/firmware/include" -o "$work/relay_load" \
    "$here/relay_load.c" "$here/bench_stats.c" "${iotp_sources[@]}"

cat >"$work/iotd.conf" <<CONF
[iotd]
state_dir = $work/state
log_level = warn
[devices]
listen = 127.0.0.1:0
# A LOGIN's password hash (argon2id) takes seconds under valgrind.
handshake_timeout_ms = 600000
[relay]
audit = $audit
$([ -z "${WEBSOCKET:-}" ] || printf '[web]\nlisten = 127.0.0.1:0\n')
[database]
url = local
CONF
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" --trace-children=no \
    "$build/iotd/core/iotd" -f -c "$work/iotd.conf" >"$work/iotd.log" 2>&1 &
pids+=("$!")
vg=$!
ctl() { "$build/iotctl/iotctl" -s "$work/state/control.sock" --timeout-ms 60000 "$@"; }
for _ in $(seq 1 1200); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
ctl status >/dev/null || { echo "iotd did not start under valgrind: $(tail -3 "$work/iotd.log")" >&2; exit 1; }
{
    ctl tenant add bench
    ctl type add thermo --tenant bench
    ctl message add thermo echo --tenant bench --args "text:str"
    printf 'password123\n' >"$work/pw"
    ctl user add alice@bench --role operator --password-file "$work/pw"
    ctl access grant user:alice type:thermo --tenant bench
    for i in $(seq 1 "$devices"); do
        ctl --json device add "dev$i" --tenant bench --type thermo >>"$work/devices.jsonl"
    done
} >"$work/setup.log" 2>&1
port=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["devices"]["port"])')
"$build/firmware/sim/iotsim" -c "127.0.0.1:$port" -f "$work/devices.jsonl" --duration 3600 \
    --stats-interval 0 >"$work/iotsim.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 600); do
    [ "$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["devices"]["online"])')" -ge "$devices" ] && break
    sleep 0.1
done
relayed() { # round trips relayed so far (every outcome)
    ctl --json stats --count 1 | python3 -c 'import json,sys
j = json.loads(sys.stdin.readline())
print(sum(j["totals"]["outcomes"].values()))'
}
device_list=$(seq -s, -f 'dev%g' 1 "$devices")
load_via=(-c "127.0.0.1:$port")
if [ -n "${WEBSOCKET:-}" ]; then
    load_via=(--websocket -c "127.0.0.1:$(ctl --json status |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["web"]["port"])')")
fi
load() { # seconds
    "$work/relay_load" "${load_via[@]}" --from 'alice@bench' --password password123 \
        --devices "$device_list" --inflight "$inflight" --duration "$1" --warmup 0.5 \
        >>"$work/load.log" 2>&1 || { echo "relay_load failed: $(tail -2 "$work/load.log")" >&2; exit 1; }
}
load 2 # warm: the first LOGIN, caches, the audit's prepared statement
sleep 2
before=$(relayed)
callgrind_control -z "$vg" >/dev/null
load "$duration"
# The audit of the last requests is written by the next flush (100 ms, slower under valgrind).
sleep 3
callgrind_control -d "$vg" >/dev/null
after=$(relayed)
sleep 1
out=$(ls -t "$work"/callgrind.out* | head -1)
ir=$(sed -n 's/^summary: \([0-9]*\).*/\1/p;s/^totals: \([0-9]*\).*/\1/p' "$out" | head -1)
rt=$((after - before))
# The load's LOGIN verifies a password (argon2id: hundreds of millions of instructions, once per
# connection, not per round trip): left out, and so is what functions made only for it cost.
login=$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null |
    awk '/:login_verify / && !done { gsub(",", "", $1); print $1; done = 1 }')
login=${login:-0}
audit_ir=$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null |
    awk '/:(relay_audit_record|write_records) / { gsub(",", "", $1); s += $1 } END { print s + 0 }')
per_rt() { echo $(($1 / (rt > 0 ? rt : 1))); }
echo "audit=$audit websocket=${WEBSOCKET:-0} inflight=$inflight round_trips=$rt instructions=$ir login=$login" \
    "instructions_per_rt=$(per_rt $((ir - login))) audit_per_rt=$(per_rt "$audit_ir")"
