#!/usr/bin/env bash
# import_devices.sh - how long `iotctl device import` takes to register a fleet (issue 19;
# the fleet-scale target of issue 21 is 100,000 devices in at most 30 s). Not part of the test
# suite: run it by hand on an idle machine.
#
#   tests/bench/import_devices.sh [BUILD_DIR] [SIZES]    (defaults: build-release, "10000 100000")
#
# It builds BUILD_DIR as Release if needed, starts iotd on a temporary state dir with its own
# MariaDB, and per size imports a CSV of that many new devices (type and one group, the
# secrets to a file) into a tenant of its own, then imports the same file again (every row
# skipped). One line per size: the wall time of both runs, devices per second, iotd's RSS
# after, and the secrets written (checked against the size). Bounded: at most 10 sizes,
# each import given 30 min.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-release}
sizes=${2:-10000 100000}
[ "$(wc -w <<<"$sizes")" -le 10 ] || { echo "at most 10 sizes" >&2; exit 2; }
[ -x "$build/iotd/core/iotd" ] || {
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DIOTD_TESTS=OFF >/dev/null
    cmake --build "$build" -j2 >/dev/null
}
dir=$(mktemp -d /tmp/iotd-bench.XXXXXX)
iotd_pid=
cleanup() {
    if [ -n "$iotd_pid" ]; then
        kill "$iotd_pid" 2>/dev/null || true
        wait "$iotd_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/iotd.conf" <<CONF
[iotd]
state_dir = $dir/state
log_level = warn
CONF
"$build/iotd/core/iotd" -f -c "$dir/iotd.conf" 2>"$dir/iotd.log" &
iotd_pid=$!
ctl() { timeout 1800 "$build/iotctl/iotctl" -s "$dir/state/control.sock" --timeout-ms 600000 "$@"; }
for _ in $(seq 1 600); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
ctl status >/dev/null || { echo "iotd did not start" >&2; cat "$dir/iotd.log" >&2; exit 1; }

for n in $sizes; do
    tenant=bench$n
    ctl tenant add "$tenant" >/dev/null
    ctl type add sensor --tenant "$tenant" >/dev/null
    ctl group add fleet --tenant "$tenant" --kind device >/dev/null
    awk -v n="$n" -v t="$tenant" 'BEGIN {
        print "id,type,name,groups"
        for (i = 1; i <= n; i++) printf "%s-%07d,sensor,Sensor %d,fleet\n", t, i, i }' >"$dir/fleet.csv"
    rm -f "$dir/secrets.jsonl"
    start=$(date +%s.%N)
    ctl device import "$dir/fleet.csv" --tenant "$tenant" --secrets-out "$dir/secrets.jsonl" >"$dir/out"
    mid=$(date +%s.%N)
    ctl device import "$dir/fleet.csv" --tenant "$tenant" --secrets-out "$dir/again.jsonl" >"$dir/again"
    end=$(date +%s.%N)
    rm -f "$dir/again.jsonl"
    secrets=$(wc -l <"$dir/secrets.jsonl")
    [ "$secrets" -eq "$n" ] || { echo "$secrets secrets for $n devices: $(cat "$dir/out")" >&2; exit 1; }
    grep -q "0 added, $n skipped" "$dir/again" || { echo "re-run: $(cat "$dir/again")" >&2; exit 1; }
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$iotd_pid/status")
    awk -v n="$n" -v s="$start" -v m="$mid" -v e="$end" -v rss="$rss" 'BEGIN {
        printf "devices=%d import_s=%.1f devices_per_s=%.0f rerun_s=%.1f iotd_rss_kb=%d\n",
            n, m - s, n / (m - s), e - m, rss }'
done
