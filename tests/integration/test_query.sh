#!/usr/bin/env bash
# QUERY, a client's ACK of an alarm and SUBSCRIBE presence=1 (issue 18, iot-protocol(7),
# QUERIES) against a real iotd with iotsim devices, as four users: an admin, an operator with
# an access map limited to dev1, a viewer allowed to read dev1's temperature, and a user of
# another tenant. query_check.py drives them through the Python client and a browser's /ws:
# every what= for each user, paging with limit=2 across all rows, history windows, the ACK
# and its rights, presence when a device is stopped and started again, refused arguments.
. "$(dirname "$0")/lib.sh"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"
HERE=$(cd "$(dirname "$0")" && pwd)
PY_DIR=$(cd "$HERE/../../clients/python" && pwd)

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
T_DEVICES="listen = 127.0.0.1:$port
[web]
listen = 127.0.0.1:0
session_ttl_s = 600"
# The hung database below fails a statement after 5 s rather than the default 30.
T_DATABASE="statement_timeout_s = 5"
t_start
expect 0 --json status
web_port=$(json_get 'j["web"]["port"]')

for t in acme other; do expect 0 tenant add $t; done
expect 0 type add thermo --tenant acme
expect 0 message add thermo read_temp --tenant acme
expect 0 message add thermo echo --tenant acme --args "text:str"
expect 0 message add thermo temperature --tenant acme --direction event --args "value:float unit:str?"
expect 0 type add lamp --tenant acme
expect 0 message add lamp set --tenant acme --args "on:bool"
expect 0 type add thermo --tenant other
expect 0 message add thermo read_temp --tenant other
for d in dev1 dev2 dev3; do
    expect 0 --json device add $d --tenant acme --type thermo --name "Thermo $d"
    printf '%s\n' "$OUT" >"$T_DIR/$d.json"
done
expect 0 device add lamp1 --tenant acme --type lamp
expect 0 device add x1 --tenant other --type thermo
expect 0 group add kitchen --tenant acme --kind device
expect 0 group member add kitchen dev1 --tenant acme
expect 0 group member add kitchen lamp1 --tenant acme
printf 'q-secret-1\n' >"$T_DIR/pw"
expect 0 user add ada@acme --role admin --password-file "$T_DIR/pw"
expect 0 user add olga@acme --role operator --password-file "$T_DIR/pw"
expect 0 user add vic@acme --role viewer --password-file "$T_DIR/pw"
expect 0 user add eve@other --role admin --password-file "$T_DIR/pw"
expect 0 access grant user:olga device:dev1 --tenant acme
expect 0 access grant user:vic device:dev1 --tenant acme --message temperature
# Every temperature raises an alarm: one open alarm on each device that pushes events.
expect 0 alarm rule add hot --tenant acme --event temperature --on type:thermo --field value \
    --op '>' --threshold -1000 --severity major

mkdir -p "$T_DIR/sim"
sims=()
for d in dev1 dev2; do
    "$IOTSIM_BIN" -c "127.0.0.1:$port" --stats-interval 0 --state-dir "$T_DIR/sim" \
        -f "$T_DIR/$d.json" --events 20 >"$T_DIR/sim-$d.log" 2>&1 &
    sims+=($!)
done
for d in dev1 dev2; do
    for _ in $(seq 1 100); do
        ctl send --tenant acme "$d" echo up
        [ "$RC" = 0 ] && break
        sleep 0.1
    done
    [ "$RC" = 0 ] || fail "$d did not come online: $OUT"
done
# Enough stored events for paging, and the alarms raised.
for _ in $(seq 1 100); do
    expect 0 --json alarm list --tenant acme
    [ "$(json_get 'len(j["alarms"])')" -ge 2 ] && break
    sleep 0.1
done
[ "$(json_get 'len(j["alarms"])')" -ge 2 ] || fail "no alarms raised: $OUT"
sleep 1

T_CHECKS=$((T_CHECKS + 1))
PYTHONPATH="$PY_DIR:$HERE" python3 "$HERE/query_check.py" "$port" "$web_port" q-secret-1 \
    "$IOTSIM_BIN" "$T_DIR/dev3.json" "$T_DIR/sim" >"$T_DIR/check.log" 2>&1 ||
    fail "the query checks failed: $(tail -20 "$T_DIR/check.log")"
grep -c '^ok:' "$T_DIR/check.log"
T_CHECKS=$((T_CHECKS + $(grep -c '^ok:' "$T_DIR/check.log")))

# The ACK is recorded as the user who made it.
expect 0 --json alarm list --tenant acme --state all
[ "$(json_get "any(a['acked_by'] == 'olga@acme' for a in j['alarms'])")" = True ] ||
    fail "no alarm acknowledged by olga@acme: $OUT"
expect 0 --json changes list --tenant acme
[ "$(json_get "any(c['actor'] == 'olga@acme' and c['action'] == 'alarm.ack' and c['target'].startswith('alarm:') for c in j['changes'])")" = True ] ||
    fail "olga's ACK is not in the admin audit: $OUT"
T_CHECKS=$((T_CHECKS + 2))

# A database that does not answer: a query that needs it is refused busy retry=5 once the
# pool's timeouts pass, never left unanswered; devices and catalogue need no database.
db_pid=$(pgrep -f "datadir=$T_STATE/mariadb" | head -n 1)
[ -n "$db_pid" ] || fail "no private mariadbd found"
kill -STOP "$db_pid"
PYTHONPATH="$PY_DIR" timeout 150 python3 - "$port" >"$T_DIR/outage.log" 2>&1 <<'PY'
import sys, time
from iotd_client import Client, IotdError
c = Client("127.0.0.1", int(sys.argv[1]), user="ada@acme", password="q-secret-1", timeout=120,
           reconnect=False)
ok, rows = c._request_rows(["what=devices"], 10)
print("devices", ok.kv().get("rows"), len(rows))
t0 = time.time()
try:
    c._request_rows(["what=alarms"], 120)
    print("answered")
except IotdError as e:
    print("refused", e.code, e.retry, round(time.time() - t0))
PY
kill -CONT "$db_pid"
grep -q "^devices 4 4$" "$T_DIR/outage.log" || fail "devices without the database: $(cat "$T_DIR/outage.log")"
grep -q "^refused busy 5" "$T_DIR/outage.log" || fail "alarms without the database: $(cat "$T_DIR/outage.log")"
# Given up after statement_timeout_s (5 s, and the pool's retry), not the default 30 s.
[ "$(awk '/^refused/ {print $4}' "$T_DIR/outage.log")" -lt 25 ] ||
    fail "statement_timeout_s = 5 was not applied: $(cat "$T_DIR/outage.log")"
cat "$T_DIR/outage.log"
T_CHECKS=$((T_CHECKS + 3))

for p in "${sims[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
t_stop
t_done
