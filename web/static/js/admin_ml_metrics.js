// Admin → ML Metrics (GET /api/admin/ml-metrics): current model version, offline metrics of the
// hybrid recommender vs. its baselines, history per version (chart), online CTR/conversion.
// [Train now] → POST /api/admin/ml-metrics/train, then the job's state is polled until it ends.
import { api, formatTime, h, showError, toast } from "./api.js";
import { badge, fmtDuration, responsiveTable } from "./admin_ui.js";
import { PALETTE, barChart, lineChart } from "./mentor_charts.js";

const errorBox = document.getElementById("ml-error");
const trainBtn = document.getElementById("train-now");
const trainStatus = document.getElementById("train-status");
const metricSel = document.getElementById("history-metric");
const METRICS = ["precision", "recall", "ndcg", "coverage", "diversity"];
const METHOD_ORDER = ["hybrid", "content", "collaborative", "popularity", "random"];
const pct = (v) => (typeof v === "number" ? `${(v * 100).toFixed(1)}%` : "–");
const num = (v) => (typeof v === "number" ? v.toFixed(3) : "–");
let data = null;
let polling = null;

const set = (key, value, sub = "") => {
  document.querySelector(`[data-figure="${key}"]`).textContent = value;
  document.querySelector(`[data-sub="${key}"]`).textContent = sub;
};

function methodsOf(models) {
  const keys = Object.keys(models || {});
  return [...METHOD_ORDER.filter((m) => keys.includes(m)), ...keys.filter((m) => !METHOD_ORDER.includes(m))];
}

function offline(latest, k) {
  const box = document.getElementById("offline-table");
  document.querySelector("[data-k]").textContent = `@${k}`;
  const note = document.querySelector("[data-eval-note]");
  if (!latest) { box.replaceChildren(h("p", { class: "text-sm text-slate-500", text: "No model trained yet. Use Train now." })); note.textContent = ""; return; }
  const m = latest.metrics || {};
  const split = m.split || {};
  note.textContent = [m.source ? `Evaluated on ${m.source} data.` : "", m.note || "",
    split.test_users ? `${split.test_users} test learners, ${split.test_bookings} held-out bookings.` : ""].filter(Boolean).join(" ");
  const models = m.models || {};
  const best = Object.fromEntries(METRICS.map((x) => [x, Math.max(...Object.values(models).map((v) => v?.[x] ?? -1))]));
  const t = responsiveTable([
    { label: "Method", cell: (r) => h("span", { class: "font-medium", text: r.method === "hybrid" ? "hybrid (served)" : r.method }) },
    ...METRICS.map((x) => ({ label: `${x.toUpperCase() === "NDCG" ? "NDCG" : x[0].toUpperCase() + x.slice(1)}@${k}`,
      cell: (r) => h("span", { class: `tabular-nums ${r[x] === best[x] ? "font-semibold text-emerald-700" : ""}`, text: num(r[x]) }) })),
  ], { rowKey: (r) => r.method, testid: "offline-metrics", caption: "Offline metrics by method" });
  t.render(methodsOf(models).map((method) => ({ method, ...models[method] })));
  box.replaceChildren(t.el);
}

function history() {
  const box = document.getElementById("history-chart");
  const s = data?.series;
  if (!s || !s.versions.length) { box.replaceChildren(h("p", { class: "text-sm text-slate-500", text: "No versions yet." })); return; }
  const metric = metricSel.value;
  const series = methodsOf(s.methods).map((m, i) => ({ name: m, values: s.methods[m][metric] || [], color: PALETTE[i % PALETTE.length] }));
  box.replaceChildren(lineChart(s.versions.map((v) => `v${v}`), series, { title: `${metric} per model version`, format: (v) => v.toFixed(2) }));
}

function online(o) {
  const t = o.totals;
  document.getElementById("online-totals").replaceChildren(...[
    ["Impressions", t.impressions], ["Clicks", t.clicks], ["Bookings", t.books], ["CTR", pct(t.ctr)], ["Conversion", pct(t.conversion)],
  ].map(([label, v]) => h("div", { class: "rounded-xl bg-slate-50 p-3" }, h("p", { class: "text-xs text-slate-500", text: label }), h("p", { class: "text-xl font-bold tabular-nums", text: String(v) }))));
  const byv = document.getElementById("online-by-version");
  if (o.by_version.length) {
    const table = responsiveTable([
      { label: "Version", cell: (r) => (r.model_version ? `v${r.model_version}` : "fallback") },
      { label: "Impressions", cell: (r) => r.impressions }, { label: "Clicks", cell: (r) => r.clicks },
      { label: "Bookings", cell: (r) => r.books }, { label: "CTR", cell: (r) => pct(r.ctr) }, { label: "Conversion", cell: (r) => pct(r.conversion) },
    ], { rowKey: (r) => r.model_version ?? "none", caption: "Online metrics by version" });
    table.render(o.by_version);
    byv.replaceChildren(table.el);
  } else {
    byv.replaceChildren(h("p", { class: "text-sm text-slate-500", text: "No recommendation impressions recorded yet: learners' Browse page records them as they see recommendations." }));
  }
  const daily = document.getElementById("online-daily");
  daily.replaceChildren(o.daily.length
    ? barChart(o.daily.map((d) => ({ label: d.date.slice(5), value: (d.ctr || 0) * 100 })), { title: "Daily CTR (%)", format: (v) => `${v.toFixed(0)}%`, color: PALETTE[1] })
    : h("span"));
}

function showJob(job) {
  if (!job) { trainStatus.replaceChildren(); trainBtn.disabled = false; return; }
  const running = job.state === "running" || job.state === "queued";
  trainBtn.disabled = running;
  const when = job.finished_at ? ` ${formatTime(job.finished_at)}` : "";
  trainStatus.replaceChildren(running
    ? h("span", { class: "inline-flex items-center gap-2 text-brand-700" }, h("span", { class: "h-2 w-2 animate-pulse rounded-full bg-brand-600" }), `Training… (started ${formatTime(job.started_at)})`)
    : job.state === "succeeded"
      ? h("span", { class: "text-emerald-700", text: `Last run (${job.trigger}) succeeded: v${job.version}${when}` })
      : h("span", { class: "text-rose-700", text: `Last run failed${when}: ${job.error || "unknown error"}` }));
  return running;
}

async function load() {
  errorBox.hidden = true;
  try {
    data = await api("/api/admin/ml-metrics");
    const l = data.latest;
    set("version", data.current_version ? `v${data.current_version}` : "none", l ? l.trigger : "");
    set("serving", data.serving_version ? `v${data.serving_version}` : "fallback", data.serving_version ? "in memory" : "popularity fallback until a model loads");
    set("trained", l ? formatTime(l.created_at) : "–", l ? `in ${l.training_seconds < 60 ? `${l.training_seconds.toFixed(2)} s` : fmtDuration(l.training_seconds)}` : "");
    set("data", l ? `${l.n_interactions} interactions` : "–", l ? `${l.n_users} learners × ${l.n_items} sessions` : "");
    offline(l, data.k);
    history();
    online(data.online);
    const running = showJob(data.job);
    if (running && !polling) poll();
    return data;
  } catch (err) {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  }
}

function poll() {
  polling = setInterval(async () => {
    try {
      const d = await api("/api/admin/ml-metrics");
      if (!showJob(d.job)) {
        clearInterval(polling);
        polling = null;
        await load();
        if (d.job?.state === "succeeded") toast(`Model v${d.job.version} trained and serving.`, { kind: "success" });
      }
    } catch { /* keep polling; the next tick may succeed */ }
  }, 1500);
}

trainBtn.addEventListener("click", async () => {
  trainBtn.disabled = true;
  try {
    const job = await api("/api/admin/ml-metrics/train", { method: "POST", body: { wait: false } });
    if (showJob(job) && !polling) poll();
    else await load();
  } catch (err) {
    trainBtn.disabled = false;
    showError(err);
  }
});
metricSel.addEventListener("change", history);
load();
