// Mentor → My Sessions (Draft | Scheduled | Past) from GET /api/mentor/sessions?status=…
// Draft: [Edit] → edit modal, [Publish]. Scheduled: from T–10 min [I'm Ready] → "Waiting for Learner…"
// (live `ready` events show which learners are ready) → [Start Class] → /room/{id}; [Cancel] with
// confirmation (refunds). Past: rating, talk time and the session's recordings (play/download).
// [Create Session] opens the session form modal.
import { api, formatTime, h, itemsOf, money, showError, toast } from "./api.js";
import * as realtime from "./realtime.js";
import { fmtDuration, statusBadge } from "./admin_ui.js";
import { sessionForm } from "./mentor_session_form.js";
import { recordingsBlock, recordingsBySession } from "./session_recordings.js";

const list = document.getElementById("session-list");
const view = list.dataset.view;
const empty = document.getElementById("list-empty");
const errorBox = document.getElementById("list-error");
const more = document.getElementById("load-more");
const modal = document.getElementById("session-modal");
const modalTitle = document.getElementById("session-modal-title");
const cancelModal = document.getElementById("cancel-modal");
const OPENS_BEFORE_MS = 10 * 60 * 1000;
const PAGE = 50;
const state = new Map(); // session id -> {s, el, me, learners: Map(user_id -> {full_name, ready}), opensAt, closesAt}
let page = 1;
let talkBySession = null;
let recordings = null; // session id -> recordings (Past only)

// ------------------------------------------------------------------ the form modal

const editor = sessionForm(document.getElementById("session-form"), {
  onSaved(s, { published, created }) {
    modal.close();
    if (published) {
      toast("Published. Learners can book it now.", { kind: "success", action: { href: "/mentor/sessions?view=scheduled", label: "Scheduled" } });
    } else {
      toast(created ? "Draft saved." : "Changes saved.", { kind: "success" });
    }
    reload();
  },
});

function openEditor(session = null) {
  if (session) {
    editor.fill(session);
    modalTitle.textContent = session.status === "draft" ? "Edit draft" : "Edit session";
  } else {
    editor.reset();
    modalTitle.textContent = "Create Session";
  }
  modal.showModal();
  editor.form.elements.title.focus();
}

document.getElementById("create-session").addEventListener("click", () => openEditor());
modal.querySelector("[data-modal-close]").addEventListener("click", () => modal.close());

// ------------------------------------------------------------------ cards

function meta(s) {
  const booked = s.capacity - (s.seats_left ?? (s.capacity - s.seats_taken));
  return h("p", { class: "mt-1 text-sm text-slate-600" },
    h("time", { datetime: s.starts_at, text: formatTime(s.starts_at) }),
    ` · ${s.duration_min} min · ${s.domain} · ${money(s.price_cents, s.currency)} · `,
    h("span", { dataset: { bookedFor: s.id }, text: `${booked}/${s.capacity} booked` }));
}

function card(s) {
  const li = h("li", { class: "card p-4", dataset: { sessionId: s.id, status: s.status } },
    h("div", { class: "flex flex-wrap items-start justify-between gap-3" },
      h("div", { class: "min-w-0 flex-1" },
        h("div", { class: "flex flex-wrap items-center gap-2" },
          h("a", { href: s.status === "draft" ? `/mentor/sessions/${s.id}` : `/sessions/${s.id}`, class: "font-semibold hover:underline", text: s.title }),
          statusBadge(s.status)),
        meta(s)),
      h("div", { class: "flex flex-wrap items-center gap-2", dataset: { slot: "actions" } })),
    h("div", { dataset: { slot: "detail" } }));
  return li;
}

function draftActions(st) {
  return [
    h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { edit: st.s.id }, text: "Edit" }),
    h("button", { type: "button", class: "btn-primary btn-sm", dataset: { publish: st.s.id }, text: "Publish" }),
  ];
}

function learnerChips(st) {
  if (!st.learners.size) return h("p", { class: "mt-3 text-sm text-slate-500", text: "No learners booked yet." });
  return h("ul", { class: "mt-3 flex flex-wrap gap-2", "aria-label": "Learners' readiness", dataset: { testid: "learner-readiness" } },
    [...st.learners.entries()].map(([id, l]) => h("li", {
      class: `inline-flex items-center gap-1.5 rounded-full px-3 py-1 text-xs font-medium ${l.ready ? "bg-emerald-100 text-emerald-800" : "bg-slate-100 text-slate-600"}`,
      dataset: { learnerId: id, ready: l.ready ? "true" : "false" },
    }, h("span", { class: `h-2 w-2 rounded-full ${l.ready ? "bg-emerald-500" : "bg-slate-400"}`, "aria-hidden": "true" }),
    `${l.full_name || "Learner"}: ${l.ready ? "Ready" : "not ready"}`)));
}

function scheduledActions(st) {
  const s = st.s;
  const now = Date.now();
  const start = new Date(s.starts_at).getTime();
  const end = new Date(s.ends_at).getTime();
  const opens = st.opensAt ?? start - OPENS_BEFORE_MS;
  const out = [];
  const anyReady = [...st.learners.values()].some((l) => l.ready);
  if (s.status === "live") {
    out.push(h("a", { href: `/room/${s.id}`, class: "btn-primary btn-sm", text: "Start Class" }));
  } else if (now >= opens && now <= (st.closesAt ?? end)) {
    if (!st.me) {
      out.push(h("button", { type: "button", class: "btn-primary btn-sm", dataset: { ready: s.id }, text: "I'm Ready" }));
    } else if (anyReady) {
      out.push(h("a", { href: `/room/${s.id}`, class: "btn-primary btn-sm", text: "Start Class" }));
    } else {
      out.push(h("span", { class: "inline-flex items-center gap-2 text-sm font-medium text-brand-700", role: "status" },
        h("span", { class: "h-2 w-2 animate-pulse rounded-full bg-brand-600" }), "Waiting for Learner…"));
    }
  } else if (now < opens) {
    out.push(h("span", { class: "text-xs text-slate-500", text: `[I'm Ready] opens ${formatTime(new Date(opens).toISOString())}` }));
    out.push(h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { edit: s.id }, text: "Edit" }));
  }
  if (s.status === "scheduled") {
    out.push(h("button", { type: "button", class: "btn-ghost btn-sm text-rose-700", dataset: { cancel: s.id }, text: "Cancel" }));
  }
  return out;
}

function pastDetail(st) {
  const s = st.s;
  const talk = talkBySession?.get(s.id);
  const box = h("dl", { class: "mt-3 flex flex-wrap gap-x-6 gap-y-1 text-sm" });
  if (s.status === "cancelled") return box;
  const r = st.rating;
  box.append(h("div", { class: "flex gap-1" }, h("dt", { class: "text-slate-500", text: "Rating:" }),
    h("dd", { class: "font-medium", dataset: { ratingFor: s.id }, text: r ? (r.count ? `★ ${Number(r.average).toFixed(1)} (${r.count} review${r.count === 1 ? "" : "s"})` : "No reviews yet") : "…" })));
  box.append(h("div", { class: "flex gap-1" }, h("dt", { class: "text-slate-500", text: "Talk time:" }),
    h("dd", { class: "font-medium", text: talk ? `you ${fmtDuration(talk.mentor_seconds)} · learners ${fmtDuration(talk.learners_seconds)}` : "not recorded" })));
  const recs = recordingsBlock(recordings?.get(s.id));
  return recs ? h("div", {}, box, recs) : box;
}

function paint(id) {
  const st = state.get(id);
  if (!st) return;
  const actions = st.el.querySelector('[data-slot="actions"]');
  const detail = st.el.querySelector('[data-slot="detail"]');
  if (view === "draft") actions.replaceChildren(...draftActions(st));
  else if (view === "scheduled") {
    actions.replaceChildren(...scheduledActions(st));
    const inWindow = st.s.status === "live" || Date.now() >= (st.opensAt ?? new Date(st.s.starts_at).getTime() - OPENS_BEFORE_MS);
    detail.replaceChildren(inWindow ? learnerChips(st) : h("span"));
  } else {
    actions.replaceChildren();
    detail.replaceChildren(pastDetail(st));
  }
}

// ------------------------------------------------------------------ data

async function fetchStatus(status) {
  const data = await api(`/api/mentor/sessions?status=${status}&page=${page}&page_size=${PAGE}`);
  return { items: itemsOf(data), total: data.total ?? 0 };
}

async function readiness(st) {
  const s = st.s;
  if (Date.now() < new Date(s.starts_at).getTime() - OPENS_BEFORE_MS && s.status !== "live") return;
  try {
    const r = await api(`/api/rooms/${s.id}/ready`);
    st.opensAt = new Date(r.opens_at).getTime();
    st.closesAt = new Date(r.closes_at).getTime();
    st.me = !!r.mentor?.ready;
    st.learners = new Map((r.learners || []).map((l) => [l.user_id, { full_name: l.full_name, ready: !!l.ready }]));
  } catch { /* outside the window: keep defaults */ }
  paint(s.id);
}

async function rating(st) {
  try {
    const r = await api(`/api/sessions/${st.s.id}/reviews?page_size=1`);
    st.rating = r.rating || { average: null, count: 0 };
  } catch {
    st.rating = { average: null, count: 0 };
  }
  paint(st.s.id);
}

async function loadTalk() {
  if (talkBySession) return;
  try {
    const a = await api("/api/mentor/analytics");
    talkBySession = new Map((a.talk_time?.sessions || []).map((t) => [t.session_id, t]));
  } catch {
    talkBySession = new Map();
  }
}

async function load() {
  errorBox.hidden = true;
  try {
    const statuses = view === "draft" ? ["draft"] : view === "scheduled" ? ["live", "scheduled"] : ["completed", "cancelled"];
    const results = await Promise.all(statuses.map(fetchStatus));
    if (view === "past") {
      const [, recs] = await Promise.all([loadTalk(), recordings || recordingsBySession()]);
      recordings = recs;
    }
    let items = results.flatMap((r) => r.items);
    const total = results.reduce((n, r) => n + r.total, 0);
    const asc = view === "scheduled";
    items.sort((a, b) => (asc ? 1 : -1) * (new Date(a.starts_at) - new Date(b.starts_at)));
    if (page === 1) { list.replaceChildren(); state.clear(); }
    for (const s of items) {
      if (state.has(s.id)) continue;
      const el = card(s);
      const st = { s, el, me: false, learners: new Map(), rating: null };
      state.set(s.id, st);
      list.append(el);
      paint(s.id);
      if (view === "scheduled") { realtime.subscribeSession(s.id); readiness(st); }
      if (view === "past" && s.status === "completed") rating(st);
    }
    empty.hidden = list.children.length > 0;
    more.hidden = state.size >= total;
  } catch (err) {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

function reload() { page = 1; return load(); }

// ------------------------------------------------------------------ actions

list.addEventListener("click", async (ev) => {
  const edit = ev.target.closest("[data-edit]");
  if (edit) {
    edit.disabled = true;
    try {
      openEditor(await api(`/api/sessions/${edit.dataset.edit}`));
    } catch (err) { showError(err); } finally { edit.disabled = false; }
    return;
  }
  const publish = ev.target.closest("[data-publish]");
  if (publish) {
    const id = Number(publish.dataset.publish);
    publish.disabled = true;
    try {
      await api(`/api/sessions/${id}/publish`, { method: "POST" });
      state.get(id)?.el.remove();
      state.delete(id);
      empty.hidden = list.children.length > 0;
      toast("Published. It's now in Scheduled.", { kind: "success", action: { href: "/mentor/sessions?view=scheduled", label: "Scheduled" } });
    } catch (err) {
      publish.disabled = false;
      showError(err);
    }
    return;
  }
  const ready = ev.target.closest("[data-ready]");
  if (ready) {
    const id = Number(ready.dataset.ready);
    ready.disabled = true;
    try {
      await api(`/api/rooms/${id}/ready`, { method: "POST", body: { ready: true } });
      state.get(id).me = true;
      paint(id);
    } catch (err) {
      ready.disabled = false;
      showError(err);
    }
    return;
  }
  const cancel = ev.target.closest("[data-cancel]");
  if (cancel) {
    const st = state.get(Number(cancel.dataset.cancel));
    cancelModal.dataset.sessionId = st.s.id;
    cancelModal.querySelector("[data-cancel-text]").textContent = `${st.s.title} · ${formatTime(st.s.starts_at)}`;
    cancelModal.querySelector("[data-form-error]").hidden = true;
    cancelModal.querySelector("#cancel-reason").value = "";
    cancelModal.showModal();
  }
});

cancelModal.querySelector("[data-cancel-dismiss]").addEventListener("click", () => cancelModal.close());
cancelModal.querySelector("[data-cancel-confirm]").addEventListener("click", async (ev) => {
  const id = Number(cancelModal.dataset.sessionId);
  const btn = ev.currentTarget;
  btn.disabled = true;
  try {
    const out = await api(`/api/sessions/${id}/cancel`, { method: "POST", body: { reason: cancelModal.querySelector("#cancel-reason").value } });
    cancelModal.close();
    state.get(id)?.el.remove();
    state.delete(id);
    realtime.unsubscribeSession(id);
    empty.hidden = list.children.length > 0;
    const refunded = out.refunded_bookings
      ? ` ${out.refunded_bookings} booking${out.refunded_bookings === 1 ? "" : "s"} refunded (${money(out.refunded_cents, out.session.currency)}).`
      : "";
    toast(`Session cancelled.${refunded}`, { kind: "success" });
  } catch (err) {
    showError(err, { box: cancelModal.querySelector("[data-form-error]") });
  } finally {
    btn.disabled = false;
  }
});

// ------------------------------------------------------------------ live updates

realtime.start();
realtime.on("ready", (d) => {
  const st = state.get(d.session_id);
  if (!st) return;
  if (d.role === "mentor") st.me = !!d.ready;
  else {
    const l = st.learners.get(d.user_id) || { full_name: "Learner", ready: false };
    l.ready = !!d.ready;
    st.learners.set(d.user_id, l);
    if (d.ready && l.full_name === "Learner") readiness(st); // learn the name
  }
  paint(d.session_id);
});
realtime.on("seats", (d) => {
  const st = state.get(d.session_id);
  if (!st) return;
  st.s.seats_left = d.seats_left;
  const el = st.el.querySelector(`[data-booked-for="${d.session_id}"]`);
  if (el) el.textContent = `${st.s.capacity - d.seats_left}/${st.s.capacity} booked`;
  if (view === "scheduled") readiness(st);
});
realtime.on("session.updated", (d) => {
  const st = state.get(d.session_id ?? d.id);
  if (st && d.status && d.status !== st.s.status) reload();
});
// A request accepted in another tab, a booking ... keep the Scheduled list honest.
realtime.on("notification", (n) => {
  if (view === "scheduled" && /^(booking|request\.accepted|session)/.test(n.kind || "")) reload();
});
// Re-evaluate the T–10 min window as time passes.
setInterval(() => { for (const st of state.values()) { if (view === "scheduled") { if (!st.opensAt) readiness(st); else paint(st.s.id); } } }, 30000);

more.addEventListener("click", () => { page += 1; load(); });
load();
