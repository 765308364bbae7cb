// Admin → Sessions: list by status (and title search); [Cancel] with confirmation and a reason
// → POST /api/admin/sessions/{id}/cancel (every booking refunded, learners notified).
// A session's recordings show under its title with play/download (session_recordings.js).
import { api, formatTime, h, money, showError, toast } from "./api.js";
import { confirmDialog, filteredList, statusBadge } from "./admin_ui.js";
import { recordingsBlock, recordingsBySession } from "./session_recordings.js";

const sessions = new Map();
let recordings = new Map(); // session id -> recordings
const { table, load } = filteredList({
  id: "sessions", url: "/api/admin/sessions", form: document.getElementById("session-filters"),
  totalText: (d) => `${d.total} session${d.total === 1 ? "" : "s"}`,
  columns: [
    { label: "Title", cell: (s) => { sessions.set(s.id, s); return h("div", {}, h("a", { href: `/sessions/${s.id}`, class: "font-medium hover:underline", text: s.title }), recordingsBlock(recordings.get(s.id))); } },
    { label: "Mentor", cell: (s) => s.mentor_name },
    { label: "Starts", cell: (s) => h("time", { datetime: s.starts_at, text: formatTime(s.starts_at) }) },
    { label: "Status", cell: (s) => statusBadge(s.status) },
    { label: "Seats", cell: (s) => `${s.seats_taken}/${s.capacity}` },
    { label: "Price", cell: (s) => money(s.price_cents, s.currency) },
    { label: "Actions", cell: (s) => (["draft", "scheduled"].includes(s.status)
      ? h("button", { type: "button", class: "btn-secondary btn-sm text-rose-700", dataset: { cancel: s.id }, text: "Cancel" })
      : h("span", { class: "text-xs text-slate-400", text: "–" })) },
  ],
});

table.el.addEventListener("click", async (ev) => {
  const btn = ev.target.closest("[data-cancel]");
  if (!btn) return;
  const s = sessions.get(Number(btn.dataset.cancel));
  const reason = h("textarea", { id: "admin-cancel-reason", rows: "2", maxlength: "500", class: "input" });
  const extra = h("div", { class: "mt-4" }, h("label", { for: "admin-cancel-reason", class: "label", text: "Reason (sent to the mentor and learners)" }), reason);
  const ok = await confirmDialog({
    title: `Cancel "${s.title}"?`, confirm: "Cancel session", cancel: "Keep session", extra,
    text: `${s.seats_taken} booked learner${s.seats_taken === 1 ? "" : "s"} will be refunded in full and notified, as will ${s.mentor_name}.`,
  });
  if (!ok) return;
  btn.disabled = true;
  try {
    const out = await api(`/api/admin/sessions/${s.id}/cancel`, { method: "POST", body: { reason: reason.value } });
    table.replaceRow({ ...s, status: out.status });
    toast(`Session cancelled; ${out.refunded_bookings} booking${out.refunded_bookings === 1 ? "" : "s"} refunded${out.refunded_cents ? ` (${money(out.refunded_cents, s.currency)})` : ""}.`, { kind: "success" });
  } catch (err) {
    btn.disabled = false;
    showError(err);
  }
});

recordingsBySession().then((r) => { recordings = r; }).finally(load);
