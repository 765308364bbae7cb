// Admin → Health (GET /api/admin/health): database latency, broker, rooms, peers, sockets,
// CPU, memory, version, uptime; [Refresh] and a 10-second auto-refresh while the tab is visible.
import { api, formatTime } from "./api.js";
import { badge, fmtBytes, fmtDuration } from "./admin_ui.js";

const errorBox = document.getElementById("health-error");
const updated = document.getElementById("health-updated");
const auto = document.getElementById("auto-refresh");
const btn = document.getElementById("refresh");
const set = (key, value, sub = "") => {
  document.querySelector(`[data-figure="${key}"]`).textContent = value;
  document.querySelector(`[data-sub="${key}"]`).textContent = sub;
};
const ms = (v) => (typeof v === "number" ? `${v.toFixed(v < 10 ? 2 : 0)} ms` : "–");

async function load() {
  btn.disabled = true;
  try {
    const x = await api("/api/admin/health");
    errorBox.hidden = true;
    document.getElementById("health-status").replaceChildren(x.status === "ok" ? badge("All systems OK", "green") : badge("Degraded", "amber"));
    set("database", x.database.ok ? ms(x.database.latency_ms) : "down", `${x.database.dialect}${x.database.error ? ` · ${x.database.error}` : ""}`);
    set("broker", x.broker.ok ? ms(x.broker.latency_ms) : "down", x.broker.kind);
    set("rooms", String(x.rooms));
    set("peers", String(x.peers));
    set("websockets", String(x.websockets));
    set("online_users", String(x.online_users));
    set("cpu", `${x.process.cpu_percent.toFixed(1)}%`, "this process");
    set("memory", fmtBytes(x.process.rss_bytes));
    set("version", x.version);
    set("uptime", fmtDuration(x.uptime_seconds));
    set("threads", String(x.process.threads));
    set("pid", String(x.process.pid), "PID");
    updated.textContent = `Updated ${formatTime(new Date().toISOString(), { weekday: undefined, day: undefined, month: undefined, second: "2-digit" })}`;
  } catch (err) {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
    document.getElementById("health-status").replaceChildren(badge("Unreachable", "red"));
  } finally {
    btn.disabled = false;
  }
}

btn.addEventListener("click", load);
setInterval(() => { if (auto.checked && document.visibilityState === "visible") load(); }, 10000);
load();
