// Shared dashboard pieces for the admin (and mentor) subtabs: a confirmation dialog,
// responsive tables (cards on phones), paged lists and small formatters.
import { api, h, itemsOf } from "./api.js";

/** Ask before a destructive action. Resolves true when confirmed. `extra` may add inputs to the dialog. */
export function confirmDialog({ title, text = "", confirm = "Confirm", cancel = "Cancel", danger = true, extra = null }) {
  return new Promise((resolve) => {
    const err = h("div", { class: "alert-error mt-3", dataset: { formError: "" }, hidden: true });
    const yes = h("button", { type: "button", class: danger ? "btn-danger" : "btn-primary", text: confirm });
    const no = h("button", { type: "button", class: "btn-secondary", text: cancel });
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const dlg = h("dialog", { class: "w-[min(92vw,28rem)] rounded-2xl p-6 shadow-xl backdrop:bg-slate-900/50", "aria-labelledby": titleId },
      h("h2", { id: titleId, class: "text-lg font-semibold", text: title }),
      text ? h("p", { class: "mt-2 text-sm text-slate-600", text }) : null,
      extra, err,
      h("div", { class: "mt-6 flex justify-end gap-2" }, no, yes));
    let done = false;
    const finish = (v) => { if (done) return; done = true; dlg.close(); dlg.remove(); resolve(v); };
    no.addEventListener("click", () => finish(false));
    yes.addEventListener("click", () => finish(true));
    dlg.addEventListener("cancel", () => finish(false));
    document.body.append(dlg);
    dlg.showModal();
    no.focus();
  });
}

/** Escape-safe value cell text. */
export function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function fmtDuration(seconds) {
  seconds = Math.round(Number(seconds) || 0);
  const hh = Math.floor(seconds / 3600);
  const mm = Math.floor((seconds % 3600) / 60);
  const ss = seconds % 60;
  if (hh) return `${hh} h ${mm} min`;
  if (mm) return `${mm} min${ss ? ` ${ss} s` : ""}`;
  return `${ss} s`;
}

export function badge(text, tone = "slate") {
  const tones = {
    slate: "bg-slate-100 text-slate-700", green: "bg-emerald-100 text-emerald-800", red: "bg-rose-100 text-rose-800",
    amber: "bg-amber-100 text-amber-900", blue: "bg-brand-100 text-brand-800",
  };
  return h("span", { class: `badge whitespace-nowrap ${tones[tone] || tones.slate}`, text });
}

const STATUS_TONES = {
  draft: "slate", scheduled: "blue", live: "red", completed: "green", cancelled: "amber", open: "blue",
  accepted: "green", declined: "amber", expired: "slate", paid: "green", pending: "amber", failed: "red",
  ready: "green", recording: "red", processing: "amber", proposed: "amber", attended: "green", no_show: "amber",
  refunded: "amber", released: "green",
};
export function statusBadge(status) {
  return badge(status, STATUS_TONES[status] || "slate");
}

/**
 * A table on wide screens that becomes a stack of cards on phones.
 * columns: [{label, cell: (row) => Node|string, class?}]; returns {el, tbody, render(rows), append(rows)}.
 */
export function responsiveTable(columns, { rowKey = (r) => r.id, testid = null, caption = null } = {}) {
  const thead = h("thead", { class: "hidden bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-500 md:table-header-group" },
    h("tr", {}, columns.map((c) => h("th", { scope: "col", class: "px-4 py-3", text: c.label }))));
  const tbody = h("tbody", { class: "block space-y-3 md:table-row-group md:space-y-0 md:divide-y md:divide-slate-100" });
  const table = h("table", { class: "block w-full text-sm md:table", "data-testid": testid },
    caption ? h("caption", { class: "sr-only", text: caption }) : null, thead, tbody);
  const wrap = h("div", { class: "md:overflow-x-auto md:rounded-2xl md:border md:border-slate-200 md:bg-white md:shadow-sm" }, table);
  function row(r) {
    return h("tr", { class: "block rounded-2xl border border-slate-200 bg-white p-4 shadow-sm md:table-row md:rounded-none md:border-0 md:p-0 md:shadow-none", dataset: { rowId: rowKey(r) } },
      columns.map((c) => {
        const v = c.cell(r);
        return h("td", {
          class: `flex items-start justify-between gap-4 py-1 md:table-cell md:px-4 md:py-3 before:shrink-0 before:font-medium before:text-slate-500 before:content-[attr(data-label)] md:before:content-none ${c.class || ""}`,
          "data-label": c.label,
        }, h("div", { class: "min-w-0 text-right md:text-left" }, v instanceof Node ? v : String(v ?? "")));
      }));
  }
  return {
    el: wrap, tbody,
    render(rows) { tbody.replaceChildren(...rows.map(row)); },
    append(rows) { tbody.append(...rows.map(row)); },
    replaceRow(r) { const old = tbody.querySelector(`tr[data-row-id="${CSS.escape(String(rowKey(r)))}"]`); if (old) old.replaceWith(row(r)); },
  };
}

/**
 * A paged list from an API returning {items, total, page, page_size}: renders into `table`,
 * shows `empty`/`errorBox`, and a [Load more] button. `params()` gives the current filters.
 */
export function pagedList({ url, table, empty, errorBox, more, params = () => ({}), pageSize = 25, map = (x) => x }) {
  let page = 1;
  let seq = 0;
  async function load(reset = true) {
    if (reset) page = 1;
    const my = ++seq;
    const q = new URLSearchParams({ ...Object.fromEntries(Object.entries(params()).filter(([, v]) => v !== "" && v != null)), page: String(page), page_size: String(pageSize) });
    errorBox.hidden = true;
    table.tbody.setAttribute("aria-busy", "true");
    try {
      const data = await api(`${url}?${q}`);
      if (my !== seq) return;
      const items = itemsOf(data).map(map);
      if (reset) table.render(items); else table.append(items);
      const shown = table.tbody.children.length;
      empty.hidden = shown > 0;
      more.hidden = shown >= (data.total ?? shown);
      return data;
    } catch (err) {
      if (my !== seq) return;
      if (reset) table.render([]);
      errorBox.textContent = err.message;
      errorBox.hidden = false;
      empty.hidden = true;
      more.hidden = true;
    } finally {
      table.tbody.setAttribute("aria-busy", "false");
    }
  }
  more.addEventListener("click", () => { page += 1; load(false); });
  return { load, reload: () => load(true) };
}

/** Debounce for search inputs. */
export function debounce(fn, ms = 250) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

/**
 * Wire a filter form to a paged list: inputs reload (debounced for text), submit is swallowed.
 * `id` names the list shell from admin/_tab.html (#{id}-table, -empty, -error, -more, -total).
 */
export function filteredList({ id, url, columns, form = null, rowKey, pageSize = 25, totalText = null }) {
  const table = responsiveTable(columns, { rowKey, testid: `${id}-rows`, caption: id });
  document.getElementById(`${id}-table`).append(table.el);
  const totalEl = document.getElementById(`${id}-total`);
  const params = () => (form ? Object.fromEntries(new FormData(form).entries()) : {});
  const list = pagedList({
    url, table, pageSize, params,
    empty: document.getElementById(`${id}-empty`), errorBox: document.getElementById(`${id}-error`),
    more: document.getElementById(`${id}-more`),
  });
  const load = async () => {
    const data = await list.load(true);
    if (totalEl && data) totalEl.textContent = totalText ? totalText(data) : `${data.total} in all`;
    return data;
  };
  if (form) {
    form.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    const later = debounce(load, 300);
    form.addEventListener("input", (ev) => { if (ev.target.type === "search" || ev.target.type === "text") later(); });
    form.addEventListener("change", (ev) => { if (ev.target.tagName === "SELECT") load(); });
  }
  return { table, load };
}
