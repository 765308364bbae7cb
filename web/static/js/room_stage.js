// Where each video tile goes on the stage: pure geometry, no DOM (room_tiles.js applies it).
//
// The stage shows people as large as it can:
// - alone: your own picture fills the stage;
// - a 1:1: the other person fills the stage and you are a small picture-in-picture in a corner;
// - a gallery: every tile the same size, in the grid (columns x rows) that gives the tiles the
//   most area for their count and the stage's shape, recomputed on every resize, join and leave;
// - speaker view, and any screen share: one tile gets most of the stage (the screen share, else
//   the active speaker) and the others sit in a strip beside or below it.
// A camera tile may crop its video by up to a quarter of its width (never its height: heads and
// chins stay) to fill more of the stage; a screen share is letterboxed, never cropped.

/** The widest and narrowest tile shapes a camera tile may take (width / height). */
export const CAMERA_ASPECT = 16 / 9;
const MAX_CROP = 0.75; // a tile at least this share of its video's width

/** Aspect ratios a tile showing video of `aspect` may take: [narrowest, widest]. */
export function aspectRange(aspect, screen) {
  return screen ? [aspect, aspect] : [aspect * MAX_CROP, aspect];
}

/** The largest box inside `w` x `h` whose aspect ratio lies in `[lo, hi]`. */
export function fitBox(w, h, [lo, hi]) {
  if (w <= 0 || h <= 0) return { w: 0, h: 0 };
  const a = w / h;
  if (a > hi) return { w: h * hi, h };
  if (a < lo) return { w, h: w / lo };
  return { w, h };
}

/**
 * The grid for `n` equal tiles in `w` x `h` with `gap` between them: {cols, rows, w, h} of one
 * tile. Every column count is tried; the one whose tiles get the most area wins, and among
 * near-equal ones (within 1 %) the one with the fewest empty cells.
 */
export function bestGrid(n, w, h, gap, range = aspectRange(CAMERA_ASPECT, false)) {
  let best = { cols: 1, rows: Math.max(n, 1), w: 0, h: 0 };
  let bestArea = -1;
  let bestEmpty = Infinity;
  for (let cols = 1; cols <= Math.max(n, 1); cols++) {
    const rows = Math.ceil(n / cols);
    const box = fitBox((w - (cols - 1) * gap) / cols, (h - (rows - 1) * gap) / rows, range);
    const area = box.w * box.h;
    const empty = cols * rows - n;
    if (area > bestArea * 1.01 || (area >= bestArea * 0.99 && empty < bestEmpty)) {
      best = { cols, rows, w: box.w, h: box.h };
      bestArea = area;
      bestEmpty = empty;
    }
  }
  return best;
}

/** `keys` laid out as `grid` inside the rectangle `area`, centred, the last row centred too. */
function placeGrid(keys, grid, area, gap, out, fit) {
  const { cols, rows } = grid;
  const totalH = rows * grid.h + (rows - 1) * gap;
  const top = area.y + (area.h - totalH) / 2;
  keys.forEach((key, i) => {
    const row = Math.floor(i / cols);
    const inRow = row === rows - 1 ? keys.length - row * cols : cols;
    const rowW = inRow * grid.w + (inRow - 1) * gap;
    const left = area.x + (area.w - rowW) / 2;
    out.set(key, {
      x: left + (i % cols) * (grid.w + gap), y: top + row * (grid.h + gap), w: grid.w, h: grid.h,
      fit: fit(key), role: "grid",
    });
  });
}

function centred(box, area) {
  return { x: area.x + (area.w - box.w) / 2, y: area.y + (area.h - box.h) / 2, w: box.w, h: box.h };
}

/**
 * Lay out `tiles` ([{key, local, screen, aspect}] in display order) on a `w` x `h` stage.
 * `featured`: the key speaker view (or a screen share) puts on the stage, or null for a
 * gallery. Returns {mode, rects: Map key -> {x, y, w, h, fit: "cover"|"contain", role}} where
 * role is "stage", "pip", "strip" or "grid".
 */
export function layoutStage(tiles, { w, h, gap, featured }) {
  const rects = new Map();
  const area = { x: 0, y: 0, w, h };
  const fit = (t) => (t.screen ? "contain" : "cover");
  const byKey = new Map(tiles.map((t) => [t.key, t]));
  if (!tiles.length || w <= 0 || h <= 0) return { mode: "empty", rects };
  const remote = tiles.filter((t) => !t.local);
  const locals = tiles.filter((t) => t.local);

  if (tiles.length === 1) {
    const t = tiles[0];
    rects.set(t.key, { ...centred(fitBox(w, h, aspectRange(t.aspect, t.screen)), area), fit: fit(t), role: "stage" });
    return { mode: "solo", rects };
  }

  // a 1:1: the other person on the stage, ourselves in a corner
  if (remote.length === 1 && !remote[0].screen && locals.length === 1 && !locals[0].screen) {
    const other = remote[0];
    const me = locals[0];
    rects.set(other.key, { ...centred(fitBox(w, h, aspectRange(other.aspect, false)), area), fit: "cover", role: "stage" });
    // a fifth of the stage's width (a third on a tall one), no taller than a third of a short one
    const portrait = w < h;
    const aspect = Math.max(me.aspect, 0.5);
    const pipW = Math.min(Math.max(Math.min((portrait ? 0.3 : 0.2) * w, 0.35 * h * aspect), 72), portrait ? 150 : 260);
    const pipH = pipW / aspect;
    const margin = Math.max(gap, 8);
    rects.set(me.key, { x: w - pipW - margin, y: h - pipH - margin, w: pipW, h: pipH, fit: "cover", role: "pip" });
    return { mode: "one-to-one", rects };
  }

  const star = featured && byKey.has(featured) ? byKey.get(featured) : null;
  if (star) {
    const others = tiles.filter((t) => t !== star);
    // the strip goes beside a wide stage, below a tall one
    const beside = w / h > 1.9;
    const stripSize = beside
      ? Math.min(Math.max(w * 0.18, 120), 280)
      : Math.min(Math.max(h * 0.2, 72), 180);
    const main = beside ? { x: 0, y: 0, w: w - stripSize - gap, h } : { x: 0, y: 0, w, h: h - stripSize - gap };
    const strip = beside ? { x: main.w + gap, y: 0, w: stripSize, h } : { x: 0, y: main.h + gap, w, h: stripSize };
    rects.set(star.key, { ...centred(fitBox(main.w, main.h, aspectRange(star.aspect, star.screen)), main), fit: fit(star), role: "stage" });
    const grid = bestGrid(others.length, strip.w, strip.h, gap);
    const stripRects = new Map();
    placeGrid(others.map((t) => t.key), grid, strip, gap, stripRects, (key) => fit(byKey.get(key)));
    for (const [key, r] of stripRects) rects.set(key, { ...r, role: "strip" });
    return { mode: "speaker", rects };
  }

  const grid = bestGrid(tiles.length, w, h, gap);
  placeGrid(tiles.map((t) => t.key), grid, area, gap, rects, (key) => fit(byKey.get(key)));
  return { mode: "gallery", rects };
}

/**
 * How tall the video itself is drawn in a tile of `rect` (CSS pixels): a covering video is at
 * least as tall as its tile, a contained one at most. This, in device pixels, is what the SFU
 * picks the simulcast layer by.
 */
export function shownHeight(rect, aspect, fit) {
  const byWidth = rect.w / Math.max(aspect, 0.01);
  return fit === "cover" ? Math.max(rect.h, byWidth) : Math.min(rect.h, byWidth);
}
