#!/usr/bin/env bash
# Durable events (nothing acknowledged is ever lost), end to end with iotsim as the devices:
#  (a) MariaDB stopped mid-burst and restarted: iotd keeps acknowledging from the fsync'ed
#      spool (stats state "spool"), relay and registry reads still work, the spool is replayed
#      when the database is back;
#  (b) iotd killed with SIGKILL mid-burst and restarted on the same state dir: the devices
#      reconnect and retransmit what was not acknowledged (duplicates acknowledged, stored once);
#  (c) the spool bound reached while MariaDB is away: devices get ERROR code=busy retry=N,
#      keep the events and retransmit them later; none is lost once the database is back.
# After each: every (device, seq) iotsim logged as acknowledged (--ack-log) is stored exactly
# once, in increasing seq order per device, with the fields acknowledged, and nothing else is
# stored (events_check.py).
#
# The database runs OUTSIDE iotd (its own mariadbd on a Unix socket, [database] url = unix:...)
# so that the test can stop it for real. Every wait is bounded by a count of polls.
. "$(dirname "$0")/lib.sh"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"
HERE=$(cd "$(dirname "$0")" && pwd)
T_START_S=$SECONDS

# --- our own mariadbd --------------------------------------------------------------------------
DB_DIR=$T_DIR/db
DB_DATA=$DB_DIR/data
DB_SOCK=$DB_DIR/mysqld.sock
DB_PID=
SIM_PIDS=
mkdir -p "$DB_DIR/tmp" "$T_DIR/simstate"
chmod 700 "$DB_DIR"

durable_cleanup() {
    local rc=$?
    for p in $SIM_PIDS; do kill -KILL "$p" 2>/dev/null; done
    if [ -n "$T_PID" ] && kill -0 "$T_PID" 2>/dev/null; then
        kill -TERM "$T_PID" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$T_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$T_PID" 2>/dev/null
    fi
    T_PID=
    if [ -n "$DB_PID" ]; then
        kill -KILL "$DB_PID" 2>/dev/null
        wait "$DB_PID" 2>/dev/null
    fi
    if [ $rc -ne 0 ]; then
        for f in "$T_DIR"/sim-*.log; do
            [ -f "$f" ] && { echo "---- $f (tail) ----"; tail -n 5 "$f"; }
        done
        [ -f "$DB_DIR/error.log" ] && { echo "---- mariadbd (tail) ----"; tail -n 10 "$DB_DIR/error.log"; }
        echo "---- after $((SECONDS - T_START_S)) s ----"
    fi
    # Debugging: DURABLE_KEEP=DIR keeps the logs, ack logs and stored events there.
    [ -n "${DURABLE_KEEP:-}" ] && mkdir -p "$DURABLE_KEEP" && cp -r "$T_DIR"/*.log "$T_DIR"/stored-* \
        "$DB_DIR/error.log" "$DURABLE_KEEP/" 2>/dev/null
    (exit $rc)
    t_cleanup
}
trap durable_cleanup EXIT

db_install() {
    mariadb-install-db --no-defaults --datadir="$DB_DATA" --auth-root-authentication-method=socket \
        --skip-test-db --user="$(id -un)" --tmpdir="$DB_DIR/tmp" >"$DB_DIR/install.log" 2>&1 ||
        fail "mariadb-install-db: $(tail -n 5 "$DB_DIR/install.log")"
}

db_start() {
    local mariadbd
    mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
    "$mariadbd" --no-defaults --datadir="$DB_DATA" --socket="$DB_SOCK" --skip-networking \
        --pid-file="$DB_DIR/mariadbd.pid" --log-error="$DB_DIR/error.log" --tmpdir="$DB_DIR/tmp" \
        --user="$(id -un)" --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
        --performance-schema=OFF --character-set-server=utf8mb4 \
        --collation-server=utf8mb4_unicode_ci >/dev/null 2>&1 &
    DB_PID=$!
    for _ in $(seq 1 300); do
        mariadb --no-defaults --socket="$DB_SOCK" -e 'SELECT 1' >/dev/null 2>&1 && return 0
        kill -0 "$DB_PID" 2>/dev/null || fail "mariadbd exited during start-up: $(tail -n 5 "$DB_DIR/error.log")"
        sleep 0.1
    done
    fail "mariadbd did not answer in 30 s"
}

# SIGTERM (a clean shutdown, as an operator's restart would be) and wait for the exit: 30 s,
# then SIGKILL.
db_stop() {
    kill -TERM "$DB_PID"
    for _ in $(seq 1 300); do kill -0 "$DB_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DB_PID" 2>/dev/null
    wait "$DB_PID" 2>/dev/null
    DB_PID=
}

# --- helpers -----------------------------------------------------------------------------------
# events_field NAME: totals.events.NAME from iotctl --json stats.
events_field() {
    ctl --json stats --count 1
    [ "$RC" -eq 0 ] || { echo "?"; return; }
    json_get "j['totals']['events'].get('$1', '?')"
}

# wait_events_field NAME VALUE TRIES: poll stats every 0.2 s until totals.events.NAME == VALUE.
wait_events_field() {
    local v=
    for _ in $(seq 1 "$3"); do
        v=$(events_field "$1")
        [ "$v" = "$2" ] && return 0
        sleep 0.2
    done
    fail "totals.events.$1 is '$v' after $3 polls, want '$2'"
}

# wait_events_above NAME N TRIES: until totals.events.NAME > N.
wait_events_above() {
    local v=
    for _ in $(seq 1 "$3"); do
        v=$(events_field "$1")
        case "$v" in '' | *[!0-9]*) ;; *) [ "$v" -gt "$2" ] && return 0 ;; esac
        sleep 0.2
    done
    fail "totals.events.$1 is '$v' after $3 polls, want > $2"
}

# sim NAME DEVFILE ARGS...: start iotsim in the background (pid in $SIM), logs in $T_DIR.
sim() {
    local name=$1 devs=$2
    shift 2
    "$IOTSIM_BIN" -c "$addr" -f "$devs" --stats-interval 1 --duration 90 --exit-when-acked \
        --state-dir "$T_DIR/simstate" --ack-log "$T_DIR/ack-$name.log" "$@" \
        >"$T_DIR/sim-$name.log" 2>&1 &
    SIM=$!
    SIM_PIDS="$SIM_PIDS $SIM"
}

# sim_wait PID TRIES: iotsim must exit 0 (every event acknowledged) within TRIES * 0.2 s.
sim_wait() {
    local rc=0
    for _ in $(seq 1 "$2"); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$1" 2>/dev/null && fail "iotsim $1 still running: not every event was acknowledged in time"
    wait "$1" || rc=$?
    [ $rc -eq 0 ] || fail "iotsim exited with $rc"
}

# sim_stat LOG FIELD: FIELD from iotsim's final stats line.
sim_stat() {
    grep final "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# check NAME DEVICES...: stored events against the ack log of iotsim run NAME.
check() {
    local name=$1
    shift
    mkdir -p "$T_DIR/stored-$name"
    for d in "$@"; do
        expect 0 --json events --device "$d" --limit 10000
        printf '%s\n' "$OUT" >"$T_DIR/stored-$name/$d.json"
    done
    T_CHECKS=$((T_CHECKS + 1))
    python3 "$HERE/events_check.py" "$T_DIR/ack-$name.log" "$T_DIR/stored-$name" "$@" ||
        fail "($name) stored events do not match the acknowledged ones"
}

# --- set-up ------------------------------------------------------------------------------------
db_install
db_start
# A fixed device port: iotsim resolves the address once, and must find iotd there again after
# the restart of (b).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T_CONF" <<CONF
[iotd]
state_dir = $T_STATE
threads = 2
log_level = info
[devices]
listen = 127.0.0.1:$port
ping_s = 5
max_frame = 8192
max_in_flight = 256
[events]
spool_max_mb = 1
[database]
url = unix:$DB_SOCK
CONF
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')
expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 message add thermo temperature --tenant acme --direction event --args "value:float unit:str?"
blob_args=
for i in $(seq 0 15); do blob_args="$blob_args f$i:str"; done
expect 0 message add thermo blob --tenant acme --direction event --args "${blob_args# }"
expect 0 message add thermo echo --tenant acme --args "text:str"
for g in a b c; do
    : >"$T_DIR/dev-$g.jsonl"
    for i in 1 2 3 4; do
        expect 0 --json device add "$g$i" --tenant acme --type thermo
        printf '%s\n' "$OUT" >>"$T_DIR/dev-$g.jsonl"
    done
done
# r1 sends no event: it answers relayed requests for the whole test, so that relaying during
# the outage is checked on a device that is surely connected, however long a loaded machine
# takes (the bursts' devices leave once their events are acknowledged).
expect 0 --json device add r1 --tenant acme --type thermo
printf '%s\n' "$OUT" >"$T_DIR/dev-r.jsonl"
"$IOTSIM_BIN" -c "$addr" -f "$T_DIR/dev-r.jsonl" --stats-interval 0 --duration 600 \
    >"$T_DIR/sim-r.log" 2>&1 &
SIM_PIDS="$SIM_PIDS $!"
t_wait_online r1 True "$T_DIR/sim-r.log"
echo "set-up done after $((SECONDS - T_START_S)) s"

# --- (a) MariaDB stopped mid-burst, restarted: the spool carries the acknowledgements ---------
# 640 events at 40 a second: the devices must still be sending (and connected) through the
# checks below, which take seconds under a sanitizer on a loaded machine.
sim a "$T_DIR/dev-a.jsonl" --events 40 --event-count 640
wait_events_above stored 100 100
db_stop
echo "(a) mariadbd stopped after $((SECONDS - T_START_S)) s"
wait_events_field state spool 100
spooled0=$(events_field spooled)
acks0=$(wc -l <"$T_DIR/ack-a.log")
sleep 2
wait_events_above spooled "$spooled0" 50 # still acknowledging new events, from the spool
acks1=$(wc -l <"$T_DIR/ack-a.log")
T_CHECKS=$((T_CHECKS + 1))
[ "$acks1" -gt "$acks0" ] || fail "(a) no ACK reached the devices while the database was away"
echo "(a) $((acks1 - acks0)) ACKs while mariadbd was down (spooled $(events_field spooled))"
expect 0 --json send --tenant acme r1 echo still-relaying
contains still-relaying
expect 0 device list --tenant acme
contains a3
db_start
echo "(a) mariadbd restarted after $((SECONDS - T_START_S)) s"
sim_wait "$SIM" 300
wait_events_field state db 150
wait_events_field spool_bytes 0 50
[ "$(events_field replayed)" -gt 0 ] || fail "(a) nothing was replayed from the spool"
check a a1 a2 a3 a4

# --- (b) iotd killed with SIGKILL mid-burst, restarted: retransmissions, stored once ----------
sim b "$T_DIR/dev-b.jsonl" --events 50 --event-count 300
wait_events_above stored $(($(events_field stored) + 150)) 100
# Freeze iotd for half a second first, so that events the devices send meanwhile are surely
# received-but-not-acknowledged (or not even read) when it dies: they must be retransmitted.
kill -STOP "$T_PID"
sleep 0.5
kill -KILL "$T_PID"
wait "$T_PID" 2>/dev/null
T_PID=
echo "(b) iotd killed after $((SECONDS - T_START_S)) s"
sleep 1
t_start
echo "(b) iotd restarted after $((SECONDS - T_START_S)) s"
sim_wait "$SIM" 300
T_CHECKS=$((T_CHECKS + 2))
[ "$(sim_stat "$T_DIR/sim-b.log" reconnects)" -ge 4 ] || fail "(b) the devices did not reconnect"
resent=$(sim_stat "$T_DIR/sim-b.log" events_resent)
[ "${resent:-0}" -gt 0 ] || fail "(b) nothing was retransmitted: $(tail -n 1 "$T_DIR/sim-b.log")"
echo "(b) iotsim retransmitted $resent events; iotd counted $(events_field duplicates) duplicates since its restart"
check b b1 b2 b3 b4

# --- (c) spool bound reached: busy, retry, nothing lost ---------------------------------------
# 16 fields of 60 bytes: ~1.1 KB an event; 4 devices x 400 events are more than 1 MiB of spool.
fields=()
for i in $(seq 0 15); do fields+=(--field "f$i=$(printf "%060d" "$i")"); done
db_stop
echo "(c) mariadbd stopped after $((SECONDS - T_START_S)) s"
sim c "$T_DIR/dev-c.jsonl" --event blob "${fields[@]}" --events 200 --event-count 400 --outbox 512
wait_events_field state spool 100
wait_events_above busy 0 150
# The busy answers come from the spool bound (1 MiB), not from the in-memory queue.
spool_bytes=$(events_field spool_bytes)
T_CHECKS=$((T_CHECKS + 1))
[ "$spool_bytes" -gt $((900 * 1024)) ] || fail "(c) busy with a spool of only $spool_bytes bytes"
echo "(c) busy reached with a spool of $spool_bytes bytes"
sleep 1
db_start
echo "(c) mariadbd restarted after $((SECONDS - T_START_S)) s"
sim_wait "$SIM" 300
wait_events_field state db 150
wait_events_field spool_bytes 0 50
T_CHECKS=$((T_CHECKS + 2))
busy=$(sim_stat "$T_DIR/sim-c.log" events_busy)
echo "(c) iotsim got $busy busy answers; iotd: $(events_field busy) busy, $(events_field replayed) replayed"
[ "${busy:-0}" -gt 0 ] || fail "(c) iotsim counted no busy answers: $(tail -n 1 "$T_DIR/sim-c.log")"
rejected=$(sim_stat "$T_DIR/sim-c.log" events_rejected)
[ "${rejected:-0}" = 0 ] || fail "(c) $rejected events refused for good"
check c c1 c2 c3 c4

t_stop
echo "done after $((SECONDS - T_START_S)) s"
t_done
