// Session detail → "Need another time?" for the two people of a booked 1:1: propose one of the
// mentor's free slots (on the viewer's clock, zone named), or answer the other side's proposal.
// Until the other side accepts, the class keeps its time. API: /api/sessions/{id}/reschedule,
// /api/reschedules/{id}/accept|decline|withdraw.
import { api, formatTime, h, showError, toast, userTimeZone } from "./api.js";

const root = document.getElementById("session-detail");
const id = root.dataset.sessionId;
const panel = document.getElementById("reschedule");
const note = document.getElementById("reschedule-note");
const actions = document.getElementById("reschedule-actions");
const picker = document.getElementById("reschedule-picker");
const errorBox = document.getElementById("reschedule-error");
const zone = userTimeZone();
const me = Number(document.body.dataset.userId);
const when = (iso) => `${formatTime(iso, { timeZone: zone })}`;

async function act(path, done) {
  errorBox.hidden = true;
  try {
    const p = await api(path, { method: "POST" });
    if (p.status === "accepted") {
      // The page's time (drawn by session_detail.js) follows the move without a reload.
      const field = root.querySelector('[data-field="starts_at"]');
      field?.replaceChildren(h("time", { datetime: p.starts_at, text: formatTime(p.starts_at) }));
    }
    toast(done, { kind: "success" });
    await load();
  } catch (err) {
    showError(err, { box: errorBox });
  }
}

async function openPicker(mentorId) {
  const from = new Date();
  const to = new Date(from.getTime() + 21 * 86400e3);
  const list = document.getElementById("reschedule-slots");
  try {
    const page = await api(`/api/mentors/${mentorId}/slots?from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
    document.getElementById("reschedule-zone").textContent = `The mentor's free times, shown in ${zone} (your time zone).`;
    list.replaceChildren(...(page.items.length ? page.items.slice(0, 40).map((s) => h("li", {},
      h("button", {
        type: "button", class: "btn-secondary btn-sm w-full", "data-new-time": s.starts_at,
        onclick: async () => {
          errorBox.hidden = true;
          try {
            await api(`/api/sessions/${id}/reschedule`, { method: "POST", body: { starts_at: s.starts_at } });
            toast("New time proposed: the class keeps its time until it is accepted", { kind: "success" });
            await load();
          } catch (err) { showError(err, { box: errorBox }); }
        },
        text: when(s.starts_at),
      }))) : [h("li", { class: "text-sm text-slate-600", text: "No free times in the next three weeks." })]));
    picker.hidden = false;
  } catch (err) {
    showError(err, { box: errorBox });
  }
}

async function load() {
  let st;
  try {
    st = await api(`/api/sessions/${id}/reschedule`);
  } catch {
    panel.hidden = true;  // not one of this class's two people, or no such class
    return;
  }
  picker.hidden = true;
  const p = st.pending;
  if (p && p.proposed_by_id === me) {
    note.textContent = `You proposed ${when(p.starts_at)}. Waiting for an answer; until then the class stays at ${when(p.previous_starts_at)}.`;
    actions.replaceChildren(h("button", { type: "button", class: "btn-ghost btn-sm", text: "Withdraw", onclick: () => act(`/api/reschedules/${p.id}/withdraw`, "Proposal withdrawn") }));
  } else if (p) {
    note.textContent = `${p.proposed_by_name} proposes moving this class to ${when(p.starts_at)} (now ${when(p.previous_starts_at)}).`;
    actions.replaceChildren(
      h("button", { type: "button", class: "btn-primary btn-sm", text: "Accept new time", onclick: () => act(`/api/reschedules/${p.id}/accept`, "The class moved to the new time") }),
      h("button", { type: "button", class: "btn-secondary btn-sm", text: "Keep current time", onclick: () => act(`/api/reschedules/${p.id}/decline`, "The class keeps its time") }));
  } else if (st.can_propose) {
    note.textContent = "Propose another of the mentor's free times; the other side accepts or declines.";
    actions.replaceChildren(h("button", { type: "button", class: "btn-secondary btn-sm", text: "Propose a new time", onclick: () => openPicker(st.mentor_id) }));
  } else {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
}

// Only a booked 1:1's two people have anything here: ask the API only for them (no 404 noise).
api(`/api/sessions/${id}`).then((s) => {
  if (s.capacity === 1 && s.status === "scheduled" && (s.is_owner || s.booked)) load();
}).catch(() => {});
