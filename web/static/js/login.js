// Login: POST /api/auth/login (sets the session cookie), then go to the role's dashboard or `next`.
import { api, clearErrors, showError } from "./api.js";

const form = document.getElementById("login-form");
const button = form.querySelector('button[type="submit"]');

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(form);
  const email = form.email.value.trim();
  const password = form.password.value;
  if (!email || !password) {
    showError({ message: "Enter your email and password.", fields: { ...(!email && { email: "Required" }), ...(!password && { password: "Required" }) } }, { form });
    return;
  }
  button.disabled = true;
  button.textContent = "Signing in…";
  try {
    const body = { email, password };
    if (form.next.value) body.next = form.next.value;
    const data = await api("/api/auth/login", { method: "POST", body });
    location.assign(data.redirect || "/");
  } catch (err) {
    if (err.status === 401) err.message = "Invalid credentials";
    showError({ message: err.message }, { form });
    button.disabled = false;
    button.textContent = "Sign In";
    form.password.focus();
  }
});
