#!/usr/bin/env bash
# Cutting someone off (issue 17 section 1): device disable, rekey, kick and remove end the
# device's live session before they answer (BYE reason=..., the request waiting at it answered
# offline, the device offline by the time iotctl returns); user passwd, kick, role and remove
# end every session of the user; kicks change nothing in the registry (the device connects
# again) and are in the audit log. Also: a role change reaches the relay's per-thread check
# cache (section 2).
. "$(dirname "$0")/lib.sh"
client="python3 $(dirname "$0")/devclient.py"
T_DEVICES="listen = 127.0.0.1:0"
t_start
expect 0 --json status
addr=127.0.0.1:$(json_get 'j["devices"]["port"]')

expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 message add thermo echo --tenant acme --args "text:str"
expect 0 message add thermo hold_op --tenant acme --timeout 20000
expect 0 message add thermo start_temp --tenant acme
expect 0 message add thermo stop_temp --tenant acme
expect 0 message add thermo temp --tenant acme --direction event --args "value:float" \
    --start start_temp --stop stop_temp
expect 0 --json device add dev1 --tenant acme --type thermo
k1=$(json_get 'j["secret"]')
expect 0 --json device add dev2 --tenant acme --type thermo
k2=$(json_get 'j["secret"]')
printf 'cut-password\n' >"$T_DIR/pw"
expect 0 user add alice@acme --password-file "$T_DIR/pw"
expect 0 access grant user:alice type:thermo --tenant acme

# wait_for FILE TEXT: up to 5 s for a line starting with TEXT in FILE.
wait_for() {
    for _ in $(seq 1 50); do grep -q "^$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    fail "no '$2' in $1: $(cat "$1")"
}
# hold_device ID KEY: a device that keeps its session (never answers), logging to $T_DIR/ID.log.
hold_device() {
    $client "$addr" hold-device "$1" thermo "$2" >"$T_DIR/$1.log" 2>&1 &
    wait_for "$T_DIR/$1.log" online
}
# cut_device REASON ARGS...: with dev1 online and a request waiting at it, iotctl ARGS ends the
# session before it answers.
cut_device() {
    local reason=$1 rc=0
    shift
    hold_device dev1 "$k1"
    "$IOTCTL_BIN" -s "$T_SOCK" send --as alice@acme dev1 hold_op >"$T_DIR/send.log" 2>&1 &
    local sender=$!
    wait_for "$T_DIR/dev1.log" "got hold_op"
    expect 0 --json "$@"
    [ "$(json_get 'j["sessions_ended"]')" = 1 ] || fail "$*: sessions_ended: $OUT"
    local answer=$OUT
    wait "$sender" || rc=$?
    [ $rc -eq 9 ] || fail "$*: the waiting request exited $rc, want 9 (offline): $(cat "$T_DIR/send.log")"
    wait_for "$T_DIR/dev1.log" "BYE reason=$reason"
    wait_for "$T_DIR/dev1.log" closed
    OUT=$answer
}

# leases: how many the hub holds
leases() {
    expect 0 --json stats --count 1
    json_get 'j["totals"]["events"]["leases"]'
}

# --- devices
expect 0 lease dev1 temp --ttl 600 --tenant acme # held while dev1 is offline
[ "$(leases)" = 1 ] || fail "the lease on dev1 is not held: $OUT"
cut_device disabled device disable dev1
expect 0 --json device show dev1
[ "$(json_get 'j["online"]')" = False ] || fail "a disabled device still online: $OUT"
[ "$(leases)" = 0 ] || fail "a disabled device kept its lease: $OUT"
# An operator's lease is the operator's, not one iotctl process's: the next run releases it.
expect 0 lease dev2 temp --ttl 600 --tenant acme
[ "$(leases)" = 1 ] || fail "the lease on dev2 is not held: $OUT"
expect 0 lease dev2 temp --ttl 0 --tenant acme
[ "$(leases)" = 0 ] || fail "a second iotctl run did not release the operator's lease: $OUT"
$client "$addr" refused dev1 thermo "$k1" >/dev/null || fail "a disabled device connected again"
expect 0 device enable dev1

cut_device rekeyed device rekey dev1
new_key=$(json_get 'j["secret"]')
expect 0 --json device show dev1
[ "$(json_get 'j["online"]')" = False ] || fail "a rekeyed device still online: $OUT"
$client "$addr" refused dev1 thermo "$k1" >/dev/null || fail "the old key still works"
k1=$new_key

cut_device kicked device kick dev1
expect 0 --json device show dev1
[ "$(json_get 'j["online"]')" = False ] || fail "a kicked device still online: $OUT"
hold_device dev1 "$k1"                                      # a kick changes nothing: back at once
expect 0 --json status
generation=$(json_get 'j["registry"]["generation"]')
expect 0 --json device kick dev1
[ "$(json_get 'j["sessions_ended"]')" = 1 ] || fail "second kick: $OUT"
expect 0 --json status                                      # nothing reloaded, nothing published
[ "$(json_get 'j["registry"]["generation"]')" = "$generation" ] || fail "a kick published: $OUT"
wait_for "$T_DIR/dev1.log" "BYE reason=kicked"
expect 0 --json device kick dev1                            # not connected: nothing to end
[ "$(json_get 'j["sessions_ended"]')" = 0 ] || fail "kick of an offline device: $OUT"
expect 3 device kick nosuch

cut_device removed device remove dev1
expect 3 device show dev1
expect 0 --json status
[ "$(json_get 'j["devices"]["online"]')" = 0 ] || fail "a removed device still counted online: $OUT"

# --- users: every session of the user ends, on whatever thread it is
hold_user() {
    $client "$addr" hold-user alice@acme cut-password >"$T_DIR/$1.log" 2>&1 &
    wait_for "$T_DIR/$1.log" online
}
cut_user() {
    local reason=$1
    shift
    hold_user alice1
    hold_user alice2
    expect 0 --json "$@"
    [ "$(json_get 'j["sessions_ended"]')" = 2 ] || fail "$*: sessions_ended: $OUT"
    for s in alice1 alice2; do
        wait_for "$T_DIR/$s.log" "BYE reason=$reason"
        wait_for "$T_DIR/$s.log" closed
    done
}
cut_user password_changed user passwd alice@acme --password-file "$T_DIR/pw"
cut_user kicked user kick alice@acme
expect 3 user kick nobody@acme

# A role change ends the sessions, and the relay's per-thread cache of decisions (keyed by the
# registry's generation) does not let a new session of the user act on the old role.
$client "$addr" serve dev2 thermo "$k2" >"$T_DIR/dev2.log" 2>&1 &
wait_for "$T_DIR/dev2.log" serving
$client "$addr" ask alice@acme cut-password dev2 echo ok hi >/dev/null || fail "operator's echo"
cut_user role_changed user role alice@acme viewer
[ "$(json_get 'j["previous_role"]')" = operator ] || fail "user role: $OUT"
$client "$addr" ask alice@acme cut-password dev2 echo denied hi >"$T_DIR/ask.log" ||
    fail "a viewer's echo after the role change: $(cat "$T_DIR/ask.log")"
grep -q "role viewer" "$T_DIR/ask.log" || fail "denial does not name the role: $(cat "$T_DIR/ask.log")"
expect 2 user role alice@acme superuser

cut_user removed user remove alice@acme

# A tenant removed with everything in it takes its devices' and users' sessions along.
expect 0 tenant add globex
expect 0 type add thermo --tenant globex
expect 0 --json device add g1 --tenant globex --type thermo
hold_device g1 "$(json_get 'j["secret"]')"
expect 0 user add carol@globex --password-file "$T_DIR/pw"
$client "$addr" hold-user carol@globex cut-password >"$T_DIR/carol.log" 2>&1 &
wait_for "$T_DIR/carol.log" online
expect 0 --json tenant remove globex --force
[ "$(json_get 'j["sessions_ended"]')" = 2 ] || fail "tenant remove --force: $OUT"
wait_for "$T_DIR/g1.log" "BYE reason=removed"
wait_for "$T_DIR/carol.log" "BYE reason=removed"

# The kicks are in the audit log, by who did them.
expect 0 --json changes list --limit 100
[ "$(json_get 'sorted({c["action"] for c in j["changes"] if c["action"].endswith("kick")})')" = \
    "['device.kick', 'user.kick']" ] || fail "kicks not audited: $OUT"
contains "$(id -un) (uid=$(id -u) pid="
grep -q "control: device.kick dev1: 1 session ended" "$T_LOG" || fail "kick not logged"

expect 0 status
t_stop
t_done
