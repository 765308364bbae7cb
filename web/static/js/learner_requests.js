// Requests: GET /api/requests; [Cancel] → confirmation → POST /api/requests/{id}/cancel; live status changes.
// A mentor's proposal (price and time) shows with [Confirm and pay] → POST /api/requests/{id}/proposal/confirm
// (booked and charged only now) and [Decline] → POST /api/requests/{id}/proposal/decline (nothing charged).
import { api, formatTime, h, itemsOf, money, showError, toast } from "./api.js";
import { setupRequestForm } from "./request_form.js";

const list = document.getElementById("request-list");
const empty = document.getElementById("list-empty");
const errorBox = document.getElementById("list-error");
const more = document.getElementById("load-more");
const modal = document.getElementById("cancel-modal");
let page = 1;

const STATUS = {
  open: ["Open", "bg-brand-100 text-brand-800"], proposed: ["Proposal to answer", "bg-amber-100 text-amber-800"],
  accepted: ["Accepted", "bg-emerald-100 text-emerald-800"],
  declined: ["Declined", "bg-rose-100 text-rose-800"], cancelled: ["Cancelled", "bg-slate-100 text-slate-700"],
  expired: ["Expired", "bg-slate-100 text-slate-700"],
};

function proposalBox(r) {
  const p = r.proposal;
  if (r.status !== "proposed" || !p) return null;
  const price = p.price_cents ? money(p.price_cents, p.currency) : "Free";
  return h("div", { class: "mt-3 rounded-xl border border-slate-200 bg-amber-50 p-3", "data-testid": "proposal" },
    h("p", { class: "text-sm font-medium text-amber-900", text: `${p.mentor.full_name} proposes "${p.title}"` }),
    h("p", { class: "mt-1 text-sm text-amber-900" },
      h("time", { datetime: p.starts_at, text: formatTime(p.starts_at) }), ` · ${r.duration_min} min · `,
      h("strong", { "data-proposal-price": "", text: price })),
    h("p", { class: "mt-1 text-xs text-amber-800", text: `Nothing is charged until you confirm. Answer by ${formatTime(p.expires_at)}.` }),
    h("div", { class: "mt-3 flex flex-wrap gap-2" },
      h("button", { type: "button", class: "btn-primary btn-sm",
        dataset: { confirmProposal: r.id, price: p.price_cents, startsAt: p.starts_at, mentorId: p.mentor.id },
        text: p.price_cents ? `Confirm and pay ${price}` : "Confirm" }),
      h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { declineProposal: r.id }, text: "Decline" })));
}

function card(r) {
  const [label, cls] = STATUS[r.status] || [r.status, "bg-slate-100 text-slate-700"];
  const times = (r.preferred_times || []).map((t) => formatTime(t)).join(" · ");
  return h("li", { id: `request-${r.id}`, class: "card p-4", dataset: { requestId: r.id, status: r.status } },
    h("div", { class: "flex flex-wrap items-start justify-between gap-3" },
      h("div", { class: "min-w-0" },
        h("p", { class: "font-semibold", text: r.topic }),
        h("p", { class: "text-sm text-slate-600", text: `${r.domain} · ${r.duration_min} min · ${r.mentor ? `to ${r.mentor.full_name}` : "open to all matching mentors"}` }),
        times ? h("p", { class: "mt-1 text-xs text-slate-500", text: `Preferred: ${times}` }) : null,
        r.description ? h("p", { class: "mt-2 text-sm text-slate-700", text: r.description }) : null,
        proposalBox(r)),
      h("div", { class: "flex items-center gap-2" },
        h("span", { class: `badge ${cls}`, text: label }),
        r.status === "accepted" && r.session_id ? h("a", { href: `/sessions/${r.session_id}`, class: "btn-secondary btn-sm", text: "View session" }) : null,
        ["open", "proposed"].includes(r.status) ? h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { cancel: r.id }, text: "Cancel" }) : null)));
}

async function load() {
  try {
    const data = await api(`/api/requests?page=${page}&page_size=20`);
    if (page === 1) list.replaceChildren();
    itemsOf(data).forEach((r) => list.append(card(r)));
    empty.hidden = list.children.length > 0;
    more.hidden = list.children.length >= (data.total ?? 0);
  } catch (err) {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

async function answer(btn, id, verb) {
  btn.disabled = true;
  try {
    // Confirm binds to what this page showed: a proposal changed meanwhile is refused (409
    // proposal_changed) and nothing is charged; the list reloads with the new one.
    const body = verb === "confirm"
      ? { price_cents: Number(btn.dataset.price), starts_at: btn.dataset.startsAt, mentor_id: Number(btn.dataset.mentorId) }
      : undefined;
    const out = await api(`/api/requests/${id}/proposal/${verb}`, { method: "POST", body });
    const r = out.request || out;
    list.querySelector(`li[data-request-id="${id}"]`)?.replaceWith(card(r));
    if (verb === "confirm") {
      toast("Booked: the session is scheduled.", { kind: "success", action: { href: `/sessions/${out.session_id}`, label: "View session" } });
    } else toast("Proposal declined; nothing was charged. Your request is open again.", { kind: "success" });
  } catch (err) {
    btn.disabled = false;
    showError(err);
    if (["proposal_expired", "no_proposal", "proposal_changed"].includes(err.code)) { page = 1; load(); }
  }
}

list.addEventListener("click", (ev) => {
  const confirmBtn = ev.target.closest("[data-confirm-proposal]");
  if (confirmBtn) { answer(confirmBtn, confirmBtn.dataset.confirmProposal, "confirm"); return; }
  const declineBtn = ev.target.closest("[data-decline-proposal]");
  if (declineBtn) { answer(declineBtn, declineBtn.dataset.declineProposal, "decline"); return; }
  const btn = ev.target.closest("[data-cancel]");
  if (!btn) return;
  modal.dataset.requestId = btn.dataset.cancel;
  modal.querySelector("[data-cancel-text]").textContent = btn.closest("li").querySelector("p").textContent;
  modal.querySelector("[data-form-error]").hidden = true;
  modal.showModal();
});
modal.querySelector("[data-cancel-dismiss]").addEventListener("click", () => modal.close());
modal.querySelector("[data-cancel-confirm]").addEventListener("click", async () => {
  const id = modal.dataset.requestId;
  try {
    const r = await api(`/api/requests/${id}/cancel`, { method: "POST" });
    list.querySelector(`li[data-request-id="${id}"]`)?.replaceWith(card(r));
    modal.close();
    toast("Request cancelled.", { kind: "success" });
  } catch (err) {
    showError(err, { box: modal.querySelector("[data-form-error]") });
  }
});

// A reply from a mentor arrives as a notification: refresh the list.
document.addEventListener("pl:notification", (ev) => {
  if (String(ev.detail?.kind || "").startsWith("request.")) { page = 1; load(); }
});
more.addEventListener("click", () => { page += 1; load(); });

// [New Request] opens the form as a modal (the link still works without scripts / in a new tab).
const requestModal = document.getElementById("request-modal");
document.getElementById("new-request").addEventListener("click", (ev) => {
  if (ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  ev.preventDefault();
  document.getElementById("request-done").hidden = true;
  document.getElementById("request-form-wrap").hidden = false;
  requestModal.showModal();
  requestModal.querySelector("#topic").focus();
});
requestModal.querySelectorAll("[data-close-request]").forEach((b) => b.addEventListener("click", () => requestModal.close()));
setupRequestForm(document.getElementById("request-form"), (created) => {
  document.getElementById("request-form-wrap").hidden = true;
  document.getElementById("request-done").hidden = false;
  list.prepend(card(created));
  empty.hidden = true;
});
load();
