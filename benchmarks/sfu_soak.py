"""SFU memory soak: the sfu_load rooms for a long time, the server's RSS sampled from outside.

Starts ``peerlearn serve`` (or uses ``--url``/``--server-pid``), fills ``--rooms``
rooms of ``--participants`` with the same synthetic participants as
``benchmarks/sfu_load.py`` (``--generator replay`` by default: pre-packetized VP8 + Opus
replayed on the native path, subscribers count SRTP per SSRC; ``aiortc``: aiortc's own
media path), keeps them there for ``--duration`` seconds and every
``--sample-memory`` seconds reads the server's ``VmRSS`` from
``/proc/<pid>/status`` and its CPU time from ``/proc/<pid>/stat``.

Reported: the RSS series, RSS at the end of the warm-up (``--memory-warmup``
seconds after the first sample) and at the end, growth after warm-up in %
(the criterion, issue 25: within 5 %), the post-warm-up slope (least squares,
MB/min), CPU per interval, and sfu_load's figures per ``--window`` seconds (loss,
SFU-added latency, forwarded packets/s, CPU µs per packet, streams flowing, the
generator's own cost) and over the whole run. The JSON (and, from a separate
process so the generator never stalls, the plot) is rewritten after every window
under ``sfu_soak-partial-<start>``: a run cut short still has its curves. Each sample also carries the
engine's peer count and forwarded packets/s from ``/metrics``: a run is only
valid while ``min_peers_after_warmup`` is everyone. On a starved machine the
participants drop out: the server's aioice gives each consent check 0.5 s and
closes the connection after 6 misses in a row (30 s), so a load generator whose
event loop lags that long loses everyone; run it with ``nice -n -10`` there.
``--tracemalloc N`` runs the
server with ``PEERLEARN_TRACEMALLOC=N`` (see api/memtrace.py) and writes the
diff of its first and last snapshots next to the report.

    .venv/bin/python benchmarks/sfu_soak.py --rooms 2 --duration 3600 --sample-memory 30
    .venv/bin/python benchmarks/sfu_soak.py --replot benchmarks/results/sfu_soak-partial-X.json  # its plot
    .venv/bin/python benchmarks/sfu_soak.py --rooms 2 --duration 600 --tracemalloc 10   # what grows
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import common
from benchmarks.common import command_line, machine, wait_healthy, write_report
from benchmarks.load_rooms import Load, client_session, generator_cores, run_loop
from benchmarks.procstats import proc_cpu
from benchmarks.room_api import metric_urls, scrape_forwarded
from benchmarks.sfu_servers import BenchServer


def rss_mb(pid: int) -> float | None:
    """VmRSS of ``pid`` in MB (None once it has exited)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class SoakServer(BenchServer):
    """One ``peerlearn serve`` whose stderr goes to a file: over an hour an unread pipe would fill
    (64 KB) and block the server on its next log line."""

    def __init__(self, data_dir: Path, tracemalloc_frames: int, memstats: float, log_level: str) -> None:
        super().__init__(data_dir, workers=1)
        self.env["PEERLEARN_LOG_LEVEL"] = log_level
        if memstats > 0:
            self.env["PEERLEARN_MEMSTATS"] = str(memstats)
        if tracemalloc_frames:
            self.env["PEERLEARN_TRACEMALLOC"] = str(tracemalloc_frames)
            # the participants join untraced (traced, their joins timed out on the database)
            self.env.setdefault("PEERLEARN_TRACEMALLOC_DELAY", "60")
        self.log_path = data_dir / "server.log"

    def start(self) -> None:
        cli = [sys.executable, "-m", "api.cli"]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [*cli, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_healthy(self.url)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)  # a snapshot being dumped under tracemalloc delays the shutdown
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def least_squares_slope(points: list[tuple[float, float]]) -> float | None:
    """Slope of y over x (None with fewer than 2 points)."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else None


def summarize(samples: list[dict[str, float]], warmup_s: float) -> dict[str, Any]:
    """Growth after warm-up from the RSS samples (``t`` seconds, ``rss_mb``)."""
    if not samples:
        return {}
    after = [s for s in samples if s["t"] >= warmup_s] or samples[-1:]
    at_warmup, end = after[0], samples[-1]
    post = [(s["t"] / 60, s["rss_mb"]) for s in after]
    slope = least_squares_slope(post)
    return {
        "rss_start_mb": round(samples[0]["rss_mb"], 1),
        "rss_at_warmup_mb": round(at_warmup["rss_mb"], 1),
        "warmup_sample_t_s": round(at_warmup["t"], 1),
        "rss_end_mb": round(end["rss_mb"], 1),
        "end_sample_t_s": round(end["t"], 1),
        "rss_max_after_warmup_mb": round(max(s["rss_mb"] for s in after), 1),
        "growth_after_warmup_pct": round((end["rss_mb"] - at_warmup["rss_mb"]) / at_warmup["rss_mb"] * 100, 2),
        "max_growth_after_warmup_pct": round(
            (max(s["rss_mb"] for s in after) - at_warmup["rss_mb"]) / at_warmup["rss_mb"] * 100, 2
        ),
        "slope_after_warmup_mb_per_min": round(slope, 3) if slope is not None else None,
        "within_5_pct": abs(end["rss_mb"] - at_warmup["rss_mb"]) <= 0.05 * at_warmup["rss_mb"],
        "within_10_pct": abs(end["rss_mb"] - at_warmup["rss_mb"]) <= 0.10 * at_warmup["rss_mb"],
        # the run is only valid while everyone stayed: fewest peers the engine had after warm-up
        "min_peers_after_warmup": min((s.get("peers", -1) for s in after), default=-1),
    }


async def sample_memory(pid: int, base: str, every: float, samples: list[dict[str, float]], t0: float) -> None:
    """Every ``every`` s: RSS and CPU from /proc, and the engine's peers and forwarded packets from
    /metrics, so a run whose participants dropped out (ICE consent lost on a starved machine) shows."""
    import aiohttp

    last_cpu, last_t, last_fwd = proc_cpu(pid), time.monotonic(), None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        while True:
            rss = rss_mb(pid)
            if rss is None:
                return
            now, cpu = time.monotonic(), proc_cpu(pid)
            try:
                engine = await scrape_forwarded(http, [base])
            except (TimeoutError, aiohttp.ClientError):
                engine = {}
            fwd = engine.get("packets_forwarded_total")
            sample = {
                "t": round(now - t0, 1),
                "rss_mb": round(rss, 2),
                "cpu_cores": round((cpu - last_cpu) / (now - last_t), 3) if now > last_t else 0.0,
                "peers": engine.get("peers", -1),
                "forwarded_pps": round((fwd - last_fwd) / (now - last_t), 1)
                if fwd is not None and last_fwd is not None and now > last_t
                else -1,
            }
            samples.append(sample)
            last_cpu, last_t, last_fwd = cpu, now, fwd
            await asyncio.sleep(every)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.media import make_clip

    clips = {
        "video": make_clip(
            "video", seconds=args.clip_seconds, width=args.width, height=args.height, fps=args.fps, kbps=args.video_kbps
        ),
        "audio": make_clip("audio", seconds=args.clip_seconds),
    }
    report: dict[str, Any] = {
        "benchmark": "sfu_soak",
        "machine": machine(),
        "command": command_line(),
        "loadavg_start": os.getloadavg(),
        "params": {
            "rooms": args.rooms,
            "participants": args.participants,
            "duration": args.duration,
            "sample_memory_s": args.sample_memory,
            "memory_warmup_s": args.memory_warmup,
            "tracemalloc_frames": args.tracemalloc,
            "generator": args.generator,
            "window_s": args.window,
            "video": f"VP8 {args.width}x{args.height}@{args.fps} ~{args.video_kbps} kbps",
        },
    }
    server: SoakServer | None = None
    if args.url:
        if not args.server_pid:
            raise SystemExit("--url needs --server-pid (the process whose RSS is sampled)")
        base, pid = args.url.rstrip("/"), args.server_pid
    else:
        server = SoakServer(
            Path(tempfile.mkdtemp(prefix="pl-sfusoak-")), args.tracemalloc, args.memstats, args.server_log_level
        )
        server.start()
        assert server.proc is not None
        base, pid = server.url, server.proc.pid
        report["server_data_dir"] = str(server.data_dir)  # server.log, memstats.txt, tracemalloc/
    samples: list[dict[str, float]] = []
    t0 = time.monotonic()

    # the load's progress bar, with the latest RSS on it
    def progress(done: float, total: float, label: str = "") -> None:
        rss = f", server RSS {samples[-1]['rss_mb']:.0f} MB" if samples else ""
        common.progress(done, total, f"{label}{rss} [{(time.monotonic() - t0) / 60:.1f} min]")

    partial = common.RESULTS / f"sfu_soak-partial-{time.strftime('%Y%m%d-%H%M%S')}.json"
    report["partial_report"] = str(partial)
    windows: list[dict[str, Any]] = []
    report["windows"] = windows
    last_plot = 0.0

    def checkpoint() -> None:
        """The report so far, on disk: a run cut short (or killed) keeps its curves."""
        nonlocal last_plot
        report["memory"] = summarize(samples, args.memory_warmup)
        report["rss_series"] = samples
        report["load"] = combine(windows)
        common.RESULTS.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(report, indent=2, default=str))
        if not args.no_plot and time.monotonic() - last_plot > 300:
            last_plot = time.monotonic()
            # matplotlib would hold this event loop (the replay tick) for ~0.5 s: another process draws
            subprocess.Popen(
                [sys.executable, __file__, "--replot", str(partial)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # a soak run under `chrt` keeps its plotting out of the real-time class
                preexec_fn=lambda: os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0)),
            )

    sampler = asyncio.ensure_future(sample_memory(pid, base, args.sample_memory, samples, t0))
    label = f"soak {args.rooms}x{args.participants}"
    try:
        async with client_session() as http:
            load = Load(
                mode="ours",
                generator=args.generator,
                base=base,
                participants=args.participants,
                clips=clips,
                http=http,
                run_id=uuid.uuid4().hex[:6],
                audio_level=True,
                sample_mask=max(1, args.latency_sample) - 1,
                progress=progress,
            )
            try:
                await load.add_rooms(args.rooms, ramp=args.ramp * args.rooms, warmup=args.warmup, label=label)
                urls = await metric_urls(base, None)
                end = time.monotonic() + args.duration
                while (left := end - time.monotonic()) > 1:
                    window = await load.measure(
                        duration=min(args.window, left),
                        pids=[pid],
                        urls=urls,
                        fps=args.fps,
                        label=f"{label} window {len(windows) + 1}",
                        generator_cores=generator_cores(None),
                    )
                    window["t_end_s"] = round(time.monotonic() - t0, 1)
                    windows.append(window)
                    checkpoint()
            finally:
                await load.close()
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        if server is not None:
            server.stop()
            memstats = server.data_dir / "memstats.txt"
            if memstats.exists():
                report["server_memstats"] = memstats.read_text().splitlines()
            trace = server.data_dir / "tracemalloc"
            if len(list(trace.glob("*.snap"))) >= 2:
                # offline, after the server stopped: grouping millions of traces is minutes of pure Python
                from api import memtrace

                common.RESULTS.mkdir(parents=True, exist_ok=True)
                dest = common.RESULTS / f"sfu_soak-tracemalloc-{time.strftime('%Y%m%d-%H%M%S')}.txt"
                with dest.open("w") as f, contextlib.redirect_stdout(f):
                    memtrace.main([str(trace)])
                    print((trace / "index.txt").read_text())
                report["tracemalloc_diff"] = str(dest)
                report["tracemalloc_snapshots"] = str(trace)
    report["memory"] = summarize(samples, args.memory_warmup)
    report["rss_series"] = samples
    report["load"] = combine(windows)
    report["loadavg_end"] = os.getloadavg()
    return report


def combine(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole run from its windows: packets and CPU summed, loss weighted by what was expected,
    the worst window's latency, and whether every stream flowed in every window."""
    if not windows:
        return {}
    seconds = sum(w["seconds"] for w in windows)
    cpu = sum(w["server_cpu_seconds"] for w in windows)
    forwarded = sum(w["forwarded_packets"] for w in windows)
    received = sum(w["received_packets_per_s"] * w["seconds"] for w in windows)
    # each window's loss is (expected - received) / expected: expected back from received and loss
    expected = sum(
        w["received_packets_per_s"] * w["seconds"] / (1 - (w["loss_pct"] or 0) / 100)
        for w in windows
        if (w["loss_pct"] or 0) < 100
    )
    p99 = [w["latency_ms"]["p99"] for w in windows if w.get("latency_ms")]
    return {
        "windows": len(windows),
        "seconds": round(seconds, 1),
        "forwarded_packets": forwarded,
        "forwarded_packets_per_s": round(forwarded / seconds, 1) if seconds else None,
        "server_cpu_cores": round(cpu / seconds, 3) if seconds else None,
        "cpu_us_per_forwarded_packet": round(cpu / forwarded * 1e6, 2) if forwarded else None,
        "loss_pct": round((expected - received) / expected * 100, 3) if expected else None,
        "loss_pct_worst_window": max((w["loss_pct"] or 0) for w in windows),
        "latency_p99_ms_worst_window": max(p99) if p99 else None,
        "latency_p99_ms_median_window": sorted(p99)[len(p99) // 2] if p99 else None,
        "streams_expected": windows[0]["streams_expected"],
        "streams_flowing_min": min(w["streams_flowing"] for w in windows),
        "streams_receiving_min": min(w.get("streams_receiving", 0) for w in windows),
        "udp_drops": {
            "sfu_sockets": sum(w["udp_drops"]["sfu_sockets"] for w in windows),
            "generator_sockets": sum(w["udp_drops"]["generator_sockets"] for w in windows),
        },
        "generator_saturated_windows": sum(1 for w in windows if w["generator"]["saturated"]),
        "join_failures": windows[-1]["join_failures"],
    }


def plot(report: dict[str, Any], path: Path) -> None:
    """RSS against its warm-up value (± 5 %), the server's CPU per forwarded packet, and what the
    subscribers got per window (loss, SFU-added latency p99, streams flowing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = report["rss_series"]
    mem = report.get("memory") or {}
    windows = report.get("windows") or []
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    ax = axes[0]
    xs = [s["t"] / 60 for s in series]
    ax.plot(xs, [s["rss_mb"] for s in series], color="#2563eb", label="server RSS (MB)")
    if mem:
        ref = mem["rss_at_warmup_mb"]
        ax.axvline(mem["warmup_sample_t_s"] / 60, color="black", linestyle=":", linewidth=1, label="end of warm-up")
        ax.axhspan(ref * 0.95, ref * 1.05, color="#16a34a", alpha=0.08, label="warm-up RSS ± 5 %")
    ax.set_ylabel("RSS (MB)")
    ax2 = ax.twinx()
    ax2.plot(xs, [s.get("peers", -1) for s in series], color="#9333ea", linewidth=0.8, label="peers in the engine")
    ax2.set_ylabel("peers")
    ax2.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [str(h.get_label()) for h in lines], fontsize=8, loc="lower right")
    wx = [w.get("t_end_s", 0) / 60 for w in windows]
    ax = axes[1]
    ax.plot(wx, [w["cpu_us_per_forwarded_packet"] or 0 for w in windows], "o-", color="#dc2626", markersize=3)
    ax.set_ylabel("server µs / forwarded packet")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(wx, [w["server_cpu_cores"] for w in windows], color="#64748b", linewidth=0.8)
    ax2.set_ylabel("server cores", color="#64748b")
    ax2.set_ylim(bottom=0)
    ax = axes[2]
    ax.plot(wx, [w["loss_pct"] or 0 for w in windows], "o-", color="#ea580c", markersize=3, label="loss %")
    ax.plot(
        wx,
        [(w["latency_ms"] or {}).get("p99", 0) / 10 for w in windows],
        "s-",
        color="#0891b2",
        markersize=3,
        label="SFU-added latency p99 (×10 ms)",
    )
    ax.plot(
        wx,
        [w["streams_expected"] - w.get("streams_receiving", w["streams_flowing"]) for w in windows],
        "^-",
        color="#9333ea",
        markersize=3,
        label="streams that received nothing in the window",
    )
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.set_xlabel("minutes since the server started taking load")
    load = report.get("load") or {}
    p = report["params"]
    axes[0].set_title(
        f"SFU soak {p['rooms']}x{p['participants']} ({p.get('generator', 'aiortc')} generator), "
        f"{series[-1]['t'] / 60 if series else 0:.0f} min: RSS growth after warm-up "
        f"{mem.get('growth_after_warmup_pct')} %, loss {load.get('loss_pct')} % — "
        f"{report['machine']['cpu']} ({report['machine']['cores']} cores), loadavg {report['loadavg_start'][0]:.1f}",
        fontsize=9,
    )
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replot", metavar="JSON", help="only draw the plot of a (partial) report, next to it")
    ap.add_argument(
        "--generator",
        choices=("replay", "aiortc"),
        default="replay",
        help="replay: pre-packetized RTP on the native path (cheap); aiortc: aiortc's own media path",
    )
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="the generator's event loop")
    ap.add_argument("--window", type=float, default=60.0, help="seconds per measured window (one point per curve)")
    ap.add_argument("--url", help="a running PeerLearn server (needs a high PEERLEARN_AUTH_RATE_LIMIT)")
    ap.add_argument("--server-pid", type=int, help="with --url: the server process whose RSS is sampled")
    ap.add_argument("--rooms", type=int, default=2)
    ap.add_argument("--participants", type=int, default=5, help="per room (1 mentor + learners)")
    ap.add_argument("--duration", type=float, default=3600.0, help="seconds under load after the ramp")
    ap.add_argument("--sample-memory", type=float, default=30.0, help="seconds between RSS samples")
    ap.add_argument(
        "--memory-warmup",
        type=float,
        default=300.0,
        help="seconds from the first sample to the RSS growth is measured from",
    )
    ap.add_argument(
        "--tracemalloc",
        type=int,
        default=0,
        metavar="FRAMES",
        help="run the server under tracemalloc (PEERLEARN_TRACEMALLOC=FRAMES), diffs every minute",
    )
    ap.add_argument(
        "--memstats",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="the server logs glibc's heap figures and its Python object count every SECONDS "
        "(PEERLEARN_MEMSTATS; 0: off), copied into the report",
    )
    ap.add_argument(
        "--server-log-level",
        default="WARNING",
        help="the server's PEERLEARN_LOG_LEVEL; its log is server.log in its data dir",
    )
    ap.add_argument("--video-kbps", type=int, default=600)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--clip-seconds", type=float, default=10.0)
    ap.add_argument("--ramp", type=float, default=1.0, help="seconds between joins per room")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds after the ramp before the load window")
    ap.add_argument(
        "--latency-sample",
        type=int,
        default=64,
        help="subscribers decrypt 1 packet in N (the soak does not need many latency samples)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="results directory (default benchmarks/results)")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    if args.replot:
        src = Path(args.replot)
        plot(json.loads(src.read_text()), src.with_suffix(".png"))
        return 0
    if args.out:
        common.RESULTS = Path(args.out)
    random.seed(args.seed)
    report = run_loop(main_async(args), args.loop)
    path = write_report("sfu_soak", report)
    if not args.no_plot:
        plot(report, path.with_suffix(".png"))
    print(
        json.dumps(
            {k: v for k, v in report.items() if k not in ("rss_series", "server_memstats", "windows")},
            indent=2,
            default=str,
        )
    )
    print("\n".join(report.get("server_memstats", [])))
    print(json.dumps({"rss_series": report["rss_series"]}, default=str))
    print(f"report: {path}" + ("" if args.no_plot else f"  plot: {path.with_suffix('.png')}"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
