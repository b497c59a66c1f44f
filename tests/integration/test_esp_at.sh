#!/usr/bin/env bash
# A device on the ESP8266 AT transport (firmware/src/iotp_esp_at.c) against a real iotd
# (issue 20): esp_at_device (iotp_device + the AT driver + a POSIX UART) talks AT to a
# simulated modem (esp_at_modem.py) that bridges AT+CIPSTART to iotd's device listener, splits
# every reply into pieces of 1-4 bytes, interleaves +IPD blocks with command replies and answers
# some commands busy p.../busy s.... The device authenticates, answers a relayed command, has
# its events acknowledged and stored, and after an injected CLOSED reconnects by itself and
# goes on doing all three.
. "$(dirname "$0")/lib.sh"
: "${ESP_AT_DEVICE_BIN:?ESP_AT_DEVICE_BIN must point at esp_at_device}"
T_DEVICES="listen = 127.0.0.1:0
ping_s = 5"
t_start
expect 0 --json status
port=$(json_get 'j["devices"]["port"]')

expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 message add thermo read_temp --tenant acme
expect 0 message add thermo temperature --tenant acme --direction event --args "value:float"
expect 0 --json device add esp-1 --tenant acme --type thermo
key=$(json_get 'j["secret"]')

python3 "$(dirname "$0")/esp_at_modem.py" "$ESP_AT_DEVICE_BIN" esp-1 "$key" 127.0.0.1 "$port" 3 \
    >"$T_DIR/device.log" 2>&1 &
modem=$!
stop_modem() { kill -TERM "$modem" 2>/dev/null; wait "$modem" 2>/dev/null; }
trap 'r=$?; stop_modem; (exit $r); t_cleanup' EXIT

# wait_log PATTERN COUNT: until the device's log has COUNT lines matching PATTERN (30 s).
wait_log() {
    for _ in $(seq 1 300); do
        [ "$(grep -c -- "$1" "$T_DIR/device.log")" -ge "$2" ] && return 0
        sleep 0.1
    done
    fail "device log: fewer than $2 lines of '$1':
$(tail -n 30 "$T_DIR/device.log")"
}
# --- authenticated; the three events queued at boot acknowledged and stored
wait_log '^online' 1
t_wait_online esp-1 True "$T_DIR/device.log"
wait_log '^acked' 3
t_stored esp-1 temperature 3 "$T_DIR/device.log"
ctl events --device esp-1 --csv
contains ",temperature,"
contains "20.2"

# --- a relayed command answered through the modem
expect 0 --json send --tenant acme esp-1 read_temp
[ "$(json_get 'j["args"]')" = "['21.5', 'C']" ] || fail "read_temp answered '$OUT'"
wait_log '^answered' 1
# read_temp queued one more event: acknowledged
wait_log '^acked' 4
t_stored esp-1 temperature 4 "$T_DIR/device.log"

# --- the modem reports CLOSED: the device reconnects by itself and carries on
kill -USR1 "$modem"
wait_log 'modem: CLOSED (injected)' 1
wait_log '^lost' 1
wait_log '^online' 2
t_wait_online esp-1 True "$T_DIR/device.log"
expect 0 --json send --tenant acme esp-1 read_temp
[ "$(json_get 'j["args"]')" = "['21.5', 'C']" ] || fail "read_temp after the reconnect answered '$OUT'"
wait_log '^acked' 5
t_stored esp-1 temperature 5 "$T_DIR/device.log"

# The driver met what it must survive: busy answers and +IPD between reply lines.
grep -q 'modem: busy p' "$T_DIR/device.log" || fail "no busy p... was injected"
grep -q 'modem: busy s' "$T_DIR/device.log" || fail "no busy s... was injected"
T_CHECKS=$((T_CHECKS + 2))

# --- SIGTERM: BYE, CIPCLOSE, a clean exit; iotd sees the device go
stop_modem
summary=$(grep 'modem: device exit 0' "$T_DIR/device.log") || fail "device exit: $(tail -n 5 "$T_DIR/device.log")"
echo "$summary"
[[ "$summary" =~ ipd_in_reply=[1-9] ]] || fail "no +IPD came while the device waited for a reply"
t_wait_online esp-1 False "$T_DIR/device.log"
# No event stored twice: the retransmissions after the reconnect (if any) were deduplicated.
ctl events --device esp-1 --csv
[ "$(grep -c ',temperature,' <<<"$OUT")" -eq 5 ] || fail "stored events: $OUT"
T_CHECKS=$((T_CHECKS + 3))
trap t_cleanup EXIT
t_stop
t_done
