// Session detail: GET /api/sessions/{id} and its reviews; live seat count over /ws;
// [Book Now] → modal → [Confirm] → POST /api/bookings/create (Idempotency-Key per modal open) → /learner/sessions.
import { api, avatarEl, formatTime, h, money, newIdempotencyKey, showError } from "./api.js";
import { materialsBlock } from "./materials.js";
import { replayBlock } from "./replays.js";
import { liveSeats, seatsLeft, seatsText, watch } from "./sessions_ui.js";

const root = document.getElementById("session-detail");
const id = Number(root.dataset.sessionId);
const role = root.dataset.role;
const $ = (sel) => document.querySelector(sel);
const field = (name) => root.querySelector(`[data-field="${name}"]`);
const modal = document.getElementById("booking-modal");
const bookBtn = document.getElementById("book-now");
const note = document.getElementById("status-note");
let session = null;
let idempotencyKey = null;
let reviewPage = 1;

function setNote(text, tone = "slate") {
  note.textContent = text;
  note.hidden = !text;
  note.className = `mt-4 rounded-lg px-3 py-2 text-sm ${tone === "rose" ? "bg-rose-50 text-rose-800" : tone === "emerald" ? "bg-emerald-50 text-emerald-800" : "bg-slate-100 text-slate-700"}`;
}

function bookable() {
  if (!session) return false;
  const left = Number(field("seats").dataset.seatsLeft ?? seatsLeft(session));
  return role === "learner" && !session.booked && !session.is_owner && session.status === "scheduled"
    && new Date(session.starts_at) > new Date() && left > 0;
}

function refreshState() {
  const left = Number(field("seats").dataset.seatsLeft ?? seatsLeft(session));
  const started = new Date(session.starts_at) <= new Date();
  bookBtn.hidden = !bookable();
  $("#go-my-sessions").hidden = !session.booked;
  if (session.status === "cancelled") setNote("This session was cancelled.", "rose");
  else if (session.status === "completed" || (started && session.status !== "live")) setNote("This session has already taken place.");
  else if (session.status === "live") setNote(session.booked ? "This session is live now." : "This session is live now; booking is closed.", "emerald");
  else if (session.status === "draft") setNote("This session is a draft and not open for booking yet.");
  else if (session.booked) setNote("You're booked on this session.", "emerald");
  else if (session.is_owner) setNote("This is your session.");
  else if (left <= 0) setNote("This session is full.", "rose");
  else if (role !== "learner") setNote("Only learner accounts can book sessions.");
  else setNote("");
}

function render(s) {
  session = s;
  document.title = `${s.title} · PeerLearn`;
  field("domain").textContent = s.domain;
  field("title").textContent = s.title;
  field("description").textContent = s.description || "The mentor hasn't added a description yet.";
  field("price").textContent = money(s.price_cents, s.currency);
  field("starts_at").replaceChildren(h("time", { datetime: s.starts_at, text: formatTime(s.starts_at) }));
  field("duration").textContent = `${s.duration_min} minutes · up to ${s.capacity} learner${s.capacity === 1 ? "" : "s"}`;
  const seats = field("seats");
  const left = seatsLeft(s);
  seats.dataset.seatsFor = String(s.id);
  seats.dataset.seatsLeft = String(left);
  seats.textContent = seatsText(left);
  const m = s.mentor || {};
  const rating = m.rating?.count ? ` · ★ ${Number(m.rating.average).toFixed(1)} (${m.rating.count})` : "";
  // The mentor's name opens their profile; a learner can [Message] them before (or after) booking.
  $("#mentor-line").replaceChildren(...[avatarEl(m.avatar_url, m.full_name, "h-10 w-10"),
    h("div", {}, h("a", { class: "font-medium hover:underline", href: `/mentors/${m.id}`, text: m.full_name }),
      h("p", { class: "text-sm text-slate-500" }, `Mentor${rating} · `,
        h("a", { class: "text-brand-700 underline", href: `/mentors/${m.id}#slots`, text: "Book a 1:1 at a time that suits you" }))),
    role === "learner" ? h("a", { href: `/messages/new?to=${m.id}`, class: "btn-secondary btn-sm ml-auto", dataset: { testid: "message-mentor" }, text: "Message" }) : null,
  ].filter(Boolean));
  $("#skills").replaceChildren(...(s.skills || []).map((k) => h("span", { class: "badge bg-slate-100 text-slate-700", text: k })));
  const topics = s.curriculum || [];
  $("#curriculum").replaceChildren(...(topics.length ? topics.map((t, i) => h("li", { class: "flex gap-3" },
    h("span", { class: "inline-flex h-6 w-6 shrink-0 items-center justify-center rounded-full bg-brand-100 text-xs font-bold text-brand-700", text: String(i + 1) }),
    h("span", { class: "text-slate-700", text: t }))) : [h("li", { class: "text-slate-600", text: "The mentor hasn't listed the topics yet." })]));
  field("replay").textContent = s.attendee_replay ? "Attendees can replay the recording" : "Recording not shared with learners";
  refreshState();
  if ((role === "learner" && s.booked) || s.is_owner) afterClass(s);
}

// Between classes: the materials (the mentor attaches them, booked learners download them) and,
// for a learner who attended, the recording to replay.
async function afterClass(s) {
  const host = $("#after-class");
  const [files, replays] = await Promise.all([
    materialsBlock(s.id, { canEdit: s.is_owner }),
    // Recordings exist once the class took place; only attendees get them (404 otherwise).
    !s.is_owner && s.status === "completed" && s.attendee_replay ? replayBlock(s.id, s.title) : null,
  ]);
  const learners = s.is_owner && (s.status === "scheduled" || s.status === "live") ? await learnersBlock(s) : null;
  host.replaceChildren(...[replays, files, learners].filter(Boolean));
  host.hidden = !host.children.length;
}

// The mentor's own class: who booked it (GET /api/rooms/{id}/ready), each with [Message].
async function learnersBlock(s) {
  let status;
  try {
    status = await api(`/api/rooms/${s.id}/ready`);
  } catch {
    return null;
  }
  if (!status.learners.length) return null;
  return h("section", { class: "card p-4", "aria-labelledby": "booked-learners", "data-testid": "booked-learners" },
    h("h2", { id: "booked-learners", class: "font-semibold", text: "Booked learners" }),
    h("ul", { class: "mt-2 space-y-2" }, status.learners.map((l) => h("li", { class: "flex items-center justify-between gap-2" },
      h("span", { text: l.full_name }),
      h("a", { href: `/messages/new?to=${l.user_id}`, class: "btn-secondary btn-sm", "aria-label": `Message ${l.full_name}`, text: "Message" })))));
}

async function loadReviews(append = false) {
  try {
    const data = await api(`/api/sessions/${id}/reviews?page=${reviewPage}&page_size=10`);
    const r = data.rating || {};
    $("#reviews-summary").textContent = r.count ? `★ ${Number(r.average).toFixed(1)} average from ${r.count} review${r.count === 1 ? "" : "s"}` : "No reviews yet for this session.";
    const items = (data.items || []).map((rv) => h("li", { class: "card p-4" },
      h("div", { class: "flex items-center justify-between" },
        h("p", { class: "font-medium", text: rv.author_name }),
        h("p", { class: "text-amber-500", "aria-label": `${rv.rating} out of 5 stars`, text: "★".repeat(rv.rating) + "☆".repeat(5 - rv.rating) })),
      rv.comment ? h("p", { class: "mt-1 text-sm text-slate-700", text: rv.comment }) : null,
      h("p", { class: "mt-1 text-xs text-slate-500" }, h("time", { datetime: rv.created_at, text: formatTime(rv.created_at, { hour: undefined, minute: undefined, timeZoneName: undefined }) }))));
    if (append) $("#reviews").append(...items); else $("#reviews").replaceChildren(...items);
    $("#reviews-more").hidden = $("#reviews").children.length >= (data.total || 0);
  } catch (err) {
    $("#reviews-summary").textContent = err.message;
  }
}
$("#reviews-more").addEventListener("click", () => { reviewPage += 1; loadReviews(true); });

// Tabs: click, and arrow keys between them (WAI-ARIA tabs pattern).
const tabs = [...document.querySelectorAll('[role="tab"]')];
function select(tab) {
  tabs.forEach((t) => {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    t.classList.toggle("tab-active", on);
    document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
  });
}
tabs.forEach((t, i) => {
  t.addEventListener("click", () => select(t));
  t.addEventListener("keydown", (ev) => {
    const d = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
    if (!d) return;
    const next = tabs[(i + d + tabs.length) % tabs.length];
    select(next);
    next.focus();
  });
});

// Booking modal.
function openModal() {
  if (!bookable()) return;
  idempotencyKey = newIdempotencyKey();
  const set = (k, v) => { modal.querySelector(`[data-modal="${k}"]`).textContent = v; };
  set("title", session.title);
  set("mentor", session.mentor?.full_name || "");
  set("when", formatTime(session.starts_at));
  set("price", money(session.price_cents, session.currency));
  modal.querySelector("[data-form-error]").hidden = true;
  document.getElementById("booking-confirm").disabled = false;
  modal.showModal();
}
bookBtn.addEventListener("click", openModal);
document.getElementById("booking-cancel").addEventListener("click", () => modal.close());
document.getElementById("booking-confirm").addEventListener("click", async (ev) => {
  const btn = ev.currentTarget;
  btn.disabled = true;
  btn.textContent = "Booking…";
  try {
    await api("/api/bookings/create", { method: "POST", body: { session_id: id }, headers: { "Idempotency-Key": idempotencyKey } });
    location.assign("/learner/sessions?booked=" + id);
  } catch (err) {
    const messages = { sold_out: "Sorry, this session is full.", already_booked: "You've already booked this session." };
    showError({ message: messages[err.code] || err.message }, { box: modal.querySelector("[data-form-error]") });
    btn.textContent = "Confirm";
    if (err.code === "already_booked") { session.booked = true; refreshState(); }
    if (err.code !== "sold_out" && err.code !== "already_booked") btn.disabled = false;
  }
});

root.addEventListener("pl:seats", () => refreshState());

try {
  render(await api(`/api/sessions/${id}`));
  $("#detail-loading").hidden = true;
  $("#detail").hidden = false;
  liveSeats();
  watch([id]);
  loadReviews();
  if (root.dataset.openBooking) openModal();
} catch (err) {
  $("#detail-loading").hidden = true;
  const box = $("#detail-error");
  box.textContent = err.status === 404 ? "This session doesn't exist or isn't published." : err.message;
  box.hidden = false;
}
