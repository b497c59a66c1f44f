#!/usr/bin/env bash
# run.sh - run every libFuzzer target for a number of executions and report what each did.
#
#   tests/fuzz/run.sh [RUNS] [BUILD_DIR]        (defaults: 1000000, build-fuzz)
#
# Builds the targets first (clang, Debug, -j2) unless BUILD_DIR already holds a clang build.
# Each target runs single-process over a scratch copy of its seed corpus (tests/fuzz/corpus/NAME)
# for RUNS executions; a crash, leak, timeout or failed property stops that target and leaves
# its reproducer in BUILD_DIR/fuzz-artifacts/NAME/. The table at the end has, per target, the
# executions done, the corpus size reached, the coverage (features) and the findings; the exit
# status is 1 if any target found something.
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
runs=${1:-1000000}
build=${2:-$top/build-fuzz}
targets=(frame handshake ctl_request config argspec tls13_record cluster_wire)

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang >/dev/null || exit 1
fi
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}" >/dev/null || exit 1

status=0
report=()
for name in "${targets[@]}"; do
    bin=$build/tests/fuzz/fuzz_$name
    work=$build/fuzz-work/$name
    artifacts=$build/fuzz-artifacts/$name/
    rm -rf "$work" "$artifacts"
    mkdir -p "$work" "$artifacts"
    cp -r "$top/tests/fuzz/corpus/$name/." "$work/"
    log=$build/fuzz-$name.log
    start=$(date +%s)
    "$bin" -runs="$runs" -timeout=10 -max_len=8192 -print_final_stats=1 \
        -artifact_prefix="$artifacts" "$work" >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    features=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    corpus=$(ls "$work" | wc -l)
    found=$(ls "$artifacts" | wc -l)
    if [ $rc -ne 0 ] || [ "$found" -gt 0 ]; then
        status=1
        verdict="FOUND $found (rc $rc): $(ls "$artifacts" | head -3 | tr '\n' ' ')see $log"
    else
        verdict="none"
    fi
    report+=("$(printf '%-12s %12s %8s %8s %6ss  %s' "$name" "${execs:-?}" "$corpus" \
        "${features:-?}" "$secs" "$verdict")")
    echo "${report[-1]}"
done
echo
printf '%-12s %12s %8s %8s %7s  %s\n' target executions corpus features time findings
printf '%s\n' "${report[@]}"
exit $status
