#!/usr/bin/env bash
# iottop (issue 6) against a real iotd with 20 simulated devices: batch JSON agrees with
# `iotctl status`, batch text has its tables, an unreachable daemon is exit 1; then the
# interactive screen under tmux: panels switch with 1-5 and Tab, sorting reorders, "/" narrows
# the sessions, space shows PAUSED, iotd going away is reported and survived, q quits and the
# terminal is back in cooked mode.
. "$(dirname "$0")/lib.sh"
: "${IOTSIM_BIN:?IOTSIM_BIN must point at iotsim}"
: "${IOTTOP_BIN:?IOTTOP_BIN must point at iottop}"
command -v tmux >/dev/null || fail "tmux is needed for the interactive checks"

T_DEVICES="listen = 127.0.0.1:0"
t_start
expect 0 --json status
port=$(json_get 'j["devices"]["port"]')
expect 0 tenant add acme
expect 0 tenant add globex
expect 0 type add thermo --tenant acme
expect 0 type add thermo --tenant globex
: >"$T_DIR/fleet.jsonl"
for i in $(seq 1 15); do
    "$IOTCTL_BIN" -s "$T_SOCK" --json device add "sim-$i" --tenant acme --type thermo \
        >>"$T_DIR/fleet.jsonl" || fail "device add sim-$i"
done
for i in $(seq 1 5); do
    "$IOTCTL_BIN" -s "$T_SOCK" --json device add "gx-$i" --tenant globex --type thermo \
        >>"$T_DIR/fleet.jsonl" || fail "device add gx-$i"
done
"$IOTSIM_BIN" -c "127.0.0.1:$port" -f "$T_DIR/fleet.jsonl" --stats-interval 0 --duration 200 \
    >"$T_DIR/sim.log" 2>&1 &
sim=$!
# Whatever happens, the simulator and the tmux server go with the test.
TMUX_SOCK="iottop-it-$$"
tm() { tmux -L "$TMUX_SOCK" "$@"; }
t_tmux_cleanup() {
    tm kill-server 2>/dev/null
    if [ -n "${sim:-}" ]; then kill -INT "$sim" 2>/dev/null; fi
}
trap 'status=$?; t_tmux_cleanup; (exit $status); t_cleanup' EXIT
online=0
for _ in $(seq 1 60); do
    ctl --json status
    online=$(json_get 'j["devices"]["online"]')
    [ "$online" -ge 20 ] && break
    sleep 0.5
done
[ "$online" -eq 20 ] || fail "only $online of 20 simulated devices online"

# ---- batch mode --------------------------------------------------------------------------
top() { OUT=$("$IOTTOP_BIN" -s "$T_SOCK" "$@" 2>&1) && RC=0 || RC=$?; }

top -b -n 2 --json -d 0.5
T_CHECKS=$((T_CHECKS + 1))
[ "$RC" -eq 0 ] || fail "iottop -b -n 2 --json -> exit $RC: $OUT"
[ "$(wc -l <<<"$OUT")" -eq 2 ] || fail "want 2 JSON lines: $OUT"
snap=$(tail -n 1 <<<"$OUT")
ctl --json status
status_json=$OUT
check() { # check PYTHON-EXPR: evaluated with s = last snapshot, st = iotctl status
    T_CHECKS=$((T_CHECKS + 1))
    python3 - "$1" "$snap" "$status_json" <<'PY' || fail "batch JSON check failed: $1"
import json, sys
expr, s, st = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
ok = eval(expr)
if not ok:
    print("false:", expr, file=sys.stderr)
    print(json.dumps(s)[:2000], file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}
check 's["totals"]["connections"]["device"] == st["devices"]["online"] == 20'
check 's["sessions"]["total"] == st["devices"]["connections"]'
check 's["pid"] == st["pid"] and s["version"] == st["version"]'
check 'sum(t["sessions"] for t in s["threads"] if t["role"] == "io") == 20'
check 'len([t for t in s["threads"] if t["role"] == "io"]) == st["io_threads"]'
check 'len(s["sessions"]["top"]) == 20 and all(x["tenant"] in ("acme", "globex") for x in s["sessions"]["top"])'
check 's["meters"]["connections"] == 20 + s["totals"]["connections"]["control"]'
check 'all(t["cpu_percent"] is not None and t["cpu_percent"] >= 0 for t in s["threads"])'
check 'all(q["enqueued_per_s"] is not None and q["enqueued_per_s"] >= 0 for q in s["queues"])'
check '450 <= s["interval_ms"] <= 1500'
check 's["totals"]["auth_failures"] == st["devices"]["auth_failures"]'

top -b -n 1
[ "$RC" -eq 0 ] || fail "iottop -b -n 1 -> exit $RC: $OUT"
contains "connections 21 (device 20, user 0, control 1)"
contains "Threads"
contains "Queues"
contains "Sessions (top 20 of 20 by frames_in)"
contains "inbox:io0"
contains "gx-3"

OUT=$("$IOTTOP_BIN" -b -n 1 -s "$T_DIR/nothing.sock" 2>&1 >/dev/null) && RC=0 || RC=$?
T_CHECKS=$((T_CHECKS + 1))
[ "$RC" -eq 1 ] || fail "unreachable daemon: exit $RC, want 1"
contains "cannot reach iotd at $T_DIR/nothing.sock"
OUT=$(IOTD_SOCKET=$T_SOCK "$IOTTOP_BIN" -b -n 1 --json 2>&1) && RC=0 || RC=$?
T_CHECKS=$((T_CHECKS + 1))
[ "$RC" -eq 0 ] || fail "IOTD_SOCKET not honoured: $OUT"
top -b -d 0.01
T_CHECKS=$((T_CHECKS + 1))
[ "$RC" -eq 2 ] || fail "-d 0.01 should be a usage error, got $RC"

# ---- interactive mode under tmux ---------------------------------------------------------
screen_of() { tm capture-pane -p -t top; }
# wait_for TEXT [ABSENT]: poll the screen until TEXT shows (or, with ABSENT, disappears).
wait_for() {
    T_CHECKS=$((T_CHECKS + 1))
    for _ in $(seq 1 50); do
        SCREEN=$(screen_of)
        if [ -z "${2:-}" ]; then
            case "$SCREEN" in *"$1"*) return 0 ;; esac
        else
            case "$SCREEN" in *"$1"*) ;; *) return 0 ;; esac
        fi
        sleep 0.2
    done
    fail "screen ${2:+still }shows${2:+ }${2:-no} '$1':
$SCREEN"
}
# The first row under the column header of the current panel.
first_row() { screen_of | awk '/^(NAME|PRINCIPAL|ORIGIN| *TIME)/ {getline; print; exit}'; }

# A shell inside tmux runs iottop, so after q we can check the terminal it left behind.
tm new-session -d -s top -x 160 -y 45 "env -u NO_COLOR TERM=xterm-256color bash --norc --noprofile"
tm send-keys -t top "$IOTTOP_BIN -s $T_SOCK" Enter
wait_for "1 Threads"
wait_for "inbox:io0" absent # the Threads panel is first: no queue rows
wait_for "io0"
tm send-keys -t top 2
wait_for "inbox:io0"
wait_for "DEPTH"
tm send-keys -t top 3
wait_for "PRINCIPAL"
wait_for "20 shown of 20"
tm send-keys -t top Tab
wait_for "ORIGIN"
tm send-keys -t top 5
wait_for "authenticated"
tm send-keys -t top Tab # wraps to Threads
wait_for "ROLE"

# Sorting: sessions by principal ascending (s steps through the columns), then reversed.
tm send-keys -t top 3
wait_for "FRM_INv"
for _ in 1 2 3 4 5; do tm send-keys -t top s; done
wait_for "PRINCIPAL^"
row=$(first_row)
T_CHECKS=$((T_CHECKS + 1))
case "$row" in gx-1\ *) ;; *) fail "sorted by principal, first row is: $row" ;; esac
tm send-keys -t top r
wait_for "PRINCIPALv"
row=$(first_row)
T_CHECKS=$((T_CHECKS + 1))
case "$row" in sim-9\ *) ;; *) fail "reverse sort, first row is: $row" ;; esac
tm send-keys -t top '<'
wait_for "FRM_OUTv" absent
wait_for "PRINCIPAL"

# Filter: "/" then text narrows the sessions; tenant matches too; Esc clears.
tm send-keys -t top / s i m - 1 Enter
wait_for "Filter: sim-1"
wait_for "7 shown of 20" # sim-1, sim-10 .. sim-15
tm send-keys -t top / BSpace BSpace BSpace BSpace BSpace g l o b e x Enter
wait_for "5 shown of 20"
SCREEN=$(screen_of)
T_CHECKS=$((T_CHECKS + 1))
case "$SCREEN" in *sim-*) fail "filter globex still shows acme devices:
$SCREEN" ;; esac
tm send-keys -t top Escape
wait_for "20 shown of 20"

# Pause and resume; interval keys.
tm send-keys -t top ' '
wait_for "PAUSED"
tm send-keys -t top ' '
wait_for "PAUSED" absent
tm send-keys -t top +
wait_for "every 2.0s"
tm send-keys -t top - -
wait_for "every 0.5s"
tm send-keys -t top h
wait_for "this help"
tm send-keys -t top x
wait_for "this help" absent

# iotd goes away: the screen says so and keeps running; it comes back: the screen resumes.
t_stop
wait_for "iotd unreachable at $T_SOCK"
t_start
wait_for "unreachable" absent
wait_for "Uptime: 00:00"

# assert_cooked MARK: run stty in the shell iottop returned to; echo and icanon must be on
# (grep -x matches "echo", never "-echo").
assert_cooked() {
    tm send-keys -t top "stty -a | tr ' ' '\\n' | grep -x -e echo -e icanon | sort | tr '\\n' ' '; echo $1" Enter
    wait_for "icanon $1"
    T_CHECKS=$((T_CHECKS + 1))
    grep -q "^echo icanon $1" <<<"$(screen_of)" || fail "terminal not restored ($1):
$(screen_of)"
}

# q quits and the terminal is cooked again.
tm send-keys -t top q
sleep 0.5
assert_cooked AFTER-Q

# SIGTERM restores the terminal too.
tm send-keys -t top clear Enter "$IOTTOP_BIN -s $T_SOCK" Enter
wait_for "1 Threads"
shell_pid=$(tm display-message -p -t top '#{pane_pid}')
top_pid=$(pgrep -P "$shell_pid") || fail "iottop is not running under the tmux shell"
kill -TERM "$top_pid" || fail "cannot signal iottop"
sleep 0.5
assert_cooked AFTER-TERM

kill -INT $sim 2>/dev/null
wait $sim 2>/dev/null || true
sim=
t_stop
t_done
