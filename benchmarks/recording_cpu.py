"""SFU CPU with and without recording, one run: a 5-person room of aiortc clients.

The SFU runs in its own process (engine + WebSocket signaling, nothing else),
so its CPU (utime+stime of that process) is measured apart from the clients'
encoding and decoding. Phases: forwarding only, recording, forwarding only
again; each ``--phase`` seconds. Finalizing (muxing, a thread) is timed apart.

    .venv/bin/python -m benchmarks.recording_cpu --peers 5 --phase 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


async def _server(port: int, directory: Path) -> None:
    from aiohttp import web

    from api.routes.rooms import AiohttpChannel
    from sfu import Engine, ParticipantInfo, SfuConfig, serve_participant
    from sfu.recording import Recorder, finalize

    engine = Engine(SfuConfig())
    router = engine.create_router("bench", max_peers=16, app_data={"session_id": 1})
    state: dict[str, Any] = {"recorder": None, "n": 0}

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse(max_msg_size=1 << 16)
        await sock.prepare(request)
        state["n"] += 1
        key = request.query.get("user", str(state["n"]))
        await serve_participant(router, AiohttpChannel(sock), ParticipantInfo(user_key=key, display_name=key))
        return sock

    async def cpu(_r: web.Request) -> web.Response:
        return web.json_response(
            {"cpu": _cpu(), "stats": vars(router.stats()), "spent": state.get("spent", {"tap": 0.0, "flush": 0.0})}
        )

    async def start(_r: web.Request) -> web.Response:
        rec = Recorder(router, directory / f"rec-{time.time_ns()}")
        rec.start()
        # the recorder's own CPU, measured around its tap and its flush timer (thread CPU time)
        tap, flush_loop_once = rec._on_rtp, None
        spent = state.setdefault("spent", {"tap": 0.0, "flush": 0.0})

        def timed_tap(pid: str, kind: str, data: bytes, _tap: Any = tap) -> None:
            t0 = time.thread_time()
            _tap(pid, kind, data)
            spent["tap"] += time.thread_time() - t0

        router.observer.remove_rtp_tap(tap)
        router.observer.add_rtp_tap(timed_tap)
        rec._on_rtp = timed_tap  # type: ignore[method-assign]
        for name in ("flush", "sync"):
            from sfu.recording.rtp_dump import DumpWriter

            original = getattr(DumpWriter, name)
            if getattr(original, "_timed", False):
                continue

            def timed(self: Any, *a: Any, _o: Any = original) -> Any:
                t0 = time.thread_time()
                try:
                    return _o(self, *a)
                finally:
                    spent["flush"] += time.thread_time() - t0

            timed._timed = True  # type: ignore[attr-defined]
            setattr(DumpWriter, name, timed)
        del flush_loop_once
        state["recorder"] = rec
        return web.json_response({"ok": True})

    async def stop(_r: web.Request) -> web.Response:
        rec = state["recorder"]
        await rec.stop()
        t0 = time.perf_counter()
        c0 = _cpu()
        result = await asyncio.to_thread(finalize, rec.directory)
        return web.json_response(
            {
                "stats": rec.stats(),
                "finalize_seconds": time.perf_counter() - t0,
                "finalize_cpu": _cpu() - c0,
                "bytes": result.bytes,
                "files": len(result.files),
            }
        )

    app = web.Application()
    app.router.add_get("/ws", ws)
    app.router.add_get("/cpu", cpu)
    app.router.add_post("/start", start)
    app.router.add_post("/stop", stop)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def _bench(port: int, peers: int, phase: float) -> dict[str, Any]:
    import aiohttp

    from benchmarks.room_client import RoomParticipant

    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        clients = []
        for i in range(peers):
            ws = await http.ws_connect(f"{base}/ws?user=u{i}")
            c = RoomParticipant(ws)
            await c.join(f"u{i}")
            clients.append(c)
        for c in clients:
            for other in clients:
                if other is not c:
                    await c.wait_frames(other.peer_id, "video", 3)
        await asyncio.sleep(2.0)

        async def measure(label: str) -> dict[str, Any]:
            a = await (await http.get(f"{base}/cpu")).json()
            await asyncio.sleep(phase)
            b = await (await http.get(f"{base}/cpu")).json()
            seconds = b["cpu"] - a["cpu"]
            pin = b["stats"]["packets_received"] - a["stats"]["packets_received"]
            pout = b["stats"]["packets_forwarded"] - a["stats"]["packets_forwarded"]
            spent = {k: round(b["spent"][k] - a["spent"][k], 4) for k in ("tap", "flush")}
            return {
                "phase": label,
                "cpu_seconds": round(seconds, 3),
                "cpu_share": round(seconds / phase, 4),
                "recorder_cpu_seconds": spent,
                "peers": b["stats"]["peers"],
                "packets_in_per_s": round(pin / phase, 1),
                "packets_out_per_s": round(pout / phase, 1),
                "us_per_packet_out": round(seconds / max(1, pout) * 1e6, 2),
            }

        phases = []
        stops = []
        for _round in range(2):  # A B A B: forwarding only, then recording
            phases.append(await measure("forwarding"))
            await http.post(f"{base}/start")
            phases.append(await measure("recording"))
            stops.append(await (await http.post(f"{base}/stop")).json())
        for c in clients:
            await c.close()
    # only phases where the whole room was up (the single-process load clients can fall behind)
    valid = [p for p in phases if p["peers"] == peers and p["packets_in_per_s"] > 0]
    fwd = [p for p in valid if p["phase"] == "forwarding"]
    rec = [p for p in valid if p["phase"] == "recording"]
    per_pkt_fwd = sum(p["cpu_seconds"] for p in fwd) / max(1e-9, sum(p["packets_in_per_s"] for p in fwd))
    per_pkt_rec = sum(p["cpu_seconds"] for p in rec) / max(1e-9, sum(p["packets_in_per_s"] for p in rec))
    recorder_cpu = sum(p["recorder_cpu_seconds"]["tap"] + p["recorder_cpu_seconds"]["flush"] for p in rec)
    return {
        "peers": peers,
        "phase_seconds": phase,
        "phases": phases,
        "recorder": stops,
        "valid_phases": len(valid),
        # SFU CPU per received packet, recording vs not (A/B; noisy on a shared 2-core machine)
        "extra_cpu_percent_ab": round((per_pkt_rec - per_pkt_fwd) / per_pkt_fwd * 100, 1) if fwd and rec else None,
        # the recorder's own CPU (tap + writes + fsync, thread CPU time) vs the rest of the SFU
        "recorder_cpu_percent_of_sfu": round(
            recorder_cpu / (sum(p["cpu_seconds"] for p in rec) - recorder_cpu) * 100, 2
        ),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": " ".join(sys.argv),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=int, default=5)
    parser.add_argument("--phase", type=float, default=15.0)
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="benchmarks/results/recording_cpu.json")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_server(args.serve, Path(args.dir)))
        return 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.recording_cpu", "--serve", str(port), "--dir", tmp],
            stdout=subprocess.PIPE,
        )
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == b"ready"
            result = asyncio.run(_bench(port, args.peers, args.phase))
        finally:
            server.terminate()
            server.wait()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
