#!/usr/bin/env bash
# A cluster on one machine (issue 22, iotd-cluster(7)): three iotd nodes on loopback sharing
# the first node's MariaDB, joined by one nats-server. Checks: the node table in status on
# every node; a registry change made through one node visible on the others before iotctl
# returns; presence across nodes (device show's node); cross-node relay with ok, denied,
# offline, timeout and the device's own error, audited once; a revocation through A denying
# on B; watch on A seeing B's events, stored once; a duplicate device on a second node
# replacing the first connection; the cluster in the stats stream and iottop; a SIGKILLed node's devices gone from the others within
# node_timeout_ms, and its leases with them; leases held from two nodes on a third's device
# (one start, one stop); NATS killed and restarted, the nodes reconnecting and finding each other.
# (The deployment test with namespaces, a NATS cluster and Galera is tests/cluster/.)
. "$(dirname "$0")/lib.sh"
command -v nats-server >/dev/null || { echo "skip: no nats-server"; exit 77; }
client="python3 $(dirname "$0")/devclient.py"

nats_port=$(t_free_port)
nats_mon=$(t_free_port) # its monitoring port: what each node published
start_nats() {
    nats-server -a 127.0.0.1 -p "$nats_port" -m "$nats_mon" >>"$T_DIR/nats.log" 2>&1 &
    nats_pid=$!
    T_EXTRA_PIDS+=("$nats_pid")
    for _ in $(seq 1 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $nats_port), 1)" \
            2>/dev/null && return 0
        sleep 0.1
    done
    fail "nats-server did not listen on $nats_port"
}

HEARTBEAT_MS=200
NODE_TIMEOUT_MS=1000
cluster_section() {
    printf '[cluster]\nnats = nats://127.0.0.1:%s\nnode = %s\nheartbeat_ms = %s\nnode_timeout_ms = %s\n' \
        "$nats_port" "$1" "$HEARTBEAT_MS" "$NODE_TIMEOUT_MS"
}

# Node a: lib.sh's iotd, with its own MariaDB, which the other nodes share. It starts before
# NATS does: it serves anyway, says it is disconnected, and connects once NATS is there.
T_DEVICES="listen = 127.0.0.1:0
ping_s = 5"
t_config
cluster_section a >>"$T_CONF"
t_start
expect 0 --json status
addr_a=127.0.0.1:$(json_get 'j["devices"]["port"]')
[ "$(json_get 'j["cluster"]["node"]')" = a ] || fail "status has no cluster of node a: $OUT"
[ "$(json_get 'j["cluster"]["nats"]')" = disconnected ] || fail "a connected without NATS: $OUT"
[ "$(json_get '[n["node"] for n in j["cluster"]["nodes"]]')" = "['a']" ] || fail "nodes: $OUT"
start_nats

# Nodes b and c: their own state dirs and control sockets, the same database and secret key
# (device secrets are sealed with it).
declare -A NODE_PID NODE_SOCK
node_config() { # NAME
    local dir=$T_DIR/node-$1
    mkdir -p "$dir/state"
    cp "$T_STATE/secret.key" "$dir/state/secret.key"
    cat >"$dir/iotd.conf" <<CONF
[iotd]
state_dir = $dir/state
threads = 2
log_level = debug
[devices]
listen = 127.0.0.1:0
ping_s = 5
max_in_flight = 1000
[database]
url = unix:$T_STATE/mariadb/run/mysqld.sock/iotd
$(cluster_section "$1")
CONF
}
node_start() { # NAME
    local dir=$T_DIR/node-$1
    "$IOTD_BIN" -f -c "$dir/iotd.conf" >>"$dir/iotd.log" 2>&1 &
    NODE_PID[$1]=$!
    NODE_SOCK[$1]=$dir/state/control.sock
    T_EXTRA_PIDS+=("${NODE_PID[$1]}")
    for _ in $(seq 1 600); do
        "$IOTCTL_BIN" -s "${NODE_SOCK[$1]}" status >/dev/null 2>&1 && return 0
        kill -0 "${NODE_PID[$1]}" 2>/dev/null || fail "node $1 exited during start-up: $(tail -n 20 "$dir/iotd.log")"
        sleep 0.1
    done
    fail "node $1 did not become ready in 60 s"
}
NODE_SOCK[a]=$T_SOCK
# on NODE ARGS...: iotctl against node NODE; expect_on STATUS NODE ARGS...
on() {
    local node=$1
    shift
    OUT=$("$IOTCTL_BIN" -s "${NODE_SOCK[$node]}" "$@" 2>&1) && RC=0 || RC=$?
}
expect_on() {
    local want=$1 node=$2
    shift 2
    on "$node" "$@"
    T_CHECKS=$((T_CHECKS + 1))
    [ "$RC" -eq "$want" ] || fail "iotctl on $node: $* -> exit $RC, want $want; output:
$OUT"
}
# wait_nodes NODE "a,b,c": until NODE's status lists exactly these live nodes, at most 20 s.
wait_nodes() {
    for _ in $(seq 1 200); do
        on "$1" --json status
        [ "$RC" -eq 0 ] && [ "$(json_get '",".join(n["node"] for n in j["cluster"]["nodes"])')" = "$2" ] &&
            return 0
        sleep 0.1
    done
    fail "node $1 does not list nodes $2: $OUT"
}
# device_node NODE DEVICE: where NODE says DEVICE is online ("-" if offline).
device_node() {
    on "$1" --json device show "$2"
    json_get '(j.get("node") or "?") if j["online"] else "-"'
}
wait_device_node() { # NODE DEVICE WANT [TIMEOUT_MS]
    local tries=$(((${4:-20000} + 49) / 50)) got=
    for _ in $(seq 1 "$tries"); do
        got=$(device_node "$1" "$2")
        [ "$got" = "$3" ] && return 0
        sleep 0.05
    done
    fail "node $1 says $2 is on '$got', want '$3'"
}

node_config b
node_config c
node_start b
node_start c
for n in a b c; do wait_nodes $n a,b,c; done
on a --json status
[ "$(json_get 'j["cluster"]["nats"]')" = connected ] || fail "nats link: $OUT"
on a status
contains "cluster:"
# The stats stream (iotctl stats, iottop) has the cluster as status has it.
expect_on 0 b --json stats --count 1
[ "$(json_get '",".join(n["node"] for n in j["cluster"]["nodes"])')" = a,b,c ] || fail "stats' nodes: $OUT"
[ "$(json_get 'j["cluster"]["node"] + " " + j["cluster"]["nats"]')" = "b connected" ] || fail "stats: $OUT"
[ "$(json_get '"requests_out" in j["cluster"]["traffic"]')" = True ] || fail "stats' traffic: $OUT"
OUT=$("$IOTTOP_BIN" -s "${NODE_SOCK[b]}" -b -n 1 2>&1) || fail "iottop -b on b: $OUT"
contains "cluster: node b, NATS connected; nodes a 0, b 0, c 0; requests to other nodes 0"
OUT=$("$IOTTOP_BIN" -s "$T_SOCK" -b -n 1 --json 2>&1) || fail "iottop -b --json on a: $OUT"
[ "$(json_get '[n["node"] for n in j["cluster"]["nodes"]]')" = "['a', 'b', 'c']" ] || fail "iottop's cluster: $OUT"

# --- the registry, changed through a: on b and c before iotctl on a has returned
expect_on 0 a tenant add acme
expect_on 0 b tenant show acme
expect_on 0 a type add thermo --tenant acme
expect_on 0 a message add thermo echo --tenant acme --args "text:str"
expect_on 0 a message add thermo never_op --tenant acme --timeout 400
expect_on 0 a message add thermo fail_op --tenant acme
expect_on 0 a message add thermo temperature --tenant acme --direction event --args "value:float"
expect_on 0 a message add thermo start_temp --tenant acme
expect_on 0 a message add thermo stop_temp --tenant acme
expect_on 0 a message add thermo level --tenant acme --direction event --args "value:float" \
    --start start_temp --stop stop_temp
key() { expect_on 0 a --json device add "$@"; json_get 'j["secret"]'; }
k1=$(key dev1 --tenant acme --type thermo)
expect_on 0 c device show dev1
key dev2 --tenant acme --type thermo >/dev/null # never connects: offline
k3=$(key dev3 --tenant acme --type thermo)
k4=$(key dev4 --tenant acme --type thermo)
printf 'alice-password\n' >"$T_DIR/pw"
expect_on 0 a user add alice@acme --password-file "$T_DIR/pw"
expect_on 0 a user add bob@acme --password-file "$T_DIR/pw"
expect_on 0 a --json access grant user:alice device:dev1 --tenant acme
alice_rule=$(json_get 'j["rule"]')
expect_on 0 a access grant user:alice device:dev2 --tenant acme
expect_on 0 a access grant user:alice device:dev3 --tenant acme
expect_on 0 a access grant user:alice device:dev4 --tenant acme --message temperature
expect_on 0 b --json access check user:alice@acme dev1 echo
[ "$(json_get 'j["decision"]')" = allow ] || fail "the grant through a does not hold on b: $OUT"

# --- presence across nodes: dev1 on b, dev3 on a
on b --json status
addr_b=127.0.0.1:$(json_get 'j["devices"]["port"]')
on c --json status
addr_c=127.0.0.1:$(json_get 'j["devices"]["port"]')
$client "$addr_b" serve dev1 thermo "$k1" >"$T_DIR/dev1.log" 2>&1 &
dev1=$!
$client "$addr_a" serve dev3 thermo "$k3" >"$T_DIR/dev3.log" 2>&1 &
dev3=$!
wait_device_node b dev1 b
wait_device_node a dev1 b
wait_device_node c dev1 b
wait_device_node b dev3 a
on a --json status
[ "$(json_get '[(n["node"], n["devices"]) for n in j["cluster"]["nodes"]]')" = \
    "[('a', 1), ('b', 1), ('c', 0)]" ] || fail "devices per node: $OUT"

# --- cross-node relay: every outcome, from a (and c) to dev1 on b, from b to dev3 on a
expect_on 0 a send --as alice@acme dev1 echo "hello over nats"
[ "$OUT" = "hello over nats" ] || fail "cross-node answer: $OUT"
expect_on 0 c send --as alice@acme dev1 echo "from c"
expect_on 0 b send --as alice@acme dev3 echo "to a"
[ "$OUT" = "to a" ] || fail "b to a: $OUT"
expect_on 0 a send --tenant acme dev1 echo operator # the operator, tenant-scoped
expect_on 4 a send --as bob@acme dev1 echo x        # denied, on the sender's node
expect_on 9 a send --as alice@acme dev2 echo x      # offline: nowhere
expect_on 10 a send --as alice@acme dev1 never_op   # the device does not answer in time
expect_on 12 a send --as alice@acme dev1 fail_op    # the device's own ERROR
grep -q "got echo hello over nats" "$T_DIR/dev1.log" || fail "dev1 did not see the request"
# A native client on a, to dev1 on b.
$client "$addr_a" ask alice@acme alice-password dev1 echo ok native || fail "native cross-node"
# Audited once, on the sender's node: the shared database has one row for the request.
expect_on 0 a --json audit --device dev1 --limit 100
n=$(json_get 'sum(1 for r in j["audit"] if r["message"] == "fail_op")')
[ "$n" = 1 ] || fail "fail_op audited $n times: $OUT"

# What crossed, as status counts it: a sent its requests to b, which ran them.
on a --json status
[ "$(json_get 'j["cluster"]["traffic"]["requests_out"] >= 5 and j["cluster"]["traffic"]["answers_in"] >= 5')" = True ] ||
    fail "a's traffic: $OUT"
on b --json status
[ "$(json_get 'j["cluster"]["traffic"]["requests_in"] >= 6 and j["cluster"]["traffic"]["changes_in"] >= 10')" = True ] ||
    fail "b's traffic: $OUT"

# --- many requests in flight across nodes at once (batched, iotd-cluster(7)): echo and the
# device's ERROR from a to dev1 on b, requests the device never answers from c (b times them
# out), requests to dev2 (offline everywhere), all pipelined together. Every outcome right,
# none lost, each answer its own request's, the device seeing the echoes in the order sent,
# each audited once, and fewer NATS messages from a than requests it sent.
nats_in_msgs() { # NODE: messages NODE's connection has published, as nats-server counts them
    python3 - "$nats_mon" "iotd-$1" <<'PY'
import json, sys, urllib.request
j = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/connz", timeout=5))
print(sum(c["in_msgs"] for c in j["connections"] if c.get("name") == sys.argv[2]))
PY
}
audit_count() { # MESSAGE OUTCOME: dev1's audited MESSAGEs with OUTCOME
    expect_on 0 a --json audit --device dev1 --limit 10000
    json_get "sum(1 for r in j['audit'] if r['message'] == '$1' and r['outcome'] == '$2')"
}
N_ECHO=300 N_FAIL=100 N_NEVER=40 N_OFF=50
echo_before=$(audit_count echo ok)
fail_before=$(audit_count fail_op error)
msgs_before=$(nats_in_msgs a)
$client "$addr_a" flood-echo alice@acme alice-password dev1 $N_ECHO >"$T_DIR/flood-echo.log" 2>&1 &
f_echo=$!
$client "$addr_a" flood alice@acme alice-password dev1 fail_op $N_FAIL device >"$T_DIR/flood-fail.log" 2>&1 &
f_fail=$!
$client "$addr_c" flood alice@acme alice-password dev1 never_op $N_NEVER timeout >"$T_DIR/flood-never.log" 2>&1 &
f_never=$!
$client "$addr_a" flood alice@acme alice-password dev2 never_op $N_OFF offline >"$T_DIR/flood-off.log" 2>&1 &
f_off=$!
for f in echo fail never off; do
    pid_var=f_$f
    wait "${!pid_var}" || fail "the $f flood: $(cat "$T_DIR/flood-$f.log")"
done
msgs=$(($(nats_in_msgs a) - msgs_before))
echo "node a published $msgs NATS messages for $((N_ECHO + N_FAIL)) requests to b (and its heartbeats)"
[ "$msgs" -le $(((N_ECHO + N_FAIL) / 2)) ] || fail "not batched: $msgs messages from a"
got=$(grep -o '^got echo m[0-9]*' "$T_DIR/dev1.log" | sed 's/.* m//' | tr '\n' ' ')
[ "$got" = "$(seq -s ' ' 1 $N_ECHO) " ] || fail "dev1 saw the echoes out of order or not all: $got"
for _ in $(seq 1 100); do
    [ "$(audit_count echo ok)" -ge $((echo_before + N_ECHO)) ] &&
        [ "$(audit_count fail_op error)" -ge $((fail_before + N_FAIL)) ] && break
    sleep 0.1
done
n=$(audit_count echo ok)
[ "$n" = $((echo_before + N_ECHO)) ] || fail "echo audited $n times, want $((echo_before + N_ECHO))"
n=$(audit_count fail_op error)
[ "$n" = $((fail_before + N_FAIL)) ] || fail "fail_op audited $n times, want $((fail_before + N_FAIL))"

# --- leases counted cluster-wide: dev1 is on b, the holders on a and c; b sends one start
# (count_in FILE WORD: how many lines of FILE have "got WORD")
count_in() { grep -c "got $2" "$1" || true; }
wait_count() { # FILE WORD WANT TIMEOUT_MS
    for _ in $(seq 1 $((($4 + 49) / 50))); do
        [ "$(count_in "$1" "$2")" = "$3" ] && return 0
        sleep 0.05
    done
    fail "$2 seen $(count_in "$1" "$2") times in $1, want $3: $(cat "$1")"
}
expect_on 0 a lease dev1 level --ttl 60 --tenant acme
expect_on 0 c lease dev1 level --ttl 60 --tenant acme
wait_count "$T_DIR/dev1.log" start_temp 1 5000
sleep 0.5
[ "$(count_in "$T_DIR/dev1.log" start_temp)" = 1 ] || fail "start sent twice: $(cat "$T_DIR/dev1.log")"
expect_on 0 a lease dev1 level --ttl 0 --tenant acme # c still holds it
sleep 1
[ "$(count_in "$T_DIR/dev1.log" stop_temp)" = 0 ] || fail "stopped while c holds it"
expect_on 0 c lease dev1 level --ttl 0 --tenant acme # the last holder: stop
wait_count "$T_DIR/dev1.log" stop_temp 1 5000
# c renews its hold every 2 s: its lease at b (which would expire node_timeout_ms + 4 s after a
# renewal) is still held after 6 s.
expect_on 0 c lease dev1 level --ttl 60 --tenant acme
wait_count "$T_DIR/dev1.log" start_temp 2 5000
sleep 6
[ "$(count_in "$T_DIR/dev1.log" stop_temp)" = 1 ] || fail "c's lease ended by itself"
expect_on 0 c lease dev1 level --ttl 0 --tenant acme
wait_count "$T_DIR/dev1.log" stop_temp 2 5000
# Disabling dev2 through a ends c's lease of it (dev2 is offline: held, not started).
leases_on() { on "$1" --json stats --count 1; json_get 'j["totals"]["events"]["leases"]'; }
expect_on 0 c lease dev2 level --ttl 600 --tenant acme
[ "$(leases_on c)" = 1 ] || fail "c's lease of dev2: $OUT"
expect_on 0 a device disable dev2
[ "$(leases_on c)" = 0 ] || fail "c still holds dev2's lease after its disable: $OUT"
# c holds dev3's (on a) until c is killed below.
expect_on 0 c lease dev3 level --ttl 600 --tenant acme
wait_count "$T_DIR/dev3.log" start_temp 1 5000

# --- a revocation through a denies the next message on b (dev1 is b's own device)
expect_on 0 b send --as alice@acme dev1 echo before
expect_on 0 a access revoke "$alice_rule" --tenant acme
expect_on 4 b send --as alice@acme dev1 echo after
expect_on 4 c send --as alice@acme dev1 echo after

# --- events: dev4 on b; watch on a and c see it and its alarm (evaluated once, on b); stored once
expect_on 0 a alarm rule add hot --tenant acme --event temperature --field value --op '>' --threshold 30
"$IOTCTL_BIN" -s "$T_SOCK" watch --tenant acme --json >"$T_DIR/watch-a.log" 2>&1 &
w_a=$!
"$IOTCTL_BIN" -s "${NODE_SOCK[c]}" watch --tenant acme --json >"$T_DIR/watch-c.log" 2>&1 &
w_c=$!
sleep 0.5
$client "$addr_b" event-script dev4 thermo "$k4" <<'SCRIPT' || fail "event script of dev4"
send EVENT 1 temperature value=21.5
expect ACK 1
send EVENT 2 temperature value=22.5
expect ACK 2
send EVENT 3 temperature value=35
expect ACK 3
SCRIPT
for w in a c; do
    for _ in $(seq 1 100); do
        [ "$(grep -c '"kind":"event".*"device":"dev4"\|"device":"dev4".*"kind":"event"' "$T_DIR/watch-$w.log")" -ge 3 ] &&
            grep -q '"kind":"alarm"' "$T_DIR/watch-$w.log" && break
        sleep 0.1
    done
    [ "$(grep -c '"kind":"event".*"device":"dev4"\|"device":"dev4".*"kind":"event"' "$T_DIR/watch-$w.log")" = 3 ] ||
        fail "watch on $w: $(cat "$T_DIR/watch-$w.log")"
    [ "$(grep -c '"kind":"alarm".*"state":"raised"' "$T_DIR/watch-$w.log")" = 1 ] ||
        fail "the alarm on $w's watch: $(cat "$T_DIR/watch-$w.log")"
done
kill "$w_a" "$w_c" 2>/dev/null
wait "$w_a" "$w_c" 2>/dev/null
expect_on 0 c --json events --device dev4
[ "$(json_get '[e["seq"] for e in j["events"]]')" = "[1, 2, 3]" ] || fail "stored events: $OUT"
expect_on 0 b --json alarm list --tenant acme
[ "$(json_get 'len(j["alarms"])')" = 1 ] || fail "the alarm raised once: $OUT"

# --- a duplicate on a second node: dev1 connects to c too; [devices] duplicate = replace (the
# default): c's connection wins and b's ends
# Alice follows presence on a (SUBSCRIBE presence=1): she sees dev1 come online on c.
expect_on 0 a access grant user:alice device:dev1 --tenant acme
$client "$addr_a" subscribe alice@acme alice-password 60 1000 presence=1 alarms=only \
    >"$T_DIR/sub-a.log" 2>&1 &
sub_a=$!
for _ in $(seq 1 100); do grep -q '^subscribed' "$T_DIR/sub-a.log" && break; sleep 0.1; done
grep -q '^subscribed' "$T_DIR/sub-a.log" || fail "alice's subscription: $(cat "$T_DIR/sub-a.log")"
$client "$addr_c" serve dev1 thermo "$k1" >"$T_DIR/dev1-c.log" 2>&1 &
dev1c=$!
wait_device_node a dev1 c
wait_device_node b dev1 c
for _ in $(seq 1 100); do kill -0 "$dev1" 2>/dev/null || break; sleep 0.1; done
kill -0 "$dev1" 2>/dev/null && fail "dev1's connection to b still open after c's replaced it"
for _ in $(seq 1 50); do grep -q '^PRESENCE .*device=dev1 online=1' "$T_DIR/sub-a.log" && break; sleep 0.1; done
grep -q '^PRESENCE .*device=dev1 online=1' "$T_DIR/sub-a.log" || fail "no PRESENCE of dev1 on a: $(cat "$T_DIR/sub-a.log")"
grep -q '^PRESENCE .*device=dev1 online=0' "$T_DIR/sub-a.log" &&
    fail "the replaced connection on b showed dev1 offline: $(cat "$T_DIR/sub-a.log")"
expect_on 0 a send --as alice@acme dev1 echo "now on c"
grep -q "got echo now on c" "$T_DIR/dev1-c.log" || fail "the request did not reach dev1 on c"

# --- a node killed: its devices are gone from the others within node_timeout_ms
start_ms=$(date +%s%3N)
kill -KILL "${NODE_PID[c]}"
wait_device_node a dev1 - $((NODE_TIMEOUT_MS + 2 * HEARTBEAT_MS + 1000))
# When a dropped c's devices, by its log's clock (polling through iotctl adds its own time).
dropped_ms=$(python3 - "$T_LOG" <<'PY'
import datetime, sys
for line in open(sys.argv[1]):
    if "cluster: node c silent too long" in line:
        t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        print(int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))
PY
)
[ -n "$dropped_ms" ] || fail "a did not log c's death"
elapsed=$((dropped_ms - start_ms))
echo "a dropped c's devices ${elapsed} ms after c was killed"
# Within node_timeout_ms of its last heartbeat, so of the kill, give or take a tick of a's
# clock (node_timeout_ms / 20) and the log's own time.
[ "$elapsed" -le $((NODE_TIMEOUT_MS + NODE_TIMEOUT_MS / 20 + 100)) ] ||
    fail "c's devices dropped ${elapsed} ms after the kill, node_timeout_ms is $NODE_TIMEOUT_MS"
wait_nodes a a,b
# ...and its lease of dev3 ended with it: a, dev3's node, sent the stop.
wait_count "$T_DIR/dev3.log" stop_temp 1 3000
expect_on 9 a send --as alice@acme dev1 echo x
# ...and a's subscribers hear it offline (c cannot tell them).
for _ in $(seq 1 50); do grep -q '^PRESENCE .*device=dev1 online=0' "$T_DIR/sub-a.log" && break; sleep 0.1; done
grep -q '^PRESENCE .*device=dev1 online=0' "$T_DIR/sub-a.log" ||
    fail "no PRESENCE offline of dev1 on a after c died: $(cat "$T_DIR/sub-a.log")"
kill "$sub_a" "$dev1c" 2>/dev/null

# --- NATS killed and restarted: the nodes reconnect and find each other again
kill -KILL "$nats_pid"
wait "$nats_pid" 2>/dev/null
for _ in $(seq 1 100); do
    on a --json status
    [ "$(json_get 'j["cluster"]["nats"]')" = disconnected ] && break
    sleep 0.1
done
[ "$(json_get 'j["cluster"]["nats"]')" = disconnected ] || fail "a still connected: $OUT"
expect_on 0 a send --as alice@acme dev3 echo "a serves its own devices"
# A change through a while b cannot hear of it: b catches up once the link is back.
wait_nodes a a
expect_on 0 a access grant user:bob device:dev3 --tenant acme --message echo
start_nats
for n in a b; do wait_nodes $n a,b; done
on b --json status
[ "$(json_get 'j["cluster"]["nats"]')" = connected ] || fail "b not reconnected: $OUT"
wait_device_node b dev3 a
expect_on 0 b send --as alice@acme dev3 echo "after nats came back"
[ "$OUT" = "after nats came back" ] || fail "relay after reconnect: $OUT"
for _ in $(seq 1 50); do
    on b --json access check user:bob@acme dev3 echo
    [ "$(json_get 'j["decision"]')" = allow ] && break
    sleep 0.1
done
[ "$(json_get 'j["decision"]')" = allow ] || fail "b did not catch up with a's change: $OUT"
expect_on 0 b send --as bob@acme dev3 echo "caught up"


# --- c back, with [devices] duplicate = refuse: a device online on a is refused on c
sed -i 's/^ping_s = 5$/ping_s = 5\nduplicate = refuse/' "$T_DIR/node-c/iotd.conf"
node_start c
for n in a b c; do wait_nodes $n a,b,c; done
on c --json status
addr_c=127.0.0.1:$(json_get 'j["devices"]["port"]')
$client "$addr_a" duplicate-refused dev4 thermo "$k4" "$addr_c" || fail "dev4 on a, then on c"
kill "$dev3" 2>/dev/null

# --- a node stopped with SIGTERM leaves at once (no node_timeout_ms wait) and exits cleanly
$client "$addr_b" serve dev1 thermo "$k1" >"$T_DIR/dev1-b2.log" 2>&1 &
wait_device_node a dev1 b
for n in b c; do
    kill -TERM "${NODE_PID[$n]}"
    rc=0
    wait "${NODE_PID[$n]}" || rc=$?
    [ $rc -eq 0 ] || fail "node $n exited with $rc after SIGTERM: $(tail -n 30 "$T_DIR/node-$n/iotd.log")"
done
[ "$(device_node a dev1)" = - ] || fail "b's device still online on a after b left"
wait_nodes a a
t_stop
t_done
