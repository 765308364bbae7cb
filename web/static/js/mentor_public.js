// A mentor's public page: who they are, and the slot picker. Free slots (GET /api/mentors/{id}/slots)
// are shown day by day on the viewer's clock, with the zone named and the mentor's own time beside
// each; [a time] → confirm dialog → POST /api/bookings/slot → My Sessions.
import { ApiError, api, avatarEl, formatTime, h, money, newIdempotencyKey, showError, toast, userTimeZone } from "./api.js";

const root = document.getElementById("mentor-page");
const mentorId = root.dataset.mentorId;
const viewerZone = userTimeZone();
const DAYS = 28;
const modal = document.getElementById("slot-modal");
let mentor = null;
let mentorZone = "UTC";
let chosen = null;

const dayKey = (iso) => new Intl.DateTimeFormat("en-CA", { timeZone: viewerZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(iso));
const clock = (iso, timeZone) => new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", timeZone }).format(new Date(iso));
const zoneName = (iso, timeZone) => new Intl.DateTimeFormat("en", { timeZone, timeZoneName: "short" }).formatToParts(new Date(iso)).find((p) => p.type === "timeZoneName")?.value || timeZone;

// [Follow] / [Following]: a learner follows the mentor (POST/DELETE /api/mentors/{id}/follow,
// idempotent); the count beside it is the server's after the change.
const followBtn = document.getElementById("follow");
followBtn?.addEventListener("click", async () => {
  const following = followBtn.getAttribute("aria-pressed") === "true";
  followBtn.disabled = true;
  try {
    const out = await api(`/api/mentors/${mentorId}/follow`, { method: following ? "DELETE" : "POST" });
    followBtn.setAttribute("aria-pressed", out.following ? "true" : "false");
    followBtn.textContent = out.following ? "Following" : "Follow";
    document.getElementById("followers").textContent = `${out.followers} follower${out.followers === 1 ? "" : "s"}`;
    toast(out.following ? "Following: your recommendations take this mentor into account." : "You no longer follow this mentor.", { kind: "success", timeout: 3000 });
  } catch (e) {
    showError(e, { box: document.getElementById("mentor-error") });
  } finally {
    followBtn.disabled = false;
  }
});

function renderHead(m) {
  const rating = m.rating?.count ? `★ ${Number(m.rating.average).toFixed(1)} (${m.rating.count} reviews) · ` : "";
  document.getElementById("mentor-head").replaceChildren(avatarEl(m.avatar_url, m.full_name, "h-16 w-16 text-xl"),
    h("div", { class: "min-w-0 flex-1" },
      h("h1", { class: "text-2xl font-bold tracking-tight", text: m.full_name }),
      h("p", { class: "text-sm text-slate-600", text: `${rating}${m.completed_sessions} classes held · ${m.followers} followers` })));
  document.getElementById("mentor-bio").textContent = m.bio || "";
  document.getElementById("mentor-tags").replaceChildren(...[...(m.domains || []), ...(m.skills || [])].map((t) => h("span", { class: "badge bg-slate-100 text-slate-700", text: t })));
}

function renderSlots(items) {
  const byDay = new Map();
  for (const s of items) {
    const key = dayKey(s.starts_at);
    if (!byDay.has(key)) byDay.set(key, []);
    byDay.get(key).push(s);
  }
  const days = document.getElementById("slot-days");
  document.getElementById("slot-empty").hidden = byDay.size > 0;
  document.getElementById("slot-zones").textContent = `Times in ${viewerZone} (your time zone). The mentor's time zone: ${mentorZone}.`;
  if (items.length) document.getElementById("slot-price").textContent = `${money(items[0].price_cents, items[0].currency)} · ${Math.round((new Date(items[0].ends_at) - new Date(items[0].starts_at)) / 60000)} min`;
  const select = (key) => {
    for (const b of days.querySelectorAll("[role=tab]")) {
      const on = b.dataset.day === key;
      b.setAttribute("aria-selected", String(on));
      b.className = on ? "pill pill-active shrink-0" : "pill shrink-0";
    }
    document.getElementById("slot-times").replaceChildren(...byDay.get(key).map((s) => h("li", {},
      h("button", { type: "button", class: "btn-secondary w-full flex-col", "data-slot": s.starts_at, onclick: () => openModal(s) },
        h("span", { class: "font-semibold", text: `${clock(s.starts_at, viewerZone)} ${zoneName(s.starts_at, viewerZone)}` }),
        h("span", { class: "text-xs text-slate-500", text: `${clock(s.starts_at, mentorZone)} ${zoneName(s.starts_at, mentorZone)} for the mentor` })))));
  };
  days.replaceChildren(...[...byDay.keys()].map((key) => h("button", {
    type: "button", role: "tab", class: "pill shrink-0", "data-day": key, onclick: () => select(key),
    text: formatTime(byDay.get(key)[0].starts_at, { hour: undefined, minute: undefined, timeZoneName: undefined, timeZone: viewerZone }),
  })));
  if (byDay.size) select([...byDay.keys()][0]);
  else document.getElementById("slot-times").replaceChildren();
}

async function loadSlots() {
  const from = new Date();
  const to = new Date(from.getTime() + DAYS * 86400e3);
  const page = await api(`/api/mentors/${mentorId}/slots?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
  mentorZone = page.time_zone;
  renderSlots(page.items);
}

function openModal(slot) {
  if (!root.dataset.role) {  // a visitor: sign in (or register) first, then come back here
    window.location.assign(`/login?next=${encodeURIComponent(`/mentors/${mentorId}#slots`)}`);
    return;
  }
  chosen = { ...slot, key: newIdempotencyKey() };
  const set = (k, v) => { modal.querySelector(`[data-modal="${k}"]`).textContent = v; };
  set("mentor", mentor.full_name);
  set("when", formatTime(slot.starts_at, { timeZone: viewerZone }) + ` (${viewerZone})`);
  set("mentor-when", formatTime(slot.starts_at, { timeZone: mentorZone }) + ` (${mentorZone})`);
  set("price", money(slot.price_cents, slot.currency));
  modal.querySelector("[data-form-error]").hidden = true;
  modal.showModal();
}

document.getElementById("slot-cancel").addEventListener("click", () => modal.close());
document.getElementById("slot-confirm").addEventListener("click", async (ev) => {
  const button = ev.currentTarget;
  if (root.dataset.role !== "learner") {
    showError(new ApiError(403, "forbidden", "Sign in with a learner account to book."), { box: modal.querySelector("[data-form-error]") });
    return;
  }
  button.disabled = true;
  try {
    // one key per chosen slot: a retry after a 503 gets this booking back, never a second one
    const booking = await api("/api/bookings/slot", {
      method: "POST",
      body: { mentor_id: Number(mentorId), starts_at: chosen.starts_at },
      headers: { "Idempotency-Key": chosen.key },
    });
    modal.close();
    // My Sessions says "Booked!" as after any booking (the toast would vanish with the page)
    window.location.assign(`/learner/sessions?booked=${booking.id}`);
  } catch (err) {
    showError(err, { box: modal.querySelector("[data-form-error]") });
    if (err.code === "slot_taken" || err.code === "slot_unavailable") loadSlots();
  } finally {
    button.disabled = false;
  }
});

// The page itself renders who the mentor is (web/message_pages.py, public/mentor.html); this module
// adds the slot picker. The mentor's record still tells the picker their zone and name.
try {
  mentor = await api(`/api/mentors/${mentorId}`);
  if (document.getElementById("mentor-head")) renderHead(mentor);
  await loadSlots();
} catch (err) {
  showError(err, { box: document.getElementById("mentor-error") });
}
