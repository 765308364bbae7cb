// Mentor → Profile: Expertise (domains, skills) and Bio; [Save Changes] → POST /api/users/{id}/update.
import { api, clearErrors, showError, toast } from "./api.js";

const form = document.getElementById("mentor-profile-form");
const id = form.dataset.userId;
const tags = (v) => (v || "").split(",").map((s) => s.trim()).filter(Boolean);

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(form);
  const body = {
    domains: [...form.querySelectorAll('input[name="domains"]:checked')].map((c) => c.value),
    skills: tags(form.skills.value),
    bio: form.bio.value,
  };
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const me = await api(`/api/users/${id}/update`, { method: "POST", body });
    form.skills.value = (me.skills || []).join(", ");
    toast("Changes saved", { kind: "success" });
  } catch (err) {
    showError(err, { form });
  } finally {
    button.disabled = false;
  }
});
