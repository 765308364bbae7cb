// Runs on every page: local times, the live unread badge, notification toasts.
import { api, currentUser, formatTime, toast } from "./api.js";
import * as realtime from "./realtime.js";

function localizeTimes(root = document) {
  root.querySelectorAll("time[data-local]").forEach((el) => {
    const iso = el.getAttribute("datetime");
    if (!iso) return;
    const mode = el.dataset.local;
    el.textContent = mode === "date"
      ? formatTime(iso, { weekday: undefined, hour: undefined, minute: undefined, timeZoneName: undefined, year: "numeric" })
      : formatTime(iso);
  });
}

function setBadge(selector, count) {
  document.querySelectorAll(selector).forEach((el) => {
    el.textContent = count > 99 ? "99+" : String(count);
    el.hidden = count <= 0;
    el.dataset.count = String(count);
  });
}

function setUnread(count) {
  setBadge("[data-unread-badge]", count);
}

function unread() {
  const el = document.querySelector("[data-unread-badge]");
  return Number(el?.dataset.count ?? el?.textContent ?? 0) || 0;
}

localizeTimes();
document.addEventListener("pl:localize", (ev) => localizeTimes(ev.target || document));

// Close the avatar menu when clicking elsewhere or pressing Escape.
const menu = document.querySelector("[data-avatar-menu]");
if (menu) {
  document.addEventListener("click", (ev) => { if (!menu.contains(ev.target)) menu.open = false; });
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") menu.open = false; });
}

// The T–10 min banner: "starts in 10 minutes" with [Get Ready] → the role's My Sessions.
function reminderBanner(n) {
  const host = document.getElementById("live-banner");
  if (!host) return;
  const role = currentUser()?.role;
  const target = role === "mentor" ? "/mentor/sessions" : "/learner/sessions";
  const bar = document.createElement("div");
  bar.className = "flex items-center justify-center gap-3 bg-amber-100 px-4 py-2 text-sm text-amber-900 shadow";
  bar.setAttribute("role", "status");
  const text = document.createElement("span");
  text.textContent = n.title || "Your session starts in 10 minutes";
  const go = document.createElement("a");
  go.href = target;
  go.className = "rounded-lg bg-amber-900 px-3 py-1.5 font-semibold text-white hover:bg-amber-800";
  go.textContent = "Get Ready";
  const close = document.createElement("button");
  close.type = "button";
  close.className = "text-amber-900/70 hover:text-amber-900";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "✕";
  close.addEventListener("click", () => bar.remove());
  bar.append(text, go, close);
  host.replaceChildren(bar);
}

if (currentUser()) {
  realtime.start();
  realtime.on("notification", (n) => {
    if (!n.read) setUnread(unread() + 1);
    document.dispatchEvent(new CustomEvent("pl:notification", { detail: n }));
    const join = n.kind === "mentor.ready" && n.link ? { href: n.link, label: "Join Class" } : null;
    if (!location.pathname.endsWith("/notifications")) {
      toast(n.title || "New notification", { action: join || (n.link ? { href: n.link, label: "Open" } : null) });
    }
    if (document.visibilityState === "hidden" && "serviceWorker" in navigator && window.Notification?.permission === "granted") {
      navigator.serviceWorker.ready.then((reg) => reg.showNotification(n.title || "PeerLearn", { body: n.body || "", data: { link: n.link || "/" }, tag: `pl-${n.id}` })).catch(() => {});
    }
  });
  realtime.on("notifications.read", () => setUnread(0));
  realtime.on("notification", (n) => { if (n.kind === "session.reminder") reminderBanner(n); });
  if ("serviceWorker" in navigator && document.body.dataset.browserNotifications === "1") {
    navigator.serviceWorker.register("/static/sw.js").catch(() => {});
  }
  document.addEventListener("pl:unread", (ev) => setUnread(ev.detail));

  // Messages: the nav bar's and the bottom tab's badge follow GET /api/conversations' unread
  // count; a message from someone else toasts unless its conversation is open.
  const refreshMessages = async () => {
    if (!document.querySelector("[data-messages-badge]")) return;
    try {
      const data = await api("/api/conversations");
      setBadge("[data-messages-badge]", data.unread);
    } catch { /* keep the last count */ }
  };
  realtime.on("message", (m) => {
    if (m.sender_id === currentUser().id) return;
    refreshMessages();
    // The inbox and the conversation itself show it already.
    if (location.pathname !== "/messages" && location.pathname !== `/messages/${m.conversation_id}` && m.from) {
      const text = m.body.length > 80 ? `${m.body.slice(0, 80)}…` : m.body;
      toast(`${m.from.full_name}: ${text}`, { action: { href: `/messages/${m.conversation_id}`, label: "Open" } });
    }
  });
  realtime.on("message.read", (r) => { if (r.reader_id === currentUser().id) refreshMessages(); });
  document.addEventListener("pl:messages-read", refreshMessages);
}
