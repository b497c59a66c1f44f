#!/usr/bin/env bash
# Log rotation (issue 19): a detached iotd logs to state_dir/iotd.log; after logrotate renames
# the file, SIGHUP makes iotd log to a new file of the original name, and nothing more goes to
# the renamed one. Also the shipped logrotate configuration is valid (logrotate -d).
. "$(dirname "$0")/lib.sh"
t_config
log=$T_STATE/iotd.log
"$IOTD_BIN" -c "$T_CONF" >"$T_DIR/start.out" 2>&1 || fail "detached start: $(cat "$T_DIR/start.out")"
T_PID=$(cat "$T_STATE/iotd.lock" 2>/dev/null | tr -dc 0-9)
[ -n "$T_PID" ] || fail "no pid in $T_STATE/iotd.lock"
T_LOG=$log # lib.sh shows its tail on failure
for _ in $(seq 1 600); do "$IOTCTL_BIN" -s "$T_SOCK" status >/dev/null 2>&1 && break; sleep 0.1; done
expect 0 status
[ -s "$log" ] || fail "the detached iotd did not log to $log"

mv "$log" "$log.1"
expect 0 tenant add before-hup # logged ("control: tenant.add by ...") to the renamed file
kill -HUP "$T_PID"
for _ in $(seq 1 50); do grep -q "reloaded configuration" "$log" 2>/dev/null && break; sleep 0.1; done
T_CHECKS=$((T_CHECKS + 1))
grep -q "reloaded configuration" "$log" 2>/dev/null || fail "no new $log after SIGHUP"
size=$(stat -c %s "$log.1")
expect 0 tenant add after-hup
expect 0 tenant list
contains after-hup
sleep 0.5
T_CHECKS=$((T_CHECKS + 1))
[ "$(stat -c %s "$log.1")" = "$size" ] || fail "iotd still writes to the rotated file"
T_CHECKS=$((T_CHECKS + 1))
grep -q "control: tenant.add by" "$log" || fail "the new log lacks what came after SIGHUP: $(tail -5 "$log")"

# A log file that cannot be reopened: iotd says so and keeps logging to the old one.
mv "$log" "$log.2"
mkdir "$log" # a directory in the way
kill -HUP "$T_PID"
for _ in $(seq 1 50); do grep -q "reopening the log file" "$log.2" && break; sleep 0.1; done
T_CHECKS=$((T_CHECKS + 1))
grep -q "reopening the log file" "$log.2" || fail "a failed reopen is not logged: $(tail -3 "$log.2")"
expect 0 status
rmdir "$log"

if command -v logrotate >/dev/null; then
    conf=${IOT_BUILD_DIR:?}/dist/iotd.logrotate # generated from dist/iotd.logrotate.in
    T_CHECKS=$((T_CHECKS + 1))
    logrotate -d "$conf" >"$T_DIR/logrotate.out" 2>&1 || fail "logrotate -d: $(cat "$T_DIR/logrotate.out")"
fi
kill -TERM "$T_PID"
for _ in $(seq 1 100); do kill -0 "$T_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$T_PID" 2>/dev/null && fail "iotd did not stop on SIGTERM"
T_PID=
t_done
