"""The native client: LOGIN, requests, subscriptions, leases, keepalive and reconnect.

Threads: the caller's threads send requests; one reader thread per client reads the socket,
answers the server's PING, dispatches answers by request id and items to subscriptions, and
after a lost connection reconnects (jittered exponential backoff that honours ``retry=``) and
re-establishes subscriptions and leases; one keepalive thread sends PING when the connection
has been idle for WELCOME's ``ping=`` seconds and drops a connection silent for too long.
"""
from __future__ import annotations

import logging
import queue
import random
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

from . import frames
from .errors import ConnectionLost, IotdError, RequestTimeout, error_for
from .transport import PlainTransport, TLSTransport

log = logging.getLogger("iotd_client")

SERVER = "iotd"
SYSTEM_TYPES = frozenset({"HELLO", "CHALLENGE", "AUTH", "WELCOME", "LOGIN", "OK", "ERROR", "PING",
                          "PONG", "EVENT", "ALARM", "ACK", "BYE", "SUBSCRIBE", "UNSUBSCRIBE",
                          "LEASE", "NOTICE", "QUERY", "ROW", "PRESENCE"})
ALARM_RESERVED = ("state", "severity", "msg", "by", "source")


# ---- what subscriptions yield ----------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    """An EVENT a device pushed: ``seq`` is the device's sequence number, ``fields`` its
    ``key=value`` fields (values as strings)."""
    device: str
    seq: int
    name: str
    fields: dict = field(default_factory=dict)
    received: float = 0.0  #: time.time() when it arrived
    kind = "event"


@dataclass(frozen=True)
class Alarm:
    """An alarm change: ``state`` is raised, acknowledged (``by`` who) or cleared; ``source``
    is ``rule`` or ``device``; ``seq`` is 0 for changes made by the server's rules and the
    device's sequence number for a device's own ALARM frame. ``fields`` holds the other keys
    (``event``, ``value``, ...)."""
    device: str
    seq: int
    name: str
    state: str = "raised"
    severity: str | None = None
    msg: str | None = None
    by: str | None = None
    source: str | None = None
    fields: dict = field(default_factory=dict)
    received: float = 0.0
    kind = "alarm"


@dataclass(frozen=True)
class Presence:
    """``PRESENCE``: ``device`` (of device type ``dtype``) came online or went offline at
    ``at`` (ms since the epoch), for a subscription made with ``presence=True``."""
    device: str
    online: bool
    dtype: str = ""
    at: int = 0
    received: float = 0.0
    kind = "presence"


@dataclass(frozen=True)
class Notice:
    """``NOTICE dropped=n``: the server dropped ``dropped`` items because this connection was
    not read fast enough. The server does not say of which subscription, so every subscription
    of the connection is given the notice."""
    dropped: int
    received: float = 0.0
    kind = "notice"


def parse_item(f: frames.Frame) -> Event | Alarm | Notice | Presence | None:
    """An EVENT, ALARM, PRESENCE or NOTICE frame as the object a subscription yields (None
    otherwise)."""
    now = time.time()
    if f.type == "PRESENCE":
        kv = f.kv()
        try:
            at = int(kv.get("at", "0"))
        except ValueError:
            at = 0
        return Presence(kv.get("device", ""), kv.get("online") == "1", kv.get("dtype", ""), at, now)
    if f.type == "NOTICE":
        try:
            return Notice(int(f.kv().get("dropped", "0")), now)
        except ValueError:
            return Notice(0, now)
    if f.type not in ("EVENT", "ALARM") or not f.args:
        return None
    kv = frames.parse_kv(f.args[1:])
    if f.type == "EVENT":
        return Event(f.frm, f.id, f.args[0], kv, now)
    rest = {k: v for k, v in kv.items() if k not in ALARM_RESERVED}
    return Alarm(f.frm, f.id, f.args[0], kv.get("state", "raised"), kv.get("severity"),
                 kv.get("msg"), kv.get("by"), kv.get("source"), rest, now)


_END = object()


class Subscription:
    """A live subscription: iterate it for :class:`Event`, :class:`Alarm` and :class:`Notice`
    objects. Iteration ends when it is closed (``close()``/``unsubscribe``) or the client is
    closed for good. It survives reconnects: the client subscribes again with the same filter
    (``sub_id`` changes; items sent while disconnected are not replayed — the server's history
    holds them).

    Items go into an unbounded queue; read it, or the server's backlog bound (NOTICE) is
    replaced by this process's memory.
    """

    def __init__(self, client: "Client", params: dict):
        self._client = client
        self.params = dict(params)
        self.sub_id: str | None = None
        self.closed = False
        self.error: IotdError | None = None  #: a refusal when re-subscribing after a reconnect
        self._established = False
        self._q: "queue.Queue" = queue.Queue()

    def _args(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.params.items()]

    def matches(self, item) -> bool:
        """Whether an item may belong to this subscription, as far as the client can tell
        (device, event name and alarms; a group or type scope is the server's business)."""
        p = self.params
        if isinstance(item, Presence):
            return p.get("presence") == "1" and p.get("device", item.device) == item.device
        is_alarm = isinstance(item, Alarm)
        alarms = str(p.get("alarms", "0"))
        if (is_alarm and alarms == "0") or (not is_alarm and alarms == "only"):
            return False
        if "device" in p and p["device"] != item.device:
            return False
        if "event" in p:
            name = item.fields.get("event", item.name) if is_alarm and item.source == "rule" else item.name
            if p["event"] != name and p["event"] != item.name:
                return False
        return True

    def _put(self, item) -> None:
        if not self.closed:
            self._q.put(item)

    def _end(self) -> None:
        self._q.put(_END)

    def get(self, timeout: float | None = None):
        """The next item, or None after ``timeout`` seconds (or when the subscription ended)."""
        try:
            item = self._q.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _END:
            self._q.put(_END)  # every later get() ends too
            return None
        return item

    def __iter__(self):
        return self

    def __next__(self):
        item = self._q.get()
        if item is _END:
            self._q.put(_END)
            raise StopIteration
        return item

    def close(self, timeout: float | None = None) -> None:
        """UNSUBSCRIBE (if connected) and end the iteration."""
        self._client.unsubscribe(self, timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Lease:
    """A held lease of a device's periodic event (LEASE device= event= ttl=). ``ttl`` is what
    the server granted. With ``renew`` the client renews it every ttl/3 seconds until
    ``release()``; it is taken again after a reconnect."""

    def __init__(self, client: "Client", device: str, event: str, ttl: int, renew: bool):
        self._client = client
        self.device, self.event, self.requested = device, event, int(ttl)
        self.ttl: int | None = None
        self.renew = renew
        self.released = False
        self._lock = threading.Lock()  # a renewal is never written after the release
        self.renewals = 0
        self.error: IotdError | None = None  #: the last refusal of a renewal
        self._next = 0.0

    def _args(self, ttl: int | None = None) -> list[str]:
        return [f"device={self.device}", f"event={self.event}",
                f"ttl={self.requested if ttl is None else ttl}"]

    def _granted(self, f: frames.Frame) -> None:
        try:
            self.ttl = int(f.kv().get("ttl", self.requested))
        except ValueError:
            self.ttl = self.requested
        self.error = None
        self._next = time.monotonic() + max(0.5, (self.ttl or 1) / 3)

    def renew_now(self, timeout: float | None = None) -> int:
        """Send LEASE again now (waits for the answer); returns the granted ttl."""
        f = self._client._request(SERVER, "LEASE", self._args(), timeout)
        self._granted(f)
        self.renewals += 1
        return self.ttl

    def release(self, timeout: float | None = None) -> None:
        """End the lease (LEASE ttl=0); the server stops the events when no holder is left."""
        self._client.release(self, timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class _Pending:
    __slots__ = ("done", "frame", "error", "device", "callback", "rows")

    def __init__(self, device, callback=None):
        self.rows: list[frames.Frame] = []  # a QUERY's ROW frames, before its OK
        self.done = threading.Event()
        self.frame = None
        self.error = None
        self.device = device
        self.callback = callback


def _jitter(delay: float) -> float:
    return random.uniform(0, delay)


class Client:
    """A logged-in native client of iotd (iot-protocol(7), NATIVE CLIENTS).

    ``Client(host, port, user="alice@acme", password="...")`` connects and logs in at once
    (raising :class:`AuthError` on a refused login, ``OSError`` when the server cannot be
    reached). ``tls`` is False (plain TCP: iotd only accepts logins from loopback then), True
    (the system's trust store, host name checked) or an ``ssl.SSLContext``. ``timeout`` is the
    default wait for connecting and for each answer.

    After the connection is lost the client reconnects on its own (``reconnect=True``): waits
    drawn uniformly from 0..``backoff_base`` seconds, doubling with each failure in a row up to
    ``backoff_max``, at least the ``retry=`` of an auth or busy refusal; then it subscribes again
    and takes its leases again. Requests in flight when the connection drops raise
    :class:`ConnectionLost` (they are not repeated: a command may have reached the device).

    Thread-safe: any number of threads may ``send`` at once; answers are matched by id.
    """

    def __init__(self, host: str, port: int, user: str, password: str, *,
                 tls: bool | ssl.SSLContext = False, timeout: float = 30.0,
                 reconnect: bool = True, backoff_base: float = 0.5, backoff_max: float = 60.0,
                 server_hostname: str | None = None):
        frames._field_bytes(user, "user")
        frames._field_bytes(password, "password")
        self.host, self.port, self.user = host, int(port), user
        self._password = password
        if tls is True:
            tls = ssl.create_default_context()
        self._tls: ssl.SSLContext | None = tls or None
        self._server_hostname = server_hostname or host
        self.timeout = timeout
        self.reconnect = reconnect
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.session: str | None = None  #: WELCOME's session=
        self.ping_s: float = 30.0  #: WELCOME's ping=
        self.role: str | None = None  #: WELCOME's role= (admin, operator or viewer)
        self.reconnects = 0  #: successful reconnects so far
        self.dropped = 0  #: items the server reported dropped (NOTICE), in all

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._pending: dict[int, _Pending] = {}
        self._next_id = random.randint(1, 1 << 20)
        self._subs: list[Subscription] = []
        self._leases: list[Lease] = []
        self._transport: PlainTransport | None = None
        self._connected = False
        self._connected_at = 0.0
        self._closed = False
        self._stop = threading.Event()
        self._last_rx = self._last_tx = time.monotonic()
        self._last_item: bytes | None = None

        decoder, early = self._connect_once(timeout)
        self._reader = threading.Thread(target=self._run, args=(decoder, early),
                                        name=f"iotd-reader-{user}", daemon=True)
        self._reader.start()
        self._keeper = threading.Thread(target=self._keepalive, name=f"iotd-keepalive-{user}",
                                        daemon=True)
        self._keeper.start()

    # ---- public API ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Logged in right now (False while reconnecting)."""
        return self._connected

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until logged in (after a reconnect); False after ``timeout`` or if closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._connected and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return self._connected

    def send(self, device: str, type: str, *args, timeout: float | None = None) -> list[str]:
        """Send the request ``type(args)`` to ``device`` and return the OK answer's arguments.

        Raises the :class:`IotdError` subclass of the outcome (:class:`DeniedError`,
        :class:`OfflineError`, :class:`RequestTimeout`, :class:`BusyError` with ``retry``,
        :class:`BadArgsError`, :class:`UnknownTypeError`, :class:`DeviceError`, ...), or
        :class:`RequestTimeout` when no answer came within ``timeout`` (default: the client's),
        or :class:`ConnectionLost`. Arguments are str, int or float; a field the protocol
        cannot carry (a control byte, over a limit) raises :class:`frames.FrameError` (a
        ``ValueError``) before anything is sent.
        """
        if type in SYSTEM_TYPES:
            raise ValueError(f"{type} is a system type; use the client's methods")
        f = self._request(device, type, list(args), timeout)
        return list(f.args)

    def subscribe(self, device: str | None = None, group: str | None = None,
                  type: str | None = None, event: str | None = None,
                  alarms: int | str | bool = 0, presence: bool = False,
                  timeout: float | None = None) -> Subscription:
        """SUBSCRIBE to events (``alarms=0``), events and alarm changes (``1``) or alarm
        changes only (``"only"``), of one device, group or device type (at most one), or of
        the whole tenant; ``event`` keeps one event name; ``presence=True`` also yields a
        :class:`Presence` when a device of the scope comes online or goes offline. Returns the
        :class:`Subscription`
        (an iterator); raises :class:`DeniedError`, :class:`BadArgsError` or
        :class:`BusyError` (more than 64 on one connection)."""
        scopes = [(k, v) for k, v in (("device", device), ("group", group), ("type", type)) if v is not None]
        if len(scopes) > 1:
            raise ValueError("subscribe: at most one of device=, group=, type=")
        if alarms is True:
            alarms = 1
        elif alarms is False:
            alarms = 0
        if str(alarms) not in ("0", "1", "only"):
            raise ValueError("subscribe: alarms is 0, 1 or 'only'")
        params = dict(scopes)
        if event is not None:
            params["event"] = event
        if str(alarms) != "0":
            params["alarms"] = str(alarms)
        if presence:
            params["presence"] = "1"
        sub = Subscription(self, params)
        with self._lock:  # registered first, so that no item of it is missed
            self._subs.append(sub)
        try:
            f = self._request(SERVER, "SUBSCRIBE", sub._args(), timeout)
        except BaseException:
            with self._lock:
                self._subs.remove(sub)
            raise
        sub.sub_id = f.kv().get("sub")
        sub._established = True  # from now on re-established after a reconnect
        return sub

    def unsubscribe(self, sub: Subscription, timeout: float | None = None) -> None:
        """UNSUBSCRIBE (when connected) and end the subscription's iteration."""
        with self._lock:
            if sub.closed:
                return
            sub.closed = True
            if sub in self._subs:
                self._subs.remove(sub)
        sub._end()
        if self._connected and sub.sub_id is not None:
            try:
                self._request(SERVER, "UNSUBSCRIBE", [f"sub={sub.sub_id}"], timeout)
            except ConnectionLost:
                pass  # subscriptions end with the connection anyway

    def lease(self, device: str, event: str, ttl: int = 60, renew: bool = True,
              timeout: float | None = None) -> Lease:
        """LEASE the periodic ``event`` of ``device`` for ``ttl`` seconds: the server sends the
        event's start command when the first holder asks and its stop command when the last one
        is gone. With ``renew`` (the default) the client keeps renewing it until
        :meth:`Lease.release`; it is taken again after a reconnect. Raises
        :class:`DeniedError`, :class:`UnknownTypeError` or :class:`BadArgsError`."""
        ls = Lease(self, device, event, ttl, renew)
        f = self._request(SERVER, "LEASE", ls._args(), timeout)
        ls._granted(f)
        with self._lock:
            self._leases.append(ls)
        return ls

    def release(self, ls: Lease, timeout: float | None = None) -> None:
        """Release a lease (LEASE ttl=0)."""
        with ls._lock, self._lock:  # the order _renew_async takes them in
            if ls.released:
                return
            ls.released = True
            if ls in self._leases:
                self._leases.remove(ls)
        if self._connected:
            try:
                self._request(SERVER, "LEASE", ls._args(0), timeout)
            except ConnectionLost:
                pass  # leases end with the connection anyway

    def query(self, what: str, limit: int | None = None, after: str | None = None,
              timeout: float | None = None, **filters):
        """QUERY ``what`` (``devices``, ``catalogue``, ``history``, ``alarms``, ``commands``)
        with ``filters`` (``device="dev1"``, ``state="all"``, ``since=ms`` ...) and yield each
        row as a dict of its ``key=value`` arguments; a history row also has ``"event"``,
        ``"at"`` and ``"seq"`` (its positional arguments). Pages are fetched as the iteration
        goes (``limit`` rows each, 1..500), following ``next=`` from ``after``; a page refused
        busy is asked again after its ``retry=``. Raises :class:`BadArgsError`,
        :class:`DeniedError`, ..."""
        cursor = after
        for _ in range(1 << 30):
            args = [f"what={what}"] + [f"{k}={v}" for k, v in filters.items() if v is not None]
            if limit is not None:
                args.append(f"limit={int(limit)}")
            if cursor:
                args.append(f"after={cursor}")
            try:
                ok, rows = self._request_rows(args, timeout)
            except IotdError as e:
                if e.code != "busy":
                    raise
                time.sleep(e.retry or 1)
                continue
            for r in rows:
                yield self._row(what, r)
            cursor = ok.kv().get("next")
            if not cursor:
                return

    @staticmethod
    def _row(what: str, f: frames.Frame) -> dict:
        if what != "history":
            return f.kv()
        row = frames.parse_kv(f.args[3:])
        row.update(event=f.args[0] if f.args else "", at=f.args[1] if len(f.args) > 1 else "",
                   seq=f.args[2] if len(f.args) > 2 else "")
        return row

    def ack_alarm(self, alarm: int | str, timeout: float | None = None) -> None:
        """Acknowledge an alarm (``ACK alarm=<id>``; role operator or admin). Raises
        :class:`DeniedError` (a viewer, or an alarm this user may not see) or an
        :class:`IotdError` with code ``exists`` when it was acknowledged already (``msg`` says
        by whom)."""
        self._request(SERVER, "ACK", [f"alarm={alarm}"], timeout)

    def close(self) -> None:
        """Send BYE, close the connection, stop the threads; pending requests raise
        :class:`ConnectionLost` and subscriptions end. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            t = self._transport
            connected = self._connected
        self._stop.set()
        if t is not None:
            if connected:
                try:
                    t.send(frames.encode(self.user, SERVER, "BYE", self._alloc_id()))
                except OSError:
                    pass
            t.shutdown()
        if threading.current_thread() is not self._reader:
            self._reader.join(5)
        if threading.current_thread() is not self._keeper:
            self._keeper.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- connection -----------------------------------------------------------------------

    def _connect_once(self, timeout: float):
        """Connect and LOGIN. Returns the decoder and any frames that came after WELCOME."""
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(timeout)
            t = TLSTransport(sock, self._tls, self._server_hostname) if self._tls else PlainTransport(sock)
            t.send(frames.encode(self.user, SERVER, "LOGIN", 1, "proto=1", f"password={self._password}"))
            decoder = frames.Decoder()
            got: list = []
            while True:
                data = t.recv()
                if not data:
                    raise ConnectionLost(msg="connection closed during LOGIN")
                got += decoder.feed(data)
                answer = next((f for f in got if isinstance(f, frames.Frame) and f.id == 1
                               and f.type in ("WELCOME", "ERROR")), None)
                if answer is not None:
                    break
            early = got[got.index(answer) + 1:]
            if answer.type == "ERROR":
                raise error_for(answer.kv())
            kv = answer.kv()
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        with self._cond:
            self._transport = t
            self.session = kv.get("session")
            self.role = kv.get("role")
            try:
                self.ping_s = max(1.0, float(kv.get("ping", "30")))
            except ValueError:
                self.ping_s = 30.0
            self._connected = True
            self._connected_at = self._last_rx = self._last_tx = time.monotonic()
            self._last_item = None
            self._cond.notify_all()
        log.debug("logged in as %s (session %s, ping %s s)", self.user, self.session, self.ping_s)
        return decoder, early

    def _run(self, decoder, early) -> None:
        """The reader thread: read, dispatch, reconnect, until closed."""
        failures = 0
        while True:
            for item in early:
                self._dispatch(item)
            self._read(decoder)
            held = time.monotonic() - self._connected_at
            self._on_lost()
            if self._closed or not self.reconnect:
                break
            failures = 0 if held >= 30 else failures + 1
            hint = None
            while not self._closed:
                delay = _jitter(min(self.backoff_max, self.backoff_base * 2 ** max(0, failures - 1)))
                if hint is not None:
                    delay = max(delay, hint + _jitter(self.backoff_base))
                if self._stop.wait(delay):
                    break
                try:
                    decoder, early = self._connect_once(self.timeout)
                except IotdError as e:
                    log.info("reconnect refused: %s", e)
                    hint = e.retry
                    failures += 1
                    continue
                except (OSError, ValueError) as e:
                    log.info("reconnect failed: %s", e)
                    hint = None
                    failures += 1
                    continue
                if self._closed:  # close() ran while we were logging in
                    self._on_lost()
                    break
                self.reconnects += 1
                self._restore()
                break
            if self._closed:
                break
        with self._lock:
            subs = list(self._subs)
            self._subs.clear()
            self._connected = False
            self._cond.notify_all()
        for s in subs:
            s.closed = True
            s._end()

    def _read(self, decoder) -> None:
        t = self._transport
        while True:
            try:
                data = t.recv()
            except (OSError, ssl.SSLError) as e:
                log.debug("read: %s", e)
                return
            if not data:
                return
            self._last_rx = time.monotonic()
            for item in decoder.feed(data):
                self._dispatch(item)

    def _on_lost(self) -> None:
        with self._cond:
            t, self._transport = self._transport, None
            self._connected = False
            pending, self._pending = self._pending, {}
            self._cond.notify_all()
        if t is not None:
            t.close()
        for p in pending.values():
            self._finish(p, None, ConnectionLost(msg="connection lost before the answer", device=p.device))

    def _restore(self) -> None:
        """After a reconnect: SUBSCRIBE and LEASE again (answers handled as they come)."""
        with self._lock:  # a subscribe() still waiting for its first answer is not repeated
            subs = [s for s in self._subs if s._established]
            leases = list(self._leases)
        for s in subs:
            s.sub_id = None
            def done(f, err, s=s):
                if isinstance(err, ConnectionLost):
                    return  # the next reconnect tries again
                if err is not None:
                    s.error = err
                    log.warning("re-subscribing %s refused: %s", s.params, err)
                else:
                    s.sub_id, s.error = f.kv().get("sub"), None
                    if s.closed and s.sub_id:  # closed while this answer was on its way
                        self._request_async(SERVER, "UNSUBSCRIBE", [f"sub={s.sub_id}"], None)
            self._request_async(SERVER, "SUBSCRIBE", s._args(), done)
        for ls in leases:
            def done(f, err, ls=ls):
                if isinstance(err, ConnectionLost):
                    return
                if err is not None:
                    ls.error = err
                    log.warning("re-leasing %s/%s refused: %s", ls.device, ls.event, err)
                else:
                    ls._granted(f)
            self._request_async(SERVER, "LEASE", ls._args(), done)

    def _renew_async(self, ls: Lease) -> None:
        def done(f, err):
            if isinstance(err, ConnectionLost):
                return
            if err is not None:
                ls.error = err
                log.warning("renewing the lease of %s/%s refused: %s", ls.device, ls.event, err)
            elif not ls.released:
                ls._granted(f)
                ls.renewals += 1
        with ls._lock:
            if not ls.released:
                self._request_async(SERVER, "LEASE", ls._args(), done)

    def _keepalive(self) -> None:
        while not self._stop.wait(min(1.0, self.ping_s / 4) if not self._leases else 0.25):
            if not self._connected:
                continue
            now = time.monotonic()
            t = self._transport
            if t is None:
                continue
            if now - self._last_rx > 2 * self.ping_s + 5:
                log.info("no frame from the server for %.0f s: reconnecting", now - self._last_rx)
                t.shutdown()
                continue
            with self._lock:
                due = [ls for ls in self._leases if ls.renew and not ls.released and now >= ls._next]
            for ls in due:
                ls._next = now + max(0.5, (ls.ttl or ls.requested or 1) / 3)
                self._renew_async(ls)
            if now - max(self._last_tx, self._last_rx) >= self.ping_s:
                try:
                    self._write(frames.encode(self.user, SERVER, "PING", self._alloc_id()))
                except OSError:
                    t.shutdown()

    # ---- frames ---------------------------------------------------------------------------

    def _alloc_id(self) -> int:
        with self._lock:
            while True:
                fid = self._next_id
                self._next_id = fid + 1 if fid < frames.MAX_ID else 1
                if fid not in self._pending:
                    return fid

    def _write(self, data: bytes) -> None:
        t = self._transport
        if t is None:
            raise ConnectionLost(msg="not connected")
        t.send(data)
        self._last_tx = time.monotonic()

    def _request_async(self, to: str, typ: str, args, callback) -> None:
        """Send a request without waiting; callback(frame, error) runs on the reader thread
        when the answer comes (or with ConnectionLost when the connection drops first)."""
        fid = self._alloc_id()
        data = frames.encode(self.user, to, typ, fid, *args)
        p = _Pending(to, callback)
        with self._lock:
            self._pending[fid] = p
        try:
            self._write(data)
        except (OSError, IotdError):
            with self._lock:
                self._pending.pop(fid, None)

    def _request(self, to: str, typ: str, args, timeout: float | None,
                 holder: list | None = None) -> frames.Frame:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        fid = self._alloc_id()
        data = frames.encode(self.user, to, typ, fid, *args)  # refuses bad fields first
        if not self.wait_connected(timeout):
            raise ConnectionLost(msg="client closed" if self._closed else
                                 f"not connected within {timeout:g} s", device=to)
        p = _Pending(to)
        if holder is not None:
            holder.append(p)
        with self._lock:
            if not self._connected:
                raise ConnectionLost(msg="not connected", device=to)
            self._pending[fid] = p
        try:
            self._write(data)
        except OSError as e:
            with self._lock:
                self._pending.pop(fid, None)
            raise ConnectionLost(msg=f"send failed: {e}", device=to) from e
        except IotdError:
            with self._lock:
                self._pending.pop(fid, None)
            raise
        if not p.done.wait(max(0.0, deadline - time.monotonic())):
            with self._lock:
                self._pending.pop(fid, None)  # a late answer is dropped
            if not p.done.is_set():  # (else the answer came just now)
                raise RequestTimeout(msg=f"no answer within {timeout:g} s (client)", device=to)
        if p.error is not None:
            raise p.error
        return p.frame

    def _request_rows(self, args, timeout: float | None):
        """A QUERY: its OK frame and the ROW frames that came before it."""
        timeout = self.timeout if timeout is None else timeout
        holder: list[_Pending] = []
        f = self._request(SERVER, "QUERY", args, timeout, holder)
        return f, holder[0].rows if holder else []

    def _finish(self, p: _Pending, f, err) -> None:
        p.frame, p.error = f, err
        p.done.set()
        if p.callback is not None:
            try:
                p.callback(f, err)
            except Exception:  # a callback's bug must not stop the reader
                log.exception("callback")

    def _dispatch(self, f) -> None:
        if isinstance(f, frames.FrameError):
            log.warning("malformed frame from the server ignored: %s", f)
            return
        typ = f.type
        if typ in ("OK", "ERROR"):
            with self._lock:
                p = self._pending.pop(f.id, None)
            if p is None:
                log.debug("answer %s %d to no waiting request (late or unknown)", typ, f.id)
                return
            if typ == "OK":
                self._finish(p, f, None)
            else:
                self._finish(p, None, error_for(f.kv(), p.device if p.device != SERVER else None))
        elif typ == "PING":
            try:
                self._write(frames.encode(self.user, f.frm, "PONG", f.id))
            except (OSError, IotdError, ValueError):
                pass
        elif typ == "PONG":
            pass
        elif typ == "ROW":
            with self._lock:
                p = self._pending.get(f.id)
            if p is not None:
                p.rows.append(f)
        elif typ in ("EVENT", "ALARM", "NOTICE", "PRESENCE"):
            self._deliver(f)
        elif typ == "BYE":
            log.info("server said BYE %s", " ".join(f.args))
            t = self._transport
            if t is not None:
                t.shutdown()
        else:
            log.debug("ignored %s frame from %s", typ, f.frm)

    def _deliver(self, f: frames.Frame) -> None:
        item = parse_item(f)
        if item is None:
            return
        with self._lock:
            subs = list(self._subs)
        if isinstance(item, Notice):
            self.dropped += item.dropped
            self._last_item = None
            for s in subs:
                s._put(item)
            return
        # iotd sends an item once per matching subscription of the connection, the copies
        # back to back; the frames do not say which subscription. Deliver it once to every
        # subscription whose filter matches it (as far as the client can tell).
        raw = f.encode()
        if raw == self._last_item:
            return
        self._last_item = raw
        for s in subs:
            if s.matches(item):
                s._put(item)
