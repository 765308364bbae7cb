// Profile: POST /api/users/{id}/update, and a new picture to /api/users/{id}/avatar.
import { api, clearErrors, showError, toast } from "./api.js";

const form = document.getElementById("profile-form");
const id = form.dataset.userId;
const role = form.dataset.role;
const avatarInput = document.getElementById("avatar");
const preview = document.getElementById("avatar-preview");
const tags = (v) => (v || "").split(",").map((s) => s.trim()).filter(Boolean);

avatarInput.addEventListener("change", () => {
  const file = avatarInput.files[0];
  if (!file) return;
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  document.getElementById("profile-avatar-wrap").hidden = true;
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
