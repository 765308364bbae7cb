// Small inline-SVG charts (no chart library, nothing from a CDN), shared by the mentor's
// Analytics and the admin's ML Metrics. Each chart is an <svg role="img"> with a text
// alternative: a visually hidden table of the same figures.
import { h } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
export const PALETTE = ["#4f46e5", "#059669", "#d97706", "#e11d48", "#0891b2", "#7c3aed", "#64748b"];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// The chart's figures for screen readers. The box is the sr-only element, not the table: a table
// lays out as wide as its cells whatever its width says, and widened a phone's page sideways.
function srTable(caption, head, rows) {
  return h("div", { class: "sr-only" }, h("table", {}, h("caption", { text: caption }),
    h("thead", {}, h("tr", {}, head.map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((x) => h("td", { text: x })))))));
}

function frame(width, height, pad, max, format, ticks = 4) {
  const g = s("g", { "font-size": 11, fill: "#64748b" });
  for (let i = 0; i <= ticks; i++) {
    const v = (max * i) / ticks;
    const y = height - pad.b - ((height - pad.t - pad.b) * i) / ticks;
    g.append(s("line", { x1: pad.l, x2: width - pad.r, y1: y, y2: y, stroke: "#e2e8f0" }));
    g.append(s("text", { x: pad.l - 6, y: y + 4, "text-anchor": "end" }, format(v)));
  }
  return g;
}

/** Vertical bars: points [{label, value}]. */
export function barChart(points, { title, format = (v) => String(Math.round(v)), color = PALETTE[0], height = 220 } = {}) {
  const width = Math.max(640, points.length * 44 + 60);
  const pad = { t: 12, r: 8, b: 36, l: 48 };
  const max = niceMax(Math.max(0, ...points.map((p) => p.value)));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "h-auto w-full", role: "img", "aria-label": title, preserveAspectRatio: "xMidYMid meet" });
  svg.append(frame(width, height, pad, max, format));
  const bw = (width - pad.l - pad.r) / Math.max(1, points.length);
  const every = Math.ceil(points.length / 8);
  points.forEach((p, i) => {
    const bh = ((height - pad.t - pad.b) * p.value) / max;
    const x = pad.l + i * bw + bw * 0.15;
    const rect = s("rect", { x, y: height - pad.b - bh, width: bw * 0.7, height: Math.max(0, bh), rx: 3, fill: p.color || color });
    rect.append(s("title", {}, `${p.label}: ${format(p.value)}`));
    svg.append(rect);
    if (i % every === 0) {
      svg.append(s("text", { x: x + bw * 0.35, y: height - pad.b + 16, "text-anchor": "middle", "font-size": 11, fill: "#475569" }, p.label));
    }
  });
  return h("figure", { class: "w-full" }, svg, srTable(title, ["", "Value"], points.map((p) => [p.label, format(p.value)])));
}

/** Lines over shared x labels: series [{name, values: [number|null]}]; a legend below. */
export function lineChart(labels, series, { title, format = (v) => v.toFixed(2), height = 240, max = null } = {}) {
  const width = Math.max(720, labels.length * 60 + 80);
  const pad = { t: 12, r: 16, b: 36, l: 52 };
  const all = series.flatMap((x) => x.values).filter((v) => typeof v === "number");
  const top = max ?? niceMax(Math.max(0, ...all));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "h-auto w-full", role: "img", "aria-label": title });
  svg.append(frame(width, height, pad, top, format));
  const xs = (i) => (labels.length <= 1 ? (pad.l + width - pad.r) / 2 : pad.l + ((width - pad.l - pad.r) * i) / (labels.length - 1));
  const ys = (v) => height - pad.b - ((height - pad.t - pad.b) * v) / top;
  labels.forEach((l, i) => svg.append(s("text", { x: xs(i), y: height - pad.b + 16, "text-anchor": "middle", "font-size": 11, fill: "#475569" }, l)));
  series.forEach((ser, k) => {
    const color = ser.color || PALETTE[k % PALETTE.length];
    const pts = ser.values.map((v, i) => (typeof v === "number" ? [xs(i), ys(v)] : null)).filter(Boolean);
    if (pts.length > 1) svg.append(s("polyline", { points: pts.map((p) => p.join(",")).join(" "), fill: "none", stroke: color, "stroke-width": 2.5 }));
    ser.values.forEach((v, i) => {
      if (typeof v !== "number") return;
      const c = s("circle", { cx: xs(i), cy: ys(v), r: 4, fill: color });
      c.append(s("title", {}, `${ser.name} · ${labels[i]}: ${format(v)}`));
      svg.append(c);
    });
  });
  const legend = h("ul", { class: "mt-2 flex flex-wrap gap-x-4 gap-y-1 text-xs text-slate-600", "aria-hidden": "true" },
    series.map((ser, k) => h("li", { class: "inline-flex items-center gap-1.5" },
      h("span", { class: "inline-block h-2.5 w-2.5 rounded-full", style: `background:${ser.color || PALETTE[k % PALETTE.length]}` }), ser.name)));
  return h("figure", { class: "w-full" }, svg, legend,
    srTable(title, ["", ...series.map((x) => x.name)], labels.map((l, i) => [l, ...series.map((x) => (typeof x.values[i] === "number" ? format(x.values[i]) : "–"))])));
}

/** Horizontal proportion bars: items [{label, value}] scaled to the largest (or `total`). */
export function hbars(items, { title, format = (v) => String(v), total = null, color = PALETTE[0] } = {}) {
  const max = total ?? Math.max(1, ...items.map((i) => i.value));
  return h("div", { class: "space-y-2", role: "img", "aria-label": title },
    items.map((i) => h("div", { class: "flex items-center gap-3 text-sm" },
      h("span", { class: "w-24 shrink-0 truncate text-slate-600", text: i.label }),
      h("span", { class: "h-3 flex-1 overflow-hidden rounded-full bg-slate-100" },
        h("span", { class: "block h-full rounded-full", style: `width:${Math.round((100 * i.value) / max)}%;background:${i.color || color}` })),
      h("span", { class: "w-16 shrink-0 text-right font-medium tabular-nums", text: format(i.value) }))),
    srTable(title, ["", "Value"], items.map((i) => [i.label, format(i.value)])));
}
