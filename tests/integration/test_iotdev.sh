#!/usr/bin/env bash
# iotdev, the Linux device agent (issue 20), against a real iotd over TLS: requests run the
# programs of its commands dir (an answer one field per line, one split at spaces, a failing
# program's stderr as the ERROR's msg, a program killed at the timeout, a type without a
# program), events written to its FIFO acknowledged and stored (a bad line reported, nothing
# lost), events written while iotd is down journalled under the state dir, surviving a
# SIGKILL of the agent and stored once both are back, the sequence mark kept above them;
# a configuration error named with its line; SIGTERM says BYE.
. "$(dirname "$0")/lib.sh"
: "${IOTDEV_BIN:?IOTDEV_BIN must point at iotdev}"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -keyout "$T_DIR/key.pem" -out "$T_DIR/cert.pem" 2>/dev/null || fail "cannot make a test certificate"
# A fixed TLS port: the agent must find iotd there again after iotd's restart.
tls_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
T_DEVICES="listen = 127.0.0.1:0
tls_listen = 127.0.0.1:$tls_port
tls_cert = $T_DIR/cert.pem
tls_key = $T_DIR/key.pem
ping_s = 5"
t_start
expect 0 --json status
[ "$(json_get 'j["devices"]["tls_port"]')" = "$tls_port" ] || fail "tls port: $OUT"

expect 0 tenant add acme
expect 0 type add board --tenant acme
expect 0 message add board read_temp --tenant acme
expect 0 message add board echo --tenant acme --args "a:str b:str"
expect 0 message add board fail_op --tenant acme
expect 0 message add board slow_op --tenant acme --timeout 5000
expect 0 message add board reboot --tenant acme
expect 0 message add board many --tenant acme
expect 0 message add board temperature --tenant acme --direction event --args "value:float"
expect 0 --json device add pi-1 --tenant acme --type board
json_get 'j["secret"]' >"$T_DIR/secret"

mkdir -p "$T_DIR/commands"
cat >"$T_DIR/commands/read_temp" <<'EOF'
#!/bin/sh
printf '21.5\nC\n'
EOF
cat >"$T_DIR/commands/echo" <<'EOF'
#!/bin/sh
echo "$1 $2 $IOTDEV_ID"
EOF
cat >"$T_DIR/commands/fail_op" <<'EOF'
#!/bin/sh
echo "sensor unplugged" >&2
echo "second line" >&2
exit 3
EOF
cat >"$T_DIR/commands/slow_op" <<'EOF'
#!/bin/sh
exec sleep 30
EOF
printf '#!/bin/sh\necho 1 2 3 4 5 6 7 8 9\n' >"$T_DIR/commands/many"
chmod +x "$T_DIR"/commands/*
cat >"$T_DIR/iotdev.conf" <<EOF
# the agent of a test board
server = localhost:$tls_port
id = pi-1
type = board
secret_file = $T_DIR/secret
tls_ca = $T_DIR/cert.pem
commands_dir = $T_DIR/commands
state_dir = $T_DIR/agent-state
events = $T_DIR/events.fifo
command_timeout_s = 1
EOF

agent=
start_agent() {
    "$IOTDEV_BIN" -c "$T_DIR/iotdev.conf" >>"$T_DIR/agent.log" 2>&1 &
    agent=$!
}
trap 'r=$?; [ -n "$agent" ] && kill -KILL "$agent" 2>/dev/null; (exit $r); t_cleanup' EXIT
# --- usage: -h, -V, a bad option, a configuration error named with its line
"$IOTDEV_BIN" -h | grep -q "usage: iotdev" || fail "iotdev -h"
"$IOTDEV_BIN" -V | grep -q "^iotdev " || fail "iotdev -V"
rc=0
"$IOTDEV_BIN" -x 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "a bad option: exit $rc"
T_CHECKS=$((T_CHECKS + 3))
printf 'server = localhost:1\nbogus = 1\n' >"$T_DIR/bad.conf"
rc=0
"$IOTDEV_BIN" -c "$T_DIR/bad.conf" 2>"$T_DIR/bad.err" || rc=$?
[ $rc -eq 2 ] && grep -q "bad.conf:2: unknown key 'bogus'" "$T_DIR/bad.err" \
    || fail "bad config: exit $rc, $(cat "$T_DIR/bad.err")"

start_agent
t_wait_online pi-1 True "$T_DIR/agent.log"
grep -q "(TLS)" "$T_DIR/agent.log" || fail "not over TLS: $(cat "$T_DIR/agent.log")"

# --- requests run programs
expect 0 --json send --tenant acme pi-1 read_temp
[ "$(json_get 'j["args"]')" = "['21.5', 'C']" ] || fail "read_temp: $OUT"
expect 0 --json send --tenant acme pi-1 echo x y
[ "$(json_get 'j["args"]')" = "['x', 'y', 'pi-1']" ] || fail "echo: $OUT"
expect 12 send --tenant acme pi-1 fail_op
contains "code failed: sensor unplugged"
lacks "second line"
start=$(date +%s%N)
expect 12 send --tenant acme pi-1 slow_op
contains "code timeout"
[ $((($(date +%s%N) - start) / 1000000)) -lt 4500 ] || fail "slow_op was not killed after 1 s"
pgrep -f "sleep 30" -P "$agent" >/dev/null && fail "slow_op still runs"
expect 12 send --tenant acme pi-1 reboot
contains "code unknown_type"
expect 12 send --tenant acme pi-1 many
contains "code failed: more answer fields than the agent can send"

# --- events from the FIFO, acknowledged and stored; a bad line is reported and skipped
long=$(printf 'temperature value=1%0600d' 0)
printf 'temperature value=20.5\nno-equals-sign here\n%s\ntemperature value=20.6\n' "$long" \
    >"$T_DIR/events.fifo"
t_stored pi-1 temperature 2 "$T_DIR/agent.log"
grep -q "fields must be key=value" "$T_DIR/agent.log" || fail "bad event line not reported"
grep -q "event line longer than 511 bytes: dropped" "$T_DIR/agent.log" || fail "long line not reported"
T_CHECKS=$((T_CHECKS + 2))

# --- iotd down: events are journalled, survive a SIGKILL of the agent, and are stored later
t_stop
printf 'temperature value=30.1\ntemperature value=30.2\n' >"$T_DIR/events.fifo"
for _ in $(seq 1 100); do
    [ "$(wc -l <"$T_DIR/agent-state/outbox" 2>/dev/null)" = 2 ] && break
    sleep 0.1
done
[ "$(wc -l <"$T_DIR/agent-state/outbox")" = 2 ] || fail "journal: $(cat "$T_DIR/agent-state/outbox")"
mark=$(cat "$T_DIR/agent-state/seq")
[ "$mark" -ge 4 ] || fail "sequence mark $mark below the events sent"
kill -KILL "$agent"
wait "$agent" 2>/dev/null
t_start
start_agent
t_wait_online pi-1 True "$T_DIR/agent.log"
t_stored pi-1 temperature 4 "$T_DIR/agent.log"
ctl events --device pi-1 --csv
contains "30.1"
contains "30.2"
for _ in $(seq 1 100); do [ ! -s "$T_DIR/agent-state/outbox" ] && break; sleep 0.1; done
[ -s "$T_DIR/agent-state/outbox" ] && fail "journal not emptied: $(cat "$T_DIR/agent-state/outbox")"
T_CHECKS=$((T_CHECKS + 4))

# --- SIGTERM: BYE and exit 0
kill -TERM "$agent"
rc=0
wait "$agent" || rc=$?
agent=
[ $rc -eq 0 ] || fail "iotdev exited $rc after SIGTERM"
grep -q "said BYE" "$T_DIR/agent.log" || fail "no BYE: $(tail -n 5 "$T_DIR/agent.log")"
t_wait_online pi-1 False "$T_DIR/agent.log"
ctl events --device pi-1 --csv
[ "$(grep -c ',temperature,' <<<"$OUT")" -eq 4 ] || fail "stored events: $OUT"
T_CHECKS=$((T_CHECKS + 3))
t_stop
t_done
