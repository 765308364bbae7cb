// Admin → Requests: every learner request, filtered by status (view-only).
import { formatTime, h } from "./api.js";
import { filteredList, statusBadge } from "./admin_ui.js";

filteredList({
  id: "requests", url: "/api/admin/requests", form: document.getElementById("request-filters"),
  totalText: (d) => `${d.total} request${d.total === 1 ? "" : "s"}`,
  columns: [
    { label: "Topic", cell: (r) => h("div", {}, h("p", { class: "font-medium", text: r.topic }), r.description ? h("p", { class: "line-clamp-2 text-xs text-slate-500", text: r.description }) : null) },
    { label: "Learner", cell: (r) => r.learner.full_name },
    { label: "Mentor", cell: (r) => (r.mentor ? r.mentor.full_name : h("span", { class: "text-slate-500", text: `Any ${r.domain} mentor` })) },
    { label: "Domain", cell: (r) => `${r.domain} · ${r.duration_min} min` },
    { label: "Status", cell: (r) => statusBadge(r.status) },
    { label: "Sent", cell: (r) => h("time", { datetime: r.created_at, text: formatTime(r.created_at) }) },
    { label: "Session", cell: (r) => (r.session_id ? h("a", { href: `/sessions/${r.session_id}`, class: "text-brand-700 hover:underline", text: `#${r.session_id}` }) : "–") },
  ],
}).load();
