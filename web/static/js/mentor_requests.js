// Mentor → Requests: GET /api/requests (sent to me, or open to my domains). [Accept] → one of the
// learner's preferred times and a price → POST /api/requests/{id}/accept: a proposal the learner
// confirms (then the session is scheduled and charged) or declines. [Decline] → POST
// /api/requests/{id}/decline. New ones arrive live (`request.new`).
import { api, clearErrors, formatTime, h, itemsOf, money, showError, toast, userTimeZone } from "./api.js";
import * as realtime from "./realtime.js";
import { confirmDialog, statusBadge } from "./admin_ui.js";

const list = document.getElementById("request-list");
const empty = document.getElementById("list-empty");
const errorBox = document.getElementById("list-error");
const more = document.getElementById("load-more");
const modal = document.getElementById("accept-modal");
const form = document.getElementById("accept-form");
const tz = userTimeZone();
const me = Number(document.body.dataset.userId);
const requests = new Map();
let status = "open";
let page = 1;

modal.querySelectorAll("[data-tz-label]").forEach((el) => { el.textContent = tz; });

function card(r, { fresh = false } = {}) {
  const target = r.mentor ? (r.mentor.id === me ? "Sent to you" : `Sent to ${r.mentor.full_name}`) : `Open to every ${r.domain} mentor`;
  const times = h("ul", { class: "mt-2 flex flex-wrap gap-2", "aria-label": "Preferred times" },
    (r.preferred_times || []).map((t) => h("li", { class: "rounded-full bg-slate-100 px-3 py-1 text-xs text-slate-700" },
      h("time", { datetime: t, text: formatTime(t) }))));
  const actions = h("div", { class: "flex flex-wrap gap-2" });
  if (r.status === "open") {
    actions.append(
      h("button", { type: "button", class: "btn-primary btn-sm", dataset: { accept: r.id }, text: "Accept" }),
      h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { decline: r.id }, text: "Decline" }));
  } else if (r.status === "proposed" && r.proposal) {
    const p = r.proposal;
    actions.append(h("p", { class: "text-sm text-amber-800", "data-proposal": r.id,
      text: `Proposed ${formatTime(p.starts_at)} · ${p.price_cents ? money(p.price_cents) : "free"}; waiting for the learner until ${formatTime(p.expires_at)}` }));
  } else if (r.status === "accepted" && r.session_id) {
    actions.append(h("a", { href: `/sessions/${r.session_id}`, class: "btn-secondary btn-sm", text: "View session" }));
  }
  // A request sent to this mentor lets them write to its learner first (to ask before proposing).
  if (r.mentor?.id === me && r.learner?.id) {
    actions.append(h("a", { href: `/messages/new?to=${r.learner.id}`, class: "btn-secondary btn-sm", text: `Message ${r.learner.full_name}` }));
  }
  return h("li", { id: `request-${r.id}`, class: `card p-4 ${fresh ? "ring-2 ring-brand-400" : ""}`, dataset: { requestId: r.id, status: r.status } },
    h("div", { class: "flex flex-wrap items-start justify-between gap-3" },
      h("div", { class: "min-w-0 flex-1" },
        h("div", { class: "flex flex-wrap items-center gap-2" },
          h("h3", { class: "font-semibold", text: r.topic }), statusBadge(r.status),
          fresh ? h("span", { class: "badge bg-brand-600 text-white", text: "New" }) : null),
        h("p", { class: "mt-1 text-sm text-slate-600", text: `${r.learner.full_name} · ${r.domain} · ${r.duration_min} min · ${target}` }),
        r.skills?.length ? h("p", { class: "mt-1 text-xs text-slate-500", text: `Skills: ${r.skills.join(", ")}` }) : null,
        r.description ? h("p", { class: "mt-2 whitespace-pre-line text-sm text-slate-700", text: r.description }) : null,
        times),
      actions));
}

function paintEmpty() { empty.hidden = list.children.length > 0; }

async function load(reset = true) {
  if (reset) page = 1;
  errorBox.hidden = true;
  try {
    const q = new URLSearchParams({ page: String(page), page_size: "20" });
    if (status) q.set("status", status);
    const data = await api(`/api/requests?${q}`);
    if (reset) { list.replaceChildren(); requests.clear(); }
    for (const r of itemsOf(data)) {
      if (requests.has(r.id)) continue;
      requests.set(r.id, r);
      list.append(card(r));
    }
    paintEmpty();
    more.hidden = requests.size >= (data.total ?? 0);
  } catch (err) {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

document.querySelectorAll("[data-status]").forEach((btn) => btn.addEventListener("click", () => {
  status = btn.dataset.status;
  document.querySelectorAll("[data-status]").forEach((b) => {
    const on = b === btn;
    b.classList.toggle("pill-active", on);
    b.setAttribute("aria-selected", on ? "true" : "false");
  });
  load();
}));

// ------------------------------------------------------------------ accept (time picker)

function openAccept(r) {
  clearErrors(form);
  modal.dataset.requestId = r.id;
  modal.querySelector("[data-accept-text]").textContent = `${r.topic} · ${r.learner.full_name} · ${r.duration_min} min`;
  const box = modal.querySelector("[data-preferred]");
  const future = (r.preferred_times || []).filter((t) => new Date(t) > new Date());
  box.replaceChildren(...future.map((t, i) => h("label", { class: "flex items-center gap-2 text-sm" },
    h("input", { type: "radio", name: "slot", value: t, class: "h-4 w-4", checked: i === 0 ? true : null }),
    h("time", { datetime: t, text: formatTime(t) }))));
  if (!future.length) box.append(h("p", { class: "text-sm text-slate-500", text: "The learner's preferred times have all passed; nothing to propose." }));
  form.elements.title.value = r.topic;
  form.elements.price.value = "";  // chosen, never assumed: a proposal must not go out free by accident
  modal.showModal();
}

modal.querySelector("[data-accept-dismiss]").addEventListener("click", () => modal.close());

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(form);
  const id = Number(modal.dataset.requestId);
  const slot = form.querySelector('input[name="slot"]:checked')?.value;
  if (!slot) { showError({ message: "Pick one of the learner's times.", fields: { starts_at: "Pick a time." } }, { form }); return; }
  const startsAt = slot;  // exactly the learner's time, as the API gave it
  const typed = form.elements.price.value.trim();
  const dollars = Number(typed);
  if (!typed || !Number.isFinite(dollars) || dollars < 0 || dollars > 10000) {
    const msg = typed ? "Price must be between $0 and $10,000." : "Enter a price: 0 for a free session.";
    showError({ message: msg, fields: { price_cents: msg } }, { form });
    return;
  }
  const price = Math.round(dollars * 100);
  const btn = form.querySelector("[data-accept-confirm]");
  btn.disabled = true;
  try {
    const out = await api(`/api/requests/${id}/accept`, {
      method: "POST", body: { starts_at: startsAt, price_cents: price, title: form.elements.title.value.trim() || null },
    });
    modal.close();
    requests.set(id, out.request);
    const old = list.querySelector(`[data-request-id="${id}"]`);
    if (status === "open") old?.remove(); else old?.replaceWith(card(out.request));
    paintEmpty();
    toast(`Proposal sent: ${formatTime(startsAt)}${price ? ` at ${money(price)}` : ""}. The learner confirms or declines.`, {
      kind: "success",
    });
  } catch (err) {
    if (err.code === "request_not_open") load();
    showError(err, { form });
  } finally {
    btn.disabled = false;
  }
});

// ------------------------------------------------------------------ decline, clicks

list.addEventListener("click", async (ev) => {
  const accept = ev.target.closest("[data-accept]");
  if (accept) { openAccept(requests.get(Number(accept.dataset.accept))); return; }
  const decline = ev.target.closest("[data-decline]");
  if (decline) {
    const r = requests.get(Number(decline.dataset.decline));
    const ok = await confirmDialog({
      title: "Decline this request?", confirm: "Decline",
      text: r.mentor ? `${r.learner.full_name} will be told you can't take "${r.topic}".` : `"${r.topic}" stays open for other mentors; it leaves your list.`,
    });
    if (!ok) return;
    try {
      await api(`/api/requests/${r.id}/decline`, { method: "POST" });
      list.querySelector(`[data-request-id="${r.id}"]`)?.remove();
      requests.delete(r.id);
      paintEmpty();
      toast("Request declined.", { kind: "success" });
    } catch (err) { showError(err); }
  }
});

realtime.start();
realtime.on("request.new", (r) => {
  if (!r?.id || requests.has(r.id) || (status && status !== "open")) return;
  requests.set(r.id, r);
  list.prepend(card(r, { fresh: true }));
  paintEmpty();
});

more.addEventListener("click", () => { page += 1; load(false); });
load();
