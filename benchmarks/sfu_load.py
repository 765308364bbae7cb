"""SFU load test: synthetic aiortc participants in real rooms, measured from outside.

Each participant joins the way a real client does: REST login, a room token
(``POST /api/rooms/{id}/token``), the documented signaling on
``/ws/room/{id}?token=``; it publishes VP8 (640x480@30, ~600 kbps by default)
and Opus that were encoded ONCE and are replayed (benchmarks/media.py: aiortc's
sender only packetizes), and receives everyone else. Subscribers do not decode:
decrypted RTP is counted per SSRC below aiortc's receiver (received packets,
bytes, sequence gaps = loss); one subscriber per run decodes everything it
gets, to prove the media is valid, and its RTCP (NACK, PLI) is counted.

Measured per room size, after a warm-up, over ``--duration`` seconds:
- SFU process CPU from ``/proc/<pid>/stat`` (utime+stime, all threads; all
  worker processes with ``--workers``) and the engine's forwarded-packet
  counter (``peerlearn_sfu_packets_forwarded_total`` on ``/metrics``):
  **CPU µs per forwarded packet** and forwarded packets/s;
- per-stream received bitrate, loss, NACK/PLI, join -> first frame (token
  request -> first complete keyframe of each remote publisher), and the
  latency the SFU path adds: every published RTP payload is stamped with its
  send time (keyed by the payload bytes, which the SFU forwards untouched) and
  looked up on arrival — loopback, sender SRTP + SFU + receiver SRTP, same clock.

``--baseline``: the same participants through aiortc's MediaRelay with
re-encoding (a minimal server in a subprocess of this tool: decode once per
publisher, encode once per subscriber, as aiortc's examples do), so every
report carries our ratio against it from the same run.

    .venv/bin/python benchmarks/sfu_load.py --rooms 1,5,10 --participants 5 --duration 20
    .venv/bin/python benchmarks/sfu_load.py --rooms 4 --workers 2        # 1 vs 2 processes
    .venv/bin/python benchmarks/sfu_load.py --url http://host:8080 --server-pid 1234 --rooms 2
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import common  # noqa: E402
from benchmarks.common import (  # noqa: E402
    command_line, machine, percentiles, progress, write_report,
)
from benchmarks.aiortc_participants import (  # noqa: E402
    CLIENT_RCVBUF, Bench, Participant, join_baseline, join_ours,
)
from benchmarks.procstats import (  # noqa: E402
    drops_between, pin, pinning, proc_cpu, runqueue_wait, udp_drops,
)
from benchmarks.room_api import api_json, make_rooms, metric_urls, scrape_forwarded  # noqa: E402
from benchmarks.sfu_servers import BaselineServer, BenchServer  # noqa: E402

__all__ = ["BenchServer", "proc_cpu", "run_size", "scrape_forwarded"]  # sfu_soak.py uses these

SAMPLE_MASK = 7  # subscribers decrypt 1 packet in SAMPLE_MASK + 1 (latency samples); --latency-sample


# ---------------------------------------------------------------- one measured run


async def run_size(*, mode: str, fps: int, base: str, rooms: int, participants: int, duration: float, ramp: float,
                   warmup: float, pids: list[int], clips: dict[str, Any], redis_url: Optional[str],
                   run_id: str, label: str) -> dict[str, Any]:
    bench = Bench(clips, SAMPLE_MASK)
    gc.collect()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        setup = None
        if mode == "ours":
            setup = await make_rooms(http, base, rooms, participants, f"{run_id}{rooms}")
        people = [Participant(bench, r, i, decode=(r == 0 and i == 1)) for r in range(rooms)
                  for i in range(participants)]
        bench.participants = people
        total = len(people)
        step = ramp / max(total - 1, 1)
        t_start = time.monotonic()
        join_tasks = []
        # the mentor opens each room (learners get 409 room_not_open before that), then the learners join
        order = [p for p in people if p.index == 0] + [p for p in people if p.index != 0]
        for n, p in enumerate(order):
            if mode == "ours":
                assert setup is not None
                coro = join_ours(p, http, base, setup[p.room]["session_id"], setup[p.room]["tokens"][p.index])
            else:
                coro = join_baseline(p, http, base, participants)
            join_tasks.append(asyncio.ensure_future(coro))
            progress(n + 1, total, f"{label}: joining {n + 1}/{total}")
            if n + 1 == rooms:
                await asyncio.gather(*join_tasks, return_exceptions=True)
            await asyncio.sleep(step)
        results = await asyncio.gather(*join_tasks, return_exceptions=True)
        join_failures = [repr(r) for r in results if isinstance(r, BaseException)]
        # wait for every subscriber to see every remote video, or the warm-up, whichever is later
        expected = participants - 1
        deadline = time.monotonic() + max(warmup, 10)
        while time.monotonic() < deadline:
            got = sum(1 for p in people for s in p.streams.values() if s.kind == "video" and s.packets)
            progress(got, total * expected, f"{label}: {got}/{total * expected} video streams flowing")
            if got >= total * expected and time.monotonic() - t_start > ramp + warmup:
                break
            await asyncio.sleep(0.5)
        progress(1, 1)
        urls = await metric_urls(base, redis_url) if mode == "ours" else []
        lag: list[float] = []

        async def lag_probe() -> None:
            while True:
                t = time.perf_counter()
                await asyncio.sleep(0.05)
                lag.append((time.perf_counter() - t - 0.05) * 1000)

        prober = asyncio.ensure_future(lag_probe())
        snap0 = {(id(p), s.ssrc): s.snapshot() for p in people for s in p.streams.values()}
        fwd0 = await scrape_forwarded(http, urls) if urls else {}
        cpu0 = sum(proc_cpu(pid) for pid in pids)
        gen0 = sum(os.times()[:2])
        drops0 = (udp_drops(pids), udp_drops([os.getpid()]))
        wait0 = (runqueue_wait(pids), runqueue_wait([os.getpid()]))
        t0 = time.monotonic()
        bench.measuring = True
        while (now := time.monotonic()) < t0 + duration:
            progress(now - t0, duration, f"{label}: measuring, {len(bench.latency_ms)} latency samples")
            await asyncio.sleep(0.5)
        bench.measuring = False
        t1 = time.monotonic()
        cpu1 = sum(proc_cpu(pid) for pid in pids)
        gen1 = sum(os.times()[:2])
        drops1 = (udp_drops(pids), udp_drops([os.getpid()]))
        wait1 = (runqueue_wait(pids), runqueue_wait([os.getpid()]))
        fwd1 = await scrape_forwarded(http, urls) if urls else {}
        snap1 = {(id(p), s.ssrc): s.snapshot() for p in people for s in p.streams.values()}
        progress(1, 1)
        prober.cancel()
        elapsed = t1 - t0

        # ---- per stream, over the window
        per_stream: dict[str, list[float]] = {"video_kbps": [], "audio_kbps": [], "loss_pct": []}
        received = expected_pkts = frames = 0
        for key, (pk1, oc1, hi1, fr1) in snap1.items():
            pk0, oc0, hi0, fr0 = snap0.get(key, (0, 0, -1, 0))
            frames += fr1 - fr0
            kind = next(s.kind for p in people if id(p) == key[0] for s in p.streams.values() if s.ssrc == key[1])
            per_stream[f"{kind}_kbps"].append((oc1 - oc0) * 8 / elapsed / 1000)
            got = pk1 - pk0
            exp = hi1 - hi0 if hi0 >= 0 else got
            received += got
            expected_pkts += max(exp, got)
            if exp > 0:
                per_stream["loss_pct"].append(max(0.0, (exp - got) / exp * 100))
        first_frame = []
        missing_video = 0
        for p in people:
            for pub in people:
                if pub is p or pub.room != p.room:
                    continue
                st = next((s for s in p.streams.values() if s.kind == "video" and s.publisher == pub.key), None)
                if st is None or st.first_frame is None or pub.t_first_video_sent is None:
                    missing_video += 1
                    continue
                first_frame.append((st.first_frame - max(p.t_join, pub.t_first_video_sent)) * 1000)
        decoder = next((p for p in people if p.decode), None)
        streams_expected = total * expected * 2
        streams_flowing = sum(1 for v in snap1.values() if v[0])
        forwarded = (fwd1.get("packets_forwarded_total", 0) - fwd0.get("packets_forwarded_total", 0)) if urls else 0
        egress = forwarded if forwarded > 0 else received  # baseline: what the clients received
        cpu = cpu1 - cpu0
        out: dict[str, Any] = {
            "mode": mode, "rooms": rooms, "participants": participants, "seconds": round(elapsed, 2),
            "loadavg": os.getloadavg(),
            "server_processes": len(pids),
            "server_cpu_seconds": round(cpu, 3),
            "server_cpu_cores": round(cpu / elapsed, 3),
            "forwarded_packets": int(egress),
            "forwarded_packets_source": "engine counter (/metrics)" if forwarded > 0 else "clients' received count",
            "forwarded_packets_per_s": round(egress / elapsed, 1),
            "cpu_us_per_forwarded_packet": round(cpu / egress * 1e6, 2) if egress else None,
            "streams_expected": streams_expected, "streams_flowing": streams_flowing,
            "video_frames_delivered_per_s": round(frames / elapsed, 1),
            # one forwarded 640x480@30 stream = 30 delivered frames/s (+ its audio): CPU cores per such stream
            "cpu_cores_per_forwarded_video_stream": round(cpu / elapsed / (frames / elapsed / fps), 5)
            if frames else None,
            "received_packets_per_s": round(received / elapsed, 1),
            "loss_pct": round((expected_pkts - received) / expected_pkts * 100, 3) if expected_pkts else None,
            "loss_pct_per_stream": percentiles(per_stream["loss_pct"], (50, 99, 100)),
            # where the loss happened: datagrams the kernel dropped because a receive buffer was full
            "udp_drops": {"sfu_sockets": drops_between(drops0[0], drops1[0]),
                          "generator_sockets": drops_between(drops0[1], drops1[1])},
            # share of the window the process was runnable but waited for a CPU (other load on the machine)
            "runqueue_wait_share": {"sfu": round((wait1[0] - wait0[0]) / elapsed, 3),
                                    "generator": round((wait1[1] - wait0[1]) / elapsed, 3)},
            "video_kbps_per_stream": {**percentiles(per_stream["video_kbps"], (1, 50, 99)),
                                      "mean": round(sum(per_stream["video_kbps"]) / max(len(per_stream["video_kbps"]), 1), 1)},
            "audio_kbps_per_stream": {**percentiles(per_stream["audio_kbps"], (1, 50, 99)),
                                      "mean": round(sum(per_stream["audio_kbps"]) / max(len(per_stream["audio_kbps"]), 1), 1)},
            "latency_ms": {**percentiles(bench.latency_ms, (50, 90, 99)), "samples": len(bench.latency_ms)}
            if bench.latency_ms else None,
            "sfu_ingress_latency_ms": {**percentiles(bench.ingress_ms, (50, 90, 99)), "samples": len(bench.ingress_ms)}
            if bench.ingress_ms else None,
            "join_to_first_frame_ms": {**percentiles(first_frame, (50, 95, 100)), "pairs": len(first_frame),
                                       "missing": missing_video},
            "nacks_to_publishers": sum(p.nacks_got for p in people),
            "plis_to_publishers": sum(p.plis_got for p in people),
            "decoding_subscriber": {"frames": dict(decoder.decoded), "video_size": decoder.decoded_size,
                                    "nacks_sent": decoder.nacks_sent, "plis_sent": decoder.plis_sent}
            if decoder else None,
            "engine_counters": {k: fwd1.get(k, 0) - fwd0.get(k, 0) if k.endswith("_total") else fwd1.get(k)
                                for k in fwd1} if urls else None,
            "generator_cpu_cores": round((gen1 - gen0) / elapsed, 3),
            "generator_loop_lag_ms": percentiles(lag, (50, 99)),
            "join_failures": join_failures[:5], "signaling_errors": sorted({e for p in people for e in p.errors}),
            "unknown_ssrc_packets": sum(p.unknown for p in people),
        }
        for p in people:
            await p.close()
        if mode == "ours" and setup:
            for r in setup:
                try:
                    await api_json(http, "POST", f"{base}/api/rooms/{r['session_id']}/end", r["tokens"][0])
                except RuntimeError:
                    pass
        await asyncio.sleep(1.0)
        return out


# ---------------------------------------------------------------- report


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in report["runs"] if r["mode"] == "ours"]
    base = report.get("baseline")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    xs = [f"{r['rooms']}x{r['participants']}" for r in runs]
    ax = axes[0]
    ax.bar(xs, [r["cpu_us_per_forwarded_packet"] or 0 for r in runs], color="#2563eb", label="ours")
    if base:
        ax.bar([f"baseline {base['rooms']}x{base['participants']}"], [base["cpu_us_per_forwarded_packet"] or 0],
               color="#dc2626", label="MediaRelay + re-encode")
        ax.set_yscale("log")
    ax.axhline(20, color="black", linestyle="--", linewidth=1, label="target 20 µs")
    ax.set_ylabel("SFU CPU µs per forwarded packet")
    ax.set_title("CPU per forwarded packet")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.bar(xs, [r["forwarded_packets_per_s"] for r in runs], color="#16a34a")
    for x, r in zip(xs, runs):
        ax.annotate(f"{r['server_cpu_cores']:.2f} cores", (x, r["forwarded_packets_per_s"]), ha="center",
                    va="bottom", fontsize=8)
    ax.set_ylabel("forwarded packets/s")
    ax.set_title("throughput (rooms x participants)")
    ax = axes[2]
    lat = [(r["latency_ms"] or {}).get("p99", 0) for r in runs]
    ff = [r["join_to_first_frame_ms"]["p95"] for r in runs]
    loss = [r["loss_pct"] or 0 for r in runs]
    w = 0.28
    idx = range(len(runs))
    ax.bar([i - w for i in idx], lat, width=w, label="latency p99 (ms)")
    ax.bar(list(idx), [f / 10 for f in ff], width=w, label="join→first frame p95 (×10 ms)")
    ax.bar([i + w for i in idx], [lo * 100 for lo in loss], width=w, label="loss (×0.01 %)")
    ax.set_xticks(list(idx), xs)
    ax.set_title("quality")
    ax.legend(fontsize=8)
    fig.suptitle(f"SFU load — {report['machine']['cpu']} ({report['machine']['cores']} cores), "
                 f"loadavg {report['loadavg_start'][0]:.1f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.media import make_clip

    clips = {"video": make_clip("video", seconds=args.clip_seconds, width=args.width, height=args.height,
                                fps=args.fps, kbps=args.video_kbps),
             "audio": make_clip("audio", seconds=args.clip_seconds)}
    sizes = [int(x) for x in str(args.rooms).split(",") if x.strip()]
    run_id = uuid.uuid4().hex[:6]
    report: dict[str, Any] = {
        "benchmark": "sfu_load", "machine": machine(), "command": command_line(),
        "loadavg_start": os.getloadavg(),
        "params": {"rooms": sizes, "participants": args.participants, "duration": args.duration, "ramp": args.ramp,
                   "warmup": args.warmup, "workers": args.workers, "baseline": args.baseline,
                   "baseline_rooms": args.baseline_rooms,
                   "video": f"VP8 {args.width}x{args.height}@{args.fps}, clip {clips['video'].bitrate / 1000:.0f} kbps "
                            f"(target {args.video_kbps}), keyframe every 2 s and on PLI",
                   "audio": f"Opus 20 ms, {clips['audio'].bitrate / 1000:.0f} kbps"},
        "runs": [],
    }
    server_cpus, client_cpus = pinning(args)
    report["pinning"] = {"server_cpus": sorted(server_cpus) if server_cpus else "unpinned",
                         "generator_cpus": sorted(client_cpus) if client_cpus else "unpinned",
                         "client_rcvbuf": CLIENT_RCVBUF, "latency_sample": f"1 in {SAMPLE_MASK + 1}"}
    server: Optional[BenchServer] = None
    redis_url = os.environ.get("PEERLEARN_REDIS_URL")
    if args.url:
        base = args.url.rstrip("/")
        pids = [args.server_pid] if args.server_pid else []
    else:
        server = BenchServer(Path(tempfile.mkdtemp(prefix="pl-sfuload-")), args.workers)
        server.start()
        base = server.url
        pids = server.pids()
        if server_cpus:
            for pid in pids:
                pin(pid, server_cpus)
        redis_url = server.env.get("PEERLEARN_REDIS_URL") if args.workers > 1 else None
    try:
        for rooms in sizes:
            result = await run_size(mode="ours", fps=args.fps, base=base, rooms=rooms, participants=args.participants,
                                    duration=args.duration, ramp=args.ramp * rooms, warmup=args.warmup, pids=pids,
                                    clips=clips, redis_url=redis_url, run_id=run_id,
                                    label=f"ours {rooms}x{args.participants}")
            report["runs"].append(result)
    finally:
        if server is not None:
            server.stop()
    if args.baseline:
        bserver = BaselineServer()
        bserver.start()
        if server_cpus:
            pin(bserver.proc.pid, server_cpus)  # type: ignore[union-attr]
        try:
            report["baseline"] = await run_size(
                mode="baseline", fps=args.fps, base=bserver.url, rooms=args.baseline_rooms, participants=args.participants,
                duration=args.duration, ramp=args.ramp, warmup=args.warmup + 5, pids=[bserver.proc.pid],  # type: ignore[union-attr]
                clips=clips, redis_url=None, run_id=run_id, label=f"baseline {args.baseline_rooms}x{args.participants}")
        finally:
            bserver.stop()
        ours = next((r for r in report["runs"] if r["rooms"] == args.baseline_rooms), report["runs"][0])
        b = report["baseline"]
        report["ratio_vs_baseline"] = {
            "compared": f"ours {ours['rooms']}x{ours['participants']} vs baseline {b['rooms']}x{b['participants']}",
            "cpu_per_forwarded_packet": round(b["cpu_us_per_forwarded_packet"] / ours["cpu_us_per_forwarded_packet"], 1)
            if b["cpu_us_per_forwarded_packet"] and ours["cpu_us_per_forwarded_packet"] else None,
            "cpu_per_forwarded_video_stream": round(b["cpu_cores_per_forwarded_video_stream"]
                                                    / ours["cpu_cores_per_forwarded_video_stream"], 1)
            if b["cpu_cores_per_forwarded_video_stream"] and ours["cpu_cores_per_forwarded_video_stream"] else None,
        }
    report["loadavg_end"] = os.getloadavg()
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running PeerLearn server (default: start one; needs a high "
                                  "PEERLEARN_AUTH_RATE_LIMIT there, the script registers users)")
    ap.add_argument("--server-pid", type=int, help="with --url: the server process to measure CPU of")
    ap.add_argument("--rooms", default="1,5,10", help="room counts, run one after the other (e.g. 1,5,10)")
    ap.add_argument("--participants", type=int, default=5, help="per room (1 mentor + learners)")
    ap.add_argument("--video-kbps", type=int, default=600)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--clip-seconds", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds per room size")
    ap.add_argument("--ramp", type=float, default=1.0, help="seconds between joins ... per room (total ramp = "
                                                            "ramp x rooms)")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds after the ramp before measuring")
    ap.add_argument("--workers", type=int, default=1, help="server processes (needs redis-server when > 1)")
    ap.add_argument("--server-cpus", default="off", help="CPUs for the server process (taskset list, off, or "
                    "auto: the last core when --workers 1 on >= 2 cores). Only on an otherwise idle machine: "
                    "pinned, the SFU cannot escape other processes on its core (see runqueue_wait_share)")
    ap.add_argument("--client-cpus", default="auto", help="CPUs for this load generator (taskset list, or off); "
                    "auto: the cores the server does not get when the server is pinned")
    ap.add_argument("--latency-sample", type=int, default=8, help="subscribers decrypt 1 packet in N (a power "
                    "of 2) for latency samples; the rest are counted from the SRTP header")
    ap.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True,
                    help="also run the MediaRelay re-encoding baseline (default on)")
    ap.add_argument("--baseline-rooms", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="results directory (default benchmarks/results)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    if args.out:
        common.RESULTS = Path(args.out)
    random.seed(args.seed)
    global SAMPLE_MASK
    SAMPLE_MASK = max(1, args.latency_sample) - 1
    _, client_cpus = pinning(args)
    if client_cpus:
        pin(os.getpid(), client_cpus)
    report = asyncio.run(main_async(args))
    path = write_report("sfu_load", report)
    if not args.no_plot:
        plot(report, path.with_suffix(".png"))
    print(json.dumps(report, indent=2, default=str))
    print(f"report: {path}" + ("" if args.no_plot else f"  plot: {path.with_suffix('.png')}"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
