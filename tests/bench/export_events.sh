#!/usr/bin/env bash
# export_events.sh - memory and time of a whole-history CSV export, `iotctl events --csv --all`,
# as the history grows (issue 19: a million events export with flat memory). Not part of the
# test suite: run it by hand on an idle machine.
#
#   tests/bench/export_events.sh [BUILD_DIR] [SIZES]    (defaults: build-release,
#                                                        "10000 100000 1000000")
#
# It builds BUILD_DIR as Release if needed, starts iotd on a temporary state dir with its own
# MariaDB, and for each size grows tenant "bench"'s history to that many events (inserted with
# SQL in chunks of 100,000: the export is measured, not the store) and exports it all as CSV
# through the control socket. Per size it prints one line: the rows exported (checked against
# the size), the wall time, iotctl's peak RSS (getrusage of the child), and iotd's RSS before
# the export and its highest sample during it (/proc, every 50 ms). Flat memory means the two
# RSS figures do not grow with the size. Bounded: at most 10 sizes, each export given 30 min.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build-release}
sizes=${2:-10000 100000 1000000}
[ "$(wc -w <<<"$sizes")" -le 10 ] || { echo "at most 10 sizes" >&2; exit 2; }
[ -x "$build/iotd/core/iotd" ] || {
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DIOTD_TESTS=OFF >/dev/null
    cmake --build "$build" -j2 >/dev/null
}
dir=$(mktemp -d /tmp/iotd-bench.XXXXXX)
iotd_pid=
sampler=
cleanup() {
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
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
ctl() { "$build/iotctl/iotctl" -s "$dir/state/control.sock" "$@"; }
for _ in $(seq 1 600); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
ctl status >/dev/null || { echo "iotd did not start" >&2; cat "$dir/iotd.log" >&2; exit 1; }
sql() { mariadb --socket="$dir/state/mariadb/run/mysqld.sock" -N iotd -e "$1"; }
ctl tenant add bench >/dev/null

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

have=0
for n in $sizes; do
    # Grow the history to n events, spread over the last day across 1,000 devices.
    while [ "$have" -lt "$n" ]; do
        k=$((n - have < 100000 ? n - have : 100000))
        sql "INSERT INTO events (received_at, tenant, device_id, seq, kind, name, fields)
             SELECT UTC_TIMESTAMP(3) - INTERVAL ((($have + seq) * 7919) % 86400000) MICROSECOND
                    - INTERVAL ((($have + seq) * 7919) % 86400) SECOND,
                    'bench', CONCAT('dev-', ($have + seq) % 1000), $have + seq, 'event',
                    'temperature', JSON_OBJECT('value', CAST((seq % 400) / 10 AS CHAR), 'unit', 'C')
             FROM seq_1_to_$k"
        have=$((have + k))
    done
    before=$(rss_kb "$iotd_pid")
    # iotd's RSS every 50 ms while the export runs (at most 30 min of samples).
    (for _ in $(seq 1 36000); do rss_kb "$iotd_pid"; sleep 0.05; done) >"$dir/samples" &
    sampler=$!
    start=$(date +%s.%N)
    python3 - "$build/iotctl/iotctl" "$dir/state/control.sock" "$dir/out.csv" >"$dir/ctl" <<'PY'
import resource, subprocess, sys
ctl, sock, out = sys.argv[1:4]
with open(out, "wb") as f:
    subprocess.run([ctl, "-s", sock, "events", "--tenant", "bench", "--since", "2d", "--csv",
                    "--all"], stdout=f, check=True, timeout=1800)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
    end=$(date +%s.%N)
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    sampler=
    peak=$(sort -n "$dir/samples" | tail -n 1)
    rows=$(($(wc -l <"$dir/out.csv") - 1))
    [ "$rows" -eq "$n" ] || { echo "exported $rows rows of $n" >&2; exit 1; }
    awk -v n="$n" -v rows="$rows" -v s="$start" -v e="$end" -v ctl="$(cat "$dir/ctl")" \
        -v before="$before" -v peak="$peak" -v bytes="$(stat -c %s "$dir/out.csv")" 'BEGIN {
        printf "events=%d rows=%d csv_mb=%.1f seconds=%.1f rows_per_s=%.0f iotctl_peak_rss_kb=%d iotd_rss_before_kb=%d iotd_rss_peak_kb=%d\n",
            n, rows, bytes / 1048576, e - s, rows / (e - s), ctl, before, peak }'
    rm -f "$dir/out.csv"
done
