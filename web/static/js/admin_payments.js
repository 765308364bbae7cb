// Admin → Payments: the transaction log (GET /api/admin/payments): each journal with its
// balanced double-entry legs; sandbox (test-mode) payments are marked.
import { formatTime, h, money } from "./api.js";
import { badge, filteredList } from "./admin_ui.js";

const signed = (cents, cur) => `${cents < 0 ? "−" : "+"}${money(Math.abs(cents), cur).replace("Free", "0.00")}`;

function legs(j) {
  return h("ul", { class: "space-y-0.5 font-mono text-xs" }, j.entries.map((e) => h("li", { class: "flex justify-between gap-4" },
    h("span", { class: "text-slate-600", text: e.account }),
    h("span", { class: e.amount_cents < 0 ? "text-rose-700" : "text-emerald-700", text: signed(e.amount_cents, e.currency) }))));
}

function balanced(j) {
  const sums = {};
  for (const e of j.entries) sums[e.currency] = (sums[e.currency] || 0) + e.amount_cents;
  return Object.values(sums).every((v) => v === 0);
}

const { load } = filteredList({
  id: "payments", url: "/api/admin/payments", form: document.getElementById("payment-filters"),
  totalText: (d) => {
    document.getElementById("payments-test-mode").hidden = d.test_mode === false;
    return `${d.total} journal${d.total === 1 ? "" : "s"}`;
  },
  columns: [
    { label: "Journal", cell: (j) => h("span", { class: "font-medium", text: `#${j.id}` }) },
    { label: "When", cell: (j) => h("time", { datetime: j.created_at, text: formatTime(j.created_at) }) },
    { label: "Kind", cell: (j) => badge(j.kind, j.kind === "refund" ? "amber" : j.kind === "payout" ? "blue" : j.kind === "charge" ? "green" : "slate") },
    { label: "Reference", cell: (j) => h("span", { class: "break-all font-mono text-xs", text: j.reference || "–" }) },
    { label: "Session", cell: (j) => (j.session_id ? h("a", { href: `/sessions/${j.session_id}`, class: "text-brand-700 hover:underline", text: `#${j.session_id}${j.booking_id ? ` · booking #${j.booking_id}` : ""}` }) : "–") },
    { label: "Entries", class: "md:min-w-[18rem]", cell: legs },
    { label: "Balanced", cell: (j) => (balanced(j) ? badge("✓ balanced", "green") : badge("unbalanced", "red")) },
  ],
});
load();
