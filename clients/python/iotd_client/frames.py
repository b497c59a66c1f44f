"""The frame codec of iot-protocol(7), version 1: building and parsing frames.

A frame is text fields separated by US (0x1F) and terminated by EOT (0x04)::

    from US to US type US id *( US arg ) EOT

* FROM and TO: 1..128 bytes, TYPE: 1..64 bytes, ID: canonical decimal 0..4294967295,
  at most 32 ARGs (which may be empty), at most 4096 bytes in all (separators and EOT
  included);
* no field may contain a control byte (0x00-0x1F, 0x7F): nothing is escaped, so a field
  simply cannot carry US or EOT. Bytes 0x80-0xFF pass through unchanged.

Strings are encoded as UTF-8. Received fields are decoded as UTF-8 with the
``surrogateescape`` error handler, so a field that is not valid UTF-8 is still delivered and
encodes back to the same bytes.

:func:`encode` refuses (with :class:`FrameError`, a :class:`ValueError`) to build a frame that
breaks any of these rules, so nothing malformed ever leaves the client. :class:`Decoder` parses
a byte stream incrementally, checking every byte as it arrives like the C parser: a frame over
the size limit is refused as soon as its 4097th byte arrives, and after any malformed frame
the input is discarded up to and including the next EOT, so one bad frame costs one error,
not the stream.
"""
from __future__ import annotations

from dataclasses import dataclass, field

US = 0x1F
EOT = 0x04

MAX_FRAME = 4096
MAX_ARGS = 32
MAX_ADDRESS = 128
MAX_TYPE = 64
MAX_ID = 4294967295

#: The bytes a field may not contain.
CONTROL_BYTES = frozenset(range(0x00, 0x20)) | {0x7F}
_CONTROL_TABLE = bytes(CONTROL_BYTES)


class FrameError(ValueError):
    """A frame that breaks the grammar or the limits of iot-protocol(7).

    ``code`` is the protocol's error code for it: ``bad_frame`` or ``too_large``; ``id`` is the
    frame's id when its ID field had been read, else 0 (what iotd would answer with).
    """

    def __init__(self, code: str, msg: str, id: int = 0):
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.id = id


@dataclass(frozen=True)
class Frame:
    """One frame: addresses, type, id and the arguments, as strings."""

    frm: str
    to: str
    type: str
    id: int
    args: tuple[str, ...] = field(default_factory=tuple)

    def kv(self) -> dict[str, str]:
        """The ``key=value`` arguments as a dict; the first argument with a key counts."""
        return parse_kv(self.args)

    def encode(self) -> bytes:
        return encode(self.frm, self.to, self.type, self.id, *self.args)


def parse_kv(args) -> dict[str, str]:
    """``["a=1", "b=2", "a=3", "junk"]`` -> ``{"a": "1", "b": "2"}``: first key wins,
    arguments without ``=`` are skipped."""
    out: dict[str, str] = {}
    for a in args:
        k, sep, v = a.partition("=")
        if sep and k not in out:
            out[k] = v
    return out


def _field_bytes(value, what: str) -> bytes:
    if isinstance(value, bytes):
        b = value
    elif isinstance(value, str):
        b = value.encode("utf-8", "surrogateescape")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        b = str(value).encode("ascii")
    else:
        raise TypeError(f"{what}: a frame field must be str, bytes, int or float, not {type(value).__name__}")
    bad = b.translate(None, delete=bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100)))
    if bad:
        raise FrameError("bad_frame", f"{what} contains the control byte 0x{bad[0]:02x}")
    return b


def check_id(fid) -> int:
    """An id as an int 0..4294967295 (``bool`` refused)."""
    if isinstance(fid, bool) or not isinstance(fid, int) or not 0 <= fid <= MAX_ID:
        raise FrameError("bad_frame", f"id {fid!r} is not an integer 0..{MAX_ID}")
    return fid


def encode(frm: str, to: str, type: str, id: int, *args) -> bytes:
    """Build one frame (EOT included), or raise :class:`FrameError` / :class:`TypeError`.

    Arguments may be str (UTF-8), bytes, int or float (written with ``str()``).
    """
    check_id(id)
    parts = [_field_bytes(frm, "FROM"), _field_bytes(to, "TO"), _field_bytes(type, "TYPE"),
             str(id).encode("ascii")]
    for name, b, limit in (("FROM", parts[0], MAX_ADDRESS), ("TO", parts[1], MAX_ADDRESS),
                           ("TYPE", parts[2], MAX_TYPE)):
        if not b:
            raise FrameError("bad_frame", f"{name} is empty", id)
        if len(b) > limit:
            raise FrameError("bad_frame", f"{name} is {len(b)} bytes, at most {limit}", id)
    if len(args) > MAX_ARGS:
        raise FrameError("bad_frame", f"{len(args)} arguments, at most {MAX_ARGS}", id)
    parts += [_field_bytes(a, f"argument {i + 1}") for i, a in enumerate(args)]
    out = b"\x1f".join(parts) + b"\x04"
    if len(out) > MAX_FRAME:
        raise FrameError("too_large", f"frame is {len(out)} bytes, at most {MAX_FRAME}", id)
    return out


def _parse_id(b: bytes) -> int | None:
    if not b or len(b) > 10 or not b.isdigit() or not b.isascii():
        return None
    if len(b) > 1 and b[0] == 0x30:
        return None
    v = int(b)
    return v if v <= MAX_ID else None


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def decode(raw: bytes) -> Frame:
    """Parse one frame's bytes (without or with its final EOT); :class:`FrameError` if
    malformed."""
    if raw.endswith(b"\x04"):
        raw = raw[:-1]
    if len(raw) + 1 > MAX_FRAME:
        raise FrameError("too_large", f"frame is {len(raw) + 1} bytes, at most {MAX_FRAME}")
    if b"\x04" in raw:
        raise FrameError("bad_frame", "EOT inside a frame")
    fields = raw.split(b"\x1f")
    fid = 0
    if len(fields) >= 4:
        parsed = _parse_id(fields[3])
        if parsed is not None:
            fid = parsed
    for i, f in enumerate(fields):
        bad = f.translate(None, delete=bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100)))
        if bad:
            raise FrameError("bad_frame", f"control byte 0x{bad[0]:02x} in field {i + 1}",
                             fid if i > 3 else 0)
    if len(fields) < 4:
        raise FrameError("bad_frame", f"{len(fields)} fields, at least 4")
    frm, to, typ, idb = fields[:4]
    if _parse_id(idb) is None:
        raise FrameError("bad_frame", f"id {idb!r} is not canonical decimal 0..{MAX_ID}")
    for name, b, limit in (("FROM", frm, MAX_ADDRESS), ("TO", to, MAX_ADDRESS), ("TYPE", typ, MAX_TYPE)):
        if not b:
            raise FrameError("bad_frame", f"{name} is empty", fid)
        if len(b) > limit:
            raise FrameError("bad_frame", f"{name} is {len(b)} bytes, at most {limit}", fid)
    if len(fields) - 4 > MAX_ARGS:
        raise FrameError("bad_frame", f"{len(fields) - 4} arguments, at most {MAX_ARGS}", fid)
    return Frame(_decode(frm), _decode(to), _decode(typ), fid, tuple(_decode(a) for a in fields[4:]))


class Decoder:
    """Incremental parser of a byte stream into frames.

    ``feed(data)`` returns a list whose items are :class:`Frame` (a good frame) or
    :class:`FrameError` (a malformed one, already skipped). Memory is bounded by the frame
    limit: a frame is refused once its ``max_frame + 1``-th byte arrives, and its remaining bytes
    are discarded up to the next EOT.
    """

    def __init__(self, max_frame: int = MAX_FRAME):
        self.max_frame = max_frame
        self._buf = bytearray()
        self._discarding = False  # inside an oversized frame: drop bytes up to the next EOT

    def feed(self, data: bytes) -> list:
        out: list = []
        pos = 0
        n = len(data)
        while pos < n:
            end = data.find(b"\x04", pos)
            chunk_end = n if end < 0 else end
            if self._discarding:
                if end < 0:
                    return out
                self._discarding = False
                pos = end + 1
                continue
            self._buf += data[pos:chunk_end]
            if len(self._buf) + (1 if end >= 0 else 0) > self.max_frame:
                out.append(FrameError("too_large", f"frame over {self.max_frame} bytes"))
                self._buf.clear()
                if end < 0:
                    self._discarding = True
                    return out
                pos = end + 1
                continue
            if end < 0:
                return out
            raw = bytes(self._buf)
            self._buf.clear()
            pos = end + 1
            try:
                out.append(decode(raw))
            except FrameError as e:
                out.append(e)
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self._buf)
