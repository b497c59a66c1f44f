"""Tests of iotd_client against a real iotd, run by tests/integration/test_python_client.sh,
which starts iotd and iotsim devices and passes the set-up in the environment:

IOTD_HOST, IOTD_PORT             the device/client listener
IOTD_USER, IOTD_PASSWORD         a user with access rules to the devices (alice@acme)
IOTD_OTHER_USER                  a user of the same tenant without rules (same password)
IOTD_DEV                         an iotsim device sending temperature events (--events),
                                 answering echo/read_temp/set_pixel, --mute never_op hold_op,
                                 --error fail_op
IOTD_DEV_OFFLINE                 a registered device that never connects
IOTD_DEV_LEASE                   an iotsim device without periodic events until leased
IOTD_DEV_BUSY                    an iotsim device for hold_op (the server's max_in_flight is
                                 IOTD_MAX_IN_FLIGHT)
IOTD_RESTART_READY, IOTD_RESTARTED  files for the Restart phase (run alone: the script restarts
                                 iotd once READY exists and creates RESTARTED when it is back)
"""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from iotd_client import (AuthError, BadArgsError, BusyError, Client, ConnectionLost,  # noqa: E402
                         DeniedError, DeviceError, Event, FrameError, IotdError, OfflineError,
                         RequestTimeout, UnknownTypeError)

E = os.environ
HOST, PORT = E.get("IOTD_HOST", "127.0.0.1"), int(E.get("IOTD_PORT", "0") or 0)
USER, PASSWORD = E.get("IOTD_USER", ""), E.get("IOTD_PASSWORD", "")
OTHER = E.get("IOTD_OTHER_USER", "")
DEV, OFFLINE = E.get("IOTD_DEV", "dev1"), E.get("IOTD_DEV_OFFLINE", "dev2")
LEASE_DEV, BUSY_DEV = E.get("IOTD_DEV_LEASE", "dev3"), E.get("IOTD_DEV_BUSY", "dev4")
MAX_IN_FLIGHT = int(E.get("IOTD_MAX_IN_FLIGHT", "4"))


def client(user=USER, **kw):
    kw.setdefault("timeout", 10)
    return Client(HOST, PORT, user=user, password=PASSWORD, **kw)


def next_event(sub, timeout, device=None, after=0.0):
    """The next Event (of device, received after the time `after`) within timeout, or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        item = sub.get(timeout=max(0.05, deadline - time.time()))
        if isinstance(item, Event) and (device is None or item.device == device) and item.received > after:
            return item
    return None


def quiet_for(sub, seconds, device):
    """True if no event of device arrives for `seconds`."""
    return next_event(sub, seconds, device) is None


@unittest.skipUnless(PORT and USER, "needs a live iotd (tests/integration/test_python_client.sh)")
class Live(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = client()

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def test_bad_password_refused(self):
        with self.assertRaises(AuthError) as cm:
            Client(HOST, PORT, user=USER, password="not-" + PASSWORD, reconnect=False, timeout=10)
        self.assertEqual(cm.exception.code, "auth")
        self.assertIsNotNone(cm.exception.retry, "a refused LOGIN carries retry=")

    def test_login(self):
        self.assertTrue(self.c.connected)
        self.assertTrue(self.c.session)
        self.assertGreater(self.c.ping_s, 0)
        self.assertEqual(self.c.role, "operator")  # user add's default role

    def test_answers(self):
        self.assertEqual(self.c.send(DEV, "echo", "hello world"), ["hello world"])
        self.assertEqual(self.c.send(DEV, "echo", "21,5 °C"), ["21,5 °C"])
        temp = self.c.send(DEV, "read_temp")
        self.assertEqual(len(temp), 2, temp)
        self.assertEqual(temp[1], "C")
        self.assertTrue(15 < float(temp[0]) < 30, temp)
        self.assertEqual(self.c.send(DEV, "set_pixel", 1, 2, "red"), [])

    def test_denied(self):
        with client(OTHER) as bob:
            with self.assertRaises(DeniedError) as cm:
                bob.send(DEV, "echo", "x")
            self.assertEqual(cm.exception.code, "denied")
            self.assertEqual(cm.exception.device, DEV)
        with self.assertRaises(DeniedError) as cm:
            self.c.send("no-such-device", "echo", "x")
        self.assertIn("no such device", cm.exception.msg)

    def test_offline(self):
        start = time.monotonic()
        with self.assertRaises(OfflineError) as cm:
            self.c.send(OFFLINE, "echo", "x")
        self.assertEqual(cm.exception.code, "offline")
        self.assertLess(time.monotonic() - start, 2)

    def test_timeout(self):
        start = time.monotonic()
        with self.assertRaises(RequestTimeout) as cm:   # the catalogue's 500 ms, iotd's answer
            self.c.send(DEV, "never_op")
        took = time.monotonic() - start
        self.assertEqual(cm.exception.code, "timeout")
        self.assertNotIn("(client)", cm.exception.msg)
        self.assertTrue(0.4 <= took < 5, took)
        self.assertIsInstance(cm.exception, TimeoutError)
        start = time.monotonic()
        with self.assertRaises(RequestTimeout) as cm:   # the client's own, shorter wait
            self.c.send(DEV, "never_op", timeout=0.1)
        self.assertIn("(client)", cm.exception.msg)
        self.assertLess(time.monotonic() - start, 0.4)
        time.sleep(0.6)                                  # iotd's late ERROR is dropped...
        self.assertEqual(self.c.send(DEV, "echo", "after"), ["after"])   # ...and harms nothing

    def test_bad_args(self):
        with self.assertRaises(BadArgsError) as cm:
            self.c.send(DEV, "set_pixel", "one", 2, "red")
        self.assertEqual(cm.exception.code, "bad_args")
        with self.assertRaises(BadArgsError):
            self.c.send(DEV, "echo")
        with self.assertRaises(BadArgsError):             # the device's own check (0..7)
            self.c.send(DEV, "set_pixel", 9, 2, "red")

    def test_unknown_type(self):
        with self.assertRaises(UnknownTypeError):
            self.c.send(DEV, "no_such_op")
        with self.assertRaises(UnknownTypeError):
            self.c.send(DEV, "temperature", "1.5")   # an event, not a command

    def test_device_error(self):
        with self.assertRaises(DeviceError) as cm:
            self.c.send(DEV, "fail_op")
        self.assertEqual(cm.exception.code, "device")
        self.assertEqual(cm.exception.msg, "refused")

    def test_control_bytes_never_sent(self):
        for bad in ["a\x1fb", "eot\x04", "nl\n"]:
            with self.assertRaises(FrameError):
                self.c.send(DEV, "echo", bad)
        with self.assertRaises(FrameError):
            self.c.send(DEV, "echo", "x" * 5000)
        with self.assertRaises(ValueError):
            self.c.send(DEV, "PING")
        self.assertEqual(self.c.send(DEV, "echo", "still"), ["still"])

    def test_requests_from_threads(self):
        errors, results = [], {}

        def worker(n):
            try:
                for i in range(25):
                    text = f"t{n}-{i}"
                    results[text] = self.c.send(DEV, "echo", text)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(MAX_IN_FLIGHT)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 25 * MAX_IN_FLIGHT)
        self.assertTrue(all(v == [k] for k, v in results.items()))

    def test_busy(self):
        holders = [threading.Thread(target=lambda: self.assertRaises(RequestTimeout, self.c.send,
                                                                     BUSY_DEV, "hold_op"))
                   for _ in range(MAX_IN_FLIGHT)]
        for t in holders:
            t.start()
        time.sleep(0.5)
        with self.assertRaises(BusyError) as cm:
            self.c.send(BUSY_DEV, "echo", "x")
        self.assertEqual(cm.exception.code, "busy")
        for t in holders:
            t.join()
        self.assertEqual(self.c.send(BUSY_DEV, "echo", "x"), ["x"])

    def test_subscribe(self):
        with self.c.subscribe(device=DEV) as sub:
            self.assertTrue(sub.sub_id)
            first = next_event(sub, 10, DEV)
            self.assertIsNotNone(first, "no live event from iotsim")
            self.assertEqual(first.name, "temperature")
            self.assertEqual(first.fields.get("unit"), "C")
            float(first.fields["value"])
            second = next_event(sub, 10, DEV)
            self.assertIsNotNone(second)
            self.assertGreater(second.seq, first.seq)
            with self.c.subscribe(event="temperature", alarms=1) as whole:   # the tenant
                self.assertIsNotNone(next_event(whole, 10, DEV))
        self.assertTrue(sub.closed)
        rest = list(sub)                     # what had arrived, then the end (no blocking)
        self.assertTrue(all(isinstance(i, Event) for i in rest), rest)
        with self.assertRaises(DeniedError):
            self.c.subscribe(device="no-such-device")
        with client(OTHER) as bob:           # no rules: he may not read dev1's events
            with bob.subscribe(device=DEV) as bsub:
                self.assertTrue(quiet_for(bsub, 1.5, DEV))
            with self.assertRaises(DeniedError):
                bob.lease(LEASE_DEV, "temperature", ttl=10)

    def test_lease(self):
        with self.c.subscribe(device=LEASE_DEV) as sub:
            self.assertTrue(quiet_for(sub, 1.5, LEASE_DEV), "the lease device sends before its lease")
            lease = self.c.lease(LEASE_DEV, "temperature", ttl=3)
            self.assertTrue(1 <= lease.ttl <= 3, lease.ttl)
            self.assertIsNotNone(next_event(sub, 6, LEASE_DEV), "the lease did not start the events")
            time.sleep(6)                       # twice the ttl: only the renewals keep it
            self.assertGreater(lease.renewals, 0)
            self.assertIsNone(lease.error)
            self.assertIsNotNone(next_event(sub, 3, LEASE_DEV), "the lease was not renewed")
            lease.release()
            time.sleep(1.5)                     # events already on their way
            while sub.get(timeout=0.01) is not None:
                pass
            self.assertTrue(quiet_for(sub, 2.5, LEASE_DEV), "events go on after the release")
        with self.assertRaises(IotdError) as cm:   # a command, not an event with start/stop
            self.c.lease(LEASE_DEV, "read_temp", ttl=10)
        self.assertIn(cm.exception.code, ("denied", "unknown_type", "bad_args"))


@unittest.skipUnless(PORT and E.get("IOTD_RESTART_READY"), "run by test_python_client.sh's restart phase")
class Restart(unittest.TestCase):
    def test_reconnect_resumes_subscription_and_lease(self):
        with client(backoff_base=0.2, backoff_max=2.0) as c:
            sub = c.subscribe(device=DEV)
            lsub = c.subscribe(device=LEASE_DEV)
            lease = c.lease(LEASE_DEV, "temperature", ttl=30)
            before = next_event(sub, 10, DEV)
            self.assertIsNotNone(before)
            self.assertIsNotNone(next_event(lsub, 10, LEASE_DEV))
            session = c.session
            open(E["IOTD_RESTART_READY"], "w").close()
            deadline = time.time() + 60
            while c.connected and time.time() < deadline:
                time.sleep(0.05)
            self.assertFalse(c.connected, "the connection did not drop when iotd stopped")
            with self.assertRaises(ConnectionLost):
                c.send(DEV, "echo", "x", timeout=0.2)
            while not os.path.exists(E["IOTD_RESTARTED"]) and time.time() < deadline:
                time.sleep(0.05)
            self.assertTrue(c.wait_connected(60), "no reconnect after the restart")
            back = time.time()
            self.assertEqual(c.reconnects, 1)
            self.assertNotEqual(c.session, session)
            after = next_event(sub, 60, DEV, after=back)
            self.assertIsNotNone(after, "the subscription did not resume")
            self.assertGreater(after.seq, before.seq)
            self.assertIsNone(sub.error)
            self.assertEqual(c.send(DEV, "echo", "back"), ["back"])
            # The lease was taken again on the new server: releasing it stops the events
            # (a server that did not know this holder would not send the stop command).
            self.assertIsNotNone(next_event(lsub, 10, LEASE_DEV, after=back))
            self.assertIsNone(lease.error)
            lease.release()
            time.sleep(1.5)
            while lsub.get(timeout=0.01) is not None:
                pass
            self.assertTrue(quiet_for(lsub, 2.5, LEASE_DEV), "the lease was not re-established")


if __name__ == "__main__":
    unittest.main(verbosity=2)
