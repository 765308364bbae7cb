// Recordings a learner may replay (GET /api/sessions/{id}/recordings, attendees only: 404 for
// anyone else, shown as nothing): [▶ Watch recording] opens an in-page <video> that streams the
// file with HTTP Range, so it seeks without downloading first.
import { api, formatTime, h } from "./api.js";

let dialog = null;

function minutes(seconds) {
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return `${m}:${String(s).padStart(2, "0")}`;
}

function player() {
  if (dialog) return dialog;
  const video = h("video", { class: "aspect-video w-full rounded-lg bg-black", controls: true, preload: "metadata", playsinline: true, "data-testid": "replay-video" });
  const heading = h("h2", { id: "replay-title", class: "font-semibold" });
  const close = h("button", { type: "button", class: "btn-ghost btn-sm", text: "Close" });
  dialog = h("dialog", { class: "w-[min(96vw,48rem)] rounded-2xl p-4 shadow-xl backdrop:bg-slate-900/60", "aria-labelledby": "replay-title" },
    h("div", { class: "mb-3 flex items-center justify-between gap-3" }, heading, close), video);
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => { video.pause(); video.removeAttribute("src"); video.load(); });
  document.body.append(dialog);
  return dialog;
}

function play(title, item) {
  const dlg = player();
  dlg.querySelector("h2").textContent = title;
  const video = dlg.querySelector("video");
  video.src = item.url;
  dlg.showModal();
  video.play().catch(() => { /* the controls are there */ });
}

/** The replay block of a class for this learner, or null when there is nothing to replay. */
export async function replayBlock(sessionId, title) {
  let data;
  try {
    data = await api(`/api/sessions/${sessionId}/recordings`);
  } catch {
    return null;
  }
  if (!data.items.length) return null;
  return h("div", { class: "mt-2 text-sm", dataset: { testid: "replays" } },
    h("p", { class: "text-slate-500", text: data.items.length === 1 ? "Recording:" : "Recordings:" }),
    h("ul", { class: "mt-1 flex flex-wrap gap-2" }, data.items.map((item) => h("li", {},
      h("button", { type: "button", class: "btn-secondary btn-sm", onclick: () => play(title, item),
        "aria-label": `Watch the recording of ${formatTime(item.started_at)}`,
        text: `▶ Watch recording (${minutes(item.duration_s)})` })))));
}
