// Password reset: request a mailed link, or (with ?token=) set the new password.
import { api, clearErrors, showError } from "./api.js";

const requestForm = document.getElementById("reset-request-form");
const confirmForm = document.getElementById("reset-confirm-form");

requestForm?.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(requestForm);
  const ok = requestForm.querySelector("[data-form-success]");
  ok.hidden = true;
  const email = requestForm.email.value.trim();
  if (!email) { showError({ message: "Enter your e-mail address.", fields: { email: "Required" } }, { form: requestForm }); return; }
  const button = requestForm.querySelector("button");
  button.disabled = true;
  try {
    const data = await api("/api/auth/password-reset", { method: "POST", body: { email } });
    ok.textContent = data.message;
    ok.hidden = false;
  } catch (err) {
    showError(err, { form: requestForm });
  } finally {
    button.disabled = false;
  }
});

confirmForm?.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(confirmForm);
  const password = confirmForm.password.value;
  if (password !== confirmForm.password2.value) {
    showError({ message: "The passwords don't match.", fields: { password2: "Doesn't match the new password." } }, { form: confirmForm });
    return;
  }
  const button = confirmForm.querySelector("button");
  button.disabled = true;
  try {
    await api("/api/auth/password-reset/confirm", { method: "POST", body: { token: confirmForm.dataset.token, password } });
    location.assign("/login?reset=1");
  } catch (err) {
    showError(err, { form: confirmForm });
    button.disabled = false;
  }
});
