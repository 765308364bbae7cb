#!/usr/bin/env python3
"""Recovery after a network blackout: a Chromium mentor and a Chromium learner in a live
room (each its own browser process), every UDP packet to and from the SFU's media port
dropped for ``--seconds`` (tc on loopback: needs root, refuses if loopback is already
shaped), then the time from the network's return until each side decodes a new frame of
the other's camera.

Each page samples ``framesDecoded`` of the other's camera every 50 ms (``Date.now()``: the
same clock as this script's on one machine). JSON on stdout and in
benchmarks/results/blackout-*.json:

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
from benchmarks.netshape import SFU_PORT_JS, blackout  # noqa: E402
from benchmarks.room_quality import LEARNERS, MENTOR, Person, make_class  # noqa: E402

# frames decoded of ``peerId``'s camera, sampled every 50 ms into window.__bo
SAMPLER = """(peerId) => {
  if (window.__bo) return;
  const bo = window.__bo = {samples: [], states: []};
  let last = null;
  setInterval(async () => {
    const room = window.__room;
    if (!room || !room.pc) return;
    if (room.pc.connectionState !== last) { last = room.pc.connectionState; bo.states.push([Date.now(), last]); }
    const p = room.state.participants.get(peerId);
    const t = p && p.tracks.find((x) => x.source === "camera" && x.mid != null);
    const tr = t && room.pc.getTransceivers().find((x) => x.mid === t.mid);
    if (!tr) return;
    let n = 0;
    (await tr.receiver.getStats()).forEach((s) => { if (s.type === "inbound-rtp") n = s.framesDecoded || 0; });
    bo.samples.push([Date.now(), n]);
    if (bo.samples.length > 4000) bo.samples.splice(0, 1000);
  }, 50);
}"""


def frames(person: Person) -> int:
    s = person.page.evaluate("() => window.__bo && window.__bo.samples")
    return int(s[-1][1]) if s else 0


def recovery_s(person: Person, back_at_ms: float) -> float | None:
    """From the network's return to the first frame decoded after it."""
    samples = person.page.evaluate("() => window.__bo.samples")
    before = [n for t, n in samples if t <= back_at_ms]
    if not before:
        return None
    for t, n in samples:
        if t > back_at_ms and n > before[-1]:
            return round((t - back_at_ms) / 1000, 3)
    return None


def decoded_between(person: Person, start_ms: float, end_ms: float) -> int:
    samples = person.page.evaluate("() => window.__bo.samples")
    inside = [n for t, n in samples if start_ms <= t <= end_ms]
    return inside[-1] - inside[0] if inside else -1


def one_run(pw: Any, base: str, learner_email: str, seconds: float) -> dict[str, Any]:
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
        with blackout(port):
            gone = time.time() * 1000
            time.sleep(seconds)
        back = time.time() * 1000
        time.sleep(12)
        states = {p.name: p.page.evaluate("() => window.__bo.states") for p in (mentor, learner)}
        return {
            "mentor_decodes_learner_after_s": recovery_s(mentor, back),
            "learner_decodes_mentor_after_s": recovery_s(learner, back),
            # ~0 when the blackout held (the last second's worth at most, in the jitter buffer)
            "frames_decoded_during": {p.name: decoded_between(p, gone + 1000, back) for p in (mentor, learner)},
            "connection_states": {k: [(round((t - back) / 1000, 2), s) for t, s in v] for k, v in states.items()},
        }
    finally:
        mentor.close()
        learner.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="length of the blackout")
    ap.add_argument("--runs", type=int, default=1)
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
                runs.append(one_run(pw, server.url, f"{LEARNERS[i % len(LEARNERS)]}@peerlearn.local", args.seconds))
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
        },
        "runs": runs,
    }
    path = write_report("blackout", report)
    print(json.dumps(report["summary"] | {"report": str(path)}, indent=2))


if __name__ == "__main__":
    main()
