// The live room /room/{id}: token → signaling socket → one RTCPeerConnection to the SFU.
//
// Protocol (docs/architecture.md, sfu/README.md): join → joined; the client offers its tracks
// (camera, mic, screen with `sources`), the server answers; the server offers whenever
// others' tracks come and go, the client answers. `tracks` messages say which mid carries
// which publisher's camera/mic/screen (the remote stream id is the publisher's peer_id).
// The server is the impolite side: a colliding client offer gets `error {code: glare}` —
// we roll back, answer the server, then offer again. Close code 4000 = replaced by a newer
// connection of the same user. A media outage first gets an ICE restart on the same
// connection (room_ice_restart.js). Anything else that drops us (or a restart that did not
// work) → fresh token, new RTCPeerConnection, after 250 ms, then exponential backoff (1 s, 2 s, 4 s … 15 s).
//
// This module is the connection's life (token, socket, phases, reconnects, end states) and
// starts the page; the rest lives beside it: room_state.js (shared state), room_negotiation.js
// (the peer connection), room_tiles.js (videos), room_panel.js (people and chat),
// room_lobby.js (waiting for the mentor), room_controls.js (the control bar), with
// room_signaling.js, room_media.js, room_layers.js, room_stage.js (where tiles go) and
// room_dynacast.js (which of our layers anyone watches) below them.

import { api, toast } from "./api.js";
import * as realtime from "./realtime.js";
import { CLOSE_REPLACED, RoomSocket } from "./room_signaling.js";
import { getLocalMedia } from "./room_media.js";
import { setLabel, setRecording, updateControls } from "./room_controls.js";
import { loadLobby } from "./room_lobby.js";
import { createPeerConnection, enqueue, onAnswer, onOffer, resetNegotiation, sendOffer } from "./room_negotiation.js";
import { restartRefused } from "./room_ice_restart.js";
import { onPublishLayers } from "./room_dynacast.js";
import { onPlayoutDelay } from "./room_playout.js";
import { addChat, loadChatHistory, renderChat, renderPeople } from "./room_panel.js";
import { $, ROLE, SID, TERMINAL, displayName, normalizePeer, root, send, state, toMillis } from "./room_state.js";
import { highlightSpeaker, onQuality, reconcile, sizeHints } from "./room_tiles.js";

// the room fills the screen: no room needed for the phone's bottom tabs
document.body.classList.remove("pb-20");

const BACKOFF_MAX = 15000;
const FIRST_RETRY_MS = 250;
const WAIT_POLL_MS = 3000;
// From opening the socket to a connected peer connection: past this something hangs (a join
// the server never answered, ICE that never completes) and a fresh start is the way out.
const JOIN_TIMEOUT_MS = 20000;

// Tests (and curious developers) reach the connection through window.__room.
window.__room = {
  get pc() { return state.pc; },
  get phase() { return state.phase; },
  get peerId() { return state.peerId; },
  get iceRestarts() { return state.iceRestarts; },
  /** track id -> the height (device pixels) last reported to the SFU for it */
  get sizes() { return Object.fromEntries(sizeHints.sent); },
  state,
};

// ------------------------------------------------------------------ phases and banners

function setPhase(phase) {
  state.phase = phase;
  root.dataset.phase = phase;
  const conn = $("#conn-state");
  const [color, text] = {
    connecting: ["bg-amber-400", "Connecting…"], waiting: ["bg-amber-400", "Waiting"],
    live: ["bg-emerald-400", "Live"], reconnecting: ["bg-amber-400", "Reconnecting…"],
    ended: ["bg-slate-500", "Ended"], left: ["bg-slate-500", "Left"], replaced: ["bg-slate-500", "Disconnected"],
    error: ["bg-rose-500", "Not connected"],
  }[phase] || ["bg-slate-500", phase];
  const dot = conn.querySelector("[data-dot]");
  dot.className = `h-2 w-2 rounded-full ${color}`;
  conn.querySelector("[data-text]").textContent = text;
  $("#banner-reconnecting").hidden = phase !== "reconnecting";
  $("#screen-waiting").hidden = phase !== "waiting";
  $("#screen-replaced").hidden = phase !== "replaced";
  $("#screen-error").hidden = phase !== "error";
  $("#screen-ended").hidden = phase !== "ended";
  $("#controls").hidden = phase === "ended";
  setLabel($("#btn-leave"), phase === "waiting" ? "Leave Lobby" : "Leave");
  updateControls();
}

function clearTimers() {
  clearTimeout(state.timer);
  clearTimeout(state.joinTimer);
  state.timer = state.joinTimer = null;
}

// ------------------------------------------------------------------ connecting

async function connect() {
  clearTimers();
  if (TERMINAL.has(state.phase)) return;
  const gen = ++state.generation;
  if (state.phase !== "reconnecting") setPhase("connecting");
  let tok;
  try {
    tok = await api(`/api/rooms/${SID}/token`, { method: "POST" });
  } catch (e) {
    if (gen === state.generation) admissionFailed(e);
    return;
  }
  if (gen !== state.generation || TERMINAL.has(state.phase)) return;
  state.iceServers = Array.isArray(tok.ice_servers) ? tok.ice_servers : [];
  if (ROLE !== "mentor") {
    // A learner can't enter before the mentor opened the room (the socket handshake
    // would be refused with 409 room_not_open): look at the session first.
    const status = await sessionStatus();
    if (gen !== state.generation || TERMINAL.has(state.phase)) return;
    if (status === "scheduled") return waitForMentor();
    if (status === "completed" || status === "cancelled") return showEnded();
  }
  // The token response also set an HttpOnly cookie for this room's socket: no token in the URL.
  const sock = new RoomSocket(tok.signaling_url.split("?")[0], {
    onOpen: () => sock.send({ type: "join" }),
    onMessage: (msg) => onMessage(msg, gen),
    onClose: (info) => onSocketClose(info, gen),
  });
  state.sock = sock;
  state.joinTimer = setTimeout(() => {
    if (gen === state.generation && state.pc?.connectionState !== "connected") {
      scheduleReconnect("The connection did not come up.");
    }
  }, JOIN_TIMEOUT_MS);
}

async function sessionStatus() {
  try {
    return (await api(`/api/sessions/${SID}`))?.status || null;
  } catch {
    return null;
  }
}

function admissionFailed(e) {
  const code = e?.code || "";
  if (e?.status === 409 && (code === "room_closed" || code === "too_late")) return showEnded();
  if (e?.status === 409 && code === "too_early") {
    setPhase("waiting");
    $("#screen-waiting [data-detail]").textContent = e.message || "The room opens 10 minutes before the start.";
    loadLobby();
    state.timer = setTimeout(connect, 15000);
    return;
  }
  if (e?.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    return;
  }
  if (e?.status === 403 || e?.status === 404) {
    setPhase("error");
    $("#screen-error [data-detail]").textContent = e.message;
    return;
  }
  scheduleReconnect(e?.message);
}

let markedReady = false;

function waitForMentor() {
  teardownConnection();
  setPhase("waiting");
  if (!markedReady) {
    // being in the lobby means ready: the mentor's page shows it
    markedReady = true;
    api(`/api/rooms/${SID}/ready`, { method: "POST", body: { ready: true } }).catch(() => {}).finally(loadLobby);
  } else {
    loadLobby();
  }
  const poll = async () => {
    if (state.phase !== "waiting") return;
    const status = await sessionStatus();
    if (state.phase !== "waiting") return;
    if (status === "live") return connect();
    if (status === "completed" || status === "cancelled") return showEnded();
    state.timer = setTimeout(poll, WAIT_POLL_MS);
  };
  state.timer = setTimeout(poll, WAIT_POLL_MS);
}

function onSocketClose({ code, reason }, gen) {
  if (gen !== state.generation || TERMINAL.has(state.phase)) return;
  if (code === CLOSE_REPLACED) return showReplaced();
  if (code === 1000 && /ended/i.test(reason || "")) return showEnded();
  scheduleReconnect();
}

function scheduleReconnect(detail) {
  if (TERMINAL.has(state.phase)) return;
  teardownConnection();
  // The first try comes quickly: a room whose server died is re-placed on a live one at
  // once (api/supervisor.py), so waiting a whole second would only add to the gap.
  const delay = state.attempt === 0 ? FIRST_RETRY_MS : Math.min(BACKOFF_MAX, 1000 * 2 ** (state.attempt - 1));
  state.attempt += 1;
  setPhase("reconnecting");
  const when = delay < 1000 ? "Trying again now." : `Trying again in ${Math.round(delay / 1000)} s.`;
  $("#banner-reconnecting [data-detail]").textContent = detail ? `${detail} ${when}` : when;
  clearTimers();
  state.timer = setTimeout(connect, delay);
}

/** Drop the socket and the peer connection (local camera/mic keep running). */
function teardownConnection() {
  state.generation += 1;
  clearTimeout(state.joinTimer);
  if (state.sock) state.sock.close();
  state.sock = null;
  if (state.pc) {
    try { state.pc.close(); } catch { /* closed */ }
  }
  state.pc = null;
  resetNegotiation(); // after close(): what the old connection still awaits never settles
  state.streamOf.clear();
  state.playout.clear(); // a new join gets the holds in force (before its `joined`)
  state.needReoffer = false;
  state.restartPending = false;
  const L = state.local;
  L.micTx = L.camTx = L.screenTx = null;
  reconcile();
}

function stopLocalMedia() {
  const L = state.local;
  for (const t of [L.mic, L.cam, L.screen]) t?.stop();
}

// ------------------------------------------------------------------ signaling messages

async function onJoined(msg, gen) {
  if (gen !== state.generation) return;
  state.peerId = msg.peer_id;
  state.participants.clear();
  for (const p of msg.participants || []) state.participants.set(p.peer_id, normalizePeer(p));
  setRecording(Boolean(msg.recording));
  setPhase("live");
  const firstJoin = !state.everJoined;
  state.everJoined = true;
  loadChatHistory();
  if (!firstJoin) toast("Reconnected", { kind: "success", timeout: 3000 });
  state.pc = createPeerConnection(gen, scheduleReconnect);
  const pc = state.pc;
  pc.addEventListener("connectionstatechange", () => {
    // up: from here on an outage is room_ice_restart.js's to handle, not the join's
    if (pc.connectionState === "connected" && state.pc === pc) clearTimeout(state.joinTimer);
  });
  sizeHints.reset();
  await sendOffer(gen);
  // a fresh peer starts unmuted on the server: restate what we had muted
  if (state.local.micMuted && state.local.mic) send({ type: "mute", kind: "mic", muted: true });
  if (state.local.camOff && state.local.hasCam) send({ type: "mute", kind: "camera", muted: true });
  renderPeople();
  reconcile();
}

function onMessage(msg, gen) {
  if (gen !== state.generation) return;
  switch (msg.type) {
    case "joined": enqueue(() => onJoined(msg, gen)); break;
    case "answer": enqueue(() => onAnswer(msg, gen)); break;
    case "offer": enqueue(() => onOffer(msg, gen)); break;
    case "tracks": {
      const p = state.participants.get(msg.peer_id);
      if (p) p.tracks = Array.isArray(msg.tracks) ? msg.tracks : [];
      renderPeople();
      reconcile();
      break;
    }
    case "participant-joined":
      if (msg.peer_id !== state.peerId) {
        const known = state.participants.get(msg.peer_id);
        state.participants.set(msg.peer_id, { ...normalizePeer(msg), tracks: known?.tracks || [] });
        if (!known) toast(`${displayName(msg.user)} joined`, { timeout: 3000 });
        renderPeople();
        reconcile();
      }
      break;
    case "participant-left":
      if (state.participants.delete(msg.peer_id)) {
        toast(`${displayName(msg.user)} left`, { timeout: 3000 });
        renderPeople();
        reconcile();
      }
      break;
    case "active-speaker":
      state.speaker = msg.peer_id || null;
      highlightSpeaker();
      break;
    case "chat":
      addChat({
        user_id: msg.user?.user_id ?? null, name: displayName(msg.user),
        text: String(msg.text || ""), at: toMillis(msg.at), mine: msg.from === state.peerId,
      });
      break;
    case "recording":
      setRecording(Boolean(msg.on));
      break;
    case "quality":
      onQuality(msg);
      break;
    case "publish-layers":
      onPublishLayers(msg);
      break;
    case "playout-delay":
      onPlayoutDelay(msg);
      reconcile();
      break;
    case "session-ended":
      showEnded();
      break;
    case "error":
      if (msg.code === "glare") enqueue(() => sendOffer(gen));
      else if (restartRefused(msg.code)) scheduleReconnect("The media connection dropped.");
      else if (msg.code !== "replaced") console.warn("room: server error", msg.code, msg.message);
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------ leaving and ending

$("#btn-leave").addEventListener("click", () => {
  send({ type: "leave" });
  setPhase("left");
  clearTimers();
  teardownConnection();
  stopLocalMedia();
  location.assign(root.dataset.leaveTo);
});

const endDialog = document.getElementById("end-dialog");
$("#btn-end")?.addEventListener("click", () => endDialog.showModal());
endDialog?.addEventListener("close", async () => {
  if (endDialog.returnValue !== "end") return;
  endDialog.returnValue = "";
  try {
    await api(`/api/rooms/${SID}/end`, { method: "POST" });
    showEnded();
  } catch (e) {
    toast(e?.message || "We couldn't end the class.", { kind: "error" });
  }
});

$("#rejoin-here").addEventListener("click", () => {
  state.phase = "connecting";
  state.attempt = 0;
  connect();
});

// ------------------------------------------------------------------ end states

function showEnded() {
  if (state.phase === "ended") return;
  clearTimers();
  teardownConnection();
  stopLocalMedia();
  setPhase("ended");
  loadChatHistory();
}

function showReplaced() {
  clearTimers();
  teardownConnection();
  setPhase("replaced");
}

$("#feedback-form")?.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const rating = Number(new FormData(form).get("rating") || 0);
  const box = form.querySelector("[data-form-error]");
  box.hidden = true;
  try {
    await api("/api/feedback/create", { method: "POST", body: { session_id: SID, rating, comment: form.comment.value } });
    location.assign(root.dataset.dashboard);
  } catch (e) {
    box.textContent = e?.message || "We couldn't save your feedback.";
    box.hidden = false;
  }
});

// Tell the room we're going when the tab closes (the server would notice anyway).
window.addEventListener("pagehide", () => {
  if (state.phase === "live") send({ type: "leave" });
});

// The mentor opening the room shows up on the realtime socket too: don't wait for the next poll.
realtime.on("session.updated", (d) => {
  if (Number(d?.session_id) !== SID) return;
  if (d.status === "live" && state.phase === "waiting") connect();
  if ((d.status === "completed" || d.status === "cancelled") && !TERMINAL.has(state.phase)) showEnded();
});

// ------------------------------------------------------------------ start

async function start() {
  renderChat();
  renderPeople();
  updateControls();
  if (root.dataset.status === "completed" || root.dataset.status === "cancelled") {
    showEnded();
    return;
  }
  realtime.subscribeSession(SID);
  loadChatHistory();
  const media = await getLocalMedia();
  const L = state.local;
  L.stream = media.stream;
  L.mic = media.mic;
  L.cam = media.cam;
  L.hasCam = Boolean(media.cam);
  if (media.problem) {
    const b = $("#banner-media");
    b.textContent = media.problem;
    b.hidden = false;
  }
  updateControls();
  renderPeople();
  reconcile();
  connect();
}

start();
