// Element building and the shared bits every view renders: status badges, times, links.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Status words are AWS's own (CamelCase for CodePipeline/CodeDeploy, UPPER_CASE for CodeBuild);
// the tone groups them so colour and icon agree, and the word itself is always shown.
const TONES = {
  succeeded: ["Succeeded", "SUCCEEDED", "Ready", "running"],
  failed: ["Failed", "FAILED", "FAULT", "TIMED_OUT", "Unknown", "terminated"],
  progress: ["InProgress", "IN_PROGRESS", "Stopping", "Created", "Queued", "Baking", "pending"],
  stopped: ["Stopped", "STOPPED", "Abandoned", "Cancelled", "Superseded", "stopped"],
  skipped: ["Skipped"],
  pending: ["Pending"],
};
const ICONS = { succeeded: "✔", failed: "✖", progress: "↻", stopped: "■", skipped: "↷", pending: "○", none: "–" };

export function tone(status) {
  for (const [name, words] of Object.entries(TONES)) if (words.includes(status)) return name;
  return "none";
}

export function badge(status, label) {
  const t = status ? tone(status) : "none";
  return h("span", { class: `status tone-${t}`, dataset: { status: status || "" } },
    h("span", { class: "icon", "aria-hidden": "true" }, ICONS[t]),
    h("span", { class: "word" }, label || status || "Not run"));
}

export function when(epoch) {
  if (!epoch) return "–";
  const d = new Date(epoch * 1000);
  return h("time", { datetime: d.toISOString(), title: d.toISOString() }, d.toLocaleString());
}

function durationText(seconds) {
  seconds = Math.max(0, seconds);
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - m * 60)} s`;
}

export function duration(start, end) {
  if (!start) return "–";
  if (end) return durationText(end - start);
  // Still running: the span keeps counting between live updates (a long wait sends none).
  return h("span", { class: "running-duration", dataset: { since: String(start) } },
    durationText(Date.now() / 1000 - start));
}

setInterval(() => {
  for (const el of document.querySelectorAll("span.running-duration")) {
    el.textContent = durationText(Date.now() / 1000 - Number(el.dataset.since));
  }
}, 1000);

export function link(hash, text, attrs = {}) {
  return h("a", { href: hash, ...attrs }, text);
}

export const enc = encodeURIComponent;

export function short(id, n = 8) {
  return id ? String(id).slice(0, n) : "";
}

export function section(title, ...children) {
  const id = "s-" + title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), ...children);
}
