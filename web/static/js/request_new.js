// /requests/new: the request form on its own page → "Request submitted".
import { setupRequestForm } from "./request_form.js";

setupRequestForm(document.getElementById("request-form"), () => {
  document.getElementById("request-form-wrap").hidden = true;
  document.getElementById("request-done").hidden = false;
});
