// Small inline-SVG line charts: one series, dashed threshold lines and labelled markers on the time
// axis. Every threshold and marker carries its words in the drawing, so colour never carries meaning alone.

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 220;
const PAD = { left: 52, right: 12, top: 46, bottom: 28 };

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) el.append(child);
  return el;
}

let ids = 0;

function clock(t) {
  return new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function niceNumber(v) {
  if (Number.isInteger(v) && Math.abs(v) < 1000) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return `${(v / 1000).toFixed(a >= 10000 ? 0 : 1)}k`;
  if (a >= 10) return v.toFixed(0);
  if (a >= 1) return v.toFixed(1);
  return v.toPrecision(2);
}

// The top of the value axis: the largest value or threshold, rounded up to 1, 2 or 5 times a power of ten.
function axisTop(values) {
  const top = Math.max(0, ...values.filter((v) => Number.isFinite(v)));
  if (top <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(top));
  for (const m of [1, 2, 5, 10]) if (top <= m * step) return m * step;
  return 10 * step;
}

// opts: { title, unit, start, end, points: [{t, v}], thresholds: [{value, label}],
//         markers: [{t, label, kind}], format: (v) => text }
export function lineChart(opts) {
  const id = `chart-${++ids}`;
  const fmt = opts.format || niceNumber;
  const span = Math.max(1e-9, opts.end - opts.start);
  const top = axisTop([...opts.points.map((p) => p.v), ...opts.thresholds.map((t) => t.value)]) * 1.1;
  const x = (t) => PAD.left + ((t - opts.start) / span) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (Math.max(0, v) / top) * (H - PAD.top - PAD.bottom);
  const inside = (t) => t >= opts.start && t <= opts.end;

  const grid = [0, 0.5, 1].map((f) => {
    const v = (top / 1.1) * f;
    return s("g", { class: "tick" },
      s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "gridline" }),
      s("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v)));
  });
  const times = [0, 0.5, 1].map((f) => {
    const t = opts.start + span * f;
    return s("text", { x: x(t), y: H - 8, "text-anchor": f === 0 ? "start" : f === 1 ? "end" : "middle", class: "time" }, clock(t));
  });
  const pts = opts.points.filter((p) => inside(p.t)).sort((a, b) => a.t - b.t);
  const d = pts.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
  const series = pts.length
    ? [s("path", { class: "series", d, dataset: { points: pts.length } }),
       ...pts.map((p) => s("circle", { class: "dot", cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 2.5 },
         s("title", {}, `${clock(p.t)}: ${fmt(p.v)}${opts.unit ? ` ${opts.unit}` : ""}`)))]
    : [s("text", { x: (PAD.left + W - PAD.right) / 2, y: (PAD.top + H - PAD.bottom) / 2, "text-anchor": "middle", class: "empty" },
        "No datapoints in this window")];
  const thresholds = opts.thresholds.map((t) => s("g", { class: "threshold", dataset: { value: t.value, label: t.label } },
    s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(t.value), y2: y(t.value), "stroke-dasharray": "6 4" }),
    s("text", { x: W - PAD.right - 4, y: y(t.value) - 4, "text-anchor": "end" }, t.label)));
  const markers = opts.markers.filter((m) => inside(m.t)).sort((a, b) => a.t - b.t).map((m, i) => {
    const mx = x(m.t);
    const right = mx > W / 2;
    return s("g", { class: `marker marker-${m.kind}`, dataset: { kind: m.kind, label: m.label } },
      s("line", { x1: mx, x2: mx, y1: 15 + (i % 3) * 13, y2: H - PAD.bottom, "stroke-dasharray": m.kind === "alarm" ? "2 2" : null }),
      s("text", { x: right ? mx - 3 : mx + 3, y: 12 + (i % 3) * 13, "text-anchor": right ? "end" : "start" }, m.label));
  });
  const desc = [`${pts.length} datapoints`, ...opts.thresholds.map((t) => `threshold ${t.label}`),
    ...opts.markers.filter((m) => inside(m.t)).map((m) => `${clock(m.t)} ${m.label}`)].join("; ");
  return s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-t ${id}-d`,
    preserveAspectRatio: "xMidYMid meet" },
  s("title", { id: `${id}-t` }, opts.title),
  s("desc", { id: `${id}-d` }, desc),
  grid,
  s("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom }),
  times, thresholds, series, markers);
}
