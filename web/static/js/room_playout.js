// How long to hold each remote video before showing it (the server's `playout-delay`).
//
// A packet lost on a publisher's uplink comes back from the SFU one upstream round trip later;
// our jitter buffer only knows our own short link to the SFU, so a frame waiting for that repair
// would be late and the frames behind it dropped (a visibly choppy picture). While the server
// repairs a publisher's video it tells us how long a repair takes (sfu/room/playout.py), and the
// receiver holds that video as long: smooth and a little later, rather than on time and choppy.
// 0 gives the receiver back its own target. Browsers without `jitterBufferTarget` keep theirs.

import { state } from "./room_state.js";

const SUPPORTED = typeof RTCRtpReceiver !== "undefined" && "jitterBufferTarget" in RTCRtpReceiver.prototype;

/** The server's `playout-delay` {peer_id, source, delay_ms}. */
export function onPlayoutDelay(msg) {
  const ms = Number(msg.delay_ms);
  if (!msg.peer_id || !msg.source || !Number.isFinite(ms) || ms < 0) return;
  const key = `${msg.peer_id}:${msg.source}`;
  if (ms > 0) state.playout.set(key, Math.min(ms, 4000));
  else state.playout.delete(key);
}

/** Apply the holds in force to each receiving transceiver (`ownerOf(t)`: {peer_id, source}). */
export function applyPlayout(transceivers, ownerOf) {
  if (!SUPPORTED) return;
  for (const t of transceivers) {
    if (t.receiver.track.kind !== "video") continue;
    const owner = ownerOf(t);
    const ms = owner ? state.playout.get(`${owner.peer_id}:${owner.source}`) ?? null : null;
    try {
      if (t.receiver.jitterBufferTarget !== ms) t.receiver.jitterBufferTarget = ms;
    } catch { /* out of the browser's range: keep its own */ }
  }
}
