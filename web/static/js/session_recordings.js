// A session's recordings where sessions are listed (mentor → Past, admin → Sessions):
// GET /api/recordings (a mentor sees their own sessions', an admin all) grouped by session,
// each with [Play] per participant file (an HTML5 <video> in a dialog, HTTP Range on
// /api/recordings/{id}/download?file=N), [Download], and the MP4 export once it is ready.
import { api, formatTime, h } from "./api.js";
import { fmtDuration, statusBadge } from "./admin_ui.js";

const byId = new Map();
let dialog = null;

/** Map session id → recordings (newest first); empty when the API refuses or is missing. */
export async function recordingsBySession() {
  const out = new Map();
  try {
    const data = await api("/api/recordings?limit=200");
    for (const r of data.items || []) {
      byId.set(r.id, r);
      if (!out.has(r.session_id)) out.set(r.session_id, []);
      out.get(r.session_id).push(r);
    }
  } catch { /* no recordings to show */ }
  return out;
}

const fileName = (f) => f.display_name || `Participant ${f.index + 1}`;

function line(r) {
  const ready = r.status === "ready";
  return h("li", { class: "flex flex-wrap items-center gap-2", dataset: { recordingId: r.id } },
    h("span", { class: "text-slate-700" },
      h("time", { datetime: r.started_at, text: formatTime(r.started_at) }),
      r.duration_ms ? ` · ${fmtDuration(r.duration_ms / 1000)}` : ""),
    ready ? null : statusBadge(r.status),
    ...(ready ? r.files.flatMap((f) => [
      h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { playRecording: r.id, file: f.index },
        "aria-label": `Play ${fileName(f)}`, text: r.files.length > 1 ? `▶ ${fileName(f)}` : "▶ Play" }),
      h("a", { href: `/api/recordings/${r.id}/download?file=${f.index}`, class: "btn-ghost btn-sm", download: "",
        "aria-label": `Download ${fileName(f)}`, text: "Download" }),
    ]) : []),
    ready && r.export?.status === "ready"
      ? h("a", { href: `/api/recordings/${r.id}/download?file=export`, class: "btn-ghost btn-sm", download: "", text: "Download MP4" }) : null);
}

/** The "Recordings" block for one session (null when it has none). */
export function recordingsBlock(recs) {
  if (!recs || !recs.length) return null;
  return h("div", { class: "mt-2 basis-full text-sm", dataset: { testid: "session-recordings" } },
    h("p", { class: "text-slate-500", text: `Recording${recs.length === 1 ? "" : "s"}:` }),
    h("ul", { class: "mt-1 space-y-1" }, recs.map(line)));
}

function player() {
  if (dialog) return dialog;
  const video = h("video", { class: "aspect-video w-full rounded-lg bg-black", controls: true, preload: "metadata", playsinline: true, "data-testid": "recording-video" });
  const heading = h("h2", { id: "recording-player-title", class: "font-semibold" });
  const close = h("button", { type: "button", class: "btn-ghost btn-sm", text: "Close" });
  dialog = h("dialog", { class: "w-[min(96vw,48rem)] rounded-2xl p-4 shadow-xl backdrop:bg-slate-900/60", "aria-labelledby": "recording-player-title" },
    h("div", { class: "mb-3 flex items-center justify-between gap-3" }, heading, close), video);
  const stop = () => { video.pause(); video.removeAttribute("src"); video.load(); };
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", stop);
  document.body.append(dialog);
  return dialog;
}

document.addEventListener("click", (ev) => {
  const btn = ev.target.closest("[data-play-recording]");
  if (!btn) return;
  const r = byId.get(Number(btn.dataset.playRecording));
  if (!r) return;
  const f = r.files.find((x) => x.index === Number(btn.dataset.file)) || r.files[0];
  const dlg = player();
  dlg.querySelector("h2").textContent = `${r.session_title || "Recording"} · ${fileName(f)}`;
  const video = dlg.querySelector("video");
  video.src = `/api/recordings/${r.id}/download?file=${f.index}`;
  dlg.showModal();
  video.play().catch(() => { /* the controls are there */ });
});
