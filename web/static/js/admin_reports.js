// Admin → Payments / Feedback: learners' problem reports (GET /api/admin/reports). An open report holds
// its booking's payment; [Refund learner] / [Release to mentor] → POST /api/admin/reports/{id}/resolve.
import { api, formatTime, h, money, showError, toast } from "./api.js";
import { confirmDialog, filteredList, statusBadge } from "./admin_ui.js";

const rows = new Map();
const { table, load } = filteredList({
  id: "reports", url: "/api/admin/reports", form: document.getElementById("reports-filters"),
  totalText: (d) => `${d.total} report${d.total === 1 ? "" : "s"}`,
  columns: [
    { label: "Session", cell: (r) => { rows.set(r.id, r); return h("a", { href: `/sessions/${r.session_id}`, class: "font-medium hover:underline", text: r.session_title }); } },
    { label: "Learner", cell: (r) => `${r.learner_name} (${r.booking_status.replace("_", "-")})` },
    { label: "Mentor", cell: (r) => r.mentor_name },
    { label: "Amount", cell: (r) => money(r.amount_cents, r.currency) },
    { label: "Problem", class: "md:max-w-md", cell: (r) => h("p", { class: "whitespace-pre-line text-slate-700", text: r.reason }) },
    { label: "Reported", cell: (r) => h("time", { datetime: r.created_at, text: formatTime(r.created_at) }) },
    { label: "Status", cell: (r) => statusBadge(r.status) },
    { label: "Actions", cell: (r) => (r.status !== "open" ? (r.resolution_note || "–") : h("div", { class: "flex flex-wrap gap-2" },
      h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { resolve: r.id, action: "refund" }, text: "Refund learner" }),
      h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { resolve: r.id, action: "release" }, text: "Release to mentor" }))) },
  ],
});

table.el.addEventListener("click", async (ev) => {
  const btn = ev.target.closest("[data-resolve]");
  if (!btn) return;
  const r = rows.get(Number(btn.dataset.resolve));
  const refund = btn.dataset.action === "refund";
  const note = h("textarea", { rows: "2", maxlength: "2000", class: "input mt-3", "aria-label": "Note (optional)", placeholder: "Note for both sides (optional)" });
  const ok = await confirmDialog({
    title: refund ? "Refund the learner?" : "Release the payment to the mentor?",
    text: refund ? `${r.learner_name} gets ${money(r.amount_cents, r.currency)} back; ${r.mentor_name} is not paid for this seat.`
      : `${r.mentor_name} is paid for this seat now; ${r.learner_name} is not refunded.`,
    confirm: refund ? "Refund" : "Release", danger: refund, extra: note,
  });
  if (!ok) return;
  btn.disabled = true;
  try {
    const out = await api(`/api/admin/reports/${r.id}/resolve`, { method: "POST", body: { action: btn.dataset.action, note: note.value.trim() } });
    rows.set(out.id, out);
    table.replaceRow(out);
    toast(refund ? "Learner refunded." : "Payment released to the mentor.", { kind: "success" });
  } catch (err) {
    btn.disabled = false;
    showError(err);
    if (err.code === "report_resolved") load();
  }
});

load();
