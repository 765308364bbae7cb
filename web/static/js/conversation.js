// A conversation: [Send] (POST /api/messages), live arrivals (`message` over /ws) marked read while
// the page is visible (POST /api/conversations/{id}/read), the other side's read receipt
// (`message.read`), [Load earlier messages] (?before=), [Block] / [Unblock] and [Report].
// Bodies are set with textContent: a message is text, never HTML.
import { api, currentUser, formatTime, h, showError, toast } from "./api.js";
import * as realtime from "./realtime.js";

const root = document.getElementById("conversation");
const list = document.getElementById("message-list");
const form = document.getElementById("composer");
const input = document.getElementById("message-body");
const errorBox = document.getElementById("composer-error");
const receipt = document.getElementById("read-receipt");
const earlier = document.getElementById("load-earlier");
const blockButton = document.getElementById("block-button");
const me = currentUser().id;
const otherId = Number(root.dataset.otherId);
let convId = Number(root.dataset.conversationId) || null;
let otherReadId = Number(root.dataset.otherReadId) || 0;

function bubble(m) {
  const mine = m.sender_id === me;
  return h("li", { class: `flex ${mine ? "justify-end" : ""}`, dataset: { messageId: m.id, mine: mine ? "1" : "" } },
    h("div", { class: `max-w-md rounded-2xl px-3 py-2 ${mine ? "bg-brand-600 text-white" : "border border-slate-200 bg-white text-slate-900"}` },
      h("p", { class: "whitespace-pre-wrap break-words", dataset: { body: "" }, text: m.body }),
      h("p", { class: `mt-1 text-xs ${mine ? "text-white" : "text-slate-500"}` },
        h("time", { datetime: m.created_at, text: formatTime(m.created_at) }))));
}

function has(id) {
  return Boolean(list.querySelector(`[data-message-id="${id}"]`));
}

function lastId() {
  const items = list.querySelectorAll("[data-message-id]");
  return items.length ? Number(items[items.length - 1].dataset.messageId) : 0;
}

// "Seen" under the last message when it is mine and the other side's read mark reached it.
function showReceipt() {
  const last = list.lastElementChild;
  receipt.hidden = !(last && last.dataset.mine === "1" && Number(last.dataset.messageId) <= otherReadId);
}

function append(m) {
  if (has(m.id)) return;
  list.append(bubble(m));
  document.getElementById("conversation-empty").hidden = true;
  showReceipt();
  list.lastElementChild.scrollIntoView({ block: "end" });
}

async function markRead() {
  if (!convId || document.visibilityState !== "visible") return;
  try {
    await api(`/api/conversations/${convId}/read`, { method: "POST" });
    document.dispatchEvent(new CustomEvent("pl:messages-read"));
  } catch { /* the next arrival or visit marks it */ }
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = input.value.trim();
  if (!body) {
    // nothing to send: say so rather than do nothing (what the server answers to blank text)
    showError({ message: "Write a message first." }, { box: errorBox });
    input.focus();
    return;
  }
  const button = document.getElementById("send-button");
  button.disabled = true;
  try {
    const m = await api("/api/messages", { method: "POST", body: { to_user_id: otherId, body } });
    input.value = "";
    if (!convId) {
      convId = m.conversation_id;
      root.dataset.conversationId = String(convId);
      history.replaceState(null, "", `/messages/${convId}`);
      document.getElementById("conversation-actions").hidden = false;
    }
    append(m);
    errorBox.hidden = true;
  } catch (err) {
    showError(err, { box: errorBox });
  } finally {
    button.disabled = false;
    input.focus();
  }
});

// Enter sends, Shift+Enter starts a new line (as in the messengers people know).
input.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    form.requestSubmit();
  }
});

earlier.addEventListener("click", async () => {
  const first = list.querySelector("[data-message-id]");
  if (!first || !convId) return;
  earlier.disabled = true;
  try {
    const page = await api(`/api/conversations/${convId}/messages?before=${first.dataset.messageId}`);
    list.prepend(...page.items.filter((m) => !has(m.id)).map(bubble));
    earlier.hidden = !page.has_more;
  } catch (err) {
    showError(err, { box: errorBox });
  } finally {
    earlier.disabled = false;
  }
});

blockButton.addEventListener("click", async () => {
  const blocked = root.dataset.blocked !== "1";
  try {
    await api(`/api/conversations/${convId}/block`, { method: "POST", body: { blocked } });
    if (!blocked) {
      location.reload();  // whether the other side blocked too is only known to the server
      return;
    }
    root.dataset.blocked = "1";
    blockButton.textContent = "Unblock";
    form.hidden = true;
    document.getElementById("blocked-note").hidden = false;
    toast("Blocked: no messages either way.");
  } catch (err) {
    showError(err, { box: errorBox });
  }
});

const dialog = document.getElementById("report-dialog");
document.getElementById("report-button").addEventListener("click", () => dialog.showModal());
document.getElementById("report-cancel").addEventListener("click", () => dialog.close());
document.getElementById("report-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api(`/api/conversations/${convId}/report`, { method: "POST", body: { reason: document.getElementById("report-reason").value } });
    dialog.close();
    toast("Reported. An admin will look into this conversation.");
  } catch (err) {
    showError(err, { box: errorBox });
    dialog.close();
  }
});

realtime.on("message", (m) => {
  if (m.conversation_id !== convId && !(convId === null && (m.sender_id === otherId))) return;
  if (convId === null) {
    convId = m.conversation_id;
    root.dataset.conversationId = String(convId);
  }
  append(m);
  if (m.sender_id !== me) markRead();
});
realtime.on("message.read", (r) => {
  if (r.conversation_id !== convId || r.reader_id === me) return;
  otherReadId = Math.max(otherReadId, r.read_id);
  showReceipt();
});
// Messages that came while the socket was away: fetch what is newer than the last one shown.
realtime.on("open", async () => {
  if (!convId) return;
  try {
    const page = await api(`/api/conversations/${convId}/messages`);
    otherReadId = Math.max(otherReadId, page.conversation.other_read_id);
    page.items.filter((m) => m.id > lastId()).forEach(append);
    showReceipt();
  } catch { /* shown on the next arrival */ }
});
document.addEventListener("visibilitychange", markRead);

showReceipt();
list.lastElementChild?.scrollIntoView({ block: "end" });
markRead();
