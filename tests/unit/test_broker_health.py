"""When the Redis broker counts as healthy: heartbeats heard back, peers heard, the dead forgotten.

Read caches trust the broker only while it is ``listening`` (api/cache.py); these are the
rules a hung Redis or a silent peer must trip (tests/scale/test_redis_hang.py has them
for real).
"""

from __future__ import annotations

import asyncio
import time

from api.broker import RedisBroker, process_prefix


async def test_listening_needs_our_heartbeat_back_and_every_recent_peer_heard() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0", stale_after=2.0, peer_forget=30.0)
    try:
        assert not broker.available and not broker.listening  # nothing heard yet
        broker._heartbeat({"origin": broker.origin})
        assert broker.available and broker.listening and broker.epoch == 1

        peer = process_prefix(4242) + "abcd"
        broker._heartbeat({"origin": peer})
        assert broker.listening
        broker._peers[peer] = time.monotonic() - 3  # silent for 3 s: its writes may go unheard
        assert broker.available and not broker.listening
        broker._peers[peer] = time.monotonic() - 31  # silent past peer_forget: taken as gone
        assert broker.listening

        broker._heartbeat({"origin": peer})
        broker._peers[peer] = time.monotonic() - 3
        broker._heartbeat({"dead": process_prefix(4242)})  # its parent saw it die
        assert broker.listening and peer not in broker._peers
        other = process_prefix(4243) + "ef01"
        broker._heartbeat({"origin": other})
        broker._heartbeat({"origin": other, "bye": True})  # stopped cleanly
        assert other not in broker._peers

        broker._heard = time.monotonic() - 2.5  # our own heartbeat late: Redis hung
        assert not broker.available and not broker.listening
        broker._heartbeat({"origin": broker.origin})
        assert broker.listening and broker.epoch == 2  # a new healthy period: caches start empty
    finally:
        await broker.redis.aclose()


async def test_a_call_that_times_out_makes_redis_unavailable_at_once() -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0", timeout=0.05)
    try:
        broker._heartbeat({"origin": broker.origin})
        assert broker.available

        async def hang() -> None:
            await asyncio.sleep(1)

        try:
            await broker.call(hang)
        except asyncio.TimeoutError:
            pass
        else:
            raise AssertionError("a hung call must time out")
        assert not broker.available and not broker.listening
        # And the next one is not even tried.
        assert not await broker.publish_remote("x", {"a": 1})
    finally:
        await broker.redis.aclose()
