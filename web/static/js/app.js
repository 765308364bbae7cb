// Runs on every page: local times, the live unread badge, notification toasts.
import { currentUser, formatTime, toast } from "./api.js";
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

function setUnread(count) {
  document.querySelectorAll("[data-unread-badge]").forEach((el) => {
    el.textContent = count > 99 ? "99+" : String(count);
    el.hidden = count <= 0;
    el.dataset.count = String(count);
  });
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
  document.addEventListener("pl:unread", (ev) => setUnread(ev.detail));
}
