"""What each room page decodes and sends over time, sampled in the page, and what the
benchmarks read from it.

``SAMPLER`` runs in every participant's page (Chromium or Firefox) and notes every
``period`` ms, with ``Date.now()`` (one clock for every page on this machine): the frames
decoded and the decoded height of every other participant's camera, the bytes sent per
simulcast rid of its own camera, and its send-side estimate (``availableOutgoingBitrate`` of
the nominated candidate pair; Firefox may not report one). From the samples:

- ``heights``: the layer timeline, each publisher's decoded height at one subscriber;
- ``rid_rates`` / ``estimates``: a publisher's kbit/s per rid and its estimate over time;
- ``recovery_s``: from a network's return to the first frame decoded after it;
  ``blackout_recovery`` takes the network away (tc, ``netshape.blackout``) and reads it back.

``SENDING`` (per-rid bytes and the estimate, read once) is the same reading on demand.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.netshape import SFU_PORT_JS, blackout

#: a learner decodes "HD" at this many rows or more
HD_ROWS = 720

# the page's own sending side: bytes per rid of its camera and the estimate of the nominated pair
SENDING = """async () => {
  const pc = window.__room && window.__room.pc;
  const out = {at: Date.now(), bytes: {}, estimate: null};
  if (!pc) return out;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video" && s.rid) out.bytes[s.rid] = s.bytesSent || 0;
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.availableOutgoingBitrate)
      out.estimate = s.availableOutgoingBitrate;
  });
  return out;
}"""

# Started once per page with the period in ms: window.__tl.samples gets
# [at, gen, {publisherPeerId: [framesDecoded, frameHeight]}, {rid: [bytesSent, framesEncoded]}, estimate]. One
# getStats() a tick; a remote stream is matched by its mid, or by its track (Firefox's stats
# may lack the mid). ``gen`` counts peer connections (a rejoin makes a new one).
SAMPLER = """(period) => {
  if (window.__tl) return;
  const tl = window.__tl = {samples: [], period};
  let pc = null, gen = 0;
  setInterval(async () => {
    const room = window.__room;
    if (!room || !room.pc) return;
    if (room.pc !== pc) { pc = room.pc; gen += 1; }
    const byMid = {}, byTrack = {};
    for (const part of room.state.participants.values())
      for (const t of part.tracks) {
        if (t.kind !== "video" || t.source !== "camera" || t.mid == null) continue;
        byMid[t.mid] = part.peer_id;
        const tr = pc.getTransceivers().find((x) => x.mid === t.mid);
        if (tr && tr.receiver.track) byTrack[tr.receiver.track.id] = part.peer_id;
      }
    const decoded = {}, bytes = {};
    let estimate = null;
    (await pc.getStats()).forEach((s) => {
      const from = s.type === "inbound-rtp" && s.kind === "video" && (byMid[s.mid] || byTrack[s.trackIdentifier]);
      if (from) decoded[from] = [s.framesDecoded || 0, s.frameHeight || 0];
      if (s.type === "outbound-rtp" && s.kind === "video" && s.rid) bytes[s.rid] = [s.bytesSent || 0, s.framesEncoded || 0];
      if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.availableOutgoingBitrate)
        estimate = s.availableOutgoingBitrate;
    });
    tl.samples.push([Date.now(), gen, decoded, bytes, estimate]);
    if (tl.samples.length > 20000) tl.samples.splice(0, 2000);
  }, period);
}"""

READ = "() => window.__tl ? window.__tl.samples : []"

Sample = list[Any]  # [at_ms, gen, decoded, bytes, estimate]


def _thin(samples: list[Sample], every_ms: float) -> list[Sample]:
    """One sample per ``every_ms`` at most (the first of each step)."""
    out: list[Sample] = []
    for s in samples:
        if not out or s[0] - out[-1][0] >= every_ms - 1:
            out.append(s)
    return out


def heights(samples: list[Sample], t0_ms: float, every_ms: float = 250) -> dict[str, list[list[float]]]:
    """Publisher peer id -> [[t s from ``t0_ms``, decoded height], ...] at one subscriber
    (height 0: nothing decoded yet, or not received at that moment)."""
    out: dict[str, list[list[float]]] = {}
    seen: set[str] = set()
    for s in samples:
        seen.update(s[2])
    for at, _gen, decoded, _bytes, _est in _thin(samples, every_ms):
        for peer in seen:
            out.setdefault(peer, []).append([round((at - t0_ms) / 1000, 2), decoded.get(peer, [0, 0])[1]])
    return out


def rid_rates(samples: list[Sample], t0_ms: float, every_ms: float = 250) -> dict[str, list[list[float]]]:
    """rid -> [[t s, kbit/s sent, frames encoded per second], ...] of one publisher's camera,
    since the previous point. ``bytesSent`` counts padding too (browsers pad the lowest layer
    up to what the next layer needs), frames only what the encoder made. A counter that went
    backwards (a new peer connection, or Firefox's stats after a renegotiation) reads as 0."""
    out: dict[str, list[list[float]]] = {}
    thinned = _thin(samples, every_ms)
    for prev, cur in zip(thinned, thinned[1:]):
        dt = (cur[0] - prev[0]) / 1000
        for rid, (b, f) in cur[3].items():
            b0, f0 = prev[3].get(rid, (0, 0)) if cur[1] == prev[1] else (0, 0)
            ok = dt > 0 and b >= b0 and f >= f0
            point = [round((cur[0] - t0_ms) / 1000, 2), round((b - b0) * 8 / dt / 1000 if ok else 0.0, 1)]
            out.setdefault(rid, []).append(point + [round((f - f0) / dt if ok else 0.0, 1)])
    return out


def estimates(samples: list[Sample], t0_ms: float, every_ms: float = 250) -> list[list[float]]:
    """[[t s, the page's send-side estimate in kbit/s], ...] where it reported one."""
    return [
        [round((s[0] - t0_ms) / 1000, 2), round(s[4] / 1000, 1)] for s in _thin(samples, every_ms) if s[4] is not None
    ]


def frames_of(samples: list[Sample], peer: str) -> list[list[Any]]:
    """[[at_ms, frames decoded of ``peer``'s camera, gen], ...]: the shape ``recovery_s`` reads."""
    return [[s[0], s[2].get(peer, [0, 0])[0], s[1]] for s in samples]


def recovery_s(samples: list[list[Any]], back_at_ms: float, column: int = 1) -> float | None:
    """From the network's return to the first frame decoded after it (on the connection the
    page had then, or on any frame of a new one after a rejoin); ``samples`` are
    ``[at_ms, frames decoded, gen, ...]``; ``column`` 3 (blackout.py's sampler): the first
    keyframe decoded after it."""
    before = [(s[column], s[2]) for s in samples if s[0] <= back_at_ms and len(s) > column]
    if not before:
        return None
    n0, gen0 = before[-1]
    for s in samples:
        if len(s) <= column:
            continue
        t, n, gen = s[0], s[column], s[2]
        if t > back_at_ms and ((gen == gen0 and n > n0) or (gen != gen0 and n > 0)):
            return round((t - back_at_ms) / 1000, 3)
    return None


def timeline(
    samples_by_page: dict[str, list[Sample]], names_by_peer: dict[str, str], t0_ms: float, every_ms: float = 250
) -> dict[str, Any]:
    """The report's timeline, times in seconds from ``t0_ms``, people by name: each
    subscriber's decoded height of each publisher, and each publisher's kbit/s per rid and
    send-side estimate (kbit/s)."""
    return {
        "every_ms": every_ms,
        "decoded_height": {
            sub: {names_by_peer.get(peer, peer): points for peer, points in heights(s, t0_ms, every_ms).items()}
            for sub, s in samples_by_page.items()
        },
        "sent_kbps": {pub: rid_rates(s, t0_ms, every_ms) for pub, s in samples_by_page.items()},
        "estimate_kbps": {pub: estimates(s, t0_ms, every_ms) for pub, s in samples_by_page.items()},
    }


def plot(
    tl: dict[str, Any],
    path: Any,
    *,
    title: str,
    publisher: str = "mentor",
    events: dict[str, float] | None = None,
    blackout: tuple[float, float] | None = None,
) -> None:
    """One panel per subscriber (the decoded height of every publisher), and one for
    ``publisher``'s kbit/s per rid and its estimate; ``events``: name -> t (s) marked on every
    panel (connections coming up); ``blackout``: (from, to) shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subs = list(tl["decoded_height"])
    fig, axes = plt.subplots(len(subs) + 1, 1, figsize=(11, 2.2 * (len(subs) + 1)), sharex=True, squeeze=False)
    panels = [ax for (ax,) in axes]
    for ax, sub in zip(panels, subs):
        for pub, points in sorted(tl["decoded_height"][sub].items()):
            ax.step([p[0] for p in points], [p[1] for p in points], where="post", label=f"{pub}'s camera")
        ax.axhline(HD_ROWS, color="#94a3b8", linestyle=":", linewidth=1)
        ax.set_ylabel("rows decoded")
        ax.set_title(f"at {sub}", fontsize=9, loc="left")
        ax.legend(fontsize=7, loc="lower right")
    ax = panels[-1]
    rates = tl["sent_kbps"].get(publisher, {})
    for rid, points in sorted(rates.items()):
        ax.plot([p[0] for p in points], [p[1] for p in points], label=f"rid {rid} sent (with padding)")
    est = tl["estimate_kbps"].get(publisher) or []
    if est:
        ax.plot([p[0] for p in est], [p[1] for p in est], color="black", linestyle="--", label="estimate")
    elif rates:  # Firefox reports no estimate: what it sends in all (it pads up to its estimate)
        total: dict[float, float] = {}
        for points in rates.values():
            for p in points:
                total[p[0]] = total.get(p[0], 0.0) + p[1]
        ts = sorted(total)
        ax.plot(ts, [total[t] for t in ts], color="black", linestyle=":", label="all rids (no estimate reported)")
    ax.set_yscale("symlog", linthresh=100)
    ax.set_ylabel("kbit/s")
    ax.set_title(f"{publisher}'s camera: sent per rid, and its send-side estimate", fontsize=9, loc="left")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("s from the first page opening the room")
    for ax in panels:
        for name, t in (events or {}).items():
            ax.axvline(t, color="#cbd5e1", linewidth=0.8)
        if blackout:
            ax.axvspan(*blackout, color="#94a3b8", alpha=0.3)
    for name, t in (events or {}).items():
        panels[0].annotate(name, (t, 1.0), xycoords=("data", "axes fraction"), fontsize=6, rotation=90, va="top")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def blackout_recovery(people: list[Any], names: dict[str, str], seconds: float, settle: float) -> dict[str, Any]:
    """Every packet to and from the SFU's ports dropped for ``seconds``; then per pair, the
    seconds from the network's return to the next frame decoded (None: not within ``settle``)."""
    ports = {int(p.page.evaluate(SFU_PORT_JS)) for p in people}
    with blackout(*ports):
        gone = time.time() * 1000
        time.sleep(seconds)
    back = time.time() * 1000
    since = f"() => (window.__tl ? window.__tl.samples : []).filter((s) => s[0] >= {gone - 2000})"
    deadline = time.monotonic() + settle
    while True:
        samples = {p.name: p.page.evaluate(since) for p in people}
        rows = [
            {
                "subscriber": sub.name,
                "publisher": pub.name,
                "after_s": recovery_s(frames_of(samples[sub.name], names[pub.name]), back),
            }
            for sub in people
            for pub in people
            if pub is not sub
        ]
        if all(r["after_s"] is not None for r in rows) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    return {"seconds": seconds, "ports": sorted(ports), "from_ms": gone, "back_ms": back, "recovery": rows}
