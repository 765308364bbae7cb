// Admin → Recordings (docs/architecture.md, REST): GET /api/recordings (?session_id= from the filter or the URL),
// play in the page with an HTML5 <video> on GET /api/recordings/{id}/download (HTTP Range; one
// WebM per participant, ?file=N), download, [Export MP4] (POST /api/recordings/{id}/export, then
// GET /api/recordings/{id} until the export is ready: a progress bar, then ?file=export), and
// DELETE /api/recordings/{id}. If the recordings API isn't on this server, the tab says so.
import { api, formatTime, h, showError, toast } from "./api.js";
import { confirmDialog, filteredList, fmtBytes, fmtDuration, statusBadge } from "./admin_ui.js";

const player = document.getElementById("player");
const video = document.getElementById("player-video");
const playerError = document.getElementById("player-error");
const playerFiles = document.getElementById("player-files");
const form = document.getElementById("recording-filters");
const rows = new Map();
const polling = new Set();
const POLL_MS = 1000;

const title = (r) => r.session_title || `Session #${r.session_id}`;
const durationOf = (r) => (r.duration_ms ? r.duration_ms / 1000 : null);
// A recording that went on after its server process died: nothing was captured in the gap.
const gapNotes = (r) => (r.gaps || []).map((g) =>
  h("p", { class: "mt-1 text-xs text-amber-800", text: `Gap ${fmtDuration(g.start_ms / 1000)}–${fmtDuration(g.end_ms / 1000)} (server restart)` }));
const fileUrl = (r, index) => `/api/recordings/${r.id}/download?file=${index}`;
const exportUrl = (r) => `/api/recordings/${r.id}/download?file=export`;

function exportCell(r) {
  const ex = r.export || { status: "none", progress: 0 };
  const box = h("div", { class: "flex min-w-[9rem] flex-col gap-1", dataset: { exportFor: r.id, exportStatus: ex.status } });
  if (r.status !== "ready") return box;
  if (ex.status === "queued" || ex.status === "running") {
    const pct = Math.round((ex.progress || 0) * 100);
    box.append(
      h("progress", { max: "100", value: String(pct), class: "h-2 w-full accent-brand-600", "aria-label": `Exporting ${title(r)}` }),
      h("span", { class: "text-xs text-slate-600", text: ex.status === "queued" ? "Export queued…" : `Exporting… ${pct}%` }));
  } else if (ex.status === "ready") {
    box.append(h("a", { href: exportUrl(r), class: "btn-secondary btn-sm", download: "", text: "Download MP4" }));
  } else {
    box.append(h("button", { type: "button", class: "btn-secondary btn-sm", dataset: { export: r.id }, text: "Export MP4" }));
    if (ex.status === "failed") box.append(h("span", { class: "text-xs text-rose-700", text: `Export failed: ${ex.error || "unknown error"}` }));
  }
  return box;
}

function actions(r) {
  const ready = r.status === "ready";
  return h("div", { class: "flex flex-wrap gap-2" },
    ready && r.files.length ? h("button", { type: "button", class: "btn-primary btn-sm", dataset: { play: r.id }, text: "Play" }) : null,
    ready && r.files.length ? h("a", { href: fileUrl(r, r.files[0].index), class: "btn-secondary btn-sm", download: "", text: "Download" }) : null,
    r.status !== "recording" ? h("button", { type: "button", class: "btn-ghost btn-sm text-rose-700", dataset: { delete: r.id }, text: "Delete" }) : null);
}

const { table, load } = filteredList({
  id: "recordings", url: "/api/recordings", form,
  totalText: (d) => { const n = (d.items || []).length; return `${n} recording${n === 1 ? "" : "s"}`; },
  columns: [
    { label: "Session", cell: (r) => { rows.set(r.id, r); watch(r); return h("div", {}, h("a", { href: `/sessions/${r.session_id}`, class: "font-medium hover:underline", text: title(r) }), h("p", { class: "text-xs text-slate-500", text: `${r.files.length} participant file${r.files.length === 1 ? "" : "s"}` })); } },
    { label: "Started", cell: (r) => (r.started_at ? h("time", { datetime: r.started_at, text: formatTime(r.started_at) }) : "–") },
    { label: "Duration", cell: (r) => h("div", {}, durationOf(r) != null ? fmtDuration(durationOf(r)) : "–", ...gapNotes(r)) },
    { label: "Size", cell: (r) => fmtBytes(r.bytes) },
    { label: "Status", cell: (r) => h("div", {}, statusBadge(r.status), r.error ? h("p", { class: "mt-1 text-xs text-rose-700", text: r.error }) : null) },
    { label: "Export", cell: exportCell },
    { label: "Actions", cell: actions },
  ],
});

/** Follow an export in progress: GET /api/recordings/{id} until it is ready or failed. */
function watch(r) {
  const st = r.export?.status;
  if ((st !== "queued" && st !== "running") || polling.has(r.id)) return;
  polling.add(r.id);
  const tick = async () => {
    if (!rows.has(r.id)) { polling.delete(r.id); return; }
    let fresh;
    try {
      fresh = await api(`/api/recordings/${r.id}`);
    } catch (err) {
      polling.delete(r.id);
      if (err?.status !== 404) showError(err);
      return;
    }
    rows.set(fresh.id, fresh);
    table.tbody.querySelector(`[data-export-for="${fresh.id}"]`)?.replaceWith(exportCell(fresh));
    if (fresh.export.status === "queued" || fresh.export.status === "running") {
      setTimeout(tick, POLL_MS);
      return;
    }
    polling.delete(r.id);
    if (fresh.export.status === "ready") toast(`MP4 export of “${title(fresh)}” is ready.`, { kind: "success" });
    else toast(`MP4 export of “${title(fresh)}” failed.`, { kind: "error" });
  };
  setTimeout(tick, POLL_MS);
}

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

function play(r, index) {
  playerError.hidden = true;
  const file = r.files.find((f) => f.index === index) || r.files[0];
  document.getElementById("player-title").textContent = `Playing: ${title(r)}${r.files.length > 1 ? ` · ${file.display_name || `participant ${file.index + 1}`}` : ""}`;
  playerFiles.replaceChildren(...(r.files.length > 1 ? r.files.map((f) => h("button", {
    type: "button", class: `pill ${f.index === file.index ? "pill-active" : ""}`, dataset: { playFile: f.index, rec: r.id },
    "aria-pressed": f.index === file.index ? "true" : "false", text: f.display_name || `Participant ${f.index + 1}`,
  })) : []));
  player.dataset.recordingId = String(r.id);
  video.src = fileUrl(r, file.index);
  player.hidden = false;
  player.scrollIntoView({ behavior: "smooth", block: "nearest" });
  video.play().catch(() => { /* autoplay may be blocked; the controls are there */ });
}

function closePlayer() {
  video.pause();
  video.removeAttribute("src");
  video.load();
  player.hidden = true;
  delete player.dataset.recordingId;
}

async function start() {
  if (!(await recordingsApi())) {
    const box = document.getElementById("recordings-error");
    box.textContent = "Recordings aren't available on this server yet: its recordings API is not installed. Nothing to show.";
    box.hidden = false;
    form.hidden = true;
    return;
  }
  const sid = new URLSearchParams(location.search).get("session_id");
  if (sid && /^\d+$/.test(sid)) form.session_id.value = sid;
  await load();
}

table.el.addEventListener("click", async (ev) => {
  const playBtn = ev.target.closest("[data-play]");
  if (playBtn) {
    play(rows.get(Number(playBtn.dataset.play)), 0);
    return;
  }
  const exp = ev.target.closest("[data-export]");
  if (exp) {
    const r = rows.get(Number(exp.dataset.export));
    exp.disabled = true;
    try {
      const out = await api(`/api/recordings/${r.id}/export`, { method: "POST" });
      rows.set(out.id, out);
      exp.closest("[data-export-for]").replaceWith(exportCell(out));
      watch(out);
    } catch (err) {
      exp.disabled = false;
      showError(err);
    }
    return;
  }
  const del = ev.target.closest("[data-delete]");
  if (del) {
    const r = rows.get(Number(del.dataset.delete));
    const ok = await confirmDialog({ title: "Delete this recording?", text: `${title(r)}: the files are removed from the server for good.`, confirm: "Delete" });
    if (!ok) return;
    try {
      await api(`/api/recordings/${r.id}`, { method: "DELETE" });
      rows.delete(r.id);
      table.tbody.querySelector(`tr[data-row-id="${r.id}"]`)?.remove();
      if (player.dataset.recordingId === String(r.id)) closePlayer();
      document.getElementById("recordings-empty").hidden = table.tbody.children.length > 0;
      const n = table.tbody.children.length;
      document.getElementById("recordings-total").textContent = `${n} recording${n === 1 ? "" : "s"}`;
      toast("Recording deleted.", { kind: "success" });
    } catch (err) { showError(err); }
  }
});

playerFiles.addEventListener("click", (ev) => {
  const b = ev.target.closest("[data-play-file]");
  if (b) play(rows.get(Number(b.dataset.rec)), Number(b.dataset.playFile));
});

video.addEventListener("error", () => {
  if (!video.getAttribute("src")) return;
  playerError.textContent = "This recording can't be played in the browser. Try Download instead.";
  playerError.hidden = false;
});
document.getElementById("player-close").addEventListener("click", closePlayer);

start();
