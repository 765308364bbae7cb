// Admin → Users: search, role and status filters; [Deactivate]/[Reactivate] with confirmation
// (POST /api/users/{id}/deactivate | reactivate). A deactivated user can no longer sign in.
import { api, currentUser, formatDate, h, showError, toast } from "./api.js";
import { badge, confirmDialog, filteredList } from "./admin_ui.js";

const me = currentUser()?.id;

function actions(u) {
  if (u.id === me) return h("span", { class: "text-xs text-slate-500", text: "You" });
  return u.is_active
    ? h("button", { type: "button", class: "btn-secondary btn-sm text-rose-700", dataset: { deactivate: u.id }, text: "Deactivate" })
    : h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { reactivate: u.id }, text: "Reactivate" });
}

// A mentor's record (GET /api/admin/users → mentor_record): of their concluded sold classes,
// how many they cancelled and how many did not take place because they never came.
const pct = (rate) => (rate == null ? "–" : `${Math.round(rate * 1000) / 10}%`);
function record(u) {
  const r = u.mentor_record;
  if (!r) return h("span", { class: "text-xs text-slate-500", text: "–" });
  return h("div", { class: "text-xs", dataset: { mentorRecord: u.id } },
    h("p", { text: `${r.sold_classes} sold class${r.sold_classes === 1 ? "" : "es"}` }),
    h("p", { text: `Cancelled: ${r.cancelled_by_mentor} (${pct(r.cancel_rate)})` }),
    h("p", { text: `No-show: ${r.mentor_no_shows} (${pct(r.no_show_rate)})` }));
}

const users = new Map();
const { table, load } = filteredList({
  id: "users", url: "/api/admin/users", form: document.getElementById("user-filters"),
  totalText: (d) => `${d.total} user${d.total === 1 ? "" : "s"}`,
  columns: [
    { label: "Name", cell: (u) => { users.set(u.id, u); return h("div", {}, h("p", { class: "font-medium", text: u.full_name }), h("p", { class: "text-xs text-slate-500 break-all", text: u.email })); } },
    { label: "Role", cell: (u) => badge(u.role, u.role === "admin" ? "red" : u.role === "mentor" ? "blue" : "slate") },
    { label: "Status", cell: (u) => (u.is_active ? badge("Active", "green") : badge("Deactivated", "amber")) },
    { label: "E-mail", cell: (u) => (u.email_verified ? "Verified" : "Not verified") },
    { label: "Mentor record", cell: record },
    { label: "Joined", cell: (u) => h("time", { datetime: u.created_at, text: formatDate(u.created_at) }) },
    { label: "Actions", cell: actions },
  ],
});

table.el.addEventListener("click", async (ev) => {
  const btn = ev.target.closest("[data-deactivate], [data-reactivate]");
  if (!btn) return;
  const deactivate = "deactivate" in btn.dataset;
  const u = users.get(Number(btn.dataset.deactivate || btn.dataset.reactivate));
  const ok = await confirmDialog(deactivate
    ? { title: `Deactivate ${u.full_name}?`, text: `${u.email} will be signed out everywhere and can no longer log in. You can reactivate the account later.`, confirm: "Deactivate" }
    : { title: `Reactivate ${u.full_name}?`, text: `${u.email} will be able to log in again.`, confirm: "Reactivate", danger: false });
  if (!ok) return;
  btn.disabled = true;
  try {
    const out = await api(`/api/users/${u.id}/${deactivate ? "deactivate" : "reactivate"}`, { method: "POST" });
    const next = { ...u, is_active: out.is_active };
    table.replaceRow(next);
    toast(`${u.full_name} ${out.is_active ? "reactivated" : "deactivated"}.`, { kind: "success" });
  } catch (err) {
    btn.disabled = false;
    showError(err);
  }
});

load();
