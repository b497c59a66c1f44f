#!/usr/bin/env bash
# Failed handshakes are recorded aggregated (issue 17 §4): 200 wrong MACs from one address are
# not 200 rows of device_connections but a row for the first and one counting the rest of the
# minute; one address trying 50 ids holds a bounded number of rows; nothing is lost from the
# counts (the aggregates are written at the latest when iotd stops).
. "$(dirname "$0")/lib.sh"
client="python3 $(dirname "$0")/devclient.py"
T_DEVICES="listen = 127.0.0.1:0"
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')

expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 --json device add dev1 --tenant acme --type thermo
wrong=$(printf '%064d' 0)
sql() { mariadb --socket="$T_STATE/mariadb/run/mysqld.sock" -N -e "$1" 2>/dev/null; }

$client "$addr" --from 127.0.0.2 refused-n 200 dev1 thermo "$wrong" >/dev/null || fail "wrong MACs"
$client "$addr" --from 127.0.0.3 refused-ids 50 ghost thermo "$wrong" >/dev/null || fail "unknown ids"

# The first failures are there at once (in the next batch)...
for _ in $(seq 1 20); do
    n=$(sql "SELECT COUNT(*) FROM iotd.device_connections WHERE event='auth_failure' AND address LIKE '127.0.0.2%'")
    [ "${n:-0}" -ge 1 ] && break
    sleep 0.25
done
[ "${n:-0}" -ge 1 ] || fail "the first failure of 127.0.0.2 was not recorded"
sleep 1
# ...and bounded: a row per (address, id, reason) so far, at most 8 ids of one address.
rows2=$(sql "SELECT COUNT(*) FROM iotd.device_connections WHERE event='auth_failure' AND address LIKE '127.0.0.2%'")
rows3=$(sql "SELECT COUNT(*) FROM iotd.device_connections WHERE event='auth_failure' AND address LIKE '127.0.0.3%'")
T_CHECKS=$((T_CHECKS + 2))
[ "$rows2" -le 2 ] || fail "200 failures of one address and id made $rows2 rows"
[ "$rows3" -le 10 ] || fail "50 ids from one address made $rows3 rows"
[ "$(grep -c 'authentication failed (' "$T_LOG")" -le 12 ] || fail "a log line per failure"

# Stopping writes the counts of the minute; none is lost.
t_stop
t_start
total2=$(sql "SELECT SUM(count) FROM iotd.device_connections WHERE event='auth_failure' AND address LIKE '127.0.0.2%'")
total3=$(sql "SELECT SUM(count) FROM iotd.device_connections WHERE event='auth_failure' AND address LIKE '127.0.0.3%'")
rows2=$(sql "SELECT COUNT(*) FROM iotd.device_connections WHERE event='auth_failure' AND address LIKE '127.0.0.2%'")
T_CHECKS=$((T_CHECKS + 3))
[ "$total2" = 200 ] || fail "failures of 127.0.0.2 counted: $total2, want 200"
[ "$total3" = 50 ] || fail "failures of 127.0.0.3 counted: $total3, want 50"
[ "$rows2" -le 4 ] || fail "failures of 127.0.0.2 in $rows2 rows"
expect 0 --json device history dev1
[ "$(json_get 'sum(r["count"] for r in j["history"])')" = 200 ] || fail "history counts: $OUT"
t_stop
t_done
