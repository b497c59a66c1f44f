#!/usr/bin/env bash
# Roles (issue 17 section 2): a viewer reads and watches what its access map lets it see but
# never sends a command, takes a lease or acknowledges an alarm, on every path (iotctl --as, a
# native client's requests and LEASE); an operator with the same rules may; a refusal names
# the role.
. "$(dirname "$0")/lib.sh"
client="python3 $(dirname "$0")/devclient.py"
T_DEVICES="listen = 127.0.0.1:0"
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')

expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 message add thermo echo --tenant acme --args "text:str"
expect 0 message add thermo start_temp --tenant acme
expect 0 message add thermo stop_temp --tenant acme
expect 0 message add thermo temperature --tenant acme --direction event --args "value:float" \
    --start start_temp --stop stop_temp
expect 0 --json device add dev1 --tenant acme --type thermo
k1=$(json_get 'j["secret"]')
printf 'role-password\n' >"$T_DIR/pw"
expect 0 user add vic@acme --role viewer --password-file "$T_DIR/pw"
expect 0 user add alice@acme --role operator --password-file "$T_DIR/pw"
expect 0 access grant user:vic device:dev1 --tenant acme
expect 0 access grant user:alice device:dev1 --tenant acme

$client "$addr" serve dev1 thermo "$k1" >"$T_DIR/dev1.log" 2>&1 &
for _ in $(seq 1 50); do grep -q serving "$T_DIR/dev1.log" 2>/dev/null && break; sleep 0.1; done

# Commands: iotctl --as, a native client's request, and what access check says.
expect 4 send --as vic@acme dev1 echo hi
contains "role viewer"
expect 0 send --as alice@acme dev1 echo hi
contains hi
$client "$addr" ask vic@acme role-password dev1 echo denied hi >"$T_DIR/ask.log" 2>&1 ||
    fail "viewer's native request: $(cat "$T_DIR/ask.log")"
grep -q "role viewer" "$T_DIR/ask.log" || fail "denial does not name the role: $(cat "$T_DIR/ask.log")"
$client "$addr" ask alice@acme role-password dev1 echo ok hi >/dev/null 2>&1 ||
    fail "operator's native request refused"
expect 4 access check user:vic dev1 echo --tenant acme
contains "role viewer"
expect 0 access check user:alice dev1 echo --tenant acme

# Leases: a native LEASE and iotctl watch --start --as; giving one up stays allowed.
$client "$addr" lease vic@acme role-password 0 device=dev1 event=temperature ttl=30 >"$T_DIR/lease.log"
grep -q "^ERROR code=denied msg=role viewer" "$T_DIR/lease.log" ||
    fail "viewer's LEASE: $(cat "$T_DIR/lease.log")"
$client "$addr" lease vic@acme role-password 0 device=dev1 event=temperature ttl=0 >"$T_DIR/lease.log"
grep -q "^OK" "$T_DIR/lease.log" || fail "viewer's LEASE ttl=0: $(cat "$T_DIR/lease.log")"
$client "$addr" lease alice@acme role-password 0 device=dev1 event=temperature ttl=30 >"$T_DIR/lease.log"
grep -q "^OK ttl=30" "$T_DIR/lease.log" || fail "operator's LEASE: $(cat "$T_DIR/lease.log")"
expect 4 watch --as vic@acme --device dev1 --event temperature --start --count 1
contains "role viewer"
# Watching without the lease is reading: allowed (the stream ends after its one item).
$client "$addr" subscribe vic@acme role-password 1 0 device=dev1 >"$T_DIR/sub.log" 2>&1
grep -q "^subscribed" "$T_DIR/sub.log" || fail "viewer's SUBSCRIBE: $(cat "$T_DIR/sub.log")"

# Alarms: acknowledging as a viewer is refused before the alarm is even looked up.
expect 4 alarm ack 999 --tenant acme --as vic@acme
contains "role viewer"
expect 3 alarm ack 999 --tenant acme --as alice@acme     # allowed; there is no alarm 999

expect 0 status
t_stop
t_done
