// console.test.mjs - the console (the build's web/) in real headless Chromium, Debian's
// /usr/bin/chromium driven by playwright-core (never a downloaded browser), against the real
// stack of stack.sh. The checks of issue 18 "Tests", in the order a person would meet them;
// first load bytes and time to interactive are measured and printed; screenshots at phone
// and desktop size are written to $IOTD_TEST_OUTPUT.
import test from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { env, requireDep, iotctl, Dev1, until, online } from "../../clients/js/test/helpers.mjs";

const { chromium } = requireDep("playwright-core");
const URL = env.WEB_URL;
const OUT = env.IOTD_TEST_OUTPUT;
const dev1 = new Dev1().start();
let browser;
const problems = []; // uncaught errors and CSP refusals, on every page of every test
// The longest any single expectation waits (a sanitized iotd is slower, ThreadSanitizer most).
const T = { thread: 30000, address: 20000 }[env.IOTD_SANITIZE] || 10000;

test.before(async () => {
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    // playwright-core gives every launch a fresh, temporary --user-data-dir of its own (it
    // refuses one in args), and each newContext() below is a separate cookie jar.
  });
  await online("dev1");
});

test.after(async () => {
  await browser?.close();
  await dev1.kill();
});

async function newPage(viewport = { width: 1280, height: 800 }, colorScheme = "light") {
  const context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  page.on("pageerror", (e) => {
    console.log(`page error: ${e.message}`);
    problems.push(e.message);
  });
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    console.log(`console error: ${m.text()}`);
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
  });
  return page;
}

async function login(page, user, password) {
  await page.goto(URL);
  await page.waitForSelector("html[data-ready=login]", { timeout: T });
  await page.fill("#login-user", user);
  await page.fill("#login-password", password);
  await page.click("#login-submit");
  await page.waitForSelector("html[data-ready=app]", { timeout: T });
}

const row = (id) => `#device-list li[data-device="${id}"]`;
let alice; // alice's page, from the login on

test("first load: size and time to interactive", async () => {
  const page = await newPage();
  const sizes = [];
  page.on("requestfinished", async (req) => {
    const s = await req.sizes().catch(() => null);
    if (s) sizes.push({ url: req.url(), bytes: s.responseBodySize + s.responseHeadersSize });
  });
  await page.goto(URL);
  await page.waitForSelector("html[data-ready=login]", { timeout: T });
  const tti = await page.evaluate(() => Number(document.documentElement.dataset.readyAt));
  await page.waitForLoadState("networkidle");
  const total = sizes.reduce((a, s) => a + s.bytes, 0);
  console.log(`first load: ${total} bytes transferred in ${sizes.length} requests (compressed), ` +
    `interactive after ${tti.toFixed(0)} ms`);
  for (const s of sizes) console.log(`  ${s.bytes} ${s.url}`);
  assert.ok(total > 0 && total <= 200 * 1024, `first load ${total} bytes > 200 KB`);
  assert.ok(sizes.some((s) => s.url.endsWith("/lib/iotd.js")), "the page loads the client module");
  await page.screenshot({ path: path.join(OUT, "login-1280x800.png") });
  await page.context().close();
  // Again in a new context (empty cache and cookies): the browser's own start-up is done.
  const again = await newPage();
  await again.goto(URL);
  await again.waitForSelector("html[data-ready=login]", { timeout: T });
  const tti2 = await again.evaluate(() => Number(document.documentElement.dataset.readyAt));
  console.log(`first load in a second fresh context: interactive after ${tti2.toFixed(0)} ms`);
  await again.context().close();
});

test("a wrong password is refused, then the right one logs in", async () => {
  alice = await newPage();
  await alice.goto(URL);
  await alice.waitForSelector("html[data-ready=login]", { timeout: T });
  await alice.fill("#login-user", "alice@acme");
  await alice.fill("#login-password", "not-the-password");
  await alice.click("#login-submit");
  await alice.waitForFunction(() => /Wrong user or password/.test(document.getElementById("login-error").textContent), null, { timeout: T });
  assert.equal(await alice.isVisible("#top"), false, "no app before a good login");
  // The server's rate limit may ask for a pause after a failure: retry within bounds.
  let logged = false;
  for (let i = 0; i < 10 && !logged; i++) {
    await alice.fill("#login-user", "alice@acme");
    await alice.fill("#login-password", env.ALICE_PW);
    await alice.click("#login-submit");
    logged = await alice.waitForSelector("html[data-ready=app]", { timeout: T / 2 }).then(() => true, () => false);
  }
  assert.ok(logged, "the right password logs in");
  assert.equal(await alice.textContent("#who"), "alice@acme");
});

test("the device list shows alice's devices online, and flips dev1 when it goes and comes back", async () => {
  for (const d of ["dev1", "dev2", "dev3"])
    await alice.waitForSelector(`${row(d)}[data-online="1"]`, { timeout: T });
  assert.equal(await alice.locator(row("odev1")).count(), 0, "no device of another tenant");
  assert.match(await alice.textContent(row("dev1")), /Room one/);
  await alice.screenshot({ path: path.join(OUT, "devices-1280x800.png"), fullPage: true });
  // search and group filter
  await alice.fill("#device-search", "room");
  await until("search keeps dev1 only", async () => (await alice.locator("#device-list li.device").count()) === 1);
  await alice.fill("#device-search", "");
  await alice.selectOption("#device-group", "lab");
  await until("group lab: dev1 and dev3", async () => (await alice.locator("#device-list li.device").count()) === 2);
  await alice.selectOption("#device-group", "");

  let t0 = Date.now();
  await dev1.kill();
  await alice.waitForSelector(`${row("dev1")}[data-online="0"]`, { timeout: T });
  console.log(`dev1 shown offline ${Date.now() - t0} ms after its iotsim was killed`);
  t0 = Date.now();
  dev1.start();
  await alice.waitForSelector(`${row("dev1")}[data-online="1"]`, { timeout: T });
  console.log(`dev1 shown online ${Date.now() - t0} ms after its iotsim was started`);
});

test("read_temp on the device page shows the value, ok and the latency", async () => {
  await alice.click(`${row("dev1")} a`);
  const form = 'form[data-command="read_temp"]';
  await alice.waitForSelector(form, { timeout: T });
  await alice.click(`${form} button[type=submit]`);
  await alice.waitForSelector(`${form} output[data-outcome="ok"]`, { timeout: T });
  const text = await alice.textContent(`${form} output`);
  assert.match(text, /ok\s+-?\d+\.\d C\s+[\d.]+ ms/);
});

test("a form refuses a non-integer before sending anything", async () => {
  const form = 'form[data-command="set_pixel"]';
  const sent = [];
  // Every frame the page sends from now on is recorded.
  await alice.evaluate(() => {
    window.__sent = [];
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      window.__sent.push(String(data));
      return send.call(this, data);
    };
  });
  await alice.fill(`${form} [name=x]`, "1.5");
  await alice.fill(`${form} [name=y]`, "2");
  await alice.fill(`${form} [name=color]`, "red");
  await alice.click(`${form} button[type=submit]`);
  await alice.waitForSelector(`${form} output[data-outcome="invalid"]`, { timeout: T });
  assert.match(await alice.textContent(`${form} [data-field="x"]`), /whole number/);
  assert.equal(await alice.getAttribute(`${form} [name=x]`, "aria-invalid"), "true");
  sent.push(...(await alice.evaluate(() => window.__sent)));
  assert.ok(!sent.some((f) => f.includes("set_pixel")), `nothing was sent: ${sent}`);
});

test("a command the access map denies shows denied", async () => {
  iotctl("access", "revoke", env.RULE_SET_PIXEL, "--tenant", "acme"); // after the page was built
  const form = 'form[data-command="set_pixel"]';
  await alice.fill(`${form} [name=x]`, "1");
  await alice.click(`${form} button[type=submit]`);
  await alice.waitForSelector(`${form} output[data-outcome="denied"]`, { timeout: T });
  assert.match(await alice.textContent(`${form} output`), /denied/);
});

test("live events arrive and the chart draws", async () => {
  await alice.waitForSelector("#view-device ol.events li.event", { timeout: T });
  const canvas = 'canvas.chart[data-event="temperature"][data-field="value"]';
  await alice.waitForSelector(canvas, { timeout: T });
  // Pixels of the line's colour (the --accent of the page), not only the axes and grid.
  const linePixels = () => alice.evaluate((sel) => {
    const c = document.querySelector(sel);
    const probe = document.createElement("canvas").getContext("2d");
    probe.fillStyle = getComputedStyle(c).getPropertyValue("--accent").trim();
    probe.fillRect(0, 0, 1, 1);
    const [r, g, b] = probe.getImageData(0, 0, 1, 1).data;
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < px.length; i += 4)
      if (px[i + 3] > 200 && Math.abs(px[i] - r) < 8 && Math.abs(px[i + 1] - g) < 8 && Math.abs(px[i + 2] - b) < 8) n++;
    return n > 20 ? n : 0;
  }, canvas);
  const drawn = await until("the chart's line", linePixels, 10000);
  console.log(`the chart has ${drawn} pixels of its line`);
  // Another time range: the stored history of the last hour is drawn.
  await alice.selectOption("#range", String(3600e3));
  await until("the chart's line over an hour", linePixels, 10000);
  // A long range is read as windows of it: the points of the last minutes are there too.
  await alice.selectOption("#range", String(86400e3));
  const label = await until("the chart's points over a day", async () => {
    const l = await alice.getAttribute(canvas, "aria-label");
    return /: [1-9][0-9]* points/.test(l) && l;
  }, 10000);
  console.log(`over a day: ${label}`);
  await alice.selectOption("#range", String(5 * 60e3));
  await alice.screenshot({ path: path.join(OUT, "device-1280x800.png"), fullPage: true });
  await alice.setViewportSize({ width: 360, height: 740 });
  await alice.screenshot({ path: path.join(OUT, "device-360x740.png"), fullPage: true });
  const overflow = await alice.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than a 360 px phone`);
  await alice.goto(`${URL}/#/devices`);
  await alice.waitForSelector(row("dev1"), { timeout: T });
  await alice.screenshot({ path: path.join(OUT, "devices-360x740.png"), fullPage: true });
  await alice.setViewportSize({ width: 1280, height: 800 });
});

test("an alarm raised by iotsim appears; alice acknowledges it and sees her name", async () => {
  await alice.click('#top nav a[href="#/alarms"]');
  const alarm = '#alarm-list li.alarm[data-device="dev3"]';
  await alice.waitForSelector(alarm, { timeout: T });
  assert.match(await alice.textContent(alarm), /major/);
  await alice.click(`${alarm} button.ack`);
  await alice.waitForSelector(`${alarm}[data-state="acknowledged"]`, { timeout: T });
  assert.match(await alice.textContent(alarm), /acknowledged by alice@acme/);
  await alice.screenshot({ path: path.join(OUT, "alarms-1280x800.png"), fullPage: true });
});

test("my recent commands list read_temp", async () => {
  await alice.click('#top nav a[href="#/commands"]');
  await alice.waitForSelector('#command-list li[data-outcome="ok"][data-message="read_temp"]', { timeout: T });
});

test("a reload keeps the session; logout ends it", async () => {
  await alice.reload(); // on #/commands: the same view comes back, logged in by the cookie
  await alice.waitForSelector("html[data-ready=app]", { timeout: T });
  await alice.waitForSelector('#command-list li[data-message="read_temp"]', { timeout: T });
  assert.equal(await alice.textContent("#who"), "alice@acme");
  await alice.click("#logout");
  await alice.waitForSelector("html[data-ready=login]", { timeout: T });
  await alice.reload();
  await alice.waitForSelector("html[data-ready=login]", { timeout: T });
  assert.equal(await alice.isVisible("#login-form"), true);
  await alice.context().close();
});

test("the socket drops: reconnecting is shown and the page resumes without a reload", async () => {
  const page = await newPage();
  await login(page, "alice@acme", env.ALICE_PW);
  await page.waitForSelector(row("dev1"), { timeout: T });
  const t0 = Date.now();
  await page.evaluate(() => {
    window.__states = [];
    window.iotd.addEventListener("state", (e) => window.__states.push(e.detail));
    window.__banner = [];
    new MutationObserver(() => window.__banner.push(!document.getElementById("banner").hidden))
      .observe(document.getElementById("banner"), { attributes: true });
    window.iotd.ws.close(); // as a network loss would
  });
  await page.waitForFunction(() => window.__states.join() === "reconnecting,online", null, { timeout: T });
  console.log(`reconnected ${Date.now() - t0} ms after the socket closed`);
  assert.deepEqual(await page.evaluate(() => window.__banner), [true, false], "the banner came and went");
  await page.waitForSelector(`${row("dev1")}[data-online="1"]`, { timeout: T });
  // The page goes on without a reload: a command still works.
  const code = await page.evaluate(() => window.iotd.send("dev1", "read_temp").then(() => "ok", (e) => e.code));
  assert.equal(code, "ok");
  await page.context().close();
});

test("a viewer has no send buttons and is refused if it sends anyway", async () => {
  const page = await newPage();
  await login(page, "vic@acme", env.VIC_PW);
  await page.waitForSelector(row("dev1"), { timeout: T });
  await page.click(`${row("dev1")} a`);
  await page.waitForSelector("#view-device .forms .note", { timeout: T });
  assert.equal(await page.locator("#view-device form.command button").count(), 0);
  const code = await page.evaluate(() => window.iotd.send("dev1", "read_temp").then(() => "ok", (e) => e.code));
  assert.equal(code, "denied");
  await page.click('#top nav a[href="#/alarms"]');
  await page.waitForSelector("#alarm-list li", { timeout: T });
  assert.equal(await page.locator("#alarm-list button.ack").count(), 0, "no ack button for a viewer");
  await page.context().close();
});

test("a user of another tenant sees none of it (on a phone, in the dark)", async () => {
  const page = await newPage({ width: 360, height: 740 }, "dark");
  await login(page, "bob@other", env.BOB_PW);
  await page.waitForSelector(row("odev1"), { timeout: T });
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, "rgb(17, 21, 26)", "the dark scheme follows the system");
  await page.screenshot({ path: path.join(OUT, "devices-dark-360x740.png"), fullPage: true });
  for (const d of ["dev1", "dev2", "dev3"]) assert.equal(await page.locator(row(d)).count(), 0);
  const code = await page.evaluate(() => window.iotd.send("dev1", "read_temp").then(() => "ok", (e) => e.code));
  assert.equal(code, "denied");
  await page.goto(`${URL}/#/alarms`);
  await page.waitForSelector("#alarm-list li", { timeout: T });
  assert.equal(await page.locator('#alarm-list li[data-device="dev3"]').count(), 0);
  await page.context().close();
});

test("iotctl user kick ends the session, and a reload asks for the password", async () => {
  const page = await newPage();
  await login(page, "alice@acme", env.ALICE_PW);
  iotctl("user", "kick", "alice@acme");
  await page.waitForSelector("html[data-ready=login]", { timeout: T });
  assert.match(await page.textContent("#login-error"), /ended/);
  await page.reload();
  await page.waitForSelector("html[data-ready=login]", { timeout: T });
  await page.context().close();
});

test("no page had an uncaught error or a Content-Security-Policy refusal", () => {
  assert.deepEqual(problems, []);
});
