// The lobby while a learner waits for the mentor: who is booked and who is ready, refreshed
// live by `ready` messages on the session's realtime channel.

import { api, avatarEl, h } from "./api.js";
import * as realtime from "./realtime.js";
import { $, ME, SID, root, state } from "./room_state.js";

// While waiting: the mentor and the booked learners (a learner sees the mentor, themself and
// how many others are ready) with their Ready status; `ready` messages on the session channel
// refresh it live.
const lobby = { session: null, status: null, seq: 0 };

export async function loadLobby() {
  const seq = ++lobby.seq;
  try {
    const [sess, status] = await Promise.all([
      lobby.session || api(`/api/sessions/${SID}`),
      api(`/api/rooms/${SID}/ready`),
    ]);
    if (seq !== lobby.seq) return;
    lobby.session = sess;
    lobby.status = status;
  } catch {
    return;
  }
  renderLobby();
}

function lobbyPerson({ userId, name, role, ready, self, avatar }) {
  return h("li", { class: "flex w-24 flex-col items-center gap-1", dataset: { userId: String(userId), role, ready: ready ? "true" : "false" } },
    h("span", { class: "relative" },
      avatarEl(avatar, name, `h-14 w-14 text-xl ring-2 ${ready ? "ring-emerald-400" : "ring-slate-600"}`),
      h("span", { class: `absolute -bottom-0.5 -right-0.5 h-4 w-4 rounded-full border-2 border-slate-900 ${ready ? "bg-emerald-400" : "bg-slate-500"}`, "aria-hidden": "true" })),
    h("span", { class: "w-full truncate text-sm font-medium", text: name }),
    h("span", { class: "text-xs text-slate-400", text: `${role === "mentor" ? "Mentor" : "Learner"}${self ? " · you" : ""}` }),
    h("span", { class: `text-xs font-semibold ${ready ? "text-emerald-300" : "text-slate-400"}`, "data-ready-label": "", text: ready ? "Ready" : "Not ready" }));
}

function renderLobby() {
  const st = lobby.status;
  if (!st) return;
  const mentor = lobby.session?.mentor || {};
  const people = [lobbyPerson({
    userId: st.mentor.user_id, name: mentor.full_name || root.dataset.mentorName || "Mentor", role: "mentor",
    ready: st.mentor.ready, self: st.mentor.user_id === ME?.id, avatar: mentor.avatar_url,
  })];
  for (const l of st.learners) {
    people.push(lobbyPerson({ userId: l.user_id, name: l.full_name || "Learner", role: "learner", ready: l.ready, self: l.user_id === ME?.id }));
  }
  $("#lobby-people").replaceChildren(...people);
  const others = st.learners_total - st.learners.length;
  $("#lobby-summary").textContent = `${st.learners_ready} of ${st.learners_total} learner${st.learners_total === 1 ? "" : "s"} ready`
    + (others > 0 ? ` · ${others} other learner${others === 1 ? "" : "s"} booked` : "");
}

realtime.on("ready", (d) => {
  if (Number(d?.session_id) !== SID || state.phase !== "waiting") return;
  loadLobby();
});
// after a realtime reconnect we may have missed some: look again
realtime.on("subscribed", (d) => {
  if (Number(d?.session_id) === SID && state.phase === "waiting" && lobby.status) loadLobby();
});
