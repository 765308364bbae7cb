// The realtime connection (/ws): one socket per page, reconnects with backoff,
// re-subscribes to session channels after a reconnect. Messages are
// {"type": "...", "data": {...}}; handlers register with on(type, fn).

const handlers = new Map();
const sessions = new Set();
const confirmed = new Set();

// Connection state on <body> (data-realtime, data-subscribed) for styles, scripts and tests.
function mark() {
  if (!document.body) return;
  document.body.dataset.realtime = socket && socket.readyState === WebSocket.OPEN ? "open" : "closed";
  document.body.dataset.subscribed = [...confirmed].join(" ");
}
let socket = null;
let attempt = 0;
let started = false;
let timer = null;

function url() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/ws`;
}

function send(msg) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg));
}

function dispatch(type, data) {
  for (const fn of handlers.get(type) || []) {
    try { fn(data); } catch (e) { console.warn("realtime handler failed", e); }
  }
}

function connect() {
  clearTimeout(timer);
  try {
    socket = new WebSocket(url());
  } catch {
    schedule();
    return;
  }
  socket.addEventListener("open", () => {
    attempt = 0;
    confirmed.clear();
    mark();
    for (const id of sessions) send({ type: "subscribe", session_id: id });
    dispatch("open", {});
  });
  socket.addEventListener("message", (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg && msg.type === "ping") { send({ type: "pong" }); return; }
    if (msg && msg.type === "subscribed") { confirmed.add(Number(msg.data?.session_id)); mark(); }
    if (msg && msg.type === "unsubscribed") { confirmed.delete(Number(msg.data?.session_id)); mark(); }
    if (msg && msg.type) dispatch(msg.type, msg.data || {});
  });
  socket.addEventListener("close", (ev) => {
    socket = null;
    confirmed.clear();
    mark();
    dispatch("close", {});
    // 4401/4403: the server refused us (signed out, deactivated): do not hammer it.
    if (ev.code === 4401 || ev.code === 4403 || ev.code === 1008) return;
    schedule();
  });
}

function schedule() {
  attempt += 1;
  const delay = Math.min(30000, 1000 * 2 ** Math.min(attempt, 5)) * (0.75 + Math.random() * 0.5);
  timer = setTimeout(connect, delay);
}

/** Open the socket (once per page). */
export function start() {
  if (started) return;
  started = true;
  connect();
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !socket) { attempt = 0; connect(); }
  });
}

/** Listen for a message type; returns an unsubscribe function. */
export function on(type, fn) {
  if (!handlers.has(type)) handlers.set(type, new Set());
  handlers.get(type).add(fn);
  return () => handlers.get(type)?.delete(fn);
}

/** Follow a session's channel (seat counts, readiness, updates). */
export function subscribeSession(id) {
  id = Number(id);
  if (!id || sessions.has(id)) return;
  sessions.add(id);
  send({ type: "subscribe", session_id: id });
}

export function unsubscribeSession(id) {
  id = Number(id);
  if (!sessions.delete(id)) return;
  send({ type: "unsubscribe", session_id: id });
}

export function isOpen() {
  return !!socket && socket.readyState === WebSocket.OPEN;
}
