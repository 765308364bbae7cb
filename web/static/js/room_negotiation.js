// The one RTCPeerConnection to the SFU and its offer/answer exchange (the server is the
// impolite side of glare). Steps run one at a time, in arrival order, through `enqueue`.

import { alignExtmapIds, gatheringDone, withOpusDtx } from "./room_signaling.js";
import { CAMERA_ENCODINGS, SCREEN_ENCODINGS } from "./room_layers.js";
import { send, state } from "./room_state.js";
import { reconcile } from "./room_tiles.js";
import { watchIce } from "./room_ice_restart.js";

let chain = Promise.resolve();
/** Negotiation steps run one at a time, in arrival order. */
export function enqueue(fn) {
  chain = chain.then(fn).catch((e) => console.warn("room: negotiation step failed", e));
  return chain;
}

/**
 * A new connection's steps must not wait behind the old one's. Chromium leaves the promise of
 * an operation in flight when its connection is closed pending for ever (as the spec has it:
 * "abort these steps"), so a rejoin that closed the connection mid-step would otherwise never
 * run its `joined`: the page sat in "Reconnecting…" with no connection (CI, 30 s blackout).
 */
export function resetNegotiation() {
  chain = Promise.resolve();
}

/** A new peer connection for generation `gen`; `onMediaTrouble(detail)` when its media fails or drops. */
export function createPeerConnection(gen, onMediaTrouble) {
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
  // an outage: ICE restart on this connection, a rejoin only if that fails (room_ice_restart.js)
  watchIce(pc, gen, { restart: () => enqueue(() => restartIce(gen)), rejoin: onMediaTrouble });
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

export async function sendOffer(gen) {
  const pc = state.pc;
  if (!pc || gen !== state.generation) return;
  if (pc.signalingState !== "stable") {
    state.needReoffer = true;
    return;
  }
  state.needReoffer = false;
  // a restart offer that had to wait (glare, a pending offer) still restarts: ask again
  if (state.restartPending) pc.restartIce();
  const offer = await pc.createOffer();
  await pc.setLocalDescription({ type: "offer", sdp: withOpusDtx(alignExtmapIds(offer.sdp)) });
  await gatheringDone(pc);
  if (gen !== state.generation) return;
  send({ type: "offer", sdp: pc.localDescription.sdp, sources: sourcesMap() });
}

/** ICE restart: the same connection offers again with fresh ICE credentials. */
export async function restartIce(gen) {
  const pc = state.pc;
  // came back by itself meanwhile (consent resumed): nothing to restart
  if (!pc || gen !== state.generation || pc.connectionState === "connected") return;
  state.iceRestarts += 1;
  state.restartPending = true;
  pc.restartIce();
  await sendOffer(gen);
}

export async function onAnswer(msg, gen) {
  const pc = state.pc;
  if (!pc || gen !== state.generation || pc.signalingState !== "have-local-offer") return;
  await pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
  if (!state.needReoffer) state.restartPending = false; // else the restart is the offer still to come
  reconcile();
  if (state.needReoffer) await sendOffer(gen);
}

export async function onOffer(msg, gen) {
  const pc = state.pc;
  if (!pc || gen !== state.generation) return;
  if (pc.signalingState === "have-local-offer") {
    // Glare: the server is impolite. Roll ours back, answer theirs; `error glare` makes us offer again.
    await pc.setLocalDescription({ type: "rollback" });
    state.needReoffer = true;
  }
  await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
  const answer = await pc.createAnswer();
  await pc.setLocalDescription({ type: "answer", sdp: withOpusDtx(answer.sdp) });
  await gatheringDone(pc, 1500);
  if (gen !== state.generation) return;
  send({ type: "answer", sdp: pc.localDescription.sdp });
  reconcile();
}
