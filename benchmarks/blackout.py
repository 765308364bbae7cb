#!/usr/bin/env python3
"""Recovery after a network blackout: a Chromium mentor and a Chromium learner in a live
room (each its own browser process), every UDP packet to and from the SFU's media port
dropped for ``--seconds`` (tc on loopback: needs root, refuses if loopback is already
shaped), then the time from the network's return until each side decodes a new frame of
the other's camera, and how each page came back: on the same connection (ICE consent
resumed), by an ICE restart (same peer connection, new ufrag) or by a rejoin (a new one).

Each page samples ``framesDecoded`` and ``keyFramesDecoded`` of the other's camera every
50 ms (``Date.now()``: the same clock as this script's on one machine). Two figures per side:
the first frame decoded after the return (which may be a frame left over from before the
outage, completed by a retransmission) and the first keyframe decoded after it (the picture
of the publisher's present). The load average is recorded with each run: on this shared
machine it is the first thing to read next to a time. JSON on stdout and in
benchmarks/results/blackout-*.json, a plot in benchmarks/figures/blackout-<N>s.png:

    .venv/bin/python benchmarks/blackout.py --seconds 3 --runs 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import LocalServer, command_line, machine, write_report  # noqa: E402
from benchmarks.media_timeline import recovery_s  # noqa: E402  (test_room_recovery reads it here too)
from benchmarks.netshape import SFU_PORT_JS, blackout  # noqa: E402
from benchmarks.room_quality import LEARNERS, MENTOR, Person, make_class  # noqa: E402


# frames decoded of ``peerId``'s camera, sampled every 50 ms into window.__bo, with which peer
# connection the page had (a rejoin makes a new one: ``gen`` counts them) and the local ICE
# ufrag of its description (an ICE restart changes it on the same connection)
SAMPLER = """(peerId) => {
  if (window.__bo) return;
  const bo = window.__bo = {samples: [], states: [], ufrags: [], pcs: 0};
  let last = null, pc = null, gen = 0, ufrag = null;
  setInterval(async () => {
    const room = window.__room;
    if (!room || !room.pc) return;
    if (room.pc !== pc) { pc = room.pc; gen = ++bo.pcs; last = null; }
    if (pc.connectionState !== last) { last = pc.connectionState; bo.states.push([Date.now(), gen, last]); }
    const m = /a=ice-ufrag:(\\S+)/.exec((pc.localDescription && pc.localDescription.sdp) || "");
    if (m && m[1] !== ufrag) { ufrag = m[1]; bo.ufrags.push([Date.now(), gen, ufrag]); }
    const p = room.state.participants.get(peerId);
    const t = p && p.tracks.find((x) => x.source === "camera" && x.mid != null);
    const tr = t && pc.getTransceivers().find((x) => x.mid === t.mid);
    let n = 0, kf = 0;
    if (tr) (await tr.receiver.getStats()).forEach((s) => { if (s.type === "inbound-rtp") { n = s.framesDecoded || 0; kf = s.keyFramesDecoded || 0; } });
    bo.samples.push([Date.now(), n, gen, kf]);
    if (bo.samples.length > 4000) bo.samples.splice(0, 1000);
  }, 50);
}"""


def frames(person: Person) -> int:
    s = person.page.evaluate("() => window.__bo && window.__bo.samples")
    return int(s[-1][1]) if s else 0


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (Linux)."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def decoded_between(samples: list[list[Any]], start_ms: float, end_ms: float) -> int:
    inside = [(s[1], s[2]) for s in samples if start_ms <= s[0] <= end_ms]
    if not inside:
        return -1
    # a rejoin restarts the counter: count per connection
    total, (prev, prev_gen) = 0, inside[0]
    for n, gen in inside[1:]:
        total += n - prev if gen == prev_gen else n
        prev, prev_gen = n, gen
    return total


def recovery_path(bo: dict[str, Any], gone_ms: float) -> str:
    """How the page came back: ``rejoin`` (a new peer connection), ``ice_restart`` (the same
    connection with a new local ICE ufrag), or ``same_connection`` (neither: ICE consent
    simply resumed)."""
    gen_at = max([gen for t, gen, _ in bo["states"] if t <= gone_ms], default=1)
    if bo["pcs"] > gen_at:
        return "rejoin"
    if any(t > gone_ms and gen == gen_at for t, gen, _ in bo["ufrags"]):
        return "ice_restart"
    return "same_connection"


def one_run(pw: Any, base: str, learner_email: str, seconds: float, settle: float) -> dict[str, Any]:
    sid = make_class(base, [learner_email])
    mentor = Person(pw, "mentor", MENTOR, base)
    learner = Person(pw, "learner", learner_email, base)
    try:
        mentor.enter(sid)
        learner.enter(sid)
        deadline = time.monotonic() + 40
        while not (mentor.peer_id() and learner.peer_id()) and time.monotonic() < deadline:
            time.sleep(0.2)
        mentor.page.evaluate(SAMPLER, learner.peer_id())
        learner.page.evaluate(SAMPLER, mentor.peer_id())
        while min(frames(mentor), frames(learner)) < 60:
            if time.monotonic() > deadline:
                raise RuntimeError("the two do not decode each other")
            time.sleep(0.2)
        time.sleep(2)  # a steady picture both ways before the network goes
        port = int(mentor.page.evaluate(SFU_PORT_JS))
        load_before = load_average()
        with blackout(port):
            gone = time.time() * 1000
            time.sleep(seconds)
        back = time.time() * 1000
        time.sleep(settle)
        bo = {p.name: p.page.evaluate("() => window.__bo") for p in (mentor, learner)}
        restarts = {p.name: p.page.evaluate("() => window.__room.iceRestarts ?? null") for p in (mentor, learner)}

        def rel(t: float) -> float:
            return round((t - back) / 1000, 2)

        return {
            "mentor_decodes_learner_after_s": recovery_s(bo["mentor"]["samples"], back),
            "learner_decodes_mentor_after_s": recovery_s(bo["learner"]["samples"], back),
            "mentor_keyframe_after_s": recovery_s(bo["mentor"]["samples"], back, column=3),
            "learner_keyframe_after_s": recovery_s(bo["learner"]["samples"], back, column=3),
            "load_average": {"before": load_before, "after": load_average()},
            "recovery_path": {k: recovery_path(v, gone) for k, v in bo.items()},
            # the page's own counter of ICE restarts it sent (null: a page without them)
            "ice_restarts": restarts,
            # ~0 when the blackout held (the last second's worth at most, in the jitter buffer)
            "frames_decoded_during": {k: decoded_between(v["samples"], gone + 1000, back) for k, v in bo.items()},
            # times relative to the network's return (s); gen = which peer connection
            "connection_states": {k: [(rel(t), gen, s) for t, gen, s in v["states"]] for k, v in bo.items()},
            "ice_ufrags": {k: [(rel(t), gen, u) for t, gen, u in v["ufrags"]] for k, v in bo.items()},
            "frames": {
                k: [(rel(s[0]), s[1], s[2]) for s in v["samples"] if gone - 3000 <= s[0]] for k, v in bo.items()
            },
            "blackout_from_s": rel(gone),
        }
    finally:
        mentor.close()
        learner.close()


def plot(report: dict[str, Any], path: Path) -> None:
    """Frames decoded of the other's camera around the blackout, one panel per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for ax, run in zip(axes[0], runs):
        ax.axvspan(run["blackout_from_s"], 0, color="#94a3b8", alpha=0.3, label="blackout")
        for (name, samples), color in zip(run["frames"].items(), ("#4f46e5", "#059669")):
            # a rejoin restarts the page's counter: draw the running total over connections
            total, prev, prev_gen, xs, ys = 0, None, None, [], []
            for t, n, gen in samples:
                if prev is not None:
                    total += n - prev if gen == prev_gen else n
                prev, prev_gen = n, gen
                xs.append(t)
                ys.append(total)
            after = run[f"{name}_decodes_{'learner' if name == 'mentor' else 'mentor'}_after_s"]
            ax.plot(xs, ys, color=color, label=f"{name} ({run['recovery_path'][name]}, back after {after} s)")
        ax.set_xlabel("s from the network's return")
        ax.set_ylabel("frames decoded of the other's camera")
        ax.legend(fontsize=7)
    fig.suptitle(f"blackout of {report['blackout_s']:g} s: {report['command']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="length of the blackout")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--settle", type=float, default=20.0, help="seconds watched after the network returns")
    ap.add_argument(
        "--figure",
        help="where to draw the plot (default: next to the JSON in benchmarks/results; "
        "benchmarks/figures/blackout-<N>s.png is the docs' copy)",
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        ap.error("the blackout uses tc on loopback: run as root")
    from playwright.sync_api import sync_playwright

    server = LocalServer(Path(tempfile.mkdtemp(prefix="blackout-")))
    server.start()
    runs = []
    try:
        with sync_playwright() as pw:
            for i in range(args.runs):
                runs.append(
                    one_run(pw, server.url, f"{LEARNERS[i % len(LEARNERS)]}@peerlearn.local", args.seconds, args.settle)
                )
    finally:
        server.stop()
    report = {
        "benchmark": "blackout",
        "command": command_line(),
        "machine": machine(),
        "blackout_s": args.seconds,
        "summary": {
            "mentor_decodes_learner_after_s": [r["mentor_decodes_learner_after_s"] for r in runs],
            "learner_decodes_mentor_after_s": [r["learner_decodes_mentor_after_s"] for r in runs],
            "mentor_keyframe_after_s": [r["mentor_keyframe_after_s"] for r in runs],
            "learner_keyframe_after_s": [r["learner_keyframe_after_s"] for r in runs],
            "load_average": [r["load_average"] for r in runs],
            "recovery_path": [r["recovery_path"] for r in runs],
        },
        "runs": runs,
    }
    path = write_report("blackout", report)
    # next to the JSON by default: the plots in benchmarks/figures are the ones the docs quote,
    # and a run only replaces one when asked (--figure)
    figure = Path(args.figure) if args.figure else path.with_suffix(".png")
    figure.parent.mkdir(parents=True, exist_ok=True)
    plot(report, figure)
    print(json.dumps(report["summary"] | {"report": str(path), "figure": str(figure)}, indent=2))


if __name__ == "__main__":
    main()
