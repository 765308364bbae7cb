"""The process owning a room dies with no parent to report it (another machine, say).

Two independent ``peerlearn serve`` processes on PostgreSQL + a private Redis. ``kill -9`` on
the room's owner; its participants rejoin through the survivor (as a load balancer would
send them). The survivor's first try to reach the dead owner is refused, so it releases the
room there and then; the next try places it on the survivor: both decode each other again
within the issue's 5 s, instead of waiting for the dead node's registration to expire.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import aiohttp
import pytest

from tests.scale.test_two_processes import Cluster, register, scheduled_session
from tests.scale.test_worker_death import REJOIN_BOUND, Rejoining, decode_each_other


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("owner-death"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


async def test_a_dead_owner_without_a_parent_is_released_at_the_first_refused_proxy(cluster: Cluster) -> None:
    import redis

    async with aiohttp.ClientSession() as http:
        mentor = await register(http, cluster.url(0), "mentor", "om", domains=["Programming"])
        learner = await register(http, cluster.url(0), "learner", "ol")
        sid = await scheduled_session(mentor, 5)
        assert (await learner.call("POST", "/api/bookings/create", json={"session_id": sid}))[0] == 201
        m = Rejoining(http, cluster.url(0), mentor, sid, "mentor")
        lp = Rejoining(http, cluster.url(1), learner, sid, "learner")
        try:
            await m.join()
            await lp.join()
            await decode_each_other(m, lp)
            node = redis.Redis.from_url(cluster.redis.url).get(f"pl:room:{sid}")
            assert node is not None
            owner_pid = int(node.decode().rsplit("-", 2)[1])
            owner = next(i for i, p in enumerate(cluster.procs) if p.pid == owner_pid)
            survivor = cluster.url(1 - owner)

            os.kill(owner_pid, signal.SIGKILL)
            killed = time.monotonic()
            m.base = lp.base = survivor  # the load balancer sends everyone to the live process
            await asyncio.gather(m.rejoin_after_drop(), lp.rejoin_after_drop())
            await decode_each_other(m, lp)
            took = time.monotonic() - killed
            print(f"\nowner process killed (no parent): both decode again after {took:.2f}s")
            assert took < REJOIN_BOUND
        finally:
            await asyncio.gather(m.close(), lp.close(), return_exceptions=True)
