// iotd.test.mjs - clients/js/iotd.js in Node 20 against a real iotd (tests/browser/stack.sh
// started it, with MariaDB and iotsim devices): login refused then accepted, send and its
// outcomes, subscriptions, a lost socket reconnected and resubscribed, keepalive, and the
// frames of CONTRACT-18 (QUERY pages, ACK of an alarm, presence).
import test from "node:test";
import assert from "node:assert/strict";
import { IotdClient, IotdError, outcomeOf } from "../iotd.js";
import { env, requireDep, iotctl, Dev1, until, online, SLOW } from "./helpers.mjs";

const { WebSocket } = requireDep("ws");
const url = env.WEB_URL.replace(/^http/, "ws") + "/ws";
const dev1 = new Dev1().start();
const clients = [];

function client(extra = {}) {
  const c = new IotdClient({ url, WebSocket, requestTimeoutMs: 10000 * SLOW, backoffMs: [100, 1000], ...extra });
  clients.push(c);
  return c;
}

test.after(async () => {
  for (const c of clients) c.close();
  await dev1.kill();
});

test("a wrong password is refused with auth; the right one is welcomed", async () => {
  await online("dev1");
  const bad = client();
  await assert.rejects(bad.login("alice@acme", "wrong"), (e) => e instanceof IotdError && e.code === "auth");
  assert.equal(bad.state, "idle");
  const c = client();
  const welcome = await c.login("alice@acme", env.ALICE_PW);
  assert.equal(welcome.type, "WELCOME");
  assert.equal(typeof welcome.session, "number");
  assert.ok(welcome.ping > 0);
  assert.equal(c.state, "online");
  c.close();
});

test("send: the answer, and each refusal as an IotdError with the outcome's code", async () => {
  const c = client();
  await c.login("alice@acme", env.ALICE_PW);
  const answer = await c.send("dev1", "read_temp");
  assert.match(answer.args[0], /^-?[0-9]+\.[0-9]$/);
  assert.equal(answer.args[1], "C");
  assert.ok(answer.latencyMs >= 0);
  const echo = await c.send("dev1", "echo", ["hello world"]);
  assert.deepEqual(echo.args, ["hello world"]);
  const denied = await c.send("dev2", "set_pixel", [1, 2, "red"]).catch((e) => e);
  assert.ok(denied instanceof IotdError, String(denied));
  assert.equal(denied.code, "denied");
  assert.equal(outcomeOf(denied.code), "denied");
  const other = await c.send("odev1", "read_temp").catch((e) => e);
  assert.equal(other.code, "denied", "a device of another tenant is denied like a missing one");
  const bad = await c.send("dev1", "set_pixel", ["x", 2, "red"]).catch((e) => e);
  assert.equal(bad.code, "bad_args");
  assert.equal(outcomeOf("device"), "device error");
  assert.deepEqual(await c.ping().then((p) => p.type), "PONG");
  c.close();
});

test("answers are matched by id when several requests are in flight", async () => {
  const c = client();
  await c.login("alice@acme", env.ALICE_PW);
  const texts = Array.from({ length: 8 }, (_, i) => `n${i}`);
  const answers = await Promise.all(texts.map((t) => c.send("dev1", "echo", [t])));
  assert.deepEqual(answers.map((a) => a.args[0]), texts);
  c.close();
});

test("a request without an answer in time rejects with timeout", async () => {
  const c = client();
  await c.login("alice@acme", env.ALICE_PW);
  c.ws._socket.pause(); // the answer waits in the kernel, unread
  await assert.rejects(c.send("dev1", "echo", ["late"], 300), (e) => e.code === "timeout");
  c.ws._socket.resume();
  assert.deepEqual((await c.send("dev1", "echo", ["again"])).args, ["again"], "the late answer was dropped");
  c.close();
});

test("a subscription gets live events, and gets them again after the socket is lost", async () => {
  const c = client();
  await c.login("alice@acme", env.ALICE_PW);
  const seen = [];
  await c.subscribe({ device: "dev1" }, (item) => seen.push(item));
  await until("an event of dev1", () => seen.some((i) => i.type === "EVENT" && i.from === "dev1"), 8000);
  const ev = seen.find((i) => i.type === "EVENT");
  assert.equal(ev.args[0], "temperature");
  assert.ok(Number.isFinite(Number(ev.value)));
  const states = [];
  c.addEventListener("state", (e) => states.push(e.detail));
  c.ws._socket.destroy(); // the network goes away under the client
  await until("reconnected", () => c.state === "online" && states.includes("reconnecting"), 10000);
  const before = seen.length;
  await until("events after the reconnect", () => seen.length > before, 8000);
  c.close();
});

test("BYE from iotd (user kick) ends the session without reconnecting", async () => {
  const c = client();
  await c.login("vic@acme", env.VIC_PW);
  const ended = new Promise((resolve) => c.addEventListener("ended", (e) => resolve(e.detail)));
  iotctl("user", "kick", "vic@acme");
  assert.equal(await ended, "kicked");
  assert.equal(c.state, "ended");
});

test("a viewer is refused when it sends", async () => {
  const c = client();
  await c.login("vic@acme", env.VIC_PW);
  const e = await c.send("dev1", "read_temp").catch((x) => x);
  assert.equal(e.code, "denied");
  c.close();
});

// ---- the frames of CONTRACT-18 (the query branch) ----

test("QUERY devices: the devices alice may see, page by page", async () => {
  const c = client();
  await c.login("alice@acme", env.ALICE_PW);
  const rows = await c.queryAll("devices", {}, { limit: 1 }); // one row a page: 3 pages
  assert.deepEqual(rows.map((r) => r.device), ["dev1", "dev2", "dev3"]);
  const d1 = rows[0];
  assert.equal(d1.dtype, "thermo");
  assert.equal(d1.name, "Room one");
  assert.equal(d1.online, "1");
  assert.match(d1.groups, /lab/);
  const cat = await c.queryAll("catalogue", { device: "dev1" });
  const readTemp = cat.find((r) => r.kind === "command" && r.name === "read_temp");
  assert.equal(readTemp.allowed, "1");
  const pixel = cat.find((r) => r.name === "set_pixel");
  assert.equal(pixel.spec, "x:int y:int color:str");
  assert.deepEqual(pixel.args ?? [], []); // nothing positional: every part is key=value
  const hist = await c.queryAll("history", { device: "dev1", event: "temperature" });
  assert.ok(hist.length > 0, "dev1's events are in its history");
  assert.equal(hist[0].args[0], "temperature");
  const cmds = await c.queryAll("commands", { device: "dev1" });
  assert.ok(cmds.some((r) => r.message === "read_temp" && r.outcome === "ok"));
  const bob = client();
  await bob.login("bob@other", env.BOB_PW);
  assert.deepEqual((await bob.queryAll("devices")).map((r) => r.device), ["odev1"]);
  c.close();
  bob.close();
});

test("presence: dev1 going away and coming back is seen within seconds", async () => {
  const c = client();
  await c.login("alice@acme", env.ALICE_PW);
  const seen = [];
  await c.subscribe({ presence: 1, alarms: "only" }, (i) => seen.push(i));
  await dev1.kill();
  await until("dev1 offline", () => seen.some((i) => i.type === "PRESENCE" && i.device === "dev1" && i.online === "0"));
  dev1.start();
  await until("dev1 online", () => seen.some((i) => i.type === "PRESENCE" && i.device === "dev1" && i.online === "1"), 8000);
  c.close();
});

test("ACK of an alarm by an operator; a viewer may not", async () => {
  const c = client();
  await c.login("alice@acme", env.ALICE_PW);
  const open = await until("dev3's alarm", async () =>
    (await c.queryAll("alarms", { device: "dev3", state: "all" })).find((r) => r.name === "temperature"), 8000);
  const vic = client();
  await vic.login("vic@acme", env.VIC_PW);
  await assert.rejects(vic.ack(open.alarm), (e) => e.code === "denied");
  if (open.state === "raised") await c.ack(open.alarm);
  const after = (await c.queryAll("alarms", { device: "dev3", state: "all" })).find((r) => r.alarm === open.alarm);
  assert.equal(after.state, "acknowledged");
  assert.equal(after.acked_by, "alice@acme");
  c.close();
  vic.close();
});
