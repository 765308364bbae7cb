// Requests: GET /api/requests; [Cancel] → confirmation → POST /api/requests/{id}/cancel; live status changes.
import { api, formatTime, h, itemsOf, showError, toast } from "./api.js";
import { setupRequestForm } from "./request_form.js";

const list = document.getElementById("request-list");
const empty = document.getElementById("list-empty");
const errorBox = document.getElementById("list-error");
const more = document.getElementById("load-more");
const modal = document.getElementById("cancel-modal");
let page = 1;

const STATUS = {
  open: ["Open", "bg-brand-100 text-brand-800"], accepted: ["Accepted", "bg-emerald-100 text-emerald-800"],
  declined: ["Declined", "bg-rose-100 text-rose-800"], cancelled: ["Cancelled", "bg-slate-100 text-slate-700"],
  expired: ["Expired", "bg-slate-100 text-slate-700"],
};

function card(r) {
  const [label, cls] = STATUS[r.status] || [r.status, "bg-slate-100 text-slate-700"];
  const times = (r.preferred_times || []).map((t) => formatTime(t)).join(" · ");
  return h("li", { class: "card p-4", dataset: { requestId: r.id } },
    h("div", { class: "flex flex-wrap items-start justify-between gap-3" },
      h("div", { class: "min-w-0" },
        h("p", { class: "font-semibold", text: r.topic }),
        h("p", { class: "text-sm text-slate-600", text: `${r.domain} · ${r.duration_min} min · ${r.mentor ? `to ${r.mentor.full_name}` : "open to all matching mentors"}` }),
        times ? h("p", { class: "mt-1 text-xs text-slate-500", text: `Preferred: ${times}` }) : null,
        r.description ? h("p", { class: "mt-2 text-sm text-slate-700", text: r.description }) : null),
      h("div", { class: "flex items-center gap-2" },
        h("span", { class: `badge ${cls}`, text: label }),
        r.status === "accepted" && r.session_id ? h("a", { href: `/sessions/${r.session_id}`, class: "btn-secondary btn-sm", text: "View session" }) : null,
        r.status === "open" ? h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { cancel: r.id }, text: "Cancel" }) : null)));
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

list.addEventListener("click", (ev) => {
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
