// Browse: filters (search, Domain, Price, Date) update the list instantly from GET /api/sessions;
// seat counts follow `seats` messages; recommendations from GET /api/recommendations.
import { api, h, itemsOf, userTimeZone } from "./api.js";
import { liveSeats, sessionCard, watch } from "./sessions_ui.js";

const form = document.getElementById("filters");
const list = document.getElementById("session-list");
const empty = document.getElementById("browse-empty");
const errorBox = document.getElementById("browse-error");
const count = document.getElementById("result-count");
const more = document.getElementById("load-more");
const PAGE_SIZE = 12;
let page = 1;
let controller = null;
let debounce = null;

document.querySelectorAll("[data-tz-label]").forEach((el) => { el.textContent = userTimeZone(); });

function startOfDay(offsetDays) {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  d.setDate(d.getDate() + offsetDays);
  return d;
}

function query() {
  const p = new URLSearchParams();
  const q = form.q.value.trim();
  if (q) p.set("q", q);
  if (form.domain.value) p.set("domain", form.domain.value);
  const price = form.price.value;
  if (price === "free") p.set("max_price", "0");
  else if (price) {
    const [lo, hi] = price.split("-");
    if (lo) p.set("min_price", lo);
    if (hi) p.set("max_price", hi);
  }
  const now = new Date();
  let from = now;
  let to = null;
  switch (form.date.value) {
    case "today": to = startOfDay(1); break;
    case "tomorrow": from = startOfDay(1); to = startOfDay(2); break;
    case "week": to = startOfDay(8); break;
    case "month": to = startOfDay(31); break;
  }
  p.set("date_from", from.toISOString());
  if (to) p.set("date_to", to.toISOString());
  p.set("page", String(page));
  p.set("page_size", String(PAGE_SIZE));
  return p;
}

function syncUrl() {
  const p = new URLSearchParams();
  for (const k of ["q", "domain", "price", "date"]) if (form[k].value) p.set(k, form[k].value);
  const qs = p.toString();
  history.replaceState(null, "", location.pathname + (qs ? `?${qs}` : ""));
}

async function load({ append = false } = {}) {
  controller?.abort();
  controller = new AbortController();
  if (!append) page = 1;
  list.setAttribute("aria-busy", "true");
  errorBox.hidden = true;
  try {
    const data = await api(`/api/sessions?${query()}`, { signal: controller.signal });
    const items = itemsOf(data);
    if (!append) list.replaceChildren();
    items.forEach((s) => list.append(sessionCard(s)));
    watch(items.map((s) => s.id));
    const total = typeof data?.total === "number" ? data.total : list.children.length;
    count.textContent = `${total} session${total === 1 ? "" : "s"}`;
    empty.hidden = list.children.length > 0;
    more.hidden = list.children.length >= total || items.length < PAGE_SIZE;
  } catch (err) {
    if (err.name === "AbortError") return;
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

form.addEventListener("change", () => { syncUrl(); load(); });
form.q.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => { syncUrl(); load(); }, 250); });
form.addEventListener("submit", (ev) => { ev.preventDefault(); syncUrl(); load(); });
more.addEventListener("click", () => { page += 1; load({ append: true }); });

async function recommendations() {
  const section = document.getElementById("recommendations");
  const track = document.getElementById("rec-track");
  let data;
  try {
    data = await api("/api/recommendations");
  } catch {
    return; // no recommendations (yet): the section stays hidden
  }
  const items = itemsOf(data).map((r) => ({ ...(r.session || r), reason: r.reason }));
  if (!items.length) return;
  track.replaceChildren(...items.map((s) => {
    const card = sessionCard(s, { action: h("a", { href: `/sessions/${s.id}?book=1`, class: "btn-primary w-full", text: "Book Now" }) });
    card.classList.add("w-72");
    if (s.reason) card.querySelector("h3").after(h("p", { class: "mt-1 text-xs text-slate-500", text: s.reason }));
    return card;
  }));
  watch(items.map((s) => s.id));
  section.hidden = false;
  document.querySelector("[data-rec-prev]")?.addEventListener("click", () => track.scrollBy({ left: -track.clientWidth * 0.8, behavior: "smooth" }));
  document.querySelector("[data-rec-next]")?.addEventListener("click", () => track.scrollBy({ left: track.clientWidth * 0.8, behavior: "smooth" }));
}

liveSeats();
load();
recommendations();
