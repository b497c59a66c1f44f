#!/usr/bin/env bash
# A removed and re-added device starts fresh (issue 17 section 4): the old device's sequence
# high-water mark goes with it, so the new device's events numbered from 1 are stored, not
# acknowledged as duplicates and dropped; the old device's events stay in the history.
. "$(dirname "$0")/lib.sh"
client="python3 $(dirname "$0")/devclient.py"
T_DEVICES="listen = 127.0.0.1:0
ping_s = 5"
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')
expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 message add thermo temperature --tenant acme --direction event --args "value:float"
key() { expect 0 --json device add "$@"; json_get 'j["secret"]'; }

k_old=$(key dev1 --tenant acme --type thermo)
$client "$addr" event-script dev1 thermo "$k_old" <<'SCRIPT' || fail "events of the first dev1"
send EVENT 1 temperature value=1
expect ACK 1
send EVENT 2 temperature value=2
expect ACK 2
send EVENT 50 temperature value=50
expect ACK 50
SCRIPT

expect 0 device remove dev1
k_new=$(key dev1 --tenant acme --type thermo)
# The new device counts from 1 again: seq 1..3 are below the old mark (50).
$client "$addr" event-script dev1 thermo "$k_new" <<'SCRIPT' || fail "events of the new dev1"
send EVENT 1 temperature value=101
expect ACK 1
send EVENT 2 temperature value=102
expect ACK 2
send EVENT 3 temperature value=103
expect ACK 3
send EVENT 3 temperature value=103
expect ACK 3
SCRIPT

# Stored: the old device's three, then the new one's three (its retransmitted 3 once).
for _ in $(seq 1 50); do
    expect 0 --json events --device dev1 --tenant acme
    [ "$(json_get 'len(j["events"])')" = 6 ] && break
    sleep 0.1
done
got=$(json_get '[(e["seq"], e["fields"]["value"]) for e in j["events"]]')
T_CHECKS=$((T_CHECKS + 1))
[ "$got" = "[(1, '1'), (2, '2'), (50, '50'), (1, '101'), (2, '102'), (3, '103')]" ] ||
    fail "history of dev1: $got"
# The mark is the new device row's (sql/011): iotd stamps each event with the incarnation of
# the row that sent it, so a late event of the old row (spooled while MariaDB was away, replayed
# after the re-add) cannot raise it (tests/unit/events/test_store.c, test_incarnations).
mark=$(mariadb --socket="$T_STATE/mariadb/run/mysqld.sock" -N -e "SELECT s.last_seq,
    s.incarnation = d.incarnation, d.incarnation > 1 FROM event_seq s JOIN devices d
    ON d.id = s.device_id WHERE s.device_id = 'dev1'" iotd | tr '\t' ' ')
T_CHECKS=$((T_CHECKS + 1))
[ "$mark" = "3 1 1" ] || fail "dev1's mark (last_seq, same incarnation, re-added): '$mark'"
t_stop
t_done
