"""ws_client.py - the client side of RFC 6455 framing, from the standard library, for the /ws
tests (ws_check.py, ws_session_check.py): what is tested is the wire, not a library's
tolerance."""
import base64
import json
import os
import socket
import struct
import time


def frame(opcode, payload, fin=True, masked=True):
    """One client frame: masked (as a client must) unless masked=False."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, (0x80 if masked else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, (0x80 if masked else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", first, (0x80 if masked else 0) | 127, n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Reader:
    """Server frames from sock, after the bytes already read (rest)."""

    def __init__(self, sock, rest=b""):
        self.sock, self.buf = sock, rest

    def need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame_masked(self):
        """(opcode, payload, whether the server masked it: it must not)."""
        b0, b1 = self.need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.need(8))[0]
        return b0 & 0x0F, self.need(n), bool(b1 & 0x80)


class Session:
    """A /ws client: the upgrade (over TLS with an ssl context), then JSON messages."""

    def __init__(self, host, port, origin, cookie=None, tls_context=None, early=b""):
        """early: bytes sent in the same write as the upgrade request (frames a client
        pipelines behind it)."""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock = socket.create_connection((host, port), timeout=5)
        if tls_context:
            self.sock = tls_context.wrap_socket(self.sock, server_hostname=host)
        head = (f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n")
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        self.sock.sendall((head + "\r\n").encode() + early)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        status, _, rest = answer.partition(b"\r\n\r\n")
        self.reader = Reader(self.sock, rest)
        self.status = status.decode().split("\r\n")[0]

    def send_raw(self, opcode, payload):
        self.sock.sendall(frame(opcode, payload))

    def send(self, obj):
        self.send_raw(0x1, json.dumps(obj).encode())

    def frame(self):
        op, payload, masked = self.reader.frame_masked()
        if masked:
            raise ValueError("a server frame is masked")
        return op, payload

    def message(self):
        """The next message as an object; a close frame as {"type": "close", "code": N}."""
        op, payload = self.frame()
        if op == 0x8:
            return {"type": "close", "code": struct.unpack("!H", payload[:2])[0] if payload else 0}
        return json.loads(payload)

    def wait(self, pred, seconds=5):
        """The first message pred accepts (or the close); EVENTs and others before it are skipped."""
        end = time.time() + seconds
        while time.time() < end:
            m = self.message()
            if pred(m) or m["type"] == "close":
                return m
        return None

    def reply(self, mid):
        return self.wait(lambda m: m.get("id") == mid and m["type"] in ("OK", "ERROR", "PONG", "WELCOME"))
