"""The worker holding a live class is killed (``kill -9``) under ``serve --workers 2``.

The parent notices at once, logs it and starts the worker again (with backoff); /readyz
and /metrics report the restart. The dead worker's room placement is dropped at once, so
participants who rejoin (as the room page does: after 1 s, then 2 s, 4 s ...) meet in a
room on a live worker and decode each other again within seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis

from benchmarks.room_client import RoomParticipant
from tests.scale.test_two_processes import PG, RedisServer, User, free_port, register, scheduled_session

# The bound: every participant decodes everyone again within 5 s of the kill.
REJOIN_BOUND = 5.0


class Machine:
    """One ``peerlearn serve --workers 2`` (the parent and its workers) on PostgreSQL + Redis."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.extra_env = env or {}
        self.redis = RedisServer(tmp)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_name = f"pl_workers_{os.getpid()}"
        self.data = tmp / "data"
        self.log = tmp / "parent.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        async def create_db() -> None:
            conn = await asyncpg.connect(f"{PG}/postgres")
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{self.db_name}"')
            await conn.close()

        asyncio.run(create_db())
        self.redis.start()
        env = {
            **os.environ,
            "PEERLEARN_DATABASE_URL": f"{PG.replace('postgresql://', 'postgresql+asyncpg://')}/{self.db_name}",
            "PEERLEARN_REDIS_URL": self.redis.url,
            "PEERLEARN_JWT_SECRET": "j" * 64,
            "PEERLEARN_TURN_SECRET": "t" * 32,
            "PEERLEARN_ACCESS_LOG": "false",
            "PEERLEARN_LOG_LEVEL": "WARNING",
            "PEERLEARN_REQUIRE_VERIFIED_EMAIL": "false",
            **self.extra_env,
        }
        cmd = [sys.executable, "-m", "api.cli", "serve", "--workers", "2", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            status = self.status()
            if status and all(w["state"] == "running" for w in status["workers"]) and self.ready() is not None:
                return
            time.sleep(0.2)
        raise AssertionError("serve --workers 2 never became ready:\n" + self.log.read_text()[-3000:])

    def status(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.data / "workers.json").read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=3) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def ready(self) -> dict[str, Any] | None:
        status, body = self.get("/readyz")
        return json.loads(body) if status == 200 else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.redis.stop()

        async def drop_db() -> None:
            conn = await asyncpg.connect(f"{PG}/postgres")
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            await conn.close()

        asyncio.run(drop_db())


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    m = Machine(tmp_path_factory.mktemp("workers"))
    try:
        m.start()
        yield m
    finally:
        m.stop()


def owner_pid(m: Machine, sid: int) -> int:
    node = redis.Redis.from_url(m.redis.url).get(f"pl:room:{sid}")
    assert node is not None, "the room has no owner"
    return int(node.decode().rsplit("-", 2)[1])  # node ids are <host>-<pid>-<random>


async def attendance(m: Machine, sid: int, user_id: int) -> list[tuple[Any, Any]]:
    conn = await asyncpg.connect(f"{PG}/{m.db_name}")
    try:
        rows = await conn.fetch(
            "SELECT joined_at, left_at FROM attendance_intervals WHERE session_id = $1 AND user_id = $2"
            " ORDER BY joined_at",
            sid,
            user_id,
        )
    finally:
        await conn.close()
    return [(r["joined_at"], r["left_at"]) for r in rows]


class Rejoining:
    """A participant that rejoins as the room page does when its socket drops: a fresh token,
    a new peer connection, after 0.25 s, then 1 s, 2 s, 4 s ... (web/static/js/room.js)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, user: User, sid: int, role: str) -> None:
        self.http, self.base, self.user, self.sid, self.role = http, base, user, sid, role
        self.p: RoomParticipant | None = None

    async def join(self) -> None:
        status, tok = await self.user.call("POST", f"/api/rooms/{self.sid}/token", base=self.base)
        assert status in (200, 201), tok
        ws = await self.http.ws_connect(self.base + f"/ws/room/{self.sid}?token={tok['token']}")
        p = self.p = RoomParticipant(ws)
        # As the page: a socket the server closes is a failed try at once, not after a timeout.
        joining, closed = asyncio.ensure_future(p.join(self.role)), asyncio.ensure_future(p.wait_message("__closed__"))
        done, _ = await asyncio.wait([joining, closed], return_when=asyncio.FIRST_COMPLETED)
        for task in (joining, closed):
            task.cancel()
        if joining not in done or joining.cancelled() or joining.exception() is not None:
            raise AssertionError(f"the server closed the room socket: {p.messages[-1:]}")

    async def rejoin_after_drop(self) -> None:
        assert self.p is not None
        await self.p.wait_message("__closed__")
        await self.p.close()
        delay = 0.25
        while True:
            await asyncio.sleep(delay)
            try:
                await asyncio.wait_for(self.join(), 10)
                return
            except (AssertionError, aiohttp.ClientError, asyncio.TimeoutError, KeyError):
                if self.p is not None:
                    await self.p.close()
                delay = 1.0 if delay < 1 else min(delay * 2, 15)

    async def close(self) -> None:
        if self.p is not None:
            await self.p.close()


async def decode_each_other(a: Rejoining, b: Rejoining, timeout: float = 20) -> None:
    assert a.p is not None and b.p is not None
    for me, other in ((a.p, b.p), (b.p, a.p)):
        assert other.peer_id is not None
        await asyncio.wait_for(me.wait_frames(other.peer_id, "video", 5), timeout)


async def recording_when_done(user: User, rid: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, rec = await user.call("GET", f"/api/recordings/{rid}")
        assert status == 200, rec
        if rec["status"] in ("ready", "failed") or time.monotonic() > deadline:
            return rec  # type: ignore[no-any-return]
        await asyncio.sleep(0.3)


async def test_killed_room_owner_is_restarted_and_the_class_goes_on_on_a_live_worker(machine: Machine) -> None:
    async with aiohttp.ClientSession() as http:
        mentor = await register(http, machine.url, "mentor", "wm", domains=["Programming"])
        learner = await register(http, machine.url, "learner", "wl")
        sid = await scheduled_session(mentor, 5)
        status, body = await learner.call("POST", "/api/bookings/create", json={"session_id": sid})
        assert status == 201, body
        m = Rejoining(http, machine.url, mentor, sid, "mentor")
        lp = Rejoining(http, machine.url, learner, sid, "learner")
        try:
            await m.join()
            await lp.join()
            await decode_each_other(m, lp)
            assert m.p is not None
            await m.p.send({"type": "chat", "text": "before the crash"})
            assert lp.p is not None
            await lp.p.wait_message("chat")
            deadline = time.monotonic() + 5
            while not (await learner.call("GET", f"/api/rooms/{sid}/chat"))[1]["items"]:
                assert time.monotonic() < deadline, "the chat message was never stored"
                await asyncio.sleep(0.1)

            # The mentor records the class (the request may reach either worker: it goes to the owner).
            status, started = await mentor.call("POST", f"/api/rooms/{sid}/recording", json={"action": "start"})
            assert status == 200 and started["recording"], started
            assert lp.p is not None and m.p is not None
            await m.p.wait_frames(lp.p.peer_id or "", "video", 60)

            victim = owner_pid(machine, sid)
            before = machine.status()
            assert before is not None and victim in [w["pid"] for w in before["workers"]]
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
            await asyncio.gather(m.rejoin_after_drop(), lp.rejoin_after_drop())
            await decode_each_other(m, lp)
            decoding_again = time.monotonic() - killed
            assert owner_pid(machine, sid) != victim

            # The parent started the worker again, logged it, and says so on /readyz and /metrics.
            while True:
                ready = machine.ready()
                workers = ready.get("workers") if ready else None
                if workers and workers["healthy"] and workers["restarts"] == 1:
                    break
                assert time.monotonic() - killed < 30, ready
                await asyncio.sleep(0.2)
            restarted = time.monotonic() - killed
            after = machine.status()
            assert after is not None and victim not in [w["pid"] for w in after["workers"]]
            log = machine.log.read_text()
            assert f"(pid {victim}) exited with code -9" in log, log[-2000:]
            status, metrics = machine.get("/metrics")
            assert status == 200
            assert b"peerlearn_workers_expected 2.0" in metrics
            assert b"peerlearn_worker_restarts_total{" in metrics
            restarts = [
                line for line in metrics.decode().splitlines() if line.startswith("peerlearn_worker_restarts_total")
            ]
            assert sorted(float(line.rsplit(" ", 1)[1]) for line in restarts) == [0.0, 1.0], restarts
            # Nothing of the class was lost: it is still live, the chat is there, and each
            # participant's attendance runs on through the gap (the interval the dead worker
            # left open ends where the rejoin begins: no leave, no no-show).
            status, detail = await learner.call("GET", f"/api/sessions/{sid}")
            assert detail["status"] == "live", detail
            status, chat = await learner.call("GET", f"/api/rooms/{sid}/chat")
            assert status == 200 and [c["text"] for c in chat["items"]] == ["before the crash"], chat
            for user in (mentor, learner):
                spans = await attendance(machine, sid, user.id)
                assert len(spans) == 2 and spans[0][1] == spans[1][0] and spans[1][1] is None, spans
            # The recording went on in the room's new process: still one recording, which ends
            # as one file per participant across the gap, the gap marked.
            assert m.p is not None and lp.p is not None
            await m.p.wait_frames(lp.p.peer_id or "", "video", 60)
            status, listed = await mentor.call("GET", f"/api/recordings?session_id={sid}")
            assert status == 200 and [r["id"] for r in listed["items"]] == [started["recording_id"]], listed
            assert listed["items"][0]["status"] == "recording", listed
            status, stopped = await mentor.call("POST", f"/api/rooms/{sid}/recording", json={"action": "stop"})
            assert status == 200 and stopped["recording_id"] == started["recording_id"], stopped
            rec = await recording_when_done(mentor, started["recording_id"])
            assert rec["status"] == "ready", rec
            [gap] = rec["gaps"]
            assert 0 < gap["start_ms"] < gap["end_ms"], rec["gaps"]
            assert len(rec["files"]) == 2, rec["files"]
            for f in rec["files"]:  # each participant's file holds both sides of the gap
                assert f["offset_ms"] <= gap["start_ms"] and f["offset_ms"] + f["duration_ms"] > gap["end_ms"], f
            print(
                f"\nworker killed: both decode again after {decoding_again:.2f}s; "
                f"worker restarted and reported healthy after {restarted:.2f}s"
            )
            assert decoding_again < REJOIN_BOUND
        finally:
            await asyncio.gather(m.close(), lp.close(), return_exceptions=True)
