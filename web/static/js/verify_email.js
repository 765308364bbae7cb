// Verify e-mail: POST the token from the mailed link (a POST, so link scanners can't confirm by prefetching).
import { api } from "./api.js";

const box = document.getElementById("verify");
const state = (name) => box.querySelector(`[data-verify-state="${name}"]`);
try {
  await api("/api/auth/verify-email", { method: "POST", body: { token: box.dataset.token } });
  state("pending").hidden = true;
  state("ok").hidden = false;
} catch (err) {
  state("pending").hidden = true;
  state("error").textContent = err.message;
  state("error").hidden = false;
}
