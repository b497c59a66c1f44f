#!/usr/bin/env bash
# Browsers as user sessions over /ws (issue 18, iot-websocket(7)) against a real iotd with an
# iotsim device: ws_session_check.py drives the WebSocket by hand (login, requests, denials,
# subscriptions, malformed and oversized messages, the session cookie, logout, Origin); then
# the relay audit must name the browser's user@tenant, like a native client's.
. "$(dirname "$0")/lib.sh"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"
HERE=$(cd "$(dirname "$0")" && pwd)

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
T_DEVICES="listen = 127.0.0.1:$port
[web]
listen = 127.0.0.1:0
session_ttl_s = 600"
t_start
expect 0 --json status
web_port=$(json_get 'j["web"]["port"]')

expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 message add thermo read_temp --tenant acme
expect 0 message add thermo echo --tenant acme --args "text:str"
expect 0 message add thermo set_pixel --tenant acme --args "x:int y:int color:str"
expect 0 message add thermo temperature --tenant acme --direction event --args "value:float unit:str?"
for d in dev1 dev2; do
    expect 0 --json device add $d --tenant acme --type thermo
    printf '%s\n' "$OUT" >"$T_DIR/$d.json"
done
printf 'ws-secret-1\n' >"$T_DIR/pw"
expect 0 user add alice@acme --password-file "$T_DIR/pw"
expect 0 access grant user:alice device:dev1 --tenant acme # dev2: nothing

mkdir -p "$T_DIR/sim"
"$IOTSIM_BIN" -c "127.0.0.1:$port" --stats-interval 0 --state-dir "$T_DIR/sim" -f "$T_DIR/dev1.json" \
    --events 4 >"$T_DIR/sim.log" 2>&1 &
SIM=$!
for _ in $(seq 1 100); do
    ctl send --tenant acme dev1 echo up
    [ "$RC" = 0 ] && break
    sleep 0.1
done
[ "$RC" = 0 ] || fail "dev1 did not come online: $OUT"

T_CHECKS=$((T_CHECKS + 1))
T_SOCK="$T_SOCK" python3 "$HERE/ws_session_check.py" "$web_port" alice@acme ws-secret-1 dev1 dev2 ||
    fail "the WebSocket session checks failed"

# Placement: a browser's session runs on its tenant's io thread, like a native one, however it
# starts (LOGIN after the upgrade, LOGIN in the upgrade's packet or in pieces, the cookie), so
# relays to the tenant's devices need no hop between threads. The listener accepts in turn:
# without the move, these sessions would be spread over both io threads.
mkfifo "$T_DIR/hold"
python3 "$HERE/ws_place_check.py" "$web_port" alice@acme ws-secret-1 dev1 3 <"$T_DIR/hold" \
    >"$T_DIR/place.log" 2>&1 &
placer=$!
exec 7>"$T_DIR/hold"
for _ in $(seq 1 100); do grep -q "^ready\|FAIL" "$T_DIR/place.log" && break; sleep 0.1; done
grep -q "^ready 8" "$T_DIR/place.log" || fail "browser sessions for placement: $(cat "$T_DIR/place.log")"
for _ in $(seq 1 50); do
    expect 0 --json stats --count 1
    spread=$(json_get 'sorted(t["sessions"] for t in j["threads"] if t["role"] == "io")')
    [ "$spread" = "[0, 9]" ] && break
    sleep 0.1
done
[ "$spread" = "[0, 9]" ] || fail "8 browser sessions and dev1 not on one io thread: $spread"
expect 0 --json stats --count 1
T_CHECKS=$((T_CHECKS + 2))
exec 7>&-
wait "$placer" || fail "ws_place_check.py: $(cat "$T_DIR/place.log")"

# The browser's requests are audited as alice@acme, like a native client's.
sleep 0.5
expect 0 --json audit --user alice@acme
[ "$(json_get "any(a['outcome'] == 'ok' and a['sender'] == 'alice@acme' for a in j['audit'])")" = True ] ||
    fail "no ok of alice@acme in the audit: $OUT"
[ "$(json_get "any(a['outcome'] == 'denied' and a['device'] == 'dev2' for a in j['audit'])")" = True ] ||
    fail "no denied of alice@acme to dev2 in the audit: $OUT"
T_CHECKS=$((T_CHECKS + 2))

kill "$SIM" 2>/dev/null
wait "$SIM" 2>/dev/null
t_stop
t_done
