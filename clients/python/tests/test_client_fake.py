"""The client's mechanics against a scripted fake server (no iotd needed): the LOGIN frame,
PONG to the server's PING, PING when idle, out-of-order answers matched by id, BYE on close,
reconnect honouring retry= and re-subscribing/re-leasing with the same filters, copies of an
item collapsed, NOTICE surfaced, a query's pages followed by next= (a busy page asked again)
and its ROWs kept with their request, ACK alarm=, PRESENCE items, and TLS (when the openssl command is there for a certificate).

Run: python3 -m unittest discover -s clients/python/tests -p 'test_client_fake.py'
"""
import os
import queue
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from iotd_client import AuthError, Client, ConnectionLost, Event, IotdError, Notice, Presence  # noqa: E402
from iotd_client.frames import Decoder, Frame, encode  # noqa: E402

USER = "alice@acme"


class Peer:
    """The server side of one accepted connection."""

    def __init__(self, sock):
        self.sock, self.dec, self.frames = sock, Decoder(), []
        sock.settimeout(10)

    def recv(self, timeout=10) -> Frame | None:
        deadline = time.time() + timeout
        while not self.frames:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                return None
            if not data:
                return None
            self.frames += [f for f in self.dec.feed(data) if isinstance(f, Frame)]
        return self.frames.pop(0)

    def recv_type(self, typ, timeout=10) -> Frame | None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            f = self.recv(deadline - time.time())
            if f is None:
                return None
            if f.type == typ:
                return f
        return None

    def send(self, *fields, to=USER, frm="iotd"):
        typ, fid, *args = fields
        self.sock.sendall(encode(frm, to, typ, fid, *args))

    def welcome(self, ping=30, session="s1"):
        f = self.recv()
        assert f is not None and f.type == "LOGIN", f
        self.send("WELCOME", f.id, f"session={session}", f"ping={ping}")
        return f

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class FakeServer:
    def __init__(self, tls: ssl.SSLContext | None = None):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.tls = tls
        self.peers: "queue.Queue[tuple[Peer, float]]" = queue.Queue()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            if self.tls:
                try:
                    s = self.tls.wrap_socket(s, server_side=True)
                except (OSError, ssl.SSLError):
                    continue
            self.peers.put((Peer(s), time.monotonic()))

    def peer(self, timeout=10) -> tuple[Peer, float]:
        return self.peers.get(timeout=timeout)

    def close(self):
        self.lsock.close()


class Mechanics(unittest.TestCase):
    def setUp(self):
        self.srv = FakeServer()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.srv.close()

    def connect(self, ping=30, **kw):
        box = {}
        t = threading.Thread(target=lambda: box.update(c=Client("127.0.0.1", self.srv.port, USER, "pw 1",
                                                                 timeout=5, **kw)))
        t.start()
        peer, _ = self.srv.peer()
        login = peer.welcome(ping=ping)
        t.join()
        self.clients.append(box["c"])
        return box["c"], peer, login

    def test_login_frame(self):
        c, peer, login = self.connect()
        self.assertEqual(login, Frame(USER, "iotd", "LOGIN", 1, ("proto=1", "password=pw 1")))
        self.assertEqual((c.session, c.ping_s), ("s1", 30.0))

    def test_login_refused(self):
        box = {}

        def run():
            try:
                Client("127.0.0.1", self.srv.port, USER, "bad", timeout=5)
            except AuthError as e:
                box["e"] = e
        t = threading.Thread(target=run)
        t.start()
        peer, _ = self.srv.peer()
        f = peer.recv()
        peer.send("ERROR", f.id, "code=auth", "retry=3")
        t.join()
        self.assertEqual((box["e"].code, box["e"].retry), ("auth", 3.0))

    def test_pong_ping_and_bye(self):
        c, peer, _ = self.connect(ping=1)
        peer.send("PING", 77)
        self.assertEqual(peer.recv(), Frame(USER, "iotd", "PONG", 77, ()))
        start = time.monotonic()
        f = peer.recv(3)                               # idle for ping= seconds: the client pings
        self.assertEqual(f.type, "PING")
        self.assertGreaterEqual(time.monotonic() - start, 0.5)
        peer.send("PONG", f.id)
        c.close()
        self.assertEqual(peer.recv_type("BYE").to, "iotd")

    def test_answers_by_id_out_of_order(self):
        c, peer, _ = self.connect()
        results = {}
        threads = [threading.Thread(target=lambda n=n: results.update({n: c.send("dev1", "echo", f"m{n}")}))
                   for n in range(5)]
        for t in threads:
            t.start()
        reqs = [peer.recv() for _ in range(5)]
        self.assertEqual(len({r.id for r in reqs}), 5)
        for r in reversed(reqs):
            self.assertEqual((r.frm, r.to, r.type), (USER, "dev1", "echo"))
            peer.send("OK", r.id, *r.args, frm="dev1")
        for t in threads:
            t.join()
        self.assertEqual(results, {n: [f"m{n}"] for n in range(5)})

    def test_query_follows_pages(self):
        c, peer, _ = self.connect()
        box = {}
        t = threading.Thread(target=lambda: box.update(rows=list(c.query("devices", limit=2, online=1))))
        t.start()
        f = peer.recv()
        self.assertEqual((f.type, f.args), ("QUERY", ("what=devices", "online=1", "limit=2")))
        peer.send("ROW", f.id, "device=dev1", "online=1")
        peer.send("ROW", 999, "device=stray")             # another request's row: not ours
        peer.send("ROW", f.id, "device=dev2", "online=1")
        peer.send("OK", f.id, "rows=2", "next=dev2")
        f = peer.recv()
        self.assertEqual(f.args, ("what=devices", "online=1", "limit=2", "after=dev2"))
        peer.send("ERROR", f.id, "code=busy", "retry=0.1")  # asked again, same cursor
        f = peer.recv()
        self.assertEqual(f.args[-1], "after=dev2")
        peer.send("ROW", f.id, "device=dev3", "online=1")
        peer.send("OK", f.id, "rows=1")
        t.join(5)
        self.assertEqual([r["device"] for r in box["rows"]], ["dev1", "dev2", "dev3"])

    def test_history_rows_and_refusals(self):
        c, peer, _ = self.connect()
        box = {}
        t = threading.Thread(target=lambda: box.update(rows=list(c.query("history", device="dev1"))))
        t.start()
        f = peer.recv()
        peer.send("ROW", f.id, "temperature", "1765100000000", "12", "value=21.5")
        peer.send("OK", f.id, "rows=1")
        t.join(5)
        self.assertEqual(box["rows"], [{"event": "temperature", "at": "1765100000000", "seq": "12",
                                        "value": "21.5"}])
        t = threading.Thread(target=lambda: box.update(e=self._refused(lambda: c.ack_alarm(7))))
        t.start()
        f = peer.recv()
        self.assertEqual((f.type, f.args), ("ACK", ("alarm=7",)))
        peer.send("ERROR", f.id, "code=exists", "msg=acknowledged by bob@acme")
        t.join(5)
        self.assertEqual((box["e"].code, box["e"].msg), ("exists", "acknowledged by bob@acme"))

    @staticmethod
    def _refused(fn):
        try:
            fn()
        except IotdError as e:
            return e
        return None

    def test_presence_items(self):
        c, peer, _ = self.connect()
        box = {}
        t = threading.Thread(target=lambda: box.update(sub=c.subscribe(presence=True, alarms="only")))
        t.start()
        f = peer.recv()
        self.assertEqual(f.args, ("alarms=only", "presence=1"))
        peer.send("OK", f.id, "sub=1")
        t.join(5)
        peer.send("PRESENCE", 0, "device=dev1", "online=0", "dtype=thermo", "at=1765100000000")
        item = box["sub"].get(5)
        self.assertIsInstance(item, Presence)
        self.assertEqual((item.device, item.online, item.dtype, item.at), ("dev1", False, "thermo",
                                                                          1765100000000))

    def test_connection_lost_fails_pending(self):
        c, peer, _ = self.connect(reconnect=False)
        box = {}

        def run():
            try:
                c.send("dev1", "echo", "x")
            except ConnectionLost as e:
                box["e"] = e
        t = threading.Thread(target=run)
        t.start()
        peer.recv()
        peer.close()
        t.join(5)
        self.assertEqual(box["e"].code, "disconnected")

    def test_reconnect_honours_retry_and_restores(self):
        c, peer, _ = self.connect(backoff_base=0.05, backoff_max=0.2)
        box = {}
        threading.Thread(target=lambda: box.update(sub=c.subscribe(device="dev1", event="temperature",
                                                                    alarms=1))).start()
        f = peer.recv()
        self.assertEqual((f.type, f.args), ("SUBSCRIBE", ("device=dev1", "event=temperature", "alarms=1")))
        peer.send("OK", f.id, "sub=1")
        threading.Thread(target=lambda: box.update(lease=c.lease("dev1", "temperature", ttl=60))).start()
        f = peer.recv()
        self.assertEqual((f.type, f.args), ("LEASE", ("device=dev1", "event=temperature", "ttl=60")))
        peer.send("OK", f.id, "ttl=60")
        for _ in range(100):
            if "lease" in box:
                break
            time.sleep(0.01)
        sub = box["sub"]
        peer.close()                                   # the server goes away
        p2, _ = self.srv.peer()
        f = p2.recv()
        p2.send("ERROR", f.id, "code=auth", "retry=1")  # refused, come back in 1 s
        p2.close()
        refused = time.monotonic()
        p3, at = self.srv.peer()
        self.assertGreaterEqual(at - refused, 1.0, "retry= was not honoured")
        p3.welcome(session="s2")
        got = {}
        for _ in range(2):
            f = p3.recv()
            got[f.type] = f
            p3.send("OK", f.id, "sub=9" if f.type == "SUBSCRIBE" else "ttl=60")
        self.assertEqual(got["SUBSCRIBE"].args, ("device=dev1", "event=temperature", "alarms=1"))
        self.assertEqual(got["LEASE"].args, ("device=dev1", "event=temperature", "ttl=60"))
        self.assertTrue(c.wait_connected(5))
        self.assertEqual((c.session, c.reconnects), ("s2", 1))
        # items: the copies of one (one per matching server-side subscription) are collapsed
        for _ in range(2):
            p3.send("EVENT", 5, "temperature", "value=21.5", frm="dev1")
        p3.send("NOTICE", 0, "dropped=3")
        p3.send("EVENT", 6, "temperature", "value=22", frm="dev1")
        p3.send("EVENT", 7, "door", "open=true", frm="dev1")        # not this subscription's
        p3.send("ALARM", 0, "hot", "state=raised", "severity=major", "source=rule",
                "event=temperature", "value=31", frm="dev1")
        items = [sub.get(5) for _ in range(4)]
        self.assertIsInstance(items[0], Event)
        self.assertEqual((items[0].seq, items[0].fields), (5, {"value": "21.5"}))
        self.assertEqual(items[1], Notice(3, items[1].received))
        self.assertEqual(items[2].seq, 6)
        self.assertEqual((items[3].kind, items[3].state, items[3].severity), ("alarm", "raised", "major"))
        self.assertIsNone(sub.get(0.3))
        self.assertEqual(c.dropped, 3)
        for _ in range(100):
            if sub.sub_id == "9":
                break
            time.sleep(0.01)
        self.assertEqual(sub.sub_id, "9")
        threading.Thread(target=sub.close).start()
        f = p3.recv()
        self.assertEqual((f.type, f.args), ("UNSUBSCRIBE", ("sub=9",)))
        p3.send("OK", f.id)


@unittest.skipUnless(shutil.which("openssl"), "needs the openssl command for a test certificate")
class Tls(unittest.TestCase):
    def test_tls_round_trip(self):
        with tempfile.TemporaryDirectory() as d:
            cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                            "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                           check=True, capture_output=True)
            sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            sctx.load_cert_chain(cert, key)
            cctx = ssl.create_default_context(cafile=cert)
            srv = FakeServer(tls=sctx)
            box = {}
            t = threading.Thread(target=lambda: box.update(c=Client("127.0.0.1", srv.port, USER, "pw",
                                                                     tls=cctx, timeout=5)))
            t.start()
            peer, _ = srv.peer()
            peer.welcome()
            t.join()
            c = box["c"]
            try:
                res = {}
                threads = [threading.Thread(target=lambda n=n: res.update({n: c.send("dev1", "echo", "é" * 1000 + str(n))}))
                           for n in range(8)]
                for th in threads:
                    th.start()
                for _ in range(8):
                    r = peer.recv()
                    peer.send("OK", r.id, *r.args, frm="dev1")
                for th in threads:
                    th.join()
                self.assertEqual(res, {n: ["é" * 1000 + str(n)] for n in range(8)})
            finally:
                c.close()
                srv.close()


if __name__ == "__main__":
    unittest.main()
