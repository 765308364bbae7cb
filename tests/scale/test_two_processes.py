"""Scale-out for real: two server processes sharing PostgreSQL and a Redis of their own.

A notification made through A reaches a socket on B; two participants who
enter through different processes meet in one room (the room lives in one
process, the other proxies the signaling) and decode each other's media; the
T-10 reminder is sent once; Redis stopped for 15 s and restarted is survived
without a restart; the auth rate limit is shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis
import pytest

from api.migrate import upgrade
from benchmarks.room_client import RoomParticipant

PG = os.environ.get("PEERLEARN_SCALE_PG", "postgresql://postgres@127.0.0.1:5432")
PASSWORD = "Str0ng-passw0rd"
RATE_LIMIT = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private redis-server, so stopping it disturbs nothing else."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is required for the scale-out tests"
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.redis = RedisServer(tmp)
        self.db_name = f"pl_scale_{os.getpid()}"
        self.db_url = f"{PG.replace('postgresql://', 'postgresql+asyncpg://')}/{self.db_name}"
        self.ports = [free_port(), free_port()]
        self.procs: list[subprocess.Popen[bytes]] = []

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def start(self) -> None:
        async def create_db() -> None:
            conn = await asyncpg.connect(f"{PG}/postgres")
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{self.db_name}"')
            await conn.close()

        asyncio.run(create_db())
        upgrade(self.db_url)
        self.redis.start()
        for i, port in enumerate(self.ports):
            env = {
                **os.environ,
                "PEERLEARN_DATABASE_URL": self.db_url,
                "PEERLEARN_REDIS_URL": self.redis.url,
                "PEERLEARN_JWT_SECRET": "j" * 64,
                "PEERLEARN_TURN_SECRET": "t" * 32,
                "PEERLEARN_SCHEDULER_INTERVAL_SECONDS": "1",
                "PEERLEARN_AUTH_RATE_LIMIT": str(RATE_LIMIT),
                "PEERLEARN_ACCESS_LOG": "false",
                "PEERLEARN_LOG_LEVEL": "WARNING",
                # accounts are registered over HTTP; their mail lands in either process's outbox
                "PEERLEARN_REQUIRE_VERIFIED_EMAIL": "false",
                # the Redis outage test sends a request every 2 s until fan-out recovers
                "PEERLEARN_REQUEST_RATE_BURST": "1000",
            }
            log = open(self.tmp / f"server{i}.log", "wb")
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "api.cli",
                        "serve",
                        "--port",
                        str(port),
                        "--data-dir",
                        str(self.tmp / f"data{i}"),
                        "--no-migrate",
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for i in range(2):
            self.wait_http(i, "/healthz")

    def wait_http(self, i: int, path: str, status: int = 200, timeout: float = 40) -> None:
        import urllib.error
        import urllib.request

        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url(i) + path, timeout=2) as resp:
                    if resp.status == status:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code == status:
                    return
            except OSError:
                pass
            assert self.procs[i].poll() is None, (self.tmp / f"server{i}.log").read_text()[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"{self.url(i)}{path} never answered {status}")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        self.redis.stop()

        async def drop_db() -> None:
            conn = await asyncpg.connect(f"{PG}/postgres")
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            await conn.close()

        asyncio.run(drop_db())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("scale"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


class User:
    def __init__(self, http: aiohttp.ClientSession, base: str, token: str, data: dict[str, Any]) -> None:
        self.http, self.base, self.token, self.id = http, base, token, data["id"]

    async def call(self, method: str, path: str, base: str | None = None, **kw: Any) -> tuple[int, Any]:
        async with self.http.request(
            method, (base or self.base) + path, headers={"Authorization": f"Bearer {self.token}"}, **kw
        ) as resp:
            return resp.status, await resp.json()


async def register(http: aiohttp.ClientSession, base: str, role: str, name: str, **fields: Any) -> User:
    email = f"{name}-{time.time_ns()}@example.com"
    async with http.post(
        base + "/api/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": name, "role": role, **fields},
    ) as resp:
        assert resp.status == 201, await resp.text()
    async with http.post(base + "/api/auth/login", json={"email": email, "password": PASSWORD}) as resp:
        data = await resp.json()
    http.cookie_jar.clear()
    return User(http, base, data["access_token"], data["user"])


async def next_message(ws: aiohttp.ClientWebSocketResponse, pred: Any, timeout: float = 15) -> dict[str, Any]:
    async def loop() -> dict[str, Any]:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if pred(data):
                    return data
        raise AssertionError("socket closed")

    return await asyncio.wait_for(loop(), timeout)


async def scheduled_session(mentor: User, minutes: float, capacity: int = 3) -> int:
    starts = (datetime.now(timezone.utc) + timedelta(minutes=minutes)).isoformat()
    status, body = await mentor.call(
        "POST",
        "/api/sessions",
        json={"title": "Scale", "domain": "Programming", "capacity": capacity, "starts_at": starts, "duration_min": 30},
    )
    assert status == 201, body
    status, body = await mentor.call("POST", f"/api/sessions/{body['id']}/publish")
    assert status == 200, body
    return int(body["id"])


async def test_notification_made_on_a_reaches_socket_on_b(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as http:
        mentor = await register(http, cluster.url(0), "mentor", "m", domains=["Programming"])
        learner = await register(http, cluster.url(0), "learner", "l")
        async with http.ws_connect(cluster.url(1) + f"/ws?token={mentor.token}") as ws:
            status, _ = await learner.call(
                "POST",
                "/api/requests/create",
                json={
                    "topic": "Across processes",
                    "domain": "Programming",
                    "mentor_id": mentor.id,
                    "preferred_times": [(datetime.now(timezone.utc) + timedelta(days=1)).isoformat()],
                },
            )
            assert status == 201
            got = await next_message(ws, lambda m: m.get("type") == "notification")
            assert got["data"]["kind"] == "request.new"


async def test_message_sent_through_a_reaches_the_recipient_on_b(cluster: Cluster) -> None:
    """Messages go through the broker: the recipient's socket may live in the other process,
    and so may their answer's (and the read receipt's) recipient."""
    async with aiohttp.ClientSession() as http:
        mentor = await register(http, cluster.url(0), "mentor", "mm", domains=["Programming"])
        learner = await register(http, cluster.url(1), "learner", "ml")
        async with (
            http.ws_connect(cluster.url(1) + f"/ws?token={mentor.token}") as mentor_ws,
            http.ws_connect(cluster.url(0) + f"/ws?token={learner.token}") as learner_ws,
        ):
            status, msg = await learner.call(
                "POST", "/api/messages", base=cluster.url(0), json={"to_user_id": mentor.id, "body": "Hi from A"}
            )
            assert status == 201, msg
            got = await next_message(mentor_ws, lambda m: m.get("type") == "message")
            assert got["data"]["id"] == msg["id"] and got["data"]["body"] == "Hi from A"
            status, reply = await mentor.call(
                "POST", "/api/messages", base=cluster.url(1), json={"to_user_id": learner.id, "body": "Hi from B"}
            )
            assert status == 201, reply
            got = await next_message(
                learner_ws, lambda m: m.get("type") == "message" and m["data"]["sender_id"] == mentor.id
            )
            assert got["data"]["body"] == "Hi from B"
            status, _ = await learner.call(
                "POST", f"/api/conversations/{msg['conversation_id']}/read", base=cluster.url(1)
            )
            assert status == 200
            receipt = await next_message(mentor_ws, lambda m: m.get("type") == "message.read")
            assert receipt["data"]["read_id"] == reply["id"]


async def test_participants_on_two_processes_meet_in_one_room(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as http:
        mentor = await register(http, cluster.url(0), "mentor", "rm", domains=["Programming"])
        learner = await register(http, cluster.url(1), "learner", "rl")
        sid = await scheduled_session(mentor, 5)
        status, body = await learner.call("POST", "/api/bookings/create", json={"session_id": sid})
        assert status == 201, body
        _, mtok = await mentor.call("POST", f"/api/rooms/{sid}/token")
        _, ltok = await learner.call("POST", f"/api/rooms/{sid}/token")
        m = RoomParticipant(await http.ws_connect(cluster.url(0) + f"/ws/room/{sid}?token={mtok['token']}"))
        lp = RoomParticipant(await http.ws_connect(cluster.url(1) + f"/ws/room/{sid}?token={ltok['token']}"))
        try:
            await m.join("mentor")
            await lp.join("learner")
            for me, other in ((m, lp), (lp, m)):
                try:
                    await me.wait_frames(other.peer_id, "video", 5)
                    await me.wait_frames(other.peer_id, "audio", 5)
                except asyncio.TimeoutError:
                    raise AssertionError(
                        f"no media from {other.peer_id}: frames={dict(me.frames)} "
                        f"messages={[x.get('type') for x in me.messages]}"
                    ) from None
        finally:
            await asyncio.gather(m.close(), lp.close(), return_exceptions=True)


async def test_reminder_sent_once_by_two_schedulers(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as http:
        mentor = await register(http, cluster.url(0), "mentor", "sm", domains=["Programming"])
        learner = await register(http, cluster.url(1), "learner", "sl")
        sid = await scheduled_session(mentor, 9.5)
        status, _ = await learner.call("POST", "/api/bookings/create", json={"session_id": sid})
        assert status == 201

        async def reminders() -> list[dict[str, Any]]:
            _, body = await learner.call("GET", "/api/notifications?page_size=100")
            return [n for n in body["items"] if n["kind"] == "session.reminder" and str(sid) in n["link"]]

        # A tick a second; alone this takes a second or two. The bound leaves room for a machine
        # busy with the rest of the suite (a clean-clone CI run once passed 45 s here); on failure
        # the servers' logs say what the schedulers were doing.
        deadline = time.time() + 90
        while not await reminders():
            if time.time() > deadline:
                logs = "\n".join(
                    f"--- server{i}.log\n" + (cluster.tmp / f"server{i}.log").read_text(errors="replace")[-2000:]
                    for i in range(2)
                )
                raise AssertionError(f"no reminder within 90 s\n{logs}")
            await asyncio.sleep(0.3)
        # Both schedulers tick every second: give each several more chances to send it again.
        await asyncio.sleep(4)
        assert len(await reminders()) == 1


async def test_redis_outage_is_survived_without_restart(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as http:
        mentor = await register(http, cluster.url(0), "mentor", "om", domains=["Programming"])
        learner = await register(http, cluster.url(0), "learner", "ol")
        cluster.redis.stop()
        try:
            for i in range(2):
                cluster.wait_http(i, "/readyz", status=503)
            await asyncio.sleep(15)
            for i in range(2):
                cluster.wait_http(i, "/healthz", status=200, timeout=2)
            # The service keeps working on its own process meanwhile.
            status, _ = await mentor.call("GET", "/api/users/me", base=cluster.url(1))
            assert status == 200
        finally:
            cluster.redis.start()
        for i in range(2):
            cluster.wait_http(i, "/readyz", status=200, timeout=30)
        # Fan-out across processes works again, without a restart.
        async with http.ws_connect(cluster.url(1) + f"/ws?token={mentor.token}") as ws:
            deadline = time.time() + 20
            while True:
                status, _ = await learner.call(
                    "POST",
                    "/api/requests/create",
                    json={
                        "topic": "After outage",
                        "domain": "Programming",
                        "mentor_id": mentor.id,
                        "preferred_times": [(datetime.now(timezone.utc) + timedelta(days=1)).isoformat()],
                    },
                )
                assert status == 201
                try:
                    await next_message(ws, lambda m: m.get("type") == "notification", timeout=2)
                    break
                except asyncio.TimeoutError:
                    assert time.time() < deadline, "cross-process fan-out did not recover"


async def _until(call: Any, done: Any, timeout: float = 5) -> Any:
    """``await call()`` until ``done(result)``: another process hears a write through Redis."""
    deadline = time.time() + timeout
    while True:
        result = await call()
        if done(result) or time.time() > deadline:
            return result
        await asyncio.sleep(0.01)


async def test_cached_reads_on_b_follow_writes_on_a(cluster: Cluster) -> None:
    """B caches a session's detail and a token; a booking and a logout made through A reach
    B's caches over Redis (A publishes before it answers)."""
    async with aiohttp.ClientSession() as http:
        mentor = await register(http, cluster.url(0), "mentor", "cm", domains=["Programming"])
        learner = await register(http, cluster.url(0), "learner", "cl")
        sid = await scheduled_session(mentor, minutes=120, capacity=3)
        b = cluster.url(1)
        for _ in range(2):  # the second answer comes from B's caches
            status, detail = await learner.call("GET", f"/api/sessions/{sid}", base=b)
            assert status == 200 and detail["seats_left"] == 3 and detail["booked"] is False
        status, body = await learner.call("POST", "/api/bookings/create", json={"session_id": sid})
        assert status == 201, body
        status, detail = await _until(
            lambda: learner.call("GET", f"/api/sessions/{sid}", base=b), lambda r: r[1]["seats_left"] == 2
        )
        assert detail["seats_left"] == 2 and detail["booked"] is True
        assert (await learner.call("GET", "/api/users/me", base=b))[0] == 200
        assert (await learner.call("POST", "/api/auth/logout"))[0] == 200
        status, _ = await _until(lambda: learner.call("GET", "/api/users/me", base=b), lambda r: r[0] == 401)
        assert status == 401


async def test_auth_rate_limit_is_shared(cluster: Cluster) -> None:
    """Runs last: it exhausts this IP's login budget for the current minute."""
    email = f"nobody-{time.time_ns()}@example.com"
    statuses = []
    async with aiohttp.ClientSession() as http:
        for attempt in range(2 * RATE_LIMIT):
            async with http.post(
                cluster.url(attempt % 2) + "/api/auth/login", json={"email": email, "password": "Wrong-passw0rd"}
            ) as resp:
                statuses.append(resp.status)
    assert 429 in statuses
    # Shared across both processes: the account's budget is spent once, not once per process.
    assert statuses.count(401) <= RATE_LIMIT


async def test_a_forged_proxied_header_does_not_split_a_room(cluster: Cluster) -> None:
    """Only our processes may mark a room socket as forwarded: a client that sends the header
    itself to the process that does not own the room still meets the others there (its
    socket is relayed to the owner) instead of opening a second, empty copy of the room."""
    async with aiohttp.ClientSession() as http:
        mentor = await register(http, cluster.url(0), "mentor", "fm", domains=["Programming"])
        learner = await register(http, cluster.url(1), "learner", "fl")
        sid = await scheduled_session(mentor, 5)
        status, body = await learner.call("POST", "/api/bookings/create", json={"session_id": sid})
        assert status == 201, body
        _, mtok = await mentor.call("POST", f"/api/rooms/{sid}/token")
        _, ltok = await learner.call("POST", f"/api/rooms/{sid}/token")
        m = RoomParticipant(await http.ws_connect(cluster.url(0) + f"/ws/room/{sid}?token={mtok['token']}"))
        lp: RoomParticipant | None = None
        try:
            await m.join("mentor")
            owner = redis.Redis.from_url(cluster.redis.url).get(f"pl:room:{sid}")
            assert owner is not None
            owner_pid = int(owner.decode().rsplit("-", 2)[1])
            other = next(i for i, proc in enumerate(cluster.procs) if proc.pid != owner_pid)
            lp = RoomParticipant(
                await http.ws_connect(
                    cluster.url(other) + f"/ws/room/{sid}?token={ltok['token']}",
                    headers={"X-PeerLearn-Proxied": "1"},
                )
            )
            await lp.join("learner")
            await asyncio.wait_for(lp.wait_frames(m.peer_id, "video", 5), 20)
        finally:
            await asyncio.gather(m.close(), *([lp.close()] if lp else []), return_exceptions=True)
