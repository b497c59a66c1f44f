"""Unit tests of the frame codec (iot-protocol(7), FRAMES and LIMITS) and of the pieces of the
client that need no server: error classes by code, item parsing, subscription filters.

Run: python3 -m unittest discover -s clients/python/tests -p 'test_codec.py'
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from iotd_client import (Alarm, BusyError, DeniedError, DeviceError, Event, Notice,  # noqa: E402
                         OfflineError, RequestTimeout, errors, frames, parse_item)
from iotd_client.client import Subscription  # noqa: E402
from iotd_client.frames import Decoder, Frame, FrameError, decode, encode  # noqa: E402

US, EOT = b"\x1f", b"\x04"


def raw(*fields):
    return US.join(f if isinstance(f, bytes) else f.encode() for f in fields) + EOT


class Encode(unittest.TestCase):
    def test_layout(self):
        self.assertEqual(encode("alice@acme", "dev1", "read_temp", 7),
                         b"alice@acme\x1fdev1\x1fread_temp\x1f7\x04")
        self.assertEqual(encode("a", "b", "echo", 1, "x", "", 3, 2.5),
                         b"a\x1fb\x1fecho\x1f1\x1fx\x1f\x1f3\x1f2.5\x04")

    def test_utf8_and_high_bytes_pass(self):
        self.assertEqual(encode("a", "b", "t", 0, "21,5 °C"), raw("a", "b", "t", "0", "21,5 °C"))
        self.assertEqual(encode("a", "b", "t", 0, b"\xff\x80"), raw("a", "b", "t", "0", b"\xff\x80"))

    def test_control_bytes_refused(self):
        for bad in ["a\x1fb", "a\x04", "\x00", "tab\t", "nl\n", "del\x7f", "\x1b[0m"]:
            with self.subTest(bad=bad):
                with self.assertRaises(FrameError) as cm:
                    encode("a", "b", "echo", 1, bad)
                self.assertEqual(cm.exception.code, "bad_frame")
                self.assertIsInstance(cm.exception, ValueError)
        for kw in [("a\n", "b", "t"), ("a", "b\x1f", "t"), ("a", "b", "t\x04")]:
            with self.assertRaises(FrameError):
                encode(*kw, 1)

    def test_empty_and_long_fields(self):
        with self.assertRaises(FrameError):
            encode("", "b", "t", 1)
        with self.assertRaises(FrameError):
            encode("a", "", "t", 1)
        with self.assertRaises(FrameError):
            encode("a", "b", "", 1)
        encode("a" * 128, "b" * 128, "t" * 64, 1)
        for args in [("a" * 129, "b", "t"), ("a", "b" * 129, "t"), ("a", "b", "t" * 65)]:
            with self.assertRaises(FrameError):
                encode(*args, 1)
        # 128 bytes counted in UTF-8, not characters
        with self.assertRaises(FrameError):
            encode("é" * 65, "b", "t", 1)

    def test_ids(self):
        encode("a", "b", "t", 0)
        self.assertTrue(encode("a", "b", "t", 4294967295).endswith(b"4294967295\x04"))
        for bad in [-1, 4294967296, "7", 1.0, True, None]:
            with self.subTest(bad=bad), self.assertRaises(FrameError):
                encode("a", "b", "t", bad)

    def test_arg_count(self):
        encode("a", "b", "t", 1, *["x"] * 32)
        with self.assertRaises(FrameError):
            encode("a", "b", "t", 1, *["x"] * 33)

    def test_size_limit(self):
        head = len(b"a\x1fb\x1ft\x1f1\x1f") + 1  # + EOT
        ok = encode("a", "b", "t", 1, "x" * (4096 - head))
        self.assertEqual(len(ok), 4096)
        with self.assertRaises(FrameError) as cm:
            encode("a", "b", "t", 1, "x" * (4097 - head))
        self.assertEqual(cm.exception.code, "too_large")

    def test_types_refused(self):
        with self.assertRaises(TypeError):
            encode("a", "b", "t", 1, None)
        with self.assertRaises(TypeError):
            encode("a", "b", "t", 1, True)


class Decode(unittest.TestCase):
    def test_roundtrip(self):
        f = Frame("dev1", "alice@acme", "OK", 7, ("21.5", "C", ""))
        self.assertEqual(decode(f.encode()), f)
        self.assertEqual(Decoder().feed(f.encode()), [f])

    def test_kv_first_wins(self):
        f = decode(raw("iotd", "u@t", "ERROR", "3", "code=busy", "retry=2", "code=x", "junk"))
        self.assertEqual(f.kv(), {"code": "busy", "retry": "2"})

    def test_malformed(self):
        cases = {
            raw("a", "b", "t"): "bad_frame",                       # 3 fields
            raw("", "b", "t", "1"): "bad_frame",
            raw("a", "", "t", "1"): "bad_frame",
            raw("a", "b", "", "1"): "bad_frame",
            raw("a", "b", "t", ""): "bad_frame",
            raw("a", "b", "t", "01"): "bad_frame",
            raw("a", "b", "t", "+1"): "bad_frame",
            raw("a", "b", "t", "-1"): "bad_frame",
            raw("a", "b", "t", "4294967296"): "bad_frame",
            raw("a", "b", "t", "99999999999"): "bad_frame",
            raw("a", "b", "t", "1x"): "bad_frame",
            raw("a", "b", "t", "١"): "bad_frame",                  # a non-ASCII digit
            raw("a" * 129, "b", "t", "1"): "bad_frame",
            raw("a", "b", "t" * 65, "1"): "bad_frame",
            raw("a", "b", "t", "1", *["x"] * 33): "bad_frame",
            raw("a", "b", "t", "1", "x\ny"): "bad_frame",
            raw("a", "b", "t", "1", "x\x7f"): "bad_frame",
        }
        for data, code in cases.items():
            with self.subTest(data=data):
                got = Decoder().feed(data)
                self.assertEqual(len(got), 1)
                self.assertIsInstance(got[0], FrameError)
                self.assertEqual(got[0].code, code)
        self.assertIsInstance(Decoder().feed(raw("a", "b", "t", "1", *["x"] * 32))[0], Frame)
        self.assertEqual(decode(raw("a", "b", "t", "0")).id, 0)
        self.assertEqual(decode(raw("a", "b", "t", "4294967295")).id, 4294967295)

    def test_error_id_when_read(self):
        err = Decoder().feed(raw("a", "b", "t", "42", "x\ny"))[0]
        self.assertEqual(err.id, 42)
        err = Decoder().feed(raw("a", "b", "t", "4x"))[0]
        self.assertEqual(err.id, 0)

    def test_byte_at_a_time(self):
        data = raw("a", "b", "OK", "1", "x") + raw("a", "b", "t", "07") + raw("c", "d", "PING", "2")
        d = Decoder()
        out = []
        for i in range(len(data)):
            out += d.feed(data[i:i + 1])
        self.assertEqual([type(x).__name__ for x in out], ["Frame", "FrameError", "Frame"])
        self.assertEqual(out[2], Frame("c", "d", "PING", 2, ()))
        self.assertEqual(d.pending, 0)

    def test_oversized_refused_at_4097th_byte_then_resync(self):
        d = Decoder()
        big = b"a\x1fb\x1ft\x1f1\x1f" + b"x" * 4200
        self.assertEqual(d.feed(big[:4096]), [])
        got = d.feed(big[4096:4097])          # the 4097th byte, no EOT yet
        self.assertEqual([e.code for e in got], ["too_large"])
        self.assertEqual(d.feed(big[4097:]), [])   # discarded, memory stays bounded
        self.assertEqual(d.pending, 0)
        self.assertEqual(d.feed(EOT + raw("a", "b", "PONG", "3")), [Frame("a", "b", "PONG", 3, ())])

    def test_exactly_4096_is_fine(self):
        head = len(b"a\x1fb\x1ft\x1f1\x1f") + 1
        data = raw("a", "b", "t", "1", "x" * (4096 - head))
        self.assertEqual(len(data), 4096)
        self.assertIsInstance(Decoder().feed(data)[0], Frame)
        data = raw("a", "b", "t", "1", "x" * (4097 - head))
        self.assertEqual(Decoder().feed(data)[0].code, "too_large")

    def test_invalid_utf8_survives(self):
        f = decode(raw("d", "u", "OK", "1", b"\xff\xfe"))
        self.assertEqual(f.args[0].encode("utf-8", "surrogateescape"), b"\xff\xfe")
        self.assertEqual(f.encode(), raw("d", "u", "OK", "1", b"\xff\xfe"))


class Errors(unittest.TestCase):
    def test_by_code(self):
        e = errors.error_for({"code": "busy", "retry": "3", "msg": "queue full"}, "dev1")
        self.assertIsInstance(e, BusyError)
        self.assertEqual((e.code, e.retry, e.msg, e.device), ("busy", 3.0, "queue full", "dev1"))
        self.assertIsInstance(errors.error_for({"code": "denied"}), DeniedError)
        self.assertIsInstance(errors.error_for({"code": "offline"}), OfflineError)
        t = errors.error_for({"code": "timeout"})
        self.assertIsInstance(t, RequestTimeout)
        self.assertIsInstance(t, TimeoutError)
        d = errors.error_for({"code": "device", "msg": "refused"})
        self.assertIsInstance(d, DeviceError)
        odd = errors.error_for({"code": "jammed"})
        self.assertIsInstance(odd, DeviceError)
        self.assertEqual(odd.code, "jammed")
        self.assertEqual(errors.error_for({"code": "bad_args"}).code, "bad_args")


class Items(unittest.TestCase):
    def test_event(self):
        ev = parse_item(decode(raw("thermo-7", "u@t", "EVENT", "1025", "temperature", "value=21.5", "unit=C")))
        self.assertIsInstance(ev, Event)
        self.assertEqual((ev.device, ev.seq, ev.name, ev.fields), ("thermo-7", 1025, "temperature",
                                                                   {"value": "21.5", "unit": "C"}))

    def test_alarm(self):
        al = parse_item(decode(raw("dev1", "u@t", "ALARM", "0", "hot", "state=raised", "severity=major",
                                   "source=rule", "event=temperature", "value=31", "msg=value 31 > 30")))
        self.assertIsInstance(al, Alarm)
        self.assertEqual((al.state, al.severity, al.source, al.msg), ("raised", "major", "rule", "value 31 > 30"))
        self.assertEqual(al.fields, {"event": "temperature", "value": "31"})
        ack = parse_item(decode(raw("dev1", "u@t", "ALARM", "0", "hot", "state=acknowledged", "by=bob@t")))
        self.assertEqual((ack.state, ack.by), ("acknowledged", "bob@t"))

    def test_notice(self):
        n = parse_item(decode(raw("iotd", "u@t", "NOTICE", "0", "dropped=12")))
        self.assertIsInstance(n, Notice)
        self.assertEqual(n.dropped, 12)

    def test_subscription_filters(self):
        ev = Event("dev1", 5, "temperature", {"value": "1"})
        al = Alarm("dev1", 0, "hot", source="rule", fields={"event": "temperature"})
        s = lambda **p: Subscription(None, p)  # noqa: E731
        self.assertTrue(s().matches(ev))
        self.assertFalse(s().matches(al))
        self.assertTrue(s(alarms="1").matches(al))
        self.assertFalse(s(alarms="only").matches(ev))
        self.assertFalse(s(device="dev2").matches(ev))
        self.assertTrue(s(device="dev1", event="temperature").matches(ev))
        self.assertFalse(s(event="door").matches(ev))
        self.assertTrue(s(event="temperature", alarms="1").matches(al))
        self.assertTrue(s(group="g").matches(ev))   # the server's business


if __name__ == "__main__":
    unittest.main()
