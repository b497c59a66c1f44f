#!/usr/bin/env bash
# hub/run.sh - the hub's fan-out with few and with many watchers: durable events per second
# through hub_durable (hub_bench.c, in process) with 10 and with 10,000 watchers (six match the
# events, the rest watch other devices), for BUILD and optionally BASE_BUILD, taking turns
# round by round; prints each round and the median ratio BUILD/BASE per watcher count. Not
# part of the test suite: run it by hand.
#
#   tests/bench/hub/run.sh BUILD [BASE_BUILD]
#   WATCHERS="10 10000"   watcher counts (default)
#   EVENTS=200000         events per run
#   ROUNDS=9              rounds (each: every build, every watcher count, order alternating)
#
# The bench is compiled from this tree against each build's static libraries (the hub's API,
# hub.h, is what both must share), so BASE_BUILD may be a build of an older tree.
set -euo pipefail
top=$(cd "$(dirname "$0")/../../.." && pwd)
build=${1:?usage: run.sh BUILD [BASE_BUILD]}
base=${2:-}
watchers=${WATCHERS:-10 10000}
events=${EVENTS:-200000}
rounds=${ROUNDS:-9}
work=$(mktemp -d /tmp/iotd-hubbench.XXXXXX)
trap 'rm -rf "$work"' EXIT

compile() { # build out
    local libs
    mapfile -t libs < <(find "$1/iotd" "$1/common" "$1/firmware" -name '*.a' 2>/dev/null)
    [ ${#libs[@]} -gt 0 ] || { echo "no libraries in $1: build it first" >&2; exit 1; }
    # shellcheck disable=SC2046 # pkg-config output is a list of flags
    cc -std=gnu11 -O2 -Wall -Wextra -Werror -I"$top/iotd" -I"$top/iotd/registry" \
        -I"$top/common" -I"$top/firmware/include" $(pkg-config --cflags libuv libmariadb libcjson) \
        -o "$2" "$top/tests/bench/hub/hub_bench.c" -Wl,--start-group "${libs[@]}" -Wl,--end-group \
        $(pkg-config --libs libuv libmariadb libcjson libssl libcrypto libargon2 libsystemd inih zlib) \
            -lwslay -lpthread -lm
}

names=(new)
compile "$build" "$work/bench-new"
if [ -n "$base" ]; then
    names+=(base)
    compile "$base" "$work/bench-base"
fi

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
declare -A rate
for r in $(seq 1 "$rounds"); do
    order=("${names[@]}")
    [ $((r % 2)) -eq 0 ] && [ ${#names[@]} -eq 2 ] && order=(base new)
    for w in $watchers; do
        for n in "${order[@]}"; do
            line=$("$work/bench-$n" "$w" "$events")
            rate[$n,$w,$r]=$(sed 's/.*events_per_s=\([0-9]*\).*/\1/' <<<"$line")
            echo "round $r $n: $line"
        done
    done
done

for w in $watchers; do
    for n in "${names[@]}"; do
        vals=$(for r in $(seq 1 "$rounds"); do echo "${rate[$n,$w,$r]}"; done | sort -n)
        echo "$n, $w watchers: median $(sed -n "$(((rounds + 1) / 2))p" <<<"$vals") events/s"
    done
    if [ -n "$base" ]; then
        ratios=$(for r in $(seq 1 "$rounds"); do
            python3 -c "import sys; print(f'{int(sys.argv[1]) / int(sys.argv[2]):.2f}')" \
                "${rate[new,$w,$r]}" "${rate[base,$w,$r]}"
        done | sort -n)
        echo "new/base, $w watchers, paired by round: median $(sed -n "$(((rounds + 1) / 2))p" \
            <<<"$ratios")x, range $(head -1 <<<"$ratios")-$(tail -1 <<<"$ratios")x"
    fi
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
