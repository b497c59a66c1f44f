"""iotd_client - a standard-library Python client of iotd's native protocol (iot-protocol(7)).

    from iotd_client import Client, DeniedError
    with Client("127.0.0.1", 7800, user="alice@acme", password="...") as c:
        print(c.send("dev1", "read_temp"))            # ['21.5', 'C']
        for item in c.subscribe(device="dev1", alarms=1):
            print(item)

See README.md for the whole API.
"""
from .client import Alarm, Client, Event, Lease, Notice, Presence, Subscription, parse_item
from .errors import (AuthError, BadArgsError, BadFrameError, BusyError, ConnectionLost,
                     DeniedError, DeviceError, InternalError, IotdError, OfflineError,
                     RequestTimeout, TooLargeError, UnknownTypeError, error_for)
from .frames import Decoder, Frame, FrameError, decode, encode

__version__ = "0.1.0"
__all__ = ["Client", "Subscription", "Lease", "Event", "Alarm", "Notice", "Presence", "parse_item",
           "IotdError", "AuthError", "BadArgsError", "BadFrameError", "BusyError",
           "ConnectionLost", "DeniedError", "DeviceError", "InternalError", "OfflineError",
           "RequestTimeout", "TooLargeError", "UnknownTypeError", "error_for",
           "Frame", "FrameError", "Decoder", "encode", "decode"]
