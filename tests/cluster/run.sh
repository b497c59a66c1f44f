#!/usr/bin/env bash
# run.sh - issue 22's deployment test: three iotd nodes, a three-server NATS cluster and a
# three-node Galera cluster, each node in its own network namespace (lib.sh), driven through
# iotctl (control sockets), devclient.py and iotsim (from a fourth namespace, as devices on the
# network). Every check prints PASS or FAIL; the run goes on after a failure and exits 1 if any
# check failed, 77 (skipped, with the reason) if namespaces cannot be created here.
#
# First the infrastructure alone (NATS routes, Galera replication, three iotd starting at once
# on an empty database); then, if this iotd has [cluster] (iotd -t accepts it), the scenarios
# of issue 22 (iotd-cluster(7)): relay across nodes with every outcome, revocation, watch,
# status, a SIGKILLed node, a stopped NATS server, a stopped Galera node, a partitioned node,
# everything back, a device connecting to a second node, and no acknowledged event lost.
# Without [cluster] (an iotd older than issue 22) it says so and fails after the infrastructure
# checks.
#
# usage: IOTD_BIN_DIR=BUILD tests/cluster/run.sh     (or IOTD_BIN, IOTCTL_BIN, IOTSIM_BIN)
# C_KEEP=1 keeps the state directory (logs of every node) after the run.
. "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DEVCLIENT="python3 $SRC/tests/integration/devclient.py"
T_START=$SECONDS

# wait_for TRIES DESCRIPTION COMMAND...: until COMMAND succeeds, TRIES times 0.2 s at most;
# PASS with the time it took, or FAIL.
# Past the run's budget (C_BUDGET_S, default 270 s: ctest gives 330) a wait tries once.
C_BUDGET_S=${C_BUDGET_S:-270}
wait_for() {
    local tries=$1 what=$2 t0=$SECONDS
    shift 2
    [ $((SECONDS - T_START)) -lt "$C_BUDGET_S" ] || tries=1
    for _ in $(seq 1 "$tries"); do
        if "$@"; then
            pass "$what ($((SECONDS - t0)) s)"
            return 0
        fi
        sleep 0.2
    done
    check_fail "$what (not within $((tries / 5)) s)"
    return 1
}

# sends N STATUS ARGS...: iotctl send through node N must exit STATUS.
sends() {
    local n=$1 want=$2
    shift 2
    on "$n" send "$@"
    if [ "$RC" = "$want" ]; then
        pass "send via $n $* -> $want"
    else
        check_fail "send via $n $* -> $RC, want $want: $OUT"
    fi
}

# ---- the infrastructure -------------------------------------------------------------------
c_net
for n in $C_NODES; do c_nats_start "$n"; done
c_galera
for n in $C_NODES; do
    wait_for 150 "nats $n has routes to the two other servers" eval '[ "$(c_nats_routes '"$n"')" = 2 ]'
done
for n in $C_NODES; do
    check "galera $n sees a cluster of 3" [ "$(c_db_cluster_size "$n")" = 3 ]
done
c_sql a "CREATE DATABASE probe; CREATE TABLE probe.t (id INT PRIMARY KEY, v VARCHAR(32));
         INSERT INTO probe.t VALUES (1, 'written-on-a')" >/dev/null
wait_for 50 "a row written on galera a is read on c" eval '[ "$(c_sql c "SELECT v FROM probe.t WHERE id = 1")" = written-on-a ]'

# Does this iotd know [cluster]?
c_iotd_conf a 1
if "$IOTD_BIN" -t -c "$C_DIR/a/iotd.conf" >"$C_DIR/a/check.log" 2>&1; then
    CLUSTER=1
else
    CLUSTER=0
    echo "NOTE: this iotd refuses [cluster] ($(head -n 1 "$C_DIR/a/check.log")): the nodes start without it"
fi
# Does this iotsim take several addresses (fw3, CONTRACT-22)?
if "$IOTSIM_BIN" --help 2>&1 | head -n 1 | grep -q 'PORT\[,'; then MULTI=1; else
    MULTI=0
    echo "NOTE: this iotsim takes one address (-c HOST:PORT[,...] is not there yet): devices cannot move to another node"
fi
# shellcheck disable=SC2034 # (read by lib.sh's c_iotd_conf)
C_DEVICES_EXTRA="max_in_flight = 2
ping_s = 2"
for n in $C_NODES; do c_iotd_conf "$n" "$CLUSTER"; done
# All three at once on the empty database: migrations must survive each other. (C_STAGGER=1,
# a debugging aid, starts a alone first.)
if [ -n "${C_STAGGER:-}" ]; then c_iotd_start a; c_iotd_wait a; fi
for n in $C_NODES; do [ -n "${C_IOTD_PID[$n]:-}" ] || c_iotd_start "$n"; done
for n in $C_NODES; do
    if c_iotd_wait "$n"; then pass "iotd $n up on its galera node (${C_STAGGER:+a first, then }3 nodes at once)"; else check_fail "iotd $n did not start"; fi
done
[ "$C_FAILS" -eq 0 ] || die "the infrastructure is not up; the scenarios are not run"
tables() { c_sql "$1" "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'iotd'"; }
check "the schema is the same on the 3 galera nodes ($(tables a) tables)" \
    eval '[ "$(tables a)" = "$(tables b)" ] && [ "$(tables b)" = "$(tables c)" ] && [ "$(tables a)" -gt 5 ]'
c_log "infrastructure up after $((SECONDS - T_START)) s"

if [ "$CLUSTER" = 0 ] && [ -z "${C_FORCE:-}" ]; then
    # (C_FORCE=1, a debugging aid, runs the scenarios anyway.)
    check_fail "iotd has no [cluster] section: the cluster scenarios were not run ($C_PASSES infrastructure checks passed)"
    exit 1
fi

# The live nodes a node has heard from (its heartbeat table), as a sorted Python list.
live_nodes() { on "$1" --json status; json_get 'sorted(x["node"] for x in j["cluster"]["nodes"])'; }

# ---- the registry, made through node a -----------------------------------------------------
scenario_registry() {
    # A change is acknowledged by the nodes a knows to be live: right after the start, wait
    # until a has heard every node (within heartbeat_ms of their NATS links coming up).
    wait_for 50 "node a has heard nodes a, b and c" \
        eval '[ "$(live_nodes a)" = "['"'a', 'b', 'c'"']" ]'
    setup() {
        on a "$@"
        [ "$RC" = 0 ] || die "set-up: iotctl $* -> $RC: $OUT"
    }
    setup tenant add acme
    setup type add thermo --tenant acme
    setup message add thermo echo --tenant acme --args "text:str"
    setup message add thermo set_pixel --tenant acme --args "x:int y:int color:str"
    setup message add thermo never_op --tenant acme --timeout 400
    setup message add thermo fail_op --tenant acme
    setup message add thermo hold_op --tenant acme --timeout 5000
    setup message add thermo temperature --tenant acme --direction event --args "value:float unit:str?"
    key() { setup --json device add "$@"; json_get 'j["secret"]'; }
    k1=$(key dev1 --tenant acme --type thermo)
    key dev2 --tenant acme --type thermo >/dev/null # never connects: offline
    k3=$(key dev3 --tenant acme --type thermo)
    printf 'alice-password\n' >"$C_DIR/pw"
    setup user add alice@acme --password-file "$C_DIR/pw"
    setup user add bob@acme --password-file "$C_DIR/pw"
    setup --json access grant user:alice device:dev1 --tenant acme
    alice_rule=$(json_get 'j["rule"]')
    setup access grant user:alice device:dev2 --tenant acme
    setup access grant user:alice type:thermo --tenant acme --message echo
    setup access grant user:bob device:dev1 --tenant acme --message echo
    setup access grant device:dev3 device:dev1 --tenant acme --message echo
    # The fleet: 12 iotsim devices.
    : >"$C_DIR/fleet.jsonl"
    for i in $(seq 1 12); do
        setup --json device add "sim$i" --tenant acme --type thermo
        printf '%s\n' "$OUT" >>"$C_DIR/fleet.jsonl"
    done
    # A registry change made on a is on every node when iotctl on a has returned.
    on c --json device show sim12
    check "a device added through a is known on c at once" [ "$RC" = 0 ]
}

# ---- cross-node relay: dev1 (devclient.py, answering per message) on node b ---------------
scenario_relay() {
    ip netns exec "$(c_ns d)" $DEVCLIENT "${C_IP[b]}:7800" serve dev1 thermo "$k1" >"$C_DIR/dev1.log" 2>&1 &
    C_HOST_PIDS="$C_HOST_PIDS $!"
    wait_for 50 "dev1 connected to node b" grep -q serving "$C_DIR/dev1.log"
    node_of() { on "$1" --json device show "$2"; json_get 'j.get("node")'; }
    wait_for 50 "node a reports dev1 online on node b" eval '[ "$(node_of a dev1)" = b ]'
    check "node c reports dev1 on node b" [ "$(node_of c dev1)" = b ]

    sends a 0 --as alice@acme dev1 echo hello-across
    [ "$OUT" = hello-across ] && pass "the answer crossed back: $OUT" || check_fail "answer across nodes: $OUT"
    sends c 0 --tenant acme dev1 set_pixel 1 2 red
    sends a 4 --as bob@acme dev1 set_pixel 1 2 red       # denied
    sends a 11 --as alice@acme dev1 no_such_op           # unknown_type
    sends a 2 --as alice@acme dev1 set_pixel one 2 red   # bad_args
    sends a 9 --as alice@acme dev2 echo x                # offline: nowhere
    t0=$(date +%s%N)
    sends a 10 --as alice@acme dev1 never_op             # timeout (catalogue: 400 ms)
    ms=$((($(date +%s%N) - t0) / 1000000))
    check "a cross-node timeout takes the catalogue's 400 ms, not more than 3 s ($ms ms)" [ "$ms" -ge 350 -a "$ms" -lt 3000 ]
    sends c 12 --as alice@acme dev1 fail_op              # the device's own ERROR
    # busy: two requests held at dev1 (never answered), sent through a; the third is refused.
    "$IOTCTL_BIN" -s "$(c_sock a)" send --as alice@acme dev1 hold_op >/dev/null 2>&1 &
    h1=$!
    "$IOTCTL_BIN" -s "$(c_sock c)" send --as alice@acme dev1 hold_op >/dev/null 2>&1 &
    h2=$!
    held() { [ "$(grep -c 'got hold_op' "$C_DIR/dev1.log")" -ge 2 ]; }
    wait_for 50 "two hold_op requests from a and c wait at dev1" held
    sends a 8 --as alice@acme dev1 echo x                # busy
    wait $h1 $h2 2>/dev/null
    # native clients and a device on other nodes
    if ip netns exec "$(c_ns d)" $DEVCLIENT "${C_IP[a]}:7800" ask alice@acme alice-password dev1 echo ok hi >"$C_DIR/ask.log" 2>&1; then
        pass "a native user on node a asks dev1 on node b: ok"
    else check_fail "native user across nodes: $(tail -n 3 "$C_DIR/ask.log")"; fi
    if ip netns exec "$(c_ns d)" $DEVCLIENT "${C_IP[c]}:7800" ask bob@acme alice-password dev1 set_pixel denied 1 2 red >"$C_DIR/ask.log" 2>&1; then
        pass "a native user on node c is denied at dev1 on node b"
    else check_fail "native denied across nodes: $(tail -n 3 "$C_DIR/ask.log")"; fi
    if ip netns exec "$(c_ns d)" $DEVCLIENT "${C_IP[c]}:7800" device-ask dev3 thermo "$k3" dev1 echo ok hi >"$C_DIR/ask.log" 2>&1; then
        pass "device dev3 on node c asks dev1 on node b: ok"
    else check_fail "device to device across nodes: $(tail -n 3 "$C_DIR/ask.log")"; fi
}

# ---- revocation across nodes: revoked through a, denied at once through c ----------------
scenario_revoke() {
    sends c 0 --as alice@acme dev1 set_pixel 3 4 blue
    on a access revoke "$alice_rule" --tenant acme
    check "access revoke through a" [ "$RC" = 0 ]
    sends c 4 --as alice@acme dev1 set_pixel 3 4 blue
    sends b 4 --as alice@acme dev1 set_pixel 3 4 blue
}

# ---- status ----------------------------------------------------------------------------
scenario_status() {
    on a status
    case "$OUT" in *$'\n'cluster:* | cluster:*) pass "iotctl status shows a cluster: line" ;; *) check_fail "no cluster: line in status: $OUT" ;; esac
    nats_state() { on "$1" --json status; json_get 'j["cluster"]["nats"]'; }
    for n in $C_NODES; do
        wait_for 50 "node $n sees the live nodes a, b, c and NATS connected" \
            eval '[ "$(live_nodes '"$n"')" = "['"'a', 'b', 'c'"']" ] && [ "$(nats_state '"$n"')" = connected ]'
    done
}

# ---- the fleet: iotsim devices spread over the nodes, pushing events all along ------------
scenario_fleet() {
    mkdir -p "$C_DIR/simstate"
    sim_addrs="${C_IP[a]}:7800,${C_IP[b]}:7800,${C_IP[c]}:7800"
    if [ "$MULTI" = 1 ]; then
        ip netns exec "$(c_ns d)" "$IOTSIM_BIN" -c "$sim_addrs" -f "$C_DIR/fleet.jsonl" --ping 2 \
            --events 1 --state-dir "$C_DIR/simstate" --ack-log "$C_DIR/ack.log" --stats-interval 5 \
            --duration 600 >"$C_DIR/sim.log" 2>&1 &
        C_HOST_PIDS="$C_HOST_PIDS $!"
    else
        # One iotsim per node, four devices each (sim1-4 on a, sim5-8 on b, sim9-12 on c).
        i=0
        for n in $C_NODES; do
            sed -n "$((i * 4 + 1)),$((i * 4 + 4))p" "$C_DIR/fleet.jsonl" >"$C_DIR/fleet-$n.jsonl"
            ip netns exec "$(c_ns d)" "$IOTSIM_BIN" -c "${C_IP[$n]}:7800" -f "$C_DIR/fleet-$n.jsonl" --ping 2 \
                --events 1 --state-dir "$C_DIR/simstate" --ack-log "$C_DIR/ack-$n.log" --stats-interval 5 \
                --duration 600 >"$C_DIR/sim-$n.log" 2>&1 &
            C_HOST_PIDS="$C_HOST_PIDS $!"
            i=$((i + 1))
        done
    fi
    # fleet_on N: "node:devices ..." as node N's status says (the live nodes and their devices).
    fleet_on() {
        on "$1" --json status
        json_get '" ".join(f"{x['"'node'"']}:{x['"'devices'"']}" for x in sorted(j["cluster"]["nodes"], key=lambda x: x["node"]))'
    }
    online_count() { # how many simulated devices node N reports online (on any node)
        on "$1" --json device list --tenant acme --online
        json_get 'sum(1 for d in j["devices"] if d["id"].startswith("sim"))'
    }
    wait_for 150 "the 12 simulated devices are online (seen from a)" eval '[ "$(online_count a)" = 12 ]'
    c_log "fleet as a sees it: $(fleet_on a)"
    check "the fleet is spread over the three nodes ($(fleet_on a))" eval \
        '[ "$(fleet_on a | wc -w)" = 3 ] && ! fleet_on a | grep -q -e ":0" -e ERR'
}

# ---- watch across nodes: a watcher on a sees events of devices on b and c --------------------
scenario_watch() {
    "$IOTCTL_BIN" -s "$(c_sock a)" watch --tenant acme --event temperature >"$C_DIR/watch-a.log" 2>&1 &
    watch_pid=$!
    C_HOST_PIDS="$C_HOST_PIDS $watch_pid"
    remote_dev() { # a simulated device online on node $1, as node a sees it
        local i
        for i in $(seq 1 12); do
            [ "$(node_of a "sim$i")" = "$1" ] && { echo "sim$i"; return 0; }
        done
        echo none
    }
    for n in b c; do
        d=$(remote_dev "$n")
        [ "$d" != none ] || { check_fail "no simulated device on node $n to watch"; continue; }
        wait_for 50 "watch on a shows events of $d on node $n" grep -q " $d EVENT temperature" "$C_DIR/watch-a.log"
    done
    kill "$watch_pid" 2>/dev/null
    # Each event is stored once: the numbers of one device's stored events are distinct.
    on b events --device sim1 --csv
    check "events of sim1 are stored once each" eval \
        '[ "$(tail -n +2 <<<"$OUT" | cut -d, -f3,4 | sort | uniq -d | wc -l)" = 0 ] && [ "$(tail -n +2 <<<"$OUT" | wc -l)" -gt 0 ]'
}

# ---- a node killed with SIGKILL: c --------------------------------------------------------
scenario_kill() {
    d_c=$(remote_dev c)
    [ "$d_c" != none ] || check_fail "no simulated device on node c before the kill"
    c_iotd_kill c
    t0=$SECONDS
    wait_for 25 "node a drops node c from the live nodes (node_timeout_ms 2000)" eval '[ "$(live_nodes a)" = "['"'a', 'b'"']" ]'
    gone_from_c() { on a --json device show "$d_c"; [ "$(json_get 'j.get("node")')" != c ]; }
    wait_for 25 "$d_c is no longer reported on node c" gone_from_c
    if [ "$MULTI" = 1 ]; then
        wait_for 100 "the 12 devices are back online on a and b within 20 s of the kill" eval '[ "$(online_count a)" = 12 ]'
        c_log "fleet after the kill: $(fleet_on a)"
        sends a 0 --as alice@acme "$d_c" echo moved
    else
        echo "SKIP: devices of the killed node cannot move (iotsim without several addresses)"
        sends a 9 --as alice@acme "$d_c" echo x   # its node vanished: offline
    fi
    c_iotd_start c
    if c_iotd_wait c; then pass "iotd c restarted"; else check_fail "iotd c did not restart"; fi
    wait_for 75 "node a sees c again" eval '[ "$(live_nodes a)" = "['"'a', 'b', 'c'"']" ]'
}

# ---- a stopped NATS server: a's; iotd a goes on through another server --------------------
scenario_nats() {
    c_nats_stop a
    wait_for 75 "iotd a is connected to NATS again (another server) after its own stopped" eval '[ "$(nats_state a)" = connected ]'
    wait_for 50 "node a relays to dev1 on node b with its NATS server down" eval 'on a send --as alice@acme dev1 echo via-other-nats; [ "$RC" = 0 ]'
    c_nats_start a
    for n in $C_NODES; do
        wait_for 150 "nats $n has its 2 routes again" eval '[ "$(c_nats_routes '"$n"')" = 2 ]'
    done
}

# ---- a stopped Galera node: c's; iotd c relays, acknowledges events (spool) ------------------
scenario_galera() {
    c_db_stop c
    check "galera a sees a cluster of 2" eval '[ "$(c_db_cluster_size a)" = 2 ]'
    sends c 0 --as alice@acme dev1 echo db-down-on-c
    # shellcheck disable=SC2034 # (read in the eval below)
    acked_now=$(cat "$C_DIR"/ack*.log 2>/dev/null | wc -l)
    wait_for 50 "events go on being acknowledged with galera c down" eval '[ "$(cat "$C_DIR"/ack*.log | wc -l)" -gt "$((acked_now + 3))" ]'
    c_db_start c
    if c_db_wait c; then pass "galera c rejoined (IST)"; else check_fail "galera c did not rejoin"; fi
    on c --json device add after-db --tenant acme --type thermo
    wait_for 50 "a registry change through c works again" eval 'on c --json device show after-db; [ "$RC" = 0 ]'
}

# ---- a partitioned node: b's link cut ---------------------------------------------------
scenario_partition() {
    c_cut b
    wait_for 50 "node a drops the partitioned node b" eval '[ "$(live_nodes a)" = "['"'a', 'c'"']" ]'
    sends a 9 --as alice@acme dev1 echo x          # dev1's node is unreachable: offline
    if [ "$MULTI" = 1 ]; then
        wait_for 150 "the partitioned node's devices are back on a and c" eval '[ "$(online_count a)" = 12 ]'
    fi
    c_restore b
    for n in $C_NODES; do
        wait_for 150 "after the partition, node $n sees a, b, c" eval '[ "$(live_nodes '"$n"')" = "['"'a', 'b', 'c'"']" ]'
    done
    wait_for 150 "galera b is back in the cluster of 3" eval '[ "$(c_db_cluster_size b)" = 3 ] && c_db_wait b'
}

# ---- everything back ------------------------------------------------------------------------
scenario_back() {
    for n in $C_NODES; do
        wait_for 75 "nats $n: 2 routes" eval '[ "$(c_nats_routes '"$n"')" = 2 ]'
        wait_for 50 "iotd $n: NATS connected" eval '[ "$(nats_state '"$n"')" = connected ]'
    done
    wait_for 150 "the 12 devices online, each on one node as every node says" eval \
        '[ "$(online_count a)" = 12 ] && [ "$(fleet_on a)" = "$(fleet_on b)" ] && [ "$(fleet_on b)" = "$(fleet_on c)" ]'
    for n in $C_NODES; do
        d=$(remote_dev "$n")
        [ "$d" != none ] && sends a 0 --as alice@acme "$d" echo back
    done
}

# ---- a duplicate across nodes: dev1 on c, then dev1 on a replaces it ([devices] duplicate) ---
scenario_duplicate() {
    local first
    ip netns exec "$(c_ns d)" $DEVCLIENT "${C_IP[c]}:7800" serve dev1 thermo "$k1" >"$C_DIR/dup-c.log" 2>&1 &
    first=$!
    C_HOST_PIDS="$C_HOST_PIDS $first"
    wait_for 75 "dev1 (again) online on node c" eval '[ "$(node_of a dev1)" = c ]'
    ip netns exec "$(c_ns d)" $DEVCLIENT "${C_IP[a]}:7800" serve dev1 thermo "$k1" >"$C_DIR/dup-a.log" 2>&1 &
    C_HOST_PIDS="$C_HOST_PIDS $!"
    wait_for 75 "dev1 connecting to node a while on c: node b says it is on a" eval '[ "$(node_of b dev1)" = a ]'
    wait_for 75 "node c ended dev1's first connection (replaced)" eval '! kill -0 '"$first"' 2>/dev/null'
    sends b 0 --as bob@acme dev1 echo after-replace
}

# ---- no acknowledged event lost ----------------------------------------------------------
scenario_events() {
    for p in $C_HOST_PIDS; do kill -TERM "$p" 2>/dev/null; done
    sleep 1
    lost() {
        on a events --tenant acme --since 1h --csv --all
        python3 "$C_LIB_DIR/acked_stored.py" "$C_DIR"/ack*.log <<<"$OUT"
    }
    res=""
    for _ in $(seq 1 15); do
        res=$(lost)
        set -- $res
        [ "${2:-x}" = 0 ] && break
        sleep 1
    done
    set -- $res
    if [ "${2:-x}" = 0 ] && [ "${1:-0}" -gt 50 ]; then
        pass "no acknowledged event lost: the $1 events iotsim saw acknowledged are all stored"
    else
        check_fail "acknowledged events not stored: $res"
    fi
}

# ---- the scenarios, in order, each while the budget lasts (the last one always runs) ---------
SCENARIOS="registry relay revoke status fleet watch kill nats galera partition back duplicate events"
for s in $SCENARIOS; do
    if [ "$s" != events ] && [ $((SECONDS - T_START)) -ge "$C_BUDGET_S" ]; then
        check_fail "scenario $s not run: the time budget (C_BUDGET_S=$C_BUDGET_S s) is spent"
        continue
    fi
    c_log "scenario $s"
    "scenario_$s"
done

echo "cluster test: $C_PASSES passed, $C_FAILS failed, $((SECONDS - T_START)) s"
[ "$C_FAILS" -eq 0 ]
