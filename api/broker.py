"""Pub/sub behind one interface: in memory (one process) or Redis (many).

Channels are strings such as ``user:12`` or ``session:7``; messages are JSON
objects. Subscribers get an async iterator; a slow subscriber's queue is
bounded and it is the one that loses messages, never the publisher.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

QUEUE_LIMIT = 256
T = TypeVar("T")


class Subscription:
    """Messages of the channels one consumer listens to."""

    def __init__(
        self, broker: "Broker", channels: set[str], sink: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self.channels = set(channels)
        self._queue: asyncio.Queue[dict[str, Any]] | None = None  # made on first use: sinks need none
        self.overflowed = False
        # Called once when the queue overflows (the realtime hub drops that client).
        self.on_overflow: Callable[[], None] | None = None
        # With a sink, messages go to it at once, in the publisher's loop, and never queue:
        # the realtime hub writes them to its socket there (api/realtime_frames.py). A sink
        # must not block; it bounds its own backlog.
        self._sink = sink
        self._broker = broker

    @property
    def queue(self) -> asyncio.Queue[dict[str, Any]]:
        """Where messages wait for a subscriber without a sink (bounded: QUEUE_LIMIT)."""
        if self._queue is None:
            self._queue = asyncio.Queue(QUEUE_LIMIT)
        return self._queue

    def _deliver(self, message: dict[str, Any]) -> None:
        if self._sink is not None:
            self._sink(message)
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            first = not self.overflowed
            self.overflowed = True
            if first and self.on_overflow is not None:
                self.on_overflow()

    async def add(self, channel: str) -> None:
        if channel not in self.channels:
            self.channels.add(channel)
            await self._broker._attach(self, channel)

    async def remove(self, channel: str) -> None:
        """Stop listening to one channel."""
        if channel in self.channels:
            await self._broker._detach(self)
            self.channels.discard(channel)
            for ch in self.channels:
                await self._broker._attach(self, ch)

    async def close(self) -> None:
        await self._broker._detach(self)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.queue.get()


class Broker(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...

    async def subscribe(
        self, channels: set[str], sink: Callable[[dict[str, Any]], None] | None = None
    ) -> Subscription: ...

    async def _attach(self, sub: Subscription, channel: str) -> None: ...

    async def _detach(self, sub: Subscription) -> None: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...


class MemoryBroker:
    """Fan-out inside this process."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        self._fanout(channel, message)

    def _fanout(self, channel: str, message: dict[str, Any]) -> None:
        for sub in list(self._subs.get(channel, ())):
            sub._deliver(message)

    async def subscribe(self, channels: set[str], sink: Callable[[dict[str, Any]], None] | None = None) -> Subscription:
        """Listen to ``channels``: through ``sub.queue``, or with ``sink`` called per message."""
        sub = Subscription(self, channels, sink)
        for ch in channels:
            await self._attach(sub, ch)
        return sub

    async def _attach(self, sub: Subscription, channel: str) -> None:
        self._subs[channel].add(sub)

    async def _detach(self, sub: Subscription) -> None:
        for ch in sub.channels:
            subs = self._subs.get(ch)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    self._subs.pop(ch, None)

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        self._subs.clear()


class RedisBroker(MemoryBroker):
    """Publishes through Redis; one pattern subscription per process fans out locally.

    Redis can fail by refusing (a quick error) or by hanging (SIGSTOP, a partition without
    RST: calls wait for ever). So every call has a short ``timeout``, and health is not
    assumed from an open socket but confirmed: each process publishes a heartbeat every
    ``stale_after / 4`` seconds and hears it back through its own subscription. While its
    last one is older than ``stale_after``, Redis is :attr:`available` no more: publish
    delivers locally at once (the database still holds every notification), other users of
    Redis (rate limits, placement) go local without waiting, and read caches step aside
    (:attr:`listening`). Peers' heartbeats are heard too: one that falls silent may be
    writing without being heard (its own link to Redis is down), so :attr:`listening` stays
    false until it is heard again or ``peer_forget`` seconds have passed (a peer that died).
    """

    PREFIX = "pl:ch:"
    HEARTBEAT = "_hb"

    def __init__(self, url: str, *, timeout: float = 1.0, stale_after: float = 2.0, peer_forget: float = 30.0) -> None:
        super().__init__()
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.url = url
        self.timeout = timeout
        self.stale_after = stale_after
        self.peer_forget = peer_forget
        self.origin = f"{process_prefix(os.getpid())}{uuid.uuid4().hex[:8]}"
        # No retries inside redis-py: its default (3, with backoff) turns a 1 s timeout into
        # several seconds; the heartbeat notices recovery instead.
        self.redis = aioredis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._heard = -math.inf  # monotonic time our last heartbeat came back
        self._peers: dict[str, float] = {}
        # Changes each time Redis becomes healthy after a gap: caches start empty then.
        self.epoch = 0
        self._on_recovered: list[Callable[[], Awaitable[None]]] = []
        self._down_logged = False

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._listen(), name="redis-broker-listener"),
                asyncio.create_task(self._beat(), name="redis-broker-heartbeat"),
            ]
            # A process that starts serving before its first heartbeat came back would place
            # rooms and count limits locally: give Redis a moment to confirm itself.
            deadline = time.monotonic() + self.stale_after
            while not self.available and time.monotonic() < deadline:
                await asyncio.sleep(0.02)

    def on_recovered(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` each time Redis is confirmed healthy after a gap."""
        self._on_recovered.append(callback)

    @property
    def available(self) -> bool:
        """Our own heartbeat came back within ``stale_after``: calls to Redis are worth making."""
        return time.monotonic() - self._heard < self.stale_after

    @property
    def listening(self) -> bool:
        """Every process's writes reach us now (read caches rely on it): our heartbeat and
        every recently heard peer's are fresh."""
        now = time.monotonic()
        if now - self._heard >= self.stale_after:
            return False
        return not any(self.stale_after <= now - t < self.peer_forget for t in self._peers.values())

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """One Redis call, refused at once while Redis is not available, bounded by ``timeout``.

        A call that times out or loses its connection makes Redis unavailable at once, not
        only at the next missed heartbeat: the calls after it do not wait too, and this
        process's caches step aside now (its writes' invalidations may not have gone out)."""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        if not self.available:
            raise RedisUnavailable("redis is not answering heartbeats")
        try:
            return await asyncio.wait_for(make(), self.timeout)
        except (asyncio.TimeoutError, OSError, RedisConnectionError, RedisTimeoutError):
            self._heard = -math.inf  # confirmed again by the next heartbeat that comes back
            raise

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        if not await self.publish_remote(channel, message):
            self._fanout(channel, message)

    async def publish_remote(self, channel: str, message: dict[str, Any]) -> bool:
        """Publish through Redis only; False when Redis did not take it (not available, or no
        answer within ``timeout``) - then nobody, here included, gets it from Redis."""
        try:
            await self.call(lambda: self.redis.publish(self.PREFIX + channel, json.dumps(message, default=str)))
            return True
        except Exception as exc:  # noqa: BLE001 - Redis down must not fail the request
            if not self._down_logged:
                self._down_logged = True
                log.warning("redis publish failed (%r); delivering locally only", exc)
            return False

    async def _beat(self) -> None:
        """Publish a heartbeat regularly, whatever the health: it is how recovery is seen."""
        payload = json.dumps({"origin": self.origin})
        while True:
            try:
                await asyncio.wait_for(self.redis.publish(self.PREFIX + self.HEARTBEAT, payload), self.timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.debug("redis heartbeat failed: %r", exc)
            await asyncio.sleep(self.stale_after / 4)

    def _heartbeat(self, data: dict[str, Any]) -> None:
        origin = str(data.get("origin"))
        now = time.monotonic()
        if data.get("bye"):
            self._peers.pop(origin, None)
        elif dead := data.get("dead"):  # a parent saw this process die (api/supervisor.py)
            self._peers = {o: t for o, t in self._peers.items() if not o.startswith(str(dead))}
        elif origin != self.origin:
            self._peers[origin] = now
            if len(self._peers) > 1000:  # bound: forget long-gone peers
                self._peers = {o: t for o, t in self._peers.items() if now - t < self.peer_forget}
        else:
            if now - self._heard >= self.stale_after:
                self.epoch += 1
                self._down_logged = False
                log.warning("redis heartbeat confirmed (epoch %d): shared caches and fan-out resume", self.epoch)
                for callback in self._on_recovered:
                    task = asyncio.ensure_future(callback())
                    task.add_done_callback(_retrieve)
            self._heard = now

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self.redis.pubsub()
            try:
                await asyncio.wait_for(pubsub.psubscribe(self.PREFIX + "*"), self.timeout)
                since = time.monotonic()
                while True:
                    # Bounded reads: listen() would block for ever on a hung Redis.
                    msg = await asyncio.wait_for(
                        pubsub.get_message(ignore_subscribe_messages=True, timeout=self.timeout / 2),
                        self.timeout * 2,
                    )
                    if msg is not None and msg.get("type") == "pmessage":
                        self._received(msg)
                        backoff = 0.1
                    now = time.monotonic()
                    if now - max(self._heard, since) > 2 * self.stale_after:
                        raise RedisUnavailable("no heartbeat through the subscription")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.info("redis listener lost (%r); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            finally:
                try:
                    # redis-py leaves PubSub.aclose unannotated.
                    await asyncio.wait_for(pubsub.aclose(), self.timeout)  # type: ignore[no-untyped-call]
                except Exception:  # noqa: BLE001
                    pass

    def _received(self, msg: dict[str, Any]) -> None:
        channel = msg["channel"]
        if isinstance(channel, bytes):
            channel = channel.decode()
        try:
            data = json.loads(msg["data"])
        except (ValueError, TypeError):
            return
        name = channel[len(self.PREFIX) :]
        if name == self.HEARTBEAT:
            if isinstance(data, dict):
                self._heartbeat(data)
            return
        self._fanout(name, data)

    async def healthy(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), self.timeout)) and self.listening
        except Exception:  # noqa: BLE001
            return False

    async def close(self) -> None:
        try:  # peers need not wait peer_forget seconds for a process that said goodbye
            payload = json.dumps({"origin": self.origin, "bye": True})
            await self.call(lambda: self.redis.publish(self.PREFIX + self.HEARTBEAT, payload))
        except Exception:  # noqa: BLE001
            pass
        for task in self._tasks:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        try:
            await asyncio.wait_for(self.redis.aclose(), self.timeout)
        except Exception:  # noqa: BLE001
            pass
        await super().close()


def process_prefix(pid: int) -> str:
    """How the origins of process ``pid`` on this machine begin (its broker's and no other's)."""
    return f"{os.uname().nodename}-{pid}-"


def announce_dead(client: Any, pid: int) -> None:
    """From the parent of ``serve --workers N`` (a synchronous ``redis.Redis``): worker ``pid``
    died, so its peers need not keep their caches aside waiting to hear from it again."""
    client.publish(RedisBroker.PREFIX + RedisBroker.HEARTBEAT, json.dumps({"dead": process_prefix(pid)}))


class RedisUnavailable(Exception):
    """Redis has not confirmed its health recently: the call was not attempted."""


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("redis recovery callback failed: %r", exc)
