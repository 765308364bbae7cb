// Shared pieces for session lists: the card, seat labels, live seat updates.
import { avatarEl, formatTime, h, money } from "./api.js";
import * as realtime from "./realtime.js";

export function mentorOf(s) {
  const m = s.mentor || {};
  return { id: m.id ?? s.mentor_id, name: m.full_name ?? s.mentor_name ?? "Mentor", avatar: m.avatar_url ?? s.mentor_avatar_url ?? null };
}

export function seatsLeft(s) {
  if (typeof s.seats_left === "number") return s.seats_left;
  return Math.max(0, (s.capacity ?? 0) - (s.seats_taken ?? 0));
}

export function seatsText(n) {
  if (n <= 0) return "Full";
  return `${n} seat${n === 1 ? "" : "s"} left`;
}

/** Keep every [data-seats-for=id] element in sync with `seats` messages. */
export function liveSeats() {
  realtime.start();
  realtime.on("seats", (d) => {
    document.querySelectorAll(`[data-seats-for="${d.session_id}"]`).forEach((el) => {
      el.textContent = seatsText(d.seats_left);
      el.dataset.seatsLeft = String(d.seats_left);
      el.classList.toggle("text-rose-700", d.seats_left <= 0);
      el.dispatchEvent(new CustomEvent("pl:seats", { bubbles: true, detail: d }));
    });
  });
}

export function watch(ids) {
  ids.forEach((id) => realtime.subscribeSession(id));
}

export function sessionCard(s, { action = null } = {}) {
  const m = mentorOf(s);
  const left = seatsLeft(s);
  return h("li", { class: "card flex flex-col p-5", dataset: { sessionId: s.id } },
    h("div", { class: "flex items-start justify-between gap-3" },
      h("span", { class: "badge bg-brand-50 text-brand-800", text: s.domain || "Session" }),
      h("span", { class: "text-sm font-semibold text-slate-900", text: money(s.price_cents, s.currency) })),
    h("h3", { class: "mt-3 text-base font-semibold leading-snug", text: s.title }),
    h("div", { class: "mt-3 flex items-center gap-2 text-sm text-slate-700" }, avatarEl(m.avatar, m.name, "h-7 w-7 text-xs"), h("span", { text: m.name })),
    h("p", { class: "mt-2 text-sm text-slate-600" },
      h("time", { datetime: s.starts_at, text: formatTime(s.starts_at) }),
      s.duration_min ? ` · ${s.duration_min} min` : ""),
    h("p", { class: `mt-1 text-sm font-medium ${left <= 0 ? "text-rose-700" : "text-emerald-700"}`, dataset: { seatsFor: s.id, seatsLeft: left }, text: seatsText(left) }),
    h("div", { class: "mt-auto flex gap-2 pt-4" },
      action || h("a", { href: `/sessions/${s.id}`, class: "btn-secondary w-full", text: "View Details" })));
}
