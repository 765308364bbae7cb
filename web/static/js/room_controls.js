// The control bar: microphone, camera, screen share and recording, and their labels.

import { api, toast } from "./api.js";
import { getCamera, getScreen } from "./room_media.js";
import { SCREEN_ENCODINGS } from "./room_layers.js";
import { enqueue, sendOffer } from "./room_negotiation.js";
import { renderPeople } from "./room_panel.js";
import { $, SID, TERMINAL, send, state } from "./room_state.js";
import { reconcile } from "./room_tiles.js";

export function setLabel(btn, text, pressed) {
  if (!btn) return;
  btn.querySelector("[data-label]").textContent = text;
  if (pressed !== undefined) btn.setAttribute("aria-pressed", pressed ? "true" : "false");
}

export function updateControls() {
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

export function setRecording(on) {
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
