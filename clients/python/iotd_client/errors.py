"""Errors: one class per outcome of the protocol's vocabulary (iot-protocol(7), ERROR CODES).

Every error an answer carries is an :class:`IotdError` with ``code`` (the ``code=`` of the
ERROR frame), ``msg`` (its ``msg=``, or ""), ``retry`` (its ``retry=`` in seconds, or None)
and ``device`` (the request's destination, when there was one). :func:`error_for` picks the
subclass for a code; a code this library does not know (a device may answer any) gives a
:class:`DeviceError`, which is also the class of a device's own refusal (``code=device``).
"""
from __future__ import annotations


class IotdError(Exception):
    """An ERROR answer (or a local failure with a code of the same vocabulary)."""

    code = "error"

    def __init__(self, code: str | None = None, msg: str = "", retry: float | None = None,
                 device: str | None = None):
        self.code = code or type(self).code
        self.msg = msg or ""
        self.retry = retry
        self.device = device
        text = self.code + (f": {self.msg}" if self.msg else "")
        if retry is not None:
            text += f" (retry in {retry:g} s)"
        super().__init__(text)


class BadFrameError(IotdError):
    """``bad_frame``: the server found a frame malformed (this client never sends one)."""
    code = "bad_frame"


class TooLargeError(IotdError):
    """``too_large``: a frame over the server's size limit."""
    code = "too_large"


class UnknownTypeError(IotdError):
    """``unknown_type``: the type is not in the destination's catalogue (or not a command)."""
    code = "unknown_type"


class BadArgsError(IotdError):
    """``bad_args``: the arguments do not match the catalogue's spec (or the device's)."""
    code = "bad_args"


class AuthError(IotdError):
    """``auth``: LOGIN refused (wrong user or password); ``retry`` is the server's hint."""
    code = "auth"


class DeniedError(IotdError):
    """``denied``: no such device in the tenant, or the access map does not allow it."""
    code = "denied"


class OfflineError(IotdError):
    """``offline``: the device is not connected (or disconnected during the request)."""
    code = "offline"


class RequestTimeout(IotdError, TimeoutError):
    """``timeout``: no answer in time, from the server's catalogue timeout or this client's
    own wait (then ``msg`` says so). Also a :class:`TimeoutError`."""
    code = "timeout"


class BusyError(IotdError):
    """``busy``: a queue bound was reached; ``retry`` is the number of seconds to wait."""
    code = "busy"


class InternalError(IotdError):
    """``internal``: something went wrong inside iotd."""
    code = "internal"


class DeviceError(IotdError):
    """The device's own ERROR (``code=device``, or any code outside the vocabulary)."""
    code = "device"


class ConnectionLost(IotdError, ConnectionError):
    """``disconnected``: the connection ended before the answer came (the request may or may
    not have reached the device), or the client is closed / not connected in time."""
    code = "disconnected"


_BY_CODE = {c.code: c for c in (BadFrameError, TooLargeError, UnknownTypeError, BadArgsError,
                                AuthError, DeniedError, OfflineError, RequestTimeout, BusyError,
                                InternalError, DeviceError, ConnectionLost)}


def error_for(kv: dict, device: str | None = None) -> IotdError:
    """The exception for an ERROR frame's ``key=value`` arguments."""
    code = kv.get("code") or "internal"
    retry = None
    if "retry" in kv:
        try:
            retry = float(kv["retry"])
        except ValueError:
            retry = None
    cls = _BY_CODE.get(code, DeviceError)
    return cls(code, kv.get("msg", ""), retry, device)
