# shellcheck shell=bash disable=SC2034 # (variables lib.sh sets for the scripts that source it)
# lib.sh - a cluster on one machine, built as a real deployment runs: each node in its own
# network namespace with its own address on a bridge, running a NATS server (one of a 3-server
# NATS cluster), a Galera node (one of a 3-node MariaDB Galera cluster) and iotd pointed at
# both; a fourth namespace holds the devices. Sourced by tests/cluster/run.sh and
# tests/bench/cluster/run.sh.
#
# Names carry this shell's pid (iotc<PID>-a, ic<PID>br...), so that a run never meets another's
# namespaces; leftovers of runs whose shell is gone are removed first. Everything this file
# creates (namespaces, bridge, processes, the temporary directory) goes on any exit.
#
# The binaries: IOTD_BIN, IOTCTL_BIN, IOTSIM_BIN, or IOTD_BIN_DIR (a build tree: its
# iotd/core/iotd, iotctl/iotctl, tests/sim/iotsim...).
set -u

if [ -n "${IOTD_BIN_DIR:-}" ]; then
    IOTD_BIN=$(find "$IOTD_BIN_DIR" -path '*/iotd/core/iotd' -type f | head -n 1)
    IOTCTL_BIN=$(find "$IOTD_BIN_DIR" -name iotctl -type f -perm -u+x | head -n 1)
    IOTSIM_BIN=$(find "$IOTD_BIN_DIR" -name iotsim -type f -perm -u+x | head -n 1)
fi
: "${IOTD_BIN:?IOTD_BIN (or IOTD_BIN_DIR) must point at the iotd binary}"
: "${IOTCTL_BIN:?IOTCTL_BIN must point at the iotctl binary}"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at the iotsim binary}"
# The packages (./dev.sh installs them): their absence is a failure, not a skip.
for _p in nats-server:/usr/sbin/nats-server galera-4:/usr/lib/galera/libgalera_smm.so \
    mariadb-server-core:/usr/sbin/mariadbd curl:/usr/bin/curl; do
    [ -e "${_p#*:}" ] || { echo "FAIL: ${_p#*:} is missing (Debian package ${_p%%:*})" >&2; exit 1; }
done

C_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
C_NODES="a b c"
C_NET=10.77.0
declare -A C_IP=([a]=$C_NET.11 [b]=$C_NET.12 [c]=$C_NET.13 [d]=$C_NET.20)
C_ID=$$
C_BR=ic${C_ID}br
C_DIR=
C_FAILS=0
C_PASSES=0
C_HOST_PIDS=""
declare -A C_NATS_PID C_DB_PID C_IOTD_PID

c_ns() { echo "iotc${C_ID}-$1"; }       # the namespace of node $1 (a, b, c; d = the devices)
c_in() { local n=$1; shift; ip netns exec "$(c_ns "$n")" "$@"; }
# In the background, ip itself is the job (it execs the command: $! is the command's pid),
# never a subshell around it, so that a signal to $! reaches the program.

c_log() { echo "$(date +%T.%3N) $*"; }
pass() { C_PASSES=$((C_PASSES + 1)); echo "PASS: $*"; }
# check_fail: a failed check is counted and the run goes on (the scenarios after it still say
# what they find); run.sh exits non-zero at the end.
check_fail() { C_FAILS=$((C_FAILS + 1)); echo "FAIL: $*"; }
check() { # check DESCRIPTION COMMAND...: PASS or FAIL on COMMAND's status
    local what=$1
    shift
    if "$@"; then pass "$what"; else check_fail "$what"; fi
}
die() { echo "FAIL: $*" >&2; C_FAILS=$((C_FAILS + 1)); exit 1; }

# Remove the namespaces, bridge and directory of a run whose shell no longer exists.
c_clean_leftovers() {
    local ns pid
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^iotc[0-9]+-[a-z]$'); do
        pid=${ns#iotc}
        pid=${pid%-*}
        [ "$pid" != "$C_ID" ] && kill -0 "$pid" 2>/dev/null && continue
        c_ns_remove "$ns"
    done
    for br in $(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^ic[0-9]+br$'); do
        pid=${br#ic}
        pid=${pid%br}
        [ "$pid" != "$C_ID" ] && kill -0 "$pid" 2>/dev/null && continue
        ip link del "$br" 2>/dev/null
        rm -rf /tmp/iotd-cluster-"$pid".*
    done
}

# Kill what runs in namespace $1 (all of it was started by a run of this file), then delete it.
c_ns_remove() {
    local ns=$1 p
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    for _ in $(seq 1 50); do [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break; sleep 0.1; done
    ip netns del "$ns" 2>/dev/null
}

c_cleanup() {
    local rc=$? n p
    trap - EXIT INT TERM
    if [ -n "$C_DIR" ] && { [ "$rc" -ne 0 ] || [ "$C_FAILS" -ne 0 ]; }; then c_dump_logs; fi
    exec 2>/dev/null # (bash's notes on the jobs killed below)
    if [ -n "$C_DIR" ]; then
        # iotd first, gently, so that its log ends with why; then everything else.
        for n in $C_NODES; do
            p=${C_IOTD_PID[$n]:-}
            [ -n "$p" ] && kill -TERM "$p"
        done
        for p in $C_HOST_PIDS; do kill -KILL "$p"; done
    fi
    for n in $C_NODES d; do c_ns_remove "$(c_ns "$n")"; done
    ip link del "$C_BR"
    if [ -n "${C_KEEP:-}" ]; then echo "kept $C_DIR"; elif [ -n "$C_DIR" ]; then rm -rf "$C_DIR"; fi
    exit "$rc"
}

c_dump_logs() {
    local f
    for f in "$C_DIR"/*/iotd.log "$C_DIR"/*/nats.log; do
        [ -f "$f" ] || continue
        echo "---- $f (tail) ----"
        tail -n 15 "$f"
    done
    for f in "$C_DIR"/*/mysqld.err; do
        [ -f "$f" ] || continue
        echo "---- $f (errors, tail) ----"
        grep -E '\[(ERROR|Warning)\]' "$f" | tail -n 8
    done
}

# c_net: the bridge, one namespace per node and one for the devices, each with a veth to the
# bridge. Exits 77 when namespaces cannot be created here (not root, no CAP_NET_ADMIN).
c_net() {
    c_clean_leftovers
    if ! ip netns add "$(c_ns a)" 2>/dev/null; then
        echo "SKIP: cannot create network namespaces here (needs root and CAP_NET_ADMIN)"
        exit 77
    fi
    trap c_cleanup EXIT
    trap 'exit 130' INT TERM
    C_DIR=$(mktemp -d /tmp/iotd-cluster-$C_ID.XXXXXX)
    ip link add "$C_BR" type bridge || die "bridge"
    ip link set "$C_BR" up
    local n ns
    for n in $C_NODES d; do
        ns=$(c_ns "$n")
        [ "$n" = a ] || ip netns add "$ns" || die "netns $ns"
        ip link add "ic${C_ID}$n" type veth peer name "ic${C_ID}${n}p" || die "veth $n"
        ip link set "ic${C_ID}${n}p" netns "$ns"
        ip link set "ic${C_ID}$n" master "$C_BR" up
        c_in "$n" ip link set lo up
        c_in "$n" ip link set "ic${C_ID}${n}p" name eth0
        c_in "$n" ip addr add "${C_IP[$n]}/24" dev eth0
        c_in "$n" ip link set eth0 up
        mkdir -p "$C_DIR/$n"
    done
    c_log "network: bridge $C_BR, namespaces $(c_ns a) .. $(c_ns d), state in $C_DIR"
}

# c_cut N / c_restore N: the link of node N's namespace to the bridge goes down / up (a
# partition: its processes keep running and see no one).
c_cut() { ip link set "ic${C_ID}$1" down; }
c_restore() { ip link set "ic${C_ID}$1" up; }

# ---- NATS: three servers, routes between all of them

c_nats_conf() {
    local n=$1 ip=${C_IP[$1]} routes="" m
    for m in $C_NODES; do
        [ "$m" = "$n" ] || routes="$routes nats://${C_IP[$m]}:6222"
    done
    cat >"$C_DIR/$n/nats.conf" <<CONF
server_name: $n
listen: $ip:4222
http: $ip:8222
cluster {
  name: iotc
  listen: $ip:6222
  routes: [$(echo $routes | sed 's/ /, /g')]
}
CONF
}

c_nats_start() {
    local n=$1
    [ -f "$C_DIR/$n/nats.conf" ] || c_nats_conf "$n"
    ip netns exec "$(c_ns "$n")" nats-server -c "$C_DIR/$n/nats.conf" >>"$C_DIR/$n/nats.log" 2>&1 &
    C_NATS_PID[$n]=$!
}

c_nats_stop() { kill -TERM "${C_NATS_PID[$1]}" 2>/dev/null; wait "${C_NATS_PID[$1]}" 2>/dev/null; C_NATS_PID[$1]=; }

# c_nats_routes N: how many routes server N has (its monitoring port's /routez), or -1.
c_nats_routes() {
    c_in "$1" curl -s --max-time 2 "http://${C_IP[$1]}:8222/routez" 2>/dev/null |
        python3 -c 'import json,sys
try: print(json.load(sys.stdin)["num_routes"])
except Exception: print(-1)'
}

# c_nats_wait_routes N WANT: until server N has WANT routes, at most 30 s.
c_nats_wait_routes() {
    local got=-1
    for _ in $(seq 1 150); do
        got=$(c_nats_routes "$1")
        [ "$got" = "$2" ] && return 0
        sleep 0.2
    done
    echo "nats $1: $got routes, want $2" >&2
    return 1
}

# ---- Galera: three mariadbd with wsrep, the first bootstrapping the cluster

C_DB_PW=iotd-cluster-pw
c_db_conf() {
    local n=$1 ip=${C_IP[$1]} d=$C_DIR/$1 addr="" m
    for m in $C_NODES; do addr="$addr${addr:+,}${C_IP[$m]}"; done
    cat >"$d/my.cnf" <<CONF
[mysqld]
datadir=$d/db
socket=$d/mysqld.sock
pid-file=$d/mysqld.pid
log-error=$d/mysqld.err
bind-address=$ip
port=3306
user=root
skip-name-resolve
performance_schema=OFF
innodb_buffer_pool_size=32M
innodb_log_file_size=16M
innodb_log_buffer_size=4M
innodb_flush_log_at_trx_commit=2
key_buffer_size=1M
max_connections=64
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
wsrep_on=ON
wsrep_provider=/usr/lib/galera/libgalera_smm.so
wsrep_cluster_name=iotc
wsrep_cluster_address=gcomm://$addr
wsrep_node_address=$ip
wsrep_node_name=$n
wsrep_sst_method=iotc
wsrep_provider_options="gcache.size=32M;gmcast.listen_addr=tcp://$ip:4567;ist.recv_addr=$ip:4568;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;evs.install_timeout=PT6S;pc.wait_prim_timeout=PT60S"
CONF
}

c_sql() { # c_sql N SQL: as root over node N's Unix socket; rows tab-separated, no header
    c_in "$1" mariadb --no-defaults -S "$C_DIR/$1/mysqld.sock" -u root -N -B -e "$2" 2>&1
}

c_db_start() { # c_db_start N [--wsrep-new-cluster]
    local n=$1
    shift
    ip netns exec "$(c_ns "$n")" env PATH="$C_LIB_DIR:$PATH" mariadbd --defaults-file="$C_DIR/$n/my.cnf" "$@" >>"$C_DIR/$n/mysqld.out" 2>&1 &
    C_DB_PID[$n]=$!
}

# c_db_wait N: until node N is synced with the cluster (wsrep_ready ON and
# wsrep_local_state_comment Synced), at most 60 s.
c_db_wait() {
    local out=""
    for _ in $(seq 1 300); do
        out=$(c_sql "$1" "SHOW STATUS WHERE Variable_name IN ('wsrep_ready','wsrep_local_state_comment')")
        case "$out" in *Synced*ON* | *ON*Synced*) return 0 ;; esac
        kill -0 "${C_DB_PID[$1]}" 2>/dev/null || { echo "mariadbd $1 exited" >&2; return 1; }
        sleep 0.2
    done
    echo "galera $1 not synced: $out" >&2
    return 1
}

c_db_stop() { # clean shutdown (SIGTERM), at most 60 s
    local p=${C_DB_PID[$1]}
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 1 600); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    C_DB_PID[$1]=
}

# c_db_cluster_size N: wsrep_cluster_size as node N sees it.
c_db_cluster_size() { c_sql "$1" "SHOW STATUS LIKE 'wsrep_cluster_size'" | awk '{print $2}'; }

# c_galera: node a is created and bootstrapped alone, gets the iotd database and user, and is
# stopped cleanly; its data directory is copied to b and c (the same cluster state, so joining
# needs no state snapshot transfer, whose scripts are not in mariadb-server-core). Then a
# bootstraps the cluster again and b and c join it.
c_galera() {
    local n
    for n in $C_NODES; do c_db_conf "$n"; done
    touch "$C_DIR/sst-trivial"
    mariadb-install-db --no-defaults --datadir="$C_DIR/a/db" --user=root --skip-test-db \
        --innodb-log-file-size=16M --innodb-buffer-pool-size=32M >"$C_DIR/a/install.log" 2>&1 ||
        { cat "$C_DIR/a/install.log"; die "mariadb-install-db"; }
    c_db_start a --wsrep-new-cluster
    c_db_wait a || die "galera a did not bootstrap"
    c_sql a "CREATE DATABASE iotd; CREATE USER 'iotd'@'%' IDENTIFIED BY '$C_DB_PW';
             GRANT ALL ON iotd.* TO 'iotd'@'%'" >/dev/null || die "iotd database and user"
    c_db_stop a
    for n in b c; do
        cp -a "$C_DIR/a/db" "$C_DIR/$n/db"
        rm -f "$C_DIR/$n/db/gvwstate.dat"
    done
    c_db_start a --wsrep-new-cluster
    c_db_wait a || die "galera a did not bootstrap the second time"
    for n in b c; do c_db_start "$n"; done
    for n in b c; do c_db_wait "$n" || die "galera $n did not join"; done
    rm -f "$C_DIR/sst-trivial"
    c_log "galera: 3 nodes synced"
}

# ---- iotd

# c_iotd_conf N [CLUSTER=1]: node N's configuration: devices on its address, its own Galera
# node, the NATS cluster (every server, its own first).
c_iotd_conf() {
    local n=$1 d=$C_DIR/$1 nats="nats://${C_IP[$1]}:4222" m
    for m in $C_NODES; do [ "$m" = "$n" ] || nats="$nats, nats://${C_IP[$m]}:4222"; done
    printf '%s\n' "$C_DB_PW" >"$d/db-password"
    mkdir -p "$d/state"
    # One secret key for all nodes (it seals the device secrets in the shared database), made
    # once and copied into each state_dir, as iotd-cluster(7) says to deploy it.
    [ -f "$C_DIR/secret.key" ] || (umask 077 && head -c 32 /dev/urandom >"$C_DIR/secret.key")
    [ -f "$d/state/secret.key" ] || install -m 600 "$C_DIR/secret.key" "$d/state/secret.key"
    cat >"$d/iotd.conf" <<CONF
[iotd]
state_dir = $d/state
threads = 2
log_level = ${C_LOG_LEVEL:-info}

[devices]
listen = ${C_IP[$n]}:7800
# The users of the test and the benchmark log in from the devices' namespace, over plain TCP
# on the test's private bridge.
login_plain = yes
${C_DEVICES_EXTRA:-}

[database]
url = mariadb://iotd@${C_IP[$n]}:3306/iotd
password_file = $d/db-password
CONF
    if [ "${2:-1}" = 1 ]; then
        cat >>"$d/iotd.conf" <<CONF

[cluster]
nats = $nats
node = $n
heartbeat_ms = 500
node_timeout_ms = 2000
CONF
    fi
}

c_sock() { echo "$C_DIR/$1/state/control.sock"; }

c_iotd_start() {
    local n=$1
    ip netns exec "$(c_ns "$n")" "$IOTD_BIN" -f -c "$C_DIR/$n/iotd.conf" >>"$C_DIR/$n/iotd.log" 2>&1 &
    C_IOTD_PID[$n]=$!
}

# c_iotd_wait N: until node N's control socket answers, at most 90 s.
c_iotd_wait() {
    for _ in $(seq 1 450); do
        "$IOTCTL_BIN" -s "$(c_sock "$1")" status >/dev/null 2>&1 && return 0
        kill -0 "${C_IOTD_PID[$1]}" 2>/dev/null || { echo "iotd $1 exited during start-up" >&2; return 1; }
        sleep 0.2
    done
    echo "iotd $1 not ready in 90 s" >&2
    return 1
}

c_iotd_kill() { kill -KILL "${C_IOTD_PID[$1]}" 2>/dev/null; wait "${C_IOTD_PID[$1]}" 2>/dev/null; C_IOTD_PID[$1]=; }

# on N ARGS...: iotctl against node N; output in $OUT, status in $RC.
on() {
    local n=$1
    shift
    OUT=$("$IOTCTL_BIN" -s "$(c_sock "$n")" "$@" 2>&1) && RC=0 || RC=$?
}

# json_get EXPR: a Python expression on $OUT parsed as JSON (variable j); "ERR" if it is not.
json_get() {
    python3 -c 'import json,sys
try:
    j=json.load(sys.stdin); print(eval(sys.argv[1]))
except Exception: print("ERR")' "$1" <<<"$OUT"
}
