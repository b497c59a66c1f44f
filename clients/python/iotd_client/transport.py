"""Byte transports under the client: plain TCP, and TLS through ssl.MemoryBIO.

One thread reads (``recv``) while others write (``send``). A plain socket allows that. An
``ssl.SSLSocket`` does not promise it (one OpenSSL object would be used from two threads at
once), so TLS runs an ``SSLObject`` over memory BIOs instead: the raw socket is read and written
without any lock, and the SSL object is only touched under a short lock, never held across a
blocking socket call. Outgoing records leave in the order the SSL object produced them (the
write lock covers taking them out of the BIO and sending them).
"""
from __future__ import annotations

import socket
import ssl
import threading


class PlainTransport:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._wlock = threading.Lock()

    def recv(self) -> bytes:
        """Some bytes, or b"" at the end of the stream."""
        return self.sock.recv(65536)

    def send(self, data: bytes) -> None:
        with self._wlock:
            self.sock.sendall(data)

    def shutdown(self) -> None:
        """Wake a blocked ``recv`` (it returns b"" or raises) without freeing the socket."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.shutdown()
        self.sock.close()


class TLSTransport(PlainTransport):
    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, server_hostname: str | None):
        super().__init__(sock)
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._obj = ctx.wrap_bio(self._in, self._out, server_side=False,
                                 server_hostname=server_hostname)
        self._lock = threading.Lock()  # the SSL object; never held across a socket call
        while True:
            try:
                self._obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("connection closed during the TLS handshake")
                self._in.write(data)
        self._flush()

    def _flush(self) -> None:
        with self._wlock:
            with self._lock:
                out = self._out.read()
            if out:
                self.sock.sendall(out)

    def send(self, data: bytes) -> None:
        with self._wlock:
            with self._lock:
                self._obj.write(data)
                out = self._out.read()
            self.sock.sendall(out)

    def recv(self) -> bytes:
        while True:
            with self._lock:
                chunks = []
                eof = False
                while True:
                    try:
                        chunk = self._obj.read(65536)
                    except ssl.SSLWantReadError:
                        break
                    except ssl.SSLZeroReturnError:
                        eof = True
                        break
                    if not chunk:
                        eof = True
                        break
                    chunks.append(chunk)
                more_out = self._out.pending
            if more_out:  # post-handshake messages (session tickets, key updates)
                self._flush()
            if chunks:
                return b"".join(chunks)
            if eof:
                return b""
            data = self.sock.recv(65536)
            if not data:
                return b""
            with self._lock:
                self._in.write(data)
