#!/usr/bin/env python3
"""ws_session_check.py WEB_PORT USER PASSWORD DEVICE DENIED_DEVICE - a browser's user session
over /ws (iot-websocket(7)) against a real iotd with an iotsim device, with a client written
here from the standard library (framing and masking by hand): nothing works before LOGIN; a
bad LOGIN is refused and closes; a good one gets WELCOME with a ticket; a request reaches the
device and its answer comes back; a request the access map refuses is denied; a subscription
gets live events; malformed JSON and binary messages get ERROR bad_frame and the session goes
on; the ticket buys an HttpOnly, SameSite=Strict cookie once; a reload with the cookie is
logged in at once; an oversized message closes with 1009; logout ends the cookie; refused
messages are bounded (20 pipelined: every answer and the close frame arrive); a wrong
Origin is refused on /ws and on the cookie requests. One line per check; exit 1 at the first
failure."""
import json
import os
import socket
import subprocess
import sys

import ws_client

PORT, USER, PASSWORD, DEVICE, DENIED = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
PORT = int(PORT)
ORIGIN = f"http://127.0.0.1:{PORT}"
checks = 0


def check(what, ok):
    global checks
    checks += 1
    if not ok:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def http(method, path, headers):
    """One HTTP request on its own connection: (status line, {lower name: [values]}, body)."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nConnection: close\r\n"
    for k, v in headers.items():
        head += f"{k}: {v}\r\n"
    s.sendall((head + "\r\n").encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(": ")
        hdrs.setdefault(k.lower(), []).append(v)
    return lines[0], hdrs, body


class WS(ws_client.Session):
    def __init__(self, origin=ORIGIN, cookie=None):
        super().__init__("127.0.0.1", PORT, origin, cookie)

    def frame(self):
        op, payload, masked = self.reader.frame_masked()
        if masked:
            check("server frames are not masked", False)
        return op, payload

    def closed(self):
        try:
            while True:
                if self.sock.recv(4096) == b"":
                    return True
        except (ConnectionResetError, socket.timeout):
            return False


def login(ws, password, mid):
    ws.send({"type": "LOGIN", "id": mid, "user": USER, "password": password})
    return ws.reply(mid)


# --- nothing before LOGIN; a bad LOGIN is refused and ends the connection
ws = WS()
check(f"/ws upgraded (got {ws.status})", ws.status == "HTTP/1.1 101 Switching Protocols")
ws.send({"type": "read_temp", "to": DEVICE, "id": 1})
m = ws.reply(1)
check(f"a request before LOGIN: ERROR auth ({m})", m and m["type"] == "ERROR" and m["code"] == "auth")
ws.send({"type": "SUBSCRIBE", "id": 2})
m = ws.reply(2)
check(f"a subscription before LOGIN: ERROR auth ({m})", m and m["type"] == "ERROR" and m["code"] == "auth")
m = login(ws, "wrong-password", 3)
check(f"bad LOGIN: ERROR auth ({m})", m and m["type"] == "ERROR" and m["code"] == "auth")
m = ws.message()
check(f"...and the WebSocket closes ({m})", m["type"] == "close")
check("...and the connection", ws.closed())

# --- a good LOGIN
ws = WS()
m = login(ws, PASSWORD, 1)
check(f"LOGIN: WELCOME ({m})", m and m["type"] == "WELCOME" and m["from"] == "iotd")
check("WELCOME: session and ping are numbers",
      isinstance(m.get("session"), int) and isinstance(m.get("ping"), int))
ticket = m.get("ticket", "")
check(f"WELCOME carries a ticket ({ticket})", len(ticket) == 64)
# alice was added without --role: iotctl(8)'s default role.
check(f"WELCOME says the role ({m.get('role')})", m.get("role") == "operator")

# --- requests: answered by the device, denied by the access map
ws.send({"type": "read_temp", "to": DEVICE, "id": 7})
m = ws.reply(7)
check(f"read_temp: OK from {DEVICE} ({m})",
      m and m["type"] == "OK" and m["from"] == DEVICE and isinstance(m.get("args"), list))
ws.send({"type": "echo", "to": DEVICE, "id": 8, "args": ["héllo wörld"]})
m = ws.reply(8)
check(f"echo: the device's answer comes back ({m})", m and m["type"] == "OK")
ws.send({"type": "read_temp", "to": DENIED, "id": 9})
m = ws.reply(9)
check(f"a device the access map refuses: denied ({m})",
      m and m["type"] == "ERROR" and m["code"] == "denied")
ws.send({"type": "read_temp", "to": "no-such-device", "id": 10})
m = ws.reply(10)
check(f"an unknown device: denied ({m})", m and m["type"] == "ERROR" and m["code"] == "denied")
ws.send({"type": "set_pixel", "to": DEVICE, "id": 11, "args": ["one", 2, "red"]})
m = ws.reply(11)
check(f"arguments off the catalogue: bad_args ({m})",
      m and m["type"] == "ERROR" and m["code"] == "bad_args")

# --- malformed messages: an ERROR, and the session goes on
ws.send_raw(0x1, b"{not json")
m = ws.wait(lambda m: m["type"] == "ERROR")
check(f"malformed JSON: ERROR bad_frame ({m})", m and m["code"] == "bad_frame")
ws.send_raw(0x2, b"\x00\x01")
m = ws.wait(lambda m: m["type"] == "ERROR")
check(f"a binary message: ERROR bad_frame ({m})", m and m["code"] == "bad_frame")
ws.send({"type": "PING", "id": 12})
m = ws.reply(12)
check(f"...and the session goes on: PONG ({m})", m and m["type"] == "PONG")
ws.send({"type": "read_temp", "to": DEVICE, "id": 13})
m = ws.reply(13)
check(f"...requests too ({m})", m and m["type"] == "OK")

# --- a subscription gets live events
ws.send({"type": "SUBSCRIBE", "id": 14, "device": DEVICE})
m = ws.reply(14)
check(f"SUBSCRIBE: OK with a sub number ({m})", m and m["type"] == "OK" and isinstance(m.get("sub"), int))
m = ws.wait(lambda m: m["type"] == "EVENT", seconds=10)
check(f"a live EVENT from {DEVICE} ({m})", m and m["type"] == "EVENT" and m["from"] == DEVICE
      and isinstance(m.get("args"), list) and len(m["args"]) >= 1)

# --- the ticket buys a cookie, once
status, hdrs, _ = http("POST", "/api/session", {"Origin": "http://evil.example", "X-Iotd-Ticket": ticket})
check(f"the cookie from another origin: 403 ({status})", status.startswith("HTTP/1.1 403"))
status, hdrs, _ = http("POST", "/api/session", {"Origin": ORIGIN, "X-Iotd-Ticket": ticket})
check(f"POST /api/session: 200 ({status})", status.startswith("HTTP/1.1 200"))
cookie_line = (hdrs.get("set-cookie") or [""])[0]
check(f"Set-Cookie is HttpOnly and SameSite=Strict ({cookie_line})",
      "HttpOnly" in cookie_line and "SameSite=Strict" in cookie_line and "Max-Age=" in cookie_line)
cookie = cookie_line.split(";")[0]
check(f"the cookie is iotd_session=<64 hex> ({cookie})",
      cookie.startswith("iotd_session=") and len(cookie) == len("iotd_session=") + 64)
check("the token is not the ticket", cookie.split("=")[1] != ticket)
status, _, _ = http("POST", "/api/session", {"Origin": ORIGIN, "X-Iotd-Ticket": ticket})
check(f"a ticket is good once: 403 the second time ({status})", status.startswith("HTTP/1.1 403"))
status, _, _ = http("GET", "/api/session", {"Origin": ORIGIN})
check(f"GET /api/session: 405 ({status})", status.startswith("HTTP/1.1 405"))

# --- an oversized message closes with 1009
ws.send_raw(0x1, b'{"type":"echo","to":"dev1","id":15,"args":["' + b"x" * 5000 + b'"]}')
m = ws.wait(lambda m: m["type"] == "close")
check(f"an oversized message: close 1009 ({m})", m and m["type"] == "close" and m["code"] == 1009)
ws.sock.close()

# --- a reload: the cookie logs in at once
ws = WS(cookie=cookie)
check(f"/ws with the cookie upgraded ({ws.status})", ws.status == "HTTP/1.1 101 Switching Protocols")
m = ws.message()
check(f"logged in at once: WELCOME id 0, no ticket ({m})",
      m["type"] == "WELCOME" and m["id"] == 0 and "ticket" not in m)
ws.send({"type": "read_temp", "to": DEVICE, "id": 1})
m = ws.reply(1)
check(f"...and it is the user's session: read_temp OK ({m})", m and m["type"] == "OK")
ws.send({"type": "read_temp", "to": DENIED, "id": 2})
m = ws.reply(2)
check(f"...held to the same access map: denied ({m})", m and m["type"] == "ERROR" and m["code"] == "denied")
ws.send({"type": "BYE", "id": 3})
m = ws.wait(lambda m: m["type"] == "close")
check(f"BYE closes the WebSocket ({m})", m and m["type"] == "close" and m["code"] == 1000)
ws.sock.close()

# --- logout ends the cookie
status, hdrs, _ = http("POST", "/api/logout", {"Origin": "http://evil.example", "Cookie": cookie})
check(f"logout from another origin: 403 ({status})", status.startswith("HTTP/1.1 403"))
status, hdrs, _ = http("POST", "/api/logout", {"Origin": ORIGIN, "Cookie": cookie})
check(f"POST /api/logout: 200 ({status})", status.startswith("HTTP/1.1 200"))
check("...clearing the cookie", "Max-Age=0" in (hdrs.get("set-cookie") or [""])[0])
ws = WS(cookie=cookie)
ws.send({"type": "read_temp", "to": DEVICE, "id": 1})
m = ws.reply(1)
check(f"after logout the cookie logs in no more: ERROR auth ({m})",
      m and m["type"] == "ERROR" and m["code"] == "auth")
ws.sock.close()

# --- refused messages are bounded: 16 answered, the 17th closes. All 20 sent at once: the
# server closes with the last ones unread, and drains them (no RST) so every answer arrives.
ws = WS()
ws.sock.sendall(b"".join(ws_client.frame(0x1, json.dumps({"type": "PING", "id": 100 + i}).encode())
                         for i in range(20)))
answers = []
try:
    for i in range(17):
        answers.append(ws.message())
except (ConnectionResetError, EOFError) as e:
    answers.append({"type": repr(e)})
check(f"20 pipelined refused messages: 16 answered, then the WebSocket closes ({answers[-2:]})",
      len(answers) == 17 and all(m["type"] == "ERROR" for m in answers[:16]) and answers[16]["type"] == "close")
check("...and the connection ends with FIN, not RST", ws.closed())
ws.sock.close()

# --- a wrong Origin
ws = WS(origin="http://evil.example", cookie=cookie)
check(f"/ws from another origin: 403 ({ws.status})", ws.status.startswith("HTTP/1.1 403"))
# --- iotctl user kick ends the browser's session and its cookie (issue 17 section 1)
if os.environ.get("IOTCTL_BIN") and os.environ.get("T_SOCK"):
    ws = WS()
    m = login(ws, PASSWORD, 1)
    status, hdrs, _ = http("POST", "/api/session", {"Origin": ORIGIN, "X-Iotd-Ticket": m.get("ticket", "")})
    kicked = (hdrs.get("set-cookie") or [""])[0].split(";")[0]
    check(f"a second cookie ({status})", status.startswith("HTTP/1.1 200") and kicked.startswith("iotd_session="))
    rc = subprocess.run([os.environ["IOTCTL_BIN"], "-s", os.environ["T_SOCK"], "user", "kick", USER],
                        capture_output=True, text=True)
    check(f"iotctl user kick {USER}: exit 0 ({rc.stdout.strip()} {rc.stderr.strip()})", rc.returncode == 0)
    m = ws.wait(lambda m: m["type"] == "close")
    check(f"...the open WebSocket is closed ({m})", m is not None)
    ws.sock.close()
    ws = WS(cookie=kicked)
    ws.send({"type": "read_temp", "to": DEVICE, "id": 1})
    m = ws.reply(1)
    check(f"...and its cookie logs in no more: ERROR auth ({m})",
          m and m["type"] == "ERROR" and m["code"] == "auth")
    ws.sock.close()

print(f"ws session: {checks} checks")
