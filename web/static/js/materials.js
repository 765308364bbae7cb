// Class materials of a session (GET /api/sessions/{id}/materials: its mentor and booked learners;
// 404, shown as nothing, for anyone else): download links, and for the mentor [Attach a file]
// (POST multipart, the server judges the type by content) and [Remove].
import { api, h, showError, toast } from "./api.js";

function size(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

function row(m, canEdit, refresh) {
  const remove = canEdit ? h("button", { type: "button", class: "btn-ghost btn-sm", "aria-label": `Remove ${m.name}`, text: "Remove" }) : null;
  remove?.addEventListener("click", async () => {
    try {
      await api(m.url, { method: "DELETE" });
      refresh();
    } catch (err) { showError(err); }
  });
  return h("li", { class: "flex flex-wrap items-center gap-2", dataset: { materialId: m.id } },
    h("a", { href: m.url, class: "font-medium text-brand-700 hover:underline", download: m.name, text: m.name }),
    h("span", { class: "text-xs text-slate-500", text: size(m.bytes) }), remove);
}

/** The materials block of a session, or null when this user may not see any (or there are none to read). */
export async function materialsBlock(sessionId, { canEdit = false } = {}) {
  const list = h("ul", { class: "mt-2 space-y-1", "data-testid": "materials-list" });
  const empty = h("p", { class: "text-sm text-slate-600", text: "No files yet." });
  const box = h("section", { class: "card p-4", "aria-labelledby": `materials-${sessionId}`, "data-testid": "materials" },
    h("h2", { id: `materials-${sessionId}`, class: "font-semibold", text: "Class materials" }), list, empty);
  async function refresh() {
    const data = await api(`/api/sessions/${sessionId}/materials`);
    list.replaceChildren(...data.items.map((m) => row(m, canEdit, () => refresh().catch(showError))));
    empty.hidden = data.items.length > 0;
    return data.items.length;
  }
  let count;
  try {
    count = await refresh();
  } catch {
    return null;
  }
  if (!canEdit && !count) return null;
  if (canEdit) {
    const input = h("input", { type: "file", id: `materials-file-${sessionId}`, class: "sr-only", accept: ".pdf,.png,.jpg,.jpeg,.gif,.webp,.txt,.md,.csv,application/pdf,image/*,text/plain" });
    const label = h("label", { for: input.id, class: "btn-secondary btn-sm mt-3 cursor-pointer", text: "Attach a file" });
    const hint = h("p", { class: "mt-1 text-xs text-slate-500", text: "PDF (slides too), images or plain text; up to 20 MB each, 100 MB per session." });
    input.addEventListener("change", async () => {
      const file = input.files?.[0];
      if (!file) return;
      const form = new FormData();
      form.append("file", file, file.name);
      label.textContent = "Uploading…";
      try {
        await api(`/api/sessions/${sessionId}/materials`, { method: "POST", body: form });
        toast(`Attached ${file.name}.`, { kind: "success" });
        await refresh();
      } catch (err) {
        showError(err);
      } finally {
        label.textContent = "Attach a file";
        input.value = "";
      }
    });
    box.append(input, label, hint);
  }
  return box;
}
