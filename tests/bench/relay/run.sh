#!/usr/bin/env bash
# run.sh - the relay benchmark of issue 4: iotd against the physical limit and two brokers.
#
#   tests/bench/relay/run.sh [BUILD_DIR]          (default BUILD_DIR: build-release)
#
# Not part of the test suite: run it by hand on an idle machine. Every system gets the same
# load, driven by a generator written for it in this folder: closed loop, 64-byte payload,
# plain TCP on loopback, CONNS connections with 1 and then 16 requests in flight, DURATION
# seconds after a 0.5 s warm-up, RUNS times; the table shows medians.
#
#   epoll      epoll_relay.c: one thread forwarding frames by TO address, no checks (the limit);
#              devices are relay_load --responder
#   iotd       iotd (Release, BUILD_DIR) with its local MariaDB; a user LOGINs and sends `echo`
#              to iotsim devices through the full relay (tenant, catalogue, args, access map)
#   mosquitto  mosquitto -p PORT; MQTT v5 request/response with libmosquitto (mqtt_load.c)
#   nats       nats-server -p PORT; request-reply with nats.c (nats_load.c)
#
# Server CPU per round trip comes from the server process's utime+stime (/proc/PID/stat)
# over each run. With IDLE_DEVICES > 0 it also connects that many idle iotsim devices to iotd
# and reports its RSS growth per device.
#
# Knobs (environment): DURATION=5 RUNS=3 CONNS=1 DEVICES=4 INFLIGHTS="1 16"
# SYSTEMS="epoll iotd mosquitto nats" IDLE_DEVICES=10000 KEEP=1 (keep the work dir).
# IOTD_AUDIT=all|denied|none sets iotd's [relay] audit (default all: every message audited);
# IOTD_THREADS=N sets iotd's io threads (default 0: one per core);
# IOTD_STATS_MS=N runs a stats subscriber (what iottop does) every N ms during iotd's runs.
# As root it installs the Debian packages it needs (mosquitto libmosquitto-dev nats-server
# libnats-dev) when they are missing; a system whose tools are missing is skipped, not fatal.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
build=$(cd "${1:-$top/build-release}" 2>/dev/null && pwd || echo "${1:-$top/build-release}")
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
CONNS=${CONNS:-1}
DEVICES=${DEVICES:-4}
INFLIGHTS=${INFLIGHTS:-"1 16"}
SYSTEMS=${SYSTEMS:-"epoll iotd mosquitto nats"}
IDLE_DEVICES=${IDLE_DEVICES:-10000}

work=$(mktemp -d /tmp/iotd-relay-bench.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -n "${KEEP:-}" ]; then echo "work dir kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
log() { echo "== $*" >&2; }
results=$work/results.txt
notes=$work/notes.txt
: >"$results"
: >"$notes"

# ---- tools ----
need_pkgs=()
for p in mosquitto libmosquitto-dev nats-server libnats-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ]; then
    log "installing ${need_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_pkgs[@]}" >"$work/apt.log" 2>&1 ||
        log "apt-get failed (see $work/apt.log); the brokers may be skipped"
fi

# The load generators are built here, with cc, on the firmware library's own source list.
cflags=(-std=c11 -O2 -Wall -Wextra -Werror)
mkdir -p "$work/bin"
# shellcheck disable=SC2016 # ${CMAKE_CURRENT_LIST_DIR} is cmake's, matched literally
mapfile -t iotp_sources < <(sed -n 's#.*\${CMAKE_CURRENT_LIST_DIR}/\(src/[a-z_0-9]*\.c\).*#'"$top"'/firmware/\1#p' \
    "$top/firmware/iotp.cmake")
cc "${cflags[@]}" -I"$top/firmware/include" -o "$work/bin/relay_load" "$here/relay_load.c" \
    "$here/bench_stats.c" "${iotp_sources[@]}"
cc "${cflags[@]}" -o "$work/bin/epoll_relay" "$here/epoll_relay.c"
have_mqtt=0 have_nats=0
if [ -f /usr/include/mosquitto.h ] && command -v mosquitto >/dev/null 2>&1 ||
    [ -x /usr/sbin/mosquitto ]; then
    cc "${cflags[@]}" -o "$work/bin/mqtt_load" "$here/mqtt_load.c" "$here/bench_stats.c" \
        -lmosquitto && have_mqtt=1
fi
if [ -f /usr/include/nats/nats.h ] && { command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; }; then
    cc "${cflags[@]}" -o "$work/bin/nats_load" "$here/nats_load.c" "$here/bench_stats.c" -lnats &&
        have_nats=1
fi
PATH=$PATH:/usr/sbin

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# utime+stime of a process in clock ticks (fields 14 and 15, counted after the ")" of comm).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
wait_port() { # port: up to 10 s for a listener
    for _ in $(seq 1 100); do
        (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
device_list=$(seq -s, -f 'dev%g' 1 "$DEVICES")

# measure SYSTEM SERVER_PID LOAD_COMMAND...: every in-flight level, RUNS times, one result
# line each with the server's CPU ticks over the run appended.
measure() {
    local system=$1 server=$2
    shift 2
    local k before after line
    for k in $INFLIGHTS; do
        for _ in $(seq 1 "$RUNS"); do
            before=$(cpu_ticks "$server")
            if ! line=$(timeout $((${DURATION%.*} + 30)) "$@" --inflight "$k" --duration "$DURATION" \
                2>>"$work/$system-load.log"); then
                log "$system: load run failed (see $work/$system-load.log)"
                echo "$system: a load run failed: $(tail -2 "$work/$system-load.log" | tr '\n' ' ')" >>"$notes"
                return 1
            fi
            after=$(cpu_ticks "$server")
            line=${line/system=* inflight=/system=$system inflight=}
            echo "$line cpu_ticks=$((after - before))" >>"$results"
            log "$line cpu_ticks=$((after - before))"
        done
    done
}

bench_epoll() {
    "$work/bin/epoll_relay" --duration 3600 >"$work/epoll.port" 2>"$work/epoll.log" &
    local relay=$!
    pids+=("$relay")
    for _ in $(seq 1 50); do grep -q port= "$work/epoll.port" && break; sleep 0.1; done
    local port
    port=$(sed -n 's/port=//p' "$work/epoll.port")
    "$work/bin/relay_load" --responder -c "127.0.0.1:$port" --devices "$device_list" \
        --duration 3600 2>>"$work/epoll-responder.log" &
    local responder=$!
    pids+=("$responder")
    sleep 0.3
    measure epoll "$relay" "$work/bin/relay_load" -c "127.0.0.1:$port" --from 'bench%d@bench' \
        --devices "$device_list" --conns "$CONNS" || true
    kill "$responder" "$relay" 2>/dev/null || true
    wait "$responder" "$relay" 2>/dev/null || true
}

bench_mosquitto() {
    if [ "$have_mqtt" != 1 ]; then
        echo "mosquitto: skipped (mosquitto or libmosquitto-dev missing)" >>"$notes"
        return
    fi
    local port
    port=$(free_port)
    # A config file binds the listener to loopback explicitly, whatever the build's default.
    printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" >"$work/mosquitto.conf"
    mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
    local broker=$!
    pids+=("$broker")
    wait_port "$port" || { echo "mosquitto: did not start" >>"$notes"; return; }
    "$work/bin/mqtt_load" --responder -c "127.0.0.1:$port" --devices "$device_list" \
        --duration 3600 2>>"$work/mosquitto-responder.log" &
    local responder=$!
    pids+=("$responder")
    sleep 0.5
    measure mosquitto "$broker" "$work/bin/mqtt_load" -c "127.0.0.1:$port" \
        --devices "$device_list" --conns "$CONNS" || true
    kill "$responder" "$broker" 2>/dev/null || true
    wait "$responder" "$broker" 2>/dev/null || true
}

bench_nats() {
    if [ "$have_nats" != 1 ]; then
        echo "nats: skipped (nats-server or libnats-dev missing)" >>"$notes"
        return
    fi
    local port
    port=$(free_port)
    nats-server -a 127.0.0.1 -p "$port" >"$work/nats.log" 2>&1 &
    local server=$!
    pids+=("$server")
    wait_port "$port" || { echo "nats: did not start" >>"$notes"; return; }
    "$work/bin/nats_load" --responder -c "127.0.0.1:$port" --devices "$device_list" \
        --duration 3600 2>>"$work/nats-responder.log" &
    local responder=$!
    pids+=("$responder")
    sleep 0.5
    measure nats "$server" "$work/bin/nats_load" -c "127.0.0.1:$port" --devices "$device_list" \
        --conns "$CONNS" || true
    kill "$responder" "$server" 2>/dev/null || true
    wait "$responder" "$server" 2>/dev/null || true
}

json_get() { python3 -c 'import json,sys
v = json.load(sys.stdin)
for k in sys.argv[1:]: v = v[k]
print(v)' "$@"; }

bench_iotd() {
    local iotd_bin=$build/iotd/core/iotd ctl_bin=$build/iotctl/iotctl sim_bin=$build/firmware/sim/iotsim
    if [ ! -x "$iotd_bin" ] || [ ! -x "$ctl_bin" ] || [ ! -x "$sim_bin" ]; then
        log "building iotd, iotctl and iotsim (Release) in $build"
        { [ -f "$build/CMakeCache.txt" ] ||
            cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DIOTD_TESTS=OFF; } >"$work/build.log" 2>&1 &&
            cmake --build "$build" -j"$(nproc)" --target iotd iotctl iotsim >>"$work/build.log" 2>&1 || {
            echo "iotd: skipped, the build failed (see $work/build.log)" >>"$notes"
            return
        }
    fi
    local state=$work/iotd-state
    cat >"$work/iotd.conf" <<CONF
[iotd]
state_dir = $state
log_level = warn
threads = ${IOTD_THREADS:-0}
[devices]
listen = 127.0.0.1:0
[relay]
audit = ${IOTD_AUDIT:-all}
[database]
url = local
CONF
    "$iotd_bin" -f -c "$work/iotd.conf" >"$work/iotd.log" 2>&1 &
    local iotd=$!
    pids+=("$iotd")
    ctl() { "$ctl_bin" -s "$state/control.sock" "$@"; }
    for _ in $(seq 1 600); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
    if ! ctl status >/dev/null 2>&1; then
        echo "iotd: did not start (see $work/iotd.log)" >>"$notes"
        return
    fi
    local port
    port=$(ctl --json status | json_get devices port)
    {
        ctl tenant add bench
        ctl type add thermo --tenant bench
        ctl message add thermo echo --tenant bench --args "text:str"
        printf 'password123\n' >"$work/pw"
        ctl user add alice@bench --role operator --password-file "$work/pw"
        ctl access grant user:alice type:thermo --tenant bench
    } >"$work/iotd-setup.log" 2>&1 || {
        echo "iotd: registration failed: $(tail -1 "$work/iotd-setup.log")" >>"$notes"
        return
    }
    local i
    for i in $(seq 1 "$DEVICES"); do
        ctl --json device add "dev$i" --tenant bench --type thermo
    done >"$work/devices.jsonl" 2>>"$work/iotd-setup.log"
    "$sim_bin" -c "127.0.0.1:$port" -f "$work/devices.jsonl" --duration 3600 --stats-interval 0 \
        >"$work/iotsim.log" 2>&1 &
    local sim=$!
    pids+=("$sim")
    for _ in $(seq 1 300); do
        [ "$(ctl --json status | json_get devices online)" -ge "$DEVICES" ] && break
        sleep 0.1
    done
    # Is the relay there? One short run tells LOGIN and echo apart from everything else.
    if ! "$work/bin/relay_load" -c "127.0.0.1:$port" --from alice@bench --password password123 \
        --devices "$device_list" --duration 1 --warmup 0 >"$work/iotd-probe.txt" \
        2>"$work/iotd-probe.log" || grep -q 'errors=[1-9]' "$work/iotd-probe.txt"; then
        echo "iotd: the relay did not answer: $(head -3 "$work/iotd-probe.log" | tr '\n' ' ')" >>"$notes"
    else
        local stats=
        if [ -n "${IOTD_STATS_MS:-}" ]; then
            ctl stats --interval "$IOTD_STATS_MS" >/dev/null 2>&1 &
            stats=$!
        fi
        measure iotd "$iotd" "$work/bin/relay_load" -c "127.0.0.1:$port" --from alice@bench \
            --password password123 --devices "$device_list" --conns "$CONNS" || true
        [ -n "$stats" ] && kill "$stats" 2>/dev/null
        # The audit's own account: records written and dropped, and how often a sender was held
        # back (not read from) while MariaDB caught up. Held time is part of the figures above.
        sleep 1
        ctl --json stats --count 1 | python3 -c '
import json, sys
d = json.load(sys.stdin)
q = next(q for q in d["queues"] if q["name"] == "relay_audit")
print("iotd: audit %s: %d records written, %d dropped" % (sys.argv[1], q["dequeued"], q["drops"]))' \
            "${IOTD_AUDIT:-all}" >>"$notes" 2>/dev/null || true
        echo "iotd: senders held back for the audit $(ctl --json status | json_get relay audit_holds) times" \
            >>"$notes" 2>/dev/null || true
    fi
    kill "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
    [ "$IDLE_DEVICES" -gt 0 ] && idle_memory "$iotd" "$port"
    kill "$iotd" 2>/dev/null || true
    wait "$iotd" 2>/dev/null || true
}

# iotd's RSS growth per idle authenticated device, IDLE_DEVICES of them.
idle_memory() {
    local iotd=$1 port=$2 i online=0
    log "registering $IDLE_DEVICES idle devices"
    for i in $(seq 1 "$IDLE_DEVICES"); do
        ctl --json device add "idle$i" --tenant bench --type thermo
    done >"$work/idle.jsonl" 2>>"$work/iotd-setup.log"
    sleep 1
    local before after
    before=$(awk '/VmRSS/ {print $2}' "/proc/$iotd/status")
    "$sim_bin" -c "127.0.0.1:$port" -f "$work/idle.jsonl" --rate-connect 5000 --duration 600 \
        --stats-interval 0 >"$work/idle-sim.log" 2>&1 &
    local sim=$!
    pids+=("$sim")
    for _ in $(seq 1 1200); do
        online=$(ctl --json status | json_get devices online)
        [ "$online" -ge "$IDLE_DEVICES" ] && break
        sleep 0.1
    done
    sleep 2 # let allocations settle after the last handshake
    after=$(awk '/VmRSS/ {print $2}' "/proc/$iotd/status")
    echo "idle system=iotd devices=$online rss_before_kib=$before rss_after_kib=$after" >>"$results"
    kill "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
}

for s in $SYSTEMS; do
    log "system $s"
    "bench_$s"
done

echo "relay benchmark: $(nproc) cores, $(uname -r), CONNS=$CONNS DEVICES=$DEVICES" \
    "DURATION=${DURATION}s RUNS=$RUNS, 64-byte payload, loopback; medians"
python3 - "$results" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
rows, idle = {}, []
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
    if line.startswith("idle "):
        idle.append(kv)
        continue
    rows.setdefault((kv["system"], int(kv["inflight"])), []).append(kv)
tck = float(sys.argv[2])
med = {}
for key, runs in rows.items():
    m = lambda f: statistics.median(float(r[f]) for r in runs)
    # The server's CPU time covers the warm-up too: divide by every round trip it carried.
    cpu = statistics.median(float(r["cpu_ticks"]) * 1e6 / tck / max(1.0, float(r["rt_all"]))
                            for r in runs)
    med[key] = dict(rt_s=m("rt_s"), p50=m("p50_us"), p99=m("p99_us"), p999=m("p999_us"),
                    cpu=cpu, errors=sum(int(r["errors"]) for r in runs),
                    lost=sum(int(r["lost"]) for r in runs), n=len(runs))
print(f"{'system':<10} {'inflight':>8} {'rt/s':>9} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9}"
      f" {'cpu us/rt':>9} {'errors':>6} {'lost':>5} {'runs':>4}")
order = ["epoll", "iotd", "mosquitto", "nats"]
for (s, k) in sorted(med, key=lambda x: (x[1], order.index(x[0]) if x[0] in order else 9)):
    r = med[(s, k)]
    print(f"{s:<10} {k:>8} {r['rt_s']:>9.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['p999']:>9.1f}"
          f" {r['cpu']:>9.2f} {r['errors']:>6} {r['lost']:>5} {r['n']:>4}")
for k in sorted({k for _, k in med}):
    i = med.get(("iotd", k))
    for base in ("epoll", "mosquitto"):
        b = med.get((base, k))
        if i and b:
            print(f"iotd/{base} at {k:>2} in flight: throughput {i['rt_s'] / b['rt_s']:.2f}x,"
                  f" p50 {i['p50'] / b['p50']:.2f}x, p99 {i['p99'] / b['p99']:.2f}x")
for r in idle:
    n = max(1, int(r["devices"]))
    per = (int(r["rss_after_kib"]) - int(r["rss_before_kib"])) * 1024 / n
    print(f"iotd memory: {n} idle authenticated devices, RSS {r['rss_before_kib']} -> "
          f"{r['rss_after_kib']} KiB: {per:.0f} bytes per device")
PY
if [ -s "$notes" ]; then
    echo "notes:"
    sed 's/^/  /' "$notes"
fi
