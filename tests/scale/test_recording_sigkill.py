"""A server killed with SIGKILL mid-recording: after a restart the recording is a playable file
holding what was captured before the kill (issue: crash-safe capture + start-up recovery)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import av

from benchmarks.room_client import RoomParticipant
from tests.scale.test_two_processes import free_port, register

ENV = {
    "PEERLEARN_JWT_SECRET": "k" * 64,
    "PEERLEARN_AUTH_RATE_LIMIT": "100000",
    "PEERLEARN_ACCESS_LOG": "false",
    "PEERLEARN_LOG_LEVEL": "WARNING",
    "PEERLEARN_SCHEDULER_ENABLED": "false",
    "PEERLEARN_REQUIRE_VERIFIED_EMAIL": "false",
    # nobody comes back to the class here: finalize the interrupted capture soon after the restart
    "PEERLEARN_RECORDING_RESUME_GRACE_SECONDS": "2",
    "PEERLEARN_RECORDING_RECOVERY_INTERVAL_SECONDS": "1",
}  # accounts registered over HTTP, mail not read


def start_server(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--data-dir", str(data)],
        env={**os.environ, **ENV},
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not start")


async def eventually(fn: Any, timeout: float = 60) -> Any:
    async def loop() -> Any:
        while True:
            value = await fn()
            if value:
                return value
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(loop(), timeout)


async def test_sigkill_mid_recording_is_recovered_on_restart(tmp_path: Path) -> None:
    data, port, log = tmp_path / "data", free_port(), tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    proc = start_server(data, port, log)
    participants: list[RoomParticipant] = []
    try:
        async with aiohttp.ClientSession() as http:
            mentor = await register(http, base, "mentor", "km", domains=["Programming"])
            learner = await register(http, base, "learner", "kl")
            starts = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
            status, sess = await mentor.call(
                "POST",
                "/api/sessions",
                json={
                    "title": "Killed",
                    "domain": "Programming",
                    "capacity": 2,
                    "starts_at": starts,
                    "duration_min": 30,
                },
            )
            assert status == 201, sess
            sid = sess["id"]
            assert (await mentor.call("POST", f"/api/sessions/{sid}/publish"))[0] == 200
            assert (await learner.call("POST", "/api/bookings/create", json={"session_id": sid}))[0] == 201
            for user in (mentor, learner):
                _, tok = await user.call("POST", f"/api/rooms/{sid}/token")
                p = RoomParticipant(
                    await http.ws_connect(f"{base.replace('http', 'ws')}/ws/room/{sid}?token={tok['token']}")
                )
                participants.append(p)
                await p.join(str(user.id))
            m, lp = participants
            await m.wait_frames(lp.peer_id, "video", 5)
            await lp.wait_frames(m.peer_id, "video", 5)
            status, rec = await mentor.call("POST", f"/api/rooms/{sid}/recording", json={"action": "start"})
            assert status == 200, rec
            rid = rec["recording_id"]
            # Record a few seconds of media (the dumps are flushed as packets arrive), then SIGKILL.
            await m.wait_frames(lp.peer_id, "video", 90)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            await asyncio.gather(*(p.close() for p in participants), return_exceptions=True)

            proc = start_server(data, port, log)

            async def ready() -> Any:
                status, body = await mentor.call("GET", f"/api/recordings/{rid}")
                return body if status == 200 and body["status"] in ("ready", "failed") else None

            rec = await eventually(ready)
            assert rec["status"] == "ready", rec
            async with http.get(
                f"{base}/api/recordings/{rid}/download?file=0", headers={"Authorization": f"Bearer {mentor.token}"}
            ) as resp:
                assert resp.status == 200
                target = tmp_path / "recovered.webm"
                target.write_bytes(await resp.read())
        with av.open(str(target)) as c:
            codecs = sorted(s.codec_context.name for s in c.streams)
            frames = sum(1 for _ in c.decode(video=0))
        assert codecs == ["opus", "vp8"]
        assert frames >= 30  # about a second or more of what was recorded before the kill
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)
