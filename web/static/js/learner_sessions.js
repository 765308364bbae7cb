// My Sessions (Upcoming | Past) from GET /api/bookings?when=…
// Upcoming: from T–10 min [I'm Ready] (POST /api/rooms/{id}/ready) → "Waiting for Mentor…" →
// [Join Class] → /room/{id} once the mentor is ready (live `ready` events). Past: leave feedback, and
// during the earnings hold [Report a problem] (POST /api/bookings/{id}/report, GET /api/reports).
import { api, formatTime, h, itemsOf, money, showError, toast } from "./api.js";
import * as realtime from "./realtime.js";
import { replayBlock } from "./replays.js";

const list = document.getElementById("booking-list");
const view = list.dataset.view;
const empty = document.getElementById("list-empty");
const errorBox = document.getElementById("list-error");
const more = document.getElementById("load-more");
const cancelModal = document.getElementById("cancel-modal");
const reportModal = document.getElementById("report-modal");
const reports = { open: new Map(), mine: new Map() }; // booking id -> until | report
const OPENS_BEFORE_MS = 10 * 60 * 1000;
const state = new Map(); // session id -> {booking, me, mentor, opensAt, closesAt, el}
let page = 1;

function actionArea(st) {
  const s = st.booking.session;
  const now = Date.now();
  const start = new Date(s.starts_at).getTime();
  const end = new Date(s.ends_at).getTime();
  const opens = st.opensAt ?? start - OPENS_BEFORE_MS;
  const box = h("div", { class: "flex flex-wrap items-center gap-2", dataset: { actionsFor: s.id } });
  if (s.status === "cancelled" || st.booking.status === "cancelled") {
    box.append(h("span", { class: "badge bg-rose-100 text-rose-800", text: "Cancelled" }));
    return box;
  }
  if (st.booking.terms_changed) {
    // The mentor moved or shortened the class after the learner paid (docs/money.md): the
    // learner accepts the new terms, or cancels for a full refund whatever the window.
    box.append(h("p", { class: "w-full rounded-lg bg-amber-50 p-2 text-sm text-amber-900", role: "status", dataset: { termsChanged: st.booking.id } },
      `The mentor changed this class (you booked ${formatTime(st.booking.booked_starts_at)}, ${st.booking.booked_duration_min} min). `
      + "Accept the new time, or cancel for a full refund."),
    h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { acceptChange: st.booking.id }, text: "Accept new time" }),
    h("button", { type: "button", class: "btn-ghost btn-sm text-rose-700", dataset: { cancel: st.booking.id }, text: "Cancel with full refund" }));
    return box;
  }
  const inWindow = now >= opens && (now <= (st.closesAt ?? end) || s.status === "live");
  if (inWindow) {
    if (st.mentor) {
      box.append(h("a", { href: `/room/${s.id}`, class: "btn-primary", text: "Join Class" }));
    } else if (st.me) {
      box.append(h("span", { class: "inline-flex items-center gap-2 text-sm font-medium text-brand-700", role: "status" },
        h("span", { class: "h-2 w-2 animate-pulse rounded-full bg-brand-600" }), "Waiting for Mentor…"));
    } else {
      box.append(h("button", { type: "button", class: "btn-primary", dataset: { ready: s.id }, text: "I'm Ready" }));
    }
  } else if (now < opens) {
    box.append(h("span", { class: "text-sm text-slate-600", text: `You can get ready from ${formatTime(new Date(opens).toISOString(), { weekday: undefined, day: undefined, month: undefined })}` }));
    box.append(h("button", { type: "button", class: "btn-ghost btn-sm text-rose-700", dataset: { cancel: st.booking.id }, text: "Cancel" }));
  }
  return box;
}

function pastArea(b) {
  const s = b.session;
  const box = h("div", { class: "w-full", dataset: { feedbackFor: s.id } });
  if (b.status === "cancelled" || s.status === "cancelled") {
    box.append(h("span", { class: "badge bg-slate-100 text-slate-700", text: "Cancelled" }));
    return box;
  }
  if (s.status !== "completed") {
    box.append(h("p", { class: "text-sm text-slate-600", text: "Feedback opens when the session is completed." }));
    return box;
  }
  if (b.status === "no_show") {
    box.append(h("p", { class: "text-sm text-slate-600", text: "You did not join this class: a no-show is not refunded." }));
    return box;
  }
  if (b.my_rating) {
    box.append(h("p", { class: "text-sm text-slate-600", "data-testid": "my-rating" },
      "You rated this session ",
      h("span", { class: "text-amber-500", "aria-hidden": "true", text: "★".repeat(b.my_rating) }),
      h("span", { class: "sr-only", text: `${b.my_rating} of 5 stars` }), ". Thank you!"));
    return box;
  }
  const stars = h("div", { class: "flex gap-1", role: "radiogroup", "aria-label": "Rating" });
  for (let i = 1; i <= 5; i++) {
    const id = `r-${s.id}-${i}`;
    stars.append(h("input", { type: "radio", name: `rating-${s.id}`, id, value: String(i), class: "peer sr-only" }),
      h("label", { for: id, class: "cursor-pointer rounded px-1 text-2xl text-slate-300 hover:text-amber-400", title: `${i} star${i > 1 ? "s" : ""}`, text: "★" }));
  }
  stars.addEventListener("change", () => {
    const v = Number(stars.querySelector("input:checked")?.value || 0);
    stars.querySelectorAll("label").forEach((l, i) => l.classList.toggle("text-amber-400", i < v));
  });
  const comment = h("textarea", { name: "comment", rows: "2", maxlength: "2000", class: "input mt-2", placeholder: "What went well? What could be better?", "aria-label": "Comments" });
  const err = h("div", { class: "alert-error mt-2", dataset: { formError: "" }, hidden: true });
  const form = h("form", { class: "mt-2 rounded-xl bg-slate-50 p-3" },
    h("p", { class: "text-sm font-medium", text: "Rate this session" }), stars, comment, err,
    h("button", { type: "submit", class: "btn-primary btn-sm mt-2", text: "Submit Feedback" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const rating = Number(stars.querySelector("input:checked")?.value || 0);
    if (!rating) { showError({ message: "Choose 1 to 5 stars." }, { form }); return; }
    try {
      await api("/api/feedback/create", { method: "POST", body: { session_id: s.id, rating, comment: comment.value } });
      box.replaceChildren(h("p", { class: "text-sm text-emerald-700", text: "Thanks for your feedback!" }));
    } catch (e) {
      if (e.code === "already_reviewed" || e.status === 409) {
        box.replaceChildren(h("p", { class: "text-sm text-slate-600", text: "You've already rated this session." }));
      } else showError(e, { form });
    }
  });
  box.append(form);
  return box;
}

const REPORT_STATUS = {
  open: "Problem reported: under review",
  refunded: "Problem reported: you were refunded",
  released: "Problem reported: reviewed, the payment went to the mentor",
};

function reportArea(b) {
  const box = h("div", { class: "mt-2 flex flex-wrap items-center gap-2", dataset: { reportFor: b.id } });
  const mine = reports.mine.get(b.id);
  const until = reports.open.get(b.id);
  if (mine) {
    box.append(h("span", { class: "badge bg-amber-100 text-amber-800", "data-testid": "report-status", text: REPORT_STATUS[mine.status] || mine.status }));
  } else if (until) {
    box.append(h("button", { type: "button", class: "btn-ghost btn-sm text-rose-700", dataset: { report: b.id }, text: "Report a problem" }),
      h("span", { class: "text-xs text-slate-500", text: `until ${formatTime(until)}` }));
  }
  return box;
}

function card(b) {
  const s = b.session;
  const li = h("li", { class: "card p-4", dataset: { bookingId: b.id, sessionId: s.id } },
    h("div", { class: "flex flex-wrap items-start justify-between gap-3" },
      h("div", { class: "min-w-0" },
        h("a", { href: `/sessions/${s.id}`, class: "font-semibold hover:underline", text: s.title }),
        h("p", { class: "text-sm text-slate-600" }, `with ${s.mentor_name} · `, h("time", { datetime: s.starts_at, text: formatTime(s.starts_at) }), ` · ${s.duration_min} min`),
        h("p", { class: "text-xs text-slate-500", text: `${money(b.price_cents, b.currency)}${b.test_mode ? " (test mode)" : ""}${b.refunded ? " · refunded" : ""}` })),
      view === "upcoming" ? h("div", { dataset: { slot: "actions" } }) : null),
    view === "past" ? h("div", { class: "mt-2" }, pastArea(b)) : null,
    view === "past" ? reportArea(b) : null);
  // A class the learner attended (settled as such) may have a recording to replay; asking for
  // anything else would only be answered 404.
  if (view === "past" && s.status === "completed" && b.status === "attended" && s.attendee_replay) {
    replayBlock(s.id, s.title).then((block) => { if (block) li.append(block); });
  }
  return li;
}

function paint(sessionId) {
  const st = state.get(sessionId);
  if (!st) return;
  st.el.querySelector('[data-slot="actions"]')?.replaceChildren(actionArea(st));
}

async function readiness(st) {
  const s = st.booking.session;
  const start = new Date(s.starts_at).getTime();
  if (Date.now() < start - OPENS_BEFORE_MS || st.booking.status === "cancelled") return;
  try {
    const r = await api(`/api/rooms/${s.id}/ready`);
    st.opensAt = new Date(r.opens_at).getTime();
    st.closesAt = new Date(r.closes_at).getTime();
    st.mentor = !!r.mentor?.ready;
    const me = Number(document.body.dataset.userId);
    st.me = !!(r.learners || []).find((l) => l.user_id === me)?.ready;
  } catch { /* not open yet or not a participant: keep the defaults */ }
  paint(s.id);
}

async function load() {
  errorBox.hidden = true;
  try {
    if (view === "past" && page === 1) await loadReports();
    const data = await api(`/api/bookings?when=${view}&page=${page}&page_size=20`);
    const items = itemsOf(data).filter((b) => view === "past" || b.status !== "cancelled");
    if (page === 1) list.replaceChildren();
    for (const b of items) {
      const el = card(b);
      list.append(el);
      if (view === "upcoming") {
        const st = { booking: b, me: false, mentor: b.session.status === "live", el };
        state.set(b.session.id, st);
        paint(b.session.id);
        realtime.subscribeSession(b.session.id);
        readiness(st);
      }
    }
    empty.hidden = list.children.length > 0;
    more.hidden = list.querySelectorAll("li[data-booking-id]").length >= (data.total ?? 0);
  } catch (err) {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

async function loadReports() {
  try {
    const data = await api("/api/reports");
    reports.open = new Map(data.reportable.map((r) => [r.booking_id, r.until]));
    reports.mine = new Map(data.items.map((r) => [r.booking_id, r]));
  } catch { /* not a learner, or unavailable: no report buttons */ }
}

list.addEventListener("click", async (ev) => {
  const report = ev.target.closest("[data-report]");
  if (report) {
    reportModal.dataset.bookingId = report.dataset.report;
    reportModal.querySelector("[data-report-text]").textContent = report.closest("li").querySelector("a").textContent;
    reportModal.querySelector("[data-form-error]").hidden = true;
    reportModal.querySelector("textarea").value = "";
    reportModal.showModal();
    return;
  }
  const ready = ev.target.closest("[data-ready]");
  if (ready) {
    const sid = Number(ready.dataset.ready);
    ready.disabled = true;
    try {
      await api(`/api/rooms/${sid}/ready`, { method: "POST", body: { ready: true } });
      state.get(sid).me = true;
      paint(sid);
    } catch (err) {
      ready.disabled = false;
      showError(err);
    }
  }
  const accept = ev.target.closest("[data-accept-change]");
  if (accept) {
    accept.disabled = true;
    try {
      const b = await api(`/api/bookings/${accept.dataset.acceptChange}/accept-change`, { method: "POST" });
      state.get(b.session_id).booking = b;
      paint(b.session_id);
      toast("New time accepted.", { kind: "success" });
    } catch (err) {
      accept.disabled = false;
      showError(err);
    }
  }
  const cancel = ev.target.closest("[data-cancel]");
  if (cancel) {
    const li = cancel.closest("li");
    cancelModal.dataset.bookingId = cancel.dataset.cancel;
    cancelModal.querySelector("[data-cancel-text]").textContent = li.querySelector("a").textContent;
    cancelModal.querySelector("[data-form-error]").hidden = true;
    cancelModal.showModal();
  }
});

cancelModal.querySelector("[data-cancel-dismiss]").addEventListener("click", () => cancelModal.close());
cancelModal.querySelector("[data-cancel-confirm]").addEventListener("click", async () => {
  const id = cancelModal.dataset.bookingId;
  try {
    const out = await api(`/api/bookings/${id}/cancel`, { method: "POST" });
    cancelModal.close();
    list.querySelector(`li[data-booking-id="${id}"]`)?.remove();
    empty.hidden = list.children.length > 0;
    toast(out.refund_cents ? `Booking cancelled; ${money(out.refund_cents, out.booking.currency)} refunded.` : "Booking cancelled.", { kind: "success" });
  } catch (err) {
    showError(err, { box: cancelModal.querySelector("[data-form-error]") });
  }
});

reportModal.querySelector("[data-report-dismiss]").addEventListener("click", () => reportModal.close());
reportModal.querySelector("form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const id = Number(reportModal.dataset.bookingId);
  const reason = reportModal.querySelector("textarea").value.trim();
  try {
    const r = await api(`/api/bookings/${id}/report`, { method: "POST", body: { reason } });
    reportModal.close();
    reports.mine.set(id, r);
    list.querySelector(`[data-report-for="${id}"]`)?.replaceWith(reportArea({ id }));
    toast("Problem reported. The payment is on hold until an admin reviews it.", { kind: "success" });
  } catch (err) {
    showError(err, { box: reportModal.querySelector("[data-form-error]") });
  }
});

realtime.start();
realtime.on("ready", (d) => {
  const st = state.get(d.session_id);
  if (!st) return;
  if (d.role === "mentor") {
    st.mentor = !!d.ready;  // the "Mentor is ready" toast comes with the notification (app.js)
  } else if (d.user_id === Number(document.body.dataset.userId)) {
    st.me = !!d.ready;
  }
  paint(d.session_id);
});
realtime.on("session.updated", (d) => {
  const st = state.get(d.session_id ?? d.id);
  if (st && d.status) { st.booking.session.status = d.status; if (d.status === "live") st.mentor = true; paint(st.booking.session.id); }
});
// Re-evaluate the T–10 min window as time passes.
setInterval(() => { for (const st of state.values()) { if (!st.opensAt) readiness(st); else paint(st.booking.session.id); } }, 30000);

more.addEventListener("click", () => { page += 1; load(); });
load();
