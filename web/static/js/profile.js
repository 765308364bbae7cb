// Profile: POST /api/users/{id}/update, and a new picture to /api/users/{id}/avatar.
import { api, clearErrors, showError, toast } from "./api.js";

const form = document.getElementById("profile-form");
const id = form.dataset.userId;
const role = form.dataset.role;
const avatarInput = document.getElementById("avatar");
const preview = document.getElementById("avatar-preview");
const tags = (v) => (v || "").split(",").map((s) => s.trim()).filter(Boolean);

const avatarError = form.querySelector('[data-error-for="file"]');
const MAX_AVATAR_BYTES = 4 * 1024 * 1024;

// A file the browser cannot show as an image (or too large) is refused here, with the reason,
// before anything is uploaded: the old picture stays.
function refuseAvatar(message) {
  avatarInput.value = "";
  preview.hidden = true;
  preview.removeAttribute("src");
  document.getElementById("profile-avatar-wrap").hidden = false;
  avatarError.textContent = message;
  avatarError.hidden = false;
}

avatarInput.addEventListener("change", () => {
  const file = avatarInput.files[0];
  avatarError.hidden = true;
  if (!file) return;
  if (file.size > MAX_AVATAR_BYTES) { refuseAvatar("This image is larger than 4 MB."); return; }
  preview.onerror = () => refuseAvatar("This file is not an image we can use: choose a PNG, JPEG, WebP or GIF.");
  preview.onload = () => {
    preview.hidden = false;
    document.getElementById("profile-avatar-wrap").hidden = true;
  };
  preview.src = URL.createObjectURL(file);
});

document.getElementById("use-browser-tz").addEventListener("click", () => {
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const sel = form.timezone;
  if (![...sel.options].some((o) => o.value === tz)) sel.add(new Option(tz, tz));
  sel.value = tz;
});

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(form);
  const body = { full_name: form.full_name.value.trim(), bio: form.bio.value, timezone: form.timezone.value };
  if (role === "mentor") {
    body.domains = [...form.querySelectorAll('input[name="domains"]:checked')].map((c) => c.value);
    body.skills = tags(form.skills.value);
  } else if (role === "learner") {
    body.interests = tags(form.interests.value);
  }
  const prefs = {
    email_notifications: form.pref_email_notifications.checked,
    reminders: form.pref_reminders.checked,
    remind_email_24h: form.pref_remind_email_24h.checked,
    remind_email_1h: form.pref_remind_email_1h.checked,
    browser_notifications: form.pref_browser_notifications.checked,
  };
  const pm = form.querySelector('input[name="pref_payment_method"]:checked');
  if (pm) prefs.payment_method = pm.value;
  body.preferences = prefs;
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    if (prefs.browser_notifications && "Notification" in window && Notification.permission === "default") {
      await Notification.requestPermission().catch(() => {});
    }
    await api(`/api/users/${id}/update`, { method: "POST", body });
    if (avatarInput.files[0]) {
      const data = new FormData();
      data.append("file", avatarInput.files[0]);
      await api(`/api/users/${id}/avatar`, { method: "POST", body: data });
    }
    toast("Profile saved", { kind: "success" });
    setTimeout(() => location.reload(), 600);
  } catch (err) {
    showError(err, { form });
  } finally {
    button.disabled = false;
  }
});

// The secret calendar feed: shown, copied, and regenerated (which revokes the old address).
const calendarUrl = document.getElementById("calendar-url");
if (calendarUrl) {
  const showFeed = (feed) => { calendarUrl.value = feed.url; };
  api("/api/calendar/feed").then(showFeed).catch((err) => showError(err));
  document.getElementById("calendar-copy").addEventListener("click", async () => {
    calendarUrl.select();
    try { await navigator.clipboard.writeText(calendarUrl.value); toast("Calendar address copied", { kind: "success" }); }
    catch { toast("Select the address and copy it", { kind: "info" }); }
  });
  document.getElementById("calendar-regenerate").addEventListener("click", async () => {
    if (!window.confirm("Make a new address? Calendars subscribed to the old one stop updating.")) return;
    try {
      showFeed(await api("/api/calendar/feed", { method: "POST" }));
      toast("New calendar address made; the old one no longer works", { kind: "success" });
    } catch (err) { showError(err); }
  });
}
