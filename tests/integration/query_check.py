"""query_check.py PORT WEB_PORT PASSWORD IOTSIM DEV3_JSON SIM_DIR - QUERY, a client's ACK and
SUBSCRIBE presence=1 (iot-protocol(7), QUERIES) against the iotd test_query.sh set up: users
ada@acme (admin), olga@acme (operator, dev1 only), vic@acme (viewer, dev1's temperature),
eve@other (admin of another tenant); devices dev1 and dev2 online pushing temperatures (each
with an open alarm "hot"), dev3 offline, lamp1. One line per check; exit 1 at the first
failure. Every wait is bounded."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

from iotd_client import Client, IotdError, frames
import ws_client

PORT, WEB_PORT, PASSWORD, IOTSIM, DEV3, SIM_DIR = sys.argv[1:7]
PORT, WEB_PORT = int(PORT), int(WEB_PORT)


def check(what, ok):
    if not ok:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def client(user):
    return Client("127.0.0.1", PORT, user=user, password=PASSWORD, timeout=30, reconnect=False)


def rows(c, what, **kw):
    return list(c.query(what, **kw))


def error_of(fn):
    try:
        fn()
    except IotdError as e:
        return e.code, e.msg
    return None, None


ada, olga, vic, eve = (client(u) for u in ("ada@acme", "olga@acme", "vic@acme", "eve@other"))

# --- devices
r = rows(ada, "devices")
check(f"admin sees every device of its tenant, by id ({[x['device'] for x in r]})",
      [x["device"] for x in r] == ["dev1", "dev2", "dev3", "lamp1"])
d1 = r[0]
check(f"a device row ({d1})", d1["dtype"] == "thermo" and d1["name"] == "Thermo dev1" and
      d1["groups"] == "kitchen" and d1["online"] == "1" and d1["since"].isdigit() and
      d1["last_seen"].isdigit())
check(f"an offline device never seen: online=0, last_seen and since empty ({r[2]})",
      r[2]["online"] == "0" and r[2]["last_seen"] == "" and r[2]["since"] == "")
check("operator sees the devices its access map names",
      [x["device"] for x in rows(olga, "devices")] == ["dev1"])
check("viewer sees the devices its access map names",
      [x["device"] for x in rows(vic, "devices")] == ["dev1"])
check("another tenant's admin sees only its own", [x["device"] for x in rows(eve, "devices")] == ["x1"])
check("filters: online=1", [x["device"] for x in rows(ada, "devices", online=1)] == ["dev1", "dev2"])
check("filters: group=kitchen", [x["device"] for x in rows(ada, "devices", group="kitchen")] == ["dev1", "lamp1"])
check("filters: type=lamp", [x["device"] for x in rows(ada, "devices", type="lamp")] == ["lamp1"])
check("filters: match= is a case-insensitive substring of id or name",
      [x["device"] for x in rows(ada, "devices", match="THERMO DEV2")] == ["dev2"])
check("device= of another tenant: denied", error_of(lambda: rows(ada, "devices", device="x1"))[0] == "denied")
check("device= not visible to the operator: denied",
      error_of(lambda: rows(olga, "devices", device="dev2"))[0] == "denied")

# Paging: limit=2 across all rows, by hand, no duplicate and no gap.
pages, cursor, seen = 0, None, []
for _ in range(10):
    args = ["what=devices", "limit=2"] + ([f"after={cursor}"] if cursor else [])
    ok, page = ada._request_rows(args, 10)
    seen += [p.kv()["device"] for p in page]
    pages += 1
    check(f"page {pages}: rows= counts its ROWs ({ok.args})", ok.kv()["rows"] == str(len(page)))
    cursor = ok.kv().get("next")
    if not cursor:
        break
check(f"devices limit=2: two pages, every device once ({seen})",
      pages == 2 and seen == ["dev1", "dev2", "dev3", "lamp1"])

# --- catalogue
cat = rows(olga, "catalogue", device="dev1")
check(f"catalogue: commands first then events, each by name ({[(x['kind'], x['name']) for x in cat]})",
      [(x["kind"], x["name"]) for x in cat] ==
      [("command", "echo"), ("command", "read_temp"), ("event", "temperature")])
check(f"catalogue rows ({cat})", cat[0]["spec"] == "text:str" and cat[0]["timeout_ms"].isdigit() and
      cat[0]["allowed"] == "1" and cat[2]["spec"] == "value:float unit:str?" and cat[2]["lease"] == "0"
      and cat[2]["allowed"] == "1")
vcat = rows(vic, "catalogue", device="dev1")
check("viewer: commands never allowed, its event allowed",
      [x["allowed"] for x in vcat] == ["0", "0", "1"])
check("catalogue type= for a viewer: commands 0", [x["allowed"] for x in rows(vic, "catalogue", type="thermo")] == ["0", "0", "1"])
check("catalogue of a device not visible: denied",
      error_of(lambda: rows(olga, "catalogue", device="dev2"))[0] == "denied")
check("catalogue of another tenant's device: denied",
      error_of(lambda: rows(eve, "catalogue", device="dev1"))[0] == "denied")
check("catalogue paging limit=1", [x["name"] for x in ada.query("catalogue", device="dev1", limit=1)] ==
      ["echo", "read_temp", "temperature"])

# --- history
h = rows(ada, "history", device="dev1", limit=500)
check(f"history: stored events of dev1 ({len(h)})", len(h) >= 4)
keys = [(int(x["at"]), int(x["seq"])) for x in h]
check("history: oldest first", keys == sorted(keys))
check(f"history rows: name, at, seq, then fields ({h[0]})",
      h[0]["event"] == "temperature" and "value" in h[0])
now = int(time.time() * 1000)
check("history: within the last hour by default", all(now - 3600_000 <= k[0] <= now + 5000 for k in keys))
paged = list(ada.query("history", device="dev1", limit=2, until=keys[-1][0] + 1))
full = [x for x in h if int(x["at"]) <= keys[-1][0]]
check(f"history limit=2: every row once, in order ({len(paged)} against {len(full)})",
      [(x["at"], x["seq"]) for x in paged] == [(x["at"], x["seq"]) for x in full])
mid = keys[len(keys) // 2][0]
win = rows(ada, "history", device="dev1", since=mid, until=keys[-1][0])
check(f"history since/until: [since, until) ({len(win)})",
      win and all(mid <= int(x["at"]) < keys[-1][0] for x in win) and
      len(win) == sum(1 for k in keys if mid <= k[0] < keys[-1][0]))
check("operator reads dev1's history", len(rows(olga, "history", device="dev1", limit=5)) > 0)
check("viewer reads dev1's temperature", len(rows(vic, "history", device="dev1", limit=5)) > 0)
check("history of a device not visible: denied",
      error_of(lambda: rows(olga, "history", device="dev2"))[0] == "denied")
check("history of another tenant's device: denied",
      error_of(lambda: rows(eve, "history", device="dev1"))[0] == "denied")
check("history needs device=", error_of(lambda: rows(ada, "history"))[0] == "bad_args")

# --- alarms
al = rows(ada, "alarms")
check(f"admin: the open alarms of dev1 and dev2 ({al})",
      sorted(x["device"] for x in al) == ["dev1", "dev2"] and all(x["state"] == "raised" for x in al))
check(f"an alarm row ({al[0]})", al[0]["name"] == "hot" and al[0]["severity"] == "major" and
      al[0]["raised_at"].isdigit() and al[0]["acked_by"] == "" and al[0]["cleared_at"] == "")
check("operator: only dev1's alarm", [x["device"] for x in rows(olga, "alarms")] == ["dev1"])
check("viewer: only dev1's alarm (it may read the rule's event)", [x["device"] for x in rows(vic, "alarms")] == ["dev1"])
check("another tenant: no alarm", rows(eve, "alarms", state="all") == [])
check("alarms limit=1 pages across all", sorted(x["alarm"] for x in ada.query("alarms", limit=1)) ==
      sorted(x["alarm"] for x in al))
a1 = next(x["alarm"] for x in al if x["device"] == "dev1")
a2 = next(x["alarm"] for x in al if x["device"] == "dev2")

# --- commands
olga.send("dev1", "read_temp")
olga.send("dev1", "echo", "hi")
check("a command to a device not visible is denied", error_of(lambda: olga.send("dev2", "read_temp"))[0] == "denied")
cmds = []
for _ in range(50):  # the audit is written in batches
    cmds = rows(olga, "commands")
    if len(cmds) >= 3:
        break
    time.sleep(0.2)
check(f"commands: the user's own, newest first ({[(x['message'], x['outcome']) for x in cmds]})",
      len(cmds) >= 3 and [(x["message"], x["outcome"]) for x in cmds[:3]] ==
      [("read_temp", "denied"), ("echo", "ok"), ("read_temp", "ok")] and
      [int(x["at"]) for x in cmds] == sorted((int(x["at"]) for x in cmds), reverse=True))
check(f"a command row ({cmds[1]})", cmds[1]["device"] == "dev1" and cmds[1]["latency_us"].isdigit()
      and cmds[1]["code"] == "")
check("commands limit=1 pages across all", [(x["message"], x["at"]) for x in olga.query("commands", limit=1)] ==
      [(x["message"], x["at"]) for x in cmds])
check("another user's commands are not listed", all(x["device"] != "dev1" or False for x in rows(eve, "commands")))
check("commands device= filters", all(x["device"] == "dev1" for x in rows(olga, "commands", device="dev1")))

# --- ACK
watch = ada.subscribe(alarms="only", presence=True)
check("viewer may not ACK", error_of(lambda: vic.ack_alarm(a1))[0] == "denied")
check("operator may not ACK an alarm it may not read", error_of(lambda: olga.ack_alarm(a2))[0] == "denied")
check("another tenant may not ACK", error_of(lambda: eve.ack_alarm(a1))[0] == "denied")
check("no such alarm: denied", error_of(lambda: olga.ack_alarm(999999))[0] == "denied")
olga.ack_alarm(a1)
check("operator ACKs dev1's alarm", True)
code, msg = error_of(lambda: olga.ack_alarm(a1))
check(f"a second ACK: exists, acknowledged by whom ({code} {msg})",
      code == "exists" and msg == "acknowledged by olga@acme")
got = None
end = time.time() + 10
while time.time() < end and got is None:
    item = watch.get(timeout=max(0.1, end - time.time()))
    if item is not None and item.kind == "alarm" and item.state == "acknowledged":
        got = item
check(f"subscribers see ALARM state=acknowledged by=olga@acme ({got})",
      got is not None and got.by == "olga@acme" and got.device == "dev1")
row = next(x for x in rows(ada, "alarms", state="all") if x["alarm"] == a1)
check(f"the alarm shows acknowledged by olga ({row})",
      row["state"] == "acknowledged" and row["acked_by"] == "olga@acme" and row["acked_at"].isdigit())
check("state=acknowledged lists it", [x["alarm"] for x in rows(ada, "alarms", state="acknowledged")] == [a1])

# --- refused arguments; the session goes on
for args, why in ((["what=nothing"], "unknown what="), (["what=devices", "colour=red"], "unknown key"),
                  (["what=devices", "device="], "empty value"), (["what=devices", "limit=0"], "limit=0"),
                  (["what=devices", "limit=501"], "limit=501"), (["what=history", "device=dev1", "after=x"], "bad cursor"),
                  (["what=alarms", "state=gone"], "bad state"), (["what=devices", "online=2"], "online=2"),
                  (["what=devices", "event=temperature"], "a key of another what="), ([], "no what=")):
    code, _ = error_of(lambda: ada._request_rows(args, 10))
    check(f"{why}: bad_args ({code})", code == "bad_args")
code, _ = error_of(lambda: ada._request("iotd", "ACK", ["alarm=abc"], 10))
check(f"ACK alarm=abc: bad_args ({code})", code == "bad_args")
check("the session goes on", len(rows(ada, "devices")) == 4)


# --- presence, native and /ws
class WS:
    def __init__(self):
        import base64
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock = socket.create_connection(("127.0.0.1", WEB_PORT), timeout=10)
        self.sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{WEB_PORT}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"Origin: http://127.0.0.1:{WEB_PORT}\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += self.sock.recv(4096)
        _, _, rest = answer.partition(b"\r\n\r\n")
        self.reader = ws_client.Reader(self.sock, rest)

    def send(self, obj):
        self.sock.sendall(ws_client.frame(0x1, json.dumps(obj).encode()))

    def wait(self, pred, seconds=10):
        end = time.time() + seconds
        while time.time() < end:
            self.sock.settimeout(max(0.1, end - time.time()))
            try:
                op, payload, _ = self.reader.frame_masked()
            except socket.timeout:
                return None
            if op == 0x1:
                m = json.loads(payload)
                if pred(m):
                    return m
        return None


ws = WS()
ws.send({"type": "LOGIN", "id": 1, "user": "olga@acme", "password": PASSWORD})
check("/ws LOGIN", ws.wait(lambda m: m.get("id") == 1)["type"] == "WELCOME")
ws.send({"type": "QUERY", "id": 7, "what": "devices"})
wrows = []
ok = ws.wait(lambda m: (m["type"] == "ROW" and m["id"] == 7 and wrows.append(m)) or
             (m["id"] == 7 and m["type"] in ("OK", "ERROR")))
check(f"/ws QUERY devices: ROWs then OK with rows a number ({wrows} {ok})",
      ok and ok["type"] == "OK" and ok["rows"] == 1 and len(wrows) == 1 and
      wrows[0]["device"] == "dev1" and wrows[0]["from"] == "iotd" and wrows[0]["dtype"] == "thermo")
ws.send({"type": "QUERY", "id": 8, "what": "history", "device": "dev1", "limit": 1})
hrow = ws.wait(lambda m: m["id"] == 8)
check(f"/ws history ROW: name, at, seq in args, fields as members ({hrow})",
      hrow["type"] == "ROW" and hrow["args"][0] == "temperature" and hrow["args"][1].isdigit() and "value" in hrow)
ok = ws.wait(lambda m: m["id"] == 8 and m["type"] == "OK")
check(f"/ws history OK with next ({ok})", ok and ok["rows"] == 1 and ok.get("next"))
ws.send({"type": "ACK", "id": 9, "alarm": int(a1)})
m = ws.wait(lambda m: m["id"] == 9)
check(f"/ws ACK twice: ERROR exists ({m})", m["type"] == "ERROR" and m["code"] == "exists")
ws.send({"type": "ACK", "id": 10, "alarm": int(a2)})
m = ws.wait(lambda m: m["id"] == 10)
check(f"/ws ACK of an alarm not visible: denied ({m})", m["type"] == "ERROR" and m["code"] == "denied")
ws.send({"type": "QUERY", "id": 11, "what": "devices", "colour": "red"})
m = ws.wait(lambda m: m["id"] == 11)
check(f"/ws unknown key: bad_args ({m})", m["type"] == "ERROR" and m["code"] == "bad_args")

wsa = WS()
wsa.send({"type": "LOGIN", "id": 1, "user": "ada@acme", "password": PASSWORD})
wsa.wait(lambda m: m.get("id") == 1)
wsa.send({"type": "SUBSCRIBE", "id": 2, "presence": 1, "alarms": "only"})
m = wsa.wait(lambda m: m.get("id") == 2)
check(f"/ws SUBSCRIBE presence=1 alarms=only ({m})", m["type"] == "OK")
olga_watch = olga.subscribe(presence=True, alarms="only")


def presence_of(sub, device, online, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        item = sub.get(timeout=max(0.1, end - time.time()))
        if item is not None and item.kind == "presence" and item.device == device and item.online == online:
            return item
    return None


def start_dev3():
    return subprocess.Popen([IOTSIM, "-c", f"127.0.0.1:{PORT}", "--stats-interval", "0",
                             "--state-dir", SIM_DIR, "-f", DEV3], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


sim = start_dev3()
try:
    p = presence_of(watch, "dev3", True)
    check(f"PRESENCE online=1 when dev3 connects ({p})", p is not None and p.dtype == "thermo" and p.at > 0)
    m = wsa.wait(lambda m: m["type"] == "PRESENCE" and m.get("device") == "dev3" and m.get("online") == "1")
    check(f"/ws PRESENCE online=1 ({m})", m is not None and m["dtype"] == "thermo" and m["id"] == 0)
    sim.send_signal(signal.SIGKILL)
    sim.wait(10)
    p = presence_of(watch, "dev3", False)
    check(f"PRESENCE online=0 when dev3 is killed ({p})", p is not None)
    m = wsa.wait(lambda m: m["type"] == "PRESENCE" and m.get("device") == "dev3" and m.get("online") == "0")
    check(f"/ws PRESENCE online=0 ({m})", m is not None)
    sim = start_dev3()
    p = presence_of(watch, "dev3", True)
    check(f"PRESENCE online=1 when dev3 comes back ({p})", p is not None)
    check("the operator's presence=1 subscription is not told of dev3, which it may not see",
          presence_of(olga_watch, "dev3", True, seconds=1) is None)
finally:
    sim.send_signal(signal.SIGTERM)
    sim.wait(10)
for c in (ada, olga, vic, eve):
    c.close()
