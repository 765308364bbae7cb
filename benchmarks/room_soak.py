#!/usr/bin/env python3
"""A real browser class held for a long time (issue 25): 1 mentor + N learners in Chromium,
each its own browser process, sampled every ``--every`` seconds for ``--duration``.

The room is the one ``benchmarks/room_quality.py`` builds (demo data, the mentor's class,
fake camera and microphone, each page opened the way a person opens it). Every sample reads
each page's ``getStats()`` (frames decoded, freezes, packets received and lost per remote
stream), whether its peer connection is still the one it joined with and ``connected``
(a participant lost shows as a new peer id, a new connection or a stream that stopped), and
the SFU process's RSS and CPU from ``/proc``. Reported per interval and over the run: frames
per second received (the slowest stream), freezes, loss, participants lost, RSS after the
warm-up against its end (the criterion: within 5 %). The JSON is rewritten after every sample
and the plot every 5 minutes, so a run cut short still has its curves.

    .venv/bin/python benchmarks/room_soak.py --duration 1800              # 1 + 2, 30 minutes
    .venv/bin/python benchmarks/room_soak.py --learners 1 --duration 60   # a short look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import common  # noqa: E402
from benchmarks.common import LocalServer, command_line, machine, percentiles, wait_healthy  # noqa: E402
from benchmarks.room_quality import (  # noqa: E402
    LEARNERS,
    MENTOR,
    SNAPSHOT,
    Person,
    browsers_cpu,
    cpu_seconds,
    make_class,
    wait_everyone_live,
)
from benchmarks.sfu_soak import rss_mb, summarize  # noqa: E402

# what a page's room holds now: its peer id and its peer connection's state (and which one it is)
CONNECTION = """() => {
  const room = window.__room;
  if (!room || !room.pc) return null;
  if (!room.pc.__soakId) room.pc.__soakId = Math.random().toString(36).slice(2);
  return {peer: room.peerId, pc: room.pc.__soakId, state: room.pc.connectionState};
}"""


class LoggedServer(LocalServer):
    """``LocalServer`` whose output goes to a file: over half an hour an unread pipe would fill
    (64 KB) and block the server on its next log line."""

    def start(self) -> None:
        cli = [sys.executable, "-m", "api.cli"]
        subprocess.run(
            [*cli, "demo", "--data-dir", str(self.data_dir)], env=self.env, check=True, stdout=subprocess.DEVNULL
        )
        self.log_path = self.data_dir / "server.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [*cli, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_healthy(self.url)


def interval(before: dict[str, Any], after: dict[str, Any], names: dict[str, str], seconds: float) -> dict[str, Any]:
    """Per remote video stream over one interval: fps, freezes, loss; the slowest and the worst."""
    rows = []
    for sub, snap in after.items():
        if not snap:
            continue
        prev = (before.get(sub) or {}).get("streams", {})
        for key, s in snap["streams"].items():
            peer, source, kind = key.split("|")
            s0 = prev.get(key)
            if s0 is None or s["received"] < s0["received"]:
                s0 = {k: 0 for k in s}  # new or renegotiated stream: its counters restarted
            got = s["received"] - s0["received"]
            lost = max(0, s["lost"] - s0["lost"])
            row = {
                "subscriber": sub,
                "publisher": names.get(peer, peer),
                "kind": kind,
                "loss_pct": round(100 * lost / (got + lost), 3) if got + lost else 0.0,
                "packets": got,
            }
            if kind == "video":
                row.update(
                    fps=round((s["frames"] - s0["frames"]) / seconds, 1),
                    freezes=s["freezes"] - s0["freezes"],
                    freeze_s=round(s["freeze_s"] - s0["freeze_s"], 3),
                    height=s["height"],
                )
            rows.append(row)
    video = [r for r in rows if r["kind"] == "video"]
    return {
        "streams": len(rows),
        "video_streams": len(video),
        "fps_min": min((r["fps"] for r in video), default=0.0),
        "fps_median": percentiles([r["fps"] for r in video], (50,))["p50"] if video else 0.0,
        "freezes": sum(r["freezes"] for r in video),
        "freeze_s_max": max((r["freeze_s"] for r in video), default=0.0),
        "loss_pct_max": max((r["loss_pct"] for r in rows), default=0.0),
        "audio_streams_silent": sum(1 for r in rows if r["kind"] == "audio" and not r["packets"]),
        "video_heights": sorted({r["height"] for r in video}),
    }


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = report["samples"]
    xs = [s["t"] / 60 for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8.5), sharex=True)
    ax = axes[0]
    ax.plot(xs, [s["rss_mb"] for s in samples], color="#2563eb", label="SFU RSS (MB)")
    mem = report.get("memory") or {}
    if mem:
        ref = mem["rss_at_warmup_mb"]
        ax.axvline(mem["warmup_sample_t_s"] / 60, color="black", linestyle=":", linewidth=1, label="end of warm-up")
        ax.axhspan(ref * 0.95, ref * 1.05, color="#16a34a", alpha=0.08, label="warm-up RSS ± 5 %")
    ax.set_ylabel("RSS (MB)")
    ax2 = ax.twinx()
    ax2.plot(xs, [s["server_cpu_cores"] for s in samples], color="#dc2626", linewidth=0.7, label="SFU CPU (cores)")
    ax2.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [str(h.get_label()) for h in lines], fontsize=8, loc="lower right")
    ax = axes[1]
    ax.plot(xs, [s["fps_min"] for s in samples], color="#059669", label="fps received, slowest stream")
    ax.plot(xs, [s["fps_median"] for s in samples], color="#059669", alpha=0.4, label="fps received, median")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("fps")
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.plot(
        xs, [s["freeze_s_max"] for s in samples], color="#dc2626", label="a stream's freeze time in the interval (s)"
    )
    ax.plot(xs, [s["loss_pct_max"] for s in samples], color="#ea580c", label="worst stream loss (%)")
    ax.plot(xs, [s["participants_lost"] for s in samples], color="#9333ea", label="participants lost (cumulative)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_xlabel("minutes since everyone joined")
    p = report["params"]
    axes[0].set_title(
        f"Chromium room soak 1 + {p['learners']}, {xs[-1] if xs else 0:.0f} min: RSS growth after warm-up "
        f"{mem.get('growth_after_warmup_pct')} %, participants lost {report['summary'].get('participants_lost')} "
        f"— {report['machine']['cpu']} ({report['machine']['cores']} cores)",
        fontsize=9,
    )
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(report: dict[str, Any], warmup_s: float) -> dict[str, Any]:
    samples = report["samples"]
    after = [s for s in samples if s["t"] >= warmup_s] or samples[-1:]
    return {
        "minutes": round(samples[-1]["t"] / 60, 1) if samples else 0,
        # participants whose media dropped at least once (they may have rejoined by themselves)
        "participants_lost": samples[-1]["participants_lost"] if samples else None,
        "reconnects": len(report["lost"]),
        "connected_at_end": sum(1 for v in samples[-1]["states"].values() if v == "connected") if samples else 0,
        "fps_min_after_warmup": min((s["fps_min"] for s in after), default=None),
        "freezes": sum(s["freezes"] for s in samples),
        "longest_freeze_time_in_an_interval_s": max((s["freeze_s_max"] for s in samples), default=None),
        "loss_pct_max_interval": max((s["loss_pct_max"] for s in samples), default=None),
        "server_cpu_cores_median": percentiles([s["server_cpu_cores"] for s in samples], (50,))["p50"]
        if samples
        else None,
        "browsers_cpu_cores_median": percentiles([s["browsers_cpu_cores"] for s in samples], (50,))["p50"]
        if samples
        else None,
    }


def run(args: argparse.Namespace) -> Path:
    from playwright.sync_api import sync_playwright

    server = LoggedServer(Path(tempfile.mkdtemp(prefix="room-soak-")))
    server.start()
    assert server.proc is not None
    pid = server.proc.pid
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    out = common.RESULTS / f"room_soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    report: dict[str, Any] = {
        "benchmark": "room_soak",
        "command": command_line(),
        "machine": machine(),
        "loadavg_start": os.getloadavg(),
        "params": {"learners": args.learners, "duration_s": args.duration, "every_s": args.every},
        "server_log": str(server.log_path),
        "samples": [],
        "lost": [],
    }
    people: list[Person] = []
    last_plot = time.monotonic()
    try:
        learners = [f"{n}@peerlearn.local" for n in LEARNERS[: args.learners]]
        sid = make_class(server.url, learners)
        with sync_playwright() as pw:
            mentor = Person(pw, "mentor", MENTOR, server.url)
            people = [mentor, *(Person(pw, f"learner-{i + 1}", e, server.url) for i, e in enumerate(learners))]
            for p in people:
                p.enter(sid)
                time.sleep(args.stagger)
            names = wait_everyone_live(people)
            by_peer = {v: k for k, v in names.items()}
            joined = {p.name: p.page.evaluate(CONNECTION) for p in people}
            report["joined"] = joined
            seen = dict(joined)
            lost: set[str] = set()
            prev = {p.name: p.page.evaluate(SNAPSHOT) for p in people}
            cpu0, bcpu0, t_prev = cpu_seconds(pid), browsers_cpu(), time.monotonic()
            t0 = t_prev
            while (elapsed := time.monotonic() - t0) < args.duration:
                time.sleep(max(0.0, args.every - (time.monotonic() - t_prev)))
                now = time.monotonic()
                snap = {p.name: p.page.evaluate(SNAPSHOT) for p in people}
                conn = {p.name: p.page.evaluate(CONNECTION) for p in people}
                cpu1, bcpu1 = cpu_seconds(pid), browsers_cpu()
                for name, c in conn.items():
                    was = seen[name]
                    # a reconnect (new peer id or a new peer connection: the page rejoined by itself)
                    # or a connection that is not up now; each change is an event, once per name lost
                    if c != was and (c is None or was is None or c["pc"] != was["pc"] or c["peer"] != was["peer"]):
                        report["lost"].append({"t": round(now - t0, 1), "name": name, "was": was, "now": c})
                        lost.add(name)
                    elif c is None or c["state"] != "connected":
                        if not report["lost"] or report["lost"][-1].get("now") != c:
                            report["lost"].append({"t": round(now - t0, 1), "name": name, "was": was, "now": c})
                        lost.add(name)
                    seen[name] = c
                by_peer.update({c["peer"]: n for n, c in conn.items() if c})
                sample = {
                    "t": round(now - t0, 1),
                    "rss_mb": round(rss_mb(pid) or 0.0, 2),
                    "server_cpu_cores": round((cpu1 - cpu0) / (now - t_prev), 3),
                    "browsers_cpu_cores": round((bcpu1 - bcpu0) / (now - t_prev), 3),
                    "loadavg_1min": os.getloadavg()[0],
                    "participants_lost": len(lost),
                    "states": {n: (c or {}).get("state") for n, c in conn.items()},
                    **interval(prev, snap, by_peer, now - t_prev),
                }
                report["samples"].append(sample)
                prev, cpu0, bcpu0, t_prev = snap, cpu1, bcpu1, now
                report["memory"] = summarize(report["samples"], args.memory_warmup)
                report["summary"] = summary(report, args.memory_warmup)
                out.write_text(json.dumps(report, indent=2, default=str))
                if not args.no_plot and now - last_plot > 300:
                    last_plot = now
                    plot(report, out.with_suffix(".png"))
                common.progress(elapsed, args.duration, f"RSS {sample['rss_mb']:.0f} MB, lost {len(lost)}")
            for p in people:
                p.close()
            people = []
    finally:
        for p in people:
            p.close()
        server.stop()
    report["loadavg_end"] = os.getloadavg()
    out.write_text(json.dumps(report, indent=2, default=str))
    if not args.no_plot and report["samples"]:
        plot(report, out.with_suffix(".png"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--learners", type=int, default=2, help="learners besides the mentor")
    ap.add_argument("--duration", type=float, default=1800.0, help="seconds once everyone is in")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--stagger", type=float, default=2.0, help="seconds between arrivals (mentor first)")
    ap.add_argument("--memory-warmup", type=float, default=300.0, help="seconds before RSS growth is measured from")
    ap.add_argument("--out", help="results directory (default benchmarks/results)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    if args.out:
        common.RESULTS = Path(args.out)
    if not 1 <= args.learners <= len(LEARNERS):
        ap.error(f"--learners must be 1..{len(LEARNERS)}")
    path = run(args)
    report = json.loads(path.read_text())
    print(json.dumps({"summary": report["summary"], "memory": report["memory"], "lost": report["lost"]}, indent=2))
    print(f"report: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
