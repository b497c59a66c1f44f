#!/usr/bin/env python3
"""ws_tls_check.py MODE ... - the web listener's TLS side and the ends of a browser session,
against a real iotd with an iotsim device, with a client written here from the standard
library (ssl, socket; framing by hand in ws_client.py). One line per check; exit 1 at the
first failure.

  check TLS_PORT PLAIN_PORT CAFILE USER PASSWORD DEVICE [EXTERNAL_ADDRESS]
      WSS: the default Origin is the listener's own https origin; LOGIN, a request; the ticket
      buys a Secure cookie over TLS (not over plain HTTP); a WSS upgrade with it is logged in;
      POST /api/logout ends the WebSockets of that cookie (the LOGIN that bought it and the
      upgrade it logged in: BYE reason=logout, then close 1000) and no other; a client that
      pipelines 20 refused messages reads every answer and the close frame (plain and TLS), and
      an HTTP client that sends a bad request and more behind it reads the 400. With
      EXTERNAL_ADDRESS (an address of this host that is not loopback): LOGIN over WSS from it is
      accepted, over plain WS refused.
  cookie PLAIN_PORT USER PASSWORD
      Log in over plain WS from loopback and print the session cookie (name=value).
  dead PLAIN_PORT COOKIE
      The cookie logs in no more: a /ws upgrade with it answers a request ERROR auth.
"""
import json
import socket
import ssl
import sys

import ws_client

checks = 0
CAFILE = None


def check(what, ok):
    global checks
    checks += 1
    if not ok:
        print(f"FAIL: {what}")
        sys.exit(1)
    print(f"ok: {what}")


def connect(host, port, tls):
    s = socket.create_connection((host, port), timeout=5)
    if tls:
        ctx = ssl.create_default_context(cafile=CAFILE)
        s = ctx.wrap_socket(s, server_hostname=host)
    return s


def read_all(s, limit=1 << 20):
    data = b""
    try:
        while len(data) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        data += b"<RST>"
    return data


def http(host, port, tls, method, path, headers):
    """One request on its own connection: (status line, {lower name: [values]}, body)."""
    s = connect(host, port, tls)
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
    for k, v in headers.items():
        head += f"{k}: {v}\r\n"
    s.sendall((head + "\r\n").encode())
    data = read_all(s)
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(": ")
        hdrs.setdefault(k.lower(), []).append(v)
    return lines[0], hdrs, body


class WS(ws_client.Session):
    def __init__(self, host, port, tls, origin=None, cookie=None):
        origin = origin or f"{'https' if tls else 'http'}://{host}:{port}"
        super().__init__(host, port, origin, cookie, ssl.create_default_context(cafile=CAFILE) if tls else None)

    def login(self, user, password, mid=1):
        self.send({"type": "LOGIN", "id": mid, "user": user, "password": password})
        return self.reply(mid)


def pipelined_refusals(host, port, tls):
    """20 messages refused before LOGIN, sent at once, then read: 16 answers and the close."""
    ws = WS(host, port, tls)
    data = b"".join(ws_client.frame(0x1, json.dumps({"type": "PING", "id": 100 + i}).encode())
                    for i in range(20))
    ws.sock.sendall(data)
    got = []
    try:
        for _ in range(17):
            got.append(ws.message())
    except (ConnectionResetError, EOFError, ssl.SSLError) as e:
        got.append({"type": repr(e)})
    ws.sock.close()
    return got


def mode_check(argv):
    tls_port, plain_port = int(argv[0]), int(argv[1])
    user, password, device = argv[3], argv[4], argv[5]
    external = argv[6] if len(argv) > 6 else ""
    host = "127.0.0.1"

    # --- WSS and its default Origin
    ws = WS(host, tls_port, True, origin=f"http://{host}:{tls_port}")
    check(f"WSS from the http:// origin of the TLS port: 403 ({ws.status})", ws.status.startswith("HTTP/1.1 403"))
    ws.sock.close()
    a = WS(host, tls_port, True)
    check(f"WSS from its own https:// origin: 101 ({a.status})", a.status == "HTTP/1.1 101 Switching Protocols")
    m = a.login(user, password)
    check(f"LOGIN over WSS: WELCOME with a ticket ({m})", m and m["type"] == "WELCOME" and len(m.get("ticket", "")) == 64)
    ticket = m["ticket"]
    a.send({"type": "read_temp", "to": device, "id": 2})
    m = a.reply(2)
    check(f"read_temp over WSS: OK from {device} ({m})", m and m["type"] == "OK" and m["from"] == device)

    # --- the cookie is Secure over TLS, and only there
    origin = f"https://{host}:{tls_port}"
    status, hdrs, _ = http(host, tls_port, True, "POST", "/api/session", {"Origin": origin, "X-Iotd-Ticket": ticket})
    line = (hdrs.get("set-cookie") or [""])[0]
    check(f"POST /api/session over TLS: 200, Secure, HttpOnly, SameSite=Strict ({status}; {line})",
          status.startswith("HTTP/1.1 200") and "; Secure" in line and "HttpOnly" in line and "SameSite=Strict" in line)
    cookie = line.split(";")[0]
    plain = WS(host, plain_port, False)
    m = plain.login(user, password)
    status, hdrs, _ = http(host, plain_port, False, "POST", "/api/session",
                           {"Origin": f"http://{host}:{plain_port}", "X-Iotd-Ticket": m.get("ticket", "")})
    line = (hdrs.get("set-cookie") or [""])[0]
    check(f"...over plain HTTP: no Secure ({status}; {line})", status.startswith("HTTP/1.1 200") and "Secure" not in line)
    other_cookie = line.split(";")[0]

    # --- the cookie logs a WSS upgrade in
    b = WS(host, tls_port, True, cookie=cookie)
    m = b.message()
    check(f"WSS with the cookie: WELCOME id 0 ({m})", m["type"] == "WELCOME" and m["id"] == 0)
    c = WS(host, tls_port, True, cookie=other_cookie)
    m = c.message()
    check(f"WSS with another cookie of the same user: WELCOME ({m})", m["type"] == "WELCOME")

    # --- logout ends that cookie's WebSockets, and no others
    status, hdrs, _ = http(host, tls_port, True, "POST", "/api/logout", {"Origin": origin, "Cookie": cookie})
    check(f"POST /api/logout over TLS: 200, clearing a Secure cookie ({status})",
          status.startswith("HTTP/1.1 200") and "; Secure" in (hdrs.get("set-cookie") or [""])[0])
    for name, ws in (("the LOGIN whose ticket bought the cookie", a), ("the upgrade the cookie logged in", b)):
        m = ws.wait(lambda m: m["type"] == "BYE")
        check(f"{name}: BYE reason=logout ({m})", m and m["type"] == "BYE" and m.get("reason") == "logout")
        m = ws.wait(lambda m: m["type"] == "close")
        check(f"...then close 1000 ({m})", m and m["type"] == "close" and m["code"] == 1000)
        ws.sock.close()
    for name, ws in (("a session of another cookie", c), ("a session without a cookie", plain)):
        ws.send({"type": "PING", "id": 9})
        m = ws.reply(9)
        check(f"{name} goes on: PONG ({m})", m and m["type"] == "PONG")
        ws.sock.close()
    ws = WS(host, tls_port, True, cookie=cookie)
    ws.send({"type": "read_temp", "to": device, "id": 1})
    m = ws.reply(1)
    check(f"the cookie logs in no more ({m})", m and m["type"] == "ERROR" and m["code"] == "auth")
    ws.sock.close()

    # --- closing with unread input: every answer and the close frame still arrive
    for tls, port in ((False, plain_port), (True, tls_port)):
        got = pipelined_refusals(host, port, tls)
        check(f"20 pipelined refused messages over {'WSS' if tls else 'WS'}: 16 ERRORs, then close "
              f"({[m['type'] for m in got[-3:]]})",
              len(got) == 17 and all(m["type"] == "ERROR" for m in got[:16]) and got[16]["type"] == "close")
    s = connect(host, plain_port, False)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad header\r\n\r\n" + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2000)
    data = read_all(s)
    s.close()
    check(f"a bad request with 60 KB behind it: the 400 arrives whole, then EOF ({data[:40]!r}...{data[-20:]!r})",
          data.startswith(b"HTTP/1.1 400") and b"<RST>" not in data and data.endswith(b"bad request\n"))

    # --- LOGIN over TLS from any address; over plain only from loopback
    if external:
        ws = WS(external, tls_port, True)
        m = ws.login(user, password)
        check(f"LOGIN over WSS from {external}: WELCOME ({m})", m and m["type"] == "WELCOME")
        ws.sock.close()
        ws = WS(external, plain_port, False)
        m = ws.login(user, password)
        check(f"LOGIN over plain WS from {external}: ERROR auth ({m})", m and m["type"] == "ERROR" and m["code"] == "auth")
        ws.sock.close()
    print(f"ws tls: {checks} checks")


def mode_cookie(argv):
    port, user, password = int(argv[0]), argv[1], argv[2]
    ws = WS("127.0.0.1", port, False)
    m = ws.login(user, password)
    if not m or m["type"] != "WELCOME":
        print(f"no WELCOME: {m}", file=sys.stderr)
        sys.exit(1)
    status, hdrs, _ = http("127.0.0.1", port, False, "POST", "/api/session",
                           {"Origin": f"http://127.0.0.1:{port}", "X-Iotd-Ticket": m["ticket"]})
    print((hdrs.get("set-cookie") or [""])[0].split(";")[0])
    ws.sock.close()


def mode_dead(argv):
    port, cookie = int(argv[0]), argv[1]
    ws = WS("127.0.0.1", port, False, cookie=cookie)
    ws.send({"type": "read_temp", "to": "nobody", "id": 1})
    m = ws.reply(1)
    check(f"the cookie logs in no more: ERROR auth ({m})", m and m["type"] == "ERROR" and m["code"] == "auth")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "check":
        CAFILE = sys.argv[4]
        mode_check(sys.argv[2:])
    elif mode == "cookie":
        mode_cookie(sys.argv[2:])
    else:
        mode_dead(sys.argv[2:])
