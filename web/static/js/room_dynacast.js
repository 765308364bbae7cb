// Dynacast, the publisher's side: the SFU says which simulcast layers of our camera anyone
// watches (`publish-layers` {track_id, mid, source, layers: {rid: active}}, sent to us alone),
// and we stop encoding the others: `RTCRtpSender.setParameters` with `encodings[i].active`,
// no renegotiation. A class of five watching the gallery then encodes no 720p at all.

import { state } from "./room_state.js";

let chain = Promise.resolve();
let latest = null; // {sender, layers}: what the SFU asked for last (a retry applies this)

/** The camera sender the message is about: ours, on that mid (anything else is ignored). */
function senderFor(msg) {
  const tx = state.local.camTx;
  if (!tx || !tx.sender || msg.source !== "camera" || (tx.mid != null && msg.mid !== tx.mid)) return null;
  return tx.sender;
}

/**
 * Apply one `publish-layers` message; calls run one at a time, each on fresh parameters. A
 * browser may refuse while an offer/answer is being applied: then again shortly, with the
 * newest request (an older one retried late must not undo it).
 */
export function onPublishLayers(msg) {
  const sender = senderFor(msg);
  const layers = msg.layers;
  if (!sender || !layers || typeof layers !== "object") return chain;
  latest = { sender, layers };
  return run(0);
}

function run(attempt) {
  chain = chain.then(() => apply(latest)).catch((e) => {
    if (attempt < 3) setTimeout(() => run(attempt + 1), 300);
    else console.warn("room: publish-layers failed", e);
  });
  return chain;
}

async function apply(want) {
  if (!want || want.sender !== state.local.camTx?.sender) return; // a new connection since
  const params = want.sender.getParameters();
  const encodings = params.encodings || [];
  let changed = false;
  encodings.forEach((enc, i) => {
    const active = want.layers[enc.rid];
    // the lowest layer always goes out: a newcomer needs a picture at once
    if (typeof active !== "boolean" || i === 0 || enc.active === active) return;
    enc.active = active;
    changed = true;
  });
  if (changed) await want.sender.setParameters(params);
}
