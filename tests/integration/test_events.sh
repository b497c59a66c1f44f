#!/usr/bin/env bash
# Events and alarms (issue 5), through the protocol and iotctl: EVENT/ALARM acknowledged once
# stored, checked against the catalogue, duplicates (device, seq) acknowledged but stored once,
# also across a reconnect; the history (events, --csv); live streams (iotctl watch with tenant,
# device and --as filters; a native SUBSCRIBE held to the access map); alarm rules with
# hysteresis, a minimum duration and silence (and offline); the alarm lifecycle (raised,
# acknowledged by whom, cleared; no duplicate while open); device ALARM frames; leases started
# once for two watchers and stopped when the last one leaves; a watcher that stops reading
# loses items (and is told how many) while the others get every one.
. "$(dirname "$0")/lib.sh"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"
client="python3 $(dirname "$0")/devclient.py"
T_DEVICES="listen = 127.0.0.1:0
ping_s = 5
[events]
subscriber_backlog_kb = 16"
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')

expect 0 tenant add acme
expect 0 tenant add globex
expect 0 type add thermo --tenant acme
expect 0 type add thermo --tenant globex
expect 0 message add thermo start_temp --tenant acme
expect 0 message add thermo stop_temp --tenant acme
expect 0 message add thermo temperature --tenant acme --direction event --args "value:float unit:str?" \
    --start start_temp --stop stop_temp
expect 0 message add thermo overheat --tenant acme --direction event --args "value:float?"
expect 0 message add thermo door --tenant acme --direction event --args "open:bool"
expect 0 message add thermo temperature --tenant globex --direction event --args "value:float"
expect 2 message add thermo bad --tenant acme --direction event --start start_temp   # no --stop
expect 3 message add thermo bad --tenant acme --direction event --start nope --stop stop_temp
expect 0 message list thermo --tenant acme
contains start_temp
key() { expect 0 --json device add "$@"; json_get 'j["secret"]'; }
k1=$(key dev1 --tenant acme --type thermo)
k2=$(key dev2 --tenant acme --type thermo)
k3=$(key dev3 --tenant acme --type thermo)
kg=$(key g1 --tenant globex --type thermo)
printf 'pw-alice\n' >"$T_DIR/pw"
expect 0 user add alice@acme --password-file "$T_DIR/pw"
expect 0 user add bob@acme --password-file "$T_DIR/pw"
expect 0 access grant user:alice device:dev1 --tenant acme --message temperature
expect 0 access grant user:alice device:dev2 --tenant acme --message temperature

# --- watchers started before anything happens
"$IOTCTL_BIN" -s "$T_SOCK" watch --tenant acme --json >"$T_DIR/watch-all.log" 2>&1 &
w_all=$!
"$IOTCTL_BIN" -s "$T_SOCK" watch --device dev1 --event temperature >"$T_DIR/watch-dev1.log" 2>&1 &
w_dev1=$!
"$IOTCTL_BIN" -s "$T_SOCK" watch --as bob@acme --json >"$T_DIR/watch-bob.log" 2>&1 &
w_bob=$!
$client "$addr" subscribe alice@acme pw-alice 20 3 >"$T_DIR/sub-alice.log" 2>&1 &
s_alice=$!
sleep 1
# Her subscription must stand before the events are sent: LOGIN's Argon2 check alone takes
# seconds under ThreadSanitizer.
for _ in $(seq 1 300); do grep -q '^subscribed' "$T_DIR/sub-alice.log" && break; sleep 0.1; done
grep -q '^subscribed' "$T_DIR/sub-alice.log" || fail "alice's subscription: $(cat "$T_DIR/sub-alice.log")"

# --- the protocol: ACK once stored, errors for what the catalogue refuses, duplicates
$client "$addr" event-script dev1 thermo "$k1" <<'SCRIPT' || fail "event script of dev1"
send EVENT 1 temperature value=21.5 unit=C
expect ACK 1
send EVENT 2 nosuch value=1
expect ERROR 2 code=unknown_type
send EVENT 3 temperature value=warm
expect ERROR 3 code=bad_args
send EVENT 4 temperature unit=C
expect ERROR 4 code=bad_args
send EVENT 5 temperature value=22 colour=red
expect ERROR 5 code=bad_args
send EVENT 6 start_temp
expect ERROR 6 code=unknown_type
send ALARM 7 overheat value=90 state=burning
expect ERROR 7 code=bad_args
# a retransmission of an acknowledged event: acknowledged again, stored once
send EVENT 1 temperature value=21.5 unit=C
expect ACK 1
send EVENT 8 temperature value=22.5
expect ACK 8
reconnect
send EVENT 8 temperature value=22.5
expect ACK 8
send EVENT 9 temperature value=23.0 unit=C
expect ACK 9
send EVENT 10 door open=true
expect ACK 10
SCRIPT
expect 0 --json events --device dev1
[ "$(json_get '[(e["seq"], e["kind"], e["name"]) for e in j["events"]]')" = \
  "[(1, 'event', 'temperature'), (8, 'event', 'temperature'), (9, 'event', 'temperature'), (10, 'event', 'door')]" ] ||
    fail "stored events: $OUT"
[ "$(json_get 'j["events"][0]["fields"]')" = "{'value': '21.5', 'unit': 'C'}" ] || fail "fields: $OUT"
expect 0 events --device dev1 --name door
contains "open=true"
lacks temperature
expect 0 events --tenant acme --csv
contains "time,tenant,device,seq,kind,name,fields"
contains ",dev1,9,event,temperature,value=23.0 unit=C"
expect 0 events --tenant acme --since 1h --until 2099-01-01 --limit 2 --json
[ "$(json_get 'len(j["events"])')" = 2 ] || fail "--limit 2: $OUT"
expect 2 events --tenant acme --since yesterday-ish
expect 2 events                                        # neither --tenant nor --device
expect 0 --json events --tenant globex
[ "$(json_get 'len(j["events"])')" = 0 ] || fail "another tenant's history is not empty: $OUT"

# --- streams: the tenant watcher saw every stored event once; dev1's watcher only temperature;
# bob (no rule) nothing; alice's native subscription the three temperatures she may read
sleep 1
n=$(grep -c '"kind":"event"' "$T_DIR/watch-all.log")
[ "$n" = 4 ] || fail "tenant watcher saw $n events, want 4: $(cat "$T_DIR/watch-all.log")"
n=$(grep -c ' EVENT temperature seq=' "$T_DIR/watch-dev1.log")
[ "$n" = 3 ] || fail "dev1 temperature watcher saw $n lines: $(cat "$T_DIR/watch-dev1.log")"
grep -q 'dev1 EVENT temperature seq=9 value=23.0 unit=C' "$T_DIR/watch-dev1.log" ||
    fail "watch line format: $(cat "$T_DIR/watch-dev1.log")"
grep -q '"kind":"event"' "$T_DIR/watch-bob.log" && fail "bob saw events he may not read"
wait $s_alice
grep -q "received 3" "$T_DIR/sub-alice.log" || fail "alice's subscription: $(cat "$T_DIR/sub-alice.log")"
grep -q "EVENT dev1 9 temperature value=23.0 unit=C" "$T_DIR/sub-alice.log" ||
    fail "alice's frames: $(cat "$T_DIR/sub-alice.log")"
$client "$addr" subscribe alice@acme pw-alice 1 1 device=g1 >"$T_DIR/sub-x.log" 2>&1
grep -q "refused denied" "$T_DIR/sub-x.log" || fail "cross-tenant subscribe: $(cat "$T_DIR/sub-x.log")"
$client "$addr" subscribe-many alice@acme pw-alice 70 >"$T_DIR/sub-many.log" 2>&1
grep -q "ok=64 busy=6" "$T_DIR/sub-many.log" || fail "subscriptions per connection: $(cat "$T_DIR/sub-many.log")"

# --- alarm rules
expect 0 alarm rule add hot --tenant acme --event temperature --on device:dev1 --field value \
    --op '>' --threshold 30 --hysteresis 2 --severity major
expect 0 alarm rule add spike --tenant acme --event temperature --on device:dev2 --field value \
    --op '>=' --threshold 50 --for 1000
expect 0 alarm rule add quiet --tenant acme --event temperature --on device:dev3 --silence 2 \
    --severity critical
expect 5 alarm rule add hot --tenant acme --event temperature --field value --op '>' --threshold 1
expect 2 alarm rule add bad --tenant acme --event temperature --field value --op '=>' --threshold 1
expect 3 alarm rule add bad --tenant acme --event nosuch --field value --op '>' --threshold 1
expect 3 alarm rule add bad --tenant acme --event temperature --on device:g1 --field value \
    --op '>' --threshold 1
expect 0 alarm rule list --tenant acme
contains hot
contains quiet
sleep 0.5   # the engine reloads its rules

# hysteresis: 31 raises, 29.5 (within 2 of 30) keeps it, a second 35 does not duplicate it,
# 27.9 clears it
$client "$addr" event-script dev1 thermo "$k1" <<'SCRIPT' || fail "hysteresis script"
send EVENT 11 temperature value=31
expect ACK 11
sleep 0.3
send EVENT 12 temperature value=29.5
expect ACK 12
send EVENT 13 temperature value=35
expect ACK 13
sleep 0.3
SCRIPT
# dev1's alarms only: dev3's 2 s silence rule may already have fired on a loaded machine.
expect 0 --json alarm list --tenant acme --device dev1
[ "$(json_get '[(a["name"], a["state"], a["severity"]) for a in j["alarms"]]')" = \
  "[('hot', 'raised', 'major')]" ] || fail "open alarms after 31, 29.5, 35: $OUT"
hot_id=$(json_get 'j["alarms"][0]["id"]')
expect 0 alarm ack "$hot_id" --tenant acme
expect 5 alarm ack "$hot_id" --tenant acme                  # already acknowledged
expect 3 alarm ack 999999 --tenant acme
expect 3 alarm ack "$hot_id" --tenant globex                # another tenant's alarm
expect 0 --json alarm list --tenant acme --state acknowledged
[ "$(json_get 'j["alarms"][0]["acked_by"] is not None')" = True ] || fail "acked_by: $OUT"
$client "$addr" event-script dev1 thermo "$k1" <<'SCRIPT' || fail "clear script"
send EVENT 14 temperature value=27.9
expect ACK 14
sleep 0.3
SCRIPT
expect 0 --json alarm list --tenant acme --state all --device dev1
[ "$(json_get '[(a["name"], a["state"]) for a in j["alarms"]]')" = "[('hot', 'cleared')]" ] ||
    fail "hot after 27.9: $OUT"

# minimum duration: 55 then 20 within a second raises nothing; 60 held for a second raises
$client "$addr" event-script dev2 thermo "$k2" <<'SCRIPT' || fail "duration script"
send EVENT 1 temperature value=55
expect ACK 1
sleep 0.3
send EVENT 2 temperature value=20
expect ACK 2
sleep 1.2
SCRIPT
expect 0 --json alarm list --tenant acme --device dev2 --state all
[ "$(json_get 'len(j["alarms"])')" = 0 ] || fail "a 300 ms spike raised an alarm: $OUT"
$client "$addr" event-script dev2 thermo "$k2" <<'SCRIPT' || fail "duration script 2"
send EVENT 3 temperature value=60
expect ACK 3
sleep 1.6
SCRIPT
expect 0 --json alarm list --tenant acme --device dev2
[ "$(json_get '[a["name"] for a in j["alarms"]]')" = "['spike']" ] || fail "held 60 did not raise: $OUT"

# silence: dev3 says nothing for 2 s -> raised; an event clears it; going offline raises again
sleep 2.5
expect 0 --json alarm list --tenant acme --device dev3
[ "$(json_get '[(a["name"], a["severity"]) for a in j["alarms"]]')" = "[('quiet', 'critical')]" ] ||
    fail "silence did not raise: $OUT"
$client "$addr" event-script dev3 thermo "$k3" <<'SCRIPT' || fail "silence script"
send EVENT 1 temperature value=20
expect ACK 1
sleep 0.5
SCRIPT
sleep 0.5
expect 0 --json alarm list --tenant acme --device dev3 --state all
[ "$(json_get '[a["state"] for a in j["alarms"]]')" = "['raised', 'cleared']" ] ||
    fail "silence cleared by the event, raised again when dev3 went offline: $OUT"

# device ALARM frames enter the same lifecycle: raised once while open, then cleared
$client "$addr" event-script dev1 thermo "$k1" <<'SCRIPT' || fail "device alarm script"
send ALARM 15 overheat value=95 severity=critical msg=fan-stuck
expect ACK 15
send ALARM 16 overheat value=97
expect ACK 16
sleep 0.3
SCRIPT
expect 0 --json alarm list --tenant acme --device dev1
[ "$(json_get '[(a["name"], a["source"], a["severity"]) for a in j["alarms"]]')" = \
  "[('overheat', 'device', 'critical')]" ] || fail "device alarm: $OUT"
$client "$addr" event-script dev1 thermo "$k1" <<'SCRIPT' || fail "device alarm clear"
send ALARM 17 overheat state=cleared
expect ACK 17
sleep 0.3
SCRIPT
expect 0 --json alarm list --tenant acme --device dev1
[ "$(json_get 'len(j["alarms"])')" = 0 ] || fail "device alarm not cleared: $OUT"
expect 0 --json events --device dev1 --kind alarm
[ "$(json_get '[e["seq"] for e in j["events"]]')" = "[15, 16, 17]" ] || fail "alarm frames stored: $OUT"
expect 0 alarm rule remove spike --tenant acme
expect 3 alarm rule remove spike --tenant acme
sleep 0.5
expect 0 --json alarm list --tenant acme --device dev2 --state all
[ "$(json_get '[(a["state"]) for a in j["alarms"]]')" = "['cleared']" ] ||
    fail "removing a rule clears its alarm: $OUT"

# alarm changes reached the tenant watcher (raised, acknowledged, cleared), not dev1's
# temperature-only watcher's alarm-free lines... (it filters on the event name: hot is on
# temperature, so it does see those)
grep -q '"kind":"alarm".*"name":"hot".*"state":"raised"' "$T_DIR/watch-all.log" ||
    fail "raised not streamed: $(grep alarm "$T_DIR/watch-all.log")"
grep -q '"name":"hot".*"state":"acknowledged"' "$T_DIR/watch-all.log" || fail "ack not streamed"
grep -q '"name":"hot".*"state":"cleared"' "$T_DIR/watch-all.log" || fail "clear not streamed"
# the line iotctl(8) describes: state, severity, source, the rule's event, value, msg
grep -qE 'ALARM hot state=raised severity=[a-z]+ source=rule event=temperature value=[^ ]+ msg=' \
    "$T_DIR/watch-dev1.log" || fail "dev1 watcher: $(cat "$T_DIR/watch-dev1.log")"

# --- leases: two watchers with --start, one start command; the stop only when both are gone
$client "$addr" serve dev2 thermo "$k2" >"$T_DIR/dev2.log" 2>&1 &
dev2=$!
for _ in $(seq 1 50); do grep -q serving "$T_DIR/dev2.log" 2>/dev/null && break; sleep 0.1; done
"$IOTCTL_BIN" -s "$T_SOCK" watch --device dev2 --event temperature --start >/dev/null 2>&1 &
l1=$!
"$IOTCTL_BIN" -s "$T_SOCK" watch --device dev2 --event temperature --start >/dev/null 2>&1 &
l2=$!
sleep 1.5
[ "$(grep -c 'got start_temp' "$T_DIR/dev2.log")" = 1 ] || fail "start sent $(grep -c start_temp "$T_DIR/dev2.log") times"
expect 0 --json audit --device dev2 --user iotd             # iotd's own commands are audited, once
[ "$(json_get 'sum(a["message"] == "start_temp" for a in j["audit"])')" = 1 ] \
    || fail "start_temp audited other than once: $OUT"
kill -INT $l1; wait $l1
sleep 0.5
grep -q 'got stop_temp' "$T_DIR/dev2.log" && fail "stopped while a watcher remains"
kill -INT $l2; wait $l2
sleep 1
[ "$(grep -c 'got stop_temp' "$T_DIR/dev2.log")" = 1 ] || fail "stop not sent once: $(cat "$T_DIR/dev2.log")"
expect 2 watch --device dev2 --start                        # --start needs --event
expect 2 lease dev2 door --ttl 60 --tenant acme             # no start/stop commands
expect 0 lease dev2 temperature --ttl 1 --tenant acme       # an operator's lease, 1 s
sleep 0.5
[ "$(grep -c 'got start_temp' "$T_DIR/dev2.log")" = 2 ] || fail "operator lease did not start"
sleep 2
[ "$(grep -c 'got stop_temp' "$T_DIR/dev2.log")" = 2 ] || fail "operator lease did not expire"
$client "$addr" lease alice@acme pw-alice 0.5 device=dev2 event=temperature ttl=30 >"$T_DIR/lease.log"
grep -q "^OK ttl=30" "$T_DIR/lease.log" || fail "native LEASE: $(cat "$T_DIR/lease.log")"
sleep 0.5   # alice disconnected: her lease ended with her session
[ "$(grep -c 'got stop_temp' "$T_DIR/dev2.log")" = 3 ] || fail "native lease not released: $(cat "$T_DIR/dev2.log")"
$client "$addr" lease bob@acme pw-alice 0 device=dev2 event=temperature ttl=30 >"$T_DIR/lease.log"
grep -q "^ERROR code=denied" "$T_DIR/lease.log" || fail "bob's LEASE: $(cat "$T_DIR/lease.log")"
kill $dev2 2>/dev/null

# --- a slow watcher: one stops reading (SIGSTOP) during a burst of 4 x 1500 events; another
# gets all of them; the stopped one, once resumed, is told what it lost
for d in burst1 burst2; do
    "$IOTCTL_BIN" -s "$T_SOCK" --json device add $d --tenant acme --type thermo >>"$T_DIR/burst.jsonl" ||
        fail "device add $d"
done
"$IOTCTL_BIN" -s "$T_SOCK" watch --event door --json >"$T_DIR/watch-fast.log" 2>&1 &
w_fast=$!
"$IOTCTL_BIN" -s "$T_SOCK" watch --event door --json >"$T_DIR/watch-slow.log" 2>&1 &
w_slow=$!
sleep 0.5
kill -STOP $w_slow
"$IOTSIM_BIN" -c "$addr" -f "$T_DIR/burst.jsonl" --event door --field open=true --events 2000 \
    --event-count 3000 --outbox 512 --exit-when-acked --duration 60 --stats-interval 0 \
    >"$T_DIR/sim-burst.log" 2>&1 || fail "burst: iotsim did not get every event acknowledged: $(tail -3 "$T_DIR/sim-burst.log")"
for _ in $(seq 1 100); do
    [ "$(grep -c '"name":"door"' "$T_DIR/watch-fast.log")" -ge 6000 ] && break
    sleep 0.1
done
n=$(grep -c '"name":"door"' "$T_DIR/watch-fast.log")
[ "$n" = 6000 ] || fail "the reading watcher got $n of 6000 door events"
grep -q dropped "$T_DIR/watch-fast.log" && fail "the reading watcher was told it dropped items"
kill -CONT $w_slow
sleep 1
grep -q '"dropped":' "$T_DIR/watch-slow.log" ||
    fail "the stopped watcher was not told what it missed: $(grep -c door "$T_DIR/watch-slow.log") items, $(tail -c 300 "$T_DIR/watch-slow.log")"
slow=$(grep -c '"name":"door"' "$T_DIR/watch-slow.log")
[ "$slow" -lt 6000 ] || fail "the stopped watcher got everything: the backlog bound did not hold"
echo "slow watcher: got $slow of 6000, the rest reported dropped"
kill $w_fast $w_slow 2>/dev/null
wait $w_fast $w_slow 2>/dev/null

# --- the watchers end cleanly when the daemon stops
t_stop
for w in $w_all $w_dev1 $w_bob; do
    wait $w || fail "a watcher exited with $? at shutdown"
done
grep -q '"end"' "$T_DIR/watch-all.log" && fail "end message printed as an item"
t_done
