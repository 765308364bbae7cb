// Notifications subtab: [Mark All Read] (POST /api/notifications/read) and live arrivals over /ws.
import { api, formatTime, h, showError } from "./api.js";

const list = document.getElementById("notification-list");
const button = document.getElementById("mark-all-read");
const unreadText = document.querySelector("[data-unread-text]");
const empty = document.getElementById("notifications-empty");

function unreadCount() {
  return list.querySelectorAll('[data-read="false"]').length;
}

function sync() {
  const n = unreadCount();
  unreadText.textContent = String(n);
  button.disabled = n === 0;
  empty.hidden = list.children.length > 0;
  document.dispatchEvent(new CustomEvent("pl:unread", { detail: n }));
}

button.addEventListener("click", async () => {
  button.disabled = true;
  try {
    await api("/api/notifications/read", { method: "POST", body: {} });
    list.querySelectorAll('[data-read="false"]').forEach((li) => {
      li.dataset.read = "true";
      li.classList.remove("border-l-4", "border-l-brand-600");
      li.querySelector("[data-unread-dot]")?.remove();
    });
  } catch (err) {
    showError(err);
  }
  sync();
});

document.addEventListener("pl:notification", (ev) => {
  const n = ev.detail;
  const title = n.link ? h("a", { href: n.link, class: "hover:underline", text: n.title }) : n.title;
  const li = h("li", { class: "card flex gap-3 p-4 border-l-4 border-l-brand-600", dataset: { notificationId: n.id, read: "false" } },
    h("div", { class: "min-w-0 flex-1" },
      h("p", { class: "font-medium text-slate-900" }, title),
      n.body ? h("p", { class: "mt-0.5 text-sm text-slate-600", text: n.body }) : null,
      h("p", { class: "mt-1 text-xs text-slate-500" }, h("time", { datetime: n.created_at, text: formatTime(n.created_at) }))),
    h("span", { class: "badge h-fit bg-brand-100 text-brand-800", dataset: { unreadDot: "" }, text: "New" }));
  list.prepend(li);
  sync();
});
