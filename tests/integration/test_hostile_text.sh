#!/usr/bin/env bash
# Text from the network never reaches a log or a terminal raw (issue 17): an unauthenticated
# peer's FROM carrying UTF-8-encoded C1 controls (CSI, NEL), and an authenticated device's event
# fields carrying C1 controls and invalid UTF-8 (C0 and DEL are refused by the frame parser),
# are shown escaped in iotd's log,
# `iotctl stats`, `iotctl watch` and `iotctl events` (table and CSV); `iotctl --json watch`,
# `--json events` and `--json stats` print valid UTF-8 JSON with every control character escaped.
. "$(dirname "$0")/lib.sh"
T_DEVICES="listen = 127.0.0.1:0
handshake_timeout_ms = 20000"
t_start
expect 0 --json status
port=$(json_get 'j["devices"]["port"]')

expect 0 tenant add acme
expect 0 type add thermo --tenant acme
expect 0 message add thermo note --tenant acme --direction event --args "text:str"
expect 0 --json device add dev1 --tenant acme --type thermo
key=$(json_get 'j["secret"]')

# raw_bytes FILE: fail when FILE holds a C0 control other than tab and line ends, DEL, a C1
# control encoded in UTF-8, or invalid UTF-8.
raw_bytes() {
    python3 - "$1" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
try:
    text = data.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit(f"invalid UTF-8 at byte {e.start}: {data[max(0, e.start - 40):e.start + 10]!r}")
m = re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", text)
if m:
    sys.exit(f"raw control U+{ord(m.group()):04X}: {text[max(0, m.start() - 40):m.start() + 10]!r}")
PY
}
# json_lines FILE: every line of FILE is a JSON document.
json_lines() {
    python3 -c 'import json,sys
for n, line in enumerate(open(sys.argv[1], "rb"), 1):
    try:
        json.loads(line.decode("utf-8"))
    except Exception as e:
        sys.exit(f"line {n} is not JSON ({e}): {line[:200]!r}")' "$1"
}
check_clean() { # FILE WHAT
    T_CHECKS=$((T_CHECKS + 1))
    raw_bytes "$1" || fail "$2 shows network text raw"
}

"$IOTCTL_BIN" -s "$T_SOCK" watch --tenant acme >"$T_DIR/watch.txt" 2>&1 &
w_text=$!
"$IOTCTL_BIN" -s "$T_SOCK" --json watch --tenant acme >"$T_DIR/watch.json" 2>&1 &
w_json=$!
sleep 1

# An unauthenticated peer whose FROM is a terminal attack, held in its handshake while the
# operator looks at the statistics; then a device whose event fields are.
cat >"$T_DIR/wire.py" <<'PY'
import hashlib, hmac, os, socket, sys, time
US, EOT = b"\x1f", b"\x04"
def frame(*fields):
    return US.join(f if isinstance(f, bytes) else str(f).encode() for f in fields) + EOT
def recv(s):
    buf = b""
    while EOT not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return None
        buf += chunk
    return buf.split(EOT)[0].split(US)
port, what = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
if what == "peer":  # MARKER: HELLO from a hostile FROM, then hold the connection
    evil = b"\xc2\x9b31mEVIL\xc2\x9b0m\xc2\x85x"
    s.sendall(frame(evil, "iotd", "HELLO", 1, "proto=1", "type=thermo", b"fw=\xc2\x9b1",
                    "cnonce=" + os.urandom(32).hex()))
    print("peer got", recv(s))
    # A second one answers the challenge wrongly: its failure is logged with its FROM.
    s2 = socket.create_connection(("127.0.0.1", port), timeout=10)
    s2.sendall(frame(evil, "iotd", "HELLO", 1, "proto=1", "type=thermo", "fw=t",
                     "cnonce=" + os.urandom(32).hex()))
    print("peer 2 got", recv(s2))
    s2.sendall(frame(evil, "iotd", "AUTH", 2, "mac=" + "00" * 32))
    print("peer 2 got", recv(s2))
    open(sys.argv[3], "w").write("1")
    time.sleep(15)
else:  # device KEY: a real handshake, then events with hostile fields
    key, cnonce = bytes.fromhex(sys.argv[3]), os.urandom(32)
    s.sendall(frame("dev1", "iotd", "HELLO", 1, "proto=1", "type=thermo", "fw=t", "cnonce=" + cnonce.hex()))
    ch = recv(s)
    snonce = bytes.fromhex([a for a in ch[4:] if a.startswith(b"snonce=")][0][7:].decode())
    mac = hmac.new(key, b"iotp1-device" + b"dev1\x00" + snonce + cnonce, hashlib.sha256).hexdigest()
    s.sendall(frame("dev1", "iotd", "AUTH", 2, "mac=" + mac))
    w = recv(s)
    assert w and w[2] == b"WELCOME", w
    texts = [b"csi\xc2\x9b2Jred\xc2\x9b31m", b"nel\xc2\x85end", b"bad\xff\xfe\xc0\xaf\xed\xa0\x80end"]
    for seq, text in enumerate(texts, 1):
        s.sendall(frame("dev1", "iotd", "EVENT", seq, "note", b"text=" + text))
        print("event", seq, recv(s))
PY
python3 "$T_DIR/wire.py" "$port" peer "$T_DIR/peer-sent" >"$T_DIR/peer.log" 2>&1 &
peer=$!
for _ in $(seq 1 50); do [ -f "$T_DIR/peer-sent" ] && break; sleep 0.1; done
[ -f "$T_DIR/peer-sent" ] || fail "hostile peer: $(cat "$T_DIR/peer.log")"
python3 "$T_DIR/wire.py" "$port" device "$key" || fail "hostile device"
sleep 0.5
expect 0 stats --count 1
printf '%s\n' "$OUT" >"$T_DIR/stats.txt"
expect 0 --json stats --count 1
printf '%s\n' "$OUT" >"$T_DIR/stats.json"
expect 0 events --device dev1
printf '%s\n' "$OUT" >"$T_DIR/events.txt"
contains "csi"
expect 0 events --device dev1 --csv
printf '%s\n' "$OUT" >"$T_DIR/events.csv"
expect 0 --json events --device dev1
printf '%s\n' "$OUT" >"$T_DIR/events.json"
sleep 1
kill -INT $w_text $w_json
wait $w_text $w_json
kill $peer 2>/dev/null
wait $peer 2>/dev/null

grep -q "csi" "$T_DIR/watch.txt" || fail "the watcher saw no event: $(cat "$T_DIR/watch.txt")"
grep -q '"kind":"event"' "$T_DIR/watch.json" || fail "the JSON watcher saw no event"
for f in watch.txt watch.json stats.txt stats.json events.txt events.csv events.json; do
    check_clean "$T_DIR/$f" "$f"
done
T_CHECKS=$((T_CHECKS + 1))
json_lines "$T_DIR/watch.json" || fail "iotctl --json watch printed invalid JSON"
T_CHECKS=$((T_CHECKS + 1))
python3 -c 'import json,sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$T_DIR/events.json" ||
    fail "iotctl --json events printed invalid JSON"
# The escapes are visible: an operator sees that something was there.
grep -q 'csi\\u009b2Jred' "$T_DIR/watch.txt" || fail "C1 not shown escaped: $(cat "$T_DIR/watch.txt")"
grep -q 'nel\\u0085end' "$T_DIR/events.txt" || fail "C1 not shown escaped: $(cat "$T_DIR/events.txt")"

grep -q 'EVIL' "$T_DIR/stats.txt" || fail "the held peer is not in iotctl stats: $(cat "$T_DIR/stats.txt")"
grep -q '\\u009b31mEVIL' "$T_DIR/stats.txt" || fail "its FROM not shown escaped"

t_stop
check_clean "$T_LOG" "iotd's log"
T_CHECKS=$((T_CHECKS + 1))
grep -q 'device \\u009b31mEVIL\\u009b0m\\u0085x from .*authentication failed' "$T_LOG" ||
    fail "the failed peer's FROM is not logged escaped: $(grep -a EVIL "$T_LOG")"
t_done
