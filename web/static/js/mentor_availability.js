// Mentor → Availability: the week grid of wall-clock ranges (several per day), slot length, price,
// break, notice, horizon and days off; [Save availability] → PUT /api/mentors/me/availability,
// then a preview of the next free slots as learners will see them (GET /api/mentors/{id}/slots).
import { api, clearErrors, formatTime, h, money, showError, toast } from "./api.js";

const form = document.getElementById("availability-form");
const mentorId = form.dataset.mentorId;
const grid = document.getElementById("week-grid");
const daysOff = new Set();

function rangeRow(start = "09:00", end = "12:00") {
  const remove = h("button", { type: "button", class: "btn-ghost btn-sm", "aria-label": "Remove these hours", text: "×" });
  const li = h("li", { class: "flex items-center gap-1", "data-range": "" },
    h("input", { type: "time", class: "input min-w-0 flex-1 px-2", value: start, "aria-label": "From", "data-start": "", step: "900" }),
    h("span", { class: "text-slate-500", text: "–" }),
    h("input", { type: "time", class: "input min-w-0 flex-1 px-2", value: end === "24:00" ? "23:59" : end, "aria-label": "Until", "data-end": "", step: "900" }),
    remove);
  remove.addEventListener("click", () => { const day = li.closest("[data-day]"); li.remove(); refreshDay(day); });
  return li;
}

function refreshDay(day) {
  day.querySelector("[data-unavailable]").hidden = day.querySelectorAll("[data-range]").length > 0;
}

function addRange(day, start, end) {
  day.querySelector("[data-ranges]").append(rangeRow(start, end));
  refreshDay(day);
}

for (const day of grid.querySelectorAll("[data-day]")) {
  day.querySelector("[data-add-range]").addEventListener("click", () => {
    const last = [...day.querySelectorAll("[data-end]")].pop();
    const start = last ? last.value : "09:00";
    const [hh, mm] = start.split(":").map(Number);
    const end = `${String(Math.min(hh + 3, 23)).padStart(2, "0")}:${String(hh + 3 > 23 ? 59 : mm).padStart(2, "0")}`;
    addRange(day, start, end);
    day.querySelector("[data-range]:last-child [data-start]").focus();
  });
}

function renderDaysOff() {
  document.getElementById("days-off").replaceChildren(...[...daysOff].sort().map((d) => {
    const remove = h("button", { type: "button", class: "font-bold", "aria-label": `Remove ${d}`, text: "×" });
    remove.addEventListener("click", () => { daysOff.delete(d); renderDaysOff(); });
    return h("li", { class: "badge gap-1 bg-slate-100 text-slate-700" }, d, remove);
  }));
}

document.getElementById("add-day-off").addEventListener("click", () => {
  const input = document.getElementById("day_off");
  if (input.value) { daysOff.add(input.value); input.value = ""; renderDaysOff(); }
});

function ensureZone(zone) {
  const select = form.time_zone;
  if (![...select.options].some((o) => o.value === zone)) select.append(h("option", { value: zone, text: zone }));
  select.value = zone;
}

function fill(rules) {
  ensureZone(rules.configured ? rules.time_zone : Intl.DateTimeFormat().resolvedOptions().timeZone);
  for (const day of grid.querySelectorAll("[data-day]")) {
    day.querySelector("[data-ranges]").replaceChildren();
    refreshDay(day);
  }
  for (const r of rules.weekly) addRange(grid.querySelector(`[data-day="${r.weekday}"]`), r.start, r.end);
  form.slot_minutes.value = String(rules.slot_minutes);
  form.price.value = (rules.price_cents / 100).toFixed(2);
  form.currency.value = rules.currency;
  form.buffer_minutes.value = rules.buffer_minutes;
  form.min_notice_hours.value = rules.min_notice_hours;
  form.max_days_ahead.value = rules.max_days_ahead;
  daysOff.clear();
  rules.days_off.forEach((d) => daysOff.add(d));
  renderDaysOff();
}

function collect() {
  const weekly = [];
  for (const day of grid.querySelectorAll("[data-day]")) {
    for (const li of day.querySelectorAll("[data-range]")) {
      const end = li.querySelector("[data-end]").value;
      // A range "until 23:59" means until midnight: the day's last slot may end at 24:00.
      weekly.push({ weekday: Number(day.dataset.day), start: li.querySelector("[data-start]").value, end: end === "23:59" ? "24:00" : end });
    }
  }
  const int = (name) => Number.parseInt(form[name].value || "0", 10);
  return {
    time_zone: form.time_zone.value,
    weekly,
    slot_minutes: int("slot_minutes"),
    price_cents: Math.round(Number.parseFloat(form.price.value || "0") * 100),
    currency: form.currency.value,
    buffer_minutes: int("buffer_minutes"),
    min_notice_hours: int("min_notice_hours"),
    max_days_ahead: int("max_days_ahead"),
    days_off: [...daysOff].sort(),
  };
}

async function preview() {
  const from = new Date();
  const to = new Date(from.getTime() + 14 * 86400e3);
  const list = document.getElementById("slot-preview");
  try {
    const page = await api(`/api/mentors/${mentorId}/slots?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
    document.getElementById("preview-zone").textContent = `Shown in ${page.time_zone}, your time zone. The next 14 days.`;
    const opts = { timeZone: page.time_zone };
    list.replaceChildren(...(page.items.length
      ? page.items.slice(0, 24).map((s) => h("li", { class: "pill", text: `${formatTime(s.starts_at, opts)} · ${money(s.price_cents, s.currency)}` }))
      : [h("li", { class: "text-sm text-slate-600", text: "No free slots yet: add weekly hours and save." })]));
  } catch (err) {
    list.replaceChildren(h("li", { class: "text-sm text-slate-600", text: err.message }));
  }
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(form);
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    fill(await api("/api/mentors/me/availability", { method: "PUT", body: collect() }));
    toast("Availability saved", { kind: "success" });
    await preview();
  } catch (err) {
    showError(err, { form });
  } finally {
    button.disabled = false;
  }
});

try {
  fill(await api("/api/mentors/me/availability"));
} catch (err) {
  showError(err, { form });
}
preview();
