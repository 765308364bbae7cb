// The session form (mentor/_session_form.html): fill from a session, read into an API body,
// save a draft (POST /api/sessions or /api/sessions/{id}/update) and publish
// (POST /api/sessions/{id}/publish). Start date/time are entered in the mentor's time zone.
import { api, clearErrors, showError, userTimeZone } from "./api.js";

const lines = (v) => (v || "").split("\n").map((s) => s.trim()).filter(Boolean);
const tags = (v) => (v || "").split(",").map((s) => s.trim()).filter(Boolean);

/** {date: "YYYY-MM-DD", time: "HH:MM"} of an instant in the time zone `tz`. */
export function localParts(iso, tz) {
  const f = new Intl.DateTimeFormat("en-CA", {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  const p = Object.fromEntries(f.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}` };
}

/** The UTC instant (ISO, "Z") of a wall-clock date ("YYYY-MM-DD") and time ("HH:MM") in the time zone `tz`. */
export function zonedToIso(date, time, tz) {
  const [y, mo, d] = date.split("-").map(Number);
  const [hh, mi] = time.split(":").map(Number);
  const wall = Date.UTC(y, mo - 1, d, hh, mi);
  let guess = wall;
  for (let i = 0; i < 3; i++) {  // converge across offset changes (DST)
    const p = localParts(new Date(guess).toISOString(), tz);
    const [py, pm, pd] = p.date.split("-").map(Number);
    const [ph, pmi] = p.time.split(":").map(Number);
    const diff = wall - Date.UTC(py, pm - 1, pd, ph, pmi);
    if (!diff) break;
    guess += diff;
  }
  return new Date(guess).toISOString();
}

/** Field errors such as "curriculum.1" belong to the "curriculum" input. */
function fieldsOf(err) {
  const out = {};
  for (const [k, v] of Object.entries(err?.fields || {})) {
    const key = k.split(".")[0];
    if (!out[key]) out[key] = v;
  }
  return out;
}

/**
 * Wire one session form. `onSaved(session, {published})` runs after a successful save/publish.
 * Returns {fill(session), reset(), form}.
 */
export function sessionForm(form, { onSaved = () => {} } = {}) {
  const tz = userTimeZone();
  form.querySelectorAll("[data-tz-label]").forEach((el) => { el.textContent = tz; });
  const saveBtn = form.querySelector("[data-save]");
  const publishBtn = form.querySelector("[data-publish]");
  let status = "draft";

  function reset() {
    form.reset();
    form.elements.id.value = "";
    status = "draft";
    const tomorrow = new Date(Date.now() + 24 * 3600 * 1000);
    const p = localParts(tomorrow.toISOString(), tz);
    form.elements.date.value = p.date;
    form.elements.time.value = "18:00";
    publishBtn.hidden = false;
    form.elements.attendee_replay.checked = true;
    form.elements.attendee_replay.dataset.touched = "";
    clearErrors(form);
  }

  function fill(s) {
    clearErrors(form);
    status = s.status;
    const el = form.elements;
    el.id.value = s.id;
    el.title.value = s.title || "";
    el.description.value = s.description || "";
    el.curriculum.value = (s.curriculum || []).join("\n");
    el.domain.value = s.domain || "";
    el.skills.value = (s.skills || []).join(", ");
    el.price.value = ((s.price_cents || 0) / 100).toFixed(2);
    if (![...el.currency.options].some((o) => o.value === s.currency)) el.currency.add(new Option(s.currency, s.currency));
    el.currency.value = s.currency || "USD";
    el.capacity.value = s.capacity || 1;
    el.attendee_replay.checked = Boolean(s.attendee_replay);
    el.attendee_replay.dataset.touched = "1";
    const p = localParts(s.starts_at, tz);
    el.date.value = p.date;
    el.time.value = p.time;
    if (![...el.duration_min.options].some((o) => Number(o.value) === s.duration_min)) {
      el.duration_min.add(new Option(`${s.duration_min} min`, String(s.duration_min)));
    }
    el.duration_min.value = String(s.duration_min || 60);
    publishBtn.hidden = s.status !== "draft";
  }

  function body() {
    const el = form.elements;
    const missing = {};
    if (!el.title.value.trim()) missing.title = "Give the session a title.";
    if (!el.domain.value.trim()) missing.domain = "Choose or type a domain.";
    if (!el.date.value || !el.time.value) missing.starts_at = "Pick a start date and time.";
    const price = Number(el.price.value || 0);
    if (!Number.isFinite(price) || price < 0) missing.price_cents = "The price can't be negative.";
    const capacity = Number(el.capacity.value);
    if (!Number.isInteger(capacity) || capacity < 1) missing.capacity = "At least one seat.";
    if (Object.keys(missing).length) {
      const err = new Error("Please fix the highlighted fields.");
      err.fields = missing;
      throw err;
    }
    return {
      title: el.title.value.trim(), description: el.description.value, curriculum: lines(el.curriculum.value),
      domain: el.domain.value.trim(), skills: tags(el.skills.value), price_cents: Math.round(price * 100),
      currency: el.currency.value, capacity, starts_at: `${el.date.value}T${el.time.value}:00`, timezone: tz,
      duration_min: Number(el.duration_min.value), attendee_replay: el.attendee_replay.checked,
    };
  }

  async function save(publish) {
    clearErrors(form);
    let data;
    try {
      data = body();
    } catch (err) {
      showError({ message: err.message, fields: err.fields }, { form });
      return;
    }
    saveBtn.disabled = publishBtn.disabled = true;
    const id = form.elements.id.value;
    try {
      let s = id
        ? await api(`/api/sessions/${id}/update`, { method: "POST", body: data })
        : await api("/api/sessions", { method: "POST", body: data });
      form.elements.id.value = s.id;
      if (publish) s = await api(`/api/sessions/${s.id}/publish`, { method: "POST" });
      status = s.status;
      onSaved(s, { published: publish, created: !id });
    } catch (err) {
      showError({ message: err.message, fields: fieldsOf(err), status: err.status }, { form });
    } finally {
      saveBtn.disabled = publishBtn.disabled = false;
    }
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); save(false); });
  // Replays default to on for a 1:1 and off for a group, until the mentor chooses.
  const replay = form.elements.attendee_replay;
  replay.addEventListener("change", () => { replay.dataset.touched = "1"; });
  form.elements.capacity.addEventListener("input", () => {
    if (!replay.dataset.touched) replay.checked = Number(form.elements.capacity.value) === 1;
  });
  publishBtn.addEventListener("click", () => save(true));
  reset();
  return { fill, reset, form, get status() { return status; } };
}
