#!/usr/bin/env bash
# One iotd per state_dir (issue 17): a second iotd started on the running one's state_dir, with
# another port and control socket, exits 1 naming the holder's pid, in the foreground and when
# detaching, and leaves the first one's MariaDB alone: the first iotd keeps serving and
# committing. After the first one stops, the directory can be used again.
. "$(dirname "$0")/lib.sh"
T_DEVICES="listen = 127.0.0.1:0"
t_start
expect 0 tenant add acme

cat >"$T_DIR/second.conf" <<CONF
[iotd]
state_dir = $T_STATE
control_socket = $T_DIR/second.sock
threads = 1
[devices]
listen = 127.0.0.1:0
[database]
url = local
CONF
for mode in -f ""; do
    rc=0
    timeout 60 "$IOTD_BIN" $mode -c "$T_DIR/second.conf" >"$T_DIR/second.out" 2>&1 || rc=$?
    T_CHECKS=$((T_CHECKS + 1))
    [ $rc -eq 1 ] || fail "second iotd ($mode) exited $rc, want 1: $(cat "$T_DIR/second.out")"
    T_CHECKS=$((T_CHECKS + 1))
    grep -q "in use by another iotd (pid $T_PID;" "$T_DIR/second.out" ||
        fail "second iotd does not name pid $T_PID: $(cat "$T_DIR/second.out")"
done
[ -S "$T_DIR/second.sock" ] && fail "the second iotd opened its control socket"

# The first one is untouched: its database still commits, its MariaDB still runs.
sleep 1
expect 0 tenant add globex
expect 0 tenant list
contains globex
pgrep -f "datadir=$T_STATE/mariadb" >/dev/null || fail "the first iotd's mariadbd is gone"

t_stop
t_start # the lock went with the process
expect 0 tenant show globex
t_stop
t_done
