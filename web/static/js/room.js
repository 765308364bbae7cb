// The live room /room/{id}: token → signaling socket → one RTCPeerConnection to the SFU.
//
// Protocol (DESIGN.md §5, sfu/README.md): join → joined; the client offers its tracks
// (camera, mic, screen with `sources`), the server answers; the server offers whenever
// others' tracks come and go, the client answers. `tracks` messages say which mid carries
// which publisher's camera/mic/screen (the remote stream id is the publisher's peer_id).
// The server is the impolite side: a colliding client offer gets `error {code: glare}` —
// we roll back, answer the server, then offer again. Close code 4000 = replaced by a newer
// connection of the same user. Anything else that drops us → fresh token, new
// RTCPeerConnection, exponential backoff (1 s, 2 s, 4 s … 15 s).

import { api, avatarEl, currentUser, h, initials, toast } from "./api.js";
import * as realtime from "./realtime.js";
import { CLOSE_REPLACED, RoomSocket, alignExtmapIds, gatheringDone } from "./room_signaling.js";
import { getCamera, getLocalMedia, getScreen } from "./room_media.js";
import { CAMERA_ENCODINGS, SCREEN_ENCODINGS, VideoSizeHints } from "./room_layers.js";

const root = document.getElementById("room");
const SID = Number(root.dataset.sessionId);
const ROLE = root.dataset.roomRole; // "mentor" | "learner"
const ME = currentUser();
const $ = (sel) => root.querySelector(sel) || document.querySelector(sel);

// the room fills the screen: no room needed for the phone's bottom tabs
document.body.classList.remove("pb-20");

const TERMINAL = new Set(["ended", "left", "replaced", "error"]);
const BACKOFF_MAX = 15000;
const WAIT_POLL_MS = 3000;

const state = {
  phase: "connecting", // connecting | waiting | live | reconnecting | ended | left | replaced | error
  generation: 0,
  attempt: 0,
  timer: null,
  disconnectTimer: null,
  sock: null,
  pc: null,
  peerId: null,
  iceServers: [],
  needReoffer: false,
  participants: new Map(), // peer_id -> {peer_id, user, tracks}
  streamOf: new Map(), // receiving mid -> remote stream id (the publisher's peer_id)
  speaker: null,
  recording: false,
  layout: "gallery",
  local: {
    stream: new MediaStream(), mic: null, cam: null, hasCam: false, screen: null, screenStream: null,
    micMuted: false, camOff: false, micTx: null, camTx: null, screenTx: null,
  },
  chat: [], // {user_id, name, text, at(ms), mine}
  quality: new Map(), // peer_id -> excellent | good | poor | lost (from the server)
  everJoined: false,
};

// Tests (and curious developers) reach the connection through window.__room.
window.__room = {
  get pc() { return state.pc; },
  get phase() { return state.phase; },
  get peerId() { return state.peerId; },
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
  clearTimeout(state.disconnectTimer);
  state.timer = state.disconnectTimer = null;
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
  const delay = Math.min(BACKOFF_MAX, 1000 * 2 ** state.attempt);
  state.attempt += 1;
  setPhase("reconnecting");
  $("#banner-reconnecting [data-detail]").textContent =
    detail ? `${detail} Trying again in ${Math.round(delay / 1000)} s.` : `Trying again in ${Math.round(delay / 1000)} s.`;
  clearTimers();
  state.timer = setTimeout(connect, delay);
}

/** Drop the socket and the peer connection (local camera/mic keep running). */
function teardownConnection() {
  state.generation += 1;
  clearTimeout(state.disconnectTimer);
  if (state.sock) state.sock.close();
  state.sock = null;
  if (state.pc) {
    try { state.pc.close(); } catch { /* closed */ }
  }
  state.pc = null;
  state.streamOf.clear();
  state.needReoffer = false;
  const L = state.local;
  L.micTx = L.camTx = L.screenTx = null;
  reconcile();
}

function stopLocalMedia() {
  const L = state.local;
  for (const t of [L.mic, L.cam, L.screen]) t?.stop();
}

// ------------------------------------------------------------------ lobby

// While waiting: the mentor and the booked learners (a learner sees the mentor, themself and
// how many others are ready) with their Ready status; `ready` messages on the session channel
// refresh it live.
const lobby = { session: null, status: null, seq: 0 };

async function loadLobby() {
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

// ------------------------------------------------------------------ negotiation

let chain = Promise.resolve();
/** Negotiation steps run one at a time, in arrival order. */
function enqueue(fn) {
  chain = chain.then(fn).catch((e) => console.warn("room: negotiation step failed", e));
  return chain;
}

function send(msg) {
  return state.sock?.send(msg) || false;
}

function createPeerConnection(gen) {
  const pc = new RTCPeerConnection({ iceServers: state.iceServers, bundlePolicy: "max-bundle" });
  pc.addEventListener("track", (ev) => {
    if (gen !== state.generation) return;
    const mid = ev.transceiver?.mid;
    const sid = ev.streams?.[0]?.id;
    if (mid && sid) state.streamOf.set(mid, sid);
    ev.track.addEventListener("unmute", reconcile);
    ev.track.addEventListener("ended", reconcile);
    reconcile();
  });
  pc.addEventListener("connectionstatechange", () => {
    if (gen !== state.generation) return;
    const s = pc.connectionState;
    if (s === "connected") {
      clearTimeout(state.disconnectTimer);
      state.attempt = 0;
    } else if (s === "failed") {
      scheduleReconnect("The media connection failed.");
    } else if (s === "disconnected") {
      clearTimeout(state.disconnectTimer);
      state.disconnectTimer = setTimeout(() => {
        if (gen === state.generation && ["disconnected", "failed"].includes(pc.connectionState)) {
          scheduleReconnect("The media connection dropped.");
        }
      }, 4000);
    }
  });
  const L = state.local;
  if (L.mic) L.micTx = pc.addTransceiver(L.mic, { direction: "sendonly", streams: [L.stream] });
  if (L.hasCam) L.camTx = pc.addTransceiver(L.cam || "video", { direction: "sendonly", streams: [L.stream], sendEncodings: CAMERA_ENCODINGS });
  if (L.screen) L.screenTx = pc.addTransceiver(L.screen, { direction: "sendonly", streams: [L.screenStream], sendEncodings: SCREEN_ENCODINGS });
  if (!L.micTx && !L.camTx && !L.screenTx) pc.addTransceiver("audio", { direction: "recvonly" });
  return pc;
}

/** Which of our sending m-lines (by mid and by track id) carry camera, mic and screen. */
function sourcesMap() {
  const L = state.local;
  const out = {};
  for (const [tx, source] of [[L.camTx, "camera"], [L.micTx, "mic"], [L.screenTx, "screen"]]) {
    if (!tx) continue;
    if (tx.mid) out[tx.mid] = source;
    if (tx.sender?.track) out[tx.sender.track.id] = source;
  }
  return out;
}

async function sendOffer(gen) {
  const pc = state.pc;
  if (!pc || gen !== state.generation) return;
  if (pc.signalingState !== "stable") {
    state.needReoffer = true;
    return;
  }
  state.needReoffer = false;
  const offer = await pc.createOffer();
  await pc.setLocalDescription({ type: "offer", sdp: alignExtmapIds(offer.sdp) });
  await gatheringDone(pc);
  if (gen !== state.generation) return;
  send({ type: "offer", sdp: pc.localDescription.sdp, sources: sourcesMap() });
}

async function onAnswer(msg, gen) {
  const pc = state.pc;
  if (!pc || gen !== state.generation || pc.signalingState !== "have-local-offer") return;
  await pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
  reconcile();
  if (state.needReoffer) await sendOffer(gen);
}

async function onOffer(msg, gen) {
  const pc = state.pc;
  if (!pc || gen !== state.generation) return;
  if (pc.signalingState === "have-local-offer") {
    // Glare: the server is impolite. Roll ours back, answer theirs; `error glare` makes us offer again.
    await pc.setLocalDescription({ type: "rollback" });
    state.needReoffer = true;
  }
  await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  await gatheringDone(pc, 1500);
  if (gen !== state.generation) return;
  send({ type: "answer", sdp: pc.localDescription.sdp });
  reconcile();
}

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
  state.pc = createPeerConnection(gen);
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
    case "session-ended":
      showEnded();
      break;
    case "error":
      if (msg.code === "glare") enqueue(() => sendOffer(gen));
      else if (msg.code !== "replaced") console.warn("room: server error", msg.code, msg.message);
      break;
    default:
      break;
  }
}

function normalizePeer(p) {
  return { peer_id: p.peer_id, user: p.user || {}, tracks: Array.isArray(p.tracks) ? p.tracks : [] };
}

function displayName(user) {
  return user?.display_name || "Someone";
}

function toMillis(at) {
  if (typeof at === "number") return at < 1e12 ? at * 1000 : at;
  const t = Date.parse(at || "");
  return Number.isNaN(t) ? Date.now() : t;
}

// ------------------------------------------------------------------ tiles

const grid = $("#video-grid");
const tiles = new Map(); // key -> {el, video, ids}

const MIC_OFF_SVG = '<svg viewBox="0 0 24 24" class="h-3.5 w-3.5" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3M3 3l18 18"/></svg>';

function makeTile(key, { local, screen }) {
  const video = h("video", {
    class: `h-full w-full ${screen ? "object-contain" : "object-cover"}${local && !screen ? " -scale-x-100" : ""}`,
    autoplay: true, playsinline: true,
  });
  video.muted = local; // never play our own microphone back
  video.autoplay = true;
  video.playsInline = true;
  const initial = h("span", { class: "flex h-16 w-16 items-center justify-center rounded-full bg-brand-600 text-2xl font-bold text-white sm:h-20 sm:w-20", "aria-hidden": "true" });
  const placeholder = h("div", { class: "absolute inset-0 flex flex-col items-center justify-center gap-2 bg-slate-800", "data-placeholder": "" },
    initial, h("span", { class: "text-xs text-slate-400", "data-cam-text": "" }));
  const name = h("span", { class: "truncate", "data-name": "" });
  const mic = h("span", { class: "inline-flex items-center gap-1 rounded bg-rose-600 px-1.5 py-0.5 text-[11px] font-semibold text-white", "data-mic-badge": "", hidden: true });
  mic.innerHTML = `${MIC_OFF_SVG}<span>Muted</span>`;
  const quality = h("span", { class: "ml-auto h-2.5 w-2.5 shrink-0 rounded-full bg-slate-500", "data-quality": "", hidden: true });
  const caption = h("figcaption", { class: "absolute inset-x-2 bottom-2 flex items-center gap-2 text-xs" },
    h("span", { class: "inline-flex min-w-0 items-center gap-1.5 rounded-md bg-black/60 px-2 py-1 text-white" }, name, mic), quality);
  const el = h("figure", {
    class: "relative aspect-video overflow-hidden rounded-xl bg-slate-800 ring-2 ring-transparent transition-shadow",
    "data-tile": key, "data-testid": "video-tile",
  }, video, placeholder, caption);
  el._parts = { video, placeholder, initial, name, mic, quality };
  return { el, video, ids: "" };
}

function playVideo(video) {
  const p = video.play();
  if (p && p.catch) {
    p.catch((e) => {
      if (e?.name === "NotAllowedError" && !video.muted) {
        // autoplay with sound was refused: play muted and offer a button
        video.muted = true;
        video.dataset.wantsAudio = "1";
        $("#banner-audio").hidden = false;
        video.play().catch(() => {});
      }
    });
  }
}

function receivingTransceivers() {
  const pc = state.pc;
  if (!pc) return [];
  return pc.getTransceivers().filter((t) => t.mid && t.receiver?.track &&
    (t.currentDirection === "recvonly" || t.currentDirection === "sendrecv"));
}

/** Who publishes what arrives on this mid: the `tracks` messages, else the stream id. */
function ownerOf(transceiver) {
  const mid = transceiver.mid;
  for (const p of state.participants.values()) {
    const t = p.tracks.find((x) => x.mid === mid);
    if (t) return { peer_id: p.peer_id, source: t.source, muted: Boolean(t.muted) };
  }
  const sid = state.streamOf.get(mid);
  const p = sid && state.participants.get(sid);
  const kind = transceiver.receiver.track.kind;
  if (p && p.tracks.some((x) => x.kind === kind && !x.mid)) {
    return { peer_id: p.peer_id, source: kind === "audio" ? "mic" : "camera", muted: false };
  }
  return null;
}

function trackOf(p, source) {
  return p.tracks.find((t) => t.source === source);
}

/** Bring the tiles in line with participants, their tracks and our receivers. */
function reconcile() {
  const want = new Map();
  const L = state.local;
  const meName = "You";
  // others: screens first, then the mentor, then learners
  const peers = [...state.participants.values()].sort((a, b) =>
    (a.user.role === "mentor" ? 0 : 1) - (b.user.role === "mentor" ? 0 : 1));
  for (const p of peers) {
    const screen = trackOf(p, "screen");
    if (screen && !screen.muted) {
      want.set(`${p.peer_id}:screen`, { peer: p, screen: true, name: `${displayName(p.user)} (screen)`, video: null, audio: null });
    }
  }
  for (const p of peers) {
    const cam = trackOf(p, "camera");
    const mic = trackOf(p, "mic");
    want.set(`${p.peer_id}:camera`, {
      peer: p, screen: false, name: displayName(p.user), video: null, audio: null,
      camOff: !cam || cam.muted, micMuted: Boolean(mic?.muted), noMic: !mic,
    });
  }
  for (const t of receivingTransceivers()) {
    const owner = ownerOf(t);
    if (!owner) continue;
    const slot = want.get(`${owner.peer_id}:${owner.source === "screen" ? "screen" : "camera"}`);
    if (!slot) continue;
    if (t.receiver.track.kind === "video") slot.video = t.receiver.track;
    else slot.audio = t.receiver.track;
  }
  if (L.screen) want.set("local:screen", { local: true, screen: true, name: "Your screen", video: L.screen, audio: null });
  want.set("local:camera", {
    local: true, screen: false, name: meName, video: L.camOff ? null : L.cam, audio: null,
    camOff: L.camOff || !L.cam, micMuted: L.micMuted, noMic: !L.mic,
  });

  for (const [key, t] of tiles) {
    if (!want.has(key)) {
      t.el.remove();
      tiles.delete(key);
    }
  }
  let order = 0;
  for (const [key, w] of want) {
    let t = tiles.get(key);
    if (!t) {
      t = makeTile(key, { local: Boolean(w.local), screen: w.screen });
      tiles.set(key, t);
    }
    const el = t.el;
    el.style.order = String(order++);
    if (el.parentNode !== grid) grid.append(el);
    const parts = el._parts;
    el.dataset.peerId = w.local ? (state.peerId || "local") : w.peer.peer_id;
    el.dataset.role = w.local ? ROLE : (w.peer.user.role || "");
    el.dataset.source = w.screen ? "screen" : "camera";
    el.dataset.local = w.local ? "true" : "false";
    parts.name.textContent = w.local && !w.screen ? `${meName}${ROLE === "mentor" ? " (Mentor)" : ""}`
      : w.peer && w.peer.user.role === "mentor" && !w.screen ? `${w.name} (Mentor)` : w.name;
    el.setAttribute("aria-label", w.name);
    parts.initial.textContent = initials(w.local ? (root.dataset.userName || ROLE) : w.name);
    parts.mic.hidden = !w.micMuted;
    el.dataset.mic = w.micMuted ? "muted" : w.noMic ? "none" : "on";
    el.dataset.camera = w.camOff ? "off" : "on";
    const showVideo = Boolean(w.video) && !w.camOff;
    parts.placeholder.hidden = showVideo;
    parts.placeholder.querySelector("[data-cam-text]").textContent = w.camOff && !w.screen ? "Camera off" : "";
    const tracks = [w.video, w.audio].filter(Boolean);
    const ids = tracks.map((x) => x.id).join(",");
    if (ids !== t.ids) {
      t.ids = ids;
      t.video.srcObject = tracks.length ? new MediaStream(tracks) : null;
      if (tracks.length) playVideo(t.video);
    }
  }
  layoutGrid();
  highlightSpeaker();
  renderQuality();
}

function layoutGrid() {
  const n = tiles.size;
  grid.dataset.count = String(n);
  grid.dataset.layout = state.layout;
  let cls;
  if (state.layout === "speaker" && n > 1) {
    cls = "grid grid-cols-2 gap-2 sm:grid-cols-4 sm:gap-3";
  } else if (n <= 1) {
    cls = "mx-auto grid max-w-4xl grid-cols-1 gap-2 sm:gap-3";
  } else if (n === 2) {
    cls = "grid grid-cols-1 gap-2 sm:grid-cols-2 sm:gap-3";
  } else if (n <= 4) {
    cls = "grid grid-cols-1 gap-2 min-[480px]:grid-cols-2 sm:gap-3";
  } else {
    cls = "grid grid-cols-1 gap-2 min-[480px]:grid-cols-2 sm:gap-3 lg:grid-cols-3";
  }
  grid.className = cls;
  const featured = state.layout === "speaker" ? featuredKey() : null;
  for (const [key, t] of tiles) {
    t.el.classList.toggle("col-span-full", key === featured);
    if (key === featured) t.el.style.order = "-1";
  }
}

function featuredKey() {
  for (const key of tiles.keys()) if (key.endsWith(":screen") && !key.startsWith("local")) return key;
  if (state.speaker && state.speaker !== state.peerId && tiles.has(`${state.speaker}:camera`)) return `${state.speaker}:camera`;
  const mentor = [...state.participants.values()].find((p) => p.user.role === "mentor");
  if (mentor) return `${mentor.peer_id}:camera`;
  for (const key of tiles.keys()) if (!key.startsWith("local")) return key;
  return "local:camera";
}

function highlightSpeaker() {
  for (const [key, t] of tiles) {
    const peer = key.startsWith("local") ? state.peerId : key.split(":")[0];
    const on = Boolean(state.speaker) && peer === state.speaker && key.endsWith(":camera");
    t.el.classList.toggle("ring-emerald-400", on);
    t.el.classList.toggle("ring-transparent", !on);
    t.el.dataset.speaking = on ? "true" : "false";
  }
  root.querySelectorAll("#participants [data-peer]").forEach((li) => {
    li.dataset.speaking = li.dataset.peer === state.speaker ? "true" : "false";
  });
  if (state.layout === "speaker") {
    const featured = featuredKey();
    for (const [key, t] of tiles) t.el.classList.toggle("col-span-full", key === featured);
  }
}

// ------------------------------------------------------------------ network quality

// The server scores every participant's connection (loss both ways, jitter, round trip,
// whether their media arrives) and says so with `quality` messages: each tile shows it.
function onQuality(msg) {
  if (!msg.peer_id || !msg.quality) return;
  state.quality.set(msg.peer_id, msg.quality);
  renderQuality();
}

function renderQuality() {
  const colors = { excellent: "bg-emerald-400", good: "bg-emerald-600", poor: "bg-amber-400", lost: "bg-rose-500" };
  for (const [key, t] of tiles) {
    const dot = t.el._parts.quality;
    const q = state.quality.get(key.startsWith("local") ? state.peerId : key.split(":")[0]);
    dot.hidden = !q;
    if (q) {
      dot.className = `ml-auto h-2.5 w-2.5 shrink-0 rounded-full ${colors[q]}`;
      dot.title = `Network: ${q}`;
      dot.setAttribute("aria-label", `Network: ${q}`);
      dot.setAttribute("role", "img");
      t.el.dataset.quality = q;
    }
  }
}


// ------------------------------------------------------------------ video sizes (simulcast layers)

const sizeHints = new VideoSizeHints((m) => send(m));

/** [track id, shown height in device pixels] of every remote video tile. */
function remoteVideoSizes() {
  const out = [];
  const dpr = window.devicePixelRatio || 1;
  for (const [key, t] of tiles) {
    if (key.startsWith("local")) continue;
    const [peerId, slot] = key.split(":");
    const p = state.participants.get(peerId);
    const track = p && trackOf(p, slot === "screen" ? "screen" : "camera");
    if (track?.id && track.mid != null) out.push([track.id, Math.round(t.el.clientHeight * dpr)]);
  }
  return out;
}

setInterval(() => { if (state.phase === "live") sizeHints.update(remoteVideoSizes()); }, 1000);

// ------------------------------------------------------------------ participants

function renderPeople() {
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

async function loadChatHistory() {
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

function addChat(m) {
  state.chat.push({ ...m, live: true });
  renderChat();
  const side = $("#side");
  if (getComputedStyle(side).display === "none" || $("#panel-chat").hidden) $("#chat-unread").hidden = false;
}

function renderChat() {
  const log = $("#chat-log");
  const fmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  if (!state.chat.length) {
    log.replaceChildren(h("li", { class: "text-slate-400", "data-empty": "", text: "No messages yet. Say hello!" }));
    return;
  }
  log.replaceChildren(...state.chat.map((m) => h("li", { class: "rounded-lg bg-slate-800/70 px-3 py-2", dataset: { mine: m.mine ? "true" : "false" } },
    h("div", { class: "flex items-baseline gap-2 text-xs text-slate-400" },
      h("span", { class: `font-semibold ${m.mine ? "text-brand-300" : "text-slate-200"}`, text: m.mine ? "You" : m.name }),
      h("time", { datetime: new Date(m.at).toISOString(), text: fmt.format(new Date(m.at)) })),
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

// ------------------------------------------------------------------ controls

function setLabel(btn, text, pressed) {
  if (!btn) return;
  btn.querySelector("[data-label]").textContent = text;
  if (pressed !== undefined) btn.setAttribute("aria-pressed", pressed ? "true" : "false");
}

function updateControls() {
  const L = state.local;
  const live = state.phase === "live";
  const mic = $("#btn-mic");
  setLabel(mic, L.micMuted ? "Unmute" : "Mute", L.micMuted);
  mic.disabled = !L.mic;
  mic.title = L.mic ? "" : "No microphone";
  const cam = $("#btn-cam");
  setLabel(cam, L.camOff ? "Camera On" : "Camera Off", L.camOff);
  cam.disabled = !L.hasCam;
  cam.title = L.hasCam ? "" : "No camera";
  const scr = $("#btn-screen");
  setLabel(scr, L.screen ? "Stop Sharing" : "Share Screen", Boolean(L.screen));
  scr.disabled = !live || !navigator.mediaDevices?.getDisplayMedia;
  const rec = $("#btn-record");
  if (rec) {
    setLabel(rec, state.recording ? "Stop recording" : "Record", state.recording);
    rec.disabled = !live;
  }
  const end = $("#btn-end");
  if (end) end.disabled = TERMINAL.has(state.phase);
}

$("#btn-mic").addEventListener("click", () => {
  const L = state.local;
  if (!L.mic) return;
  L.micMuted = !L.micMuted;
  L.mic.enabled = !L.micMuted;
  send({ type: "mute", kind: "mic", muted: L.micMuted });
  updateControls();
  renderPeople();
  reconcile();
});

$("#btn-cam").addEventListener("click", async () => {
  const L = state.local;
  if (!L.hasCam) return;
  const btn = $("#btn-cam");
  btn.disabled = true;
  try {
    if (!L.camOff) {
      L.camOff = true;
      send({ type: "mute", kind: "camera", muted: true });
      const old = L.cam;
      L.cam = null;
      if (L.camTx) await L.camTx.sender.replaceTrack(null);
      if (old) { L.stream.removeTrack(old); old.stop(); } // the camera light goes off
    } else {
      const track = await getCamera();
      L.cam = track;
      L.stream.addTrack(track);
      if (L.camTx) await L.camTx.sender.replaceTrack(track);
      L.camOff = false;
      send({ type: "mute", kind: "camera", muted: false });
    }
  } catch (e) {
    toast(`We couldn't turn the camera on: ${e?.message || e}`, { kind: "error" });
  } finally {
    updateControls();
    renderPeople();
    reconcile();
  }
});

$("#btn-screen").addEventListener("click", async () => {
  if (state.local.screen) return stopSharing();
  let track;
  try {
    track = await getScreen();
  } catch (e) {
    toast(e?.message || "Screen sharing failed.", { kind: "error" });
    return;
  }
  if (!track) return;
  const L = state.local;
  L.screen = track;
  L.screenStream = new MediaStream([track]);
  track.addEventListener("ended", () => { if (state.local.screen === track) stopSharing(); });
  const gen = state.generation;
  enqueue(async () => {
    const pc = state.pc;
    if (!pc || gen !== state.generation) return; // a reconnect picks the screen up itself
    if (L.screenTx && L.screenTx.currentDirection !== "stopped") {
      await L.screenTx.sender.replaceTrack(track);
      L.screenTx.sender.setStreams?.(L.screenStream);
      L.screenTx.direction = "sendonly";
    } else {
      L.screenTx = pc.addTransceiver(track, { direction: "sendonly", streams: [L.screenStream], sendEncodings: SCREEN_ENCODINGS });
    }
    await sendOffer(gen);
  });
  updateControls();
  reconcile();
});

function stopSharing() {
  const L = state.local;
  const track = L.screen;
  L.screen = null;
  L.screenStream = null;
  track?.stop();
  const gen = state.generation;
  enqueue(async () => {
    if (!state.pc || gen !== state.generation || !L.screenTx) return;
    await L.screenTx.sender.replaceTrack(null);
    L.screenTx.direction = "inactive";
    await sendOffer(gen);
  });
  updateControls();
  reconcile();
}

function setRecording(on) {
  state.recording = on;
  $("#rec-indicator").hidden = !on;
  updateControls();
}

$("#btn-record")?.addEventListener("click", async () => {
  const btn = $("#btn-record");
  btn.disabled = true;
  const action = state.recording ? "stop" : "start";
  try {
    const out = await api(`/api/rooms/${SID}/recording`, { method: "POST", body: { action } });
    if (out && typeof out.on === "boolean") setRecording(out.on);
    else if (out && typeof out.recording === "boolean") setRecording(out.recording);
  } catch (e) {
    if (e?.status === 404 || e?.status === 405) toast("Recording isn't available yet.", { kind: "error" });
    else toast(e?.message || "Recording failed.", { kind: "error" });
  } finally {
    updateControls();
  }
});

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

$("#enable-audio").addEventListener("click", () => {
  root.querySelectorAll("video[data-wants-audio]").forEach((v) => {
    v.muted = false;
    delete v.dataset.wantsAudio;
    v.play().catch(() => {});
  });
  $("#banner-audio").hidden = true;
});

// layout: Gallery | Speaker
root.querySelectorAll("[data-layout]").forEach((btn) => {
  if (btn === grid) return;
  btn.addEventListener("click", () => {
    state.layout = btn.dataset.layout;
    root.querySelectorAll("button[data-layout]").forEach((b) => {
      const on = b.dataset.layout === state.layout;
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.classList.toggle("bg-slate-600", on);
    });
    layoutGrid();
  });
});
root.querySelector('button[data-layout="gallery"]')?.classList.add("bg-slate-600");

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
