#!/usr/bin/env bash
# The Python client library (clients/python, issue 18) against a real iotd with iotsim devices:
# the unit tests (frame codec; the client against a scripted fake server), then
# clients/python/tests/test_live.py (login refused and accepted, every outcome of a request,
# requests from threads, busy, subscriptions held to the access map, leases started, renewed
# and released), then a restart of iotd under a connected client, which must reconnect and
# resume its subscription and its lease.
. "$(dirname "$0")/lib.sh"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"
PY_DIR=$(cd "$(dirname "$0")/../../clients/python" && pwd)

# --- the codec, and the client's mechanics against a scripted fake server, need no iotd
for unit in test_codec.py test_client_fake.py; do
    python3 -m unittest discover -s "$PY_DIR/tests" -p "$unit" >"$T_DIR/unit.log" 2>&1 ||
        fail "$unit: $(cat "$T_DIR/unit.log")"
    T_CHECKS=$((T_CHECKS + 1))
    echo "$unit: $(grep '^Ran' "$T_DIR/unit.log") $(tail -1 "$T_DIR/unit.log")"
done

# A fixed port, so that the client finds the restarted daemon where it was.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
T_DEVICES="listen = 127.0.0.1:$port
ping_s = 5
max_in_flight = 4"
t_start

expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 message add thermo read_temp --tenant acme
expect 0 message add thermo echo --tenant acme --args "text:str"
expect 0 message add thermo set_pixel --tenant acme --args "x:int y:int color:str"
expect 0 message add thermo never_op --tenant acme --timeout 500      # iotsim --mute: timeout
expect 0 message add thermo hold_op --tenant acme --timeout 3000      # muted too: held requests
expect 0 message add thermo fail_op --tenant acme                     # iotsim --error: device
expect 0 message add thermo start_events --tenant acme
expect 0 message add thermo stop_events --tenant acme
expect 0 message add thermo temperature --tenant acme --direction event --args "value:float unit:str?" \
    --start start_events --stop stop_events
for d in dev1 dev2 dev3 dev4; do
    expect 0 --json device add $d --tenant acme --type thermo
    printf '%s\n' "$OUT" >"$T_DIR/$d.json"
done
printf 'py-secret-1\n' >"$T_DIR/pw"
expect 0 user add alice@acme --password-file "$T_DIR/pw"
expect 0 user add bob@acme --password-file "$T_DIR/pw"          # no access rules
for d in dev1 dev2 dev3 dev4; do expect 0 access grant user:alice device:$d --tenant acme; done

mkdir -p "$T_DIR/sim"
sim() { # NAME ARGS...: an iotsim in the background, its pid in SIM_<NAME>
    "$IOTSIM_BIN" -c "127.0.0.1:$port" --stats-interval 0 --state-dir "$T_DIR/sim" \
        --mute never_op --mute hold_op --error fail_op "${@:2}" >"$T_DIR/sim-$1.log" 2>&1 &
    eval "SIM_$1=\$!"
}
sim dev1 -f "$T_DIR/dev1.json" --events 4
sim quiet -f "$T_DIR/dev3.json" -f "$T_DIR/dev4.json"
online() { # DEVICE: answers an echo
    for _ in $(seq 1 100); do
        ctl send --tenant acme "$1" echo up
        [ "$RC" = 0 ] && return 0
        sleep 0.1
    done
    fail "$1 did not come online: $OUT"
}
for d in dev1 dev3 dev4; do online $d; done

export IOTD_HOST=127.0.0.1 IOTD_PORT=$port IOTD_USER=alice@acme IOTD_PASSWORD=py-secret-1 \
    IOTD_OTHER_USER=bob@acme IOTD_DEV=dev1 IOTD_DEV_OFFLINE=dev2 IOTD_DEV_LEASE=dev3 \
    IOTD_DEV_BUSY=dev4 IOTD_MAX_IN_FLIGHT=4
python3 "$PY_DIR/tests/test_live.py" Live >"$T_DIR/live.log" 2>&1 || fail "test_live.py Live:
$(cat "$T_DIR/live.log")"
T_CHECKS=$((T_CHECKS + 1))
grep -E '(ok|FAIL|ERROR|skipped.*)$' "$T_DIR/live.log"
grep -q "skipped" "$T_DIR/live.log" && fail "live tests skipped: $(cat "$T_DIR/live.log")"

# --- a restart under a connected client: it reconnects and resumes its subscription and lease
export IOTD_RESTART_READY=$T_DIR/restart-ready IOTD_RESTARTED=$T_DIR/restarted
python3 "$PY_DIR/tests/test_live.py" Restart >"$T_DIR/restart.log" 2>&1 &
restart_py=$!
for _ in $(seq 1 300); do
    [ -e "$IOTD_RESTART_READY" ] && break
    kill -0 $restart_py 2>/dev/null || break
    sleep 0.1
done
[ -e "$IOTD_RESTART_READY" ] || fail "restart phase did not get ready: $(cat "$T_DIR/restart.log")"
t_stop
t_start
touch "$IOTD_RESTARTED"
wait $restart_py || fail "test_live.py Restart:
$(cat "$T_DIR/restart.log")"
T_CHECKS=$((T_CHECKS + 1))
grep -E '(ok|FAIL|ERROR)$' "$T_DIR/restart.log"

kill -TERM $SIM_dev1 $SIM_quiet 2>/dev/null
wait $SIM_dev1 $SIM_quiet 2>/dev/null
t_stop
t_done
