// iotd.js - a client of iotd's WebSocket (iot-websocket(7)) for browsers and Node >= 20, with
// no dependencies: the web console is built on it, and so can apps and scripts be.
//
//   import { IotdClient } from "./iotd.js";
//   const c = new IotdClient({ url: "ws://127.0.0.1:8080/ws" });   // Node 20: add WebSocket
//   await c.login("alice@demo", "demo-password");
//   const answer = await c.send("thermo-1", "read_temp");           // throws IotdError otherwise
//   for await (const row of c.query("devices")) console.log(row.device, row.online);
//   c.subscribe({ device: "thermo-1", alarms: 1 }, (item) => console.log(item));
//
// One socket at a time. Requests are matched to their answers by id (answers may come in any
// order), each with a deadline. The session is kept with PING every WELCOME's ping seconds;
// a lost socket is opened again after a jittered, growing delay, logged in again (with the
// browser's session cookie, or with the password when the caller let the client keep it) and
// its subscriptions are made again. Events: "state" (detail: connecting, online,
// reconnecting, ended), "welcome", "ended" (detail: reason), "frame" (every frame received).

const MAX_ID = 4294967295;

// The outcomes of iot-protocol(7) a person reads, by the codes that carry them: a code that
// is not one of the relay's own is the device's answer (a "device error").
const RELAY_OUTCOMES = new Set(["ok", "denied", "offline", "timeout", "busy"]);

/** A refused request: code is the ERROR's code (or the client's: "disconnected", "timeout"). */
export class IotdError extends Error {
  constructor(code, msg, frame = null, latencyMs = null) {
    super(msg ? `${code}: ${msg}` : code);
    this.name = "IotdError";
    this.code = code;
    this.detail = msg || "";
    this.retry = frame && typeof frame.retry === "number" ? frame.retry : null;
    this.frame = frame;
    this.latencyMs = latencyMs;
  }
}

/** The outcome word of the project's vocabulary for an answer's code. */
export function outcomeOf(code) {
  if (!code || code === "ok") return "ok";
  return RELAY_OUTCOMES.has(code) ? code : "device error";
}

// Keys iot-websocket(7) cannot make members (they name the frame's own parts): an argument
// with such a key travels in "args" as "key=value" text. A ROW's are moved to row.reserved,
// leaving args positional.
const RESERVED_KEYS = /^(type|id|from|to|args)=/;

function splitReserved(row) {
  if (!Array.isArray(row.args)) return row;
  const positional = [];
  row.reserved = {};
  for (const a of row.args) {
    const m = RESERVED_KEYS.exec(a);
    if (m) row.reserved[m[1]] = a.slice(m[0].length);
    else positional.push(a);
  }
  row.args = positional;
  return row;
}

function now() {
  return typeof performance !== "undefined" ? performance.now() : Date.now();
}

// A subscription's filter as the client applies it to the items of its one connection (the
// server sends an item once however many subscriptions match it).
function itemMatches(filter, item) {
  const alarms = String(filter.alarms ?? "0");
  if (item.type === "PRESENCE") {
    if (String(filter.presence ?? "0") !== "1") return false;
  } else if (item.type === "EVENT") {
    if (alarms === "only") return false;
    if (filter.event && item.args && item.args[0] !== filter.event) return false;
  } else if (item.type === "ALARM") {
    if (alarms === "0") return false;
  } else if (item.type !== "NOTICE") {
    return false;
  }
  if (filter.device && item.type !== "NOTICE" && (item.device || item.from) !== filter.device)
    return false;
  return true;
}

export class IotdClient extends EventTarget {
  /**
   * options: url (default: the page's own /ws), WebSocket (a constructor; default the global
   * one), requestTimeoutMs (30000), resumeWaitMs (how long a cookie login is waited for,
   * 1500), cookie (exchange WELCOME's ticket for the session cookie: default true in a
   * browser), keepPassword (log in again with it after a reconnect: default !cookie),
   * backoffMs [first, max] ([500, 30000]), origin (Node: the Origin header, default the url's
   * http origin; needs a WebSocket constructor that takes options, such as ws's).
   */
  constructor(options = {}) {
    super();
    const inBrowser = typeof document !== "undefined" && typeof location !== "undefined";
    this.inBrowser = inBrowser;
    this.url = options.url || (inBrowser ? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws` : null);
    if (!this.url) throw new TypeError("IotdClient: url is required outside a browser");
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) throw new TypeError("IotdClient: no WebSocket (pass options.WebSocket)");
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30000;
    this.resumeWaitMs = options.resumeWaitMs ?? 1500;
    this.cookie = options.cookie ?? inBrowser;
    this.keepPassword = options.keepPassword ?? !this.cookie;
    this.backoffMs = options.backoffMs || [500, 30000];
    this.origin = options.origin || this.url.replace(/^ws(s?):\/\/([^/]+).*$/, "http$1://$2");
    this.baseUrl = this.url.replace(/^ws(s?):\/\/([^/]+).*$/, "http$1://$2");
    this.fetch = options.fetch || globalThis.fetch?.bind(globalThis);

    this.ws = null;
    this.state = "idle"; // idle, connecting, online, reconnecting, ended
    this.user = null;
    this.welcome = null;
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, reject, timer, started, rows}
    this.subs = new Set(); // {filter, handler, sub}
    this.password = null;
    this.failures = 0;
    this.pingTimer = null;
    this.pongDue = null;
    this.reconnectTimer = null;
    this.closedByUs = false;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  id() {
    const id = this.nextId;
    this.nextId = this.nextId >= MAX_ID ? 1 : this.nextId + 1;
    return id;
  }

  // ---- the socket ----

  // Open a socket; resolves once it is open. Frames go to onFrame.
  open() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        // A browser sets the Origin itself; elsewhere it is given: ws takes origin, Node's
        // own (undici) WebSocket headers.
        ws = this.inBrowser
          ? new this.WebSocket(this.url)
          : new this.WebSocket(this.url, { origin: this.origin, headers: { Origin: this.origin } });
      } catch (error) {
        reject(error);
        return;
      }
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        resolve(ws);
      };
      ws.onmessage = (m) => {
        if (ws !== this.ws) return;
        let frame;
        try {
          frame = JSON.parse(typeof m.data === "string" ? m.data : String(m.data));
        } catch {
          return;
        }
        if (frame && typeof frame === "object") this.onFrame(frame);
      };
      ws.onerror = () => {
        if (!opened) reject(new IotdError("disconnected", "cannot reach iotd"));
      };
      ws.onclose = () => {
        if (!opened) reject(new IotdError("disconnected", "cannot reach iotd"));
        if (ws === this.ws) this.onClose();
      };
    });
  }

  write(frame) {
    if (!this.ws || this.ws.readyState !== 1) throw new IotdError("disconnected", "not connected");
    this.ws.send(JSON.stringify(frame));
  }

  // A request: resolves with the OK frame (ROWs collected in .rows), rejects with IotdError.
  request(frame, timeoutMs = this.requestTimeoutMs) {
    const id = this.id();
    const started = now();
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, started, rows: [], timer: null };
      entry.timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new IotdError("timeout", `no answer within ${timeoutMs} ms`, null, now() - started));
      }, timeoutMs);
      this.pending.set(id, entry);
      try {
        this.write({ ...frame, id });
      } catch (error) {
        clearTimeout(entry.timer);
        this.pending.delete(id);
        reject(error);
      }
    });
  }

  onFrame(frame) {
    this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
    const type = frame.type;
    const entry = frame.id ? this.pending.get(frame.id) : undefined;
    if (type === "ROW" && entry) {
      entry.rows.push(splitReserved(frame));
      return;
    }
    if ((type === "OK" || type === "ERROR" || type === "WELCOME" || type === "PONG") && entry) {
      this.pending.delete(frame.id);
      clearTimeout(entry.timer);
      const latencyMs = now() - entry.started;
      if (type === "ERROR") entry.reject(new IotdError(frame.code || "error", frame.msg, frame, latencyMs));
      else entry.resolve(Object.assign(frame, { rows: entry.rows, latencyMs }));
      return;
    }
    switch (type) {
      case "WELCOME": // a cookie login: the first frame, id 0
        if (this.resumeWaiter) this.resumeWaiter(frame);
        return;
      case "ERROR":
        if (!frame.id && frame.code === "auth" && this.resumeWaiter) this.resumeWaiter(null);
        return;
      case "PONG":
        this.pongDue = null;
        return;
      case "PING":
        try {
          this.write({ type: "PONG", id: frame.id });
        } catch {}
        return;
      case "BYE":
        this.end(frame.reason || "bye");
        return;
      case "EVENT":
      case "ALARM":
      case "PRESENCE":
      case "NOTICE":
        for (const s of this.subs) {
          if (!itemMatches(s.filter, frame)) continue;
          try {
            s.handler(frame);
          } catch (error) {
            // One handler's bug must not keep the item from the others, nor kill the socket.
            console.error("iotd.js: a subscription's handler threw:", error);
          }
        }
        return;
      default:
    }
  }

  onClose() {
    this.ws = null;
    this.stopPing();
    for (const [id, entry] of this.pending) {
      clearTimeout(entry.timer);
      entry.reject(new IotdError("disconnected", "the connection to iotd was lost", null, now() - entry.started));
      this.pending.delete(id);
    }
    if (this.resumeWaiter) this.resumeWaiter(null);
    if (this.state === "online" && !this.closedByUs) this.scheduleReconnect();
  }

  // ---- logging in ----

  // Log in with the session cookie, if the browser has a live one: true when it did.
  async resume() {
    this.closedByUs = false;
    this.setState("connecting");
    let welcome = null;
    try {
      await this.open();
      welcome = await new Promise((resolve) => {
        const timer = setTimeout(() => resolve(null), this.resumeWaitMs);
        this.resumeWaiter = (w) => {
          clearTimeout(timer);
          resolve(w);
        };
      });
    } catch {
      welcome = null;
    } finally {
      this.resumeWaiter = null;
    }
    if (!welcome) {
      this.dropSocket();
      this.setState("idle");
      return false;
    }
    await this.welcomed(welcome);
    return true;
  }

  /** Log in as user@tenant; resolves with WELCOME, rejects with IotdError (code auth...). */
  async login(user, password) {
    this.closedByUs = false;
    this.setState("connecting");
    try {
      await this.open();
      const welcome = await this.request({ type: "LOGIN", user, password }, 20000);
      if (this.keepPassword) this.password = password;
      this.user = user;
      if (this.cookie && welcome.ticket) await this.exchangeTicket(welcome.ticket);
      await this.welcomed(welcome);
      return welcome;
    } catch (error) {
      this.dropSocket();
      this.setState("idle");
      throw error;
    }
  }

  async exchangeTicket(ticket) {
    const r = await this.fetch(`${this.baseUrl}/api/session`, {
      method: "POST",
      headers: { "X-Iotd-Ticket": ticket },
      credentials: "same-origin",
    });
    if (!r.ok) throw new IotdError("auth", `no session cookie (${r.status})`);
  }

  async welcomed(welcome) {
    this.welcome = welcome;
    this.failures = 0;
    if (welcome.user) this.user = welcome.user;
    this.startPing(typeof welcome.ping === "number" ? welcome.ping : 30);
    this.setState("online");
    // Subscriptions of the lost socket are made again on this one, before the listeners of
    // "welcome" (which may subscribe anew) run.
    for (const s of [...this.subs]) {
      try {
        const ok = await this.request({ type: "SUBSCRIBE", ...s.filter });
        s.sub = ok.sub;
      } catch (error) {
        s.sub = null;
        if (s.onError) s.onError(error);
      }
    }
    this.dispatchEvent(new CustomEvent("welcome", { detail: welcome }));
  }

  /** End the session: the socket, the reconnects and (in a browser) the cookie. */
  async logout() {
    this.closedByUs = true;
    this.password = null;
    if (this.cookie && this.fetch) {
      try {
        await this.fetch(`${this.baseUrl}/api/logout`, { method: "POST", credentials: "same-origin" });
      } catch {}
    }
    this.end("logout");
  }

  /** Close without ending the cookie (e.g. a page going away). */
  close() {
    this.closedByUs = true;
    clearTimeout(this.reconnectTimer);
    this.dropSocket();
    this.setState("idle");
  }

  end(reason) {
    this.closedByUs = true;
    clearTimeout(this.reconnectTimer);
    this.dropSocket();
    this.subs.clear();
    this.setState("ended");
    this.dispatchEvent(new CustomEvent("ended", { detail: reason }));
  }

  dropSocket() {
    const ws = this.ws;
    this.stopPing();
    if (ws) {
      this.ws = null;
      try {
        ws.close();
      } catch {}
      this.onCloseRejectOnly();
    }
  }

  onCloseRejectOnly() {
    for (const [id, entry] of this.pending) {
      clearTimeout(entry.timer);
      entry.reject(new IotdError("disconnected", "closed"));
      this.pending.delete(id);
    }
  }

  // ---- keepalive and reconnect ----

  startPing(seconds) {
    this.stopPing();
    const period = Math.max(1, seconds) * 1000;
    this.pingTimer = setInterval(() => {
      if (this.pongDue !== null && now() > this.pongDue) {
        // No PONG for a whole period: the socket is dead even if it does not know it yet.
        const ws = this.ws;
        this.ws = null;
        try {
          ws?.close();
        } catch {}
        this.onClose();
        return;
      }
      try {
        this.write({ type: "PING", id: this.id() });
        if (this.pongDue === null) this.pongDue = now() + period;
      } catch {}
    }, period);
    if (this.pingTimer.unref) this.pingTimer.unref();
  }

  stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.pongDue = null;
  }

  // The next try after a random delay in [0, min(max, first * 2^failures)] ("full jitter"),
  // at least what a busy/auth answer's retry= asked for.
  scheduleReconnect(retrySeconds = 0) {
    this.setState("reconnecting");
    const [first, max] = this.backoffMs;
    const cap = Math.min(max, first * 2 ** Math.min(this.failures, 16));
    const delay = Math.max(retrySeconds * 1000, Math.random() * cap);
    this.failures++;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.reconnect(), delay);
  }

  async reconnect() {
    if (this.closedByUs) return;
    let welcome = null;
    let retry = 0;
    try {
      await this.open();
      if (this.password) {
        welcome = await this.request({ type: "LOGIN", user: this.user, password: this.password }, 20000);
      } else {
        welcome = await new Promise((resolve) => {
          const timer = setTimeout(() => resolve(null), Math.max(this.resumeWaitMs, 3000));
          this.resumeWaiter = (w) => {
            clearTimeout(timer);
            resolve(w);
          };
        });
        this.resumeWaiter = null;
        if (!welcome && this.ws) {
          // The socket is up but nothing logs it in: the session is over.
          this.end("session expired");
          return;
        }
      }
    } catch (error) {
      if (error instanceof IotdError && error.code === "auth" && error.frame && !error.frame.retry) {
        this.end("auth");
        return;
      }
      retry = error?.retry || 0;
      welcome = null;
    }
    if (this.closedByUs) return;
    if (!welcome) {
      this.dropSocket();
      this.scheduleReconnect(retry);
      return;
    }
    await this.welcomed(welcome);
  }

  // ---- what a session does ----

  /**
   * Send an application request to a device. Resolves with {args, latencyMs, frame};
   * rejects with IotdError whose code is the outcome (denied, offline, timeout, busy, or the
   * device's own code).
   */
  async send(device, type, args = [], timeoutMs = this.requestTimeoutMs) {
    const frame = { type, to: device };
    if (args.length) frame.args = args.map((a) => (typeof a === "string" ? a : String(a)));
    const ok = await this.request(frame, timeoutMs);
    return { args: ok.args || [], latencyMs: ok.latencyMs, frame: ok };
  }

  /**
   * QUERY what=... as an async iterator of ROW objects, page after page (limit rows a page)
   * until the server gives no next= cursor.
   */
  async *query(what, filters = {}, { limit = 100, maxPages = 1000 } = {}) {
    let after = null;
    for (let page = 0; page < maxPages; page++) {
      const frame = { type: "QUERY", what, ...filters, limit };
      if (after) frame.after = after;
      const ok = await this.request(frame);
      for (const row of ok.rows) yield row;
      if (!ok.next) return;
      after = ok.next;
    }
  }

  /** Every row of a query, in an array. */
  async queryAll(what, filters = {}, options = {}) {
    const rows = [];
    for await (const row of this.query(what, filters, options)) rows.push(row);
    return rows;
  }

  /**
   * SUBSCRIBE with filter ({device, group, type, event, alarms, presence}); handler gets
   * each EVENT, ALARM, PRESENCE or NOTICE frame that matches. Resolves with a handle whose
   * close() unsubscribes. Made again after every reconnect.
   */
  async subscribe(filter, handler, onError = null) {
    const s = { filter: { ...filter }, handler, onError, sub: null };
    this.subs.add(s);
    if (this.state === "online") {
      try {
        const ok = await this.request({ type: "SUBSCRIBE", ...s.filter });
        s.sub = ok.sub;
      } catch (error) {
        this.subs.delete(s);
        throw error;
      }
    }
    return {
      close: async () => {
        this.subs.delete(s);
        if (s.sub !== null && this.state === "online") {
          try {
            await this.request({ type: "UNSUBSCRIBE", sub: s.sub });
          } catch {}
        }
      },
    };
  }

  /** Acknowledge an alarm (operator or admin). */
  ack(alarm) {
    return this.request({ type: "ACK", alarm: String(alarm) });
  }

  /** A round trip to iotd: resolves with the PONG (its latencyMs). */
  ping() {
    return this.request({ type: "PING" });
  }
}
