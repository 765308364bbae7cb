// The request form (page and modal): POST /api/requests/create; mentors are notified in real time.
// Preferred times are entered in the learner's zone (the profile's, else the browser's), like
// every time the pages show, so what they type is what they later read back.
import { api, clearErrors, h, showError, userTimeZone } from "./api.js";
import { localParts, zonedToIso } from "./mentor_session_form.js";

const MAX_TIMES = 10;

function localValue(d, tz) {
  const p = localParts(d.toISOString(), tz);
  return `${p.date}T${p.time}`;
}

/** Wire `form`; `onDone(request)` runs after the request is created. */
export function setupRequestForm(form, onDone) {
  const times = form.querySelector("#times");
  const tz = userTimeZone();
  const min = localValue(new Date(Date.now() + 60 * 60 * 1000), tz);
  times.querySelectorAll("input").forEach((i) => { i.min = min; });
  form.querySelectorAll("[data-tz-label]").forEach((el) => { el.textContent = tz; });

  form.querySelector("#add-time").addEventListener("click", (ev) => {
    const n = times.querySelectorAll("input").length;
    if (n >= MAX_TIMES) return;
    times.append(h("input", { type: "datetime-local", name: "time", class: "input", min, "aria-label": `Preferred time ${n + 1}` }));
    if (n + 1 >= MAX_TIMES) ev.currentTarget.hidden = true;
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    // datetime-local values are wall-clock times in `tz`: send the UTC instants.
    const preferred = [...times.querySelectorAll("input")].map((i) => i.value).filter(Boolean)
      .map((v) => zonedToIso(v.slice(0, 10), v.slice(11, 16), tz));
    const fields = {};
    if (!form.topic.value.trim()) fields.topic = "Say what you want to learn.";
    if (!form.domain.value) fields.domain = "Choose a domain.";
    if (!preferred.length) fields.preferred_times = "Suggest at least one time.";
    if (Object.keys(fields).length) { showError({ message: "Some fields need your attention.", fields }, { form }); return; }
    const body = {
      topic: form.topic.value.trim(), domain: form.domain.value, duration_min: Number(form.duration_min.value),
      skills: form.skills.value.split(",").map((s) => s.trim()).filter(Boolean),
      preferred_times: preferred, description: form.description.value.trim(),
    };
    if (form.dataset.mentorId) body.mentor_id = Number(form.dataset.mentorId);
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const created = await api("/api/requests/create", { method: "POST", body });
      form.reset();
      onDone(created);
    } catch (err) {
      // Field errors like "preferred_times.0" belong to the times fieldset.
      if (err.fields) for (const k of Object.keys(err.fields)) if (k.startsWith("preferred_times.")) err.fields.preferred_times = err.fields[k];
      showError(err, { form });
    } finally {
      button.disabled = false;
    }
  });
}
