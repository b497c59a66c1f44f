#!/usr/bin/env python3
"""ws_place_check.py WEB_PORT USER PASSWORD DEVICE N - opens browser sessions in every way a
browser's session can start, so that the caller can check they all run on their tenant's io
thread (ws_place.c): N that LOGIN right after the 101, one whose LOGIN rides in the same
packet as the upgrade request, one whose LOGIN arrives in two pieces 0.2 s apart, and N with
the session cookie (logged in at the upgrade). Each one relays an echo to DEVICE and must get
its answer. Prints "ready SESSIONS" and holds them until stdin closes. Exit 1 on a failure."""
import json
import socket
import sys
import time

import ws_client

PORT, USER, PASSWORD, DEVICE, N = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
PORT = int(PORT)
ORIGIN = f"http://127.0.0.1:{PORT}"


def fail(what):
    print(f"FAIL: {what}", flush=True)
    sys.exit(1)


def login_frame():
    return ws_client.frame(0x1, json.dumps({"type": "LOGIN", "id": 1, "user": USER,
                                            "password": PASSWORD}).encode())


def welcomed(ws, what):
    m = ws.reply(1)
    if not m or m["type"] != "WELCOME":
        fail(f"{what}: no WELCOME: {m}")
    return m


def echo(ws, mid, what):
    ws.send({"type": "echo", "id": mid, "to": DEVICE, "args": [what]})
    m = ws.reply(mid)
    if not m or m["type"] != "OK" or m.get("args") != [what]:
        fail(f"{what}: the echo did not come back: {m}")


sessions = []
ticket = None
for i in range(N):
    ws = ws_client.Session("127.0.0.1", PORT, ORIGIN)
    ws.sock.sendall(login_frame())
    ticket = welcomed(ws, f"login {i}").get("ticket")
    echo(ws, 2, f"login-{i}")
    sessions.append(ws)

ws = ws_client.Session("127.0.0.1", PORT, ORIGIN, early=login_frame())
welcomed(ws, "LOGIN behind the upgrade request")
echo(ws, 2, "early")
sessions.append(ws)

ws = ws_client.Session("127.0.0.1", PORT, ORIGIN)
f = login_frame()
ws.sock.sendall(f[:5])
time.sleep(0.2)
ws.sock.sendall(f[5:])
welcomed(ws, "LOGIN in two pieces")
echo(ws, 2, "split")
sessions.append(ws)

# The ticket buys a cookie; a reload with it is logged in at the upgrade.
s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
s.sendall((f"POST /api/session HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nConnection: close\r\n"
           f"Origin: {ORIGIN}\r\nX-Iotd-Ticket: {ticket}\r\n\r\n").encode())
answer = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    answer += chunk
s.close()
cookie = next((line.split(":", 1)[1].strip().split(";")[0] for line in answer.decode().split("\r\n")
               if line.lower().startswith("set-cookie:")), None)
if not cookie:
    fail(f"no cookie for the ticket: {answer[:200]!r}")
for i in range(N):
    ws = ws_client.Session("127.0.0.1", PORT, ORIGIN, cookie=cookie)
    m = ws.wait(lambda m: m["type"] == "WELCOME")
    if not m:
        fail(f"cookie {i}: no WELCOME")
    echo(ws, 2, f"cookie-{i}")
    sessions.append(ws)

print(f"ready {len(sessions)}", flush=True)
sys.stdin.read()
