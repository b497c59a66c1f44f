// console.js - the console's entry module: logging in (password, or the session cookie on a
// reload), the views (#/devices, #/device/<id>, #/alarms, #/commands), and what keeps them
// live. Everything goes through lib/iotd.js (clients/js/iotd.js of the source tree), the same
// client apps use; nothing here talks to the socket directly.
import { IotdClient, IotdError, outcomeOf } from "./lib/iotd.js";
import { parseArgspec, buildArgs, NUMERIC } from "./modules/argspec.js";
import { LineChart } from "./modules/chart.js";
import { h, fill, ago, clock } from "./modules/dom.js";

const $ = (id) => document.getElementById(id);
const SESSION_HINT = "iotd.session"; // a reload tries the cookie only when a login happened

const client = new IotdClient();
// For scripts and tests in the page: the same client the console uses.
window.iotd = client;

const state = {
  devices: new Map(), // id -> ROW of what=devices
  canAct: false, // not a viewer: may send (where allowed) and acknowledge alarms
  view: null, // {name, cleanup()}
  liveAlarms: null,
};

const ROUTES = {
  devices: showDevices,
  device: showDevice,
  alarms: showAlarms,
  commands: showCommands,
};

const RANGES = [
  ["5 min", 5 * 60e3],
  ["1 hour", 3600e3],
  ["6 hours", 6 * 3600e3],
  ["24 hours", 86400e3],
  ["7 days", 7 * 86400e3],
];

// ---- the connection ----

client.addEventListener("state", (e) => {
  const banner = $("banner");
  banner.hidden = e.detail !== "reconnecting";
  document.documentElement.dataset.connection = e.detail;
});

client.addEventListener("ended", (e) => {
  localStorage.removeItem(SESSION_HINT);
  state.liveAlarms = null; // the client forgot its subscriptions with the session
  leaveView();
  const why = {
    logout: "You are logged out.",
    kicked: "Your session was ended by an administrator.",
    password_changed: "Your password was changed: log in again.",
    role_changed: "Your role was changed: log in again.",
    removed: "Your account was removed.",
  };
  showLogin(why[e.detail] || `Your session ended (${e.detail}).`);
});

client.addEventListener("welcome", async () => {
  // After a reconnect too: the device list may have changed while the socket was down.
  await loadDevices();
  route();
});

// ---- logging in ----

function showLogin(message = "") {
  $("top").hidden = true;
  for (const v of document.querySelectorAll("main > section")) v.hidden = v.id !== "view-login";
  $("login-error").textContent = message;
  $("login-password").value = "";
  $("login-submit").disabled = false;
  markReady("login");
  $("login-user").focus();
}

async function onLogin(ev) {
  ev.preventDefault();
  const user = $("login-user").value.trim();
  const password = $("login-password").value;
  const err = $("login-error");
  if (!user.includes("@")) {
    err.textContent = "Give your user as name@tenant.";
    $("login-user").focus();
    return;
  }
  $("login-submit").disabled = true;
  err.textContent = "Logging in…";
  try {
    await client.login(user, password);
    localStorage.setItem(SESSION_HINT, user);
    enterApp(user);
  } catch (error) {
    $("login-submit").disabled = false;
    $("login-password").value = "";
    if (error instanceof IotdError && error.code === "auth")
      err.textContent = `Wrong user or password.${error.retry ? ` Try again in ${error.retry} s.` : ""}`;
    else err.textContent = `Cannot log in: ${error.message}`;
    $("login-password").focus();
  }
}

function enterApp(user) {
  $("who").textContent = user || localStorage.getItem(SESSION_HINT) || "";
  $("top").hidden = false;
  $("view-login").hidden = true;
}

async function start() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", () => client.logout());
  window.addEventListener("hashchange", () => {
    route();
    // A keyboard or screen-reader user starts reading the new view, not the old link.
    $("main").focus({ preventScroll: true });
  });
  const hint = localStorage.getItem(SESSION_HINT);
  if (hint && (await client.resume())) {
    enterApp(hint);
    return; // the welcome event loads and routes
  }
  showLogin();
}

// ---- shared state ----

async function loadDevices() {
  try {
    const rows = await client.queryAll("devices", {}, { limit: 500 });
    state.devices = new Map(rows.map((r) => [r.device, r]));
  } catch (error) {
    state.devicesError = error;
    state.devices = new Map();
  }
  await learnRole();
  await subscribeLive();
}

// WELCOME says the role (iot-protocol(7)); the server holds every request to it anyway. An
// older server that does not: the catalogue of a type does (allowed= of its commands is what
// the role lets this user do in general; a viewer's are all 0).
async function learnRole() {
  if (client.welcome?.role) {
    state.canAct = client.welcome.role !== "viewer";
    return;
  }
  const types = [...new Set([...state.devices.values()].map((d) => d.dtype))];
  state.canAct = false;
  for (const type of types.slice(0, 3)) {
    try {
      const rows = await client.queryAll("catalogue", { type });
      if (rows.some((r) => r.kind === "command" && r.allowed === "1")) {
        state.canAct = true;
        return;
      }
    } catch {
      return;
    }
  }
}

// The whole session's presence and alarm changes, for the device list and the alarm count.
async function subscribeLive() {
  if (state.liveAlarms) return; // kept across reconnects by the client
  const handler = (item) => {
    if (item.type === "PRESENCE") {
      const d = state.devices.get(item.device);
      if (d) {
        d.online = item.online;
        if (item.online === "1") d.since = item.at;
        d.last_seen = item.at;
        updateDeviceRow(d);
      }
      if (state.view?.onPresence) state.view.onPresence(item);
    } else if (item.type === "ALARM") {
      refreshAlarmCount();
      if (state.view?.onAlarm) state.view.onAlarm(item);
    }
  };
  try {
    state.liveAlarms = await client.subscribe({ presence: 1, alarms: "only" }, handler);
  } catch {
    // An iotd without presence: alarm changes still come.
    try {
      state.liveAlarms = await client.subscribe({ alarms: "only" }, handler);
    } catch {}
  }
  refreshAlarmCount();
}

async function refreshAlarmCount() {
  const badge = $("alarm-count");
  try {
    const rows = await client.queryAll("alarms", { state: "open" }, { limit: 500 });
    badge.textContent = rows.length ? String(rows.length) : "";
    badge.hidden = rows.length === 0;
  } catch {
    badge.hidden = true;
  }
}

// ---- routing ----

function leaveView() {
  if (state.view?.cleanup) state.view.cleanup();
  state.view = null;
}

function route() {
  if (client.state !== "online" && client.state !== "reconnecting") return;
  const [, name = "devices", ...rest] = (location.hash || "#/devices").split("/");
  const show = ROUTES[name] || showDevices;
  leaveView();
  for (const v of document.querySelectorAll("main > section")) v.hidden = v.id !== `view-${show === showDevice ? "device" : name in ROUTES ? name : "devices"}`;
  for (const a of document.querySelectorAll("#top nav a"))
    a.toggleAttribute("aria-current", a.getAttribute("href") === `#/${name === "device" ? "devices" : name}`);
  state.view = { name };
  show(state.view, decodeURIComponent(rest.join("/")));
  markReady("app");
}

// For people (focus) and for tests: what the page is ready for, and when it first was.
function markReady(what) {
  const root = document.documentElement;
  root.dataset.ready = what;
  if (!root.dataset.readyAt) root.dataset.readyAt = String(performance.now());
}

function queryError(error, what) {
  return h("p.error", { role: "alert" }, `Cannot list ${what}: ${error.message}`);
}

// ---- devices ----

function deviceRow(d) {
  const online = d.online === "1";
  return h(
    "li.device",
    { dataset: { device: d.device, online: online ? "1" : "0" } },
    h(
      "a.device-link",
      { href: `#/device/${encodeURIComponent(d.device)}` },
      h("span.dot", { "aria-hidden": "true" }),
      h("span.device-name", {}, d.name || d.device),
      h("span.presence", {}, online ? "online" : "offline"),
      h("span.device-sub", {}, h("span.device-id", {}, d.device), d.dtype ? ` · ${d.dtype}` : ""),
      h("span.seen", {}, online ? `since ${ago(d.since)}` : `seen ${ago(d.last_seen)}`),
    ),
  );
}

function updateDeviceRow(d) {
  const old = document.querySelector(`#device-list li[data-device="${CSS.escape(d.device)}"]`);
  if (old) old.replaceWith(deviceRow(d));
  const status = document.querySelector(`#view-device [data-presence="${CSS.escape(d.device)}"]`);
  if (status) {
    status.textContent = d.online === "1" ? "online" : "offline";
    status.dataset.online = d.online;
  }
}

function showDevices(view) {
  const root = $("device-list");
  const search = $("device-search");
  const group = $("device-group");
  const groups = new Set();
  for (const d of state.devices.values()) for (const g of (d.groups || "").split(",")) if (g) groups.add(g);
  const chosen = group.value;
  fill(group, h("option", { value: "" }, "All groups"), [...groups].sort().map((g) => h("option", { value: g }, g)));
  group.value = groups.has(chosen) ? chosen : "";
  const render = () => {
    const text = search.value.trim().toLowerCase();
    const g = group.value;
    const shown = [...state.devices.values()].filter(
      (d) =>
        (!text || d.device.toLowerCase().includes(text) || (d.name || "").toLowerCase().includes(text)) &&
        (!g || (d.groups || "").split(",").includes(g)),
    );
    const online = shown.filter((d) => d.online === "1").length;
    $("device-summary").textContent = `${shown.length} device${shown.length === 1 ? "" : "s"}, ${online} online`;
    if (state.devicesError && !state.devices.size) fill(root, queryError(state.devicesError, "devices"));
    else fill(root, shown.length ? shown.map(deviceRow) : h("li.empty", {}, "No device to show."));
  };
  search.oninput = render;
  group.onchange = render;
  render();
  // "seen 5 s ago" keeps its meaning.
  const timer = setInterval(render, 15000);
  view.cleanup = () => clearInterval(timer);
}

// ---- one device ----

async function showDevice(view, id) {
  const root = $("view-device");
  const d = state.devices.get(id) || { device: id, online: "0" };
  const ranges = h("select", { id: "range" }, RANGES.map(([label, ms]) => h("option", { value: String(ms) }, label)));
  const charts = h("div.charts");
  const events = h("ol.events", { "aria-live": "off" });
  const alarms = h("ul.alarms");
  const recent = h("ol.commands");
  const forms = h("div.forms");
  fill(
    root,
    h("p.back", {}, h("a", { href: "#/devices" }, "← Devices")),
    h(
      "header.device-head",
      {},
      h("h1", {}, d.name || id),
      h("p.meta", {}, h("span.device-id", {}, id), " · ", d.dtype || "", " · ",
        h("span.presence", { dataset: { presence: id, online: d.online } }, d.online === "1" ? "online" : "offline")),
    ),
    h("section.panel", { "aria-labelledby": "h-commands" }, h("h2", { id: "h-commands" }, "Commands"), forms),
    h(
      "section.panel",
      { "aria-labelledby": "h-charts" },
      h("div.panel-head", {}, h("h2", { id: "h-charts" }, "Charts"),
        h("label.range", {}, "Time range ", ranges)),
      charts,
    ),
    h("section.panel", { "aria-labelledby": "h-events" }, h("h2", { id: "h-events" }, "Live events"), events),
    h("section.panel", { "aria-labelledby": "h-dev-alarms" }, h("h2", { id: "h-dev-alarms" }, "Alarms"), alarms),
    h("section.panel", { "aria-labelledby": "h-recent" }, h("h2", { id: "h-recent" }, "My recent commands"), recent),
  );

  let catalogue;
  try {
    catalogue = await client.queryAll("catalogue", { device: id });
  } catch (error) {
    fill(forms, queryError(error, "the catalogue"));
    catalogue = [];
  }
  if (state.view !== view) return;
  const commands = catalogue.filter((r) => r.kind === "command");
  const allowed = commands.filter((r) => r.allowed === "1");
  if (allowed.length) state.canAct = true;
  if (commands.length || !forms.firstChild)
    fill(
      forms,
      allowed.map((c) => commandForm(id, c, () => loadRecent(id, recent))),
      allowed.length ? null : h("p.note", {}, "You may not send commands to this device."),
    );

  // Charts: a canvas for each numeric field of each event the user may read.
  const chartList = [];
  for (const ev of catalogue.filter((r) => r.kind === "event" && r.allowed !== "0")) {
    for (const f of parseArgspec(specOf(ev)).filter((a) => NUMERIC.has(a.kind))) {
      const canvas = h("canvas.chart", { dataset: { event: ev.name, field: f.name } });
      const figure = h("figure.chart-box", {}, h("figcaption", {}, `${ev.name} · ${f.name}`), canvas);
      charts.append(figure);
      chartList.push({ event: ev.name, field: f.name, chart: new LineChart(canvas, { label: `${ev.name} ${f.name}` }) });
    }
  }
  if (!chartList.length) charts.append(h("p.note", {}, "No numeric event to chart."));

  const loadHistory = async () => {
    const rangeMs = Number(ranges.value);
    const since = Date.now() - rangeMs;
    for (const c of chartList) c.chart.setRange(rangeMs);
    for (const name of new Set(chartList.map((c) => c.event))) {
      try {
        const rows = await historyRows(id, name, since, Date.now());
        if (state.view !== view) return;
        for (const c of chartList.filter((x) => x.event === name))
          c.chart.setPoints(rows.map((r) => [Number(r.args[1]), Number(r[c.field])]));
      } catch {}
    }
  };
  ranges.onchange = loadHistory;
  loadHistory();
  const redraw = setInterval(() => chartList.forEach((c) => c.chart.schedule()), 5000);

  // Live events (and this device's alarm changes).
  let sub = null;
  const onItem = (item) => {
    if (item.type === "EVENT") {
      const name = item.args?.[0];
      const fields = Object.entries(item).filter(([k]) => !["type", "from", "id", "args", "to"].includes(k));
      events.prepend(
        h("li.event", { dataset: { event: name } },
          h("time", {}, new Date().toLocaleTimeString()), " ",
          h("strong", {}, name), " ", fields.map(([k, v]) => `${k}=${v}`).join(" ")),
      );
      while (events.children.length > 50) events.lastChild.remove();
      for (const c of chartList) if (c.event === name) c.chart.add(Date.now(), Number(item[c.field]));
    } else if (item.type === "ALARM") {
      loadAlarms(id, alarms);
    }
  };
  client
    .subscribe({ device: id, alarms: 1 }, onItem)
    .then((s) => {
      if (state.view === view) sub = s;
      else s.close();
    })
    .catch((error) => events.append(h("li.error", {}, `No live events: ${error.message}`)));
  loadAlarms(id, alarms);
  loadRecent(id, recent);
  view.cleanup = () => {
    clearInterval(redraw);
    sub?.close();
    chartList.forEach((c) => c.chart.destroy());
  };
}

// A catalogue row's argspec (spec=, iot-protocol(7) QUERIES).
function specOf(row) {
  return typeof row.spec === "string" ? row.spec : "";
}

function commandForm(device, cmd, after) {
  const spec = parseArgspec(specOf(cmd));
  const base = `cmd-${cmd.name}`;
  const inputs = spec.map((a, i) => {
    const input =
      a.kind === "bool"
        ? h("select", { id: `${base}-${a.name}`, name: a.name },
            a.optional ? h("option", { value: "" }, "—") : null,
            h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"))
        : h("input", {
            id: `${base}-${a.name}`,
            name: a.name,
            type: "text",
            inputmode: a.kind === "int" || a.kind === "uint" ? "numeric" : a.kind === "float" ? "decimal" : null,
            autocomplete: "off",
            spellcheck: "false",
            "aria-describedby": `${base}-${a.name}-err`,
            required: !a.optional,
          });
    return h(
      "div.field",
      {},
      h("label", { for: `${base}-${a.name}` }, a.name, h("span.kind", {}, ` ${a.kind}${a.optional ? ", optional" : ""}`)),
      input,
      h("span.field-error", { id: `${base}-${a.name}-err`, dataset: { field: a.name } }),
    );
  });
  const result = h("output.result", { "aria-live": "polite", dataset: { command: cmd.name } });
  const button = h("button", { type: "submit" }, "Send");
  const form = h(
    "form.command",
    { dataset: { command: cmd.name }, novalidate: true },
    h("fieldset", {}, h("legend", {}, cmd.name), inputs, h("div.actions", {}, button), result),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const values = spec.map((a) => form.elements[a.name].value.trim());
    const built = buildArgs(spec, values);
    for (const a of spec) {
      const msg = built.errors?.[a.name] || "";
      form.querySelector(`[data-field="${a.name}"]`).textContent = msg ? `${a.name} ${msg}` : "";
      form.elements[a.name].setAttribute("aria-invalid", msg ? "true" : "false");
    }
    if (built.errors) {
      fill(result, h("span.outcome.outcome-invalid", {}, "not sent"), " fix the fields above");
      result.dataset.outcome = "invalid";
      form.querySelector('[aria-invalid="true"]')?.focus();
      return;
    }
    button.disabled = true;
    result.dataset.outcome = "pending";
    fill(result, "sending…");
    try {
      const answer = await client.send(device, cmd.name, built.args);
      showOutcome(result, "ok", answer.args.join(" "), answer.latencyMs);
    } catch (error) {
      const code = error.code || "error";
      const outcome = code === "disconnected" ? "offline" : outcomeOf(code);
      showOutcome(result, outcome, error.detail || (outcome === "device error" ? code : ""), error.latencyMs);
    } finally {
      button.disabled = false;
      after();
    }
  });
  return form;
}

function showOutcome(el, outcome, text, latencyMs) {
  el.dataset.outcome = outcome;
  fill(
    el,
    h(`span.outcome.outcome-${outcome.replace(" ", "-")}`, {}, outcome),
    text ? h("span.answer", {}, ` ${text}`) : null,
    latencyMs != null ? h("span.latency", {}, ` ${latencyMs < 10 ? latencyMs.toFixed(1) : Math.round(latencyMs)} ms`) : null,
  );
}

async function loadRecent(device, list) {
  try {
    const rows = [];
    for await (const r of client.query("commands", device ? { device } : {}, { limit: 20 })) {
      rows.push(r);
      if (rows.length >= 20) break;
    }
    fill(list, rows.length ? rows.map(commandRow) : h("li.empty", {}, "No command yet."));
  } catch (error) {
    fill(list, h("li.error", {}, `Cannot list commands: ${error.message}`));
  }
}

// The history a chart draws. A short range is read whole (at most 10,000 events); a long
// one, which may hold far more, as 60 windows of the range with their first 40 events each,
// so that the whole range is drawn, not only its oldest part (history comes oldest first).
const HISTORY_WHOLE_MS = 3600e3;
const HISTORY_WINDOWS = 60;

async function historyRows(device, event, since, until) {
  if (until - since <= HISTORY_WHOLE_MS)
    return client.queryAll("history", { device, event, since, until }, { limit: 500, maxPages: 20 });
  const step = Math.ceil((until - since) / HISTORY_WINDOWS);
  const windows = [];
  for (let t = since; t < until; t += step) windows.push([t, Math.min(until, t + step)]);
  const parts = new Array(windows.length);
  let next = 0;
  // Four windows in flight at a time: quick, without a burst of 60 queries.
  const worker = async () => {
    while (next < windows.length) {
      const i = next++;
      const [a, b] = windows[i];
      parts[i] = await client.queryAll("history", { device, event, since: a, until: b }, { limit: 40, maxPages: 1 });
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return parts.flat();
}

function commandRow(r) {
  const outcome = outcomeOf(r.outcome === "error" ? "device" : r.outcome);
  return h(
    "li.command-row",
    { dataset: { outcome: r.outcome, device: r.device, message: r.message } },
    h("time", {}, clock(r.at)), " ",
    h("a", { href: `#/device/${encodeURIComponent(r.device)}` }, r.device), " ",
    h("strong", {}, r.message), " ",
    h(`span.outcome.outcome-${outcome.replace(" ", "-")}`, {}, outcome),
    r.latency_us ? ` ${(Number(r.latency_us) / 1000).toFixed(1)} ms` : "",
    r.code ? ` (${r.code})` : "",
  );
}

// ---- alarms ----

async function loadAlarms(device, list, stateFilter = "all") {
  try {
    const filters = { state: stateFilter };
    if (device) filters.device = device;
    const rows = await client.queryAll("alarms", filters, { limit: 200 });
    fill(list, rows.length ? rows.map((r) => alarmRow(r, list)) : h("li.empty", {}, "No alarm."));
  } catch (error) {
    fill(list, h("li.error", {}, `Cannot list alarms: ${error.message}`));
  }
}

function alarmRow(r, list) {
  const open = r.state !== "cleared";
  const row = h(
    "li.alarm",
    { dataset: { alarm: r.alarm, device: r.device, name: r.name, state: r.state, severity: r.severity || "" } },
    h(`span.severity.sev-${r.severity || "none"}`, {}, r.severity || "—"),
    h("span.alarm-name", {}, h("strong", {}, r.name), " on ", h("a", { href: `#/device/${encodeURIComponent(r.device)}` }, r.device)),
    h(`span.alarm-state.state-${r.state}`, {}, r.state),
    h("span.alarm-time", {}, `raised ${clock(r.raised_at)}`),
    r.value ? h("span.alarm-value", {}, `value ${r.value}`) : null,
    r.msg ? h("span.alarm-msg", {}, r.msg) : null,
    r.acked_by ? h("span.acked-by", {}, `acknowledged by ${r.acked_by} ${ago(r.acked_at)}`) : null,
    r.cleared_at ? h("span.alarm-cleared", {}, `cleared ${clock(r.cleared_at)}`) : null,
  );
  if (open && r.state === "raised" && state.canAct) {
    const button = h("button.ack", { type: "button" }, "Acknowledge");
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await client.ack(r.alarm);
      } catch (error) {
        row.append(h("span.error", { role: "alert" }, ` ${error.message}`));
      }
      refreshAlarmCount();
      if (list.isConnected) {
        const device = list.dataset.device || null;
        await loadAlarms(device, list, list.dataset.state || "all");
      }
    });
    row.append(button);
  }
  return row;
}

function showAlarms(view) {
  const list = $("alarm-list");
  const filter = $("alarm-state");
  list.dataset.state = filter.value;
  delete list.dataset.device;
  const reload = () => {
    list.dataset.state = filter.value;
    loadAlarms(null, list, filter.value);
  };
  filter.onchange = reload;
  reload();
  let timer = null;
  view.onAlarm = () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 200);
  };
  view.cleanup = () => clearTimeout(timer);
}

// ---- my commands ----

function showCommands() {
  loadRecent(null, $("command-list"));
}

start();
