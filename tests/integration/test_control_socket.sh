#!/usr/bin/env bash
# The control socket under abuse: garbage, half requests, wrong types, unknown commands, a line
# over the limit, clients that vanish mid-request, and peers that are not allowed. iotd must
# answer each with an error and keep serving.
. "$(dirname "$0")/lib.sh"
t_config
chmod 755 "$T_DIR"
mkdir -p "$T_STATE"
chmod 755 "$T_STATE"
sed -i "s|^\[iotd\]|[iotd]\ncontrol_mode = 0666|" "$T_CONF"
t_start

# raw LINES...: send lines on the socket, print every reply line (2 s quiet period ends it).
raw() {
    python3 - "$T_SOCK" "$@" <<'PY'
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
for line in sys.argv[2:]:
    s.sendall(os.fsencode(line) + b"\n")
s.settimeout(2)
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if data.count(b"\n") >= len(sys.argv) - 2:
            break
except socket.timeout:
    pass
sys.stdout.write(data.decode("utf-8", "replace"))
PY
}

OUT=$(raw 'hello' '{"id":1}' '[1,2,3]' '{"id":"x","cmd":"status"}' '{"id":-4,"cmd":"status"}' \
    '{"id":2,"cmd":"no.such"}' '{"id":3,"cmd":"tenant.add","args":{"name":7}}' \
    '{"id":4,"cmd":"tenant.add","args":{"nam":"x"}}' '{"id":5,"cmd":"tenant.add","args":[]}' \
    '{"id":6,"cmd":"status"}' $'\x01\x02\xff\xfe' '{"id":7,"cmd":"tenant.add","args":{"name":"ok1"}}')
echo "$OUT"
[ "$(grep -c '"ok":false' <<<"$OUT")" -eq 10 ] || fail "expected 10 error replies"
contains '"id":2,"ok":false,"error":{"code":"bad_request","message":"unknown command'
contains '"id":3,"ok":false,"error":{"code":"bad_args"'
contains '"id":6,"ok":true'
contains '"id":7,"ok":true'

# A line over the 1 MiB limit: error reply and disconnect; the daemon keeps serving others.
OUT=$(python3 - "$T_SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
try:
    s.sendall(b"x" * (2 * 1024 * 1024))
except OSError:
    pass
s.settimeout(5)
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except (socket.timeout, OSError):
    pass
print(data.decode())
PY
)
contains "too long"

# A client that sends a change and disconnects at once: the change still commits, no crash.
python3 - "$T_SOCK" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'{"id":1,"cmd":"tenant.add","args":{"name":"vanishing"}}\n')
s.close()
PY
sleep 1
expect 0 tenant show vanishing
expect 0 status

# Not root, not iotd's uid, not in an admin group: refused by peer credentials (the socket
# mode itself lets everyone connect here).
if id nobody >/dev/null 2>&1; then
    ctl_nobody() { OUT=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$IOTCTL_BIN" -s "$T_SOCK" "$@" 2>&1) && RC=0 || RC=$?; }
    ctl_nobody status
    [ "$RC" -eq 4 ] || fail "nobody: exit $RC, want 4: $OUT"
    contains "not allowed"
    # Logged by name and process, from the peer's credentials (issue 17 section 3).
    grep -q "control: refused nobody (uid=$(id -u nobody) pid=[0-9]*)" "$T_LOG" ||
        fail "refusal not logged by name: $(grep 'control: refused' "$T_LOG")"
    # With the default mode 0600 the kernel refuses before iotd sees the peer.
    t_stop
    sed -i '/control_mode/d' "$T_CONF"
    t_start
    [ "$(stat -c %a "$T_SOCK")" = "600" ] || fail "control socket mode $(stat -c %a "$T_SOCK")"
    ctl_nobody status
    [ "$RC" -eq 4 ] || fail "nobody on a 0600 socket: exit $RC, want 4: $OUT"
fi
expect 0 status
t_stop
t_done
