"""Pub/sub behind one interface: in memory (one process) or Redis (many).

Channels are strings such as ``user:12`` or ``session:7``; messages are JSON
objects. Subscribers get an async iterator; a slow subscriber's queue is
bounded and it is the one that loses messages, never the publisher.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

QUEUE_LIMIT = 256


class Subscription:
    """Messages of the channels one consumer listens to."""

    def __init__(self, broker: "Broker", channels: set[str]) -> None:
        self.channels = set(channels)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self.overflowed = False
        # Called once when the queue overflows (the realtime hub drops that client).
        self.on_overflow: Callable[[], None] | None = None
        self._broker = broker

    def _deliver(self, message: dict[str, Any]) -> None:
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

    async def subscribe(self, channels: set[str]) -> Subscription: ...

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

    async def subscribe(self, channels: set[str]) -> Subscription:
        sub = Subscription(self, channels)
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

    When Redis is unreachable, publish logs and drops (the database still holds
    every notification) and the listener reconnects on its own with backoff.
    """

    PREFIX = "pl:ch:"

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio as aioredis

        self.url = url
        self.redis = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=5)
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="redis-broker-listener")

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        try:
            await self.redis.publish(self.PREFIX + channel, json.dumps(message, default=str))
        except Exception as exc:  # noqa: BLE001 - Redis down must not fail the request
            log.warning("redis publish failed (%s); delivering locally only", exc)
            self._fanout(channel, message)

    async def _listen(self) -> None:
        backoff = 0.2
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(self.PREFIX + "*")
                self._connected.set()
                backoff = 0.2
                async for msg in pubsub.listen():
                    if msg.get("type") != "pmessage":
                        continue
                    channel = msg["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    try:
                        data = json.loads(msg["data"])
                    except (ValueError, TypeError):
                        continue
                    self._fanout(channel[len(self.PREFIX) :], data)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self._connected.clear()
                log.warning("redis listener lost (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                try:
                    # redis-py leaves PubSub.aclose unannotated.
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except Exception:  # noqa: BLE001
                    pass

    @property
    def listening(self) -> bool:
        """Whether messages from other processes reach us now (read caches rely on it)."""
        return self._connected.is_set()

    async def healthy(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), 1.0))
        except Exception:  # noqa: BLE001
            return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        await self.redis.aclose()
        await super().close()
