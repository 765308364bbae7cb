// /mentor/sessions/new and /mentor/sessions/{id}: the session form as a page, [Save] and [Publish].
import { api, toast } from "./api.js";
import { sessionForm } from "./mentor_session_form.js";

const card = document.getElementById("edit-card");
const statusLine = document.getElementById("edit-status");
const loadError = document.getElementById("load-error");
const id = card.dataset.sessionId;

function describe(s) {
  statusLine.textContent = s.status === "draft" ? "Draft: only you can see it until you publish it."
    : `Status: ${s.status}.${s.status === "scheduled" ? " Learners who booked are told about changes." : ""}`;
}

const editor = sessionForm(document.getElementById("session-page-form"), {
  onSaved(s, { published, created }) {
    describe(s);
    if (published) {
      toast("Published. Learners can book it now.", { kind: "success" });
      setTimeout(() => { location.href = "/mentor/sessions?view=scheduled"; }, 400);
      return;
    }
    toast(created ? "Draft saved." : "Changes saved.", { kind: "success" });
    if (created) history.replaceState(null, "", `/mentor/sessions/${s.id}`);
  },
});

if (id) {
  try {
    const s = await api(`/api/sessions/${id}`);
    if (!s.is_owner) throw new Error("This session belongs to another mentor.");
    editor.fill(s);
    describe(s);
    if (!["draft", "scheduled"].includes(s.status)) {
      editor.form.querySelectorAll("input, textarea, select, button").forEach((el) => { el.disabled = true; });
    }
  } catch (err) {
    loadError.textContent = err.message;
    loadError.hidden = false;
    card.hidden = true;
  }
} else {
  describe({ status: "draft" });
}
