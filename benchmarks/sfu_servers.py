"""The servers the SFU load test runs against: PeerLearn (``--workers N``, with a private
Redis when N > 1) and the re-encoding baseline (aiortc's MediaRelay, in a subprocess).

    python benchmarks/sfu_servers.py --serve-baseline PORT
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import LocalServer, free_port, wait_healthy  # noqa: E402
from benchmarks.procstats import child_pids  # noqa: E402


class BenchServer(LocalServer):
    """LocalServer with ``--workers N`` (and a private Redis when N > 1). ``per_peer_ports``: each peer
    connection gets its own UDP port from PER_PEER_PORTS instead of the one port all share (the
    default), for a load generator that plays many clients from one address."""

    PER_PEER_PORTS = (40000, 59999)

    def __init__(self, data_dir: Path, workers: int, *, per_peer_ports: bool = False) -> None:
        self.workers = workers
        self.redis: Optional[subprocess.Popen[bytes]] = None
        env = {"PEERLEARN_LOG_LEVEL": "ERROR"}
        if per_peer_ports:
            env["PEERLEARN_RTC_PORT_MIN"], env["PEERLEARN_RTC_PORT_MAX"] = map(str, self.PER_PEER_PORTS)
        if workers > 1 and not os.environ.get("PEERLEARN_REDIS_URL"):
            rport = free_port()
            self.redis = subprocess.Popen(
                ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            env["PEERLEARN_REDIS_URL"] = f"redis://127.0.0.1:{rport}/0"
        super().__init__(data_dir, env=env, demo=False)

    def start(self) -> None:
        if self.workers <= 1:
            return super().start()
        cli = [sys.executable, "-m", "api.cli"]
        self.proc = subprocess.Popen(
            [*cli, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir), "--workers", str(self.workers)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        proc = self.proc
        wait_healthy(self.url, ready=lambda: len(child_pids(proc.pid)) >= self.workers)
        time.sleep(2)  # every worker registered in Redis

    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *child_pids(self.proc.pid)]

    def stop(self) -> None:
        super().stop()
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)


def serve_baseline(port: int) -> None:
    """aiortc's MediaRelay with re-encoding: decode each publisher once, encode per subscriber."""
    from aiohttp import web
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay

    relay = MediaRelay()
    rooms: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        room, name = request.query["room"], request.query["name"]
        me: dict[str, Any] = {"tracks": {}, "ws": ws, "pcs": []}
        rooms[room][name] = me
        sub_pc = None
        async for msg in ws:
            data = json.loads(msg.data)
            if data["type"] == "publish":
                pc = RTCPeerConnection()
                me["pcs"].append(pc)

                @pc.on("track")
                def on_track(track: Any) -> None:
                    me["tracks"][track.kind] = track

                await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                await ws.send_json({"type": "answer", "sdp": pc.localDescription.sdp})
                n = sum(1 for m in rooms[room].values() if len(m["tracks"]) == 2)
                for other in rooms[room].values():
                    await other["ws"].send_json({"type": "count", "n": n})
            elif data["type"] == "subscribe":
                sub_pc = RTCPeerConnection()
                me["pcs"].append(sub_pc)
                publishers = []
                for other_name, other in rooms[room].items():
                    if other_name == name:
                        continue
                    for kind in ("video", "audio"):
                        if kind in other["tracks"]:
                            sub_pc.addTrack(relay.subscribe(other["tracks"][kind]))
                            publishers.append(other_name)
                await sub_pc.setLocalDescription(await sub_pc.createOffer())
                await ws.send_json({"type": "offer", "sdp": sub_pc.localDescription.sdp, "publishers": publishers})
            elif data["type"] == "answer" and sub_pc is not None:
                await sub_pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
        for pc in me["pcs"]:
            await pc.close()
        rooms[room].pop(name, None)
        return ws

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


class BaselineServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-baseline", str(self.port)],
            stdout=subprocess.DEVNULL,
        )
        wait_healthy(self.url, timeout=30, what="baseline server")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--serve-baseline", type=int, metavar="PORT", required=True)
    serve_baseline(ap.parse_args().serve_baseline)
