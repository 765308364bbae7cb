// Admin → Recordings (DESIGN §4): GET /api/recordings, play in the page with an HTML5 <video>
// on GET /api/recordings/{id}/download (HTTP Range), download the file, DELETE /api/recordings/{id}.
// If the recordings API isn't on this server, the tab says so instead of showing anything made up.
import { api, formatTime, h, showError, toast } from "./api.js";
import { confirmDialog, filteredList, fmtBytes, fmtDuration, statusBadge } from "./admin_ui.js";

const player = document.getElementById("player");
const video = document.getElementById("player-video");
const playerError = document.getElementById("player-error");
const rows = new Map();

const title = (r) => r.session_title || r.session?.title || `Session #${r.session_id}`;
const durationOf = (r) => (r.duration_ms != null ? r.duration_ms / 1000 : r.duration_seconds ?? r.duration ?? null);
const sizeOf = (r) => r.bytes ?? r.size_bytes ?? null;

function actions(r) {
  const ready = r.status === "ready" || r.status === undefined;
  return h("div", { class: "flex flex-wrap gap-2" },
    ready ? h("button", { type: "button", class: "btn-primary btn-sm", dataset: { play: r.id }, text: "Play" }) : null,
    ready ? h("a", { href: `/api/recordings/${r.id}/download`, class: "btn-secondary btn-sm", download: "", text: "Download" }) : null,
    h("button", { type: "button", class: "btn-ghost btn-sm text-rose-700", dataset: { delete: r.id }, text: "Delete" }));
}

const { table, load } = filteredList({
  id: "recordings", url: "/api/recordings", form: document.getElementById("recording-filters"),
  totalText: (d) => `${d.total ?? (d.items || []).length} recording${(d.total ?? 0) === 1 ? "" : "s"}`,
  columns: [
    { label: "Session", cell: (r) => { rows.set(r.id, r); return h("div", {}, h("a", { href: `/sessions/${r.session_id}`, class: "font-medium hover:underline", text: title(r) }), r.mentor_name ? h("p", { class: "text-xs text-slate-500", text: r.mentor_name }) : null); } },
    { label: "Started", cell: (r) => (r.started_at ? h("time", { datetime: r.started_at, text: formatTime(r.started_at) }) : "–") },
    { label: "Duration", cell: (r) => (durationOf(r) != null ? fmtDuration(durationOf(r)) : "–") },
    { label: "Size", cell: (r) => (sizeOf(r) != null ? fmtBytes(sizeOf(r)) : "–") },
    { label: "Status", cell: (r) => (r.status ? statusBadge(r.status) : "–") },
    { label: "Actions", cell: actions },
  ],
});

/** Whether this server serves the recordings API (asked of its OpenAPI document, so a server
 * without it shows a clear state instead of failing requests). */
async function recordingsApi() {
  try {
    const doc = await api("/api/openapi.json");
    return !!doc?.paths?.["/api/recordings"];
  } catch {
    return true;  // can't tell: try the list itself
  }
}

async function start() {
  if (!(await recordingsApi())) {
    const box = document.getElementById("recordings-error");
    box.textContent = "Recordings aren't available on this server yet: its recordings API is not installed. Nothing to show.";
    box.hidden = false;
    document.getElementById("recording-filters").hidden = true;
    return;
  }
  await load();
}

table.el.addEventListener("click", async (ev) => {
  const play = ev.target.closest("[data-play]");
  if (play) {
    const r = rows.get(Number(play.dataset.play));
    playerError.hidden = true;
    document.getElementById("player-title").textContent = `Playing: ${title(r)}`;
    video.src = `/api/recordings/${r.id}/download`;
    player.hidden = false;
    player.scrollIntoView({ behavior: "smooth", block: "nearest" });
    video.play().catch(() => { /* autoplay may be blocked; the controls are there */ });
    return;
  }
  const del = ev.target.closest("[data-delete]");
  if (del) {
    const r = rows.get(Number(del.dataset.delete));
    const ok = await confirmDialog({ title: "Delete this recording?", text: `${title(r)}: the file is removed from the server for good.`, confirm: "Delete" });
    if (!ok) return;
    try {
      await api(`/api/recordings/${r.id}`, { method: "DELETE" });
      table.tbody.querySelector(`tr[data-row-id="${r.id}"]`)?.remove();
      if (video.src.endsWith(`/api/recordings/${r.id}/download`)) { video.removeAttribute("src"); video.load(); player.hidden = true; }
      document.getElementById("recordings-empty").hidden = table.tbody.children.length > 0;
      toast("Recording deleted.", { kind: "success" });
    } catch (err) { showError(err); }
  }
});

video.addEventListener("error", () => {
  playerError.textContent = "This recording can't be played in the browser. Try Download instead.";
  playerError.hidden = false;
});
document.getElementById("player-close").addEventListener("click", () => {
  video.pause();
  video.removeAttribute("src");
  video.load();
  player.hidden = true;
});

start();
