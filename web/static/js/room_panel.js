// The side panel (a sheet on phones): the participants list, the chat with its history,
// and the tabs between them.

import { api, formatTime, h, initials, toast } from "./api.js";
import { $, ME, ROLE, SID, displayName, root, send, state, toMillis, trackOf } from "./room_state.js";

// ------------------------------------------------------------------ participants

export function renderPeople() {
  const list = $("#participants");
  const items = [];
  const me = { peer_id: state.peerId, self: true, user: { display_name: "You", role: ROLE } };
  const peers = [...state.participants.values()].sort((a, b) =>
    (a.user.role === "mentor" ? 0 : 1) - (b.user.role === "mentor" ? 0 : 1));
  for (const p of [me, ...peers]) {
    const name = p.self ? "You" : displayName(p.user);
    const mic = p.self ? (state.local.micMuted || !state.local.mic) : Boolean(trackOf(p, "mic")?.muted) || !trackOf(p, "mic");
    const cam = p.self ? (state.local.camOff || !state.local.cam) : !trackOf(p, "camera") || Boolean(trackOf(p, "camera")?.muted);
    const sharing = !p.self && trackOf(p, "screen") && !trackOf(p, "screen").muted;
    items.push(h("li", { class: "flex items-center gap-3 rounded-lg px-2 py-1.5 data-[speaking=true]:bg-emerald-500/15", dataset: { peer: p.peer_id || "", role: p.user.role || "" } },
      h("span", { class: "flex h-8 w-8 items-center justify-center rounded-full bg-brand-600 text-sm font-bold text-white", "aria-hidden": "true", text: initials(p.self ? (root.dataset.userName || "Y") : name) }),
      h("span", { class: "min-w-0 flex-1" },
        h("span", { class: "block truncate font-medium", text: name }),
        h("span", { class: "block text-xs text-slate-400", text: [p.user.role === "mentor" ? "Mentor" : "Learner", sharing ? "sharing screen" : null].filter(Boolean).join(" · ") })),
      mic ? h("span", { class: "text-xs text-rose-300", text: "Muted" }) : null,
      cam ? h("span", { class: "text-xs text-slate-400", text: "Camera off" }) : null));
  }
  list.replaceChildren(...items);
  $("#people-count").textContent = String(items.length);
}

// ------------------------------------------------------------------ chat

export async function loadChatHistory() {
  try {
    const data = await api(`/api/rooms/${SID}/chat`);
    const history = (data?.items || []).map((m) => ({
      user_id: m.user_id, name: m.from, text: m.text, at: toMillis(m.at), mine: ME && m.user_id === ME.id,
    }));
    const last = history.length ? history[history.length - 1].at : 0;
    const live = state.chat.filter((m) => m.live && m.at > last + 1);
    state.chat = [...history, ...live];
    renderChat();
  } catch (e) {
    if (e?.status !== 404) console.warn("room: chat history unavailable", e?.message);
  }
}

export function addChat(m) {
  state.chat.push({ ...m, live: true });
  renderChat();
  const side = $("#side");
  if (getComputedStyle(side).display === "none" || $("#panel-chat").hidden) $("#chat-unread").hidden = false;
}

export function renderChat() {
  const log = $("#chat-log");
  // the viewer's zone (profile, else browser) and named, like every time on the pages
  const clock = (iso) => formatTime(iso, { weekday: undefined, day: undefined, month: undefined });
  if (!state.chat.length) {
    log.replaceChildren(h("li", { class: "text-slate-400", "data-empty": "", text: "No messages yet. Say hello!" }));
    return;
  }
  log.replaceChildren(...state.chat.map((m) => h("li", { class: "rounded-lg bg-slate-800/70 px-3 py-2", dataset: { mine: m.mine ? "true" : "false" } },
    h("div", { class: "flex items-baseline gap-2 text-xs text-slate-400" },
      h("span", { class: `font-semibold ${m.mine ? "text-brand-300" : "text-slate-200"}`, text: m.mine ? "You" : m.name }),
      h("time", { datetime: new Date(m.at).toISOString(), text: clock(new Date(m.at).toISOString()) })),
    h("p", { class: "mt-0.5 whitespace-pre-wrap break-words text-slate-100", "data-chat-text": "", text: m.text }))));
  log.scrollTop = log.scrollHeight;
}

$("#chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("#chat-input");
  const text = input.value.trim();
  if (!text) return;
  if (state.phase !== "live" || !send({ type: "chat", text })) {
    toast("You're not connected to the room right now; try again in a moment.", { kind: "error" });
    return;
  }
  input.value = "";
});

// side panel tabs and the phone's chat sheet
function selectTab(which) {
  for (const name of ["chat", "people"]) {
    const tab = $(`#tab-${name}`);
    const on = name === which;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    tab.classList.toggle("border-brand-400", on);
    tab.classList.toggle("border-transparent", !on);
    tab.classList.toggle("text-slate-400", !on);
    $(`#panel-${name}`).hidden = !on;
  }
  if (which === "chat") $("#chat-unread").hidden = true;
}
$("#tab-chat").addEventListener("click", () => selectTab("chat"));
$("#tab-people").addEventListener("click", () => selectTab("people"));
root.querySelector('[role="tablist"]').addEventListener("keydown", (ev) => {
  if (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight") return;
  const next = $("#tab-chat").getAttribute("aria-selected") === "true" ? "people" : "chat";
  selectTab(next);
  $(`#tab-${next}`).focus();
});
$("#btn-panel").addEventListener("click", () => {
  const side = $("#side");
  const open = side.classList.toggle("flex");
  side.classList.toggle("hidden", !open);
  $("#btn-panel").setAttribute("aria-expanded", open ? "true" : "false");
  if (open) $("#chat-unread").hidden = true;
});

// The class's files (GET /api/sessions/{id}/materials) under the participants: the slides the
// mentor attached, a click away during the class.
async function loadMaterials() {
  try {
    const data = await api(`/api/sessions/${SID}/materials`);
    $("#room-materials-list").replaceChildren(...data.items.map((m) => h("li", {},
      h("a", { href: m.url, download: m.name, class: "text-brand-300 hover:underline", text: m.name }))));
    $("#room-materials").hidden = data.items.length === 0;
  } catch { /* no files to show */ }
}
loadMaterials();
