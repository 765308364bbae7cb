// Mentor → Earnings: GET /api/earnings (total, pending, available, paid out, payouts, ledger entries);
// [Request Payout] → POST /api/earnings/payout {amount_cents, currency}. Sandbox payments are marked.
import { api, clearErrors, formatTime, h, money, showError, toast } from "./api.js";
import { responsiveTable, statusBadge } from "./admin_ui.js";

const form = document.getElementById("payout-form");
const amount = document.getElementById("payout-amount");
const hint = document.getElementById("payout-hint");
const errorBox = document.getElementById("earnings-error");
const currencySel = document.getElementById("currency");
let currency = "USD";
let current = null;

const payouts = responsiveTable([
  { label: "Requested", cell: (p) => h("time", { datetime: p.created_at, text: formatTime(p.created_at) }) },
  { label: "Amount", cell: (p) => h("span", { class: "font-semibold", text: money(p.amount_cents, p.currency) }) },
  { label: "Status", cell: (p) => statusBadge(p.status) },
  { label: "Reference", cell: (p) => h("span", { class: "font-mono text-xs", text: `${p.reference || ""}${p.test_mode ? " (test)" : ""}` }) },
], { testid: "payout-history", caption: "Payout history" });
document.getElementById("payout-table").append(payouts.el);

const KIND = { charge: "Booking", release: "Released", refund: "Refund", payout: "Payout", fee: "Fee" };
const entries = responsiveTable([
  { label: "When", cell: (e) => h("time", { datetime: e.created_at, text: formatTime(e.created_at) }) },
  { label: "Kind", cell: (e) => KIND[e.kind] || e.kind },
  { label: "Account", cell: (e) => (e.account.split(":").pop() || e.account) },
  { label: "Amount", cell: (e) => h("span", { class: e.amount_cents < 0 ? "text-rose-700" : "text-emerald-700", text: `${e.amount_cents < 0 ? "−" : "+"}${money(Math.abs(e.amount_cents), e.currency)}` }) },
  { label: "Session", cell: (e) => (e.session_id ? h("a", { href: `/sessions/${e.session_id}`, class: "text-brand-700 hover:underline", text: `#${e.session_id}` }) : "–") },
], { rowKey: (e) => `${e.journal_id}-${e.account}`, caption: "Recent ledger entries" });
document.getElementById("entries-table").append(entries.el);

function fig(cents) {
  return cents ? money(cents, currency) : new Intl.NumberFormat(undefined, { style: "currency", currency }).format(0);
}

async function load() {
  errorBox.hidden = true;
  try {
    const e = await api(`/api/earnings?currency=${encodeURIComponent(currency)}`);
    current = e;
    currency = e.currency;
    for (const key of ["total_earned_cents", "pending_cents", "available_cents", "paid_out_cents"]) {
      document.querySelector(`[data-figure="${key}"]`).textContent = fig(e[key]);
    }
    document.getElementById("test-mode").hidden = !e.test_mode;
    document.querySelector("[data-currency-label]").textContent = e.currency;
    if ((e.currencies || []).length > 1) {
      currencySel.replaceChildren(...e.currencies.map((c) => new Option(c, c, c === e.currency, c === e.currency)));
      document.getElementById("currency-wrap").hidden = false;
    }
    amount.max = String(e.available_cents / 100);
    if (!amount.value) amount.value = (e.available_cents / 100).toFixed(2);
    hint.textContent = `Available now: ${fig(e.available_cents)}. Minimum payout: ${fig(e.min_payout_cents)}.${e.test_mode ? " Sandbox: no real money moves." : ""}`;
    document.getElementById("payout-submit").disabled = e.available_cents < e.min_payout_cents;
    payouts.render(e.payouts || []);
    document.getElementById("payout-empty").hidden = (e.payouts || []).length > 0;
    entries.render(e.recent_entries || []);
    document.getElementById("entries-empty").hidden = (e.recent_entries || []).length > 0;
  } catch (err) {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  }
}

currencySel.addEventListener("change", () => { currency = currencySel.value; amount.value = ""; load(); });

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(form);
  const cents = Math.round(Number(amount.value || 0) * 100);
  if (!cents || cents < 0) { showError({ message: "Enter an amount to pay out.", fields: { amount_cents: "Enter an amount." } }, { form }); return; }
  const btn = document.getElementById("payout-submit");
  btn.disabled = true;
  try {
    const p = await api("/api/earnings/payout", { method: "POST", body: { amount_cents: cents, currency } });
    toast(`Payout of ${money(p.amount_cents, p.currency)} requested${p.test_mode ? " (test mode)" : ""}.`, { kind: "success" });
    amount.value = "";
    await load();
  } catch (err) {
    showError(err, { form });
    btn.disabled = false;
  }
});

load();
