// dom.js - building elements without HTML strings (nothing a device or a user typed is ever
// parsed as markup) and without style attributes (the Content-Security-Policy has no
// 'unsafe-inline'): classes only.

/** h("li.row", {dataset: {device: "x"}, onclick: f}, child, "text", ...) */
export function h(tag, props = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className += (el.className ? " " : "") + v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** "3 s ago", "12 min ago", or a date, for a time in ms since the epoch. */
export function ago(ms, nowMs = Date.now()) {
  if (!ms) return "never";
  const s = Math.round((nowMs - Number(ms)) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(Number(ms)).toLocaleString();
}

export function clock(ms) {
  return ms ? new Date(Number(ms)).toLocaleString() : "";
}
