#!/usr/bin/env bash
# registry/run.sh - what one administrative change costs with N devices registered: the wall
# time of `iotctl device add` (the iotctl process, the change's transaction, the snapshot
# published, the answer), at each fleet size, paired round by round against another build.
# Also the time of a full registry load at that size (start-up's, and the fallback's) and of a
# restart to the first answer. Not part of the test suite: run it by hand.
#
#   tests/bench/registry/run.sh BUILD [BASE_BUILD]
#   SIZES="1000 10000 100000"  fleet sizes (default)
#   RULES_PER=10               one access rule per RULES_PER devices (100k devices: 10k rules)
#   ROUNDS=5 ADDS=10           rounds, and device adds per build per round (medians reported)
#   SNAPSHOT_ONLY=1            only the in-process part (snapshot_bench.c, below)
#
# For each size and build: iotd on a temporary state dir with its own MariaDB; a tenant, a type,
# a user and one device by iotctl; then the fleet and the rules by SQL straight into MariaDB
# (INSERT ... SELECT over the sequence engine: seconds, not N iotctl calls), made visible by
# one full reload (`tenant remove` of an empty tenant, which reloads everything in both
# builds). The builds then take turns, ADDS adds each per round.
set -euo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
build=${1:?usage: run.sh BUILD [BASE_BUILD]}
base=${2:-}
sizes=${SIZES:-1000 10000 100000}
rules_per=${RULES_PER:-10}
rounds=${ROUNDS:-5}
adds=${ADDS:-10}
work=$(mktemp -d /tmp/iotd-regbench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

ctl() { # name args...
    local name=$1
    shift
    "${builds[$name]}/iotctl/iotctl" -s "$work/$name/state/control.sock" "$@"
}
sql() { mariadb --socket="$work/$1/state/mariadb/run/mysqld.sock" -N iotd -e "$2"; }
ms_since() { python3 -c "import sys,time; print(round((time.time() - float(sys.argv[1])) * 1000))" "$1"; }

start_iotd() { # name
    local name=$1 dir=$work/$1
    mkdir -p "$dir"
    cat >"$dir/iotd.conf" <<CONF
[iotd]
state_dir = $dir/state
log_level = info
[devices]
listen = 127.0.0.1:0
CONF
    "${builds[$name]}/iotd/core/iotd" -f -c "$dir/iotd.conf" 2>>"$dir/iotd.log" &
    pid[$name]=$!
    pids+=("$!")
    for _ in $(seq 1 600); do ctl "$name" status >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "iotd ($name) did not start: $(tail -5 "$dir/iotd.log")" >&2
    exit 1
}

stop_iotd() { # name
    kill "${pid[$1]}"
    wait "${pid[$1]}" 2>/dev/null || true
}

setup() { # name n
    local name=$1 n=$2 rules=$(($2 / rules_per))
    start_iotd "$name"
    echo 'correct horse battery' >"$work/pw"
    ctl "$name" tenant add bench >/dev/null
    ctl "$name" type add sensor --tenant bench >/dev/null
    ctl "$name" user add ops@bench --password-file "$work/pw" >/dev/null
    ctl "$name" device add tmpl --tenant bench --type sensor >/dev/null 2>&1
    sql "$name" "INSERT INTO devices (id, tenant_id, type_id, auth, secret, enabled)
        SELECT CONCAT('fleet-', LPAD(s.seq, 7, '0')), d.tenant_id, d.type_id, d.auth, d.secret, 1
        FROM devices d JOIN seq_1_to_$n s WHERE d.id = 'tmpl'"
    if [ "$rules" -gt 0 ]; then
        sql "$name" "INSERT INTO access_rules (tenant_id, subject_kind, subject_user_id,
            target_kind, target_device_id, message, created_by)
            SELECT u.tenant_id, 'user', u.id, 'device', CONCAT('fleet-', LPAD(s.seq * $rules_per, 7, '0')),
            NULL, 'bench' FROM users u JOIN seq_1_to_$rules s WHERE u.name = 'ops'"
    fi
    ctl "$name" tenant add empty >/dev/null
    local t0
    t0=$(date +%s.%N)
    ctl "$name" tenant remove empty >/dev/null # a full reload in every build
    local reload_ms
    reload_ms=$(ms_since "$t0")
    local rss
    rss=$(awk '/VmRSS/ {print $2}' "/proc/${pid[$name]}/status")
    # A build that reloads the registry on SIGHUP: the load alone, SIGHUP to its log line.
    local hup_ms=-
    if grep -q "registry reloaded from the database" "${builds[$name]}/iotd/core/iotd"; then
        t0=$(date +%s.%N)
        kill -HUP "${pid[$name]}"
        for _ in $(seq 1 600); do
            grep -q "registry reloaded from the database" "$work/$name/iotd.log" && break
            sleep 0.02
        done
        hup_ms=$(ms_since "$t0")
        hup_ms="$hup_ms ($(grep -o 'reloaded from the database in [0-9]* ms' "$work/$name/iotd.log" | tail -1 | grep -o '[0-9]* ms' || echo '?') in iotd)"
    fi
    # A restart: iotd (and its MariaDB) from nothing to the first answer with the fleet loaded.
    stop_iotd "$name"
    t0=$(date +%s.%N)
    start_iotd "$name"
    local restart_ms
    restart_ms=$(ms_since "$t0")
    local load_line
    load_line=$(grep -o 'loaded in [0-9]* ms' "$work/$name/iotd.log" | tail -1 || true)
    local count
    count=$(ctl "$name" --json status | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["registry"]["devices"] if "registry" in j else j.get("devices", {}).get("registered", "?"))' 2>/dev/null || echo "?")
    printf '%-5s %7d devices %6d rules: tenant remove (a full reload) %6d ms (iotd RSS %d KiB), SIGHUP reload %s ms, restart to first answer %6d ms (registry %s; status says %s devices)\n' \
        "$name" "$n" "$rules" "$reload_ms" "$rss" "$hup_ms" "$restart_ms" "${load_line:-?}" "$count"
}

# Time ADDS `iotctl device add` calls one after another; print each in ms.
time_adds() { # name n round
    python3 - "${builds[$1]}/iotctl/iotctl" "$work/$1/state/control.sock" "$2" "$3" "$adds" <<'PY'
import subprocess, sys, time
iotctl, sock, n, rnd, adds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
for i in range(adds):
    t0 = time.perf_counter()
    subprocess.run([iotctl, "-s", sock, "device", "add", f"add-{n}-{rnd}-{i}", "--tenant", "bench",
                    "--type", "sensor"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    print(round((time.perf_counter() - t0) * 1000, 3))
PY
}

# The snapshot alone, in process, against BUILD's libraries: memory per device, the cost of a
# derived snapshot (snapshot_bench.c).
libs=()
for l in iotd/registry/libiotd_registry.a iotd/db/libiotd_db.a iotd/crypto/libiotd_crypto.a \
    iotd/base/libiotd_base.a common/libiot_common.a; do
    [ -f "$build/$l" ] || { echo "missing $build/$l: build target iotd_registry" >&2; exit 1; }
    libs+=("$build/$l")
done
# shellcheck disable=SC2046 # pkg-config output is a list of flags
cc -std=gnu11 -O2 -Wall -Wextra -Werror -I"$top/iotd/registry" -I"$top/iotd" -I"$top/common" \
    $(pkg-config --cflags libmariadb libcjson) -o "$work/snapshot_bench" \
    "$top/tests/bench/registry/snapshot_bench.c" "${libs[@]}" \
    $(pkg-config --libs libmariadb libcjson libcrypto libargon2) -lpthread
for n in $sizes; do "$work/snapshot_bench" "$n" $((n / rules_per)); done

[ -n "${SNAPSHOT_ONLY:-}" ] && exit 0

declare -A builds pid
builds[new]=$build
names=(new)
if [ -n "$base" ]; then
    builds[base]=$base
    names=(new base)
fi

for n in $sizes; do
    for name in "${names[@]}"; do setup "$name" "$n"; done
    for r in $(seq 1 "$rounds"); do
        for name in "${names[@]}"; do
            time_adds "$name" "$n" "$r" >"$work/$name-$n-$r.ms"
        done
    done
    python3 - "$work" "$n" "$rounds" "${names[@]}" <<'PY'
import statistics, sys
work, n, rounds, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
per = {name: [[float(x) for x in open(f"{work}/{name}-{n}-{r}.ms")] for r in range(1, rounds + 1)]
       for name in names}
line = f"{int(n):7d} devices: device add median"
for name in names:
    flat = [x for r in per[name] for x in r]
    line += f"  {name} {statistics.median(flat):.2f} ms (p90 {sorted(flat)[int(len(flat) * 0.9)]:.2f})"
if "base" in per:
    ratios = [statistics.median(a) / statistics.median(b) for a, b in zip(per["new"], per["base"])]
    line += f"  new/base by round: median {statistics.median(ratios):.2f}x, " \
            f"range {min(ratios):.2f}-{max(ratios):.2f}"
print(line)
PY
    for name in "${names[@]}"; do
        stop_iotd "$name"
        rm -rf "${work:?}/$name"
    done
    pids=()
done
