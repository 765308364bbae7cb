"""The capacity curve of ``sfu_load.py --sweep``: rooms added until the server (or the generator) gives out.

One server; 5-person rooms are added step by step and each step is measured by
``benchmarks/load_rooms.py``; ``verdict`` says whose limit a failing step was (the generator is
judged first, so a starved generator is never reported as the server's capacity).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import aiohttp

from benchmarks.load_rooms import GENERATOR_WAIT_SHARE, Load, client_session, generator_cores, shares_sockets
from benchmarks.procstats import pin
from benchmarks.room_api import metric_urls
from benchmarks.sfu_servers import BenchServer

#: the capacity criteria (issue 16)
MAX_LOSS_PCT = 0.5
MAX_LATENCY_P99_MS = 10.0


def verdict(step: dict[str, Any]) -> Optional[str]:
    """Why the sweep stops after this step (None: go on). The generator is judged first."""
    gen = step["generator"]
    if gen["saturated"]:
        return "generator saturated: " + "; ".join(gen["saturation"])
    if step["join_failures"]:
        # a refused or timed-out join: whose fault is not known from here, the errors say
        return f"joins failed: {step['join_failures'][0][:120]}"
    if step["streams_flowing"] < step["streams_expected"]:
        return f"server: {step['streams_expected'] - step['streams_flowing']} streams not flowing"
    if step["loss_pct"] is not None and step["loss_pct"] > MAX_LOSS_PCT:
        return f"server: loss {step['loss_pct']:.2f} % > {MAX_LOSS_PCT} %"
    p99 = (step["latency_ms"] or {}).get("p99")
    if p99 is not None and p99 > MAX_LATENCY_P99_MS:
        return f"server: SFU-added latency p99 {p99:.1f} ms > {MAX_LATENCY_P99_MS:g} ms"
    return None


def busy_note(step: dict[str, Any]) -> str:
    """What other load on the machine took from the server during the window, if that is notable."""
    waited = step["runqueue_wait_share"]["sfu"]
    return (
        f" (the server waited for a CPU {waited:.0%} of the window: other processes, the generator "
        f"included, held the cores)"
        if waited > GENERATOR_WAIT_SHARE
        else ""
    )


async def sweep(
    *,
    args: argparse.Namespace,
    clips: dict[str, Any],
    workers: int,
    run_id: str,
    server_cpus: Optional[set[int]],
    client_cpus: Optional[set[int]],
) -> dict[str, Any]:
    """One server with ``workers`` processes; rooms added until a criterion fails."""
    server = BenchServer(Path(tempfile.mkdtemp(prefix="pl-sfusweep-")), workers, per_peer_ports=shares_sockets(args))
    server.start()
    pids = server.pids()
    if server_cpus and workers == 1:
        for pid in pids:
            pin(pid, server_cpus)
    redis_url = server.env.get("PEERLEARN_REDIS_URL") if workers > 1 else None
    steps: list[dict[str, Any]] = []
    stop: Optional[str] = None
    try:
        async with client_session() as http:
            load = Load(
                mode="ours",
                generator=args.generator,
                base=server.url,
                participants=args.participants,
                clips=clips,
                http=http,
                run_id=f"{run_id}w{workers}",
                audio_level=args.audio_level,
                sockets=args.generator_sockets,
                timed=args.timed_per_room,
                sample_mask=max(1, args.latency_sample) - 1,
            )
            try:
                target = 1
                while target <= args.sweep_max:
                    label = f"sweep {workers}w {target}x{args.participants}"
                    try:
                        await load.add_rooms(
                            target - load.rooms, ramp=args.ramp * (target - load.rooms), warmup=args.warmup, label=label
                        )
                        urls = await metric_urls(server.url, redis_url)
                        step = await load.measure(
                            duration=args.duration,
                            pids=server.pids(),
                            urls=urls,
                            fps=args.fps,
                            label=label,
                            generator_cores=generator_cores(client_cpus),
                        )
                    except (OSError, asyncio.TimeoutError, RuntimeError, aiohttp.ClientError) as exc:
                        # the steps so far stand; this one could not be measured
                        stop = f"step {target} rooms not measured: {exc!r}"
                        print(f"\n{label}: {stop}", file=sys.stderr)
                        break
                    stop = verdict(step)
                    if stop and args.sweep_confirm:
                        # one bad window (a burst of other load on a shared machine) is not a capacity:
                        # the step is measured again and the second window decides
                        print(f"\n{label}: {stop}; measuring again", file=sys.stderr)
                        first = step
                        step = await load.measure(
                            duration=args.duration,
                            pids=server.pids(),
                            urls=urls,
                            fps=args.fps,
                            label=label,
                            generator_cores=generator_cores(client_cpus),
                        )
                        step["first_window"] = {"verdict": stop, "summary": summary_line(first)}
                        stop = verdict(step)
                    if stop and stop.startswith("server"):
                        stop += busy_note(step)
                    step["verdict"] = stop or "ok"
                    steps.append(step)
                    print(f"\n{label}: {summary_line(step)}", file=sys.stderr)
                    if stop:
                        break
                    target = args.sweep_step if target == 1 and args.sweep_step > 1 else target + args.sweep_step
                else:
                    stop = f"--sweep-max {args.sweep_max} rooms reached"
            finally:
                await load.close()
    finally:
        server.stop()
    ok = [s for s in steps if s["verdict"] == "ok"]
    best = ok[-1] if ok else None
    return {
        "workers": workers,
        "steps": steps,
        "stopped": stop,
        "limited_by": "generator"
        if stop and stop.startswith("generator")
        else "server"
        if stop and stop.startswith("server")
        else "joins"
        if stop and stop.startswith("joins")
        else "measurement error"
        if stop and stop.startswith("step")
        else "sweep range",
        "max_rooms": best["rooms"] if best else 0,
        "at_max": {
            k: best[k]
            for k in (
                "forwarded_packets_per_s",
                "server_cpu_cores",
                "forwarded_packets_per_server_core_s",
                "cpu_us_per_forwarded_packet",
                "loss_pct",
                "latency_ms",
            )
        }
        if best
        else None,
    }


def summary_line(step: dict[str, Any]) -> str:
    gen = step["generator"]
    return (
        f"{step['forwarded_packets_per_s']:.0f} fwd pkt/s, server {step['server_cpu_cores']:.2f} cores, "
        f"{step['cpu_us_per_forwarded_packet']} us/pkt, loss {step['loss_pct']} %, "
        f"latency p99 {(step['latency_ms'] or {}).get('p99')} ms | generator {gen['cpu_cores']:.2f} cores, "
        f"{gen['cpu_us_per_packet']} us/pkt, drops {gen['udp_drops']} -> {step.get('verdict', '')}"
    )
