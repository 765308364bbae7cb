"""When a room page's peer connection came up, and when it first decoded each publisher's
camera and first decoded it in HD: ``SAMPLER`` notes both in the page every 50 ms,
``pair_times`` turns them into seconds per (subscriber, publisher) pair.

The time runs from both peer connections being up (the later of the two ``connected``
events: the SFU cannot forward before), and from the later of the two pages opening.
Participants are anything with ``name``, ``entered_at`` (ms) and ``page.evaluate``:
Chromium through Playwright, Firefox through ``firefox_page``.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.media_timeline import HD_ROWS

# Started once per page: notes when each peer connection comes up and when the first frame
# of every remote video arrives, and its first frame of HD_ROWS rows or more (Date.now(): one
# clock for every page on this machine).
SAMPLER = """() => {
  if (window.__rq) return;
  const rq = window.__rq = {connected: [], first: {}, hd: {}, pcs: 0};
  let pc = null, gen = 0;
  const tick = async () => {
    const room = window.__room;
    if (!room || !room.pc) return;
    if (room.pc !== pc) {
      pc = room.pc; gen = ++rq.pcs;
      const g = gen, p = pc;
      const seen = () => { if (p.connectionState === "connected" && !rq.connected.some((c) => c.gen === g)) rq.connected.push({gen: g, at: Date.now()}); };
      p.addEventListener("connectionstatechange", seen);
      seen();
    }
    for (const part of room.state.participants.values()) {
      for (const t of part.tracks) {
        if (t.kind !== "video" || t.mid == null) continue;
        const key = `${gen}|${part.peer_id}|${t.source}`;
        if (rq.hd[key]) continue;
        const tr = pc.getTransceivers().find((x) => x.mid === t.mid);
        if (!tr) continue;
        const stats = await tr.receiver.getStats();
        stats.forEach((s) => {
          if (s.type !== "inbound-rtp" || !(s.framesDecoded > 0)) return;
          if (!rq.first[key]) rq.first[key] = Date.now();
          if (s.frameHeight >= HD_ROWS && !rq.hd[key]) rq.hd[key] = Date.now();
        });
      }
    }
  };
  setInterval(tick, 50);
}""".replace("HD_ROWS", str(HD_ROWS))


def pair_times(rq: dict[str, Any], people: list[Any], names: dict[str, str]) -> list[dict[str, Any]]:
    """join -> first frame and -> HD for every (subscriber, publisher camera) pair whose
    subscriber is connected, in seconds from both peer connections being up and from the
    later of the two pages opening (None: not yet)."""
    rows: list[dict[str, Any]] = []
    for sub in people:
        s = rq[sub.name]
        if not s or not s["connected"]:
            continue
        gen = max(c["gen"] for c in s["connected"])
        sub_up = max(c["at"] for c in s["connected"] if c["gen"] == gen)
        for pub in people:
            if pub is sub:
                continue
            p = rq[pub.name]
            pub_up = min((c["at"] for c in p["connected"]), default=None) if p else None
            key = f"{gen}|{names[pub.name]}|camera"
            got, hd = s["first"].get(key), s.get("hd", {}).get(key)
            up = max(sub_up, pub_up) if pub_up is not None else None
            opened = max(sub.entered_at, pub.entered_at)  # the later of the two arrivals
            rows.append(
                {
                    "subscriber": sub.name,
                    "publisher": pub.name,
                    "after_connected_s": round((got - up) / 1000, 3) if got and up else None,
                    "after_page_open_s": round((got - opened) / 1000, 3) if got else None,
                    "hd_after_connected_s": round((hd - up) / 1000, 3) if hd and up else None,
                }
            )
    return rows


def first_frames(people: list[Any], names: dict[str, str], settle: float) -> list[dict[str, Any]]:
    """``pair_times`` once every pair decodes (or after ``settle`` seconds)."""
    deadline = time.monotonic() + settle
    while True:
        rows = pair_times({p.name: p.page.evaluate("() => window.__rq") for p in people}, people, names)
        if (
            rows
            and len(rows) == len(people) * (len(people) - 1)
            and all(r["after_connected_s"] is not None for r in rows)
        ):
            return rows
        if time.monotonic() > deadline:
            return rows
        time.sleep(0.25)
