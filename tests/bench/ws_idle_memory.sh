#!/usr/bin/env bash
# ws_idle_memory.sh - iotd's resident memory per idle, logged-in browser session: N WebSockets
# on /ws, each logged in by the session cookie (what a console tab left open costs), held open
# and silent. Not part of the test suite: run it by hand.
#
#   tests/bench/ws_idle_memory.sh [BUILD_DIR] [N]        (defaults: build-release, 1000)
#
# It starts iotd (BUILD_DIR's, Release) on a temporary state dir with its own MariaDB and a web
# listener, registers one user, logs in once with the password for a cookie (one Argon2id
# check, not N), then opens the N WebSockets with that cookie (each answered WELCOME at once),
# reads iotd's VmRSS before and after (after a settling second), and prints one line. Every
# step is bounded: the opening in count and time (120 s), iotd's start in time (60 s).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$top/build-release}" && pwd)
N=${2:-1000}
work=$(mktemp -d /tmp/iotd-ws-idle.XXXXXX)
iotd_pid=
cleanup() {
    [ -z "$iotd_pid" ] || kill "$iotd_pid" 2>/dev/null || true
    [ -z "$iotd_pid" ] || wait "$iotd_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
ctl() { "$build/iotctl/iotctl" -s "$work/state/control.sock" "$@"; }

cat >"$work/iotd.conf" <<CONF
[iotd]
state_dir = $work/state
log_level = warn
[devices]
listen =
[web]
listen = 127.0.0.1:0
session_ttl_s = 3600
[database]
url = local
CONF
"$build/iotd/core/iotd" -f -c "$work/iotd.conf" >"$work/iotd.log" 2>&1 &
iotd_pid=$!
for _ in $(seq 1 600); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
ctl status >/dev/null || { echo "iotd did not start: $(tail -3 "$work/iotd.log")" >&2; exit 1; }
web_port=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["web"]["port"])')
ctl tenant add bench >/dev/null
printf 'password123\n' >"$work/pw"
ctl user add alice@bench --password-file "$work/pw" >/dev/null

TOP=$top python3 - "$web_port" "$N" "$iotd_pid" <<'PY'
import os, socket, sys, time
sys.path.insert(0, os.path.join(os.environ["TOP"], "tests", "integration"))
import ws_client

port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
origin = f"http://127.0.0.1:{port}"


def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


first = ws_client.Session("127.0.0.1", port, origin)
first.send({"type": "LOGIN", "id": 1, "user": "alice@bench", "password": "password123"})
welcome = first.reply(1)
assert welcome and welcome["type"] == "WELCOME", welcome
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall((f"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {origin}\r\n"
           f"X-Iotd-Ticket: {welcome['ticket']}\r\nConnection: close\r\n\r\n").encode())
answer = b""
while chunk := s.recv(4096):
    answer += chunk
cookie = next(line.split(":", 1)[1].strip().split(";")[0]
              for line in answer.decode().split("\r\n") if line.lower().startswith("set-cookie:"))
first.sock.close()
time.sleep(1)
before = rss_kib()
sessions, deadline = [], time.time() + 120
while len(sessions) < n and time.time() < deadline:
    ws = ws_client.Session("127.0.0.1", port, origin, cookie)
    m = ws.message()
    assert m["type"] == "WELCOME", m
    sessions.append(ws)
time.sleep(1)
after = rss_kib()
print(f"ws idle: {len(sessions)} logged-in WebSocket sessions, iotd RSS {before} -> {after} KiB: "
      f"{(after - before) * 1024 / max(1, len(sessions)):.0f} bytes per session")
for ws in sessions:
    ws.sock.close()
PY
