// The video tiles: one per participant's camera and per screen share, kept in line with the
// participants, their tracks and our receivers (`reconcile`); gallery and speaker layouts,
// the active speaker, each connection's quality, and the size each remote video is shown at
// (the SFU picks the simulcast layer from it).

import { h, initials } from "./api.js";
import { VideoSizeHints } from "./room_layers.js";
import { applyPlayout } from "./room_playout.js";
import { CAMERA_ASPECT, layoutStage, shownHeight } from "./room_stage.js";
import { $, ROLE, displayName, root, send, state, trackOf } from "./room_state.js";

const grid = $("#video-grid");
const tiles = new Map(); // key -> {el, video, ids}

const MIC_OFF_SVG = '<svg viewBox="0 0 24 24" class="h-3.5 w-3.5" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3M3 3l18 18"/></svg>';

function makeTile(key, { local, screen }) {
  const video = h("video", {
    class: `h-full w-full ${screen ? "object-contain" : "object-cover"}${local && !screen ? " -scale-x-100" : ""}`,
    autoplay: true, playsinline: true,
  });
  // a new layer or a rotated phone can change the picture's shape: the stage follows
  video.addEventListener("resize", () => layoutGrid());
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
    class: `absolute overflow-hidden rounded-xl ${screen ? "bg-black" : "bg-slate-800"} ring-2 ring-transparent transition-shadow`,
    "data-tile": key, "data-testid": "video-tile",
  }, video, placeholder, caption);
  if (!local) {
    // full screen: double-click the tile, or its button (keyboard and touch)
    const full = h("button", {
      type: "button", class: "absolute right-2 top-2 z-10 inline-flex h-9 w-9 items-center justify-center rounded-md bg-black/60 text-white opacity-80 hover:opacity-100 focus:opacity-100",
      "aria-label": "Full screen", title: "Full screen", "data-fullscreen": "",
    });
    full.innerHTML = FULLSCREEN_SVG;
    full.addEventListener("click", () => toggleFullscreen(el));
    el.addEventListener("dblclick", () => toggleFullscreen(el));
    el.append(full);
  }
  el._parts = { video, placeholder, initial, name, mic, quality };
  return { el, video, ids: "" };
}

const FULLSCREEN_SVG = '<svg viewBox="0 0 24 24" class="h-5 w-5" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true"><path d="M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5"/></svg>';

/** One tile fills the screen (the SFU then sends it the layer the screen calls for), or back. */
function toggleFullscreen(el) {
  if (document.fullscreenElement) {
    document.exitFullscreen().catch(() => {});
  } else if (el.requestFullscreen) {
    el.requestFullscreen().catch(() => {});
  }
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

/** Bring the tiles in line with participants, their tracks and our receivers. */
export function reconcile() {
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
  const receiving = receivingTransceivers();
  applyPlayout(receiving, ownerOf);
  for (const t of receiving) {
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

// ------------------------------------------------------------------ the stage (room_stage.js)

const GAP_SMALL = 8;
const GAP = 12;
let lastLayout = { mode: "empty", rects: new Map() };

/** Width / height of what a tile shows: its video once it has frames, else a camera's 16:9. */
function tileAspect(t) {
  const v = t.video;
  return v.videoWidth > 0 && v.videoHeight > 0 ? v.videoWidth / v.videoHeight : CAMERA_ASPECT;
}

/** Place every tile on the stage; then tell the SFU the sizes remote videos are shown at. */
export function layoutGrid() {
  const n = tiles.size;
  grid.dataset.count = String(n);
  grid.dataset.layout = state.layout;
  const w = grid.clientWidth;
  const h = grid.clientHeight;
  const gap = w < 640 ? GAP_SMALL : GAP;
  const list = [...tiles].sort((a, b) => Number(a[1].el.style.order) - Number(b[1].el.style.order))
    .map(([key, t]) => ({ key, local: key.startsWith("local"), screen: key.endsWith(":screen"), aspect: tileAspect(t) }));
  lastLayout = layoutStage(list, { w, h, gap, featured: featuredKey() });
  grid.dataset.mode = lastLayout.mode;
  for (const [key, t] of tiles) {
    const r = lastLayout.rects.get(key);
    if (!r) continue;
    const s = t.el.style;
    s.left = `${Math.round(r.x)}px`;
    s.top = `${Math.round(r.y)}px`;
    s.width = `${Math.round(r.w)}px`;
    s.height = `${Math.round(r.h)}px`;
    s.zIndex = r.role === "pip" ? "10" : "";
    t.el.dataset.place = r.role;
    const contain = r.fit === "contain" || document.fullscreenElement === t.el;
    t.video.classList.toggle("object-contain", contain);
    t.video.classList.toggle("object-cover", !contain);
    t.el.classList.toggle("shadow-xl", r.role === "pip");
    const button = t.el.querySelector("[data-fullscreen]");
    if (button) button.setAttribute("aria-label", document.fullscreenElement === t.el ? "Exit full screen" : "Full screen");
  }
  reportSizes();
}

/** The tile speaker view (or a screen share, in any view) puts on the stage; null: a gallery. */
function featuredKey() {
  for (const key of tiles.keys()) if (key.endsWith(":screen") && !key.startsWith("local")) return key;
  if (state.layout !== "speaker") return null;
  if (state.speaker && state.speaker !== state.peerId && tiles.has(`${state.speaker}:camera`)) return `${state.speaker}:camera`;
  const mentor = [...state.participants.values()].find((p) => p.user.role === "mentor");
  if (mentor && tiles.has(`${mentor.peer_id}:camera`)) return `${mentor.peer_id}:camera`;
  for (const key of tiles.keys()) if (!key.startsWith("local")) return key;
  return null;
}

// the stage changes size with the window, the side panel and the banners above it
let relayout = 0;
new ResizeObserver(() => {
  cancelAnimationFrame(relayout);
  relayout = requestAnimationFrame(layoutGrid);
}).observe(grid);
document.addEventListener("fullscreenchange", layoutGrid);

export function highlightSpeaker() {
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
  if (state.layout === "speaker") layoutGrid(); // the stage follows the speaker
}

// ------------------------------------------------------------------ network quality

// The server scores every participant's connection (loss both ways, jitter, round trip,
// whether their media arrives) and says so with `quality` messages: each tile shows it.
export function onQuality(msg) {
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

export const sizeHints = new VideoSizeHints((m) => send(m));

/** [track id, height its video is drawn at in device pixels] of every remote video tile. */
function remoteVideoSizes() {
  const out = [];
  const dpr = window.devicePixelRatio || 1;
  for (const [key, t] of tiles) {
    if (key.startsWith("local")) continue;
    const [peerId, slot] = key.split(":");
    const p = state.participants.get(peerId);
    const track = p && trackOf(p, slot === "screen" ? "screen" : "camera");
    if (!track?.id || track.mid == null) continue;
    // a full-screen tile is as large as the screen, whatever the stage gave it
    const full = document.fullscreenElement === t.el;
    const rect = full ? { w: t.el.clientWidth, h: t.el.clientHeight } : lastLayout.rects.get(key);
    if (!rect) continue;
    const fit = full || slot === "screen" ? "contain" : "cover";
    out.push([track.id, Math.round(shownHeight(rect, tileAspect(t), fit) * dpr)]);
  }
  return out;
}

function reportSizes() {
  if (state.phase === "live") sizeHints.update(remoteVideoSizes());
}

setInterval(reportSizes, 1000);

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
