#!/usr/bin/env python3
"""ws_check.py PORT - the /ws WebSocket of iotd against RFC 6455, with a client written here from
the standard library (so what is tested is the wire, not a library's tolerance): the handshake
and its Sec-WebSocket-Accept, Origin refused (403), a wrong version (426), a text message
answered, a fragmented message answered once, ping answered by pong with the same payload, an
oversized message closed with 1009, an unmasked client frame closed with 1002, and the closing
handshake. Prints one line per check; exits 1 at the first failure."""
import base64
import hashlib
import os
import socket
import struct
import sys

import ws_client
from ws_client import frame

PORT = int(sys.argv[1])
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
checks = 0


def check(what, ok):
    global checks
    checks += 1
    if not ok:
        print(f"FAIL: {what}")
        sys.exit(1)


def connect(origin=f"http://127.0.0.1:{PORT}", version="13"):
    key = base64.b64encode(os.urandom(16))
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    head = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
            f"Sec-WebSocket-Version: {version}\r\n")
    if origin:
        head += f"Origin: {origin}\r\n"
    s.sendall((head + "\r\n").encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = s.recv(4096)
        if not chunk:
            break
        answer += chunk
    head_bytes, _, rest = answer.partition(b"\r\n\r\n")
    lines = head_bytes.decode().split("\r\n")
    headers = {k.lower(): v for k, _, v in (l.partition(": ") for l in lines[1:])}
    return s, lines[0], headers, key, rest


class Reader(ws_client.Reader):
    def frame(self):
        op, payload, masked = self.frame_masked()
        check("server frames are not masked", not masked)
        return op, payload

    def closed(self):
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False


# The handshake.
s, status, h, key, rest = connect()
check(f"101 (got {status})", status == "HTTP/1.1 101 Switching Protocols")
want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
check("Sec-WebSocket-Accept", h.get("sec-websocket-accept") == want)
check("Upgrade: websocket", h.get("upgrade", "").lower() == "websocket")
r = Reader(s, rest)

# A text message gets one answer; so does a fragmented one; ping -> pong.
s.sendall(frame(0x1, b'{"type":"read_temp"}'))
op, payload = r.frame()
check(f"text answered with text (op {op})", op == 0x1 and b'"ERROR"' in payload)
s.sendall(frame(0x1, b'{"ty', fin=False) + frame(0x0, b'pe":"x"}'))
op, payload = r.frame()
check("a fragmented message answered once", op == 0x1 and b'"ERROR"' in payload)
s.sendall(frame(0x9, b"are you there"))
op, payload = r.frame()
check("ping -> pong with its payload", op == 0xA and payload == b"are you there")

# The closing handshake.
s.sendall(frame(0x8, struct.pack("!H", 1000)))
op, payload = r.frame()
check("close answered with close 1000", op == 0x8 and struct.unpack("!H", payload[:2])[0] == 1000)
check("then iotd closes the connection", r.closed())
s.close()

# An oversized message: 1009.
s, status, h, key, rest = connect()
r = Reader(s, rest)
try:
    s.sendall(frame(0x2, b"x" * (70 * 1024)))
except (BrokenPipeError, ConnectionResetError):
    pass
op, payload = r.frame()
check(f"oversized -> close 1009 (got op {op} {payload[:2]!r})",
      op == 0x8 and struct.unpack("!H", payload[:2])[0] == 1009)
s.close()

# An unmasked client frame: 1002.
s, status, h, key, rest = connect()
r = Reader(s, rest)
s.sendall(frame(0x1, b"hello", masked=False))
op, payload = r.frame()
check(f"unmasked -> close 1002 (got op {op} {payload[:2]!r})",
      op == 0x8 and struct.unpack("!H", payload[:2])[0] == 1002)
check("then closed", r.closed())
s.close()

# Refusals.
s, status, h, key, rest = connect(origin="http://evil.example")
check(f"another origin -> 403 (got {status})", status.startswith("HTTP/1.1 403"))
s.close()
s, status, h, key, rest = connect(origin=None)
check(f"no origin -> 403 (got {status})", status.startswith("HTTP/1.1 403"))
s.close()
s, status, h, key, rest = connect(version="8")
check(f"version 8 -> 426 (got {status})", status.startswith("HTTP/1.1 426"))
check("426 names version 13", h.get("sec-websocket-version") == "13")
s.close()
print(f"ws: {checks} checks")
