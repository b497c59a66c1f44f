#!/usr/bin/env bash
# iotsim answers a device type it has no code for (issue 19): a new type "pump" with its own
# catalogue is demonstrated end to end through iotd with an answers file (--answers: fixed
# words, $ references to the request's args and the device's id, an ERROR answer) and the
# generic answer (--generic: the request's args) for the commands the file does not name;
# without --generic those are unknown_type. A bad answers file stops iotsim with its line.
. "$(dirname "$0")/lib.sh"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"
T_DEVICES="listen = 127.0.0.1:0"
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')

expect 0 tenant add acme
expect 0 type add pump --tenant acme
expect 0 message add pump read_level --tenant acme
expect 0 message add pump set_valve --tenant acme --args "valve:int state:str"
expect 0 message add pump reboot --tenant acme
expect 0 message add pump flush --tenant acme --args "litres:int?"
expect 0 --json device add pump-1 --tenant acme --type pump
printf '%s\n' "$OUT" >"$T_DIR/pump-1.json"
expect 0 --json device add pump-2 --tenant acme --type pump
printf '%s\n' "$OUT" >"$T_DIR/pump-2.json"

cat >"$T_DIR/pump.answers" <<'ANSWERS'
# the answers of a pump
read_level   level=42 unit=cm
set_valve    valve=$1 state=$2 by=$device
reboot       !error busy not while pumping
ANSWERS

# wait_online DEVICE: until iotd relays to it (bounded: 10 s).
wait_online() {
    for _ in $(seq 1 100); do
        ctl --json device show "$1"
        [ "$(json_get 'j["online"]')" = True ] && return 0
        sleep 0.1
    done
    fail "$1 did not come online"
}

"$IOTSIM_BIN" -c "$addr" --stats-interval 0 -f "$T_DIR/pump-1.json" --answers "$T_DIR/pump.answers" \
    --generic --duration 120 >"$T_DIR/sim1.log" 2>&1 &
sim1=$!
"$IOTSIM_BIN" -c "$addr" --stats-interval 0 -f "$T_DIR/pump-2.json" --answers "$T_DIR/pump.answers" \
    --duration 120 >"$T_DIR/sim2.log" 2>&1 &
sim2=$!
wait_online pump-1
wait_online pump-2

expect 0 --json send --tenant acme pump-1 read_level
[ "$(json_get '" ".join(j["args"])')" = "level=42 unit=cm" ] || fail "read_level: $OUT"
expect 0 --json send --tenant acme pump-1 set_valve 3 open
[ "$(json_get '" ".join(j["args"])')" = "valve=3 state=open by=pump-1" ] || fail "set_valve: $OUT"
expect 0 --json send --tenant acme pump-2 set_valve 1 closed
[ "$(json_get '" ".join(j["args"])')" = "valve=1 state=closed by=pump-2" ] || fail "set_valve 2: $OUT"
expect 12 send --tenant acme pump-1 reboot
contains busy
contains "not while pumping"
# Not in the file: the generic answer (the request's args) with --generic...
expect 0 --json send --tenant acme pump-1 flush 250
[ "$(json_get '" ".join(j["args"])')" = "250" ] || fail "generic flush: $OUT"
expect 0 --json send --tenant acme pump-1 flush
[ "$(json_get 'len(j["args"])')" = 0 ] || fail "generic flush without args: $OUT"
# ...and unknown_type from the device without it.
expect 12 send --tenant acme pump-2 flush 250
contains unknown_type

kill -INT "$sim1" "$sim2"
wait "$sim1" "$sim2" 2>/dev/null

# A bad answers file: iotsim refuses to start and names the line.
printf 'read_level ok\nRead_Level again\n' >"$T_DIR/bad.answers"
rc=0
"$IOTSIM_BIN" -c "$addr" -f "$T_DIR/pump-1.json" --answers "$T_DIR/bad.answers" --duration 5 \
    >"$T_DIR/bad.log" 2>&1 || rc=$?
T_CHECKS=$((T_CHECKS + 1))
[ "$rc" = 2 ] || fail "a bad answers file: exit $rc, want 2: $(cat "$T_DIR/bad.log")"
grep -q "bad.answers:2: the type must be lower case" "$T_DIR/bad.log" || fail "no line: $(cat "$T_DIR/bad.log")"
t_done
