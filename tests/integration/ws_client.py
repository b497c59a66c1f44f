"""ws_client.py - the client side of RFC 6455 framing, from the standard library, for the /ws
tests (ws_check.py, ws_session_check.py): what is tested is the wire, not a library's
tolerance."""
import os
import struct


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
