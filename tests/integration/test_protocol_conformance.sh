#!/usr/bin/env bash
# Answers as iot-protocol(7) says (issue 17 §4): an unknown upper-case type is unknown_type;
# frames pipelined after LOGIN are handled after WELCOME, in order; SUBSCRIBE and LEASE check
# their arguments (keys, values, ttl, event names that are events); an item reaches a
# connection once however many of its subscriptions match; every busy carries retry=.
. "$(dirname "$0")/lib.sh"
client="python3 $(dirname "$0")/devclient.py"
T_DEVICES="listen = 127.0.0.1:0
max_in_flight = 1"
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')

expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 message add thermo read_temp --tenant acme
expect 0 message add thermo slow_op --tenant acme
expect 0 message add thermo temperature --tenant acme --direction event --args "value:float"
key() { expect 0 --json device add "$@"; json_get 'j["secret"]'; }
k1=$(key dev1 --tenant acme --type thermo)
k2=$(key dev2 --tenant acme --type thermo)
printf 'pw-alice\n' >"$T_DIR/pw"
expect 0 user add alice@acme --password-file "$T_DIR/pw"
expect 0 access grant user:alice device:dev1 --tenant acme --message temperature
expect 0 access grant user:alice device:dev2 --tenant acme --message slow_op

$client "$addr" serve dev2 thermo "$k2" >"$T_DIR/dev2.log" 2>&1 &
dev2=$!
for _ in $(seq 1 50); do grep -q serving "$T_DIR/dev2.log" && break; sleep 0.1; done

$client "$addr" client-script alice@acme >"$T_DIR/alice.log" 2>&1 <<'SCRIPT' &
# LOGIN, SUBSCRIBE and PING in one write: handled after WELCOME (the hub answers SUBSCRIBE
# when it is done, so the two answers may come in either order)
send iotd LOGIN 1 proto=1 password=pw-alice
send iotd SUBSCRIBE 3 device=dev1 event=temperature
send iotd PING 4
expect WELCOME 1
expect-set OK:3 PONG:4
send iotd FROB 5
expect ERROR 5 code=unknown_type
send iotd SUBSCRIBE 6 alarms=2
expect ERROR 6 code=bad_args msg=*
send iotd SUBSCRIBE 7 event=nosuch
expect ERROR 7 code=bad_args msg=*
send iotd SUBSCRIBE 8 colour=red
expect ERROR 8 code=bad_args msg=*
send iotd SUBSCRIBE 9 device=
expect ERROR 9 code=bad_args msg=*
send iotd SUBSCRIBE 10 event=read_temp
expect ERROR 10 code=bad_args msg=*
send iotd LEASE 11 device=dev1 event=temperature ttl=abc
expect ERROR 11 code=bad_args msg=*
send iotd LEASE 12 device=dev1 event=temperature ttl=4294967296
expect ERROR 12 code=bad_args msg=*
send iotd LEASE 13 device=dev1 event=temperature
expect ERROR 13 code=bad_args msg=*
send iotd LEASE 14 device=dev1 event=read_temp ttl=10
expect ERROR 14 code=unknown_type msg=*
# a second subscription matching the same events
send iotd SUBSCRIBE 15 event=temperature alarms=1
expect OK 15 sub=*
mark subscribed
expect EVENT 100 value=21.5
quiet 1.5
# one request waits at dev2 (never answered), the next is over max_in_flight
send dev2 slow_op 31
send dev2 slow_op 32
expect ERROR 32 code=busy retry=*
SCRIPT
alice=$!
for _ in $(seq 1 100); do grep -q subscribed "$T_DIR/alice.log" && break; sleep 0.1; done
grep -q subscribed "$T_DIR/alice.log" || fail "alice's script: $(cat "$T_DIR/alice.log")"
$client "$addr" event-script dev1 thermo "$k1" <<'SCRIPT' || fail "dev1's event"
send EVENT 100 temperature value=21.5
expect ACK 100
SCRIPT
wait $alice || fail "alice's script: $(cat "$T_DIR/alice.log")"
T_CHECKS=$((T_CHECKS + 1))

# The subscription limit's busy carries retry= too.
$client "$addr" subscribe-many alice@acme pw-alice 66 >"$T_DIR/many.log" 2>&1 \
    || fail "subscribe-many: $(cat "$T_DIR/many.log")"
grep -q "ok=64 busy=2" "$T_DIR/many.log" || fail "subscription limit: $(cat "$T_DIR/many.log")"
kill $dev2 2>/dev/null
t_stop
t_done
