// Shared fetch helper: same-origin cookies, the CSRF header on unsafe requests,
// uniform error objects from the API's {"error": {code, message, fields}} shape.

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)pl_csrf=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  return document.querySelector('meta[name="csrf-token"]')?.content || "";
}

export class ApiError extends Error {
  constructor(status, code, message, fields = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields || {};
  }
}

// A 503 (a database restarting, a worker being replaced) or a dropped connection is usually
// over within seconds: a page retries by itself instead of showing an error at once. Reads
// always; writes only when they carry an Idempotency-Key (the server then makes them once).
const RETRY_STATUSES = new Set([502, 503, 504]);
const RETRY_DELAYS = [0.5, 1, 2, 4]; // seconds, unless the server's Retry-After says otherwise
const MAX_RETRY_WAIT = 8;

const sleep = (seconds, signal) => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, seconds * 1000);
  signal?.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
});

function retryable(method, headers) {
  return !UNSAFE.has(method) || Object.keys(headers).some((k) => k.toLowerCase() === "idempotency-key");
}

function retryAfter(resp, attempt) {
  const header = Number(resp?.headers.get("Retry-After"));
  const wait = Number.isFinite(header) && header > 0 ? header : RETRY_DELAYS[attempt];
  return Math.min(wait, MAX_RETRY_WAIT);
}

/** Call the REST API. `body` is sent as JSON unless it is FormData. Returns parsed JSON (or null). */
export async function api(path, { method = "GET", body, headers = {}, signal, retries = RETRY_DELAYS.length } = {}) {
  method = method.toUpperCase();
  const opts = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers }, signal };
  if (UNSAFE.has(method)) opts.headers["X-CSRF-Token"] = csrfToken();
  if (body instanceof FormData) {
    opts.body = body;
  } else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const mayRetry = retryable(method, headers);
  let resp;
  for (let attempt = 0; ; attempt++) {
    resp = null;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      if (e.name === "AbortError") throw e;
      if (!mayRetry || attempt >= retries) {
        throw new ApiError(0, "network_error", "We couldn't reach PeerLearn. Check your connection and try again.");
      }
    }
    if (resp && !(RETRY_STATUSES.has(resp.status) && mayRetry && attempt < retries)) break;
    if (attempt === 0) toast("PeerLearn is busy for a moment; trying again…", { timeout: 4000 });
    await sleep(retryAfter(resp, attempt), signal);
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!resp.ok) {
    const err = data?.error || {};
    const fallback = resp.status === 404 ? "Not found." : resp.status >= 500 ? "Something went wrong on our side. Please try again." : "The request failed.";
    throw new ApiError(resp.status, err.code || "http_" + resp.status, err.message || fallback, err.fields || {});
  }
  return data;
}

/** A list response may be a bare array or a page {items, total, ...}. */
export function itemsOf(data) {
  if (Array.isArray(data)) return data;
  return data?.items ?? data?.results ?? [];
}

/** Show an API error: field messages next to inputs ([data-error-for=name]) and a summary box. */
export function showError(err, { form = null, box = null } = {}) {
  clearErrors(form, box);
  const fields = err?.fields || {};
  let placed = 0;
  if (form) {
    for (const [name, msg] of Object.entries(fields)) {
      const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
      const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
      if (slot) { slot.textContent = capitalize(msg); slot.hidden = false; placed++; }
      if (input) input.setAttribute("aria-invalid", "true");
    }
  }
  box = box || form?.querySelector("[data-form-error]");
  if (box) {
    box.textContent = err?.message || String(err);
    box.hidden = false;
    box.setAttribute("role", "alert");
  } else if (!placed) {
    toast(err?.message || String(err), { kind: "error" });
  }
}

export function clearErrors(form, box) {
  if (form) {
    form.querySelectorAll("[data-error-for]").forEach((el) => { el.textContent = ""; el.hidden = true; });
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }
  box = box || form?.querySelector("[data-form-error]");
  if (box) { box.textContent = ""; box.hidden = true; }
}

function capitalize(s) {
  s = String(s || "");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** A short message at the bottom of the screen, optionally with an action button. */
export function toast(message, { kind = "info", action = null, timeout = 6000 } = {}) {
  const host = document.getElementById("toasts");
  if (!host) return;
  const el = document.createElement("div");
  const colors = kind === "error" ? "bg-rose-700" : kind === "success" ? "bg-emerald-700" : "bg-slate-900";
  el.className = `pointer-events-auto flex max-w-sm items-center gap-3 rounded-xl ${colors} px-4 py-3 text-sm text-white shadow-lg`;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  const text = document.createElement("span");
  text.textContent = message;
  el.append(text);
  if (action) {
    const a = document.createElement("a");
    a.href = action.href;
    a.textContent = action.label;
    a.className = "rounded-lg bg-white/15 px-3 py-1.5 font-semibold hover:bg-white/25";
    el.append(a);
  }
  const close = document.createElement("button");
  close.type = "button";
  close.setAttribute("aria-label", "Dismiss");
  close.className = "ml-auto text-white/70 hover:text-white";
  close.textContent = "✕";
  close.addEventListener("click", () => el.remove());
  el.append(close);
  host.append(el);
  if (timeout) setTimeout(() => el.remove(), action ? timeout * 2 : timeout);
}

/** The user's time zone: the profile's when set, else the browser's. */
export function userTimeZone() {
  const tz = document.body?.dataset.tz;
  if (tz) {
    try { new Intl.DateTimeFormat("en", { timeZone: tz }); return tz; } catch { /* unknown zone: use browser's */ }
  }
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

export function formatTime(iso, opts = {}) {
  if (!iso) return "";
  const d = new Date(iso);
  return new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    timeZone: userTimeZone(), timeZoneName: "short", ...opts,
  }).format(d);
}

export function formatDate(iso) {
  return formatTime(iso, { weekday: undefined, hour: undefined, minute: undefined, timeZoneName: undefined, year: "numeric" });
}

export function money(cents, currency = "USD") {
  if (!cents) return "Free";
  return new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "USD" }).format(cents / 100);
}

/** Build an element: h("div", {class: "x", text: "hi"}, child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function currentUser() {
  const id = document.body?.dataset.userId;
  return id ? { id: Number(id), role: document.body.dataset.role } : null;
}

export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function initials(name) {
  return (name || "?").trim().charAt(0).toUpperCase();
}

/** Mentor avatar (image or initial) as an element. */
export function avatarEl(url, name, cls = "h-9 w-9") {
  if (url) return h("img", { src: url, alt: "", class: `${cls} rounded-full object-cover bg-slate-200` });
  return h("span", { class: `${cls} inline-flex items-center justify-center rounded-full bg-brand-100 font-semibold text-brand-700`, "aria-hidden": "true", text: initials(name) });
}
