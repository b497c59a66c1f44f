#!/usr/bin/env bash
# run.sh - issue 22's cluster benchmark: what a relay to a device on another node costs.
#
#   tests/bench/cluster/run.sh [BUILD_DIR]     (default: build; as root, on an idle machine)
#
# The deployment of tests/cluster (lib.sh: three namespaces on a bridge, a NATS cluster, a
# Galera cluster, iotd on each node with [cluster]); a fourth namespace holds the load and the
# devices. Three systems get the same closed-loop load (64-byte echo, 1 and 16 in flight, one
# connection, DURATION seconds after a 0.5 s warm-up), taking turns round by round:
#
#   same   a user on node a (relay_load, LOGIN alice) sends echo to iotsim devices on node a
#   cross  the same user on node a to iotsim devices on node b: the relay goes over NATS
#   nats   NATS's own request-reply between the same namespaces: nats_load in a's namespace on
#          a's NATS server, its responders in b's namespace on b's server (one hop of the kind
#          a cross-node relay adds, with nothing of iotd's)
#
# The summary gives, paired by round (each round's ratio, then the median over rounds, so that
# a round where the machine was slow for all cancels out): cross/same throughput at each
# level (target >= 0.5x at 16 in flight), and the p50 that cross adds to same over nats's p50
# at 1 in flight (target <= 1.5x); each with its range over the rounds, and cross/nats
# throughput (what of NATS's own request-reply the relay gets). The load generators are
# tests/bench/relay's relay_load and nats_load, built by CMake (tests/bench/cluster/CMakeLists.txt).
#
# Knobs: DURATION=5 RUNS=3 INFLIGHTS="1 16" DEVICES=4 C_KEEP=1 (keep the state directory);
# LOAD_BUILD=DIR takes the load generators from another build tree than BUILD_DIR's iotd.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd) || exit 1
export IOTD_BIN_DIR=$build
. "$top/tests/cluster/lib.sh"
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
INFLIGHTS=${INFLIGHTS:-"1 16"}
DEVICES=${DEVICES:-4}
relay_load=${LOAD_BUILD:-$build}/tests/bench/cluster/cluster_relay_load
nats_load=${LOAD_BUILD:-$build}/tests/bench/cluster/cluster_nats_load
for b in "$relay_load" "$nats_load"; do
    [ -x "$b" ] || { echo "no $b: build the tree (cmake --build $build)" >&2; exit 1; }
done

c_net
results=$C_DIR/results.txt
: >"$results"
for n in $C_NODES; do c_nats_start "$n"; done
c_galera
for n in $C_NODES; do c_nats_wait_routes "$n" 2 || die "nats routes"; done
for n in $C_NODES; do c_iotd_conf "$n" 1; done
"$IOTD_BIN" -t -c "$C_DIR/a/iotd.conf" >/dev/null 2>&1 || die "this iotd has no [cluster]"
c_iotd_start a
c_iotd_wait a || die "iotd a"
for n in b c; do c_iotd_start "$n"; done
for n in b c; do c_iotd_wait "$n" || die "iotd $n"; done

setup() { on a "$@"; [ "$RC" = 0 ] || die "set-up: iotctl $* -> $RC: $OUT"; }
setup tenant add bench
setup type add thermo --tenant bench
setup message add thermo echo --tenant bench --args "text:str"
printf 'password123\n' >"$C_DIR/pw"
setup user add alice@bench --role operator --password-file "$C_DIR/pw"
setup access grant user:alice type:thermo --tenant bench
for side in a b; do
    : >"$C_DIR/devices-$side.jsonl"
    for i in $(seq 1 "$DEVICES"); do
        setup --json device add "$side$i" --tenant bench --type thermo
        printf '%s\n' "$OUT" >>"$C_DIR/devices-$side.jsonl"
    done
    ip netns exec "$(c_ns d)" "$IOTSIM_BIN" -c "${C_IP[$side]}:7800" -f "$C_DIR/devices-$side.jsonl" \
        --duration 3600 --stats-interval 0 >"$C_DIR/iotsim-$side.log" 2>&1 &
done
node_of() { on a --json device show "$1"; json_get 'j.get("node")'; }
for _ in $(seq 1 150); do
    [ "$(node_of "a$DEVICES")" = a ] && [ "$(node_of "b$DEVICES")" = b ] && break
    sleep 0.2
done
[ "$(node_of "b$DEVICES")" = b ] || die "the devices are not online on nodes a and b"
names=$(seq -s, -f 'n%g' 1 "$DEVICES")
ip netns exec "$(c_ns b)" "$nats_load" --responder -c "${C_IP[b]}:4222" --devices "$names" \
    --duration 3600 >"$C_DIR/nats-responder.log" 2>&1 &
sleep 1

load() { # load SYSTEM K: one run, its result line
    case "$1" in
    same | cross)
        local devs
        devs=$(seq -s, -f "$([ "$1" = same ] && echo a || echo b)%g" 1 "$DEVICES")
        ip netns exec "$(c_ns d)" "$relay_load" -c "${C_IP[a]}:7800" --from alice@bench \
            --password password123 --devices "$devs" --inflight "$2" --duration "$DURATION" \
            --label "$1"
        ;;
    nats)
        ip netns exec "$(c_ns a)" "$nats_load" -c "${C_IP[a]}:4222" --devices "$names" \
            --inflight "$2" --duration "$DURATION"
        ;;
    esac
}
for r in $(seq 1 "$RUNS"); do
    for k in $INFLIGHTS; do
        for s in same cross nats; do
            line=$(load "$s" "$k" 2>>"$C_DIR/load.log" | tail -n 1)
            echo "round=$r sys=$s $line" | tee -a "$results" >&2
        done
    done
done

# How many requests crossed per NATS message (iotd-cluster(7): they go in batches), over the
# whole run: what node a sent to b against the messages a published, and the answers b sent
# back against b's. The messages include the heartbeats (2 a second per node).
for n in a b; do
    on "$n" --json status
    msgs=0 # the node's connection may be on any of the servers (the client shuffles them)
    for m in $C_NODES; do
        k=$(c_in "$m" curl -s --max-time 2 "http://${C_IP[$m]}:8222/connz" |
            python3 -c 'import json,sys; print(sum(c["in_msgs"] for c in json.load(sys.stdin)["connections"] if c.get("name") == "iotd-'"$n"'"))')
        msgs=$((msgs + ${k:-0}))
    done
    printf '%s\n' "$OUT" | python3 -c '
import json, sys
t = json.load(sys.stdin)["cluster"]["traffic"]
n, msgs = sys.argv[1], int(sys.argv[2])
crossed, what = (t["requests_out"], "requests sent") if n == "a" else (t["requests_in"], "requests answered")
print(f"node {n}: {crossed} {what} in {msgs} NATS messages, {crossed / max(msgs, 1):.1f} per message")
' "$n" "$msgs" | tee -a "$C_DIR/batches.txt"
done

python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kv = dict(p.split("=", 1) for p in line.split() if "=" in p)
    if "rt_s" not in kv:
        continue
    runs[(kv["sys"], int(kv["inflight"]), int(kv["round"]))] = {k: float(kv[k]) for k in ("rt_s", "p50_us", "p99_us", "errors")}
rounds = sorted({r for _, _, r in runs})
levels = sorted({k for _, k, _ in runs})
def med(s, k, f):
    v = [runs[(s, k, r)][f] for r in rounds if (s, k, r) in runs]
    return statistics.median(v) if v else float("nan")
def paired(f, k):
    v = [f(r) for r in rounds if all((s, k, r) in runs for s in ("same", "cross", "nats"))]
    return (statistics.median(v), min(v), max(v)) if v else (float("nan"),) * 3
print(f"{'system':8} {'in flight':>9} {'rt/s':>10} {'p50 us':>9} {'p99 us':>9} {'errors':>7}   (medians of {len(rounds)} rounds)")
for k in levels:
    for s in ("same", "cross", "nats"):
        print(f"{s:8} {k:>9} {med(s,k,'rt_s'):>10.0f} {med(s,k,'p50_us'):>9.1f} {med(s,k,'p99_us'):>9.1f} {med(s,k,'errors'):>7.0f}")
for k in levels:
    t = paired(lambda r: runs[("cross", k, r)]["rt_s"] / runs[("same", k, r)]["rt_s"], k)
    print(f"cross/same throughput at {k:>2} in flight: {t[0]:.2f}x (paired by round; rounds {t[1]:.2f}-{t[2]:.2f})")
    t = paired(lambda r: runs[("cross", k, r)]["rt_s"] / runs[("nats", k, r)]["rt_s"], k)
    print(f"cross/nats throughput at {k:>2} in flight: {t[0]:.2f}x (paired by round; rounds {t[1]:.2f}-{t[2]:.2f})")
    a = paired(lambda r: (runs[("cross", k, r)]["p50_us"] - runs[("same", k, r)]["p50_us"]) / runs[("nats", k, r)]["p50_us"], k)
    print(f"added p50 (cross - same) over one NATS request-reply p50 at {k:>2} in flight: {a[0]:.2f}x (paired by round; rounds {a[1]:.2f}-{a[2]:.2f})")
PY
