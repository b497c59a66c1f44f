// helpers.mjs - what the Node tests of clients/js and of the console share: the stack that
// tests/browser/stack.sh started (its environment), iotctl, and dev1's own iotsim.
import { spawn, execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";

export const env = process.env;
for (const k of ["WEB_URL", "CTL_SOCK", "DEV1_FILE", "SIM_DIR", "DEVICE_PORT", "NODE_MODULES"])
  if (!env[k]) throw new Error(`${k} is not set: run this through its test_*.sh`);

/** require() from the npm ci the build made (never from the source tree). */
export const requireDep = createRequire(path.join(env.NODE_MODULES, "..", "noop.js"));

export function iotctl(...args) {
  return execFileSync(env.IOTCTL_BIN, ["-s", env.CTL_SOCK, ...args], { encoding: "utf8" });
}

/** dev1's iotsim: 2 events a second; kill() and start() it to flip its presence. */
export class Dev1 {
  start() {
    this.proc = spawn(env.IOTSIM_BIN, ["-c", `127.0.0.1:${env.DEVICE_PORT}`, "--stats-interval", "0",
      "--state-dir", env.SIM_DIR, "-f", env.DEV1_FILE, "--events", "2"], { stdio: "ignore" });
    return this;
  }
  kill() {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      p.once("exit", resolve);
      p.kill("SIGKILL");
    });
  }
}

/** How much slower a sanitized iotd is allowed to be (ThreadSanitizer most). */
export const SLOW = { thread: 3, address: 2 }[env.IOTD_SANITIZE] || 1;

/** Poll fn() until it returns a truthy value, at most ms (times SLOW; every 50 ms). */
export async function until(what, fn, ms = 5000) {
  ms *= SLOW;
  const end = Date.now() + ms;
  for (let i = 0; i < 10000; i++) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Wait until iotctl says the device is online. */
export function online(device) {
  return until(`${device} online`, () => {
    const j = JSON.parse(iotctl("--json", "device", "show", device));
    return j.online === true;
  }, 10000);
}
