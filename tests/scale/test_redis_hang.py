"""A Redis that hangs (SIGSTOP: a partition without RST, not a refused connection).

Two server processes share PostgreSQL and a private redis-server. While Redis is stopped
no request or write waits on it longer than its short timeout; within about 2 s every read
cache steps aside, so a token deactivated through process A is refused by process B and
both processes show the same seat count; realtime fan-out goes on inside each process; on
SIGCONT cross-process fan-out comes back without a restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest

from tests.scale.test_two_processes import (
    PASSWORD,
    Cluster,
    User,
    _until,
    next_message,
    register,
    scheduled_session,
)

# The bound for caches stepping aside is ~2 s (the broker's stale threshold); the
# rest is room for a loaded 2-core machine. A request that waited on the hung Redis would
# take at least the Redis timeout per call, and without timeouts for ever.
STEP_ASIDE_BOUND = 4.0
REQUEST_BOUND = 3.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("redis-hang"))
    try:
        c.start()
        yield c
    finally:
        if c.redis.proc is not None and c.redis.proc.poll() is None:
            c.redis.proc.send_signal(signal.SIGCONT)
        c.stop()


def create_admin(cluster: Cluster) -> str:
    email = f"admin-{time.time_ns()}@example.com"
    env = {**os.environ, "PEERLEARN_DATABASE_URL": cluster.db_url, "PEERLEARN_LOG_LEVEL": "WARNING"}
    cmd = [sys.executable, "-m", "api.cli", "create-admin", "--email", email, "--password", PASSWORD]
    cmd += ["--data-dir", str(cluster.tmp / "admin-data")]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    return email


async def login(http: aiohttp.ClientSession, base: str, email: str) -> User:
    async with http.post(base + "/api/auth/login", json={"email": email, "password": PASSWORD}) as resp:
        assert resp.status == 200, await resp.text()
        data = await resp.json()
    http.cookie_jar.clear()
    return User(http, base, data["access_token"], data["user"])


async def timed(call: Any) -> tuple[float, Any]:
    start = time.monotonic()
    result = await call
    return time.monotonic() - start, result


def is_request_notice(message: dict[str, Any]) -> bool:
    return message.get("type") == "notification" and message["data"].get("kind") == "request.new"


async def ask(learner: User, mentor: User, topic: str) -> int:
    status, _ = await learner.call(
        "POST",
        "/api/requests/create",
        json={
            "topic": topic,
            "domain": "Programming",
            "mentor_id": mentor.id,
            "preferred_times": [(datetime.now(timezone.utc) + timedelta(days=1)).isoformat()],
        },
    )
    return status


async def test_hung_redis_caches_step_aside_requests_never_wait_and_fanout_recovers(cluster: Cluster) -> None:
    a, b = cluster.url(0), cluster.url(1)
    admin_email = create_admin(cluster)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        admin = await login(http, a, admin_email)
        mentor = await register(http, a, "mentor", "hm", domains=["Programming"])
        learner = await register(http, a, "learner", "hl")
        victim = await register(http, a, "learner", "hv")
        sid = await scheduled_session(mentor, minutes=120, capacity=3)
        # B caches the victim's token and the session's seats (the second answers are cached).
        for _ in range(2):
            assert (await victim.call("GET", "/api/users/me", base=b))[0] == 200
            status, detail = await learner.call("GET", f"/api/sessions/{sid}", base=b)
            assert status == 200 and detail["seats_left"] == 3
        ws_a = await http.ws_connect(a + f"/ws?token={mentor.token}")

        assert cluster.redis.proc is not None
        cluster.redis.proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            # Writes through A: none waits on the hung Redis for long.
            took, (status, _) = await timed(admin.call("POST", f"/api/users/{victim.id}/deactivate"))
            assert status == 200 and took < REQUEST_BOUND, (status, took)
            writes = [took]
            took, (status, body) = await timed(learner.call("POST", "/api/bookings/create", json={"session_id": sid}))
            assert status == 201 and took < REQUEST_BOUND, (status, body, took)
            writes.append(took)

            # B stops trusting its caches: the deactivated token is refused there too.
            while (await victim.call("GET", "/api/users/me", base=b))[0] != 401:
                assert time.monotonic() - stopped < STEP_ASIDE_BOUND, "B still accepts a deactivated token"
                await asyncio.sleep(0.05)
            refused_after = time.monotonic() - stopped
            # Both processes agree on the seats.
            seats = [(await learner.call("GET", f"/api/sessions/{sid}", base=base))[1]["seats_left"] for base in (a, b)]
            assert seats == [2, 2], seats

            # Requests that touch Redis (rate-limited login, realtime fan-out) stay quick.
            took, _ = await timed(login(http, b, admin_email))
            assert took < REQUEST_BOUND, took
            writes.append(took)
            took, status = await timed(ask(learner, mentor, "While Redis hangs"))
            assert status == 201 and took < REQUEST_BOUND, took
            writes.append(took)
            # Delivered inside A, without Redis (the booking's notice came the same way).
            await next_message(ws_a, is_request_notice, timeout=5)
            for i in range(2):
                cluster.wait_http(i, "/readyz", status=503, timeout=5)
        finally:
            cluster.redis.proc.send_signal(signal.SIGCONT)
        resumed = time.monotonic()

        # Cross-process fan-out comes back without a restart: made on A, heard on B.
        async with http.ws_connect(b + f"/ws?token={mentor.token}") as ws_b:
            while True:
                assert await ask(learner, mentor, "After the hang") == 201
                try:
                    await next_message(ws_b, is_request_notice, timeout=1)
                    break
                except asyncio.TimeoutError:
                    assert time.monotonic() - resumed < 20, "cross-process fan-out did not recover"
        fanout_back_after = time.monotonic() - resumed
        for i in range(2):
            cluster.wait_http(i, "/readyz", status=200, timeout=20)
        await ws_a.close()
        # Caches are back and follow writes made on the other process again.
        other = await register(http, a, "learner", "hl2")
        for _ in range(2):
            assert (await other.call("GET", f"/api/sessions/{sid}", base=b))[1]["seats_left"] == 2
        assert (await other.call("POST", "/api/bookings/create", json={"session_id": sid}))[0] == 201
        _, detail = await _until(
            lambda: other.call("GET", f"/api/sessions/{sid}", base=b), lambda r: r[1]["seats_left"] == 1
        )
        assert detail["seats_left"] == 1
        print(
            f"\nredis hang: token refused on B {refused_after:.2f}s after SIGSTOP; deactivate, book, login, "
            f"request took {', '.join(f'{w:.2f}' for w in writes)}s; fan-out back {fanout_back_after:.2f}s after SIGCONT"
        )
