#!/usr/bin/env bash
# iotsim -c with two servers (iotsim(1), -c): two iotd on loopback over one database (the second
# reaches the first one's MariaDB through its Unix socket, no cluster). Four devices spread
# over them, device i starting at address i mod 2; when the second iotd is killed, its devices
# move to the next address of the list and come back online on the first. Every wait is
# bounded by a count of polls. Then --source: the devices connect from 127.0.0.2.
. "$(dirname "$0")/lib.sh"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"

B_DIR=$T_DIR/b
B_SOCK=$B_DIR/state/control.sock
B_PID=
SIM_PID=
servers_cleanup() {
    local rc=$?
    [ -n "$SIM_PID" ] && kill -KILL "$SIM_PID" 2>/dev/null
    [ -n "$B_PID" ] && kill -KILL "$B_PID" 2>/dev/null
    if [ $rc -ne 0 ]; then
        [ -f "$T_DIR/sim.log" ] && { echo "---- iotsim (tail) ----"; tail -n 20 "$T_DIR/sim.log"; }
        [ -f "$B_DIR/iotd.log" ] && { echo "---- iotd b (tail) ----"; tail -n 20 "$B_DIR/iotd.log"; }
    fi
    (exit $rc)
    t_cleanup
}
trap servers_cleanup EXIT

T_DEVICES="listen = 127.0.0.1:0"
t_start
expect 0 tenant add acme
expect 0 type add thermo --tenant acme
: >"$T_DIR/devices.jsonl"
for i in 0 1 2 3; do
    expect 0 --json device add "sim-$i" --tenant acme --type thermo
    echo "$OUT" >>"$T_DIR/devices.jsonl"
done
addr_a=$(t_device_addr)

# The second iotd: its own state dir, the first one's database and secret key (the device
# secrets are stored encrypted under it).
mkdir -p "$B_DIR/state"
chmod 700 "$B_DIR/state"
cp -p "$T_STATE/secret.key" "$B_DIR/state/" || fail "no secret.key in $T_STATE"
cat >"$B_DIR/iotd.conf" <<CONF
[iotd]
state_dir = $B_DIR/state
threads = 2
log_level = debug
[devices]
listen = 127.0.0.1:0
[database]
url = unix:$T_STATE/mariadb/run/mysqld.sock/iotd
CONF
"$IOTD_BIN" -f -c "$B_DIR/iotd.conf" >>"$B_DIR/iotd.log" 2>&1 &
B_PID=$!
for _ in $(seq 1 600); do
    "$IOTCTL_BIN" -s "$B_SOCK" status >/dev/null 2>&1 && break
    kill -0 "$B_PID" 2>/dev/null || fail "the second iotd exited during start-up"
    sleep 0.1
done
OUT=$("$IOTCTL_BIN" -s "$B_SOCK" --json status) || fail "the second iotd did not become ready"
addr_b=127.0.0.1:$(json_get 'j["devices"]["port"]')

# online_on SOCK DEVICE: whether the iotd on SOCK has DEVICE online.
online_on() {
    OUT=$("$IOTCTL_BIN" -s "$1" --json device show "$2" 2>&1) || return 1
    [ "$(json_get 'j["online"]')" = True ]
}

"$IOTSIM_BIN" -c "$addr_a,$addr_b" -f "$T_DIR/devices.jsonl" --ping 1 --stats-interval 0 -v \
    >"$T_DIR/sim.log" 2>&1 &
SIM_PID=$!

# Spread: even devices on a, odd ones on b (and not on the other).
for i in 0 1 2 3; do
    if [ $((i % 2)) -eq 0 ]; then sock=$T_SOCK other=$B_SOCK; else sock=$B_SOCK other=$T_SOCK; fi
    for _ in $(seq 1 300); do online_on "$sock" "sim-$i" && break; sleep 0.1; done
    online_on "$sock" "sim-$i" || fail "sim-$i is not online on its first server: $OUT"
    T_CHECKS=$((T_CHECKS + 1))
    ! online_on "$other" "sim-$i" || fail "sim-$i is online on the other server too"
    T_CHECKS=$((T_CHECKS + 1))
done

# b dies: its devices come back on a, the next address of their list.
kill -KILL "$B_PID"
wait "$B_PID" 2>/dev/null
B_PID=
for i in 1 3; do
    for _ in $(seq 1 300); do online_on "$T_SOCK" "sim-$i" && break; sleep 0.1; done
    online_on "$T_SOCK" "sim-$i" || fail "sim-$i did not move to the remaining server: $OUT"
    T_CHECKS=$((T_CHECKS + 1))
done
for i in 0 2; do
    online_on "$T_SOCK" "sim-$i" || fail "sim-$i left the remaining server: $OUT"
    T_CHECKS=$((T_CHECKS + 1))
done
kill -TERM "$SIM_PID"
wait "$SIM_PID" || fail "iotsim exited with $? after SIGTERM"
SIM_PID=

# --source: the devices connect from the given loopback address, which iotd sees as theirs.
"$IOTSIM_BIN" -c "$addr_a" --source 127.0.0.2 -f "$T_DIR/devices.jsonl" --stats-interval 0 \
    >"$T_DIR/sim.log" 2>&1 &
SIM_PID=$!
# (The first iotsim's connection may still be closing: wait for the new one.)
from_source() { online_on "$T_SOCK" sim-0 && [[ $(json_get 'j["address"]') == 127.0.0.2:* ]]; }
for _ in $(seq 1 300); do from_source && break; sleep 0.1; done
from_source || fail "sim-0 is not online from 127.0.0.2 with --source: $OUT"
T_CHECKS=$((T_CHECKS + 1))
kill -TERM "$SIM_PID"
wait "$SIM_PID" || fail "iotsim --source exited with $? after SIGTERM"
SIM_PID=
# A source that is not a numeric address is an error at start (exit 3).
rc=0
"$IOTSIM_BIN" -c "$addr_a" --source localhost -f "$T_DIR/devices.jsonl" >"$T_DIR/bad.log" 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "iotsim --source localhost: exit $rc, want 3"
T_CHECKS=$((T_CHECKS + 1))

# A malformed address in the list is an error at start (exit 3), naming it.
rc=0
"$IOTSIM_BIN" -c "$addr_a,nocolon" -f "$T_DIR/devices.jsonl" >"$T_DIR/bad.log" 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "iotsim -c with a malformed address: exit $rc, want 3"
grep -q "nocolon" "$T_DIR/bad.log" || fail "the error does not name the address: $(cat "$T_DIR/bad.log")"
T_CHECKS=$((T_CHECKS + 2))
t_stop
t_done
