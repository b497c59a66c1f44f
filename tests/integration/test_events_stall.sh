#!/usr/bin/env bash
# A hung MariaDB (issue 17 section 4): with the private mariadbd stopped by SIGSTOP while a
# device sends events, iotd stops waiting at [database] timeout_ms: the events are
# acknowledged from the spool within the deadline and a margin, the log says why, relaying
# goes on; after SIGCONT every event is in MariaDB exactly once.
. "$(dirname "$0")/lib.sh"
client="python3 $(dirname "$0")/devclient.py"
DB_PID=
stall_cleanup() {
    local rc=$?
    [ -n "$DB_PID" ] && kill -CONT "$DB_PID" 2>/dev/null
    (exit $rc)
    t_cleanup
}
trap stall_cleanup EXIT
T_DEVICES="listen = 127.0.0.1:0
ping_s = 30
[database]
timeout_ms = 1000"
t_config
# t_config wrote [database] url = local after our [database] lines: one section, both keys.
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')
expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 message add thermo temperature --tenant acme --direction event --args "value:float"
expect 0 message add thermo read_temp --tenant acme
expect 0 --json device add dev1 --tenant acme --type thermo
k1=$(json_get 'j["secret"]')
expect 0 --json device add dev2 --tenant acme --type thermo
k2=$(json_get 'j["secret"]')
printf 'alice-password\n' >"$T_DIR/pw"
expect 0 user add alice@acme --password-file "$T_DIR/pw"
expect 0 access grant user:alice device:dev2 --tenant acme
$client "$addr" serve dev2 thermo "$k2" >"$T_DIR/dev2.log" 2>&1 &
dev2=$!
for _ in $(seq 1 50); do grep -q serving "$T_DIR/dev2.log" 2>/dev/null && break; sleep 0.1; done

events_field() {
    ctl --json stats --count 1
    json_get "j['totals']['events'].get('$1', '?')"
}

$client "$addr" event-script dev1 thermo "$k1" <<'SCRIPT' || fail "events before the stall"
send EVENT 1 temperature value=1
expect ACK 1
send EVENT 2 temperature value=2
expect ACK 2
SCRIPT

DB_PID=$(pgrep -f "datadir=$T_STATE/mariadb" | head -n 1)
[ -n "$DB_PID" ] || fail "no private mariadbd found"
kill -STOP "$DB_PID"
echo "mariadbd $DB_PID stopped (SIGSTOP)"
# The four ACKs within 8 s in all: the first one waits for the deadline (1 s), the next ones
# go straight to the spool (or wait at most for a replay attempt's deadline). Without a
# deadline they would wait for the database, for as long as it hangs.
start=$(date +%s%N)
$client "$addr" event-script dev1 thermo "$k1" <<'SCRIPT' >"$T_DIR/stalled.log" 2>&1 || fail "events during the stall: $(cat "$T_DIR/stalled.log")"
send EVENT 3 temperature value=3
expect ACK 3
send EVENT 4 temperature value=4
expect ACK 4
send EVENT 5 temperature value=5
send EVENT 6 temperature value=6
expect ACK 5
expect ACK 6
SCRIPT
ms=$((($(date +%s%N) - start) / 1000000))
echo "4 events acknowledged in $ms ms with the database hung"
T_CHECKS=$((T_CHECKS + 1))
[ "$ms" -lt 8000 ] || fail "the events took $ms ms to be acknowledged (deadline 1000 ms)"
grep -q "events: the database has not answered .* within 1000 ms" "$T_LOG" ||
    fail "no log line names the stall"
T_CHECKS=$((T_CHECKS + 1))
[ "$(events_field state)" = spool ] || fail "state $(events_field state) during the stall"
# Relaying goes on (the registry is in memory).
$client "$addr" ask alice@acme alice-password dev2 read_temp ok || fail "relay during the stall"
T_CHECKS=$((T_CHECKS + 1))

kill -CONT "$DB_PID"
echo "mariadbd continued (SIGCONT)"
for _ in $(seq 1 300); do
    [ "$(events_field state)" = db ] && [ "$(events_field spool_bytes)" = 0 ] && break
    sleep 0.2
done
[ "$(events_field state)" = db ] || fail "state $(events_field state) after SIGCONT"
for _ in $(seq 1 50); do
    expect 0 --json events --device dev1 --tenant acme
    [ "$(json_get 'len(j["events"])')" -ge 6 ] && break
    sleep 0.2
done
got=$(json_get 'sorted(e["seq"] for e in j["events"])')
T_CHECKS=$((T_CHECKS + 1))
[ "$got" = "[1, 2, 3, 4, 5, 6]" ] || fail "stored after the stall: $got"
grep -q "events: the database answers again" "$T_LOG" || fail "no log line for the end of the stall"
T_CHECKS=$((T_CHECKS + 1))
kill "$dev2" 2>/dev/null
t_stop
t_done
