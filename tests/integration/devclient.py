#!/usr/bin/env python3
"""devclient.py - an independent implementation of the device side of the iotd wire protocol,
written from iot-protocol(7) with Python's hmac/hashlib, for integration tests: it checks the
C implementation against a second one and can misbehave on purpose (wrong keys, replays,
silence, garbage), which a well-behaved simulator cannot.

usage: devclient.py HOST:PORT [--tls CAFILE] [--from ADDRESS] SCENARIO ARGS...
(exit 0 = scenario held; --from binds the client's side to ADDRESS, e.g. 127.0.0.2)
"""
import hashlib
import hmac
import os
import socket
import ssl
import sys
import time

US, EOT = b"\x1f", b"\x04"


def frame(frm, to, typ, fid, *args):
    return US.join([frm.encode(), to.encode(), typ.encode(), str(fid).encode()] +
                   [a.encode() for a in args]) + EOT


class Conn:
    def __init__(self, addr, cafile=None, rcvbuf=None, source=None):
        host, port = addr.rsplit(":", 1)
        if rcvbuf:  # set before connecting, or the window is already open
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            raw.settimeout(10)
            if source:
                raw.bind((source, 0))
            raw.connect((host, int(port)))
        else:
            raw = socket.create_connection((host, int(port)), timeout=10,
                                           source_address=(source, 0) if source else None)
        if cafile:
            ctx = ssl.create_default_context(cafile=cafile)
            ctx.check_hostname = False
            raw = ctx.wrap_socket(raw)
        self.sock, self.buf = raw, b""

    def send(self, data):
        self.sock.sendall(data)

    def recv_frame(self, timeout=10):
        """Next frame as (from, to, type, id, args), or None when the server closed."""
        self.sock.settimeout(timeout)
        while EOT not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        raw, self.buf = self.buf.split(EOT, 1)
        f = raw.split(US)
        return (f[0].decode(), f[1].decode(), f[2].decode(), int(f[3]), [a.decode() for a in f[4:]])

    def closed_within(self, seconds):
        """True if the server closes the connection within seconds (frames before are skipped)."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                f = self.recv_frame(timeout=max(0.1, deadline - time.time()))
            except socket.timeout:
                return False
            if f is None:
                return True
        return False


def kv(args):
    return dict(a.split("=", 1) for a in args if "=" in a)


def device_mac(key, dev, snonce, cnonce):
    return hmac.new(key, b"iotp1-device" + dev.encode() + b"\x00" + snonce + cnonce, hashlib.sha256).digest()


def server_mac(key, dev, cnonce, snonce):
    return hmac.new(key, b"iotp1-server" + dev.encode() + b"\x00" + cnonce + snonce, hashlib.sha256).digest()


def handshake(c, dev, typ, key, cnonce=None):
    """Run HELLO..WELCOME. Returns (result, details): result is 'ok' or the ERROR frame."""
    cnonce = cnonce or os.urandom(32)
    c.send(frame(dev, "iotd", "HELLO", 1, "proto=1", "type=" + typ, "fw=test-1", "cnonce=" + cnonce.hex()))
    ch = c.recv_frame()
    if ch is None:
        return "closed", None
    if ch[2] == "ERROR":
        return "error", kv(ch[4])
    assert ch[2] == "CHALLENGE" and ch[3] == 1, ch
    snonce = bytes.fromhex(kv(ch[4])["snonce"])
    auth = frame(dev, "iotd", "AUTH", 2, "mac=" + device_mac(key, dev, snonce, cnonce).hex())
    c.send(auth)
    w = c.recv_frame()
    if w is None:
        return "closed", None
    if w[2] == "ERROR":
        return "error", kv(w[4])
    assert w[2] == "WELCOME" and w[3] == 2, w
    expect = server_mac(key, dev, cnonce, snonce).hex()
    if kv(w[4]).get("mac") != expect:
        return "bad-server-mac", kv(w[4])
    return "ok", {"auth": auth, "ping": int(kv(w[4])["ping"])}


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def expect_refused(c, dev, typ, key):
    result, details = handshake(c, dev, typ, key)
    if result != "error" or details.get("code") != "auth":
        fail(f"{dev}: expected ERROR code=auth, got {result} {details}")
    if int(details.get("retry", "0")) < 1:
        fail(f"{dev}: refusal without a retry= hint: {details}")
    if not c.closed_within(5):
        fail(f"{dev}: socket not closed after the refusal")
    return details


def login(c, user, password):
    """LOGIN as user@tenant. Returns (result, details) like handshake."""
    c.send(frame(user, "iotd", "LOGIN", 1, "proto=1", "password=" + password))
    f = c.recv_frame()
    if f is None:
        return "closed", None
    if f[2] == "ERROR":
        return "error", kv(f[4])
    assert f[2] == "WELCOME" and f[3] == 1, f
    return "ok", kv(f[4])


def expect_frame(c, me, n, want):
    """Script line n, "expect TYPE ID [k=v...]": the next frame (PINGs answered as me and
    skipped) has that type and id and those values (v "*": the key is there)."""
    while True:
        f = c.recv_frame(timeout=15)
        if f is None or f[2] != "PING":
            break
        c.send(frame(me, "iotd", "PONG", f[3]))
    if f is None or f[2] != want[0] or f[3] != int(want[1]):
        fail(f"line {n}: expected {want}, got {f}")
    got = kv(f[4])
    for pair in want[2:]:
        k, v = pair.split("=", 1)
        if k not in got or (v != "*" and got[k] != v):
            fail(f"line {n}: expected {pair}, got {f}")
    return f


def check_answer(f, sender, device, fid, expect):
    """An answer must come from the device, to the sender, with the sender's id."""
    if f is None:
        fail(f"no answer to request {fid}")
    if f[0] != device or f[1] != sender or f[3] != fid:
        fail(f"answer not addressed back correctly: {f}")
    outcome = "ok" if f[2] == "OK" else kv(f[4]).get("code", "?")
    if outcome != expect:
        fail(f"request {fid}: expected {expect}, got {f}")
    return f


def serve(c, dev, mode_of):
    """Act as a device: answer requests per mode_of(type) until the server closes."""
    while True:
        f = c.recv_frame(timeout=120)
        if f is None:
            return
        frm, to, typ, fid, args = f
        if typ == "PING":
            c.send(frame(dev, "iotd", "PONG", fid))
            continue
        if not typ[0].islower():
            continue
        mode = mode_of(typ)
        print("got", typ, *args, flush=True)
        if mode == "echo":
            c.send(frame(dev, frm, "OK", fid, *args))
        elif mode == "fail":
            c.send(frame(dev, frm, "ERROR", fid, "code=device", "msg=refused"))
        elif mode == "late":
            time.sleep(1.0)  # longer than the test's timeout: the answer must be dropped
            c.send(frame(dev, frm, "OK", fid, "late"))
        elif mode == "drop":
            c.sock.close()  # disconnect mid-request
            return
        # "never": no answer at all


def main():
    addr, argv = sys.argv[1], sys.argv[2:]
    cafile = source = None
    if argv[0] == "--tls":
        cafile, argv = argv[1], argv[2:]
    if argv[0] == "--from":
        source, argv = argv[1], argv[2:]
    scenario, args = argv[0], argv[1:]
    conn = lambda: Conn(addr, cafile, source=source)

    if scenario == "auth":  # ID TYPE KEYHEX: authenticates, server MAC checks out
        dev, typ, key = args[0], args[1], bytes.fromhex(args[2])
        c = conn()
        result, details = handshake(c, dev, typ, key)
        if result != "ok":
            fail(f"handshake: {result} {details}")
        c.send(frame(dev, "iotd", "PING", 7))
        f = c.recv_frame()
        if not f or f[2] != "PONG" or f[3] != 7:
            fail(f"PING not answered: {f}")
        print("ok: authenticated, server proved the key, PING answered")
    elif scenario == "refused":  # ID TYPE KEYHEX: must get ERROR code=auth retry=N and a close
        d = expect_refused(conn(), args[0], args[1], bytes.fromhex(args[2]))
        print("ok: refused", d)
    elif scenario == "refused-n":  # N ID TYPE KEYHEX: N handshakes, each refused (auth, retry=)
        for _ in range(int(args[0])):
            expect_refused(conn(), args[1], args[2], bytes.fromhex(args[3]))
        print("ok: refused", args[0], "times")
    elif scenario == "refused-ids":  # N PREFIX TYPE KEYHEX: ids PREFIX1..PREFIXN, each refused
        for i in range(1, int(args[0]) + 1):
            expect_refused(conn(), args[1] + str(i), args[2], bytes.fromhex(args[3]))
        print("ok: refused", args[0], "ids")
    elif scenario == "login-ok":  # USER PASSWORD: WELCOME
        result, details = login(conn(), args[0], args[1])
        if result != "ok":
            fail(f"login of {args[0]}: {result} {details}")
        print("ok: logged in")
    elif scenario == "replay":  # ID TYPE KEYHEX: a recorded AUTH fails against a new challenge
        dev, typ, key = args[0], args[1], bytes.fromhex(args[2])
        cnonce = os.urandom(32)
        c = conn()
        result, details = handshake(c, dev, typ, key, cnonce)
        if result != "ok":
            fail(f"first handshake: {result}")
        recorded_auth = details["auth"]
        c.sock.close()
        c = conn()
        c.send(frame(dev, "iotd", "HELLO", 1, "proto=1", "type=" + typ, "fw=test-1", "cnonce=" + cnonce.hex()))
        ch = c.recv_frame()
        if not ch or ch[2] != "CHALLENGE":
            fail(f"no challenge: {ch}")
        c.send(recorded_auth)
        f = c.recv_frame()
        if not f or f[2] != "ERROR" or kv(f[4]).get("code") != "auth":
            fail(f"replayed AUTH accepted: {f}")
        if not c.closed_within(5):
            fail("not closed after the replay")
        print("ok: replayed AUTH refused")
    elif scenario == "silent":  # SECONDS: a peer that never says HELLO is dropped in time
        c = conn()
        start = time.time()
        if not c.closed_within(float(args[0])):
            fail("silent peer not dropped")
        print(f"ok: silent peer dropped after {time.time() - start:.1f} s")
    elif scenario == "stall":  # ID TYPE SECONDS: HELLO then nothing: dropped in time
        c = conn()
        c.send(frame(args[0], "iotd", "HELLO", 1, "proto=1", "type=" + args[1], "fw=t", "cnonce=" + os.urandom(32).hex()))
        if not c.closed_within(float(args[2])):
            fail("stalled handshake not dropped")
        print("ok: stalled handshake dropped")
    elif scenario == "keepalive":  # ID TYPE KEYHEX SECONDS: silent device gets PING then is dropped
        dev, typ, key = args[0], args[1], bytes.fromhex(args[2])
        c = conn()
        result, details = handshake(c, dev, typ, key)
        if result != "ok":
            fail(f"handshake: {result}")
        got_ping, deadline = False, time.time() + float(args[3])
        while time.time() < deadline:
            try:
                f = c.recv_frame(timeout=deadline - time.time())
            except socket.timeout:
                break
            if f is None:
                if not got_ping:
                    fail("dropped without a PING first")
                print("ok: server pinged, then dropped the silent device")
                return
            got_ping |= f[2] == "PING"
        fail("silent device not dropped")
    elif scenario == "duplicate":  # ID TYPE KEYHEX: a second connection replaces the first
        dev, typ, key = args[0], args[1], bytes.fromhex(args[2])
        a = conn()
        if handshake(a, dev, typ, key)[0] != "ok":
            fail("first connection")
        b = conn()
        if handshake(b, dev, typ, key)[0] != "ok":
            fail("second connection")
        f = a.recv_frame()
        if not f or f[2] != "BYE" or kv(f[4]).get("reason") != "replaced":
            fail(f"first connection not told it was replaced: {f}")
        if not a.closed_within(5):
            fail("first connection not closed")
        b.send(frame(dev, "iotd", "PING", 9))
        f = b.recv_frame()
        if not f or f[2] != "PONG":
            fail("second connection not serving")
        print("ok: replaced; hold the second connection open for", args[3] if len(args) > 3 else 0, "s", flush=True)
        time.sleep(float(args[3]) if len(args) > 3 else 0)
    elif scenario == "duplicate-refused":  # ID TYPE KEYHEX [ADDR2]: with duplicate = refuse
        # ADDR2: the second connection goes there (another node of a cluster, which must have
        # heard of the first: it is made half a second later).
        dev, typ, key = args[0], args[1], bytes.fromhex(args[2])
        a = conn()
        if handshake(a, dev, typ, key)[0] != "ok":
            fail("first connection")
        if len(args) > 3:
            time.sleep(0.5)
        b = Conn(args[3], cafile, source=source) if len(args) > 3 else conn()
        result, details = handshake(b, dev, typ, key)
        if result != "error" or details.get("code") != "busy":
            fail(f"second connection not refused with busy: {result} {details}")
        if not b.closed_within(5):
            fail("refused connection not closed")
        a.send(frame(dev, "iotd", "PING", 5))
        f = a.recv_frame()
        if not f or f[2] != "PONG":
            fail(f"first connection disturbed: {f}")
        print("ok: the second connection was refused, the first kept")
    elif scenario == "garbage":  # ID TYPE KEYHEX: malformed frames get ERRORs, then a disconnect
        dev, typ, key = args[0], args[1], bytes.fromhex(args[2])
        c = conn()
        if handshake(c, dev, typ, key)[0] != "ok":
            fail("handshake")
        c.send(b"only\x1ftwo" + EOT)
        f = c.recv_frame()
        if not f or f[2] != "ERROR" or kv(f[4]).get("code") != "bad_frame":
            fail(f"short frame: {f}")
        c.send(frame(dev, "iotd", "PING", 1, "x" * 5000))
        f = c.recv_frame()
        if not f or f[2] != "ERROR" or kv(f[4]).get("code") != "too_large":
            fail(f"oversized frame: {f}")
        c.send(frame("someone-else", "iotd", "PING", 3))
        f = c.recv_frame()
        if not f or f[2] != "ERROR" or kv(f[4]).get("code") != "bad_frame":
            fail(f"spoofed FROM: {f}")
        c.send(frame(dev, "iotd", "PING", 4))
        f = c.recv_frame()
        if not f or f[2] != "PONG" or f[3] != 4:
            fail(f"not serving after errors: {f}")
        for i in range(20):
            try:
                c.send(b"\x01\x02garbage" + EOT)
            except OSError:
                break
        if not c.closed_within(5):
            fail("abusive connection not closed")
        print("ok: errors answered, abuse disconnected")
    elif scenario == "serve":  # ID TYPE KEYHEX: a device answering echo/fail/late/drop/never
        dev, typ, key = args[0], args[1], bytes.fromhex(args[2])
        c = conn()
        if handshake(c, dev, typ, key)[0] != "ok":
            fail("device handshake")
        modes = {"echo": "echo", "read_temp": "echo", "set_pixel": "echo", "fail_op": "fail",
                 "late_op": "late", "drop_op": "drop", "start_temp": "echo", "stop_temp": "echo"}
        print("serving", flush=True)
        serve(c, dev, lambda t: modes.get(t, "never"))
    elif scenario == "login-fail":  # USER PASSWORD: refused with code=auth and closed
        c = conn()
        result, details = login(c, args[0], args[1])
        if result != "error" or details.get("code") != "auth":
            fail(f"login of {args[0]} not refused: {result} {details}")
        if not c.closed_within(5):
            fail("not closed after a failed login")
        print("ok: login refused", details)
    elif scenario == "ask":  # USER PASSWORD DEVICE TYPE EXPECT [ARGS...]: one request
        user, password, dev, typ, expect, rest = args[0], args[1], args[2], args[3], args[4], args[5:]
        c = conn()
        result, details = login(c, user, password)
        if result != "ok":
            fail(f"login: {result} {details}")
        c.send(frame(user, dev, typ, 7, *rest))
        f = check_answer(c.recv_frame(), user, dev, 7, expect)
        print("ok:", f[2], f[4])
    elif scenario == "ask-seq":  # USER PASSWORD GOFILE STEP...: requests on one connection
        # A STEP is DEVICE,TYPE,EXPECT[,ARG...] (one request and its outcome) or "wait": print
        # "waiting" and wait (up to 20 s) until GOFILE exists, so that the test can change the
        # registry between two requests of one session.
        user, password, gofile, steps = args[0], args[1], args[2], args[3:]
        c = conn()
        result, details = login(c, user, password)
        if result != "ok":
            fail(f"login: {result} {details}")
        for fid, step in enumerate(steps, start=20):
            if step == "wait":
                print("waiting", flush=True)
                deadline = time.time() + 20
                while not os.path.exists(gofile):
                    if time.time() > deadline:
                        fail("no go")
                    time.sleep(0.05)
                continue
            dev, typ, expect, *rest = step.split(",")
            c.send(frame(user, dev, typ, fid, *rest))
            check_answer(c.recv_frame(), user, dev, fid, expect)
        print("ok: sequence")
    elif scenario == "flood":  # USER PASSWORD DEVICE TYPE N EXPECT [PAUSE_S]: N requests pipelined
        # A thread writes all N at once (its writes block while iotd holds the sender back);
        # this one reads the answers: each id once, each with the expected outcome. With
        # PAUSE_S, it reads nothing for that long first, so that the answers pile up in iotd.
        import threading
        user, password, dev, typ, n, expect = args[0], args[1], args[2], args[3], int(args[4]), args[5]
        pause = float(args[6]) if len(args) > 6 else 0
        c = conn()
        result, details = login(c, user, password)
        if result != "ok":
            fail(f"login: {result} {details}")
        data = b"".join(frame(user, dev, typ, i) for i in range(1, n + 1))
        writer = threading.Thread(target=c.send, args=(data,), daemon=True)
        writer.start()
        time.sleep(pause)
        seen = set()
        while len(seen) < n:
            f = c.recv_frame(timeout=60)
            if f is None or f[3] in seen:
                fail(f"after {len(seen)} answers: {f}")
            check_answer(f, user, dev, f[3], expect)
            seen.add(f[3])
        writer.join()
        print(f"ok: {n} answers, {expect}")
    elif scenario == "flood-echo":  # USER PASSWORD DEVICE N: N echo requests pipelined
        # Request i carries "m<i>": every answer comes once, ok, with its own request's text
        # (an answer matched to the wrong request shows), within 60 s of the one before.
        import threading
        user, password, dev, n = args[0], args[1], args[2], int(args[3])
        c = conn()
        result, details = login(c, user, password)
        if result != "ok":
            fail(f"login: {result} {details}")
        data = b"".join(frame(user, dev, "echo", i, f"m{i}") for i in range(1, n + 1))
        writer = threading.Thread(target=c.send, args=(data,), daemon=True)
        writer.start()
        seen = set()
        while len(seen) < n:
            f = c.recv_frame(timeout=60)
            if f is None or f[3] in seen:
                fail(f"after {len(seen)} answers: {f}")
            check_answer(f, user, dev, f[3], "ok")
            if list(f[4]) != [f"m{f[3]}"]:
                fail(f"request {f[3]} answered with {f[4]}")
            seen.add(f[3])
        writer.join()
        print(f"ok: {n} answers, each its own")
    elif scenario == "no-read":  # USER PASSWORD DEVICE TYPE N SECONDS: ask, never read the answers
        # The answers come through a small receive buffer, so that they pile up in iotd, not in
        # the kernel. With N = 0: a logged-in session that stays SECONDS.
        import threading
        user, password, dev, typ, n, seconds = args[0], args[1], args[2], args[3], int(args[4]), float(args[5])
        c = Conn(addr, cafile, rcvbuf=4096)
        result, details = login(c, user, password)
        if result != "ok":
            fail(f"login: {result} {details}")
        data = b"".join(frame(user, dev, typ, i) for i in range(1, n + 1))
        threading.Thread(target=c.send, args=(data,), daemon=True).start()
        time.sleep(seconds)
        print("ok: done")
    elif scenario == "same-id":  # U1 P1 U2 P2 DEVICE: two senders, same request id, own answers
        a, b = conn(), conn()
        for c, u, p in ((a, args[0], args[1]), (b, args[2], args[3])):
            if login(c, u, p)[0] != "ok":
                fail("login " + u)
        dev = args[4]
        a.send(frame(args[0], dev, "echo", 42, "from-a"))
        b.send(frame(args[2], dev, "echo", 42, "from-b"))
        fa = check_answer(a.recv_frame(), args[0], dev, 42, "ok")
        fb = check_answer(b.recv_frame(), args[2], dev, 42, "ok")
        if fa[4] != ["from-a"] or fb[4] != ["from-b"]:
            fail(f"answers crossed: {fa} {fb}")
        print("ok: same id, answers not crossed")
    elif scenario == "device-ask":  # ID TYPE KEYHEX DEST MSG EXPECT [ARGS...]: device to device
        dev, typ, key, dest, msg, expect, rest = args[0], args[1], bytes.fromhex(args[2]), args[3], args[4], args[5], args[6:]
        c = conn()
        if handshake(c, dev, typ, key)[0] != "ok":
            fail("device handshake")
        c.send(frame(dev, dest, msg, 9, *rest))
        f = check_answer(c.recv_frame(), dev, dest, 9, expect)
        print("ok:", f[2], f[4])
    elif scenario == "event-script":  # ID TYPE KEYHEX < SCRIPT: events and their answers
        # Script lines: "send TYPE ID ARGS..." | "expect TYPE ID [k=v...]" | "reconnect" |
        # "sleep S" | "silent S" (no frame but PING within S seconds). Answers are matched in order.
        dev, typ, key = args[0], args[1], bytes.fromhex(args[2])
        c = conn()
        if handshake(c, dev, typ, key)[0] != "ok":
            fail("device handshake")
        for n, line in enumerate(sys.stdin, 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "send":
                c.send(frame(dev, "iotd", words[1], int(words[2]), *words[3:]))
            elif words[0] == "expect":
                expect_frame(c, dev, n, words[1:])
            elif words[0] == "reconnect":
                c.sock.close()
                c = conn()
                if handshake(c, dev, typ, key)[0] != "ok":
                    fail("device handshake after reconnect")
            elif words[0] == "sleep":
                time.sleep(float(words[1]))
            else:
                fail(f"line {n}: unknown step {words[0]}")
        print("ok: event script held")
    elif scenario == "client-script":  # USER < SCRIPT: a native client's frames, raw
        # Script lines ("#" starts a comment): "send TO TYPE ID ARGS..." queues a frame from
        # USER (queued frames leave in one write, at the next other step) | "expect TYPE ID
        # [k=v...]" the next frame (PINGs answered and skipped; v "*": the key is there) |
        # "expect-set TYPE:ID..." the next frames, in any order | "quiet S" no frame within S
        # seconds | "mark TEXT" print TEXT | "sleep S".
        user, c, queued = args[0], conn(), []
        for n, line in enumerate(sys.stdin, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "send":
                queued.append(frame(user, words[1], words[2], int(words[3]), *words[4:]))
                continue
            if queued:
                c.send(b"".join(queued))
                queued = []
            if words[0] == "expect":
                expect_frame(c, user, n, words[1:])
            elif words[0] == "expect-set":
                want = set(words[1:])
                while want:
                    f = c.recv_frame(timeout=15)
                    got = f and f"{f[2]}:{f[3]}"
                    if got not in want:
                        fail(f"line {n}: expected one of {sorted(want)}, got {f}")
                    want.remove(got)
            elif words[0] == "quiet":
                try:
                    f = c.recv_frame(timeout=float(words[1]))
                    fail(f"line {n}: expected nothing, got {f}")
                except socket.timeout:
                    pass
            elif words[0] == "mark":
                print(*words[1:], flush=True)
            elif words[0] == "sleep":
                time.sleep(float(words[1]))
            else:
                fail(f"line {n}: unknown step {words[0]}")
        print("ok: client script held")
    elif scenario == "subscribe":  # USER PASSWORD SECONDS COUNT [k=v...]: print what arrives
        user, password, seconds, count, rest = args[0], args[1], float(args[2]), int(args[3]), args[4:]
        c = conn()
        if login(c, user, password)[0] != "ok":
            fail("login")
        c.send(frame(user, "iotd", "SUBSCRIBE", 3, *rest))
        f = c.recv_frame()
        if f is None or f[3] != 3:
            fail(f"no answer to SUBSCRIBE: {f}")
        if f[2] != "OK":
            print("refused", kv(f[4]).get("code"), flush=True)
            return
        print("subscribed", kv(f[4]).get("sub"), flush=True)
        got, deadline = 0, time.time() + seconds
        while got < count and time.time() < deadline:
            try:
                f = c.recv_frame(timeout=max(0.1, deadline - time.time()))
            except socket.timeout:
                break
            if f is None:
                break
            if f[2] == "PING":
                c.send(frame(user, "iotd", "PONG", f[3]))
                continue
            print(f[2], f[0], f[3], *f[4], flush=True)
            got += f[2] in ("EVENT", "ALARM")
        print("received", got, flush=True)
    elif scenario == "subscribe-many":  # USER PASSWORD N: N SUBSCRIBEs, count OK and busy
        user, password, n = args[0], args[1], int(args[2])
        c = conn()
        if login(c, user, password)[0] != "ok":
            fail("login")
        for i in range(n):
            c.send(frame(user, "iotd", "SUBSCRIBE", 100 + i))
        ok = busy = 0
        while ok + busy < n:
            f = c.recv_frame()
            if f is None:
                fail("closed")
            if f[2] == "OK":
                ok += 1
            elif f[2] == "ERROR" and kv(f[4]).get("code") == "busy":
                if int(kv(f[4]).get("retry", "0")) < 1:
                    fail(f"busy without retry=: {f}")
                busy += 1
        print(f"ok={ok} busy={busy}")
    elif scenario == "lease":  # USER PASSWORD HOLD_S k=v...: LEASE, print the answer, hold
        user, password, hold, rest = args[0], args[1], float(args[2]), args[3:]
        c = conn()
        if login(c, user, password)[0] != "ok":
            fail("login")
        c.send(frame(user, "iotd", "LEASE", 4, *rest))
        f = c.recv_frame()
        if f is None or f[3] != 4:
            fail(f"no answer to LEASE: {f}")
        print(f[2], *f[4], flush=True)
        time.sleep(hold)
    elif scenario in ("hold-device", "hold-user"):  # ID TYPE KEYHEX | USER PASSWORD
        # Connect, print "online", then every frame until the server closes: requests are
        # never answered, a BYE prints "BYE reason=...", the close prints "closed".
        c = conn()
        if scenario == "hold-device":
            me = args[0]
            result, details = handshake(c, me, args[1], bytes.fromhex(args[2]))
        else:
            me = args[0]
            result, details = login(c, me, args[1])
        if result != "ok":
            fail(f"{me}: {result} {details}")
        print("online", flush=True)
        while True:
            try:
                f = c.recv_frame(timeout=120)
            except socket.timeout:
                fail("not closed within 120 s")
            if f is None:
                print("closed", flush=True)
                return
            if f[2] == "PING":
                c.send(frame(me, "iotd", "PONG", f[3]))
            else:
                print("BYE" if f[2] == "BYE" else "got " + f[2], *f[4], flush=True)
    else:
        fail("unknown scenario " + scenario)


if __name__ == "__main__":
    main()
