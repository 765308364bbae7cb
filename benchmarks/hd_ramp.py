#!/usr/bin/env python3
"""How fast a learner gets HD: a Chromium mentor (fake 1280x720 camera, simulcast q/h/f)
and one Chromium learner (1920x1080 window) in a live room, each its own browser process.

The mentor opens the room first and is alone for ``--alone`` seconds; then the learner
arrives. From the moment the learner's peer connection is up it reports, per run:

- ``f_layer_after_s``: until the mentor's ``f`` (full resolution) layer's ``bytesSent``
  grows (the browser's send-side estimate finally allows the top layer);
- ``hd_after_s``: until the learner decodes the mentor at >= 720 rows;
- the mentor's ``availableOutgoingBitrate`` (candidate pair) over time.

JSON on stdout (and in benchmarks/results/hd_ramp-*.json):

    .venv/bin/python benchmarks/hd_ramp.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import LocalServer, command_line, machine, percentiles, write_report  # noqa: E402
from benchmarks.media_timeline import SENDING as MENTOR_SIDE  # noqa: E402
from benchmarks.room_quality import LEARNERS, MENTOR, Person, make_class  # noqa: E402

# the learner's side: when its peer connection came up, and the mentor's decoded height
LEARNER_SIDE = """async (peerId) => {
  const room = window.__room;
  const rq = window.__rq;
  const out = {at: Date.now(), up: rq && rq.connected.length ? rq.connected[0].at : null, height: 0};
  if (!room || !room.pc) return out;
  const p = room.state.participants.get(peerId);
  const t = p && p.tracks.find((x) => x.source === "camera" && x.mid != null);
  const tr = t && room.pc.getTransceivers().find((x) => x.mid === t.mid);
  if (!tr) return out;
  (await tr.receiver.getStats()).forEach((s) => { if (s.type === "inbound-rtp") out.height = s.frameHeight || 0; });
  return out;
}"""


def one_run(pw: Any, base: str, learner_email: str, args: argparse.Namespace) -> dict[str, Any]:
    sid = make_class(base, [learner_email])
    mentor = Person(pw, "mentor", MENTOR, base)
    learner = Person(pw, "learner", learner_email, base)
    learner.page.set_viewport_size({"width": 1920, "height": 1080})
    try:
        mentor.enter(sid)
        deadline = time.monotonic() + 30
        while not mentor.peer_id() and time.monotonic() < deadline:
            time.sleep(0.2)
        mentor_peer = mentor.peer_id()
        time.sleep(args.alone)
        alone = mentor.page.evaluate(MENTOR_SIDE)
        learner.enter(sid)
        samples: list[dict[str, Any]] = []
        up = f_at = hd_at = None
        f_base = None
        t_end = time.monotonic() + args.watch
        while time.monotonic() < t_end:
            m = mentor.page.evaluate(MENTOR_SIDE)
            s = learner.page.evaluate(LEARNER_SIDE, mentor_peer)
            if up is None and s["up"]:
                up = s["up"]
                f_base = m["bytes"].get("f", 0)
            if up is not None:
                t = round((m["at"] - up) / 1000, 2)
                samples.append({"t": t, "estimate": m["estimate"], "f_bytes": m["bytes"].get("f", 0)})
                if f_at is None and m["bytes"].get("f", 0) > (f_base or 0):
                    f_at = t
                if hd_at is None and s["height"] >= 720:
                    hd_at = round((s["at"] - up) / 1000, 2)
                if f_at is not None and hd_at is not None and t > args.min_watch:
                    break
            time.sleep(0.2)
        return {
            "f_sending_before_learner": alone["bytes"].get("f", 0) > 0,
            "estimate_when_learner_arrived": alone["estimate"],
            "f_layer_after_s": f_at,
            "hd_after_s": hd_at,
            "estimate_timeline": samples[:: max(1, len(samples) // 40)],
        }
    finally:
        mentor.close()
        learner.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--alone", type=float, default=3.0, help="seconds the mentor is alone before the learner")
    ap.add_argument("--watch", type=float, default=40.0, help="give up on a run after this many seconds")
    ap.add_argument("--min-watch", type=float, default=10.0, help="keep sampling the estimate at least this long")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    server = LocalServer(Path(tempfile.mkdtemp(prefix="hd-ramp-")))
    server.start()
    runs = []
    try:
        with sync_playwright() as pw:
            for i in range(args.runs):
                runs.append(one_run(pw, server.url, f"{LEARNERS[i % len(LEARNERS)]}@peerlearn.local", args))
    finally:
        server.stop()
    f_after = [r["f_layer_after_s"] for r in runs if r["f_layer_after_s"] is not None]
    hd_after = [r["hd_after_s"] for r in runs if r["hd_after_s"] is not None]
    report = {
        "benchmark": "hd_ramp",
        "command": command_line(),
        "machine": machine(),
        "summary": {
            "runs": len(runs),
            "f_layer_after_s": [r["f_layer_after_s"] for r in runs],
            "hd_after_s": [r["hd_after_s"] for r in runs],
            "f_layer_after_s_p50": percentiles(f_after, (50,))["p50"] if f_after else None,
            "hd_after_s_p50": percentiles(hd_after, (50,))["p50"] if hd_after else None,
        },
        "runs": runs,
    }
    path = write_report("hd_ramp", report)
    print(json.dumps(report["summary"] | {"report": str(path)}, indent=2))


if __name__ == "__main__":
    main()
