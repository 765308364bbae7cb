"""SFU load test: synthetic participants in real rooms, measured from outside.

Each participant joins the way a real client does: REST login, a room token
(``POST /api/rooms/{id}/token``), the documented signaling on
``/ws/room/{id}?token=``, ICE and DTLS through aiortc; it publishes VP8
(640x480@30, ~600 kbps by default) and Opus that were encoded ONCE and are
replayed, and receives everyone else. Two load generators:

- ``--generator replay`` (default, ``benchmarks/rtp_replay.py``): after the DTLS
  handshake the media bypasses aiortc: pre-packetized RTP is SRTP-protected in C
  and sent with ``sendmmsg`` on the SFU's own ``MediaSocket``; subscribers count
  SRTP per SSRC from the clear header on ``recvmmsg`` batches and decrypt 1
  video packet in ``--latency-sample`` (latency, authenticity, payload equal to
  what was sent). Several times cheaper per packet than the server.
- ``--generator aiortc`` (``benchmarks/aiortc_participants.py``): aiortc's own
  sender packetizes and protects, SRTP counted below aiortc's receiver, one
  subscriber decodes everything. About as expensive as the server: it cannot
  saturate it, kept for comparison (and used for the baseline relay).

Measured per room count, after a warm-up, over ``--duration`` seconds:
- SFU process CPU from ``/proc/<pid>/stat`` (utime+stime, all threads; all
  worker processes with ``--workers``) and the engine's forwarded-packet
  counter (``peerlearn_sfu_packets_forwarded_total`` on ``/metrics``):
  **CPU µs per forwarded packet**, forwarded packets/s and per server core;
- per-stream received bitrate, loss (sequence gaps), NACK/PLI, join -> first
  frame, and the latency the SFU path adds (send time of the packet's frame to
  its arrival at a subscriber: loopback, same clock, sender SRTP + SFU +
  receiver batch);
- the generator's own cost, so a starved generator is never mistaken for a slow
  server: its CPU per packet sent + received, how late its frames left, frames
  it had to skip, its event-loop lag, kernel drops on its sockets.

``--sweep``: the capacity curve. One server; 5-person rooms are added step by
step (1, then ``--sweep-step`` more each time) and every step is measured,
until loss at subscribers exceeds 0.5 %% or SFU-added latency p99 exceeds 10 ms
(the server's limit) or the generator saturates (then the report says so and
blames nobody). Once per ``--sweep-workers`` entry (1 vs 2 server processes).

``--peer janus``: each room count again through Janus (``benchmarks/janus_peer.py``: Debian's
package, started here with its own configuration), right after ours, with the same participants;
``--pairs N`` alternates the two N times per room count. The report adds the peer's runs, both sides'
medians, each pair's and the median ``ratio_peer_over_ours`` of CPU per forwarded packet, and what each
side negotiated (SRTP profile, extensions, TWCC, RTX).

``--profile [HZ]``: ``perf record -g`` on the server (and on Janus) over each measured window; the
report adds ``cpu_profile``: µs per forwarded packet by bucket (kernel send, the loopback delivery
charged to the sender, receive, SRTP, interpreter, the SFU's own native code, ...), each bucket's
largest functions, and ``transport_us`` (kernel UDP + SRTP); plot ``<report>-profile.png``
(``benchmarks/cpu_profile.py``).

``--baseline``: the same participants (aiortc generator) through aiortc's
MediaRelay with re-encoding (decode once per publisher, encode once per
subscriber, as aiortc's examples do), so every report carries our ratio
against it from the same run.

    .venv/bin/python benchmarks/sfu_load.py --rooms 1,5,10 --participants 5 --duration 20
    .venv/bin/python benchmarks/sfu_load.py --sweep --sweep-workers 1,2 --duration 10
    .venv/bin/python benchmarks/sfu_load.py --rooms 4 --generator aiortc          # the old generator
    .venv/bin/python benchmarks/sfu_load.py --rooms 4 --workers 2        # 1 vs 2 processes
    .venv/bin/python benchmarks/sfu_load.py --url http://host:8080 --server-pid 1234 --rooms 2
    .venv/bin/python benchmarks/sfu_load.py --rooms 5 --peer janus --pairs 3 --no-baseline   # + Janus, alternating
    .venv/bin/python benchmarks/sfu_load.py --rooms 5 --peer janus --no-baseline --profile   # where the CPU goes

This module is the command and its orchestration; the participants and their measured windows are
``benchmarks/load_rooms.py``, the sweep ``benchmarks/load_sweep.py``, the plots and ratios
``benchmarks/load_report.py``, Janus ``benchmarks/janus_peer.py`` (its replay participant ``benchmarks/janus_replay.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import common  # noqa: E402
from benchmarks.aiortc_participants import CLIENT_RCVBUF  # noqa: E402
from benchmarks.common import command_line, machine, write_report  # noqa: E402
from benchmarks.cpu_profile import plot as plot_profile  # noqa: E402
from benchmarks.cpu_profile import profile_line  # noqa: E402
from benchmarks.load_report import (  # noqa: E402
    baseline_ratio,
    pair_summary,
    peer_comparison,
    plot,
    plot_peer,
    plot_sweep,
)
from benchmarks.load_rooms import run_loop, run_size, shares_sockets  # noqa: E402
from benchmarks.load_sweep import MAX_LATENCY_P99_MS, MAX_LOSS_PCT, summary_line, sweep  # noqa: E402
from benchmarks.procstats import pin, pinning  # noqa: E402
from benchmarks.sfu_servers import BaselineServer, BenchServer  # noqa: E402


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.media import make_clip

    clips = {
        "video": make_clip(
            "video", seconds=args.clip_seconds, width=args.width, height=args.height, fps=args.fps, kbps=args.video_kbps
        ),
        "audio": make_clip("audio", seconds=args.clip_seconds),
    }
    sizes = [int(x) for x in str(args.rooms).split(",") if x.strip()]
    sweep_workers = [int(x) for x in str(args.sweep_workers).split(",") if x.strip()]
    run_id = uuid.uuid4().hex[:6]
    sample_mask = max(1, args.latency_sample) - 1
    report: dict[str, Any] = {
        "benchmark": "sfu_load",
        "machine": machine(),
        "command": command_line(),
        "loadavg_start": os.getloadavg(),
        "params": {
            "rooms": sizes if not args.sweep else None,
            "participants": args.participants,
            "duration": args.duration,
            "ramp": args.ramp,
            "warmup": args.warmup,
            "workers": args.workers,
            "baseline": args.baseline,
            "baseline_rooms": args.baseline_rooms,
            "peer": args.peer,
            "pairs": args.pairs if args.peer != "none" else None,
            "generator": args.generator,
            "event_loop": args.loop,
            "generator_sockets": (args.generator_sockets or "one per participant")
            if args.generator == "replay"
            else None,
            "timed_per_room": args.timed_per_room if args.generator == "replay" else None,
            "server_udp": "a port per peer %d-%d" % BenchServer.PER_PEER_PORTS
            if shares_sockets(args)
            else "one shared port per process (the server's default)",
            "audio_level": args.audio_level if args.generator == "replay" else False,
            "sweep": {
                "step": args.sweep_step,
                "max_rooms": args.sweep_max,
                "workers": sweep_workers,
                "max_loss_pct": MAX_LOSS_PCT,
                "max_latency_p99_ms": MAX_LATENCY_P99_MS,
            }
            if args.sweep
            else None,
            "video": f"VP8 {args.width}x{args.height}@{args.fps}, clip {clips['video'].bitrate / 1000:.0f} kbps "
            f"(target {args.video_kbps}), keyframe every 2 s and on PLI",
            "audio": f"Opus 20 ms, {clips['audio'].bitrate / 1000:.0f} kbps",
        },
        "runs": [],
    }
    server_cpus, client_cpus = pinning(args)
    report["pinning"] = {
        "server_cpus": sorted(server_cpus) if server_cpus else "unpinned",
        "generator_cpus": sorted(client_cpus) if client_cpus else "unpinned",
        "client_rcvbuf": CLIENT_RCVBUF,
        "latency_sample": f"1 in {sample_mask + 1}",
    }
    if args.sweep:
        report["sweeps"] = []
        for workers in sweep_workers:
            report["sweeps"].append(
                await sweep(
                    args=args,
                    clips=clips,
                    workers=workers,
                    run_id=run_id,
                    server_cpus=server_cpus,
                    client_cpus=client_cpus,
                )
            )
    else:
        server: Optional[BenchServer] = None
        redis_url = os.environ.get("PEERLEARN_REDIS_URL")
        if args.url:
            base = args.url.rstrip("/")
            pids = [args.server_pid] if args.server_pid else []
        else:
            server = BenchServer(
                Path(tempfile.mkdtemp(prefix="pl-sfuload-")), args.workers, per_peer_ports=shares_sockets(args)
            )
            server.start()
            base = server.url
            pids = server.pids()
            if server_cpus:
                for pid in pids:
                    pin(pid, server_cpus)
            redis_url = server.env.get("PEERLEARN_REDIS_URL") if args.workers > 1 else None
        janus = None
        if args.peer == "janus":
            from benchmarks.janus_peer import JanusServer

            janus = JanusServer()
            await janus.start()
            if server_cpus:
                pin(janus.pid, server_cpus)
        try:
            for rooms in sizes:
                common_args: dict[str, Any] = dict(
                    fps=args.fps,
                    rooms=rooms,
                    participants=args.participants,
                    duration=args.duration,
                    ramp=args.ramp * rooms,
                    warmup=args.warmup,
                    clips=clips,
                    run_id=run_id,
                    generator=args.generator,
                    audio_level=args.audio_level,
                    client_cpus=client_cpus,
                    sockets=args.generator_sockets,
                    timed=args.timed_per_room,
                    sample_mask=sample_mask,
                    profile_hz=args.profile,
                )
                # with a peer: ours and the peer's alternate (A B A B ...), so a change in the
                # machine's other load falls on both sides alike
                pairs = []
                for n in range(args.pairs if janus is not None else 1):
                    tag = f" (pair {n + 1}/{args.pairs})" if janus is not None else ""
                    result = await run_size(
                        mode="ours",
                        base=base,
                        pids=pids,
                        redis_url=redis_url,
                        label=f"ours {rooms}x{args.participants}{tag}",
                        **common_args,
                    )
                    print(f"\n{rooms}x{args.participants}{tag}: {summary_line(result)}", file=sys.stderr)
                    if "cpu_profile" in result:
                        print(profile_line(result["cpu_profile"]), file=sys.stderr)
                    report["runs"].append(result)
                    if janus is not None:  # the same rooms through Janus, right after ours
                        peer = await run_size(
                            mode="janus",
                            base=janus.url,
                            pids=[janus.pid],
                            redis_url=None,
                            label=f"janus {rooms}x{args.participants}{tag}",
                            **common_args,
                        )
                        print(f"\njanus {rooms}x{args.participants}{tag}: {summary_line(peer)}", file=sys.stderr)
                        if "cpu_profile" in peer:
                            print(profile_line(peer["cpu_profile"]), file=sys.stderr)
                        result.update(peer_comparison(result, peer))
                        pairs.append((result, peer))
                if pairs:
                    report.setdefault("peer_pairs", []).append(pair_summary(pairs))
                    # the top-level fields issue 28 names: the last (largest) room count's medians
                    report.update(report["peer_pairs"][-1]["headline"])
        finally:
            if server is not None:
                server.stop()
            if janus is not None:
                janus.stop()
    if args.baseline:
        bserver = BaselineServer()
        bserver.start()
        assert bserver.proc is not None
        if server_cpus:
            pin(bserver.proc.pid, server_cpus)
        try:
            report["baseline"] = await run_size(
                mode="baseline",
                fps=args.fps,
                base=bserver.url,
                rooms=args.baseline_rooms,
                participants=args.participants,
                duration=args.duration,
                ramp=args.ramp,
                warmup=args.warmup + 5,
                pids=[bserver.proc.pid],
                clips=clips,
                redis_url=None,
                run_id=run_id,
                label=f"baseline {args.baseline_rooms}x{args.participants}",
                client_cpus=client_cpus,
                sample_mask=sample_mask,
            )
        finally:
            bserver.stop()
        ours_runs = report["runs"] or (report["sweeps"][0]["steps"] if report.get("sweeps") else [])
        if ours_runs:
            ours = next((r for r in ours_runs if r["rooms"] == args.baseline_rooms), ours_runs[0])
            report["ratio_vs_baseline"] = baseline_ratio(ours, report["baseline"])
    report["loadavg_end"] = os.getloadavg()
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--url",
        help="a running PeerLearn server (default: start one; needs a high "
        "PEERLEARN_AUTH_RATE_LIMIT there, the script registers users)",
    )
    ap.add_argument("--server-pid", type=int, help="with --url: the server process to measure CPU of")
    ap.add_argument("--rooms", default="1,5,10", help="room counts, run one after the other (e.g. 1,5,10)")
    ap.add_argument("--participants", type=int, default=5, help="per room (1 mentor + learners)")
    ap.add_argument(
        "--generator",
        choices=("replay", "aiortc"),
        default="replay",
        help="replay: pre-packetized RTP on the native path (cheap); aiortc: aiortc's own media path",
    )
    ap.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the generator's event loop (uvloop when installed)",
    )
    ap.add_argument(
        "--audio-level",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="replay: audio packets carry the audio-level extension, as browsers send it (aiortc's "
        "sender does not for pre-encoded audio)",
    )
    ap.add_argument(
        "--generator-sockets",
        type=int,
        default=0,
        help="replay: UDP sockets the participants "
        "share (0: one each). Shared sockets read in batches, but the server then needs a port per "
        "peer (started so here; a --url server must be configured so)",
    )
    ap.add_argument(
        "--timed-per-room",
        type=int,
        default=1,
        help="replay, a socket each: learners per room "
        "whose sockets are read on arrival (their samples give the latency); the others are read "
        "once per 5 ms tick, far cheaper (participants: all of them)",
    )
    ap.add_argument(
        "--sweep",
        action="store_true",
        help="the capacity curve: add rooms until loss > 0.5 %% or latency p99 > 10 ms (or the generator saturates)",
    )
    ap.add_argument("--sweep-step", type=int, default=2, help="rooms added per step (the first step is 1 room)")
    ap.add_argument("--sweep-max", type=int, default=60, help="stop there at the latest")
    ap.add_argument("--sweep-workers", default="1", help="one sweep per server process count, e.g. 1,2")
    ap.add_argument(
        "--sweep-confirm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure a failing step again before stopping (default on)",
    )
    ap.add_argument("--video-kbps", type=int, default=600)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--clip-seconds", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds per room size / sweep step")
    ap.add_argument(
        "--ramp", type=float, default=1.0, help="seconds between joins ... per room (total ramp = ramp x rooms)"
    )
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds after the ramp before measuring")
    ap.add_argument("--workers", type=int, default=1, help="server processes (needs redis-server when > 1)")
    ap.add_argument(
        "--server-cpus",
        default="off",
        help="CPUs for the server process (taskset list, off, or "
        "auto: the last core when --workers 1 on >= 2 cores). Only on an otherwise idle machine: "
        "pinned, the SFU cannot escape other processes on its core (see runqueue_wait_share)",
    )
    ap.add_argument(
        "--client-cpus",
        default="auto",
        help="CPUs for this load generator (taskset list, or off); "
        "auto: the cores the server does not get when the server is pinned",
    )
    ap.add_argument(
        "--latency-sample",
        type=int,
        default=8,
        help="subscribers decrypt 1 video packet in N (a "
        "power of 2) for latency samples; the rest are counted from the SRTP header",
    )
    ap.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the MediaRelay re-encoding baseline (default on)",
    )
    ap.add_argument("--baseline-rooms", type=int, default=1)
    ap.add_argument(
        "--peer",
        choices=("none", "janus"),
        default="none",
        help="janus: each room count also through Janus (Debian's janus package, started here), right "
        "after ours, with the same participants (either generator)",
    )
    ap.add_argument(
        "--pairs",
        type=int,
        default=1,
        help="with --peer: ours and the peer's run alternate this many times per room count (A B A B ...)",
    )
    ap.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=1999,
        default=0,
        metavar="HZ",
        help="record the server(s) with perf over each measured window (default 1999 Hz) and report where "
        "the CPU went per forwarded packet (benchmarks/cpu_profile.py); draws <report>-profile.png",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="results directory (default benchmarks/results)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    if args.out:
        common.RESULTS = Path(args.out)
    if args.sweep and args.url:
        ap.error("--sweep starts its own servers (1 vs 2 workers): no --url")
    if args.profile and args.sweep:
        ap.error("--profile records room counts (no --sweep)")
    if args.profile and shutil.which("perf") is None:
        ap.error("--profile needs perf (Debian: apt-get install linux-perf; make system-deps installs it)")
    if args.profile and args.url and not args.server_pid:
        ap.error("--profile with --url needs --server-pid")
    if args.peer == "janus" and args.sweep:
        ap.error("--peer janus runs room counts (no --sweep): run the sweep, then --peer janus --rooms N at its load")
    random.seed(args.seed)
    _, client_cpus = pinning(args)
    if client_cpus:
        pin(os.getpid(), client_cpus)
    report = run_loop(main_async(args), args.loop)
    path = write_report("sfu_load", report)
    if not args.no_plot:
        if args.sweep:
            plot_sweep(report, path.with_suffix(".png"))
        elif report.get("peer_pairs"):
            plot_peer(report, path.with_suffix(".png"))
        else:
            plot(report, path.with_suffix(".png"))
        if args.profile:
            runs = [run for r in report["runs"] for run in (r, r.get("peer")) if run]
            plot_profile(runs, path.with_name(path.stem + "-profile.png"))
    print(json.dumps(report, indent=2, default=str))
    print(f"report: {path}" + ("" if args.no_plot else f"  plot: {path.with_suffix('.png')}"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
