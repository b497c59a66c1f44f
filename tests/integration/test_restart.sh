#!/usr/bin/env bash
# Data survives a restart; SIGHUP reloads; a second iotd on the same socket is refused; SIGTERM
# exits 0 and stops the local mariadbd; iotctl reports an unreachable daemon with exit 6.
. "$(dirname "$0")/lib.sh"
t_start
printf 'correct horse battery\n' >"$T_DIR/pw"
expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 message add thermo read_temp --tenant acme
expect 0 device add dev1 --tenant acme --type thermo
expect 0 user add alice@acme --password-file "$T_DIR/pw"
expect 0 --json access grant user:alice device:dev1 --tenant acme

# A second daemon on the same state dir must refuse to start, leaving the first one serving.
if "$IOTD_BIN" -f -c "$T_CONF" >>"$T_DIR/second.log" 2>&1; then
    fail "a second iotd on the same control socket started"
fi
# (refused by the state_dir lock, before it reaches the control socket)
grep -q "is in use by another iotd" "$T_DIR/second.log" || fail "second iotd: $(cat "$T_DIR/second.log")"
expect 0 status

# SIGHUP with a changed log level is applied; an invalid file is refused and logged.
sed -i 's/log_level = debug/log_level = info/' "$T_CONF"
kill -HUP "$T_PID"
sleep 0.5
grep -q "reloaded configuration" "$T_LOG" || fail "SIGHUP did not reload"
echo "bogus = 1" >>"$T_CONF"
kill -HUP "$T_PID"
sleep 0.5
grep -q "keeping the running configuration" "$T_LOG" || fail "invalid reload not refused"
sed -i '/^bogus/d' "$T_CONF"
expect 0 status

t_stop
pgrep -f "datadir=$T_STATE/mariadb" >/dev/null && fail "mariadbd still running after iotd stopped"
expect 6 status
contains unreachable

t_start
expect 0 --json device show dev1
[ "$(json_get 'j["tenant"]')" = "acme" ] || fail "device lost over restart: $OUT"
expect 0 access check user:alice dev1 read_temp --tenant acme
expect 0 --json changes list
[ "$(json_get 'len(j["changes"])')" = "6" ] || fail "audit log over restart: $OUT"
t_stop
t_done
