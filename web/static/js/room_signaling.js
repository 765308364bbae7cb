// The room signaling socket (docs/architecture.md, sfu/README.md): one JSON object per
// frame with a `type`. Server messages carry their fields at the top level and mirrored
// under `data`; `normalize` merges both so handlers read `msg.sdp`, `msg.peer_id` ...

export const CLOSE_REPLACED = 4000;

export function normalize(raw) {
  if (!raw || typeof raw !== "object") return null;
  const data = raw.data && typeof raw.data === "object" ? raw.data : {};
  return { ...data, ...raw, type: raw.type };
}

/**
 * Open `url` and report through callbacks:
 *   onOpen(), onMessage(msg), onClose({code, reason, opened}).
 * `close()` detaches the callbacks first, so a socket we abandon never reports.
 */
export class RoomSocket {
  constructor(url, { onOpen, onMessage, onClose }) {
    this.opened = false;
    this.handlers = { onOpen, onMessage, onClose };
    this.ws = new WebSocket(url);
    this.ws.addEventListener("open", () => {
      this.opened = true;
      this.handlers?.onOpen?.();
    });
    this.ws.addEventListener("message", (ev) => {
      let msg;
      try { msg = normalize(JSON.parse(ev.data)); } catch { return; }
      if (msg && typeof msg.type === "string") this.handlers?.onMessage?.(msg);
    });
    this.ws.addEventListener("close", (ev) => {
      const h = this.handlers;
      this.handlers = null;
      h?.onClose?.({ code: ev.code, reason: ev.reason, opened: this.opened });
    });
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(msg) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** Close without reporting (we chose to). */
  close(code = 1000, reason = "bye") {
    this.handlers = null;
    try { this.ws.close(code, reason); } catch { /* already closed */ }
  }
}

/** Resolve when ICE gathering completes or after `ms` (the server takes no trickled candidates). */
export function gatheringDone(pc, ms = 2500) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, ms);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// The SFU (aiortc) writes its own header-extension ids into every offer it makes:
// sdes:mid=1, ssrc-audio-level=2, abs-send-time=3. Under BUNDLE an id may not change
// meaning once negotiated, so we offer ours with exactly those ids (and move any other
// extension out of their way); then the server's re-offers never collide with ours.
const SERVER_EXT_IDS = {
  "urn:ietf:params:rtp-hdrext:sdes:mid": 1,
  "urn:ietf:params:rtp-hdrext:ssrc-audio-level": 2,
  "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time": 3,
};
const EXTMAP = /^a=extmap:(\d+)(\/[a-z]+)?\s+(\S+)(.*)$/;

export function alignExtmapIds(sdp) {
  const lines = sdp.split("\r\n");
  const byUri = new Map();
  for (const line of lines) {
    const m = EXTMAP.exec(line);
    if (m && !byUri.has(m[3])) byUri.set(m[3], Number(m[1]));
  }
  const used = new Set(Object.values(SERVER_EXT_IDS));
  const target = new Map();
  for (const uri of byUri.keys()) {
    if (uri in SERVER_EXT_IDS) target.set(uri, SERVER_EXT_IDS[uri]);
  }
  for (const [uri, id] of byUri) {
    if (target.has(uri)) continue;
    if (!used.has(id)) { target.set(uri, id); used.add(id); }
  }
  let next = 4;
  for (const uri of byUri.keys()) {
    if (target.has(uri)) continue;
    while (used.has(next) || next === 15) next++;
    target.set(uri, next);
    used.add(next);
  }
  return lines.map((line) => {
    const m = EXTMAP.exec(line);
    return m ? `a=extmap:${target.get(m[3])}${m[2] || ""} ${m[3]}${m[4]}` : line;
  }).join("\r\n");
}

/**
 * `sdp` with `usedtx=1` on every Opus payload type: this page asks for discontinuous
 * transmission of the audio it receives (RFC 7587 6.1), as the SFU asks of the page for what
 * it sends (its answers carry `usedtx=1` too): a silent participant costs a packet every 400 ms.
 */
export function withOpusDtx(sdp) {
  const opus = new Set();
  for (const m of sdp.matchAll(/^a=rtpmap:(\d+) opus\/48000/gim)) opus.add(m[1]);
  return sdp
    .split("\r\n")
    .map((line) => {
      const m = line.match(/^a=fmtp:(\d+) (.*)$/);
      if (!m || !opus.has(m[1]) || /(^|;)\s*usedtx=/.test(m[2])) return line;
      return `${line};usedtx=1`;
    })
    .join("\r\n");
}
