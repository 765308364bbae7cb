// Mentor → Analytics: GET /api/mentor/analytics?weeks=N drawn as inline SVG charts
// (followers, enrollments over time, completed sessions, ratings, revenue, talk time).
import { api, h } from "./api.js";
import { fmtDuration } from "./admin_ui.js";
import { PALETTE, barChart, hbars } from "./mentor_charts.js";

const errorBox = document.getElementById("analytics-error");
const weeks = document.getElementById("weeks");
const chart = (name) => document.querySelector(`[data-chart="${name}"]`);
const set = (key, value, sub = "") => {
  document.querySelector(`[data-figure="${key}"]`).textContent = value;
  document.querySelector(`[data-sub="${key}"]`).textContent = sub;
};
const cash = (cents, cur) => new Intl.NumberFormat(undefined, { style: "currency", currency: cur }).format((cents || 0) / 100);
const shortWeek = (iso) => new Date(`${iso}T00:00:00Z`).toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });

async function load() {
  errorBox.hidden = true;
  try {
    const a = await api(`/api/mentor/analytics?weeks=${weeks.value}`);
    const cur = a.revenue.currency || "USD";
    set("followers", String(a.followers), `${a.learners} learner${a.learners === 1 ? "" : "s"} taught`);
    set("enrollments_total", String(a.enrollments_total), "bookings, all time");
    set("completed_sessions", String(a.completed_sessions), `${a.sessions.scheduled || 0} scheduled`);
    set("rating", a.rating.average ? `★ ${Number(a.rating.average).toFixed(2)}` : "–", `${a.rating.count} review${a.rating.count === 1 ? "" : "s"}`);
    set("revenue", cash(a.revenue.total_earned_cents, cur), `${cash(a.revenue.available_cents, cur)} available`);

    const pts = a.enrollments_weekly || [];
    chart("enrollments").replaceChildren(barChart(pts.map((p) => ({ label: shortWeek(p.week), value: p.enrollments })),
      { title: "Enrollments per week" }));
    chart("revenue").replaceChildren(barChart(pts.map((p) => ({ label: shortWeek(p.week), value: p.revenue_cents / 100 })),
      { title: `Revenue per week (${cur})`, color: PALETTE[1], format: (v) => new Intl.NumberFormat(undefined, { style: "currency", currency: cur, maximumFractionDigits: 0 }).format(v) }));
    const dist = a.rating.distribution || {};
    chart("ratings").replaceChildren(a.rating.count
      ? hbars([5, 4, 3, 2, 1].map((n) => ({ label: `${"★".repeat(n)}`, value: Number(dist[n] || dist[String(n)] || 0) })), { title: "Ratings by stars", color: "#f59e0b" })
      : h("p", { class: "text-sm text-slate-500", text: "No reviews yet." }));
    const order = ["draft", "scheduled", "live", "completed", "cancelled"];
    chart("sessions").replaceChildren(hbars(order.map((k, i) => ({ label: k, value: Number(a.sessions[k] || 0), color: PALETTE[i] })), { title: "Sessions by status" }));

    const t = a.talk_time;
    const summary = document.querySelector("[data-talk-summary]");
    if (t.sessions?.length) {
      summary.textContent = `You spoke ${fmtDuration(t.mentor_seconds)}, learners ${fmtDuration(t.learners_seconds)}${t.mentor_share !== null ? ` (you: ${Math.round(t.mentor_share * 100)}% of the talk)` : ""}.`;
      chart("talk").replaceChildren(h("div", { class: "space-y-3" }, t.sessions.slice(0, 12).map((x) => h("div", {},
        h("p", { class: "mb-1 text-sm font-medium" }, h("a", { href: `/sessions/${x.session_id}`, class: "hover:underline", text: x.title })),
        hbars([{ label: "You", value: x.mentor_seconds, color: PALETTE[0] }, { label: "Learners", value: x.learners_seconds, color: PALETTE[1] }],
          { title: `Talk time in ${x.title}`, format: fmtDuration, total: Math.max(1, x.mentor_seconds + x.learners_seconds) })))));
    } else {
      summary.textContent = "Talk time is measured in live rooms; it appears here after your first class.";
      chart("talk").replaceChildren();
    }
    renderConnections(a.connection);
  } catch (err) {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  }
}

/** How learners' connections held up in each class (the SFU's scores). */
function renderConnections(c) {
  const summary = document.querySelector("[data-connection-summary]");
  const list = document.querySelector("[data-connection-list]");
  const rows = c?.sessions || [];
  if (!rows.length) {
    summary.textContent = "Connection quality is measured in live rooms; it appears here after your first class.";
    list.replaceChildren();
    return;
  }
  const troubled = rows.filter((r) => r.poor_learners > 0).length;
  summary.textContent = troubled
    ? `${troubled} of your last ${rows.length} classes had learners on a poor connection for a minute or more.`
    : `Every learner's connection held up in your last ${rows.length} classes.`;
  list.replaceChildren(...rows.slice(0, 12).map((r) => h("li", { class: "flex flex-wrap gap-x-2", dataset: { sessionId: String(r.session_id) } },
    h("a", { href: `/sessions/${r.session_id}`, class: "font-medium hover:underline", text: r.title }),
    h("span", { class: r.poor_learners ? "text-amber-700" : "text-slate-600",
      text: r.poor_learners
        ? `${r.poor_learners} of ${r.learners} learner${r.learners === 1 ? "" : "s"} had a poor connection for ${fmtDuration(r.poor_seconds)}`
        : `all ${r.learners} learner${r.learners === 1 ? "" : "s"} had a good connection` }))));
}

weeks.addEventListener("change", load);
load();
