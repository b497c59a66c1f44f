#!/usr/bin/env bash
# dev.sh - the two set-up commands of the README, for a fresh Debian 12 machine (as root):
#
#   ./dev.sh demo   install what is missing, build, start iotd on its own MariaDB with a demo
#                   tenant, device type, catalogue, user and access rules; print how to use it
#   ./dev.sh test   install what is missing, build, check clang-format, run the whole test suite
#                   under ASan+UBSan and under TSan, then libFuzzer (fails if a run executed no test)
#
# Also: ./dev.sh unit (the inner loop: a Debug build and the unit tests only),
# ./dev.sh format (check clang-format on every C file), ./dev.sh stop (stop the demo),
# ./dev.sh deps (only install packages).
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD

packages=(build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
          libuv1-dev libssl-dev openssl libmariadb-dev mariadb-server-core mariadb-client-core
          libcjson-dev libcmocka-dev libargon2-dev libinih-dev libsystemd-dev scdoc
          libncurses-dev tmux procps python3 util-linux logrotate zlib1g-dev libwslay-dev curl python3-prometheus-client
          nats-server libnats-dev
          dpkg-dev file gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm chromium
          gcc-avr avr-libc arduino-core-avr
          galera-4 iproute2)

deps() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    # Node.js >= 20 and npm (the console's tests, clients/js) by command, not by package: a
    # machine's Node.js may come from another package than Debian's nodejs (which is 18 on
    # Debian 12 and would replace it).
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "dev.sh: installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "dev.sh: run as root (or install: ${missing[*]})" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() { # build DIR TYPE [cmake args...]
    local dir=$1 type=$2
    shift 2
    cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
    cmake --build "$dir" -j"$(nproc)"
}

demo_dir=$top/.demo
sock=$demo_dir/state/control.sock

demo() {
    deps
    build "$top/build" Release
    local bin=$top/build
    mkdir -p "$demo_dir/state"
    cat >"$demo_dir/iotd.conf" <<CONF
# The demo's configuration: everything default except where the state lives.
[iotd]
state_dir = $demo_dir/state
[devices]
listen = 127.0.0.1:7800
[web]
listen = 127.0.0.1:8080
root = $top/build/web
[database]
url = local
CONF
    if [ -S "$sock" ] && "$bin/iotctl/iotctl" -s "$sock" status >/dev/null 2>&1; then
        echo "dev.sh: iotd already running"
    else
        echo "dev.sh: starting iotd (first start creates its MariaDB: a few seconds)"
        "$bin/iotd/core/iotd" -c "$demo_dir/iotd.conf"
    fi
    local ctl=("$bin/iotctl/iotctl" -s "$sock")
    # Registering is idempotent: "already exists" (exit 5) is fine on a second run.
    reg() {
        local out rc=0
        out=$("${ctl[@]}" "$@" 2>&1 >/dev/null) || rc=$?
        [ $rc -eq 0 ] || [ $rc -eq 5 ] || { echo "$out" >&2; return $rc; }
    }
    reg tenant add demo --display-name "Demo tenant"
    reg type add thermo --tenant demo --description "temperature sensor with a LED matrix"
    reg message add thermo read_temp --tenant demo --direction command --timeout 2000 --description "read the temperature"
    reg message add thermo set_pixel --tenant demo --args "x:int y:int color:str" --description "light one LED"
    reg message add thermo echo --tenant demo --args "text:str" --description "answer with the same text"
    reg message add thermo start_events --tenant demo --args "period_ms:uint?" --description "start periodic temperature events"
    reg message add thermo stop_events --tenant demo --description "stop periodic temperature events"
    reg message add thermo temperature --tenant demo --direction event --args "value:float unit:str" \
        --start start_events --stop stop_events --description "periodic temperature"
    printf 'demo-password\n' >"$demo_dir/alice.pw"
    chmod 600 "$demo_dir/alice.pw"
    reg user add alice@demo --role operator --password-file "$demo_dir/alice.pw"
    reg group add sensors --tenant demo --kind device
    # Ten simulated thermometers; their secrets stay in .demo/devices.jsonl (mode 0600).
    umask 077
    for i in $(seq 1 10); do
        if ! "${ctl[@]}" device show "thermo-$i" >/dev/null 2>&1; then
            "${ctl[@]}" --json device add "thermo-$i" --tenant demo --type thermo --name "Room $i" >>"$demo_dir/devices.jsonl"
        fi
        reg group member add sensors "thermo-$i" --tenant demo
    done
    umask 022
    if ! "${ctl[@]}" access list --tenant demo | grep -q "user:alice"; then
        "${ctl[@]}" access grant user:alice group:sensors --tenant demo --message read_temp >/dev/null
        "${ctl[@]}" access grant user:alice device:thermo-1 --tenant demo >/dev/null
        "${ctl[@]}" access grant user:alice group:sensors --tenant demo --message temperature >/dev/null
    fi
    # Alarm rules: too warm (with hysteresis, after 10 s), and a sensor gone quiet.
    reg alarm rule add too-warm --tenant demo --event temperature --on group:sensors --field value \
        --op '>' --threshold 24 --hysteresis 1 --for 10000 --severity major
    reg alarm rule add quiet --tenant demo --event temperature --on group:sensors --silence 60
    if ! pgrep -f "iotsim -c 127.0.0.1:7800 -f $demo_dir/devices.jsonl" >/dev/null; then
        # Each device reports its temperature every 5 s and keeps its sequence numbers in
        # $demo_dir/seq across restarts (events are acknowledged once durable).
        mkdir -p "$demo_dir/seq"
        nohup "$bin/firmware/sim/iotsim" -c 127.0.0.1:7800 -f "$demo_dir/devices.jsonl" \
            --events 0.2 --state-dir "$demo_dir/seq" --stats-interval 60 >>"$demo_dir/iotsim.log" 2>&1 &
    fi
    for _ in $(seq 1 50); do
        "${ctl[@]}" --json status | python3 -c 'import json,sys
sys.exit(json.load(sys.stdin)["devices"]["online"] < 10)' && break
        sleep 0.1
    done
    cat <<TXT

iotd is running (pid $(pgrep -f "iotd/core/iotd -c $demo_dir/iotd.conf" | head -1)) with its own MariaDB under $demo_dir/state/mariadb,
and ten simulated devices (iotsim) are connected to it.
Talk to it with iotctl (see man/iotctl.8):

  export IOTD_SOCKET=$sock PATH=$bin/iotctl:$bin/iottop:\$PATH
  iottop                                  # live view: threads, queues, sessions, events (q quits)
  iotctl status
  iotctl device list                      # ten simulated devices online (iotsim)
  iotctl device history thermo-1
  iotctl type show thermo --tenant demo
  iotctl access check user:alice thermo-1 set_pixel --tenant demo
  iotctl send --as alice@demo thermo-1 read_temp
  iotctl send --as alice@demo thermo-2 set_pixel 1 2 red   # denied: no rule for it
  iotctl audit
  iotctl watch --tenant demo              # events and alarm changes as they happen (Ctrl-C ends)
  iotctl events --device thermo-1 --since 10m
  iotctl events --tenant demo --since 1h --csv > temperatures.csv
  iotctl alarm list --tenant demo
  iotctl alarm rule list --tenant demo
  iotctl changes list
  curl http://127.0.0.1:8080/healthz      # HTTP: /healthz, /metrics
  curl http://127.0.0.1:8080/metrics

The web console: http://127.0.0.1:8080/  (log in as alice@demo, password demo-password)

Logs: $demo_dir/state/iotd.log, $demo_dir/iotsim.log    Stop: ./dev.sh stop
TXT
}

stop() {
    pkill -INT -f "iotsim -c 127.0.0.1:7800 -f $demo_dir/devices.jsonl" || true
    local pid
    pid=$(pgrep -f "iotd/core/iotd -c $demo_dir/iotd.conf" || true)
    if [ -z "$pid" ]; then
        echo "dev.sh: iotd is not running"
        return 0
    fi
    kill -TERM $pid
    for _ in $(seq 1 300); do kill -0 $pid 2>/dev/null || { echo "dev.sh: stopped"; return 0; }; sleep 0.1; done
    echo "dev.sh: iotd did not stop in 30 s" >&2
    return 1
}

# ctest in DIR with ARGS; fails if it failed or ran no test.
run_ctest() {
    local dir=$1
    shift
    local log=$dir/ctest.log
    (cd "$dir" && ctest --output-on-failure --timeout 300 "$@") 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    # A run that executed no test is a failure, whatever ctest's exit code says.
    if ! grep -qE '^[0-9]+% tests passed, [0-9]+ tests failed out of [1-9][0-9]*' "$log"; then
        echo "dev.sh: no test ran in $dir" >&2
        return 1
    fi
    return "$rc"
}

# Every C file of the tree is clang-format clean (.clang-format at the root); lists the ones
# that are not and fails.
format_check() {
    local bad
    bad=$(git ls-files '*.c' '*.h' | xargs clang-format --dry-run 2>&1 | grep -oE '^[^:]+\.(c|h)' | sort -u || true)
    if [ -n "$bad" ]; then
        echo "dev.sh: not clang-format clean (run clang-format -i on them):" >&2
        echo "$bad" >&2
        return 1
    fi
}

# The inner loop: a Debug build (no sanitizer, so it links fast) and the unit tests (a few of
# them start a private MariaDB of their own; none needs iotd).
unit() {
    deps
    build "$top/build-unit" Debug
    run_ctest "$top/build-unit" -L unit -j"$(nproc)"
}

test_suite() {
    deps
    format_check
    # The Release build must compile too (-O2 enables warnings Debug does not); the demo uses it.
    # It is configured for the system's paths, so that the package test packages it as it is.
    build "$top/build" Release -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc
    # What is built rather than how iotd runs (the package, the install, the console in a
    # browser): once, on the Release tree.
    run_ctest "$top/build" -L once -j2
    # The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer, then what crosses
    # threads under ThreadSanitizer (a report makes the process exit non-zero, so its test
    # fails; tests labelled "single" exercise one thread's work: tests/integration/CMakeLists.txt).
    # (The browser tests are "once" tests: the sanitizer trees need not npm-install their tools.)
    build "$top/build-test" Debug -DIOTD_SANITIZE=address -DIOTD_BROWSER_TESTS=OFF
    run_ctest "$top/build-test" -LE once -j2
    build "$top/build-tsan" Debug -DIOTD_SANITIZE=thread -DIOTD_BROWSER_TESTS=OFF
    run_ctest "$top/build-tsan" -LE "once|single" -j2
    # Every parser under libFuzzer (clang only), each for a bounded time (tests/fuzz; for a
    # number of executions: tests/fuzz/run.sh).
    cmake -S "$top" -B "$top/build-fuzz" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang >/dev/null
    cmake --build "$top/build-fuzz" -j"$(nproc)" \
        --target fuzz_frame fuzz_http fuzz_handshake fuzz_device fuzz_ctl_request fuzz_config \
        fuzz_argspec fuzz_ws_json fuzz_tls13_record fuzz_cluster_wire
    run_ctest "$top/build-fuzz" -L fuzz -j"$(nproc)"
}

case "${1:-}" in
demo) demo ;;
test) test_suite ;;
unit) unit ;;
format) format_check ;;
stop) stop ;;
deps) deps ;;
*)
    echo "usage: $0 demo|test|unit|format|stop|deps" >&2
    exit 2
    ;;
esac
