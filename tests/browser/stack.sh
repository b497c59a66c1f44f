# stack.sh - the stack the browser and JavaScript client tests run against, sourced after
# tests/integration/lib.sh: a real iotd (web listener, its own MariaDB) serving the build's
# console files, a registry with two tenants, users of each role, and iotsim devices.
#
# Tenant acme, type thermo (read_temp, echo text:str, set_pixel x:int y:int color:str, event
# temperature value:float unit:str): dev1 "Room one" (group lab; 2 events/s; started by the
# test itself so that it can be killed and restarted), dev2 (read_temp only for alice),
# dev3 (group lab; raises the alarm temperature, severity major, at connect).
# Users: alice@acme operator, vic@acme viewer, bob@other (tenant other, device odev1).
# Exports for node: WEB_URL, CTL_SOCK, DEV1_FILE, SIM_DIR, RULE_SET_PIXEL, passwords.
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"
: "${IOTD_WEB_ROOT:?IOTD_WEB_ROOT must point at the build's console files}"
: "${NODE_MODULES:?NODE_MODULES must point at the npm ci of the test's packages}"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
T_DEVICES="listen = 127.0.0.1:$port
[web]
listen = 127.0.0.1:0
root = $IOTD_WEB_ROOT
session_ttl_s = 600"
t_start
expect 0 --json status
web_port=$(json_get 'j["web"]["port"]')

for tenant in acme other; do
    expect 0 tenant add $tenant
    expect 0 type add thermo --tenant $tenant
    expect 0 message add thermo read_temp --tenant $tenant
    expect 0 message add thermo echo --tenant $tenant --args "text:str"
    expect 0 message add thermo set_pixel --tenant $tenant --args "x:int y:int color:str"
    expect 0 message add thermo temperature --tenant $tenant --direction event --args "value:float unit:str"
done
expect 0 group add lab --tenant acme --kind device
for d in dev1 dev2 dev3; do
    name=$d
    [ $d = dev1 ] && name="Room one"
    expect 0 --json device add $d --tenant acme --type thermo --name "$name"
    printf '%s\n' "$OUT" >"$T_DIR/$d.json"
done
expect 0 group member add lab dev1 --tenant acme
expect 0 group member add lab dev3 --tenant acme
expect 0 --json device add odev1 --tenant other --type thermo
printf '%s\n' "$OUT" >"$T_DIR/odev1.json"

printf 'alice-pw-1\n' >"$T_DIR/alice.pw"
printf 'vic-pw-1\n' >"$T_DIR/vic.pw"
printf 'bob-pw-1\n' >"$T_DIR/bob.pw"
expect 0 user add alice@acme --role operator --password-file "$T_DIR/alice.pw"
expect 0 user add vic@acme --role viewer --password-file "$T_DIR/vic.pw"
expect 0 user add bob@other --role operator --password-file "$T_DIR/bob.pw"
for m in read_temp echo temperature; do
    expect 0 access grant user:alice device:dev1 --tenant acme --message $m
done
expect 0 --json access grant user:alice device:dev1 --tenant acme --message set_pixel
RULE_SET_PIXEL=$(json_get 'j["rule"]')
expect 0 access grant user:alice device:dev2 --tenant acme --message read_temp
expect 0 access grant user:alice device:dev3 --tenant acme --message temperature
expect 0 access grant user:vic device:dev1 --tenant acme
expect 0 access grant user:bob device:odev1 --tenant other

# dev2, dev3 and odev1 stay connected for the whole test; dev1 is the test's own.
mkdir -p "$T_DIR/sim" "$T_DIR/sim1"
"$IOTSIM_BIN" -c "127.0.0.1:$port" --stats-interval 0 --state-dir "$T_DIR/sim" \
    -f "$T_DIR/dev2.json" -f "$T_DIR/odev1.json" >"$T_DIR/sim.log" 2>&1 &
SIMS=$!
"$IOTSIM_BIN" -c "127.0.0.1:$port" --stats-interval 0 --state-dir "$T_DIR/sim" \
    -f "$T_DIR/dev3.json" --alarm temperature:raised:major >"$T_DIR/sim3.log" 2>&1 &
SIM3=$!
stack_stop() {
    kill "$SIMS" "$SIM3" 2>/dev/null
    wait "$SIMS" "$SIM3" 2>/dev/null
}

export WEB_URL="http://127.0.0.1:$web_port" DEVICE_PORT=$port CTL_SOCK=$T_SOCK T_DIR
export DEV1_FILE=$T_DIR/dev1.json SIM_DIR=$T_DIR/sim1 RULE_SET_PIXEL
export ALICE_PW=alice-pw-1 VIC_PW=vic-pw-1 BOB_PW=bob-pw-1
