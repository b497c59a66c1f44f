#!/usr/bin/env bash
# run.sh - the relay benchmark of issue 4: iotd against the physical limit and two brokers.
#
#   tests/bench/relay/run.sh [BUILD_DIR]          (default BUILD_DIR: build-release)
#
# Not part of the test suite: run it by hand on an idle machine. Every system gets the same
# load, driven by a generator written for it in this folder: closed loop, 64-byte payload,
# plain TCP on loopback, CONNS connections with 1 and then 16 requests in flight, DURATION
# seconds after a 0.5 s warm-up, RUNS times; the table shows medians. The runs take turns
# (round 1: each system at each level, then round 2...), so that what the machine does
# meanwhile falls on all of them alike, and every round starts every system afresh: on a
# virtual machine a set of processes keeps, for as long as it lives, the arrangement over the
# CPUs it settled into, fast or slow, and medians must span several. Before each run the
# script waits (up to 5 s) for iotd's MariaDBs to finish what the last run left them, so that
# no system pays for another's background work. Besides the ratios of the medians, the
# summary gives ratios paired by round (iotd's figure over the other system's in the same
# round, then the median over rounds): a round in which the machine was slow for everyone
# (seen here: every system at a third of its rate, p99 in milliseconds) then cancels out.
#
#   epoll      epoll_relay.c: one thread forwarding frames by TO address, no checks (the limit);
#              devices are relay_load --responder
#   iotd       iotd (Release, BUILD_DIR) with its local MariaDB; a user LOGINs and sends `echo`
#              to iotsim devices through the full relay (tenant, catalogue, args, access map)
#   iotd_none  a second iotd, with [relay] audit = none: the audit's cost within the same run
#   iotd_ws    a third iotd, audited like iotd, loaded through its web listener instead: the
#              user is a browser's WebSocket session on /ws (relay_load --websocket: the same
#              LOGIN and echo requests as JSON in masked frames, iot-websocket(7)); the summary
#              gives iotd_ws/iotd paired by round (the WebSocket path's cost)
#   mosquitto  mosquitto -p PORT; MQTT v5 request/response with libmosquitto (mqtt_load.c)
#   nats       nats-server -p PORT; request-reply with nats.c (nats_load.c)
#
# Server CPU per round trip comes from the server process's utime+stime (/proc/PID/stat)
# over each run; for iotd, its MariaDB's is shown beside it (the audit's cost). With
# IDLE_DEVICES > 0 it also connects that many idle iotsim devices to iotd and reports its RSS
# growth per device.
#
# Knobs (environment): DURATION=5 RUNS=3 CONNS=1 DEVICES=4 INFLIGHTS="1 16"
# SYSTEMS="epoll iotd iotd_none iotd_ws mosquitto nats" IDLE_DEVICES=10000 KEEP=1 (keep the
# work dir).
# IOTD_AUDIT=all|denied|none sets iotd's [relay] audit (default all: every message audited);
# IOTD_THREADS=N sets iotd's io threads (default 0: one per core);
# IOTD_STATS_MS=N runs a stats subscriber (what iottop does) every N ms during iotd's runs.
# BASE_BUILD=DIR adds the system iotd_base: iotd as built in DIR (say, a worktree of the last
# commit, built Release), audited like iotd, driven by this build's iotsim and iotctl. Two
# builds measured in the same rounds: on this machine the speed of a whole run moves by more
# than most changes to iotd do. The summary then gives iotd/iotd_base paired by round.
# PIN_CPU=N runs everything (servers, MariaDB, load generators) on CPU N alone: each system's
# own cost, without the wake-ups from one CPU to another (on a virtual machine they can cost
# more than the work they carry).
# As root it installs the Debian packages it needs (mosquitto libmosquitto-dev nats-server
# libnats-dev) when they are missing; a system whose tools are missing is skipped, not fatal.
set -euo pipefail
if [ -n "${PIN_CPU:-}" ] && [ -z "${PINNED:-}" ]; then
    PINNED=1 exec taskset -c "$PIN_CPU" "$0" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
build=$(cd "${1:-$top/build-release}" 2>/dev/null && pwd || echo "${1:-$top/build-release}")
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
CONNS=${CONNS:-1}
DEVICES=${DEVICES:-4}
INFLIGHTS=${INFLIGHTS:-"1 16"}
SYSTEMS=${SYSTEMS:-"epoll iotd iotd_none iotd_ws mosquitto nats"}
[ -z "${BASE_BUILD:-}" ] || [[ " $SYSTEMS " == *" iotd_base "* ]] || SYSTEMS="$SYSTEMS iotd_base"
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

# server[SYSTEM] is a system's server process (server[SYSTEM.db] its MariaDB, for iotd); up
# lists the systems that started.
declare -A server=()
up=()

# The CPU ticks of SYSTEM's MariaDB (0 when it has none; all of them without SYSTEM).
db_ticks() {
    local name sum=0
    for name in "${!server[@]}"; do
        if [[ $name != *.db ]] || { [ -n "${1:-}" ] && [ "$name" != "$1.db" ]; }; then
            continue
        fi
        [ -e "/proc/${server[$name]}/stat" ] && sum=$((sum + $(cpu_ticks "${server[$name]}")))
    done
    echo "$sum"
}

# Wait (up to 5 s) until the MariaDBs use under 5% of a core: what one writes after a run with
# the audit on must not run into the next system's run.
settle() {
    local before after
    for _ in $(seq 1 25); do
        before=$(db_ticks)
        sleep 0.2
        after=$(db_ticks)
        [ $((after - before)) -le 1 ] && return 0
    done
}

# measure SYSTEM INFLIGHT: one run; a result line with the server's CPU ticks over the run
# appended (and MariaDB's, for iotd). Returns 1 when the load generator failed.
measure() {
    local system=$1 k=$2 before after db_before db_after dev dev_before line
    before=$(cpu_ticks "${server[$system]}")
    db_before=$(db_ticks "$system")
    dev=${helpers[$system]%% *}
    dev_before=$(cpu_ticks "$dev")
    "load_$system"
    if ! line=$(timeout $((${DURATION%.*} + 30)) "${load_cmd[@]}" --inflight "$k" \
        --duration "$DURATION" 2>>"$work/$system-load.log"); then
        log "$system: load run failed (see $work/$system-load.log)"
        echo "$system: a load run failed: $(tail -2 "$work/$system-load.log" | tr '\n' ' ')" >>"$notes"
        return 1
    fi
    after=$(cpu_ticks "${server[$system]}")
    db_after=$(db_ticks "$system")
    line=${line/system=* inflight=/system=$system inflight=}
    line="$line round=$round cpu_ticks=$((after - before)) dev_ticks=$(($(cpu_ticks "$dev") - dev_before))"
    [ -n "${server[$system.db]:-}" ] && line="$line db_ticks=$((db_after - db_before))"
    echo "$line" >>"$results"
    log "$line"
}

# start_SYSTEM starts a server and its responders (the devices) and returns 0 once they are
# up; load_SYSTEM then sets load_cmd to the command that runs one load against it (options
# such as --inflight follow). helpers[SYSTEM] lists the processes stop_system ends besides
# the server.
declare -A helpers=()

stop_system() {
    local p
    # shellcheck disable=SC2086 # helpers is a list of pids
    for p in ${helpers[$1]:-} ${server[$1]:-}; do kill "$p" 2>/dev/null || true; done
    # shellcheck disable=SC2086
    for p in ${helpers[$1]:-} ${server[$1]:-}; do wait "$p" 2>/dev/null || true; done
}

start_epoll() {
    "$work/bin/epoll_relay" --duration 3600 >"$work/epoll.port" 2>"$work/epoll.log" &
    server[epoll]=$!
    pids+=("$!")
    for _ in $(seq 1 50); do grep -q port= "$work/epoll.port" && break; sleep 0.1; done
    epoll_port=$(sed -n 's/port=//p' "$work/epoll.port")
    if [ -z "$epoll_port" ]; then
        echo "epoll: did not start (see $work/epoll.log)" >>"$notes"
        return 1
    fi
    "$work/bin/relay_load" --responder -c "127.0.0.1:$epoll_port" --devices "$device_list" \
        --duration 3600 2>>"$work/epoll-responder.log" &
    helpers[epoll]=$!
    pids+=("$!")
    sleep 0.3
}
load_epoll() {
    load_cmd=("$work/bin/relay_load" -c "127.0.0.1:$epoll_port" --from 'bench%d@bench'
        --devices "$device_list" --conns "$CONNS")
}

start_mosquitto() {
    if [ "$have_mqtt" != 1 ]; then
        echo "mosquitto: skipped (mosquitto or libmosquitto-dev missing)" >>"$notes"
        return 1
    fi
    mqtt_port=$(free_port)
    # A config file binds the listener to loopback explicitly, whatever the build's default.
    printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mqtt_port" >"$work/mosquitto.conf"
    mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
    server[mosquitto]=$!
    pids+=("$!")
    wait_port "$mqtt_port" || { echo "mosquitto: did not start" >>"$notes"; return 1; }
    "$work/bin/mqtt_load" --responder -c "127.0.0.1:$mqtt_port" --devices "$device_list" \
        --duration 3600 2>>"$work/mosquitto-responder.log" &
    helpers[mosquitto]=$!
    pids+=("$!")
    sleep 0.5
}
load_mosquitto() {
    load_cmd=("$work/bin/mqtt_load" -c "127.0.0.1:$mqtt_port" --devices "$device_list"
        --conns "$CONNS")
}

start_nats() {
    if [ "$have_nats" != 1 ]; then
        echo "nats: skipped (nats-server or libnats-dev missing)" >>"$notes"
        return 1
    fi
    nats_port=$(free_port)
    nats-server -a 127.0.0.1 -p "$nats_port" >"$work/nats.log" 2>&1 &
    server[nats]=$!
    pids+=("$!")
    wait_port "$nats_port" || { echo "nats: did not start" >>"$notes"; return 1; }
    "$work/bin/nats_load" --responder -c "127.0.0.1:$nats_port" --devices "$device_list" \
        --duration 3600 2>>"$work/nats-responder.log" &
    helpers[nats]=$!
    pids+=("$!")
    sleep 0.5
}
load_nats() {
    load_cmd=("$work/bin/nats_load" -c "127.0.0.1:$nats_port" --devices "$device_list"
        --conns "$CONNS")
}

json_get() { python3 -c 'import json,sys
v = json.load(sys.stdin)
for k in sys.argv[1:]: v = v[k]
print(v)' "$@"; }

iotd_bin=$build/iotd/core/iotd ctl_bin=$build/iotctl/iotctl sim_bin=$build/firmware/sim/iotsim
declare -A port=()
# ctl NAME ARGS...: iotctl on the iotd instance NAME (iotd or iotd_none)
ctl() {
    local name=$1
    shift
    "$ctl_bin" -s "$work/$name-state/control.sock" "$@"
}

# start_iotd_instance NAME AUDIT [IOTD]: an iotd (default: this build's) with its MariaDB,
# registrations and iotsim devices.
start_iotd_instance() {
    local name=$1 audit=$2 state=$work/$1-state i bin=${3:-$iotd_bin}
    if [ ! -x "$iotd_bin" ] || [ ! -x "$ctl_bin" ] || [ ! -x "$sim_bin" ]; then
        log "building iotd, iotctl and iotsim (Release) in $build"
        { [ -f "$build/CMakeCache.txt" ] ||
            cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DIOTD_TESTS=OFF; } >"$work/build.log" 2>&1 &&
            cmake --build "$build" -j"$(nproc)" --target iotd iotctl iotsim >>"$work/build.log" 2>&1 || {
            echo "$name: skipped, the build failed (see $work/build.log)" >>"$notes"
            return 1
        }
    fi
    cat >"$work/$name.conf" <<CONF
[iotd]
state_dir = $state
log_level = warn
threads = ${IOTD_THREADS:-0}
[devices]
listen = 127.0.0.1:0
[relay]
audit = $audit
$([ "$name" != iotd_ws ] || printf '[web]\nlisten = 127.0.0.1:0\n')
[database]
url = local
CONF
    if [ ! -x "$bin" ]; then
        echo "$name: skipped, no $bin" >>"$notes"
        return 1
    fi
    "$bin" -f -c "$work/$name.conf" >"$work/$name.log" 2>&1 &
    server[$name]=$!
    pids+=("$!")
    for _ in $(seq 1 600); do ctl "$name" status >/dev/null 2>&1 && break; sleep 0.1; done
    if ! ctl "$name" status >/dev/null 2>&1; then
        echo "$name: did not start (see $work/$name.log)" >>"$notes"
        return 1
    fi
    # Its own MariaDB, a child of iotd (its CPU is the audit's cost).
    server[$name.db]=$(pgrep -P "${server[$name]}" -x mariadbd | head -1 || true)
    port[$name]=$(ctl "$name" --json status | json_get devices port)
    [ "$name" != iotd_ws ] || port[$name.web]=$(ctl "$name" --json status | json_get web port)
    # The registrations are in its MariaDB: a restart (next round) finds them there.
    [ -s "$work/$name-devices.jsonl" ] || {
        ctl "$name" tenant add bench
        ctl "$name" type add thermo --tenant bench
        ctl "$name" message add thermo echo --tenant bench --args "text:str"
        printf 'password123\n' >"$work/pw"
        ctl "$name" user add alice@bench --role operator --password-file "$work/pw"
        ctl "$name" access grant user:alice type:thermo --tenant bench
        for i in $(seq 1 "$DEVICES"); do
            ctl "$name" --json device add "dev$i" --tenant bench --type thermo >>"$work/$name-devices.jsonl"
        done
    } >"$work/$name-setup.log" 2>&1 || {
        echo "$name: registration failed: $(tail -1 "$work/$name-setup.log")" >>"$notes"
        return 1
    }
    "$sim_bin" -c "127.0.0.1:${port[$name]}" -f "$work/$name-devices.jsonl" --duration 3600 \
        --stats-interval 0 >"$work/$name-iotsim.log" 2>&1 &
    helpers[$name]=$!
    pids+=("$!")
    for _ in $(seq 1 300); do
        [ "$(ctl "$name" --json status | json_get devices online)" -ge "$DEVICES" ] && break
        sleep 0.1
    done
    # Is the relay there? One short run tells LOGIN and echo apart from everything else.
    "load_$name"
    if ! "${load_cmd[@]}" --duration 1 --warmup 0 >"$work/$name-probe.txt" \
        2>"$work/$name-probe.log" || grep -q 'errors=[1-9]' "$work/$name-probe.txt"; then
        echo "$name: the relay did not answer: $(head -3 "$work/$name-probe.log" | tr '\n' ' ')" \
            >>"$notes"
        return 1
    fi
    if [ -n "${IOTD_STATS_MS:-}" ]; then
        ctl "$name" stats --interval "$IOTD_STATS_MS" >/dev/null 2>&1 &
        helpers[$name]+=" $!"
        pids+=("$!")
    fi
}
start_iotd() { start_iotd_instance iotd "${IOTD_AUDIT:-all}"; }
start_iotd_none() { start_iotd_instance iotd_none none; }
start_iotd_ws() { start_iotd_instance iotd_ws "${IOTD_AUDIT:-all}"; }
start_iotd_base() {
    start_iotd_instance iotd_base "${IOTD_AUDIT:-all}" "${BASE_BUILD:?BASE_BUILD=DIR}/iotd/core/iotd"
}
# load_iotd_instance NAME: the load against the iotd instance NAME, as alice.
load_iotd_instance() {
    load_cmd=("$work/bin/relay_load" -c "127.0.0.1:${port[$1]}" --from alice@bench
        --password password123 --devices "$device_list" --conns "$CONNS")
}
load_iotd() { load_iotd_instance iotd; }
load_iotd_none() { load_iotd_instance iotd_none; }
load_iotd_ws() {
    load_cmd=("$work/bin/relay_load" --websocket -c "127.0.0.1:${port[iotd_ws.web]}"
        --from alice@bench --password password123 --devices "$device_list" --conns "$CONNS")
}
load_iotd_base() { load_iotd_instance iotd_base; }

# The audit's own account of the iotd instance about to stop: records written and dropped, and
# how often a sender was held back (not read from) while MariaDB caught up; held time is part
# of the figures. One line in $work/audit.txt per instance, summed at the end.
audit_account() {
    sleep 1
    {
        ctl iotd --json stats --count 1 | python3 -c '
import json, sys
d = json.load(sys.stdin)
q = next(q for q in d["queues"] if q["name"] == "relay_audit")
print(q["dequeued"], q["drops"], end=" ")'
        ctl iotd --json status | json_get relay audit_holds
    } >>"$work/audit.txt" 2>/dev/null || true
}

# After the runs: the audit's account, then the idle devices' memory.
finish_iotd() {
    audit_account
    awk -v mode="${IOTD_AUDIT:-all}" 'NF == 3 { w += $1; d += $2; h += $3 }
        END { printf "iotd: audit %s: %d records written, %d dropped;", mode, w, d
              printf " senders held back for the audit %d times\n", h }' "$work/audit.txt" >>"$notes"
    # shellcheck disable=SC2086 # helpers is a list of pids
    kill ${helpers[iotd]} 2>/dev/null || true
    # shellcheck disable=SC2086
    wait ${helpers[iotd]} 2>/dev/null || true
    helpers[iotd]=
    [ "$IDLE_DEVICES" -gt 0 ] && idle_memory "${server[iotd]}" "${port[iotd]}"
    stop_system iotd
}

# iotd's RSS growth per idle authenticated device, IDLE_DEVICES of them.
idle_memory() {
    local iotd=$1 dev_port=$2 i online=0
    log "registering $IDLE_DEVICES idle devices"
    for i in $(seq 1 "$IDLE_DEVICES"); do
        ctl iotd --json device add "idle$i" --tenant bench --type thermo
    done >"$work/idle.jsonl" 2>>"$work/iotd-setup.log"
    sleep 1
    local before after
    before=$(awk '/VmRSS/ {print $2}' "/proc/$iotd/status")
    "$sim_bin" -c "127.0.0.1:$dev_port" -f "$work/idle.jsonl" --rate-connect 5000 --duration 600 \
        --stats-interval 0 >"$work/idle-sim.log" 2>&1 &
    local sim=$!
    pids+=("$sim")
    for _ in $(seq 1 1200); do
        online=$(ctl iotd --json status | json_get devices online)
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
    log "starting $s"
    if declare -F "start_$s" >/dev/null && "start_$s"; then
        up+=("$s")
    else
        stop_system "$s"
        unset "server[$s]" "server[$s.db]"
    fi
done
declare -A failed=()
for r in $(seq 1 "$RUNS"); do
    round=$r
    log "round $r of $RUNS"
    if [ "$r" -gt 1 ]; then # every system afresh (see the top)
        for s in "${up[@]}"; do
            [ -z "${failed[$s]:-}" ] || continue
            [ "$s" != iotd ] || audit_account
            stop_system "$s"
            helpers[$s]=
            "start_$s" || { failed[$s]=1; echo "$s: did not start again in round $r" >>"$notes"; }
        done
    fi
    for k in $INFLIGHTS; do
        # Each round starts with the next system, so that none always follows the same one.
        n=${#up[@]}
        [ "$n" -gt 0 ] || break 2
        for s in "${up[@]:$((r % n))}" "${up[@]:0:$((r % n))}"; do
            [ -z "${failed[$s]:-}" ] || continue
            settle
            measure "$s" "$k" || failed[$s]=1
        done
    done
done
for s in "${up[@]}"; do
    [ "$s" = iotd ] || stop_system "$s"
done
[ -n "${server[iotd]:-}" ] && finish_iotd

echo "relay benchmark: $(getconf _NPROCESSORS_ONLN) cores${PIN_CPU:+ (everything on CPU $PIN_CPU)}," \
    "$(uname -r), CONNS=$CONNS DEVICES=$DEVICES" \
    "DURATION=${DURATION}s RUNS=$RUNS, 64-byte payload, loopback; medians"
python3 - "$results" "$(getconf CLK_TCK)" "${IOTD_AUDIT:-all}" <<'PY'
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
    db = (statistics.median(float(r["db_ticks"]) * 1e6 / tck / max(1.0, float(r["rt_all"]))
                            for r in runs) if all("db_ticks" in r for r in runs) else None)
    per_rt = lambda f, scale: statistics.median(float(r.get(f, 0)) * scale
                                                / max(1.0, float(r["rt_all"])) for r in runs)
    dev = per_rt("dev_ticks", 1e6 / tck)
    load = per_rt("load_cpu_us", 1.0)
    med[key] = dict(rt_s=m("rt_s"), p50=m("p50_us"), p99=m("p99_us"), p999=m("p999_us"),
                    cpu=cpu, db=db, dev=dev, load=load,
                    errors=sum(int(r["errors"]) for r in runs),
                    lost=sum(int(r["lost"]) for r in runs), n=len(runs))
print(f"{'system':<10} {'inflight':>8} {'rt/s':>9} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9}"
      f" {'cpu us/rt':>9} {'db us/rt':>8} {'dev us/rt':>9} {'load us/rt':>10} {'errors':>6}"
      f" {'lost':>5} {'runs':>4}")
order = ["epoll", "iotd", "iotd_base", "iotd_none", "iotd_ws", "mosquitto", "nats"]
for (s, k) in sorted(med, key=lambda x: (x[1], order.index(x[0]) if x[0] in order else 9)):
    r = med[(s, k)]
    print(f"{s:<10} {k:>8} {r['rt_s']:>9.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['p999']:>9.1f}"
          f" {r['cpu']:>9.2f} {'-' if r['db'] is None else format(r['db'], '.2f'):>8}"
          f" {r['dev']:>9.2f} {r['load']:>10.2f}"
          f" {r['errors']:>6} {r['lost']:>5} {r['n']:>4}")
# Paired: the ratio of two systems within each round (they ran minutes apart at most, so a
# round in which the machine was slow for everyone cancels out), then the median over rounds.
def paired(a, b, k, f):
    by_round = {r["round"]: float(r[f]) for r in rows.get((b, k), []) if "round" in r}
    ratios = [float(r[f]) / by_round[r["round"]] for r in rows.get((a, k), [])
              if r.get("round") in by_round and by_round[r["round"]] > 0]
    return statistics.median(ratios) if ratios else None
for k in sorted({k for _, k in med}):
    i = med.get(("iotd", k))
    for base in ("epoll", "mosquitto"):
        b = med.get((base, k))
        if i and b:
            print(f"iotd/{base} at {k:>2} in flight: throughput {i['rt_s'] / b['rt_s']:.2f}x,"
                  f" p50 {i['p50'] / b['p50']:.2f}x, p99 {i['p99'] / b['p99']:.2f}x"
                  f" (paired by round: throughput {paired('iotd', base, k, 'rt_s'):.2f}x,"
                  f" p50 {paired('iotd', base, k, 'p50_us'):.2f}x,"
                  f" p99 {paired('iotd', base, k, 'p99_us'):.2f}x)")
for k in sorted({k for _, k in med}):
    a, n = med.get(("iotd", k)), med.get(("iotd_none", k))
    if a and n:
        print(f"the audit at {k:>2} in flight: iotd (audit {sys.argv[3]}) at"
              f" {a['rt_s'] / n['rt_s']:.2f}x the throughput of iotd_none (audit none),"
              f" p50 {a['p50'] / n['p50']:.2f}x, p99 {a['p99'] / n['p99']:.2f}x"
              f" (paired by round: {paired('iotd', 'iotd_none', k, 'rt_s'):.2f}x)")
    if a and med.get(("iotd_ws", k)):
        w = med[("iotd_ws", k)]
        print(f"iotd_ws/iotd at {k:>2} in flight (WebSocket over native TCP): throughput"
              f" {w['rt_s'] / a['rt_s']:.2f}x (paired by round: throughput"
              f" {paired('iotd_ws', 'iotd', k, 'rt_s'):.2f}x,"
              f" p50 {paired('iotd_ws', 'iotd', k, 'p50_us'):.2f}x,"
              f" p99 {paired('iotd_ws', 'iotd', k, 'p99_us'):.2f}x), server cpu/rt"
              f" {w['cpu'] / a['cpu']:.2f}x")
    if med.get(("iotd", k)) and med.get(("iotd_base", k)):
        print(f"iotd/iotd_base at {k:>2} in flight: paired by round: throughput"
              f" {paired('iotd', 'iotd_base', k, 'rt_s'):.2f}x,"
              f" p50 {paired('iotd', 'iotd_base', k, 'p50_us'):.2f}x,"
              f" p99 {paired('iotd', 'iotd_base', k, 'p99_us'):.2f}x")
    if n and med.get(("epoll", k)):
        print(f"iotd_none/epoll at {k:>2} in flight: paired by round: throughput"
              f" {paired('iotd_none', 'epoll', k, 'rt_s'):.2f}x,"
              f" p50 {paired('iotd_none', 'epoll', k, 'p50_us'):.2f}x,"
              f" p99 {paired('iotd_none', 'epoll', k, 'p99_us'):.2f}x")
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
