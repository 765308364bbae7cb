// What every part of the room page shares: the page's own element and ids, the one `state`
// object (phase, socket, peer connection, participants, local media, chat), and small helpers
// over it. Nothing here touches the network but `send`.

import { currentUser } from "./api.js";

export const root = document.getElementById("room");
export const SID = Number(root.dataset.sessionId);
export const ROLE = root.dataset.roomRole; // "mentor" | "learner"
export const ME = currentUser();
export const $ = (sel) => root.querySelector(sel) || document.querySelector(sel);

export const TERMINAL = new Set(["ended", "left", "replaced", "error"]);

export const state = {
  phase: "connecting", // connecting | waiting | live | reconnecting | ended | left | replaced | error
  generation: 0,
  attempt: 0,
  timer: null,
  joinTimer: null, // a join that never comes up (room.js)
  sock: null,
  pc: null,
  peerId: null,
  iceServers: [],
  needReoffer: false,
  iceRestarts: 0, // ICE restarts this page asked for (room_ice_restart.js)
  restartPending: false, // our restart offer awaits its answer
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
  playout: new Map(), // "peer_id:source" -> ms to hold that video (room_playout.js)
  everJoined: false,
};

export function send(msg) {
  return state.sock?.send(msg) || false;
}

export function normalizePeer(p) {
  return { peer_id: p.peer_id, user: p.user || {}, tracks: Array.isArray(p.tracks) ? p.tracks : [] };
}

export function displayName(user) {
  return user?.display_name || "Someone";
}

export function toMillis(at) {
  if (typeof at === "number") return at < 1e12 ? at * 1000 : at;
  const t = Date.parse(at || "");
  return Number.isNaN(t) ? Date.now() : t;
}

export function trackOf(p, source) {
  return p.tracks.find((t) => t.source === source);
}
