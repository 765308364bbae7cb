// Admin → Feedback: every review; [Hide]/[Unhide] → POST /api/admin/feedback/{id}/hide {hidden}.
import { api, formatDate, h, showError, toast } from "./api.js";
import { badge, filteredList } from "./admin_ui.js";

const rows = new Map();
const { table, load } = filteredList({
  id: "feedback", url: "/api/admin/feedback", form: document.getElementById("feedback-filters"),
  totalText: (d) => `${d.total} review${d.total === 1 ? "" : "s"}`,
  columns: [
    { label: "Session", cell: (f) => { rows.set(f.id, f); return h("a", { href: `/sessions/${f.session_id}`, class: "font-medium hover:underline", text: f.session_title }); } },
    { label: "Author", cell: (f) => f.author_name },
    { label: "Rating", cell: (f) => h("span", { class: "text-amber-500", "aria-label": `${f.rating} of 5 stars`, text: "★".repeat(f.rating) + "☆".repeat(5 - f.rating) }) },
    { label: "Comment", class: "md:max-w-md", cell: (f) => h("p", { class: "whitespace-pre-line text-slate-700", text: f.comment || "–" }) },
    { label: "Date", cell: (f) => h("time", { datetime: f.created_at, text: formatDate(f.created_at) }) },
    { label: "Visibility", cell: (f) => (f.hidden ? badge("Hidden", "amber") : badge("Visible", "green")) },
    { label: "Actions", cell: (f) => h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { hide: f.id, hidden: f.hidden ? "true" : "false" }, text: f.hidden ? "Unhide" : "Hide" }) },
  ],
});

table.el.addEventListener("click", async (ev) => {
  const btn = ev.target.closest("[data-hide]");
  if (!btn) return;
  const f = rows.get(Number(btn.dataset.hide));
  btn.disabled = true;
  try {
    const out = await api(`/api/admin/feedback/${f.id}/hide`, { method: "POST", body: { hidden: !f.hidden } });
    rows.set(out.id, out);
    table.replaceRow(out);
    toast(out.hidden ? "Review hidden from the public pages." : "Review visible again.", { kind: "success" });
  } catch (err) {
    btn.disabled = false;
    showError(err);
  }
});

load();
