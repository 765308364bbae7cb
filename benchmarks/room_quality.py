#!/usr/bin/env python3
"""Room quality in real browsers: K Chromium participants in one live room, measured
from each page's ``getStats()``.

Each participant is its own Chromium process with fake camera and microphone
(``--use-fake-device-for-media-stream``), signed in as a demo account, opening the room
page the way a person does, in the chosen join order:

- ``mentor-first``: the mentor opens the room, learners arrive ``--stagger`` s apart;
- ``learners-first``: the learners wait in the lobby, the mentor arrives ``--stagger`` s later;
- ``together``: everyone at once.

Per (subscriber, publisher) it reports join -> first remote frame and -> HD (decoded at
>= 720 rows): from the moment both peer connections are up (the later of the two
``connected`` events; the SFU cannot forward before), sampled in the page every 50 ms. The
layer timeline (``benchmarks/media_timeline.py``): every publisher's decoded height at every
subscriber every 250 ms, each publisher's kbit/s per simulcast rid and its send-side
estimate. ``--blackout N`` drops every packet to and from the SFU for N s once the window is
over (tc on loopback, root) and reports per pair the time from the network's return to the
next decoded frame. ``--mentor-browser firefox``: the mentor in Debian's Firefox ESR
(``benchmarks/firefox_page.py``). Over the
``--duration`` window after everyone joined: frames per second received, ``freezeCount``
and total freeze time, jitter, packet loss, round-trip time, PLIs and NACKs sent, and the
server's CPU (``/proc/<pid>/stat``) next to the browsers' own CPU (the generator's cost).
JSON in benchmarks/results/room_quality-*.json, a plot and the timeline's plot next to it.

    .venv/bin/python benchmarks/room_quality.py                       # 1 mentor + 3 learners, 60 s
    .venv/bin/python benchmarks/room_quality.py --order learners-first --learners 2 --duration 30
    .venv/bin/python benchmarks/room_quality.py --learners 1 --learner-viewport 1920x1080 --blackout 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import common, media_timeline  # noqa: E402
from benchmarks.firefox_page import FirefoxPerson  # noqa: E402
from benchmarks.join_times import SAMPLER, first_frames, pair_times  # noqa: E402
from benchmarks.netshape import MEDIA_PORT_JS, downlink_limited  # noqa: E402
from benchmarks.common import (  # noqa: E402
    LocalServer,
    command_line,
    machine,
    percentiles,
    progress,
    write_report,
)

CHROMIUM = "/usr/bin/chromium"
MEDIA_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-dev-shm-usage",
]
MENTOR = "ada.lovelace@peerlearn.local"
LEARNERS = ["liam.park", "olivia.chen", "noah.silva", "emma.rossi", "ava.novak", "lucas.meyer", "mia.kim"]
PASSWORD = "peerlearn123"
FIRST_FRAME_TARGET_S = 1.0
FREEZE_TARGET_S = 0.5

# Every remote stream's counters, keyed by publisher peer id and source, plus the RTT.
SNAPSHOT = """async () => {
  const room = window.__room;
  if (!room || !room.pc) return null;
  const pc = room.pc;
  const byMid = {}, byTrack = {};
  for (const part of room.state.participants.values())
    for (const t of part.tracks) {
      if (t.mid == null) continue;
      byMid[t.mid] = `${part.peer_id}|${t.source}|${t.kind}`;
      const tr = pc.getTransceivers().find((x) => x.mid === t.mid);  // Firefox's stats may lack the mid
      if (tr && tr.receiver.track) byTrack[tr.receiver.track.id] = byMid[t.mid];
    }
  const out = {at: Date.now(), peer: room.peerId, streams: {}, rtt: null};
  const report = await pc.getStats();
  report.forEach((s) => {
    const key = s.type === "inbound-rtp" && (byMid[s.mid] || byTrack[s.trackIdentifier]);
    if (key) {
      out.streams[key] = {
        frames: s.framesDecoded || 0, freezes: s.freezeCount || 0, freeze_s: s.totalFreezesDuration || 0,
        jitter: s.jitter || 0, lost: s.packetsLost || 0, received: s.packetsReceived || 0,
        bytes: s.bytesReceived || 0,
        pli: s.pliCount || 0, nack: s.nackCount || 0, width: s.frameWidth || 0, height: s.frameHeight || 0,
      };
    }
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime !== undefined)
      out.rtt = s.currentRoundTripTime;
  });
  return out;
}"""


class Person:
    def __init__(self, pw: Any, name: str, email: str, base: str, viewport: tuple[int, int] = (960, 720)) -> None:
        self.name = name
        self.browser = pw.chromium.launch(executable_path=CHROMIUM, args=MEDIA_ARGS)
        self.context = self.browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, base_url=base)
        self.context.grant_permissions(["camera", "microphone"], origin=base)
        resp = self.context.request.post(base + "/api/auth/login", data={"email": email, "password": PASSWORD})
        if not resp.ok:
            raise RuntimeError(f"login {email}: {resp.status} {resp.text()[:200]}")
        self.page = self.context.new_page()
        self.entered_at = 0.0

    def enter(self, session_id: int) -> None:
        self.entered_at = time.time() * 1000
        self.page.goto(f"/room/{session_id}")
        self.page.evaluate(SAMPLER)

    def peer_id(self) -> str | None:
        return self.page.evaluate("() => window.__room && window.__room.peerId")  # type: ignore[no-any-return]

    def close(self) -> None:
        self.browser.close()


def _api(base: str, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
    import urllib.request

    req = urllib.request.Request(
        base + path, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    req.add_header("Content-Type", "application/json")
    req.add_header("Idempotency-Key", uuid.uuid4().hex)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def make_class(base: str, learners: list[str]) -> int:
    """A class of the demo mentor starting in 5 minutes (its room is open), booked by ``learners``."""
    mentor = _api(base, "POST", "/api/auth/login", body={"email": MENTOR, "password": PASSWORD})["access_token"]
    starts = (datetime.now(timezone.utc) + timedelta(minutes=5)).replace(microsecond=0)
    s = _api(
        base,
        "POST",
        "/api/sessions",
        mentor,
        {
            "title": f"Room quality {uuid.uuid4().hex[:6]}",
            "description": "Benchmark room.",
            "curriculum": ["Media"],
            "domain": "Programming",
            "skills": ["Python"],
            "price_cents": 1000,
            "capacity": max(5, len(learners)),
            "starts_at": starts.isoformat(),
            "duration_min": 60,
        },
    )
    _api(base, "POST", f"/api/sessions/{s['id']}/publish", mentor)
    for email in learners:
        tok = _api(base, "POST", "/api/auth/login", body={"email": email, "password": PASSWORD})["access_token"]
        _api(base, "POST", "/api/bookings/create", tok, {"session_id": s["id"]})
    return int(s["id"])


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def browsers_cpu() -> float:
    """CPU seconds of every process this one started but a local server (``api.cli``) and its
    children: the browsers (Firefox's content processes too) and their drivers."""
    total = 0.0
    children = psutil.Process().children(recursive=True)
    skip: set[int] = set()
    for child in children:
        with contextlib.suppress(psutil.Error):
            if "api.cli" in child.cmdline():
                skip |= {child.pid, *(c.pid for c in child.children(recursive=True))}
    for child in children:
        try:
            if child.pid not in skip:
                t = child.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def wait_everyone_live(people: list[Person], timeout: float = 60.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = {p.name: p.peer_id() for p in people}
        if all(ids.values()):
            return {k: str(v) for k, v in ids.items()}
        time.sleep(0.2)
    raise RuntimeError(f"not everyone joined the room within {timeout:.0f} s")


def stream_stats(
    before: dict[str, Any], after: dict[str, Any], names_by_peer: dict[str, str], seconds: float
) -> list[dict[str, Any]]:
    out = []
    for sub, snap in after.items():
        if snap is None:
            continue
        b = before.get(sub) or {"streams": {}}
        for key, s in snap["streams"].items():
            peer, source, kind = key.split("|")
            s0 = b["streams"].get(key, {k: 0 for k in s})
            if s["frames"] < s0["frames"] or s["received"] < s0["received"]:
                s0 = {k: 0 for k in s}  # the stream was renegotiated in the window: counters restarted
            row: dict[str, Any] = {
                "subscriber": sub,
                "publisher": names_by_peer.get(peer, peer),
                "source": source,
                "kind": kind,
                "jitter_ms": round(s["jitter"] * 1000, 1),
                "packets": s["received"] - s0["received"],
                "lost": s["lost"] - s0["lost"],
                "kbps": round((s["bytes"] - s0["bytes"]) * 8 / seconds / 1000, 1),
                "rtt_ms": round(snap["rtt"] * 1000, 1) if snap["rtt"] is not None else None,
            }
            total = row["packets"] + max(row["lost"], 0)
            row["loss_pct"] = round(100 * max(row["lost"], 0) / total, 3) if total else 0.0
            if kind == "video":
                row.update(
                    fps=round((s["frames"] - s0["frames"]) / seconds, 1),
                    freezes=s["freezes"] - s0["freezes"],
                    freeze_s=round(s["freeze_s"] - s0["freeze_s"], 3),
                    pli=s["pli"] - s0["pli"],
                    nack=s["nack"] - s0["nack"],
                    resolution=f"{s['width']}x{s['height']}",
                )
            out.append(row)
    return out


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ff = [r for r in report["first_frame"] if r["after_connected_s"] is not None]
    axes[0].bar(
        [f"{r['subscriber']}\n<- {r['publisher']}" for r in ff], [r["after_connected_s"] for r in ff], color="#4f46e5"
    )
    axes[0].axhline(FIRST_FRAME_TARGET_S, color="red", linestyle="--", label="target p95 1 s")
    axes[0].set_title("join -> first frame after both connections are up (s)")
    axes[0].tick_params(axis="x", labelsize=6, rotation=90)
    axes[0].legend()
    video = [r for r in report["streams"] if r["kind"] == "video"]
    labels = [f"{r['subscriber']}\n<- {r['publisher']} {r['source']}" for r in video]
    axes[1].bar(labels, [r["fps"] for r in video], color="#059669")
    axes[1].set_title("frames per second received")
    axes[1].tick_params(axis="x", labelsize=6, rotation=90)
    axes[2].bar(labels, [r["freeze_s"] for r in video], color="#dc2626")
    axes[2].set_title(f"total freeze time (s) in {report['duration_s']} s")
    axes[2].tick_params(axis="x", labelsize=6, rotation=90)
    s = report["summary"]
    fig.suptitle(
        f"room_quality: {report['order']}, {len(report['participants'])} browsers; server CPU "
        f"{s['server_cpu_cores']:.2f} cores, browsers {s['browsers_cpu_cores']:.2f} cores; "
        f"first frame p95 {s['first_frame_after_connected_s']['p95']:.2f} s"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    server: LocalServer | None = None
    base = args.url
    pid = args.server_pid
    if base is None:
        server = LocalServer(Path(tempfile.mkdtemp(prefix="room-quality-")))
        server.start()
        base = server.url
        assert server.proc is not None
        pid = server.proc.pid
    learners = [f"{n}@peerlearn.local" for n in LEARNERS[: args.learners]]
    people: list[Any] = []
    shaped = contextlib.ExitStack()  # a tc bottleneck must never outlive the run
    period = 50 if args.blackout else 250  # ms between timeline samples (a recovery wants 50)
    outage: dict[str, Any] | None = None
    try:
        sid = make_class(base, learners)
        with sync_playwright() as pw:
            if args.mentor_browser == "firefox":
                logs = Path(tempfile.mkdtemp(prefix="room-quality-firefox-"))
                mentor: Any = FirefoxPerson("mentor", MENTOR, PASSWORD, base, logs, on_enter=SAMPLER)
            else:
                mentor = Person(pw, "mentor", MENTOR, base)
            crowd = [Person(pw, f"learner-{i + 1}", e, base, args.learner_viewport) for i, e in enumerate(learners)]
            people = [mentor, *crowd]
            order = {
                "mentor-first": [mentor, *crowd],
                "learners-first": [*crowd, mentor],
                "together": [mentor, *crowd],
            }[args.order]
            for i, person in enumerate(order):
                if i and args.order != "together":
                    wait_until = time.monotonic() + args.stagger
                    while time.monotonic() < wait_until:
                        progress(i, len(order), f"joining: {person.name} in {wait_until - time.monotonic():.0f} s")
                        time.sleep(0.2)
                person.enter(sid)
                person.page.evaluate(media_timeline.SAMPLER, period)
                progress(i + 1, len(order), f"joining: {person.name} opened the room")
            names = wait_everyone_live(people)
            if args.view == "speaker":
                for learner in crowd:  # the class features the mentor: a large tile, a large layer
                    learner.page.locator('button[data-layout="speaker"]').click()
            names_by_peer = {v: k for k, v in names.items()}
            ff = first_frames(people, names, settle=args.settle)
            shaping: Any = contextlib.nullcontext()
            if args.impair:
                weak = crowd[args.impair - 1]
                port = int(weak.page.evaluate(MEDIA_PORT_JS))
                shaping = downlink_limited(port, args.impair_kbps)  # tc: root only
            shaped.enter_context(shaping)
            time.sleep(5 if args.impair else 0)  # the SFU adapts before the window opens
            before = {p.name: p.page.evaluate(SNAPSHOT) for p in people}
            load0 = os.getloadavg()[0]
            cpu0, bcpu0, t0 = cpu_seconds(pid) if pid else 0.0, browsers_cpu(), time.monotonic()
            while (elapsed := time.monotonic() - t0) < args.duration:
                progress(elapsed, args.duration, "measuring")
                time.sleep(0.5)
            progress(args.duration, args.duration, "measuring")
            seconds = time.monotonic() - t0
            after = {p.name: p.page.evaluate(SNAPSHOT) for p in people}
            shaped.close()
            cpu1, bcpu1 = cpu_seconds(pid) if pid else 0.0, browsers_cpu()
            # HD may come after the first frames: read the pages' times again
            rq = {p.name: p.page.evaluate("() => window.__rq") for p in people}
            ff = pair_times(rq, people, names)
            if args.blackout:
                load_blackout = os.getloadavg()[0]
                outage = media_timeline.blackout_recovery(people, names, args.blackout, args.settle) | {
                    "loadavg_1min": load_blackout
                }
            samples = {p.name: p.page.evaluate(media_timeline.READ) for p in people}
            t_start = min(p.entered_at for p in people)
            for p in people:
                p.close()
            people = []
    finally:
        shaped.close()
        for p in people:
            p.close()
        if server is not None:
            server.stop()
    streams = stream_stats(before, after, names_by_peer, seconds)
    after_up = [r["after_connected_s"] for r in ff if r["after_connected_s"] is not None]
    video = [r for r in streams if r["kind"] == "video"]
    summary = {
        "pairs": len(ff),
        "pairs_with_video": len(after_up),
        "first_frame_after_connected_s": percentiles(after_up, (50, 95)),
        "first_frame_after_page_open_s": percentiles(
            [r["after_page_open_s"] for r in ff if r["after_page_open_s"]], (50, 95)
        ),
        "fps_received": percentiles([r["fps"] for r in video], (50, 5)),
        "longest_total_freeze_s": max((r["freeze_s"] for r in video), default=0.0),
        "freezes": sum(r["freezes"] for r in video),
        "loss_pct_max": max((r["loss_pct"] for r in streams), default=0.0),
        "rtt_ms_max": max((r["rtt_ms"] or 0 for r in streams), default=0.0),
        "server_cpu_cores": round((cpu1 - cpu0) / seconds, 3) if pid else None,
        "browsers_cpu_cores": round((bcpu1 - bcpu0) / seconds, 3),
        # the browsers encode and decode every stream on this machine's cores: a load above the
        # core count means the figures measure a starved machine, not the SFU
        "loadavg_1min_before_after": [load0, os.getloadavg()[0]],
    }
    # what each subscriber received of the mentor's camera (the layer is its frame height)
    summary["mentor_camera_by_subscriber"] = [
        {
            "subscriber": r["subscriber"],
            "kbps": r["kbps"],
            "resolution": r["resolution"],
            "fps": r["fps"],
            "freeze_s": r["freeze_s"],
            "loss_pct": r["loss_pct"],
        }
        for r in video
        if r["publisher"] == "mentor" and r["source"] == "camera"
    ]
    summary["impaired"] = f"learner-{args.impair} at {args.impair_kbps} kbit/s" if args.impair else None
    summary["meets_first_frame_target"] = (
        bool(after_up)
        and len(after_up) == len(ff)
        and summary["first_frame_after_connected_s"]["p95"] <= FIRST_FRAME_TARGET_S
    )
    # freezeCount counts freezes; a total over the window of at most the target bounds each one
    summary["meets_freeze_target"] = all(r["freeze_s"] <= FREEZE_TARGET_S for r in video)
    # what a learner sees of the mentor: the first frame, then HD (None: not in the run)
    summary["mentor_first_frame_and_hd_s"] = [
        {k: r[k] for k in ("subscriber", "after_connected_s", "hd_after_connected_s")}
        for r in ff
        if r["publisher"] == "mentor"
    ]
    if outage is not None:
        after_s = [r["after_s"] for r in outage["recovery"]]
        summary["blackout"] = {
            "seconds": outage["seconds"],
            "recovery_after_s": {f"{r['subscriber']}<-{r['publisher']}": r["after_s"] for r in outage["recovery"]},
            "slowest_s": None if None in after_s else max(after_s, default=None),
            "loadavg_1min": outage["loadavg_1min"],
        }
    timeline = media_timeline.timeline(samples, names_by_peer, t_start)
    timeline["connected_at_s"] = {
        name: round((min(c["at"] for c in r["connected"]) - t_start) / 1000, 2)
        for name, r in rq.items()
        if r and r["connected"]
    }
    if outage is not None:
        timeline["blackout_s"] = [round((outage[k] - t_start) / 1000, 2) for k in ("from_ms", "back_ms")]
    return {
        "benchmark": "room_quality",
        "command": command_line(),
        "machine": machine(),
        "order": args.order,
        "stagger_s": args.stagger,
        "duration_s": round(seconds, 1),
        "participants": list(names),
        "mentor_browser": args.mentor_browser,
        "learner_viewport": "x".join(map(str, args.learner_viewport)),
        "first_frame": ff,
        "streams": streams,
        "summary": summary,
        "blackout": outage,
        "timeline": timeline,
    }


def viewport(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running PeerLearn server with demo data (default: start one)")
    ap.add_argument("--server-pid", type=int, help="with --url: the server process to measure CPU of")
    ap.add_argument("--learners", type=int, default=3, help="learners besides the mentor (max %d)" % len(LEARNERS))
    ap.add_argument("--order", choices=["mentor-first", "learners-first", "together"], default="mentor-first")
    ap.add_argument("--stagger", type=float, default=5.0, help="seconds between arrivals")
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds once everyone is in")
    ap.add_argument("--settle", type=float, default=20.0, help="seconds to wait for every first frame")
    ap.add_argument(
        "--view",
        choices=["speaker", "gallery"],
        default="speaker",
        help="the learners' layout (speaker: the mentor's tile large)",
    )
    ap.add_argument(
        "--impair",
        type=int,
        default=0,
        metavar="N",
        help="limit learner N's downlink during the window (tc on loopback; needs root)",
    )
    ap.add_argument("--impair-kbps", type=int, default=300)
    ap.add_argument("--mentor-browser", choices=["chromium", "firefox"], default="chromium")
    ap.add_argument(
        "--learner-viewport", type=viewport, default=(960, 720), metavar="WxH", help="the learners' window (CSS px)"
    )
    ap.add_argument(
        "--blackout",
        type=float,
        default=0.0,
        metavar="N",
        help="after the window, drop every packet to and from the SFU for N s (tc on loopback; needs root)",
    )
    ap.add_argument("--out", help="results directory (default benchmarks/results)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    if args.out:
        common.RESULTS = Path(args.out)
    if not 1 <= args.learners <= len(LEARNERS):
        ap.error(f"--learners must be 1..{len(LEARNERS)}")
    if args.impair and not 1 <= args.impair <= args.learners:
        ap.error("--impair names a learner: 1..--learners")
    if (args.impair or args.blackout) and os.geteuid() != 0:
        ap.error("--impair and --blackout use tc on loopback: run as root")
    report = run(args)
    path = write_report("room_quality", report)
    if not args.no_plot:
        png = path.with_suffix(".png")
        plot(report, png)
        plot(report, common.RESULTS / "room_quality-latest.png")
        report["plot"] = str(png)
        tl = report["timeline"]
        for target in (
            path.with_name(path.stem + "-timeline.png"),
            common.RESULTS / "room_quality-timeline-latest.png",
        ):
            media_timeline.plot(
                tl,
                target,
                title=f"{report['command']} (load {report['summary']['loadavg_1min_before_after']})",
                events={f"{k} up": v for k, v in tl["connected_at_s"].items()},
                blackout=tuple(tl["blackout_s"]) if "blackout_s" in tl else None,
            )
    print(json.dumps(report["summary"] | {"report": str(path)}, indent=2))


if __name__ == "__main__":
    main()
