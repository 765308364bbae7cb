// Register wizard: Role → Basic Info → Expertise & Profile Image → Verify & Complete.
// Finish: POST /api/auth/register; with an image, sign in, upload it to
// /api/users/{id}/avatar and sign out again; then /login shows "check your e-mail".
import { api, clearErrors, showError } from "./api.js";

const form = document.getElementById("register-form");
const steps = [...form.querySelectorAll("[data-step]")];
const bar = document.getElementById("progress-bar");
const progress = document.getElementById("progress");
const counter = document.getElementById("step-counter");
const avatarInput = document.getElementById("avatar");
const preview = document.getElementById("avatar-preview");
const placeholder = document.getElementById("avatar-placeholder");
const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const MAX_AVATAR = 4 * 1024 * 1024;
let current = 1;
let previewUrl = null;

const role = () => form.querySelector('input[name="role"]:checked')?.value || "";
const tags = (value) => value.split(",").map((s) => s.trim()).filter(Boolean);

function show(n) {
  current = n;
  steps.forEach((s) => { s.hidden = Number(s.dataset.step) !== n; });
  bar.style.width = `${n * 25}%`;
  progress.setAttribute("aria-valuenow", String(n));
  counter.textContent = `Step ${n} of 4`;
  document.querySelectorAll("[data-step-label]").forEach((el) => {
    el.classList.toggle("text-brand-700", Number(el.dataset.stepLabel) <= n);
  });
  document.querySelectorAll("[data-for-role]").forEach((el) => { el.hidden = el.dataset.forRole !== role(); });
  if (n === 4) fillReview();
  const focusable = steps[n - 1].querySelector("input:not([type=hidden]):not(.sr-only), h2");
  if (n > 1 && focusable) {
    if (focusable.tagName === "H2") focusable.setAttribute("tabindex", "-1");
    focusable.focus({ preventScroll: false });
  }
}

// Step 1: [Next] is enabled once a role is chosen.
const roleNext = steps[0].querySelector("[data-next]");
const syncRole = () => { roleNext.disabled = !role(); };
form.querySelectorAll('input[name="role"]').forEach((r) => r.addEventListener("change", syncRole));
syncRole();

// Step 2: live password strength.
function strength(pw) {
  if (pw.length < 8) return 0;
  let score = 1;
  if (/[a-z]/i.test(pw) && /\d/.test(pw)) score++;
  if (/[a-z]/.test(pw) && /[A-Z]/.test(pw)) score++;
  if (/[^A-Za-z0-9]/.test(pw) || pw.length >= 14) score++;
  return score;
}
const LABELS = ["too short", "weak", "fair", "good", "strong"];
const COLORS = ["bg-slate-200", "bg-rose-500", "bg-amber-500", "bg-lime-500", "bg-emerald-600"];
form.password.addEventListener("input", () => {
  const s = strength(form.password.value);
  document.querySelectorAll("[data-strength-seg]").forEach((seg, i) => {
    seg.className = `h-1.5 flex-1 rounded-full ${i < s ? COLORS[s] : "bg-slate-200"}`;
  });
  const text = document.getElementById("strength-text");
  text.textContent = `Password strength: ${LABELS[s]}`;
  text.className = `mt-1 text-sm ${s <= 1 ? "text-rose-700" : s === 2 ? "text-amber-700" : "text-emerald-700"}`;
});

function validateStep(n) {
  clearErrors(form);
  const fields = {};
  if (n === 2) {
    if (!form.full_name.value.trim()) fields.full_name = "Enter your full name.";
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(form.email.value.trim())) fields.email = "Enter a valid e-mail address.";
    const pw = form.password.value;
    if (pw.length < 8) fields.password = "Password must be at least 8 characters.";
    else if (!/[a-z]/i.test(pw) || !/\d/.test(pw)) fields.password = "Password must contain a letter and a digit.";
  }
  if (n === 3 && role() === "mentor" && !form.querySelector('input[name="domains"]:checked')) {
    fields.domains = "Choose at least one domain you teach.";
  }
  if (n === 3 && avatarInput.files[0] && avatarInput.files[0].size > MAX_AVATAR) {
    fields.avatar = "The image is too large (max 4 MB).";
  }
  if (Object.keys(fields).length) {
    showError({ message: "", fields }, { form, box: document.createElement("div") });
    form.querySelector("[aria-invalid]")?.focus();
    return false;
  }
  return true;
}

form.addEventListener("click", (ev) => {
  const next = ev.target.closest("[data-next]");
  const back = ev.target.closest("[data-back]");
  if (next && !next.disabled && validateStep(current)) show(current + 1);
  if (back) show(current - 1);
  const suggest = ev.target.closest("[data-suggest]");
  if (suggest) {
    const have = tags(form.interests.value);
    if (!have.map((t) => t.toLowerCase()).includes(suggest.dataset.suggest.toLowerCase())) have.push(suggest.dataset.suggest);
    form.interests.value = have.join(", ");
  }
});

// Enter in a text field moves to the next step instead of submitting early.
form.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && ev.target.tagName === "INPUT" && current < 4) {
    ev.preventDefault();
    steps[current - 1].querySelector("[data-next]")?.click();
  }
});

// Step 3: instant preview of the chosen image (nothing is uploaded yet).
avatarInput.addEventListener("change", () => {
  const file = avatarInput.files[0];
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  if (!file) { preview.hidden = true; placeholder.hidden = false; return; }
  if (!file.type.startsWith("image/")) {
    showError({ message: "", fields: { avatar: "Choose an image file." } }, { form, box: document.createElement("div") });
    avatarInput.value = "";
    return;
  }
  // the name says image; whether it is one shows when the browser decodes it
  preview.onerror = () => {
    showError({ message: "", fields: { avatar: "This file is not an image we can use: choose a PNG, JPEG, WebP or GIF." } }, { form, box: document.createElement("div") });
    avatarInput.value = "";
    preview.hidden = true;
    placeholder.hidden = false;
  };
  previewUrl = URL.createObjectURL(file);
  preview.src = previewUrl;
  preview.hidden = false;
  placeholder.hidden = true;
});

function payload() {
  const r = role();
  const body = {
    role: r, full_name: form.full_name.value.trim(), email: form.email.value.trim(),
    password: form.password.value, timezone: timeZone,
  };
  if (r === "mentor") {
    body.domains = [...form.querySelectorAll('input[name="domains"]:checked')].map((c) => c.value);
    body.skills = tags(form.skills.value);
  } else {
    body.interests = tags(form.interests.value);
  }
  return body;
}

function fillReview() {
  const body = payload();
  const set = (k, v) => { const el = form.querySelector(`[data-review="${k}"]`); if (el) el.textContent = v; };
  set("full_name", body.full_name);
  set("email", body.email);
  set("role", body.role);
  set("domains", (body.domains || []).join(", ") || "—");
  set("skills", (body.skills || []).join(", ") || "—");
  set("interests", (body.interests || []).join(", ") || "—");
  set("timezone", body.timezone);
  const img = document.getElementById("review-avatar");
  img.hidden = !previewUrl;
  if (previewUrl) img.src = previewUrl;
}

const STEP_OF_FIELD = { role: 1, full_name: 2, email: 2, password: 2, domains: 3, skills: 3, interests: 3 };

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (current !== 4) return;
  const finish = document.getElementById("finish");
  finish.disabled = true;
  finish.textContent = "Creating your account…";
  const body = payload();
  try {
    const created = await api("/api/auth/register", { method: "POST", body });
    const file = avatarInput.files[0];
    if (file) {
      try {
        await api("/api/auth/login", { method: "POST", body: { email: body.email, password: body.password } });
        const data = new FormData();
        data.append("file", file);
        await api(`/api/users/${created.user.id}/avatar`, { method: "POST", body: data });
      } catch (e) {
        console.warn("avatar upload failed", e);  // the account exists; the picture can be set on /profile
      } finally {
        await api("/api/auth/logout", { method: "POST" }).catch(() => {});
      }
    }
    location.assign(`/login?registered=1&email=${encodeURIComponent(body.email)}`);
  } catch (err) {
    finish.disabled = false;
    finish.textContent = "Finish";
    const first = Object.keys(err.fields || {}).map((f) => STEP_OF_FIELD[f.split(".")[0]]).filter(Boolean);
    if (err.code === "email_taken") { err.fields = { email: err.message }; first.push(2); }
    if (err.code === "weak_password") first.push(2);
    const step = first.length ? Math.min(...first) : 4;
    if (step !== 4) show(step);
    showError(err, { form, box: step === 4 ? null : document.createElement("div") });
  }
});

show(1);
