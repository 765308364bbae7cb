// Admin → Settings: GET|POST /api/admin/settings (platform fee, refund window, max capacity,
// minimum payout, recording default and retention, registration open, the money rules' earnings
// hold, proposal lifetime and no-show wait) and the audit log.
import { api, clearErrors, formatTime, h, showError, toast } from "./api.js";
import { filteredList } from "./admin_ui.js";

const form = document.getElementById("settings-form");
const NUMBERS = ["platform_fee_percent", "refund_window_hours", "max_capacity", "recording_retention_days",
  "earnings_hold_hours", "proposal_ttl_hours", "no_show_wait_minutes"];
const FLAGS = ["recording_default", "registration_open"];
let current = null;

function fill(s) {
  current = s;
  for (const k of NUMBERS) form.elements[k].value = s[k];
  form.elements.min_payout.value = (s.min_payout_cents / 100).toFixed(2);
  for (const k of FLAGS) form.elements[k].checked = !!s[k];
}

async function load() {
  try {
    fill(await api("/api/admin/settings"));
  } catch (err) {
    showError(err, { form });
  }
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(form);
  const body = {};
  for (const k of NUMBERS) {
    const raw = form.elements[k].value;
    if (raw === "") { showError({ message: "Fill in every setting.", fields: { [k]: "Required." } }, { form }); return; }
    const v = Number(raw);
    if (v !== current?.[k]) body[k] = v;
  }
  const payout = Math.round(Number(form.elements.min_payout.value || 0) * 100);
  if (payout !== current?.min_payout_cents) body.min_payout_cents = payout;
  for (const k of FLAGS) if (form.elements[k].checked !== current?.[k]) body[k] = form.elements[k].checked;
  if (!Object.keys(body).length) { toast("Nothing changed."); return; }
  const btn = form.querySelector('button[type="submit"]');
  btn.disabled = true;
  try {
    fill(await api("/api/admin/settings", { method: "POST", body }));
    toast("Settings saved.", { kind: "success" });
    audit.load();
  } catch (err) {
    showError(err, { form });
  } finally {
    btn.disabled = false;
  }
});

function details(d) {
  const entries = Object.entries(d || {});
  if (!entries.length) return "–";
  return h("ul", { class: "space-y-0.5 text-xs" }, entries.slice(0, 8).map(([k, v]) => h("li", {},
    h("span", { class: "font-medium", text: `${k}: ` }),
    typeof v === "object" && v !== null && "from" in v && "to" in v ? `${JSON.stringify(v.from)} → ${JSON.stringify(v.to)}` : JSON.stringify(v))));
}

const audit = filteredList({
  id: "audit", url: "/api/admin/audit",
  columns: [
    { label: "When", cell: (a) => h("time", { datetime: a.created_at, text: formatTime(a.created_at) }) },
    { label: "Who", cell: (a) => a.actor_email || "system" },
    { label: "Action", cell: (a) => h("span", { class: "font-mono text-xs", text: a.action }) },
    { label: "Target", cell: (a) => h("span", { class: "font-mono text-xs", text: a.target }) },
    { label: "Details", cell: (a) => details(a.details) },
  ],
  totalText: (d) => `${d.total} entr${d.total === 1 ? "y" : "ies"}`,
});

load();
audit.load();
