// Messages inbox: a conversation moves to the top with its new preview and unread count when a
// `message` arrives over /ws; one not listed yet is fetched (GET /api/conversations) and drawn.
import { api, avatarEl, currentUser, formatTime, h } from "./api.js";
import * as realtime from "./realtime.js";

const list = document.getElementById("conversation-list");
const empty = document.getElementById("conversations-empty");
const me = currentUser().id;

function row(c) {
  const last = c.last_message;
  const badge = h("span", { class: "badge bg-brand-600 text-white", dataset: { unreadCount: "" }, hidden: c.unread ? null : true },
    String(c.unread), h("span", { class: "sr-only", text: " unread" }));
  return h("li", { dataset: { conversationId: c.id, unread: c.unread } },
    h("a", { href: `/messages/${c.id}`, class: `card flex items-center gap-3 p-4 hover:bg-slate-50 ${c.unread ? "border-l-4 border-l-brand-600" : ""}` },
      avatarEl(c.other_user.avatar_url, c.other_user.full_name, "h-10 w-10"),
      h("span", { class: "min-w-0 flex-1" },
        h("span", { class: "flex items-center justify-between gap-2" },
          h("span", { class: "truncate font-medium text-slate-900", text: c.other_user.full_name }),
          last ? h("time", { class: "text-xs text-slate-500", datetime: last.created_at, text: formatTime(last.created_at) }) : null),
        h("span", { class: "flex items-center justify-between gap-2" },
          h("span", { class: "truncate text-sm text-slate-600", dataset: { preview: "" }, text: last ? `${last.sender_id === me ? "You: " : ""}${last.body}` : "" }),
          badge))));
}

async function refresh() {
  try {
    const data = await api("/api/conversations");
    list.replaceChildren(...data.items.map(row));
    empty.hidden = data.items.length > 0;
  } catch { /* the list stays as it was */ }
}

realtime.on("message", refresh);
realtime.on("message.read", refresh);
realtime.on("open", refresh);
