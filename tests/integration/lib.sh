# lib.sh - helpers for integration tests: a real iotd on a temporary state dir with its own
# MariaDB, driven through the real iotctl. Sourced by each test_*.sh; ctest passes the build's
# binaries in IOTD_BIN and IOTCTL_BIN.
#
# Every check prints what it compared; the first failure stops the test with exit 1 and dumps
# the tail of iotd's log. Cleanup (iotd and its mariadbd) runs on every exit path.
set -u

: "${IOTD_BIN:?IOTD_BIN must point at the iotd binary}"
: "${IOTCTL_BIN:?IOTCTL_BIN must point at the iotctl binary}"

T_DIR=$(mktemp -d /tmp/iotd-it.XXXXXX)
T_STATE=$T_DIR/state
T_SOCK=$T_STATE/control.sock
T_CONF=$T_DIR/iotd.conf
T_LOG=$T_DIR/iotd.log
T_PID=
T_CHECKS=0
# Other processes a test starts (more iotd nodes, a nats-server): stopped at exit, after T_PID's
# peers and before it (the first node's mariadbd serves them all).
T_EXTRA_PIDS=()

t_cleanup() {
    local rc=$?
    local p
    for p in "${T_EXTRA_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${T_EXTRA_PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    if [ -n "$T_PID" ] && kill -0 "$T_PID" 2>/dev/null; then
        kill -TERM "$T_PID" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$T_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$T_PID" 2>/dev/null
    fi
    # A mariadbd left behind by a killed iotd: find it by its datadir.
    pkill -KILL -f "datadir=$T_STATE/mariadb" 2>/dev/null
    if [ $rc -ne 0 ] && [ -f "$T_LOG" ]; then
        echo "---- iotd log (tail) ----"
        tail -n 40 "$T_LOG"
    fi
    rm -rf "$T_DIR"
    exit $rc
}
trap t_cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Write the configuration. T_DEVICES holds the [devices] lines (default: no listener), and
# T_DATABASE more [database] lines.
t_config() {
    cat >"$T_CONF" <<CONF
[iotd]
state_dir = $T_STATE
threads = 2
log_level = debug
[devices]
${T_DEVICES:-listen =}
[database]
url = local
${T_DATABASE:-}
CONF
}

# t_ready PID SOCK: wait until iotd PID answers on control socket SOCK (60 s at most).
t_ready() {
    for _ in $(seq 1 600); do
        "$IOTCTL_BIN" -s "$2" status >/dev/null 2>&1 && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# A first start costs every test ~5 s (mariadb-install-db, then the migrations), so under ctest
# the tests start from a copy of a datadir that one iotd of this build made and stopped cleanly
# (made once per build and per set of migrations, under a lock: tests run in parallel;
# T_FRESH_DB=1 opts out). The first start itself stays tested: the package test, the unit tests
# with a private MariaDB (test_db_mariadb, the store's, the registry's) and the making of the
# template each run it.
t_db_template() {
    [ -n "${IOT_BUILD_DIR:-}" ] && [ -n "${IOT_SOURCE_DIR:-}" ] && [ -z "${T_FRESH_DB:-}" ] || return 0
    [ -d "$T_STATE/mariadb/data" ] && return 0
    grep -qE '^url *= *local *$' "$T_CONF" || return 0
    local key tpl
    key=$(cat "$IOT_SOURCE_DIR"/sql/*.sql | sha256sum | cut -c1-16)
    tpl=$IOT_BUILD_DIR/test-db-template/$key
    (
        flock 9 || exit 1
        [ -d "$tpl" ] && exit 0
        local dir pid ok=1
        dir=$(mktemp -d /tmp/iotd-tpl.XXXXXX)
        printf '[iotd]\nstate_dir = %s\n[devices]\nlisten =\n[database]\nurl = local\n' \
            "$dir/state" >"$dir/iotd.conf"
        "$IOTD_BIN" -f -c "$dir/iotd.conf" >"$dir/iotd.log" 2>&1 &
        pid=$!
        t_ready "$pid" "$dir/state/control.sock" && kill -TERM "$pid" && wait "$pid" && ok=0
        kill -KILL "$pid" 2>/dev/null
        if [ $ok -eq 0 ]; then
            mkdir -p "${tpl%/*}" && mv "$dir/state/mariadb/data" "$tpl.new" && mv "$tpl.new" "$tpl"
        else
            echo "lib.sh: no datadir template (a fresh start instead):" >&2
            tail -n 5 "$dir/iotd.log" >&2
        fi
        rm -rf "$dir" "$tpl.new"
    ) 9>"$IOT_BUILD_DIR/test-db-template.lock"
    [ -d "$tpl" ] || return 0
    mkdir -p "$T_STATE/mariadb" && chmod 0700 "$T_STATE/mariadb" &&
        cp -a --sparse=always "$tpl" "$T_STATE/mariadb/data" || fail "copying the datadir template"
}

# Start iotd in the foreground (as a child) and wait until the control socket answers.
t_start() {
    [ -f "$T_CONF" ] || t_config
    t_db_template
    "$IOTD_BIN" -f -c "$T_CONF" >>"$T_LOG" 2>&1 &
    T_PID=$!
    t_ready "$T_PID" "$T_SOCK" && return 0
    kill -0 "$T_PID" 2>/dev/null || fail "iotd exited during start-up"
    fail "iotd did not become ready in 60 s"
}

# t_device_addr: print HOST:PORT of the running iotd's device listener (listen = 127.0.0.1:0).
t_device_addr() {
    expect 0 --json status
    echo "127.0.0.1:$(json_get 'j["devices"]["port"]')"
}

# Stop with SIGTERM and require a clean exit 0.
t_stop() {
    kill -TERM "$T_PID"
    local rc=0
    wait "$T_PID" || rc=$?
    T_PID=
    [ $rc -eq 0 ] || fail "iotd exited with $rc after SIGTERM"
}

# ctl ARGS...: run iotctl against the test daemon; output in $OUT, exit status in $RC.
ctl() {
    OUT=$("$IOTCTL_BIN" -s "$T_SOCK" "$@" 2>&1) && RC=0 || RC=$?
}

# expect STATUS ARGS...: run iotctl and require its exit status.
expect() {
    local want=$1
    shift
    ctl "$@"
    T_CHECKS=$((T_CHECKS + 1))
    [ "$RC" -eq "$want" ] || fail "iotctl $* -> exit $RC, want $want; output:
$OUT"
}

# contains TEXT: the last output must contain TEXT.
contains() {
    T_CHECKS=$((T_CHECKS + 1))
    case "$OUT" in
    *"$1"*) ;;
    *) fail "output of the last command lacks '$1':
$OUT" ;;
    esac
}

# lacks TEXT: the last output must not contain TEXT.
lacks() {
    T_CHECKS=$((T_CHECKS + 1))
    case "$OUT" in
    *"$1"*) fail "output of the last command contains '$1':
$OUT" ;;
    esac
}

# json_get EXPR: evaluate a Python expression on the last output parsed as JSON (variable j).
json_get() {
    python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" <<<"$OUT"
}

# t_wait_online DEVICE True|False [LOG]: until iotd shows DEVICE online (or not), at most 30 s;
# a failure shows the tail of LOG (the device's own log) too.
t_wait_online() {
    for _ in $(seq 1 300); do
        ctl --json device show "$1"
        [ "$(json_get 'j["online"]')" = "$2" ] && return 0
        sleep 0.1
    done
    fail "$1 online is not $2: $OUT${3:+
$(tail -n 20 "$3")}"
}

# t_stored DEVICE EVENT COUNT [LOG]: until iotd has stored at least COUNT events named EVENT of
# DEVICE, at most 30 s.
t_stored() {
    for _ in $(seq 1 300); do
        ctl events --device "$1" --csv
        [ "$(grep -c ",$2," <<<"$OUT")" -ge "$3" ] && return 0
        sleep 0.1
    done
    fail "fewer than $3 stored $2 events of $1: $OUT${4:+
$(tail -n 20 "$4")}"
}

# t_free_port: print a TCP port of 127.0.0.1 that nothing listens on (for servers that cannot
# listen on port 0 and tell, such as nats-server).
t_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

t_done() {
    echo "ok: $T_CHECKS checks"
}
