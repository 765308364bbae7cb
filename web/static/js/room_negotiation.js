// The one RTCPeerConnection to the SFU and its offer/answer exchange (the server is the
// impolite side of glare). Steps run one at a time, in arrival order, through `enqueue`.

import { alignExtmapIds, gatheringDone, withOpusDtx } from "./room_signaling.js";
import { CAMERA_ENCODINGS, SCREEN_ENCODINGS } from "./room_layers.js";
import { send, state } from "./room_state.js";
import { reconcile } from "./room_tiles.js";

let chain = Promise.resolve();
/** Negotiation steps run one at a time, in arrival order. */
export function enqueue(fn) {
  chain = chain.then(fn).catch((e) => console.warn("room: negotiation step failed", e));
  return chain;
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
  pc.addEventListener("connectionstatechange", () => {
    if (gen !== state.generation) return;
    const s = pc.connectionState;
    if (s === "connected") {
      clearTimeout(state.disconnectTimer);
      state.attempt = 0;
    } else if (s === "failed") {
      onMediaTrouble("The media connection failed.");
    } else if (s === "disconnected") {
      clearTimeout(state.disconnectTimer);
      state.disconnectTimer = setTimeout(() => {
        if (gen === state.generation && ["disconnected", "failed"].includes(pc.connectionState)) {
          onMediaTrouble("The media connection dropped.");
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

export async function sendOffer(gen) {
  const pc = state.pc;
  if (!pc || gen !== state.generation) return;
  if (pc.signalingState !== "stable") {
    state.needReoffer = true;
    return;
  }
  state.needReoffer = false;
  const offer = await pc.createOffer();
  await pc.setLocalDescription({ type: "offer", sdp: withOpusDtx(alignExtmapIds(offer.sdp)) });
  await gatheringDone(pc);
  if (gen !== state.generation) return;
  send({ type: "offer", sdp: pc.localDescription.sdp, sources: sourcesMap() });
}

export async function onAnswer(msg, gen) {
  const pc = state.pc;
  if (!pc || gen !== state.generation || pc.signalingState !== "have-local-offer") return;
  await pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
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
