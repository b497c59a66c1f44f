// chart.js - a small live line chart on a canvas: one numeric field over time, with its axes.
// Colours come from the page's CSS (custom properties), so it follows light and dark; the
// canvas is redrawn at the screen's pixel ratio when its box changes size. Points outside the
// window [now - rangeMs, now] are dropped as time moves on.

const MAX_POINTS = 5000;

export class LineChart {
  constructor(canvas, { label = "", rangeMs = 5 * 60 * 1000 } = {}) {
    this.canvas = canvas;
    this.label = label;
    this.rangeMs = rangeMs;
    this.points = []; // [t ms, value], oldest first
    this.pending = false;
    canvas.setAttribute("role", "img");
    this.describe();
    if (typeof ResizeObserver !== "undefined") {
      this.resizer = new ResizeObserver(() => this.draw());
      this.resizer.observe(canvas);
    }
  }

  setRange(rangeMs) {
    this.rangeMs = rangeMs;
    this.schedule();
  }

  /** Replace the points (history, oldest first). */
  setPoints(points) {
    this.points = points.filter((p) => Number.isFinite(p[1])).slice(-MAX_POINTS);
    this.schedule();
  }

  add(t, value) {
    if (!Number.isFinite(value)) return;
    const pts = this.points;
    // Live items come in order; a late one is put in its place.
    let i = pts.length;
    while (i > 0 && pts[i - 1][0] > t) i--;
    pts.splice(i, 0, [t, value]);
    if (pts.length > MAX_POINTS) pts.shift();
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  describe() {
    const last = this.points[this.points.length - 1];
    this.canvas.setAttribute(
      "aria-label",
      last ? `${this.label}: ${this.points.length} points, latest ${last[1]}` : `${this.label}: no data yet`,
    );
  }

  draw() {
    const c = this.canvas;
    const css = getComputedStyle(c);
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * ratio));
    const hgt = Math.max(1, Math.round(c.clientHeight * ratio));
    if (c.width !== w || c.height !== hgt) {
      c.width = w;
      c.height = hgt;
    }
    const g = c.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    const W = c.clientWidth;
    const H = c.clientHeight;
    g.clearRect(0, 0, W, H);
    const fg = css.getPropertyValue("--fg").trim() || "#222";
    const muted = css.getPropertyValue("--muted").trim() || "#777";
    const line = css.getPropertyValue("--accent").trim() || "#06c";
    const grid = css.getPropertyValue("--grid").trim() || "#ddd";
    const font = `12px ${css.fontFamily || "sans-serif"}`;
    g.font = font;

    const t1 = Date.now();
    const t0 = t1 - this.rangeMs;
    const pts = this.points.filter((p) => p[0] >= t0);
    this.describe();
    const left = 48;
    const right = 8;
    const top = 8;
    const bottom = 22;
    const pw = Math.max(10, W - left - right);
    const ph = Math.max(10, H - top - bottom);

    let lo = Infinity;
    let hi = -Infinity;
    for (const [, v] of pts) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    if (!pts.length) {
      lo = 0;
      hi = 1;
    }
    if (hi === lo) {
      hi += 0.5;
      lo -= 0.5;
    }
    const pad = (hi - lo) * 0.08;
    lo -= pad;
    hi += pad;
    const x = (t) => left + ((t - t0) / (t1 - t0)) * pw;
    const y = (v) => top + (1 - (v - lo) / (hi - lo)) * ph;

    // Grid and y labels: about 4 round steps.
    g.strokeStyle = grid;
    g.fillStyle = muted;
    g.lineWidth = 1;
    g.textAlign = "right";
    g.textBaseline = "middle";
    const step = niceStep((hi - lo) / 4);
    for (let v = Math.ceil(lo / step) * step, n = 0; v <= hi && n < 20; v += step, n++) {
      const yy = Math.round(y(v)) + 0.5;
      g.beginPath();
      g.moveTo(left, yy);
      g.lineTo(left + pw, yy);
      g.stroke();
      g.fillText(formatNumber(v, step), left - 6, yy);
    }
    // x labels: the start, the middle and now.
    g.textAlign = "center";
    g.textBaseline = "top";
    for (const f of [0, 0.5, 1]) {
      const t = t0 + f * (t1 - t0);
      const label = this.rangeMs > 86400000
        ? new Date(t).toLocaleDateString()
        : new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      g.textAlign = f === 0 ? "left" : f === 1 ? "right" : "center";
      g.fillText(label, left + f * pw, top + ph + 6);
    }
    g.strokeStyle = muted;
    g.strokeRect(left + 0.5, top + 0.5, pw, ph);

    if (!pts.length) {
      g.fillStyle = muted;
      g.textAlign = "center";
      g.textBaseline = "middle";
      g.fillText("no data in this range yet", left + pw / 2, top + ph / 2);
      return;
    }
    g.strokeStyle = line;
    g.lineWidth = 2;
    g.lineJoin = "round";
    g.beginPath();
    pts.forEach(([t, v], i) => (i ? g.lineTo(x(t), y(v)) : g.moveTo(x(t), y(v))));
    g.stroke();
    g.fillStyle = line;
    const [lt, lv] = pts[pts.length - 1];
    g.beginPath();
    g.arc(x(lt), y(lv), 3, 0, 2 * Math.PI);
    g.fill();
    g.fillStyle = fg;
    g.textAlign = "right";
    g.textBaseline = "top";
    g.fillText(String(lv), left + pw - 4, top + 4);
  }

  destroy() {
    this.resizer?.disconnect();
  }
}

function niceStep(raw) {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

function formatNumber(v, step) {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  return v.toFixed(Math.min(decimals, 6));
}
